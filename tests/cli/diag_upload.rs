//! `edge-setup diag upload` against a tenant on loopback (tests/cli/common/tenant.rs),
//! in image roots: the event on the device and its file, byte for byte.

use crate::common;

use std::path::{Path, PathBuf};

use common::Image;
use common::tenant::{PASSWORD, Tenant};
use serde_json::Value;

const DEVICE: &str = "edge-plant7-01";
const MO: &str = "4711";
const CREDENTIALS: &str = "t100/admin\nTenant:Pass#1\n";
const MAX: u64 = edge_setup::diag::upload::MAX;

/// An appliance with a device ID and the tenant's URL and CA configured.
fn appliance(tenant: &Tenant) -> Image {
    tenant.appliance(DEVICE)
}

/// A bundle on the host: gzip's magic, then bytes that are no UTF-8 and hold
/// what a multipart body is made of (line ends, dashes, a boundary's prefix).
fn bundle(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x80];
    bytes.extend_from_slice(b"\r\n--edge-setup-\r\n\r\n--");
    let mut x: u32 = 0x9e37_79b9;
    bytes.extend((0..200_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    assert!(std::str::from_utf8(&bytes).is_err());
    let path = dir.join("edge-setup-diag-edge01-20250101T000000Z.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// `edge-setup --root IMG diag upload FILE ARGS --credentials-stdin --json`: success,
/// the JSON object, stderr.
fn upload(img: &Image, file: &Path, args: &[&str], credentials: &str) -> (bool, Value, String) {
    let out = img
        .cmd()
        .args(["diag", "upload"])
        .arg(file)
        .args(args)
        .args(["--credentials-stdin", "--json"])
        .write_stdin(credentials)
        .output()
        .unwrap();
    let v = common::json::envelope(&out);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    (out.status.success(), v, stderr)
}

fn no_violations(tenant: &Tenant) {
    let violations = tenant.with(|s| s.violations.clone());
    assert!(violations.is_empty(), "{violations:?}");
}

#[test]
fn the_bundle_becomes_the_file_of_an_event_of_the_device_byte_for_byte() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let (file, bytes) = bundle(dir.path());
    let (ok, v, err) = upload(&img, &file, &[], CREDENTIALS);
    assert!(ok, "{v}\n{err}");
    no_violations(&tenant);
    let events = tenant.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    let id = event["id"].as_str().unwrap();
    assert_eq!(
        tenant.changes(),
        [
            "POST /event/events".to_string(),
            format!("POST /event/events/{id}/binaries")
        ]
    );
    assert_eq!(event["source"]["id"], MO);
    assert_eq!(event["type"], "edgesetup_DiagnosticsBundle");
    let name = "edge-setup-diag-edge01-20250101T000000Z.tar.gz";
    assert!(event["text"].as_str().unwrap().contains(name), "{event}");
    let binary = tenant.binary(id).unwrap();
    assert_eq!(binary.filename, name);
    assert_eq!(binary.content_type, "application/gzip");
    assert!(binary.bytes == bytes, "the tenant got other bytes than the bundle's");
    // the result, and the steps
    let result = &v["result"];
    assert_eq!(result["managed_object"], MO);
    assert_eq!(result["event_id"], id);
    assert_eq!(result["size"], bytes.len());
    assert_eq!(result["file"], name);
    assert_eq!(v["changed"], true, "{v}");
    assert!(
        err.contains(&format!("Creating an event for {name} on device {MO} ... event {id}")),
        "{err}"
    );
    // the human form names the event
    let out = img
        .cmd()
        .args(["diag", "upload"])
        .arg(&file)
        .arg("--credentials-stdin")
        .write_stdin(CREDENTIALS)
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let second = tenant.events()[1]["id"].as_str().unwrap().to_string();
    assert_eq!(stdout, format!("Attached {name} to event {second} of device {MO}.\n"));
    assert!(tenant.binary(&second).unwrap().bytes == bytes);
    no_violations(&tenant);
}

#[test]
fn a_dry_run_lists_both_requests_and_sends_neither() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = bundle(dir.path());
    let (ok, v, err) = upload(&img, &file, &["--dry-run"], CREDENTIALS);
    assert!(ok, "{err}");
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    assert!(tenant.events().is_empty());
    let sent: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["request"].as_str())
        .collect();
    assert_eq!(sent, ["POST /event/events", "POST /event/events/{id}/binaries"], "{v}");
    assert_eq!(v["result"]["event_id"], Value::Null);
    assert_eq!(v["result"]["managed_object"], MO);
    assert!(err.contains("would send POST /event/events"), "{err}");
    no_violations(&tenant);
}

