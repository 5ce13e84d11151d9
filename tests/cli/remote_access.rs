//! `edge-setup register` and `edge-setup remote-access` against a tenant on
//! loopback (tests/cli/common/tenant.rs), in image roots. The users' files belong
//! to them, so these tests need root (as CI has).

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::Image;
use common::proxy::Proxy;
use common::tenant::{CA, PASSWORD, TOKEN, Tenant, USER};
use serde_json::{Value, json};

const DEVICE: &str = "edge-plant7-01";
const MO: &str = "4711";
const RECORD: &str = "/var/lib/edge-setup/remote-access.json";

fn hex_passwd(password: &str) -> Vec<u8> {
    edge_setup::vnc_user::password::encode(password, None).to_vec()
}

/// An appliance with two VNC users (admin :1, operator :2) and their password
/// files, a device ID, and the tenant's URL and CA configured.
fn appliance(tenant: &Tenant) -> Image {
    let img = tenant.appliance(DEVICE).with_vnc_set_up();
    img.write("/opt/c8y/utilities/vnc-display-mapping", "admin:1\noperator:2\n");
    img.write("/etc/tigervnc/vncserver.users", ":1=admin\n:2=operator\n");
    for (user, uid, password) in [("admin", 1000, "admin123"), ("operator", 1001, "oper4567")] {
        set_password(&img, user, uid, password);
    }
    img
}

/// An SSH server's host key and configuration, for `remote-access ssh`.
fn with_sshd(img: &Image) {
    img.write(
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOSTKEY root@edge\n",
    );
    img.write("/etc/ssh/sshd_config", "\n");
}

fn set_password(img: &Image, user: &str, uid: u32, password: &str) {
    let home = img.path(&format!("/home/{user}"));
    let dir = home.join(".vnc");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("passwd");
    std::fs::write(&file, hex_passwd(password)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [&home, &dir, &file] {
        std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
    }
}

const CREDENTIALS: &str = "t100/admin\nTenant:Pass#1\n";

/// `edge-setup --root IMG ARGS --credentials-stdin --json`, its JSON object.
fn run_json(img: &Image, args: &[&str]) -> (bool, Value, String) {
    run_json_with(img, args, &[])
}

/// `run_json` with these variables in the caller's environment.
fn run_json_with(img: &Image, args: &[&str], env: &[(&str, &str)]) -> (bool, Value, String) {
    let out = img
        .cmd()
        .envs(env.iter().copied())
        .args(args)
        .args(["--credentials-stdin", "--json"])
        .write_stdin(CREDENTIALS)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    // no secret in what edge-setup prints
    for secret in [PASSWORD, "admin123", "oper4567", "newpass9"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown:\n{stdout}\n{stderr}"
        );
    }
    (out.status.success(), v, stderr)
}

/// A run that must fail: its error's `what` and `next`, to look for words in.
struct Failed {
    what: String,
    why: String,
    next: String,
}

fn failure(img: &Image, args: &[&str]) -> Failed {
    failure_with(img, args, &[])
}

fn failure_with(img: &Image, args: &[&str], env: &[(&str, &str)]) -> Failed {
    let (ok, v, _) = run_json_with(img, args, env);
    assert!(!ok, "{args:?} succeeded: {v}");
    let text = |k: &str| v["error"][k].as_str().unwrap_or_default().to_string();
    Failed {
        what: text("what"),
        why: text("why"),
        next: text("next"),
    }
}

fn by_name<'a>(endpoints: &'a [Value], name: &str) -> &'a Value {
    endpoints
        .iter()
        .find(|e| e["name"] == json!(name))
        .unwrap_or_else(|| panic!("no endpoint {name} in {endpoints:?}"))
}

#[test]
#[ignore = "needs root"]
fn the_first_sync_creates_one_endpoint_per_user_and_the_second_changes_nothing() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{err}");
    assert_eq!(
        tenant.changes(),
        [
            format!("POST /service/remoteaccess/devices/{MO}/configurations"),
            format!("POST /service/remoteaccess/devices/{MO}/configurations"),
        ]
    );
    let stored = tenant.endpoints(MO);
    let admin = by_name(&stored, "VNC admin (:1)");
    assert_eq!(admin["hostname"], "127.0.0.1");
    assert_eq!(admin["port"], 5901);
    assert_eq!(admin["protocol"], "VNC");
    assert_eq!(admin["credentialsType"], "PASS_ONLY");
    assert_eq!(admin["password"], "admin123");
    assert_eq!(by_name(&stored, "VNC operator (:2)")["password"], "oper4567");
    let actions: Vec<&str> = v["result"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "created"]);
    assert_eq!(img.mode(RECORD), 0o600);
    let record = img.read(RECORD).unwrap();
    assert!(!record.contains("admin123"), "{record}");
    // every request authenticated and well-formed
    assert!(
        tenant.with(|s| s.violations.is_empty()),
        "{:?}",
        tenant.with(|s| s.violations.clone())
    );
    let auth = tenant.with(|s| s.log[0].headers["authorization"].clone());
    assert!(auth.starts_with("Basic "), "{auth}");

    tenant.clear_log();
    let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{err}");
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    assert_eq!(v["changed"], false, "{v}");
    let actions: Vec<&str> = v["result"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged", "unchanged"]);
    let plain = img
        .cmd()
        .args(["remote-access", "sync", "--credentials-stdin"])
        .write_stdin(CREDENTIALS)
        .assert()
        .success();
    let stderr = String::from_utf8(plain.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("Nothing to change."), "{stderr}");
}

