//! `edge-setup diag collect` in image roots: what the bundle holds, that no secret the
//! appliance holds is in it, plugins (listed in an image, a directory others may change
//! refused) and the plan of a dry run. Plugins running for real, their exit codes and
//! time limit are the unit tests' (src/diag/plugins.rs): an image's plugins never run.

use crate::common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::Image;
use serde_json::Value;

const MAPPING: &str = "/opt/c8y/utilities/vnc-display-mapping";
const USERS: &str = "/etc/tigervnc/vncserver.users";
const CONFIG: &str = "/etc/edge-setup/edge-setup.toml";
const CREDENTIALS: &str = "/etc/edge-setup/tenant-credentials";
const TENANT_PASSWORD: &str = "Tenant:Pass#1";
const CA: &str = "/etc/edge-setup/tenant-ca.pem";
/// Lines of keys no bundle may hold, each unique in the image.
const SSL_KEY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDsslkeyline0001";
const CA_KEY: &str = "MC4CAQAwBQYDK2VwBCIEIcakeyline00000000000000000000000000002";
const SSH_KEY: &str = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQsshkeyline00003";
const SECRET_FILE: &str = "an answers file's copied password 0004";
const CONFIG_DAT_PASSWORD: &str = "ConfigDat#Pass5";
const DIGEST: &str = "5f1d9c0a7b3e2d4c6a8b0e1f2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4";
const SALT: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn private(img: &Image, path: &str, text: &str) {
    img.write(path, text);
    std::fs::set_permissions(img.path(path), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A user's file, theirs, with its directories from the home down.
fn users_file(img: &Image, uid: u32, path: &str, bytes: &[u8], mode: u32) {
    let host = img.path(path);
    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
    std::fs::write(&host, bytes).unwrap();
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode)).unwrap();
    let home = img.path(&format!("/home/{}", path.split('/').nth(2).unwrap()));
    for p in host.ancestors().take_while(|p| p.starts_with(&home)) {
        std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
    }
}

