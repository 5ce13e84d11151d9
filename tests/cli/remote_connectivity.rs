use crate::common;

use common::Image;
use predicates::prelude::*;

const AGENT: &str = "/usr/edge/properties/edge-agent/remote-connectivity.properties";
const ID_FILE: &str = "/usr/edge/properties/edge-agent/device-id";
const CONFIG: &str = "/etc/edge-setup/edge-setup.toml";
const UNIT: &str = "/lib/systemd/system/edge-agent.service";

/// A Debian image with a name server.
fn image() -> Image {
    let img = Image::debian();
    img.write("/etc/resolv.conf", "search lan\nnameserver 192.168.1.1\n");
    img
}

fn enable(img: &Image, url: &str) -> assert_cmd::assert::Assert {
    img.cmd().args(["remote-connectivity", "enable", "--url", url]).assert()
}

fn status_json(img: &Image) -> serde_json::Value {
    let out = img
        .cmd()
        .args(["remote-connectivity", "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&json["changed"], &json["changes"]),
        (&serde_json::json!(false), &serde_json::json!([]))
    );
    json["result"].clone()
}

/// In an image the device ID is left to each appliance (a derived one would be every
/// clone's); one set in the image with `device-id set` is the agent's.
#[test]
fn enable_stores_the_url_writes_the_agent_file_and_leaves_the_device_id_to_the_appliance() {
    let img = image();
    let out = img
        .cmd()
        .args(["remote-connectivity", "enable", "--url", "MyTenant.Example.com/"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(img.read(ID_FILE).is_none());
    assert!(
        err.contains("The image has no device ID, so that each appliance made from it gets its own"),
        "{err}"
    );
    assert!(
        err.contains("'sudo edge-setup device-id generate' on each appliance"),
        "{err}"
    );
    assert!(!err.contains("(new)"), "{err}");

    let chosen = image();
    chosen
        .cmd()
        .args(["device-id", "set", "edge-plant7-01"])
        .assert()
        .success();
    enable(&chosen, "t.example.com")
        .success()
        .stderr(predicate::str::contains("The image has no device ID").not());
    assert_eq!(chosen.read(ID_FILE).unwrap(), "edge-plant7-01\n");
    assert!(
        err.contains("Checking DNS ... 192.168.1.1 from /etc/resolv.conf"),
        "{err}"
    );

    let agent = img.read(AGENT).unwrap();
    assert!(agent.starts_with('#'), "{agent}");
    assert!(
        agent.ends_with("enabled=true\nurl=https://mytenant.example.com\n"),
        "{agent}"
    );
    assert_eq!(img.mode(AGENT), 0o644);
    assert_eq!(img.owner(AGENT), (0, 0));
    assert!(
        img.read(CONFIG)
            .unwrap()
            .contains("url = \"https://mytenant.example.com\"")
    );
    img.cmd()
        .args(["config", "get", "c8y.url"])
        .assert()
        .success()
        .stdout("https://mytenant.example.com\n");
}

#[test]
fn a_second_identical_enable_writes_nothing_and_restarts_nothing() {
    let img = image();
    img.write(UNIT, "[Service]\nExecStart=/usr/bin/edge-agent\n");
    enable(&img, "t.example.com").success().stderr(predicate::str::contains(
        "at the first boot: systemctl start edge-agent.service",
    ));
    let before = img.snapshot();
    enable(&img, "https://t.example.com")
        .success()
        .stderr(predicate::str::contains("unchanged"))
        .stderr(predicate::str::contains(
            "nothing changed, so edge-agent.service was not restarted",
        ))
        .stderr(predicate::str::contains("systemctl").not())
        .stderr(predicate::str::contains("created").not())
        .stderr(predicate::str::contains("(new)").not());
    assert_eq!(img.snapshot(), before);
}

#[test]
fn a_port_is_kept() {
    let img = image();
    enable(&img, "https://t.example.com:8443").success();
    assert!(img.read(AGENT).unwrap().contains("url=https://t.example.com:8443\n"));
    assert_eq!(status_json(&img)["url"], "https://t.example.com:8443");
}

#[test]
fn bad_urls_are_refused_with_the_rule_and_nothing_changes() {
    let img = image();
    let cases = [
        ("https://t.example.com/apps/devicemanagement", "cannot have a path"),
        ("https://t.example.com?tenant=1", "query"),
        ("https://t.example.com#x", "fragment"),
        ("https://admin:secret@t.example.com", "credentials"),
        ("ftp://t.example.com", "scheme must be https"),
        ("https://t.example.com:70000", "not a port number"),
        ("https://bad_host", "not a valid host name"),
        ("https://", "no host name"),
        ("", "cannot be empty"),
    ];
    for (url, rule) in cases {
        let before = img.snapshot();
        enable(&img, url)
            .code(2)
            .stderr(predicate::str::contains("is not a valid tenant URL"))
            .stderr(predicate::str::contains(rule));
        assert_eq!(img.snapshot(), before, "{url:?} changed a file");
    }
    enable(&img, "").stderr(predicate::str::contains("remote-connectivity disable"));
}

#[test]
fn http_is_refused_unless_insecure_and_then_warned_recorded_and_readable() {
    let img = image();
    let before = img.snapshot();
    enable(&img, "http://t.example.com")
        .code(2)
        .stderr(predicate::str::contains(
            "refusing the unencrypted URL http://t.example.com",
        ))
        .stderr(predicate::str::contains("--insecure"))
        .stderr(predicate::str::contains("https://t.example.com"));
    assert_eq!(img.snapshot(), before);

    img.cmd()
        .args([
            "remote-connectivity",
            "enable",
            "--insecure",
            "--url",
            "http://t.example.com:8080",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: http://t.example.com:8080 is not encrypted",
        ));
    assert!(img.read(AGENT).unwrap().contains("url=http://t.example.com:8080\n"));
    let toml = img.read(CONFIG).unwrap();
    assert!(toml.contains("url = \"http://t.example.com:8080\""), "{toml}");
    assert!(toml.contains("insecure = \"true\""), "{toml}");
    // knowingly accepted: reading it back does not fail
    img.cmd()
        .args(["config", "get", "c8y.url"])
        .assert()
        .success()
        .stdout("http://t.example.com:8080\n");
    img.cmd().args(["config", "list"]).assert().success();
    img.cmd()
        .args(["remote-connectivity", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("http://t.example.com:8080 (unencrypted)"));
    img.cmd().args(["remote-connectivity", "disable"]).assert().success();
    // re-enabling the stored URL needs no flag: it was recorded as accepted
    img.cmd()
        .args(["remote-connectivity", "enable"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: http://t.example.com:8080 is not encrypted",
        ));

    // an https URL clears the record
    enable(&img, "t.example.com").success();
    assert!(!img.read(CONFIG).unwrap().contains("insecure"));
    // a hand-written http URL without the record is not taken silently
    img.write(CONFIG, "[c8y]\nurl = \"http://t.example.com\"\n");
    img.cmd()
        .args(["config", "get", "c8y.url"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("edge-setup.toml:2: c8y.url"));
}

#[test]
fn insecure_has_no_effect_on_https() {
    let img = image();
    img.cmd()
        .args(["remote-connectivity", "enable", "--insecure", "--url", "t.example.com"])
        .assert()
        .success()
        .stderr(predicate::str::contains("--insecure has no effect"));
    assert!(!img.read(CONFIG).unwrap().contains("insecure"));
}

#[test]
fn without_a_name_server_enable_refuses_unless_forced() {
    for resolv in [
        None,
        Some("# no servers\nsearch lan\n"),
        Some("nameserver not-an-address\n"),
    ] {
        let img = Image::debian();
        if let Some(text) = resolv {
            img.write("/etc/resolv.conf", text);
        }
        let before = img.snapshot();
        enable(&img, "t.example.com")
            .code(1)
            .stderr(predicate::str::contains(
                "remote connectivity needs DNS, but no name server is configured",
            ))
            .stderr(predicate::str::contains("/etc/resolv.conf names no name server"))
            .stderr(predicate::str::contains(format!(
                "edge-setup --root {} setup network",
                img.root().display()
            )))
            .stderr(predicate::str::contains("--force"));
        assert_eq!(img.snapshot(), before, "{resolv:?}");
        img.cmd()
            .args(["remote-connectivity", "enable", "--force", "--url", "t.example.com"])
            .assert()
            .success()
            .stderr(predicate::str::contains("warning: no name server is configured"));
        assert!(img.read(AGENT).unwrap().contains("enabled=true"));
        let json = status_json(&img);
        assert_eq!(json["dns_configured"], false);
        assert_eq!(json["name_servers"], serde_json::json!([]));
    }
}

#[test]
fn the_systemd_resolved_stub_is_looked_through() {
    let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\n";
    // the stub alone, and resolved without servers: refused, naming resolved
    let img = Image::debian();
    img.write("/etc/resolv.conf", stub);
    img.write("/etc/systemd/resolved.conf", "[Resolve]\n#DNS=\n");
    enable(&img, "t.example.com")
        .code(1)
        .stderr(predicate::str::contains("systemd-resolved"));

    // an image: resolv.conf links into an empty /run
    let img = Image::debian();
    std::fs::create_dir_all(img.path("/etc")).unwrap();
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", img.path("/etc/resolv.conf")).unwrap();
    enable(&img, "t.example.com")
        .code(1)
        .stderr(predicate::str::contains("systemd-resolved"));
    // ... with DNS= in resolved.conf, reset and set again in a drop-in
    img.write("/etc/systemd/resolved.conf", "[Resolve]\nDNS=8.8.8.8\n");
    img.write(
        "/etc/systemd/resolved.conf.d/site.conf",
        "[Resolve]\nDNS=\nDNS=9.9.9.9 149.112.112.112\n",
    );
    enable(&img, "t.example.com").success().stderr(predicate::str::contains(
        "Checking DNS ... 9.9.9.9, 149.112.112.112 from /etc/systemd/resolved.conf",
    ));

    // servers systemd-resolved learnt at run time (DHCP) count too
    let img = Image::debian();
    img.write("/etc/resolv.conf", stub);
    img.write("/run/systemd/resolve/resolv.conf", "nameserver 10.1.1.1\n");
    enable(&img, "t.example.com").success().stderr(predicate::str::contains(
        "10.1.1.1 from /run/systemd/resolve/resolv.conf",
    ));

    // and so do static servers of systemd-networkd
    let img = Image::debian();
    img.write("/etc/resolv.conf", stub);
    img.write(
        "/etc/systemd/network/10-eth0.network",
        "[Match]\nName=eth0\n[Network]\nAddress=10.0.0.5/24\nDNS=10.0.0.2\n",
    );
    enable(&img, "t.example.com").success().stderr(predicate::str::contains(
        "10.0.0.2 from /etc/systemd/network/10-eth0.network",
    ));
}

#[test]
fn a_corrupt_agent_file_is_reported_with_path_and_line_and_never_overwritten() {
    let img = image();
    let corrupt = "# mine\nenabled=true\nurl=https://t.example.com/path\n";
    img.write(AGENT, corrupt);
    let before = img.snapshot();
    for args in [
        vec!["remote-connectivity", "enable", "--url", "t.example.com"],
        vec!["remote-connectivity", "disable"],
        vec!["remote-connectivity", "status"],
    ] {
        img.cmd()
            .args(&args)
            .assert()
            .code(1)
            // the file and the line: `PATH:3:`, or in status's list of damaged files
            // `PATH` and then `line 3:` (the path said once)
            .stderr(
                predicate::str::contains("remote-connectivity.properties:3: the Edge agent configuration is corrupt")
                    .or(predicate::str::contains("read: /").and(predicate::str::contains(
                        "remote-connectivity.properties\n  because: line 3: the Edge agent configuration is corrupt",
                    ))),
            )
            .stderr(predicate::str::contains("path"))
            .stderr(predicate::str::contains("does not overwrite"));
        assert_eq!(img.snapshot(), before, "{args:?}");
    }
    img.write(AGENT, "enabled=maybe\n");
    img.cmd()
        .args(["remote-connectivity", "disable"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("remote-connectivity.properties:1:"))
        .stderr(predicate::str::contains("true or false"));
    assert_eq!(img.read(AGENT).unwrap(), "enabled=maybe\n");
}

#[test]
fn a_file_in_place_of_a_configuration_directory_changes_nothing() {
    // /etc/edge-setup is a file: c8y.url cannot be stored, so neither the
    // device ID nor the agent file is written either
    let img = image();
    img.write("/etc/edge-setup", "not a directory");
    let before = img.snapshot();
    enable(&img, "t.example.com")
        .code(1)
        .stderr(predicate::str::contains("edge-setup is not a directory"));
    assert_eq!(img.snapshot(), before);
    assert!(img.read(ID_FILE).is_none());

    // the agent's directory is a file: the device ID cannot be generated there
    let img = image();
    img.write("/usr/edge/properties/edge-agent", "not a directory");
    let before = img.snapshot();
    enable(&img, "t.example.com")
        .code(1)
        .stderr(predicate::str::contains("edge-agent is not a directory"));
    assert_eq!(img.snapshot(), before);
}

/// Makes the agent's directory refuse writes: immutable when root (root ignores
/// permission bits), read-only permissions otherwise. `None` when not possible here.
fn lock_dir(img: &Image, dir: &str) -> Option<()> {
    let path = img.path(dir);
    if common::is_root() {
        let ok = std::process::Command::new("chattr").arg("+i").arg(&path).status();
        match ok {
            Ok(s) if s.success() => Some(()),
            _ => {
                eprintln!("skipped: needs 'chattr +i' (e2fsprogs and a file system that supports it)");
                None
            }
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
        Some(())
    }
}

fn unlock_dir(img: &Image, dir: &str) {
    let path = img.path(dir);
    if common::is_root() {
        std::process::Command::new("chattr")
            .arg("-i")
            .arg(&path)
            .status()
            .unwrap();
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_directory_that_refuses_writes_is_reported_before_anything_changes() {
    let img = image();
    img.write(ID_FILE, "edge-7\n");
    let dir = "/usr/edge/properties/edge-agent";
    if lock_dir(&img, dir).is_none() {
        return;
    }
    let before = img.snapshot();
    let enabled = enable(&img, "t.example.com");
    let disabled = img.cmd().args(["remote-connectivity", "disable"]).assert();
    let after = img.snapshot();
    unlock_dir(&img, dir);
    // root is refused by the immutable flag, anyone else lacks permission: both exit 3
    let code = 3;
    enabled.code(code).stderr(predicate::str::contains(format!(
        "cannot write in {}",
        img.path(dir).display()
    )));
    disabled.code(code).stderr(predicate::str::contains("cannot write in"));
    // c8y.url (in a writable directory) was not stored either
    assert_eq!(after, before);
    assert!(img.read(CONFIG).is_none());
}

#[test]
fn a_read_only_file_system_is_reported_before_anything_changes() {
    if !common::is_root() || std::process::Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and unshare to bind-mount a directory read-only");
        return;
    }
    let img = image();
    img.write(ID_FILE, "edge-7\n");
    let dir = img.path("/usr/edge/properties");
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let before = img.snapshot();
    // a private mount namespace: the read-only mount disappears with the command
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(&dir)
        .arg(&bin)
        .arg("--root")
        .arg(img.root())
        .args(["remote-connectivity", "enable", "--url", "t.example.com"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("mount:") {
        eprintln!("skipped: cannot mount here: {err}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write in"), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(err.contains("remount that file system read-write"), "{err}");
    assert_eq!(img.snapshot(), before);
}

#[test]
fn the_agent_service_is_restarted_when_installed_and_a_note_otherwise() {
    let img = image();
    enable(&img, "t.example.com")
        .success()
        .stderr(predicate::str::contains(
            "note: the Edge agent's service edge-agent.service is not installed",
        ))
        .stderr(predicate::str::contains("systemctl").not());

    let img = image();
    img.write(UNIT, "[Service]\nExecStart=/usr/bin/edge-agent\n");
    // in an image the agent is not running: it starts, with the file, at the first boot
    enable(&img, "t.example.com").success().stderr(predicate::str::contains(
        "Restarting edge-agent.service ...\n    at the first boot: systemctl start edge-agent.service\n  ... planned",
    ));
    // one that is not running (all of them, in an image) reads the file when it starts
    img.cmd()
        .args(["remote-connectivity", "disable"])
        .assert()
        .success()
        .stderr(predicate::str::contains("try-restart").not());
    assert!(
        !img.read(edge_setup::system::offline::PENDING)
            .unwrap()
            .contains("try-restart")
    );
    assert_eq!(status_json(&img)["agent_state"], "installed");

    // another unit name, given without its suffix; a masked one is not restarted
    let img = image();
    img.cmd()
        .args(["config", "set", "agent.service", "c8y-agent"])
        .assert()
        .success();
    std::fs::create_dir_all(img.path("/etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink("/dev/null", img.path("/etc/systemd/system/c8y-agent.service")).unwrap();
    img.write("/usr/lib/systemd/system/c8y-agent.service", "[Service]\n");
    enable(&img, "t.example.com")
        .success()
        .stderr(predicate::str::contains("c8y-agent.service is masked"))
        .stderr(predicate::str::contains("systemctl restart").not());
    let json = status_json(&img);
    assert_eq!(json["agent_service"], "c8y-agent.service");
    assert_eq!(json["agent_state"], "masked");
}

#[test]
fn bad_unit_names_are_refused() {
    let img = image();
    for (name, rule) in [
        ("edge agent", "ASCII letters"),
        ("--now", "start with a letter"),
        ("edge-agent.timer", "not a timer unit"),
        ("agent@.service", "template"),
    ] {
        img.cmd()
            .args(["config", "set", "agent.service", "--", name])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(rule));
    }
    assert!(img.read(CONFIG).is_none());
}

#[test]
fn status_text_and_json() {
    let img = image();
    img.cmd()
        .args(["remote-connectivity", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("remote connectivity: disabled\n"))
        .stdout(predicate::str::contains("tenant URL:          not set\n"))
        .stdout(predicate::str::contains("device ID:           not set"))
        .stdout(predicate::str::contains(
            "DNS:                 configured: 192.168.1.1 from /etc/resolv.conf\n",
        ))
        .stdout(predicate::str::contains("tenant host:         no tenant URL\n"))
        .stdout(predicate::str::contains(
            "agent service:       edge-agent.service: not installed\n",
        ));
    let json = status_json(&img);
    assert_eq!(json["enabled"], false);
    // unset is null, for the URL as for the device ID
    assert_eq!(json["url"], serde_json::Value::Null);
    assert_eq!(json["device_id"], serde_json::Value::Null);

    img.cmd()
        .args(["device-id", "set", "edge-plant7-01"])
        .assert()
        .success();
    enable(&img, "t.example.com").success();
    // status is the default action
    img.cmd()
        .arg("remote-connectivity")
        .assert()
        .success()
        .stdout(predicate::str::contains("remote connectivity: enabled\n"))
        .stdout(predicate::str::contains("tenant URL:          https://t.example.com\n"))
        .stdout(predicate::str::contains(
            "tenant host:         not checked in image mode\n",
        ));
    let out = img
        .cmd()
        .args(["remote-connectivity", "status", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // one object, the status as "result": "enabled" and "url" first, as the appliance's REST payload
    assert!(
        text.contains(r#""result":{"enabled":true,"url":"https://t.example.com","#),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = img.read(ID_FILE).unwrap();
    assert_eq!(
        json["result"],
        serde_json::json!({
            "enabled": true,
            "url": "https://t.example.com",
            "device_id": id.trim(),
            "dns_configured": true,
            "name_servers": ["192.168.1.1"],
            "host_resolves": null,
            "agent_service": "edge-agent.service",
            "agent_state": "not-installed",
            "problems": [],
        })
    );
}

#[test]
fn disable_keeps_the_url_and_enable_without_url_brings_it_back() {
    let img = image();
    enable(&img, "t.example.com:8443").success();
    img.cmd()
        .args(["remote-connectivity", "disable"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "The tenant URL https://t.example.com:8443 is kept",
        ));
    assert!(
        img.read(AGENT)
            .unwrap()
            .ends_with("enabled=false\nurl=https://t.example.com:8443\n")
    );
    assert!(img.read(CONFIG).unwrap().contains("https://t.example.com:8443"));
    let json = status_json(&img);
    assert_eq!(
        (json["enabled"].clone(), json["url"].clone()),
        (false.into(), "https://t.example.com:8443".into())
    );

    let before = img.snapshot();
    img.cmd()
        .args(["remote-connectivity", "disable"])
        .assert()
        .success()
        .stderr(predicate::str::contains("already disabled: nothing changed"));
    assert_eq!(img.snapshot(), before);

    img.cmd().args(["remote-connectivity", "enable"]).assert().success();
    assert!(
        img.read(AGENT)
            .unwrap()
            .ends_with("enabled=true\nurl=https://t.example.com:8443\n")
    );

    // a c8y.url changed by hand shows as not yet applied
    img.cmd()
        .args(["config", "set", "c8y.url", "other.example.com"])
        .assert()
        .success();
    img.cmd()
        .args(["remote-connectivity", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "tenant URL:          https://t.example.com:8443\n",
        ))
        .stderr(predicate::str::contains(
            "c8y.url is https://other.example.com, but the agent is configured for https://t.example.com:8443",
        ));
}

#[test]
fn disable_on_a_fresh_box_writes_a_disabled_file() {
    let img = image();
    img.cmd().args(["remote-connectivity", "disable"]).assert().success();
    assert!(img.read(AGENT).unwrap().ends_with("enabled=false\n"));
}

#[test]
fn enable_without_any_url_names_the_key_and_the_flag() {
    let img = image();
    img.cmd()
        .args(["remote-connectivity", "enable"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Required configuration item is not provided 'c8y.url'",
        ))
        .stderr(predicate::str::contains("--url"));
    assert!(img.read(AGENT).is_none());
}

#[test]
fn dry_run_changes_nothing_and_prints_the_plan() {
    let img = image();
    img.write(UNIT, "[Service]\n");
    let before = img.snapshot();
    img.cmd()
        .args(["--dry-run", "remote-connectivity", "enable", "--url", "t.example.com"])
        .assert()
        .success()
        .stderr(predicate::str::contains("would write"))
        .stderr(predicate::str::contains(
            "remote-connectivity.properties (owner root:root, mode 0644",
        ))
        .stderr(predicate::str::contains(
            "would leave for the first boot: systemctl start edge-agent.service",
        ));
    assert_eq!(img.snapshot(), before);
}

/// A monitor reading `--json` gets the status with the damaged files named,
/// not nothing: the object is printed, with the error, and the exit code is 1.
#[test]
fn status_json_names_damaged_files_instead_of_printing_nothing() {
    let img = image();
    enable(&img, "t.example.com").success();
    let props = "/usr/edge/properties/edge-agent/remote-connectivity.properties";
    img.write(props, "enabled=maybe\n");
    img.write(ID_FILE, "not a valid id!\n");
    for args in [vec!["remote-connectivity", "status"], vec!["setup", "status"]] {
        let out = img.cmd().arg("--json").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        let files: Vec<&str> = json["result"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["file"].as_str().unwrap())
            .collect();
        assert_eq!(
            files,
            vec![
                img.path(props).display().to_string(),
                img.path(ID_FILE).display().to_string()
            ],
            "{json}"
        );
        assert_eq!(json["error"]["exit"], 1);
        assert!(
            json["error"]["what"]
                .as_str()
                .unwrap()
                .contains("2 files could not be read"),
            "{json}"
        );
    }
    // the configuration still reads: the URL is reported
    let out = img
        .cmd()
        .args(["--json", "remote-connectivity", "status"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["result"]["url"], "https://t.example.com");
}
