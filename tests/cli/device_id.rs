use crate::common;

use common::Image;
use predicates::prelude::*;

const ID_FILE: &str = "/usr/edge/properties/edge-agent/device-id";

#[test]
fn missing_id_fails_and_names_the_commands_that_set_one() {
    let img = Image::debian();
    img.cmd()
        .arg("device-id")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("no Edge device ID is set in this image"))
        // deriving is the appliance's own work: that command stays as it is run there
        .stderr(predicate::str::contains(
            "run 'sudo edge-setup device-id generate' on the appliance",
        ))
        // setting one is the image's: --root, no sudo
        .stderr(predicate::str::contains(format!(
            "'edge-setup --root {} device-id set <ID>'",
            img.root().display()
        )));
}

#[test]
fn set_writes_one_line_0644_and_show_prints_it() {
    let img = Image::debian();
    img.cmd()
        .args(["device-id", "set", "edge-plant7-01"])
        .assert()
        .success()
        .stdout("edge-plant7-01\n");
    assert_eq!(img.read(ID_FILE).unwrap(), "edge-plant7-01\n");
    assert_eq!(img.mode(ID_FILE), 0o644);
    img.cmd()
        .arg("device-id")
        .assert()
        .success()
        .stdout("edge-plant7-01\n")
        .stderr(predicate::str::contains("General device registration"));
}

#[test]
fn invalid_ids_are_refused_with_the_rule_and_the_old_file_stays() {
    let img = Image::debian();
    img.write(ID_FILE, "old-id\n");
    let cases = [
        ("", "cannot be empty"),
        ("a b", "white space"),
        ("a/b", "'/'"),
        ("a\tb", "control characters"),
        ("bell\u{7}", "control characters"),
        (&"x".repeat(65), "at most 64"),
        ("-dash", "start with a letter or a digit"),
        ("caf\u{e9}", "ASCII letters"),
    ];
    for (id, rule) in cases {
        let before = img.snapshot();
        img.cmd()
            .args(["device-id", "set", "--", id])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(rule));
        assert_eq!(img.snapshot(), before, "{id:?} changed a file");
    }
    assert_eq!(img.read(ID_FILE).unwrap(), "old-id\n");
}

/// Every appliance made from an image would get the ID derived from the image's
/// machine ID: in an image, no command derives one (the rule itself, DMI serial
/// else machine ID, is unit-tested in `device_id`).
#[test]
fn an_image_never_gets_a_machine_derived_device_id() {
    let img = Image::debian();
    img.write("/sys/class/dmi/id/product_serial", "SN-4711-XY\n");
    let before = img.snapshot();
    img.cmd()
        .args(["device-id", "generate"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("a device ID is not derived in an image"))
        .stderr(predicate::str::contains("the same one"));
    assert_eq!(img.snapshot(), before);

    // remote-connectivity enable configures the agent and leaves the ID to each appliance
    img.write("/etc/resolv.conf", "nameserver 192.168.1.1\n");
    img.cmd()
        .args(["remote-connectivity", "enable", "--url", "t.example.com"])
        .assert()
        .success()
        .stderr(predicate::str::contains("The image has no device ID"))
        .stderr(predicate::str::contains(
            "'sudo edge-setup device-id generate' on each appliance",
        ));
    assert!(img.read(ID_FILE).is_none());
    let agent = img
        .read("/usr/edge/properties/edge-agent/remote-connectivity.properties")
        .unwrap();
    assert!(agent.ends_with("enabled=true\nurl=https://t.example.com\n"), "{agent}");

    // an answers file asking for a derived ID is refused before anything changes
    let answers = img.path("/answers.toml");
    std::fs::write(&answers, "[device-id]\ngenerate = true\n").unwrap();
    let before = img.snapshot();
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&answers)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("generate = true is refused in an image"));
    assert_eq!(img.snapshot(), before);
    assert!(img.read(ID_FILE).is_none());
}

/// An ID set in the image is kept by `generate`; replacing it by a derived one is refused.
#[test]
fn generate_keeps_an_existing_id_and_force_is_refused_in_an_image() {
    let img = Image::debian();
    img.cmd().args(["device-id", "set", "chosen-1"]).assert().success();
    img.cmd()
        .args(["device-id", "generate"])
        .assert()
        .success()
        .stdout("chosen-1\n")
        .stderr(predicate::str::contains("--force"));
    img.cmd()
        .args(["device-id", "generate", "--force"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not derived in an image"));
    assert_eq!(img.read(ID_FILE).unwrap(), "chosen-1\n");
}

#[test]
fn a_corrupt_id_file_is_reported_with_its_path() {
    let img = Image::debian();
    img.write(ID_FILE, "bad id with spaces\n");
    img.cmd()
        .arg("device-id")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds an invalid device ID"))
        .stderr(predicate::str::contains("device-id"));
}

#[test]
fn dry_run_changes_nothing_and_prints_the_plan() {
    let img = Image::debian();
    let before = img.snapshot();
    img.cmd()
        .args(["--dry-run", "device-id", "set", "edge-x"])
        .assert()
        .success()
        .stderr(predicate::str::contains("would write"))
        .stderr(predicate::str::contains("mode 0644"))
        .stderr(predicate::str::contains("owner root:root"));
    assert_eq!(img.snapshot(), before);
}

#[test]
fn a_symlinked_id_file_is_not_followed() {
    let img = Image::debian();
    img.write("/etc/shadow", "secret\n");
    std::fs::create_dir_all(img.path("/usr/edge/properties/edge-agent")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", img.path(ID_FILE)).unwrap();
    img.cmd()
        .args(["device-id", "set", "edge-x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("symbolic link"));
    assert_eq!(img.read("/etc/shadow").unwrap(), "secret\n");
}
