//! `edge-setup check`: on image roots through the binary (what an image's
//! files show, `--fix` through plan and apply), and the tenant checks on a
//! live system over a temporary root against the tests' tenant.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Image;
use common::tenant::Tenant;
use edge_setup::health::{Area, Check, Status};
use serde_json::Value;

const MAPPING: &str = "/opt/c8y/utilities/vnc-display-mapping";
const USERS: &str = "/etc/tigervnc/vncserver.users";
const SUDOERS: &str = "/etc/sudoers.d/edge-setup-vnc";

/// `check --json ARGS` on the image: whether it succeeded, and its object.
fn check(img: &Image, args: &[&str]) -> (bool, Value) {
    let out = img.cmd().arg("check").args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), v)
}

/// The entry of check `id` (for `user`, when given).
fn entry<'a>(v: &'a Value, id: &str, user: Option<&str>) -> &'a Value {
    v["result"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id && user.is_none_or(|u| c["user"] == u))
        .unwrap_or_else(|| panic!("no check {id} {user:?} in {v}"))
}

fn status<'a>(v: &'a Value, id: &str, user: Option<&str>) -> &'a str {
    entry(v, id, user)["status"].as_str().unwrap()
}

/// A VNC password file in `user`'s ~/.vnc (TigerVNC 1.12, as the image has none installed).
fn password_file(img: &Image, user: &str, uid: u32, bytes: &[u8], mode: u32) -> String {
    let home = img.path(&format!("/home/{user}"));
    let dir = home.join(".vnc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("passwd");
    std::fs::write(&file, bytes).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    for p in [&home, &dir, &file] {
        std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
    }
    format!("/home/{user}/.vnc/passwd")
}

/// An image where `edge-setup vnc` ran (the record names the /etc/hosts line),
/// with admin on :1 and operator on :2.
fn vnc_image() -> Image {
    let img = Image::debian();
    img.write(
        edge_setup::tigervnc::INSTALL_RECORD,
        "{\"hosts_line\": \"127.0.1.1\\tplant7\"}\n",
    );
    img.write("/etc/hostname", "plant7\n");
    img.write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tplant7\n");
    img.write(MAPPING, "admin:1\noperator:2\n");
    img.write(USERS, ":1=admin\n:2=operator\n");
    img
}

#[test]
fn an_image_is_checked_from_its_files_and_what_needs_a_running_system_is_skipped() {
    let img = Image::debian();
    let (ok, v) = check(&img, &[]);
    assert!(ok, "{v}");
    let checks = v["result"]["checks"].as_array().unwrap();
    let mut names = std::collections::BTreeSet::new();
    for c in checks {
        for key in ["id", "area", "status", "finding", "next", "fixable"] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
        let id = c["id"].as_str().unwrap();
        assert!(id.starts_with(&format!("{}.", c["area"].as_str().unwrap())), "{c}");
        assert!(names.insert((id.to_string(), c["user"].to_string())), "{id} twice");
        // every check that is not ok says what to run
        if matches!(c["status"].as_str(), Some("warn" | "fail")) {
            assert!(c["next"].as_str().is_some_and(|n| !n.is_empty()), "{c}");
        }
    }
    for id in ["tenant.dns", "tenant.clock", "edge-setup.locks", "disk.root"] {
        assert_eq!(status(&v, id, None), "skipped", "{id}");
        assert!(
            entry(&v, id, None)["finding"]
                .as_str()
                .unwrap()
                .contains("running system")
        );
    }
    // an image's device ID and machine ID are each appliance's own
    assert_eq!(status(&v, "identity.device-id", None), "ok");
    assert_eq!(status(&v, "agent.url", None), "warn");
    let counts = &v["result"]["counts"];
    let total: u64 = ["ok", "warn", "fail", "skipped"]
        .iter()
        .map(|k| counts[k].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, checks.len());
}

#[test]
fn only_picks_areas_strict_fails_on_warnings_and_an_unknown_area_is_refused() {
    let img = Image::debian();
    let (_, v) = check(&img, &["--only", "identity,disk"]);
    let areas: std::collections::BTreeSet<&str> = v["result"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["area"].as_str().unwrap())
        .collect();
    assert_eq!(areas, ["disk", "identity"].into());
    // agent.url warns: not a failure, unless --strict
    assert!(check(&img, &["--only", "agent"]).0);
    let (ok, v) = check(&img, &["--only", "agent", "--strict"]);
    assert!(!ok);
    assert!(v["error"]["what"].as_str().unwrap().contains("agent.url"), "{v}");
    let out = img.cmd().args(["check", "--only", "vnc,bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("certificates"), "{err}");
}

#[test]
fn the_text_report_aligns_each_check_with_its_next_command() {
    let img = vnc_image();
    img.write("/etc/hosts", "127.0.0.1\tlocalhost\n");
    let out = img
        .cmd()
        .args(["check", "--only", "identity"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.starts_with("FAIL  identity.host-name"))
        .unwrap();
    assert!(lines[failed].contains("plant7 is not in /etc/hosts"), "{stdout}");
    let next = lines[failed + 1];
    let column = lines[failed].find("plant7").unwrap();
    assert_eq!(next.find("next:"), Some(column), "aligned under the finding:\n{stdout}");
    assert!(
        next.contains(&format!(
            "edge-setup --root {} check --fix --only identity",
            img.root().display()
        )),
        "{next}"
    );
    assert!(
        stderr.contains("1 failed") && stderr.contains("identity.host-name"),
        "{stderr}"
    );
    assert!(!stdout.contains('\x1b') && !stderr.contains('\x1b'));
}

#[test]
#[ignore = "needs root"]
fn password_files_are_checked_and_fixed_as_their_users() {
    assert!(common::is_root(), "run as root: the users' files belong to them");
    let img = vnc_image();
    let secret = edge_setup::vnc_user::password::encode("admin123", None);
    // admin's is readable by others; operator's a copy root made
    let admin = password_file(&img, "admin", 1000, &secret, 0o644);
    let operator = password_file(&img, "operator", 1001, &secret, 0o600);
    std::os::unix::fs::chown(img.path(&operator), Some(0), Some(0)).unwrap();
    let (ok, v) = check(&img, &["--only", "vnc"]);
    assert!(!ok);
    let a = entry(&v, "vnc.password-file", Some("admin"));
    assert_eq!(a["status"], "fail");
    assert!(a["finding"].as_str().unwrap().contains("mode 0644"), "{a}");
    assert_eq!(a["fixable"], true);
    let o = entry(&v, "vnc.password-file", Some("operator"));
    assert!(o["finding"].as_str().unwrap().contains("belongs to root"), "{o}");
    assert_eq!(o["fixable"], true);

    // a dry run plans the two rewrites and changes nothing
    let before = img.snapshot();
    let (_, v) = check(&img, &["--only", "vnc", "--fix", "--dry-run"]);
    assert_eq!(img.snapshot(), before);
    let planned: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["path"].as_str())
        .collect();
    for file in [&admin, &operator] {
        let host = img.path(file).display().to_string();
        assert!(planned.contains(&host.as_str()), "{host} not planned: {v}");
    }

    let (ok, v) = check(&img, &["--only", "vnc", "--fix"]);
    assert!(ok, "{v}");
    for (file, uid) in [(&admin, 1000), (&operator, 1001)] {
        assert_eq!(img.mode(file) & 0o7777, 0o600, "{file}");
        assert_eq!(img.owner(file), (uid, uid), "{file}");
        assert_eq!(img.read_bytes(file).unwrap(), secret.to_vec(), "the same password");
    }
    assert_eq!(status(&v, "vnc.password-file", Some("admin")), "ok");
    assert_eq!(v["changed"], true);
    // a second run has nothing to fix
    let (ok, v) = check(&img, &["--only", "vnc", "--fix"]);
    assert!(ok && v["changed"] == false, "{v}");
}

#[test]
#[ignore = "needs root"]
fn what_fix_cannot_repair_keeps_its_next_command() {
    assert!(common::is_root(), "run as root: the users' files belong to them");
    let img = vnc_image();
    password_file(&img, "admin", 1000, b"short", 0o600);
    let (ok, v) = check(&img, &["--only", "vnc", "--fix"]);
    assert!(!ok);
    let a = entry(&v, "vnc.password-file", Some("admin"));
    assert!(a["finding"].as_str().unwrap().contains("5 bytes"), "{a}");
    assert_eq!(a["fixable"], false);
    assert!(a["next"].as_str().unwrap().contains("vnc-user --user admin"), "{a}");
    // operator has none at all
    let o = entry(&v, "vnc.password-file", Some("operator"));
    assert!(o["finding"].as_str().unwrap().contains("is missing"), "{o}");
    assert_eq!(img.read_bytes("/home/admin/.vnc/passwd").unwrap(), b"short");
}

#[test]
fn the_hosts_line_and_the_sudoers_rule_are_put_back() {
    let img = vnc_image();
    img.write("/etc/hosts", "127.0.0.1\tlocalhost\n");
    // the package's binary is in the image; the rule names one that is gone
    img.write("/usr/bin/edge-setup", "");
    let stale = edge_setup::tigervnc::sudoers_rule(&["/opt/old/edge-setup".into()]);
    img.write(SUDOERS, &stale);
    std::fs::set_permissions(img.path(SUDOERS), std::fs::Permissions::from_mode(0o440)).unwrap();
    let (ok, v) = check(&img, &["--only", "edge-setup,identity"]);
    assert!(!ok);
    let s = entry(&v, "edge-setup.sudoers", None);
    assert!(
        s["finding"]
            .as_str()
            .unwrap()
            .contains("/opt/old/edge-setup, which does not exist"),
        "{s}"
    );
    assert_eq!(s["fixable"], true);
    assert_eq!(status(&v, "identity.host-name", None), "fail");

    let (ok, v) = check(&img, &["--only", "edge-setup,identity", "--fix"]);
    assert!(ok, "{v}");
    assert!(img.read("/etc/hosts").unwrap().contains("plant7"));
    let rule = img.read(SUDOERS).unwrap();
    assert!(
        rule.contains("/usr/bin/edge-setup") && !rule.contains("/opt/old"),
        "{rule}"
    );
    assert_eq!(status(&v, "edge-setup.sudoers", None), "ok");
}

#[test]
fn mapping_files_that_contradict_fail_and_one_sided_entries_warn() {
    let img = vnc_image();
    img.write(USERS, ":1=admin\n");
    let (_, v) = check(&img, &["--only", "vnc"]);
    assert_eq!(status(&v, "vnc.mappings", None), "warn");
    img.write(USERS, ":1=operator\n:2=admin\n");
    let (ok, v) = check(&img, &["--only", "vnc"]);
    assert!(!ok);
    let m = entry(&v, "vnc.mappings", None);
    assert_eq!(m["status"], "fail");
    assert!(m["finding"].as_str().unwrap().contains("disagree"), "{m}");
}

#[test]
fn a_certificate_close_to_expiry_warns_and_a_foreign_key_fails() {
    let img = Image::debian();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["edge.example.com".to_string()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(300);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    let cert = params.self_signed(&key).unwrap().pem();
    img.write("/etc/edge-setup/ssl/edge.example.com.crt", &cert);
    img.write("/etc/edge-setup/ssl/edge.example.com.key", &key.serialize_pem());
    img.write(
        "/var/lib/edge-setup/post-install.json",
        r#"{"tenant_domain": "edge.example.com", "tenant_username": "admin",
            "files": {"certificate": "/etc/edge-setup/ssl/edge.example.com.crt",
                      "key": "/etc/edge-setup/ssl/edge.example.com.key",
                      "licence": "/etc/edge-setup/licence/c8y.licence", "apama_licence": null},
            "completed_at": "2026-01-01T00:00:00Z"}"#,
    );
    let (ok, v) = check(&img, &["--only", "certificates"]);
    assert!(ok, "a warning is not a failure: {v}");
    let e = entry(&v, "certificates.expiry", None);
    assert_eq!(e["status"], "warn");
    assert!(e["finding"].as_str().unwrap().contains("days)"), "{e}");
    assert!(e["next"].as_str().unwrap().contains("setup certificates"), "{e}");
    assert_eq!(status(&v, "certificates.key", None), "ok");
    img.write(
        "/etc/edge-setup/ssl/edge.example.com.key",
        &rcgen::KeyPair::generate().unwrap().serialize_pem(),
    );
    let (ok, v) = check(&img, &["--only", "certificates"]);
    assert!(!ok);
    assert_eq!(status(&v, "certificates.key", None), "fail");
}

#[test]
#[ignore = "needs root"]
fn an_ordinary_user_checks_her_own_vnc_only() {
    assert!(common::is_root(), "run as root: the test switches to another user");
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    // the binary must be reachable by nobody
    let run = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .args(args)
            .current_dir("/")
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let v: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
        v
    };
    let v = run(&["check", "--json"]);
    for c in v["result"]["checks"].as_array().unwrap() {
        assert_eq!(c["area"], "vnc", "{c}");
    }
    assert!(v["notes"].to_string().contains("your own VNC"), "{v}");
    let v = run(&["check", "--only", "tenant", "--json"]);
    let t = entry(&v, "tenant", None);
    assert_eq!(t["status"], "skipped");
    assert!(t["finding"].as_str().unwrap().contains("needs root"), "{t}");
}

// ---- the tenant checks: a live system over a temporary root ------------------------

const DEVICE: &str = "edge-plant7-01";
const MO: &str = "4711";
const CA: &str = "/etc/edge-setup/tenant-ca.pem";
const CREDENTIALS: &str = "/etc/edge-setup/tenant-credentials";

/// A live system's root (temporary) configured for `tenant` with credentials, and its checks.
struct Appliance {
    dir: tempfile::TempDir,
}

impl Appliance {
    fn new(tenant: &Tenant) -> Appliance {
        let a = Appliance {
            dir: tempfile::tempdir().unwrap(),
        };
        a.write("/etc/os-release", common::DEBIAN_12);
        a.write("/usr/edge/properties/edge-agent/device-id", &format!("{DEVICE}\n"));
        a.write(CA, &tenant.ca_pem);
        a.write(
            CREDENTIALS,
            &format!("{}\n{}\n", common::tenant::USER, common::tenant::PASSWORD),
        );
        std::fs::set_permissions(a.path(CREDENTIALS), std::fs::Permissions::from_mode(0o600)).unwrap();
        a.config(&tenant.url());
        a
    }

    fn path(&self, target: &str) -> std::path::PathBuf {
        self.dir.path().join(target.trim_start_matches('/'))
    }

    fn write(&self, target: &str, text: &str) {
        let p = self.path(target);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn config(&self, url: &str) {
        self.write(
            "/etc/edge-setup/edge-setup.toml",
            &format!(
                "[c8y]\nurl = \"{url}\"\nca-file = \"{CA}\"\ncredentials-file = \"{CREDENTIALS}\"\nrequest-timeout = 2\n"
            ),
        );
    }

    fn checks(&self) -> Vec<Check> {
        let (ctx, _) = common::live_ctx(self.dir.path());
        edge_setup::commands::check::run_checks(&ctx, &[Area::Tenant])
    }
}

fn of<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} in {checks:#?}"))
}

#[test]
fn a_reachable_tenant_with_good_credentials_and_a_registered_device_passes() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let a = Appliance::new(&tenant);
    let checks = a.checks();
    for id in [
        "tenant.dns",
        "tenant.tcp",
        "tenant.tls",
        "tenant.clock",
        "tenant.credentials",
        "tenant.registered",
        "tenant.endpoints",
    ] {
        assert_eq!(of(&checks, id).status, Status::Ok, "{:#?}", of(&checks, id));
    }
    assert!(of(&checks, "tenant.registered").finding.contains(MO));
    // nothing was changed in the tenant: reads only
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    assert!(tenant.with(|s| s.violations.clone()).is_empty());
}

#[test]
fn a_clock_off_against_the_tenant_warns_then_fails() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let a = Appliance::new(&tenant);
    tenant.with(|s| s.clock_offset = 120);
    let c = a.checks();
    let clock = of(&c, "tenant.clock");
    assert_eq!(clock.status, Status::Warn, "{clock:#?}");
    assert!(clock.finding.contains("behind"), "{clock:#?}");
    assert!(clock.next.as_deref().unwrap().contains("timedatectl set-ntp true"));
    tenant.with(|s| s.clock_offset = -900);
    let clock = of(&a.checks(), "tenant.clock").clone();
    assert_eq!(clock.status, Status::Fail, "{clock:#?}");
    assert!(clock.finding.contains("ahead of"), "{clock:#?}");
}