#[test]
#[ignore = "needs root"]
fn a_password_change_updates_only_that_users_endpoint() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    assert!(run_json(&img, &["remote-access", "sync"]).0);
    let operator_before = by_name(&tenant.endpoints(MO), "VNC operator (:2)").clone();
    let admin_id = by_name(&tenant.endpoints(MO), "VNC admin (:1)")["id"]
        .as_str()
        .unwrap()
        .to_string();
    set_password(&img, "admin", 1000, "newpass9");
    tenant.clear_log();
    let (ok, _, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{err}");
    assert_eq!(
        tenant.changes(),
        [format!(
            "PUT /service/remoteaccess/devices/{MO}/configurations/{admin_id}"
        )]
    );
    assert_eq!(by_name(&tenant.endpoints(MO), "VNC admin (:1)")["password"], "newpass9");
    assert_eq!(by_name(&tenant.endpoints(MO), "VNC operator (:2)"), &operator_before);
    // an endpoint edited in the tenant is put back
    tenant.with(|s| {
        s.endpoints.get_mut(MO).unwrap().iter_mut().for_each(|e| {
            if e["name"] == "VNC operator (:2)" {
                e["port"] = json!(5999);
            }
        })
    });
    tenant.clear_log();
    assert!(run_json(&img, &["remote-access", "sync"]).0);
    assert_eq!(tenant.changes().len(), 1, "{:?}", tenant.changes());
    assert_eq!(by_name(&tenant.endpoints(MO), "VNC operator (:2)")["port"], 5902);
}

#[test]
#[ignore = "needs root"]
fn a_removed_users_endpoint_is_deleted_and_foreign_endpoints_are_kept() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let foreign = tenant.add_foreign(
        MO,
        json!({"name": "VNC operator (:2)", "hostname": "10.0.0.9", "port": 5902, "protocol": "VNC",
               "credentialsType": "NONE"}),
    );
    let ssh = tenant.add_foreign(
        MO,
        json!({"name": "Maintenance SSH", "hostname": "127.0.0.1", "port": 22, "protocol": "SSH",
               "credentialsType": "USER_PASS", "username": "svc", "password": "x"}),
    );
    let hand_made = tenant.add_foreign(
        MO,
        json!({"name": "admin's desktop", "hostname": "127.0.0.1", "port": 5901, "protocol": "VNC",
               "credentialsType": "PASS_ONLY", "password": "oldpass1"}),
    );
    let (ok, v, _) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok);
    let warned = v["warnings"].to_string();
    assert!(
        warned.contains("admin's desktop") && warned.contains(&format!("id {hand_made}")),
        "{v}"
    );
    assert!(
        !warned.contains(&format!("id {foreign}")),
        "another address is not the same session: {v}"
    );
    let operator_id = tenant
        .endpoints(MO)
        .iter()
        .find(|e| e["name"] == "VNC operator (:2)" && e["hostname"] == "127.0.0.1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    img.write("/opt/c8y/utilities/vnc-display-mapping", "admin:1\n");
    img.write("/etc/tigervnc/vncserver.users", ":1=admin\n");
    tenant.clear_log();
    let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{err}");
    assert_eq!(
        tenant.changes(),
        [format!(
            "DELETE /service/remoteaccess/devices/{MO}/configurations/{operator_id}"
        )]
    );
    let ids: Vec<String> = tenant
        .endpoints(MO)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&foreign) && ids.contains(&ssh) && ids.contains(&hand_made),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 4, "{ids:?}");
    // list marks edge-setup's own
    let (ok, v2, _) = run_json(&img, &["remote-access", "list"]);
    assert!(ok);
    let listed = v2["result"]["endpoints"].as_array().unwrap();
    let mine: Vec<bool> = listed
        .iter()
        .map(|e| e["managed_by_edge_setup"].as_bool().unwrap())
        .collect();
    assert_eq!(mine.iter().filter(|m| **m).count(), 1, "{listed:?}");
    assert!(listed.iter().all(|e| e.get("password").is_none()));
    assert!(v["result"]["endpoints"].to_string().contains("deleted"), "{v}");
}

#[test]
#[ignore = "needs root"]
fn a_dry_run_lists_the_requests_and_sends_none() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let before = img.snapshot();
    let (ok, v, err) = run_json(&img, &["remote-access", "sync", "--dry-run"]);
    assert!(ok, "{err}");
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    assert_eq!(img.snapshot(), before);
    let changes = v["changes"].as_array().unwrap();
    let sent: Vec<&str> = changes.iter().filter_map(|c| c["request"].as_str()).collect();
    assert_eq!(sent.len(), 2, "{v}");
    assert!(
        sent[0].starts_with("POST /service/remoteaccess/devices/4711/configurations"),
        "{v}"
    );
    assert!(err.contains("would send POST"), "{err}");
}