#[test]
fn tenant_refusals_say_what_to_do() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = bundle(dir.path());
    // wrong credentials
    let (ok, v, _) = upload(&img, &file, &[], "t100/admin\nwrong-password\n");
    assert!(!ok);
    assert_eq!(v["error"]["exit"], 1);
    let what = v["error"]["what"].as_str().unwrap();
    assert!(what.contains("refused the credentials of t100/admin (401"), "{what}");
    assert!(v["error"]["next"].as_str().unwrap().contains("password"), "{v}");
    assert!(tenant.changes().is_empty());
    // a user who may not make events
    tenant.with(|s| s.fail_on = Some(("POST", 403)));
    let (ok, v, _) = upload(&img, &file, &[], CREDENTIALS);
    assert!(!ok);
    assert!(v["error"]["next"].as_str().unwrap().contains("ROLE_EVENT_ADMIN"), "{v}");
    tenant.with(|s| s.fail_on = None);
    // a device the tenant does not know
    let other = appliance(&tenant);
    other.write("/usr/edge/properties/edge-agent/device-id", "edge-unknown\n");
    let (ok, v, _) = upload(&other, &file, &[], CREDENTIALS);
    assert!(!ok);
    assert!(v["error"]["next"].as_str().unwrap().contains("register"), "{v}");
    assert!(v["error"]["why"].as_str().unwrap().contains("bundle"), "{v}");
    assert!(tenant.events().is_empty());
    no_violations(&tenant);
}

#[test]
fn an_event_left_without_its_file_is_named_with_the_command_to_send_it_again() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = bundle(dir.path());
    tenant.with(|s| s.fail_at = Some(("/binaries", 500)));
    let (ok, v, _) = upload(&img, &file, &[], CREDENTIALS);
    assert!(!ok);
    assert_eq!(v["error"]["exit"], 1);
    let id = tenant.events()[0]["id"].as_str().unwrap().to_string();
    let what = v["error"]["what"].as_str().unwrap();
    assert!(
        what.starts_with(&format!(
            "event {id} was created, but the bundle was not attached to it"
        )),
        "{what}"
    );
    let next = v["error"]["next"].as_str().unwrap();
    assert!(next.contains(&format!("diag upload {}", file.display())), "{next}");
    assert!(tenant.binary(&id).is_none());
    no_violations(&tenant);
}

#[test]
fn a_file_that_is_no_bundle_is_refused_before_any_request() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = bundle(dir.path());
    let refused = |path: &Path, code: i32, says: &str| {
        let (ok, v, _) = upload(&img, path, &[], CREDENTIALS);
        assert!(!ok, "{}", path.display());
        assert_eq!(v["error"]["exit"], code, "{v}");
        let text = format!("{} {}", v["error"]["what"], v["error"]["why"]);
        assert!(text.contains(says), "{}: {text}", path.display());
    };
    refused(&dir.path().join("missing.tar.gz"), 2, "does not exist");
    let link = dir.path().join("link.tar.gz");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    refused(&link, 2, "symbolic link");
    refused(dir.path(), 2, "directory");
    // larger than the tenant takes: refused by its length, never read
    let large = dir.path().join("large.tar.gz");
    std::fs::File::create(&large).unwrap().set_len(MAX + 1).unwrap();
    refused(&large, 2, &format!("at most {MAX}"));
    let text = dir.path().join("credentials");
    std::fs::write(&text, CREDENTIALS).unwrap();
    refused(&text, 2, "not gzip");
    assert!(tenant.requests().is_empty(), "{:?}", tenant.requests());
}