#[test]
fn a_missing_ca_fails_tls_and_names_the_key_that_gives_it() {
    let tenant = Tenant::start();
    let a = Appliance::new(&tenant);
    a.write(
        "/etc/edge-setup/edge-setup.toml",
        &format!("[c8y]\nurl = \"{}\"\nrequest-timeout = 2\n", tenant.url()),
    );
    let c = a.checks();
    assert_eq!(of(&c, "tenant.tcp").status, Status::Ok);
    let tls = of(&c, "tenant.tls");
    assert_eq!(tls.status, Status::Fail, "{tls:#?}");
    assert!(tls.next.as_deref().unwrap().contains("c8y.ca-file"), "{tls:#?}");
    assert_eq!(of(&c, "tenant.clock").status, Status::Skipped);
}

#[test]
fn an_unknown_host_or_a_closed_port_stops_at_that_step() {
    let tenant = Tenant::start();
    let a = Appliance::new(&tenant);
    a.config("https://edge-setup-test.invalid");
    let c = a.checks();
    assert_eq!(of(&c, "tenant.dns").status, Status::Fail);
    assert_eq!(of(&c, "tenant.tcp").status, Status::Skipped);
    // a port nothing listens on
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    a.config(&format!("https://127.0.0.1:{port}"));
    let c = a.checks();
    assert_eq!(of(&c, "tenant.dns").status, Status::Ok);
    let tcp = of(&c, "tenant.tcp");
    assert_eq!(tcp.status, Status::Fail, "{tcp:#?}");
    assert!(tcp.finding.contains(&port.to_string()));
    assert_eq!(of(&c, "tenant.tls").status, Status::Skipped);
}