#[test]
#[ignore = "needs root"]
fn tenant_failures_are_clear_and_change_no_file() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let before = img.snapshot();
    let cases: [(Option<u16>, bool, &str); 5] = [
        (Some(401), false, "refused the credentials"),
        (Some(403), false, "ROLE_"),
        (Some(500), false, "failed to answer"),
        (Some(503), false, "wait a while"),
        (None, true, "did not answer"),
    ];
    for (fail, hang, says) in cases {
        tenant.with(|s| {
            s.fail = fail;
            s.hang = hang;
        });
        let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
        assert!(!ok, "{fail:?}");
        let text = format!("{} {}", v["error"]["what"], v["error"]["next"]);
        assert!(
            text.contains(says) || err.contains(says),
            "{fail:?} {hang}: {text}\n{err}"
        );
        assert_eq!(v["error"]["exit"], 1);
        assert_eq!(img.snapshot(), before, "{fail:?}: files changed");
    }
    tenant.with(|s| {
        s.fail = None;
        s.hang = false;
    });
    // a redirect is not followed: the credentials would go elsewhere
    tenant.with(|s| s.redirect = Some("https://login.example.net/".into()));
    tenant.clear_log();
    let e = failure(&img, &["remote-access", "sync"]);
    assert!(
        e.what.contains("redirect (301) to https://login.example.net/"),
        "{}",
        e.what
    );
    assert_eq!(tenant.requests().len(), 1, "one request, not followed");
    tenant.with(|s| s.redirect = None);
    // wrong credentials
    let out = img
        .cmd()
        .args(["remote-access", "sync", "--credentials-stdin"])
        .write_stdin("t100/admin\nwrong-password\n")
        .assert()
        .code(1);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("refused the credentials of t100/admin (401"), "{err}");
    assert!(!err.contains("wrong-password"));
    // a device the tenant does not know
    let other = appliance(&tenant);
    other.write("/usr/edge/properties/edge-agent/device-id", "edge-unknown\n");
    let e = failure(&other, &["remote-access", "sync"]);
    assert!(e.next.contains("register"), "{}", e.next);
    assert_eq!(img.snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn the_tenant_certificate_must_be_trusted() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    img.write(
        "/etc/edge-setup/edge-setup.toml",
        &format!("[c8y]\nurl = \"{}\"\n", tenant.url()),
    );
    let e = failure(&img, &["remote-access", "list"]);
    assert!(e.what.contains("TLS"), "{}", e.what);
    assert!(e.next.contains("c8y.ca-file"), "{}", e.next);
    assert!(tenant.requests().is_empty());
}

#[test]
#[ignore = "needs root"]
fn a_ca_file_a_user_can_change_is_refused_before_any_request() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    // the tenant's own CA, but in a file anyone may rewrite, then in a user's directory
    let img = appliance(&tenant);
    let file = img.path(CA);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = img.snapshot();
    let e = failure(&img, &["remote-access", "list"]);
    assert!(
        e.what.contains("refusing the CA file") && e.what.contains("c8y.ca-file"),
        "{}",
        e.what
    );
    assert!(e.why.contains("group or others may change it"), "{}", e.why);
    assert!(e.next.contains("install -m 0644 -o root -g root"), "{}", e.next);
    assert!(tenant.requests().is_empty());
    assert_eq!(img.snapshot(), before);

    let img = appliance(&tenant);
    let mallory = "/home/mallory/myca.pem";
    img.write(mallory, &tenant.ca_pem);
    std::os::unix::fs::chown(img.path("/home/mallory"), Some(1002), Some(1002)).unwrap();
    img.write(
        "/etc/edge-setup/edge-setup.toml",
        &format!("[c8y]\nurl = \"{}\"\nca-file = \"{mallory}\"\n", tenant.url()),
    );
    let e = failure(&img, &["remote-access", "list"]);
    assert!(e.what.contains(mallory), "{}", e.what);
    assert!(e.why.contains("uid 1002"), "{}", e.why);
    assert!(tenant.requests().is_empty());
}

#[test]
#[ignore = "needs root"]
fn root_takes_neither_trust_nor_route_from_a_sudo_callers_environment() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let proxy = Proxy::start();
    let img = appliance(&tenant);
    // no c8y.ca-file: only the caller's SSL_CERT_FILE would make the tenant trusted
    img.write(
        "/etc/edge-setup/edge-setup.toml",
        &format!("[c8y]\nurl = \"{}\"\nrequest-timeout = 3\n", tenant.url()),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("mallory-ca.pem");
    std::fs::write(&ca, &tenant.ca_pem).unwrap();
    let (ca, url) = (ca.to_str().unwrap(), proxy.url());
    let hostile = [
        ("SSL_CERT_FILE", ca),
        ("SSL_CERT_DIR", dir.path().to_str().unwrap()),
        ("https_proxy", url.as_str()),
        ("HTTPS_PROXY", url.as_str()),
        ("ALL_PROXY", url.as_str()),
    ];
    // a vncusers member's variables, passed on by a site's env_keep: her CA is not
    // trusted and her proxy never sees a connection
    let sudo = [&hostile[..], &[("SUDO_UID", "1000"), ("SUDO_USER", "admin")]].concat();
    let e = failure_with(&img, &["remote-access", "list"], &sudo);
    assert!(e.what.contains("TLS"), "{}", e.what);
    assert!(e.why.contains("UnknownIssuer"), "{}", e.why);
    assert_eq!(proxy.log(), Vec::<String>::new());

    // root itself: its proxy is used, its SSL_CERT_FILE still is not
    let e = failure_with(&img, &["remote-access", "list"], &hostile);
    assert!(e.what.contains("TLS"), "{}", e.what);
    let connect = format!("CONNECT localhost:{} HTTP/1.1", tenant.port);
    assert_eq!(proxy.log(), std::slice::from_ref(&connect));

    // the proxy root configured carries a sudo caller's requests, with the CA root configured
    img.write(CA, &tenant.ca_pem);
    img.write(
        "/etc/edge-setup/edge-setup.toml",
        &format!(
            "[c8y]\nurl = \"{}\"\nca-file = \"{CA}\"\nproxy = \"{url}\"\nrequest-timeout = 3\n",
            tenant.url()
        ),
    );
    let other = Proxy::start();
    let theirs = other.url();
    let sudo = [
        ("SUDO_UID", "1000"),
        ("https_proxy", theirs.as_str()),
        ("ALL_PROXY", theirs.as_str()),
    ];
    let (ok, v, err) = run_json_with(&img, &["remote-access", "list"], &sudo);
    assert!(ok, "{v}\n{err}");
    assert!(
        proxy.log().len() > 1 && proxy.log().iter().all(|l| *l == connect),
        "{:?}",
        proxy.log()
    );
    assert_eq!(other.log(), Vec::<String>::new());
    assert!(!tenant.requests().is_empty());
}

