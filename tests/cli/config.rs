use crate::common;

use common::Image;
use predicates::prelude::*;

const CONFIG: &str = "/etc/edge-setup/edge-setup.toml";

#[test]
fn set_get_unset_round_trip_with_normalisation() {
    let img = Image::debian();
    img.cmd()
        .args(["config", "set", "c8y.url", "MyTenant.Cumulocity.com/"])
        .assert()
        .success();
    img.cmd()
        .args(["config", "get", "c8y.url"])
        .assert()
        .success()
        .stdout("https://mytenant.cumulocity.com\n");
    assert_eq!(img.mode(CONFIG), 0o644);
    img.cmd()
        .args(["config", "set", "vnc.desktop-apps", "mousepad, galculator"])
        .assert()
        .success();
    assert!(
        img.read(CONFIG)
            .unwrap()
            .contains("desktop-apps = [\"mousepad\", \"galculator\"]")
    );
    img.cmd()
        .args(["config", "get", "vnc.desktop-apps"])
        .assert()
        .success()
        .stdout("mousepad,galculator\n");
    img.cmd().args(["config", "unset", "c8y.url"]).assert().success();
    img.cmd()
        .args(["config", "get", "c8y.url"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Required configuration item is not provided 'c8y.url', run 'edge-setup config set c8y.url <value>' to add it to config.",
        ));
}

#[test]
fn defaults_show_when_unset() {
    let img = Image::debian();
    img.cmd()
        .args(["config", "get", "vnc.listen"])
        .assert()
        .success()
        .stdout("localhost\n");
    img.cmd().args(["config", "list"]).assert().success().stdout("");
    img.cmd()
        .args(["config", "list", "--all"])
        .assert()
        .success()
        .stdout(predicate::str::contains("vnc.listen=localhost\n"))
        .stdout(predicate::str::contains("vnc.geometry=1280x800\n"));
}

#[test]
fn each_key_refuses_bad_values_with_what_it_expects_and_changes_nothing() {
    let img = Image::debian();
    img.cmd()
        .args(["config", "set", "vnc.listen", "lan"])
        .assert()
        .success();
    let cases = [
        ("c8y.url", "http://t.example.com", "--insecure"),
        ("c8y.url", "https://t.example.com/apps", "path"),
        ("c8y.url", "https://user:pw@t.example.com", "credentials"),
        ("vnc.listen", "everywhere", "'localhost' or 'lan'"),
        ("vnc.desktop-apps", "ok,rm -rf /", "not a package name"),
        ("vnc.geometry", "big", "WIDTHxHEIGHT"),
        ("device.id", "a/b", "'/'"),
    ];
    for (key, value, expect) in cases {
        let before = img.snapshot();
        img.cmd()
            .args(["config", "set", key, value])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expect))
            // in an image the fix names the image
            .stderr(predicate::str::contains(format!(
                "edge-setup --root {} config set {key}",
                img.root().display()
            )));
        assert_eq!(img.snapshot(), before, "{key}={value} changed a file");
    }
}