#[test]
fn a_tenant_that_does_not_answer_is_given_up_after_the_request_timeout() {
    let tenant = Tenant::start();
    let a = Appliance::new(&tenant);
    tenant.with(|s| s.hang = true);
    let started = Instant::now();
    let c = a.checks();
    let took = started.elapsed();
    let tls = of(&c, "tenant.tls");
    assert_eq!(tls.status, Status::Fail, "{tls:#?}");
    assert!(tls.finding.contains("within 2 s"), "{tls:#?}");
    // one bounded request fails; the credential checks stop there too
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn refused_credentials_and_an_unregistered_device_name_their_fix() {
    let tenant = Tenant::start();
    let a = Appliance::new(&tenant);
    let c = a.checks();
    let r = of(&c, "tenant.registered");
    assert_eq!(r.status, Status::Fail, "{r:#?}");
    assert!(
        r.next.as_deref().unwrap().contains("register --accept --wait"),
        "{r:#?}"
    );
    a.write(CREDENTIALS, "t100/admin\nwrong-password\n");
    let c = a.checks();
    let cred = of(&c, "tenant.credentials");
    assert_eq!(cred.status, Status::Fail, "{cred:#?}");
    assert!(cred.finding.contains("401"), "{cred:#?}");
    assert!(!format!("{c:?}").contains("wrong-password"), "no secret in a finding");
    assert_eq!(of(&c, "tenant.registered").status, Status::Skipped);
}

// ---- each remaining check, on an image root or a live system over a temporary root ----

#[test]
fn a_configuration_that_does_not_parse_or_holds_a_bad_value_fails_naming_it() {
    let img = Image::debian();
    img.write("/etc/edge-setup/edge-setup.toml", "[vnc]\ngeometry = \"huge\"\n");
    let (ok, v) = check(&img, &["--only", "edge-setup"]);
    assert!(!ok);
    let c = entry(&v, "edge-setup.config", None);
    assert!(c["finding"].as_str().unwrap().contains("vnc.geometry"), "{c}");
    assert!(c["next"].as_str().unwrap().contains("config list --doc"), "{c}");
    img.write("/etc/edge-setup/edge-setup.toml", "[vnc\n");
    let (ok, v) = check(&img, &["--only", "edge-setup"]);
    assert!(!ok);
    let c = entry(&v, "edge-setup.config", None);
    assert_eq!(c["status"], "fail");
    assert!(c["finding"].as_str().unwrap().contains("edge-setup.toml"), "{c}");
}

#[test]
fn the_first_boot_is_ok_when_done_or_not_needed_and_fails_with_its_error() {
    let img = Image::debian();
    let (_, v) = check(&img, &["--only", "edge-setup"]);
    assert!(
        entry(&v, "edge-setup.first-boot", None)["finding"]
            .as_str()
            .unwrap()
            .contains("not needed")
    );
    img.write(
        "/var/lib/edge-setup/first-boot.failed",
        r#"{"failed_at": "2026-12-01T10:00:00Z", "attempts": 2, "error": "no DNS server", "hint": "set one"}"#,
    );
    let (ok, v) = check(&img, &["--only", "edge-setup"]);
    assert!(!ok);
    let c = entry(&v, "edge-setup.first-boot", None);
    assert!(c["finding"].as_str().unwrap().contains("no DNS server"), "{c}");
    img.write(
        "/var/lib/edge-setup/first-boot.done",
        r#"{"completed_at": "2026-12-01T11:00:00Z", "device_id": "x", "answers": []}"#,
    );
    let (_, v) = check(&img, &["--only", "edge-setup"]);
    let c = entry(&v, "edge-setup.first-boot", None);
    assert_eq!(c["status"], "ok", "{c}");
    assert!(c["finding"].as_str().unwrap().contains("2026-12-01T11:00:00Z"), "{c}");
}

#[test]
fn an_invalid_device_id_fails_and_names_device_id_set() {
    let img = Image::debian();
    img.write("/usr/edge/properties/edge-agent/device-id", "not valid!\n");
    let (ok, v) = check(&img, &["--only", "identity"]);
    assert!(!ok);
    let c = entry(&v, "identity.device-id", None);
    assert!(c["next"].as_str().unwrap().contains("device-id set"), "{c}");
}

#[test]
fn the_agent_checks_read_its_properties_and_unit() {
    let img = Image::debian();
    img.write(
        "/etc/edge-setup/edge-setup.toml",
        "[c8y]\nurl = \"https://new.example.com\"\n",
    );
    img.write(
        "/usr/edge/properties/edge-agent/remote-connectivity.properties",
        "enabled=true\nurl=https://old.example.com\n",
    );
    let (ok, v) = check(&img, &["--only", "agent"]);
    assert!(!ok, "the agent's unit is not installed: {v}");
    assert!(
        entry(&v, "agent.url", None)["finding"]
            .as_str()
            .unwrap()
            .contains("old.example.com")
    );
    let s = entry(&v, "agent.service", None);
    assert_eq!(s["status"], "fail");
    assert!(s["finding"].as_str().unwrap().contains("not installed"), "{s}");
    let p = entry(&v, "agent.properties", None);
    assert_eq!(p["status"], "warn");
    assert!(p["finding"].as_str().unwrap().contains("new.example.com"), "{p}");
    assert!(
        p["next"].as_str().unwrap().contains("remote-connectivity enable"),
        "{p}"
    );
    img.write(
        "/usr/lib/systemd/system/edge-agent.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    img.write(
        "/usr/edge/properties/edge-agent/remote-connectivity.properties",
        "enabled=maybe\n",
    );
    let (ok, v) = check(&img, &["--only", "agent"]);
    assert!(!ok);
    assert_eq!(
        status(&v, "agent.service", None),
        "skipped",
        "a damaged file enables nothing"
    );
    let p = entry(&v, "agent.properties", None);
    assert_eq!(p["status"], "fail");
    assert!(
        p["finding"]
            .as_str()
            .unwrap()
            .contains("remote-connectivity.properties"),
        "{p}"
    );
}

#[test]
fn a_user_in_the_mappings_who_does_not_exist_fails() {
    let img = vnc_image();
    img.write(MAPPING, "admin:1\noperator:2\nghost:3\n");
    img.write(USERS, ":1=admin\n:2=operator\n:3=ghost\n");
    let (ok, v) = check(&img, &["--only", "vnc"]);
    assert!(!ok);
    let c = entry(&v, "vnc.display", Some("ghost"));
    assert!(
        c["next"].as_str().unwrap().contains("vnc-user --remove --user ghost"),
        "{c}"
    );
}

#[test]
fn a_lan_session_needs_its_port_in_the_recorded_firewall_rule() {
    let img = vnc_image();
    img.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
    img.write(MAPPING, "admin:1\noperator:5\n");
    img.write(USERS, ":1=admin\n:5=operator\n");
    img.write(
        edge_setup::tigervnc::INSTALL_RECORD,
        "{\"hosts_line\": \"127.0.1.1\\tplant7\", \"firewall\": {\"backend\": \"ufw\", \"last_port\": 5903}}\n",
    );
    let (ok, v) = check(&img, &["--only", "vnc"]);
    assert!(!ok);
    let c = entry(&v, "vnc.firewall", None);
    assert!(c["finding"].as_str().unwrap().contains("5905"), "{c}");
    assert!(c["next"].as_str().unwrap().contains("edge-setup --root"), "{c}");
}

/// Live checks over a temporary root: the machine ID, the locks, the disk.
#[test]
fn live_identity_locks_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _) = common::live_ctx(dir.path());
    std::fs::write(dir.path().join("etc/machine-id"), "uninitialized\n").unwrap();
    std::fs::create_dir_all(dir.path().join("etc/edge-setup")).unwrap();
    std::fs::write(
        dir.path().join("etc/edge-setup/edge-setup.toml"),
        "[disk]\ndata-mount = \"/etc\"\n",
    )
    .unwrap();
    // this process holds the configuration's lock, as a run in progress would
    let lock = std::fs::File::create(dir.path().join("etc/edge-setup/.edge-setup.toml.lock")).unwrap();
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let checks = edge_setup::commands::check::run_checks(&ctx, &[Area::EdgeSetup, Area::Identity, Area::Disk]);
    let machine = of(&checks, "identity.machine-id");
    assert_eq!(machine.status, Status::Fail, "{machine:#?}");
    assert!(machine.next.as_deref().unwrap().contains("systemd-machine-id-setup"));
    let locks = of(&checks, "edge-setup.locks");
    assert_eq!(locks.status, Status::Ok, "{locks:#?}");
    assert!(locks.finding.contains(&std::process::id().to_string()), "{locks:#?}");
    assert_eq!(of(&checks, "identity.device-id").status, Status::Fail);
    for id in ["disk.root", "disk.data"] {
        let d = of(&checks, id);
        assert!(d.finding.contains("free of") && d.status != Status::Fail, "{d:#?}");
    }
}