#[test]
#[ignore = "needs root"]
fn credentials_come_from_a_private_root_file_or_a_token() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("creds");
    std::fs::write(&file, format!("{USER}\n{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = img
        .cmd()
        .args(["remote-access", "list", "--credentials"])
        .arg(&file)
        .assert()
        .code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("mode 0644") && err.contains("chmod 600"), "{err}");
    assert!(tenant.requests().is_empty(), "nothing is sent with a refused file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    img.cmd()
        .args(["remote-access", "list", "--credentials"])
        .arg(&file)
        .assert()
        .success();
    // the configured file, holding a token
    img.write("/etc/edge-setup/token", &format!("Bearer {TOKEN}\n"));
    std::fs::set_permissions(
        img.path("/etc/edge-setup/token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    img.cmd()
        .args(["config", "set", "c8y.credentials-file", "/etc/edge-setup/token"])
        .assert()
        .success();
    tenant.clear_log();
    img.cmd().args(["remote-access", "list"]).assert().success();
    let auth = tenant.with(|s| s.log[0].headers["authorization"].clone());
    assert_eq!(auth, format!("Bearer {TOKEN}"));
    // none at all
    img.cmd()
        .args(["config", "unset", "c8y.credentials-file"])
        .assert()
        .success();
    let out = img.cmd().args(["remote-access", "list"]).assert().code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("--credentials-stdin"), "{err}");
    // never on the command line
    img.cmd()
        .args(["remote-access", "list", "--password", PASSWORD])
        .assert()
        .code(2);
}

#[test]
#[ignore = "needs root"]
fn register_requests_accepts_and_waits_then_changes_nothing() {
    let tenant = Tenant::start();
    tenant.with(|s| {
        s.connect_after = Some(2);
        s.register_on_accept = true;
    });
    let img = appliance(&tenant);
    let (ok, v, err) = run_json(&img, &["register", "--accept", "--wait", "--timeout", "60"]);
    assert!(ok, "{err}\n{v}");
    assert_eq!(v["result"]["status"], "ACCEPTED", "{v}");
    assert_eq!(v["result"]["device_id"], DEVICE);
    assert_eq!(
        tenant.changes(),
        [
            "POST /devicecontrol/newDeviceRequests".to_string(),
            format!("PUT /devicecontrol/newDeviceRequests/{DEVICE}"),
        ]
    );
    let post = tenant.with(|s| s.log.iter().find(|r| r.method == "POST").unwrap().body.clone());
    assert_eq!(serde_json::from_slice::<Value>(&post).unwrap(), json!({"id": DEVICE}));
    let put = tenant.with(|s| s.log.iter().find(|r| r.method == "PUT").unwrap().body.clone());
    assert_eq!(
        serde_json::from_slice::<Value>(&put).unwrap(),
        json!({"status": "ACCEPTED"})
    );
    assert!(
        tenant.with(|s| s.violations.is_empty()),
        "{:?}",
        tenant.with(|s| s.violations.clone())
    );
    tenant.clear_log();
    // the agent has fetched its credentials meanwhile (at the next request)
    let (ok, v, _) = run_json(&img, &["register", "--accept"]);
    assert!(ok);
    assert_eq!(v["changed"], false);
    assert_eq!(v["result"]["state"], "registered", "{v}");
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
}

#[test]
#[ignore = "needs root"]
fn register_without_wait_requests_once_and_says_what_comes_next() {
    let tenant = Tenant::start();
    let img = appliance(&tenant);
    let (ok, v, err) = run_json(&img, &["register"]);
    assert!(ok, "{err}");
    assert_eq!(v["result"]["status"], "WAITING_FOR_CONNECTION");
    assert!(v["notes"].to_string().contains("remote-connectivity enable"), "{v}");
    tenant.clear_log();
    let (ok, v, _) = run_json(&img, &["register", "--accept"]);
    assert!(ok);
    assert_eq!(v["changed"], false, "an existing request is reported, not made again");
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    // waiting gives up with the state and the next step
    let e = failure(&img, &["register", "--wait", "--timeout", "2"]);
    assert!(e.what.contains("WAITING_FOR_CONNECTION"), "{}", e.what);
    assert!(e.next.contains("remote-connectivity enable"), "{}", e.next);
}

#[test]
#[ignore = "needs root"]
fn an_ssh_endpoint_with_a_key_made_here_and_the_host_key() {
    assert!(
        std::path::Path::new("/usr/bin/ssh-keygen").exists(),
        "ssh-keygen is missing: apt-get install openssh-client (scripts/install-deps)"
    );
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    with_sshd(&img);
    set_password(&img, "admin", 1000, "admin123");
    std::fs::create_dir_all(img.path("/home/admin/.ssh")).unwrap();
    img.write("/home/admin/.ssh/authorized_keys", "ssh-ed25519 AAAAOWN admin@laptop\n");
    for p in ["/home/admin/.ssh", "/home/admin/.ssh/authorized_keys"] {
        std::os::unix::fs::chown(img.path(p), Some(1000), Some(1000)).unwrap();
    }
    let (ok, v, err) = run_json(&img, &["remote-access", "ssh", "--user", "admin"]);
    assert!(ok, "{err}\n{v}");
    let stored = tenant.endpoints(MO);
    let e = by_name(&stored, "SSH admin");
    assert_eq!(e["protocol"], "SSH");
    assert_eq!(e["credentialsType"], "KEY_PAIR");
    assert_eq!(e["username"], "admin");
    assert_eq!(e["port"], 22);
    assert_eq!(e["hostKey"], "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOSTKEY");
    let private = e["privateKey"].as_str().unwrap();
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"), "{private}");
    let public = e["publicKey"].as_str().unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    let keys = img.read("/home/admin/.ssh/authorized_keys").unwrap();
    assert_eq!(
        keys,
        format!("ssh-ed25519 AAAAOWN admin@laptop\n{public} edge-setup-remote-access\n")
    );
    assert_eq!(img.owner("/home/admin/.ssh/authorized_keys"), (1000, 1000));
    assert_eq!(img.mode("/home/admin/.ssh/authorized_keys"), 0o600);
    // the private key is kept nowhere, and not printed
    let all = img.snapshot();
    assert!(
        all.iter()
            .all(|(_, content, _)| !String::from_utf8_lossy(content).contains("PRIVATE KEY"))
    );
    assert!(!v.to_string().contains("PRIVATE KEY"));
    // the service is installed and started on the target
    let targets = v["target_commands"].to_string();
    assert!(targets.contains("systemctl enable --now ssh.service"), "{v}");

    tenant.clear_log();
    let (ok, v, _) = run_json(&img, &["remote-access", "ssh", "--user", "admin"]);
    assert!(ok);
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    assert_eq!(v["result"]["endpoints"][0]["action"], "unchanged");

    // a new key pair: the endpoint updated, one edge-setup key left
    let (ok, _, err) = run_json(&img, &["remote-access", "ssh", "--user", "admin", "--rotate", "--rsa"]);
    assert!(ok, "{err}");
    let e = by_name(&tenant.endpoints(MO), "SSH admin").clone();
    assert!(
        e["privateKey"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let keys = img.read("/home/admin/.ssh/authorized_keys").unwrap();
    assert_eq!(keys.matches("edge-setup-remote-access").count(), 1, "{keys}");
    assert!(keys.starts_with("ssh-ed25519 AAAAOWN admin@laptop\nssh-rsa "), "{keys}");
    assert_eq!(tenant.endpoints(MO).len(), 1);
    // kept only when asked, root's and private
    let (ok, _, err) = run_json(
        &img,
        &[
            "remote-access",
            "ssh",
            "--user",
            "admin",
            "--rotate",
            "--save-private-key",
            "/root/admin-endpoint-key",
        ],
    );
    assert!(ok, "{err}");
    let kept = img.read("/root/admin-endpoint-key").unwrap();
    assert_eq!(
        kept,
        by_name(&tenant.endpoints(MO), "SSH admin")["privateKey"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        (
            img.mode("/root/admin-endpoint-key"),
            img.owner("/root/admin-endpoint-key")
        ),
        (0o600, (0, 0))
    );
    let (ok, v, _) = run_json(
        &img,
        &["remote-access", "ssh", "--user", "admin", "--save-private-key", "key"],
    );
    assert!(!ok && v["error"]["exit"] == 2, "{v}");
    assert!(
        tenant.with(|s| s.violations.is_empty()),
        "{:?}",
        tenant.with(|s| s.violations.clone())
    );
}

#[test]
#[ignore = "needs root"]
fn a_failed_endpoint_request_puts_authorized_keys_back() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    img.write("/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAAHOST root@edge\n");
    std::fs::create_dir_all(img.path("/home/admin/.ssh")).unwrap();
    img.write("/home/admin/.ssh/authorized_keys", "ssh-ed25519 AAAAOWN admin@laptop\n");
    for p in ["/home/admin/.ssh", "/home/admin/.ssh/authorized_keys"] {
        std::os::unix::fs::chown(img.path(p), Some(1000), Some(1000)).unwrap();
    }
    // the list succeeds, the POST fails
    tenant.with(|s| s.fail_on = Some(("POST", 500)));
    let (ok, _, _) = run_json(&img, &["remote-access", "ssh", "--user", "admin"]);
    assert!(!ok);
    assert_eq!(
        img.read("/home/admin/.ssh/authorized_keys").unwrap(),
        "ssh-ed25519 AAAAOWN admin@laptop\n"
    );
}

/// `--save-private-key` naming a link (or a directory) is refused before any
/// request: before, the endpoint (with its private key) was made first and the
/// run then failed, leaving it unrecorded.
#[test]
#[ignore = "needs root"]
fn an_unusable_key_file_is_refused_before_the_endpoint_is_made() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    img.write("/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAAHOST root@edge\n");
    std::fs::create_dir_all(img.path("/root/keys")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", img.path("/root/keys/admin.pem")).unwrap();
    let before = img.snapshot();
    tenant.clear_log();
    let save = |file: &str| {
        failure(
            &img,
            &["remote-access", "ssh", "--user", "admin", "--save-private-key", file],
        )
    };
    let e = save("/root/keys/admin.pem");
    assert!(e.what.contains("a symbolic link"), "{}", e.what);
    assert!(e.next.contains("nothing was changed"), "{}", e.next);
    let e = save("/root/keys");
    assert!(e.what.contains("a directory"), "{}", e.what);
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    assert!(tenant.endpoints(MO).is_empty());
    assert_eq!(img.snapshot(), before);
}

/// `vnc-user` with `c8y.credentials-file` set, then without.
#[test]
#[ignore = "needs root"]
fn vnc_user_keeps_the_users_endpoint_up_to_date_when_credentials_are_configured() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    img.write("/etc/edge-setup/credentials", CREDENTIALS);
    std::fs::set_permissions(
        img.path("/etc/edge-setup/credentials"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    img.cmd()
        .args(["config", "set", "c8y.credentials-file", "/etc/edge-setup/credentials"])
        .assert()
        .success();
    img.cmd().args(["remote-access", "sync"]).assert().success();
    let id_of = |name: &str| by_name(&tenant.endpoints(MO), name)["id"].as_str().unwrap().to_string();
    let (admin, operator) = (id_of("VNC admin (:1)"), id_of("VNC operator (:2)"));
    let vnc_user = |args: &[&str], stdin: &'static str| {
        let out = img
            .cmd()
            .arg("vnc-user")
            .args(args)
            .write_stdin(stdin)
            .assert()
            .success();
        let out = out.get_output();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!said.contains("newpass9") && !said.contains(PASSWORD), "{said}");
        said
    };

    tenant.clear_log();
    let said = vnc_user(&["--user", "admin", "--password-stdin"], "newpass9\n");
    assert_eq!(
        tenant.changes(),
        [format!("PUT /service/remoteaccess/devices/{MO}/configurations/{admin}")]
    );
    assert_eq!(by_name(&tenant.endpoints(MO), "VNC admin (:1)")["password"], "newpass9");
    assert!(
        said.contains("endpoint 'VNC admin (:1)' (127.0.0.1:5901) is updated"),
        "{said}"
    );
    assert!(!said.contains("Add endpoint"), "{said}");

    tenant.clear_log();
    let said = vnc_user(&["--user", "operator", "--remove"], "");
    assert_eq!(
        tenant.changes(),
        [format!(
            "DELETE /service/remoteaccess/devices/{MO}/configurations/{operator}"
        )]
    );
    assert!(said.contains("is deleted"), "{said}");

    // without credentials: the endpoint to enter by hand, and the sync command
    img.cmd()
        .args(["config", "unset", "c8y.credentials-file"])
        .assert()
        .success();
    tenant.clear_log();
    let said = vnc_user(&["--user", "admin", "--password-stdin"], "other123\n");
    assert!(tenant.requests().is_empty(), "{:?}", tenant.requests());
    assert!(
        said.contains("Add endpoint") && said.contains("remote-access sync"),
        "{said}"
    );
}

/// A run whose output nobody reads (its stderr a full pipe) holds the remote
/// access lock only for its work: another run right after it finishes at once,
/// where before it waited the lock's two minutes and failed.
#[test]
#[ignore = "needs root"]
fn a_run_blocked_on_its_output_does_not_hold_the_lock() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::io::Write;
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{v}\n{err}");
    set_password(&img, "admin", 1000, "newpass9");

    // a pipe of one page, full, that nobody reads
    // close-on-exec: no other program the tests start may hold its ends
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    fcntl(&writer, FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    fcntl(&writer, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let mut full = std::fs::File::from(writer);
    while full.write(&[b'x'; 512]).is_ok() {}
    fcntl(&full, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    tenant.clear_log();
    let mut blocked = std::process::Command::new(env!("CARGO_BIN_EXE_edge-setup"))
        .arg("--root")
        .arg(img.root())
        .args(["remote-access", "sync", "--user", "admin", "--credentials-stdin"])
        .env_remove("SUDO_UID")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(full.try_clone().unwrap())
        .spawn()
        .unwrap();
    blocked.stdin.take().unwrap().write_all(CREDENTIALS.as_bytes()).unwrap();
    // it has updated admin's endpoint, under the lock (before, it printed its step
    // there first and blocked, lock held)
    let started = std::time::Instant::now();
    while tenant.changes().is_empty() && started.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(blocked.try_wait().unwrap(), None, "it waits on its output");

    let started = std::time::Instant::now();
    let (ok, v, err) = run_json(&img, &["remote-access", "sync", "--user", "operator"]);
    assert!(ok, "{v}\n{err}");
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    // the blocked run had done its work: admin's endpoint has the new password
    assert_eq!(by_name(&tenant.endpoints(MO), "VNC admin (:1)")["password"], "newpass9");
    // once its reader goes, it ends (its lines are lost, its work is not)
    drop(reader);
    blocked.wait().unwrap();
}

/// A failed endpoint update after `vnc-user` changed the password: the run says
/// what is done here, what is not, and the command that finishes it; a user
/// behind sudo is not shown the credentials file's user name.
#[test]
#[ignore = "needs root"]
fn a_failed_endpoint_update_says_what_changed_here_and_names_no_secret() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    img.write("/etc/edge-setup/credentials", "t100/admin\nnot-the-password\n");
    std::fs::set_permissions(
        img.path("/etc/edge-setup/credentials"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    img.cmd()
        .args(["config", "set", "c8y.credentials-file", "/etc/edge-setup/credentials"])
        .assert()
        .success();
    let vnc_user = |env: &[(&str, &str)]| {
        let out = img
            .cmd()
            .envs(env.iter().copied())
            .args(["vnc-user", "--user", "admin", "--password-stdin"])
            .write_stdin("newpass9\n")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    // as an administrator: why, with the tenant user, and what is done and not
    let said = vnc_user(&[]);
    assert!(said.contains("refused the credentials of t100/admin"), "{said}");
    assert!(
        said.contains("Done here: admin's VNC session on :1 takes the password set here. Not done: the tenant's endpoint for admin still has what it had before"),
        "{said}"
    );
    assert!(
        said.contains("Finish it with: sudo edge-setup remote-access sync --user admin"),
        "{said}"
    );
    assert!(!said.contains("nothing was changed"), "{said}");
    // a user whose run went through sudo: the same, without the name from root's file
    let said = vnc_user(&[("SUDO_UID", "1000"), ("SUDO_USER", "admin")]);
    assert!(
        said.contains("the tenant's endpoint for admin was not updated"),
        "{said}"
    );
    assert!(said.contains("401"), "{said}");
    assert!(!said.contains("t100"), "{said}");
    assert!(said.contains("Finish it with:"), "{said}");
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
}

#[test]
#[ignore = "needs root"]
fn remote_connectivity_status_shows_the_registration_with_credentials() {
    let tenant = Tenant::start();
    let img = appliance(&tenant);
    let status = |img: &Image| {
        let out = img
            .cmd()
            .args(["remote-connectivity", "status", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert!(
        status(&img)["result"].get("registration").is_none(),
        "no credentials, no question"
    );
    assert!(tenant.requests().is_empty());
    img.write("/etc/edge-setup/credentials", CREDENTIALS);
    std::fs::set_permissions(
        img.path("/etc/edge-setup/credentials"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    img.cmd()
        .args(["config", "set", "c8y.credentials-file", "/etc/edge-setup/credentials"])
        .assert()
        .success();
    assert_eq!(
        status(&img)["result"]["registration"],
        json!({"state": "not-registered"})
    );
    tenant.register(DEVICE, MO);
    assert_eq!(
        status(&img)["result"]["registration"],
        json!({"state": "registered", "managed_object": MO})
    );
    let text = img.cmd().args(["remote-connectivity", "status"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("registration: registered (managed object 4711)"),
        "{text}"
    );
}

#[test]
#[ignore = "needs root"]
fn the_wizard_option_registers_the_device_and_syncs_its_endpoints() {
    let tenant = Tenant::start();
    tenant.with(|s| {
        s.connect_after = Some(1);
        s.register_on_accept = true;
    });
    let img = appliance(&tenant);
    let (ok, v, err) = run_json(&img, &["setup", "remote-access"]);
    assert!(ok, "{err}\n{v}");
    assert_eq!(v["result"]["registration"]["state"], "registered", "{v}");
    let changes = tenant.changes();
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert_eq!(changes[0], "POST /devicecontrol/newDeviceRequests");
    assert!(
        changes[2].starts_with("POST /service/remoteaccess/devices/"),
        "{changes:?}"
    );
    // without credentials and without a terminal: the way to give them
    let out = img.cmd().args(["setup", "remote-access"]).assert().code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("--credentials-stdin"), "{err}");
}

/// Whatever the appliance's users do between syncs (a display given, taken, a
/// password changed), after each sync the tenant holds exactly one endpoint per
/// user with a display, with that user's password and port, and the foreign
/// endpoint as it was.
#[test]
#[ignore = "needs root"]
fn after_every_sync_the_endpoints_match_the_users() {
    use proptest::prelude::*;

    const USERS: [(&str, u32); 2] = [("admin", 1000), ("operator", 1001)];
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let foreign = json!({"name": "VNC admin (:1)", "hostname": "10.1.1.1", "port": 5901, "protocol": "VNC",
                         "credentialsType": "NONE"});
    let foreign_id = tenant.add_foreign(MO, foreign.clone());
    let img = appliance(&tenant);
    // (user index, Some(display, password) or None for no display)
    let step = (0..2usize, proptest::option::of((1..4u32, "[a-z0-9]{6,8}")));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(8));
    runner
        .run(&proptest::collection::vec(step, 1..5), |steps| {
            for (i, change) in steps {
                let (user, uid) = USERS[i];
                let mut mapping: Vec<(String, u32)> = img
                    .read("/opt/c8y/utilities/vnc-display-mapping")
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.split_once(':').map(|(u, d)| (u.to_string(), d.parse().unwrap())))
                    .filter(|(u, _)| u != user)
                    .collect();
                if let Some((display, password)) = &change {
                    // displays stay distinct: the other user's is moved up when they clash
                    let display = if mapping.iter().any(|(_, d)| d == display) {
                        display + 10
                    } else {
                        *display
                    };
                    mapping.push((user.to_string(), display));
                    set_password(&img, user, uid, password);
                }
                let text: String = mapping.iter().map(|(u, d)| format!("{u}:{d}\n")).collect();
                let users: String = mapping.iter().map(|(u, d)| format!(":{d}={u}\n")).collect();
                img.write("/opt/c8y/utilities/vnc-display-mapping", &text);
                img.write("/etc/tigervnc/vncserver.users", &users);
                let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
                prop_assert!(ok, "{err}\n{v}");
                let stored = tenant.endpoints(MO);
                let mine: Vec<&Value> = stored.iter().filter(|e| e["id"] != json!(foreign_id)).collect();
                prop_assert_eq!(mine.len(), mapping.len(), "{:?} {:?}", mine, mapping);
                for (u, d) in &mapping {
                    let name = format!("VNC {u} (:{d})");
                    let e = mine
                        .iter()
                        .find(|e| e["name"] == json!(name))
                        .expect("the user's endpoint");
                    let file = std::fs::read(img.path(&format!("/home/{u}/.vnc/passwd"))).unwrap();
                    let want = edge_setup::vnc_user::password::decode(&file).unwrap();
                    prop_assert_eq!(e["password"].as_str(), Some(want.as_str()));
                    prop_assert_eq!(e["port"].as_u64(), Some(5900 + u64::from(*d)));
                }
                let kept = stored.iter().find(|e| e["id"] == json!(foreign_id)).unwrap();
                prop_assert_eq!(kept["hostname"].as_str(), Some("10.1.1.1"));
            }
            Ok(())
        })
        .unwrap();
    assert!(
        tenant.with(|s| s.violations.is_empty()),
        "{:?}",
        tenant.with(|s| s.violations.clone())
    );
}

/// An SSH endpoint stays while its user exists; sync deletes it when the user is gone.
#[test]
#[ignore = "needs root"]
fn sync_deletes_the_ssh_endpoint_of_a_user_who_is_gone() {
    let tenant = Tenant::start();
    tenant.register(DEVICE, MO);
    let img = appliance(&tenant);
    img.write("/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAAHOST root@edge\n");
    assert!(run_json(&img, &["remote-access", "ssh", "--user", "operator"]).0);
    assert!(run_json(&img, &["remote-access", "sync"]).0);
    let ssh_id = by_name(&tenant.endpoints(MO), "SSH operator")["id"]
        .as_str()
        .unwrap()
        .to_string();
    tenant.clear_log();
    assert!(run_json(&img, &["remote-access", "sync"]).0);
    assert!(tenant.changes().is_empty(), "{:?}", tenant.changes());
    // operator leaves the system (and so the display mapping)
    img.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\n",
    );
    img.write("/opt/c8y/utilities/vnc-display-mapping", "admin:1\n");
    img.write("/etc/tigervnc/vncserver.users", ":1=admin\n");
    let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{err}");
    let changes = tenant.changes();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.contains(&format!(
        "DELETE /service/remoteaccess/devices/{MO}/configurations/{ssh_id}"
    )));
    assert!(v["result"]["endpoints"].to_string().contains("no longer a user"), "{v}");
    let names: Vec<String> = tenant
        .endpoints(MO)
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["VNC admin (:1)"]);
}

#[test]
#[ignore = "needs root"]
fn endpoints_wait_for_an_accepted_device_to_fetch_its_credentials() {
    let tenant = Tenant::start();
    tenant.with(|s| s.connect_after = Some(1));
    let img = appliance(&tenant);
    let (ok, _, err) = run_json(&img, &["register"]);
    assert!(ok, "{err}");
    let e = failure(&img, &["remote-access", "sync"]);
    assert!(e.what.contains("PENDING_ACCEPTANCE"), "{}", e.what);
    assert!(e.next.contains("register --accept"), "{}", e.next);
    assert!(run_json(&img, &["register", "--accept"]).0);
    let e = failure(&img, &["remote-access", "sync"]);
    assert!(e.what.contains("has not fetched its credentials"), "{}", e.what);
    // the agent fetches them: the device is there
    tenant.with(|s| s.register_on_accept = true);
    let (ok, v, err) = run_json(&img, &["remote-access", "sync"]);
    assert!(ok, "{err}\n{v}");
    assert_eq!(
        tenant.endpoints(v["result"]["managed_object"].as_str().unwrap()).len(),
        2
    );
}

/// A dry run plans exactly what the run does (issue 27), for the commands that talk to
/// the tenant: on two identical appliances, each with a tenant of its own, the dry run's
/// planned requests and files equal the run's sent requests and written files.
#[test]
#[ignore = "needs root"]
fn a_dry_run_plans_exactly_the_requests_and_files_of_the_run() {
    let cases: [(&str, &[&str]); 3] = [
        ("register", &["register", "--accept"]),
        ("remote-access sync", &["remote-access", "sync"]),
        ("remote-access ssh", &["remote-access", "ssh", "--user", "admin"]),
    ];
    for (what, args) in cases {
        let mut results = Vec::new();
        for dry_run in [true, false] {
            let tenant = Tenant::start();
            if what != "register" {
                tenant.register(DEVICE, MO);
            }
            let img = appliance(&tenant);
            with_sshd(&img);
            let args: Vec<&str> = dry_run
                .then_some("--dry-run")
                .into_iter()
                .chain(args.iter().copied())
                .collect();
            let (ok, v, err) = run_json(&img, &args);
            assert!(ok, "{what}: {err}\n{v}");
            let sent = tenant.changes();
            assert_eq!(sent.is_empty(), dry_run, "{what}: requests {sent:?}");
            results.push(crate::json::relative_changes(&v, img.root()));
        }
        assert!(!results[1].is_empty(), "{what}: the real run changed nothing");
        assert_eq!(
            results[0], results[1],
            "{what}: the dry run (left) planned other changes than the run made (right)"
        );
    }
}