/// An appliance holding every secret one can hold: two VNC users with password files
/// (one with a view-only password too) and logs, the tenant's credentials file and CA
/// (with a key pasted in by mistake), the platform's SSL key, an SSH host key, copies
/// of an answers file's secrets, config.dat and the remote access record. Returns the
/// secrets, as the bytes no file of the bundle may contain.
fn appliance() -> (Image, Vec<(String, Vec<u8>)>) {
    let img = Image::debian().with_vnc_set_up();
    // the users read their logs through the image's root, as on an appliance
    std::fs::set_permissions(img.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    img.write(MAPPING, "admin:1\noperator:2\n");
    img.write(USERS, ":1=admin\n:2=operator\n");
    img.write(
        CONFIG,
        &format!(
            "[c8y]\nurl = \"https://t100.example.com\"\ncredentials-file = \"{CREDENTIALS}\"\nca-file = \"{CA}\"\n"
        ),
    );
    private(&img, CREDENTIALS, &format!("t100/admin\n{TENANT_PASSWORD}\n"));
    img.write(
        CA,
        &format!("-----BEGIN PRIVATE KEY-----\n{CA_KEY}\n-----END PRIVATE KEY-----\n"),
    );
    private(
        &img,
        "/etc/edge-setup/ssl/edge.example.com.key",
        &format!("-----BEGIN PRIVATE KEY-----\n{SSL_KEY}\n-----END PRIVATE KEY-----\n"),
    );
    private(
        &img,
        "/etc/ssh/ssh_host_ed25519_key",
        &format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{SSH_KEY}\n-----END OPENSSH PRIVATE KEY-----\n"),
    );
    private(
        &img,
        "/etc/edge-setup/secrets/tenant-password",
        &format!("{SECRET_FILE}\n"),
    );
    private(
        &img,
        "/opt/c8y/utilities/post-installer/config.dat",
        &format!(
            "tenant.admin.username=admin\ntenant.admin.password={}\n",
            base64_of(CONFIG_DAT_PASSWORD)
        ),
    );
    private(
        &img,
        "/var/lib/edge-setup/remote-access.json",
        &format!(
            "{{\"tenant\":\"t100\",\"device\":\"4711\",\"salt\":\"{SALT}\",\"endpoints\":[\
             {{\"id\":\"17\",\"protocol\":\"VNC\",\"user\":\"admin\",\"digest\":\"{DIGEST}\"}}]}}"
        ),
    );
    let admin = edge_setup::vnc_user::password::encode("admin123", None).to_vec();
    let operator = edge_setup::vnc_user::password::encode("oper4567", Some("view9876")).to_vec();
    users_file(&img, 1000, "/home/admin/.vnc/passwd", &admin, 0o600);
    users_file(&img, 1001, "/home/operator/.config/tigervnc/passwd", &operator, 0o600);
    users_file(
        &img,
        1000,
        "/home/admin/.vnc/edge:1.log",
        b"Xvnc TigerVNC 1.12.0 on :1\n",
        0o644,
    );
    users_file(
        &img,
        1001,
        "/home/operator/.local/state/tigervnc/edge:2.log",
        b"Xvnc TigerVNC 1.14.1 on :2\n",
        0o644,
    );
    let mut secrets: Vec<(String, Vec<u8>)> = [
        ("admin's VNC password", "admin123"),
        ("operator's VNC password", "oper4567"),
        ("operator's view-only password", "view9876"),
        ("the tenant password", TENANT_PASSWORD),
        ("the SSL key", SSL_KEY),
        ("the key in the CA file", CA_KEY),
        ("the SSH host key", SSH_KEY),
        ("a file of /etc/edge-setup/secrets", SECRET_FILE),
        ("config.dat's password", CONFIG_DAT_PASSWORD),
        ("config.dat's password, base64", &base64_of(CONFIG_DAT_PASSWORD)),
        ("a remote access digest", DIGEST),
        ("the remote access salt", SALT),
    ]
    .iter()
    .map(|(what, s)| (what.to_string(), s.as_bytes().to_vec()))
    .collect();
    for (user, bytes) in [("admin", &admin), ("operator", &operator)] {
        secrets.push((format!("{user}'s password file"), bytes.clone()));
        secrets.push((format!("{user}'s password file, hex"), hex(bytes).into_bytes()));
        secrets.push((
            format!("{user}'s password file, HEX"),
            hex(bytes).to_uppercase().into_bytes(),
        ));
    }
    (img, secrets)
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every file of a `.tar.gz` by its path below the top directory.
fn unpack(path: &std::path::Path) -> (String, BTreeMap<String, Vec<u8>>) {
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut top = String::new();
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let (first, rest) = name.split_once('/').unwrap();
        top = first.to_string();
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(rest.to_string(), bytes);
        }
    }
    (top, files)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn collect(img: &Image, args: &[&str]) -> (Value, std::process::Output) {
    let out = img
        .cmd()
        .args(["diag", "collect", "--json"])
        .args(args)
        .output()
        .unwrap();
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (json, out)
}

fn part<'a>(json: &'a Value, name: &str) -> &'a Value {
    json.as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {json:#}"))
}

#[test]
#[ignore = "needs root"]
fn the_bundle_holds_each_part_and_no_secret_of_the_appliance() {
    let (img, secrets) = appliance();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.gz");
    let (json, out) = collect(&img, &["--output", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{json:#}");
    let result = &json["result"];
    assert_eq!(result["path"], bundle.to_str().unwrap());
    let meta = std::fs::metadata(&bundle).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!((meta.uid(), meta.len()), (0, result["size"].as_u64().unwrap()));

    let (top, files) = unpack(&bundle);
    assert!(top.starts_with("edge-setup-diag-"), "{top}");
    for name in [
        "manifest.json",
        "versions.txt",
        "os-release",
        "check.json",
        "setup-status.json",
        "config.txt",
        "mappings/vnc-display-mapping",
        "mappings/vncserver.users",
        "records/remote-access.json",
        "packages.txt",
    ] {
        assert!(files.contains_key(name), "{name} missing: {:?}", files.keys());
    }
    assert_eq!(files["mappings/vnc-display-mapping"], b"admin:1\noperator:2\n");
    assert_eq!(files["os-release"], common::DEBIAN_12.as_bytes());
    let check: Value = serde_json::from_slice(&files["check.json"]).unwrap();
    assert!(
        check["result"]["checks"].as_array().is_some_and(|c| !c.is_empty()),
        "{check:#}"
    );
    let status: Value = serde_json::from_slice(&files["setup-status.json"]).unwrap();
    assert_eq!(status["result"]["vnc_users"][0]["user"], "admin");
    assert_eq!(files["vnc-logs/admin/.vnc/edge:1.log"], b"Xvnc TigerVNC 1.12.0 on :1\n");
    assert_eq!(
        files["vnc-logs/operator/.local/state/tigervnc/edge:2.log"],
        b"Xvnc TigerVNC 1.14.1 on :2\n"
    );
    let config = String::from_utf8(files["config.txt"].clone()).unwrap();
    assert!(
        config.contains(&format!("c8y.credentials-file={CREDENTIALS}\n")),
        "{config}"
    );
    // the image has no journal: said in the manifest, as in the result
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    for live in ["journal", "units", "addresses", "routes", "disk", "time"] {
        assert_eq!(part(&manifest["parts"], live)["status"], "skipped", "{live}");
        assert_eq!(part(&result["parts"], live)["status"], "skipped", "{live}");
    }
    assert_eq!(part(&manifest["parts"], "vnc-logs")["status"], "collected");
    assert_eq!(manifest["parts"], result["parts"]);

    for (what, secret) in &secrets {
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret), "{what} is in {name}");
        }
        assert!(
            !contains(&out.stdout, secret) && !contains(&out.stderr, secret),
            "{what} was printed"
        );
    }
}