#[test]
fn live_a_vnc_set_up_without_tigervnc_fails_its_packages() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, _) = common::live_ctx(dir.path());
    std::fs::write(dir.path().join("etc/os-release"), common::DEBIAN_12).unwrap();
    let record = dir
        .path()
        .join(edge_setup::tigervnc::INSTALL_RECORD.trim_start_matches('/'));
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    std::fs::write(record, "{}\n").unwrap();
    let checks = edge_setup::commands::check::run_checks(&ctx, &[Area::Vnc]);
    let p = of(&checks, "vnc.packages");
    assert_eq!(p.status, Status::Fail, "{p:#?}");
    assert_eq!(p.next.as_deref(), Some("sudo edge-setup vnc"));
}

/// An endpoint edge-setup made for a user who no longer has a display: `tenant.endpoints`
/// finds it left over without a change sent; `--fix` deletes it (remote-access sync),
/// and then the endpoints match.
#[test]
fn endpoints_that_differ_are_found_without_a_change_and_synced_by_the_fix() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let a = Appliance::new(&tenant);
    let id = tenant.add_foreign(
        MO,
        serde_json::json!({"name": "VNC gone (:7)", "hostname": "127.0.0.1", "port": 5907,
                           "protocol": "VNC", "credentialsType": "PASS_ONLY", "password": "gone1234"}),
    );
    a.write(
        "/var/lib/edge-setup/remote-access.json",
        &serde_json::json!({"tenant": tenant.url(), "device": MO, "salt": "00",
                            "endpoints": [{"id": id, "protocol": "VNC", "user": "gone", "digest": "x"}]})
        .to_string(),
    );
    let c = a.checks();
    let e = of(&c, "tenant.endpoints");
    assert_eq!(e.status, Status::Fail, "{e:#?}");
    assert!(e.finding.contains("VNC gone (:7) (left over)"), "{e:#?}");
    assert!(e.fix.is_some() && e.next.as_deref().unwrap().contains("check --fix --only tenant"));
    assert!(tenant.changes().is_empty(), "the check sent {:?}", tenant.changes());

    let (ctx, _) = common::live_ctx(a.dir.path());
    let fixes = vec![(e.name(), e.fix.clone().unwrap())];
    assert_eq!(edge_setup::check::fix::apply(&ctx.sys, &fixes), 1);
    assert_eq!(
        tenant.changes(),
        [format!("DELETE /service/remoteaccess/devices/{MO}/configurations/{id}")]
    );
    assert_eq!(of(&a.checks(), "tenant.endpoints").status, Status::Ok);
}
