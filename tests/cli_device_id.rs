mod common;

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
        .stderr(predicate::str::contains("no Edge device ID is set"))
        // an image's own commands: --root, no sudo
        .stderr(predicate::str::contains(format!(
            "edge-setup --root {} device-id generate",
            img.root().display()
        )))
        .stderr(predicate::str::contains(format!(
            "edge-setup --root {} device-id set <ID>",
            img.root().display()
        )))
        .stderr(predicate::str::contains("sudo").not());
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

#[test]
fn generate_is_stable_and_keeps_an_existing_id_unless_forced() {
    let a = Image::debian();
    let b = Image::debian();
    let first = a.cmd().args(["device-id", "generate"]).output().unwrap();
    assert!(first.status.success());
    let id = String::from_utf8(first.stdout).unwrap();
    assert!(id.starts_with("edge-"), "{id}");
    assert!(
        !id.contains("4c4c4544004e3510804bc4c04f4d3232"),
        "the raw machine ID must not leak"
    );
    // the same machine (same machine-id) yields the same ID
    b.cmd()
        .args(["device-id", "generate"])
        .assert()
        .success()
        .stdout(id.clone());

    a.cmd().args(["device-id", "set", "chosen-1"]).assert().success();
    a.cmd()
        .args(["device-id", "generate"])
        .assert()
        .success()
        .stdout("chosen-1\n")
        .stderr(predicate::str::contains("--force"));
    assert_eq!(a.read(ID_FILE).unwrap(), "chosen-1\n");
    a.cmd()
        .args(["device-id", "generate", "--force"])
        .assert()
        .success()
        .stdout(id.clone());
    assert_eq!(a.read(ID_FILE).unwrap(), id);
}

#[test]
fn generate_prefers_a_meaningful_dmi_serial() {
    let img = Image::debian();
    img.write("/sys/class/dmi/id/product_serial", "To be filled by O.E.M.\n");
    let out = img.cmd().args(["device-id", "generate"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("edge-"),
        "placeholder serial must be ignored"
    );

    let img = Image::debian();
    img.write("/sys/class/dmi/id/product_serial", "SN-4711-XY\n");
    img.cmd()
        .args(["device-id", "generate"])
        .assert()
        .success()
        .stdout("SN-4711-XY\n");
}

#[test]
fn generate_without_any_machine_identity_says_what_to_do() {
    let img = Image::debian();
    std::fs::remove_file(img.path("/etc/machine-id")).unwrap();
    img.cmd()
        .args(["device-id", "generate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot derive a device ID"))
        .stderr(predicate::str::contains("device-id set <ID>"));
    assert!(img.read(ID_FILE).is_none());
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