/// An image's plugins are the appliance's: listed, never run here. A directory others
/// may change is refused with its fix, and the bundle is still made.
#[test]
fn plugins_of_an_image_are_listed_not_run_and_a_directory_others_may_change_is_refused() {
    let img = Image::debian();
    let marker = img.root().join("ran");
    for (dir, name) in [
        ("/usr/share/edge-setup/diag-plugins", "10-package"),
        ("/etc/edge-setup/diag-plugins", "20-planted"),
    ] {
        let path = format!("{dir}/{name}");
        img.write(&path, &format!("#!/bin/sh\ntouch {}\n", marker.display()));
        std::fs::set_permissions(img.path(&path), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let planted = img.path("/etc/edge-setup/diag-plugins");
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bundle = img.root().join("bundle.tar.gz");
    let (json, out) = collect(&img, &["--output", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{json:#}");
    assert!(!marker.exists(), "a plugin ran");
    let plugins = &json["result"]["plugins"];
    let refused = part(plugins, "/etc/edge-setup/diag-plugins");
    assert_eq!(refused["status"], "error");
    let why = refused["why"].as_str().unwrap();
    assert!(why.contains("group or others may change it (mode 0777)"), "{why}");
    assert!(why.contains(&format!("chmod go-w {}", planted.display())), "{why}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: the diagnostic plugins in /etc/edge-setup/diag-plugins do not run"),
        "{stderr}"
    );
    let listed = part(plugins, "10-package");
    assert_eq!(listed["status"], "skipped");
    assert_eq!(listed["path"], "/usr/share/edge-setup/diag-plugins/10-package");
    let (_, files) = unpack(&bundle);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(&manifest["plugins"], plugins);
}

#[test]
fn a_dry_run_plans_and_writes_nothing() {
    let img = Image::debian();
    let before = img.snapshot();
    let bundle = img.root().join("bundle.tar.gz");
    let out = img
        .cmd()
        .args(["--dry-run", "diag", "collect", "--since", "2h", "--output"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "no bundle's path on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "Would collect a diagnostic bundle into {} (mode 0600):",
            bundle.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("  check: edge-setup check --json\n"), "{stderr}");
    assert!(
        stderr.contains("  journal: skipped: an image has no running system"),
        "{stderr}"
    );
    assert!(!bundle.exists());
    assert_eq!(img.snapshot(), before);
    let (json, _) = collect(&img, &["--output", bundle.to_str().unwrap()]);
    assert_eq!(json["result"]["size"], bundle.metadata().unwrap().len());
}

#[test]
fn an_image_needs_a_file_outside_it() {
    let img = Image::debian();
    let out = img.cmd().args(["diag", "collect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--output FILE is needed with --root"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "edge-setup --root {} diag collect --output",
            img.root().display()
        )),
        "{stderr}"
    );
    assert!(!img.exists("/var/lib/edge-setup/diag"));
}

/// The file is written like root's own: a link planted at its name is refused, never followed.
#[test]
fn a_link_at_the_output_is_refused_not_followed() {
    let img = Image::debian();
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    let bundle = dir.path().join("bundle.tar.gz");
    std::os::unix::fs::symlink(&victim, &bundle).unwrap();
    let out = img
        .cmd()
        .args(["diag", "collect", "--output"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it is a symbolic link"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep\n");
}