#[test]
fn unknown_keys_list_the_known_ones() {
    let img = Image::debian();
    img.cmd()
        .args(["config", "set", "c8y.tenant", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown configuration key 'c8y.tenant'"))
        .stderr(predicate::str::contains("c8y.url"))
        .stderr(predicate::str::contains("config list --doc"));
}

#[test]
fn list_doc_describes_every_key_with_an_example() {
    let img = Image::debian();
    let out = img.cmd().args(["config", "list", "--doc"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for key in ["c8y.url", "device.id", "vnc.listen", "vnc.desktop-apps", "vnc.geometry"] {
        assert!(
            text.contains(&format!("example: edge-setup config set {key} ")),
            "{key} in:\n{text}"
        );
    }
}

#[test]
fn a_syntax_error_is_reported_with_line_and_column_and_never_overwritten() {
    let img = Image::debian();
    let broken = "# mine\n[vnc]\nlisten = \"lan\"\n[c8y\nurl = \"x\"\n";
    img.write(CONFIG, broken);
    for args in [
        vec!["config", "set", "vnc.listen", "localhost"],
        vec!["config", "get", "vnc.listen"],
        vec!["config", "list"],
    ] {
        img.cmd()
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("edge-setup.toml:4:"))
            .stderr(predicate::str::contains("syntax error"));
    }
    assert_eq!(img.read(CONFIG).unwrap(), broken);
}

#[test]
fn a_bad_stored_value_names_path_line_and_fix() {
    let img = Image::debian();
    img.write(CONFIG, "[vnc]\ngeometry = \"1280x800\"\nlisten = \"wan\"\n");
    img.cmd()
        .args(["config", "get", "vnc.listen"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "edge-setup.toml:3: vnc.listen = \"wan\" is not valid",
        ))
        .stderr(predicate::str::contains("'localhost' or 'lan'"))
        .stderr(predicate::str::contains(format!(
            "edge-setup --root {} config set vnc.listen <value>",
            img.root().display()
        )));
    // setting the key is the fix
    img.cmd()
        .args(["config", "set", "vnc.listen", "lan"])
        .assert()
        .success();
    assert!(img.read(CONFIG).unwrap().contains("listen = \"lan\""));
}

#[test]
fn hand_edits_and_comments_are_kept() {
    let img = Image::debian();
    img.write(
        CONFIG,
        "# site comment\n[vnc]\nlisten = \"lan\" # why\n[custom]\nx = 1\n",
    );
    img.cmd()
        .args(["config", "set", "c8y.url", "t.example.com"])
        .assert()
        .success();
    let text = img.read(CONFIG).unwrap();
    assert!(text.starts_with("# site comment\n"), "{text}");
    assert!(text.contains("listen = \"lan\" # why"), "{text}");
    assert!(text.contains("[custom]\nx = 1"), "{text}");
    assert!(text.contains("url = \"https://t.example.com\""), "{text}");
}

#[test]
fn device_id_key_is_the_device_id_file() {
    let img = Image::debian();
    img.cmd()
        .args(["config", "set", "device.id", "edge-7"])
        .assert()
        .success();
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-7\n"
    );
    img.cmd()
        .args(["config", "list"])
        .assert()
        .success()
        .stdout("device.id=edge-7\n");
    img.cmd().args(["config", "unset", "device.id"]).assert().success();
    assert!(img.read("/usr/edge/properties/edge-agent/device-id").is_none());
}

#[test]
fn exit_codes_for_usage_help_and_a_missing_root() {
    let img = Image::debian();
    img.cmd().arg("no-such-command").assert().code(2);
    img.cmd()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes"));
    assert_cmd::Command::cargo_bin("edge-setup")
        .unwrap()
        .args(["--root", "/nonexistent/image", "config", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot use /nonexistent/image as the root"));
}

#[test]
fn a_file_in_place_of_the_config_directory_is_reported() {
    let img = Image::debian();
    img.write("/etc/edge-setup", "not a directory");
    img.cmd()
        .args(["config", "set", "vnc.listen", "lan"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a directory"));
}

/// `config set` of different keys at once, in rounds: every change lands (the file's
/// read-modify-write is locked), and so does every `config unset`.
#[test]
fn concurrent_sets_of_different_keys_all_land() {
    let img = Image::debian();
    let values = [
        ("c8y.url", "https://mytenant.cumulocity.com"),
        ("agent.service", "c8y-edge-agent.service"),
        ("vnc.listen", "lan"),
        ("vnc.desktop-apps", "mousepad,galculator"),
        ("vnc.geometry", "1920x1080"),
        ("disk.data-mount", "/data"),
    ];
    let at_once = |args: &dyn Fn(&str, &str) -> Vec<String>| {
        let children: Vec<_> = values
            .iter()
            .map(|(key, value)| {
                std::process::Command::new(assert_cmd::cargo::cargo_bin("edge-setup"))
                    .arg("--root")
                    .arg(img.root())
                    .args(args(key, value))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    };
    for round in 0..8 {
        at_once(&|key, value| vec!["config".into(), "set".into(), key.into(), value.into()]);
        for (key, value) in values {
            img.cmd()
                .args(["config", "get", key])
                .assert()
                .success()
                .stdout(format!("{value}\n"));
        }
        at_once(&|key, _| vec!["config".into(), "unset".into(), key.into()]);
        let text = img.read(CONFIG).unwrap();
        for (key, _) in values {
            let leaf = key.split_once('.').unwrap().1;
            assert!(
                !text.contains(&format!("{leaf} =")),
                "round {round}: {key} still set:\n{text}"
            );
        }
    }
}

#[test]
fn unset_keeps_the_comments_of_the_file_and_its_tables() {
    let img = Image::debian();
    let text = "# Appliance settings, kept by the operations team.\n\n# The tenant of plant 7.\n[c8y]\nurl = \"https://t.example.com\"\n\n# Sessions.\n[vnc]\ngeometry = \"1024x768\"\n";
    img.write("/etc/edge-setup/edge-setup.toml", text);
    img.cmd().args(["config", "unset", "c8y.url"]).assert().success();
    let after = img.read("/etc/edge-setup/edge-setup.toml").unwrap();
    for comment in [
        "# Appliance settings, kept by the operations team.",
        "# The tenant of plant 7.",
        "# Sessions.",
    ] {
        assert!(after.contains(comment), "{comment:?} lost:\n{after}");
    }
    assert!(!after.contains("url ="), "{after}");
    assert!(after.contains("geometry = \"1024x768\""), "{after}");
    img.cmd().args(["config", "get", "c8y.url"]).assert().failure();
}

/// An answers file outside the image (input files are host paths).
fn answers(text: &str) -> std::path::PathBuf {
    let (file, path) = tempfile::NamedTempFile::new().unwrap().keep().unwrap();
    drop(file);
    std::fs::write(&path, text).unwrap();
    path
}

const CONFIG_TABLE: &str = "[agent]\nurl = \"t.example.com\"\n\n[config]\nvnc.geometry = \"1920x1080\"\n\
    vnc.desktop-apps = [\"mousepad\", \"galculator\"]\nc8y.request-timeout = 60\n\
    c8y.ca-file = \"/etc/edge-setup/tenant-ca.pem\"\n";

#[test]
fn the_config_table_sets_keys_by_their_rules_first_and_a_second_run_changes_nothing() {
    let img = Image::debian();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    let file = answers(CONFIG_TABLE);
    // [config] is applied before the other tables, which read its keys
    let out = img.cmd().args(["setup", "--answers"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let options: Vec<&str> = stderr.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(
        options,
        ["== 14 Set configuration keys", "== 7 Configure Edge Agent"],
        "{stderr}"
    );
    for (key, value) in [
        ("vnc.geometry", "1920x1080"),
        ("vnc.desktop-apps", "mousepad,galculator"),
        ("c8y.request-timeout", "60"),
        ("c8y.ca-file", "/etc/edge-setup/tenant-ca.pem"),
        ("c8y.url", "https://t.example.com"),
    ] {
        img.cmd()
            .args(["config", "get", key])
            .assert()
            .success()
            .stdout(format!("{value}\n"));
    }
    assert!(
        img.read(CONFIG)
            .unwrap()
            .contains("desktop-apps = [\"mousepad\", \"galculator\"]")
    );
    let before = (img.snapshot(), img.mtimes());
    let out = img
        .cmd()
        .args(["--json", "setup", "--answers"])
        .arg(&file)
        .output()
        .unwrap();
    let json = common::json::envelope(&out);
    assert_eq!(json["changed"], false, "{json}");
    assert_eq!(json["results"][0]["option"], "config", "{json}");
    assert_eq!(
        json["results"][0]["result"]["keys"]["vnc.desktop-apps"],
        "mousepad,galculator"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Setting vnc.geometry = 1920x1080 ... unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(before == (img.snapshot(), img.mtimes()), "the second run touched files");
}

#[test]
fn a_bad_config_key_or_value_names_its_place_and_changes_nothing() {
    let img = Image::debian();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    let before = img.snapshot();
    // (the table, where, what, why)
    let cases = [
        (
            "[config]\nvnc.geometry = \"big\"\n",
            ":7:16: [config] is not valid",
            "invalid value for vnc.geometry: expected WIDTHxHEIGHT",
        ),
        (
            "[config]\nvnc.geomtry = \"1920x1080\"\n",
            ":7:5: unknown key 'vnc.geomtry' in [config]",
            "did you mean 'vnc.geometry'?",
        ),
        (
            "[config]\nc8y.url = \"t.example.com\"\n",
            ":7:5: [config] is not valid",
            "c8y.url is set with [agent] url",
        ),
        (
            "[config.vnc]\nlisten = \"lan\"\n",
            ":7:1: [config.vnc] is not valid",
            "vnc.listen is set with [vnc] listen",
        ),
        (
            "[config]\nvnc.desktop-apps = [\"mousepad\", 7]\n",
            ":7:20: [config] is not valid",
            "vnc.desktop-apps takes strings",
        ),
    ];
    for (table, at, why) in cases {
        // an [agent] table before it that would apply: nothing may change
        let file = answers(&format!(
            "[agent]\nurl = \"t.example.com\"\n\n[vnc]\ninstall = false\n{table}"
        ));
        img.cmd()
            .args(["setup", "--answers"])
            .arg(&file)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("{}{at}", file.display())))
            .stderr(predicate::str::contains(why))
            .stderr(predicate::str::contains("nothing was changed"));
        assert!(before == img.snapshot(), "{table}: files changed");
    }
}

#[test]
fn setup_config_applies_the_config_table_alone() {
    let img = Image::debian();
    let file = answers(CONFIG_TABLE);
    img.cmd()
        .args(["setup", "config", "--answers"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("Setting vnc.geometry = 1920x1080 ... created"));
    img.cmd()
        .args(["config", "get", "vnc.geometry"])
        .assert()
        .success()
        .stdout("1920x1080\n");
    // the file's [agent] table is option 7's, not applied here
    img.cmd().args(["config", "get", "c8y.url"]).assert().code(1);
    let without = answers("[agent]\nurl = \"t.example.com\"\n");
    img.cmd()
        .args(["setup", "config", "--answers"])
        .arg(&without)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no [config] table"));
}
