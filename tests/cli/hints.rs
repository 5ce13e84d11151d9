//! Hints that fit their context (issue 27): the command as typed, the image's own means,
//! the input's own words, and bad input as bad input.

use crate::common;

use common::Image;
use predicates::prelude::*;

/// The binary on the live system as an ordinary user (nobody): refused before anything.
fn as_nobody(args: &[&str]) -> assert_cmd::assert::Assert {
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    assert_cmd::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(bin)
        .args(args)
        .env_remove("SUDO_UID")
        .assert()
}

#[test]
#[ignore = "needs root"]
fn an_ordinary_user_is_told_the_whole_command_to_run_as_root() {
    as_nobody(&["device-id", "set", "edge-plant7-01"])
        .code(3)
        .stderr(predicate::str::contains(
            "run it with sudo: sudo edge-setup device-id set edge-plant7-01",
        ))
        .stderr(predicate::str::contains("installs packages").not());
    // the configuration is root's: said so, not a lock file's "Permission denied"
    as_nobody(&["config", "set", "vnc.geometry", "1280x800"])
        .code(3)
        .stderr(predicate::str::contains("must run as root"))
        .stderr(predicate::str::contains(
            "sudo edge-setup config set vnc.geometry 1280x800",
        ))
        .stderr(predicate::str::contains("Permission denied").not());
}

#[test]
fn without_credentials_the_hint_names_the_command_typed() {
    let img = Image::debian();
    img.write("/usr/edge/properties/edge-agent/device-id", "edge-1\n");
    img.cmd()
        .args(["remote-access", "sync", "--user", "admin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "edge-setup --root {} remote-access sync --user admin --credentials-stdin",
            img.root().display()
        )))
        .stderr(predicate::str::contains("COMMAND").not());
}

#[test]
fn in_an_image_the_hints_are_the_images_own() {
    let img = Image::debian().with_vnc_set_up();
    img.cmd()
        .args(["setup", "status"])
        .assert()
        .stdout(predicate::str::contains(
            "each appliance derives its own at its first boot",
        ))
        .stdout(predicate::str::contains("device-id generate").not());
    img.cmd()
        .args(["vnc-user", "--user", "ghost", "--password-stdin"])
        .write_stdin("secret12\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "useradd --root {} --create-home ghost",
            img.root().display()
        )))
        .stderr(predicate::str::contains("sudo useradd").not());
}

#[test]
fn an_answers_file_that_is_not_text_or_not_a_file_is_bad_input() {
    let img = Image::debian();
    let dir = tempfile::tempdir().unwrap();
    img.cmd()
        .args(["setup", "--answers"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory, not a file"));
    let file = dir.path().join("answers.toml");
    std::fs::write(&file, b"[agent]\nurl = \"caf\xe9\"\n").unwrap();
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not UTF-8 text"))
        .stderr(predicate::str::contains("offset 18"));
    // misspelt names: all of them at once, each with the one likely meant, and the
    // installed example
    std::fs::write(
        &file,
        "[agnet]\nurl = \"https://t.example.com\"\n[vnc]\ninstal = true\n",
    )
    .unwrap();
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("2 unknown tables and keys"))
        .stderr(predicate::str::contains(
            "line 1: unknown table [agnet] (did you mean 'agent'?",
        ))
        .stderr(predicate::str::contains(
            "line 4: unknown key 'instal' in [vnc] (did you mean 'install'?",
        ))
        .stderr(predicate::str::contains(
            "/usr/share/doc/edge-setup/examples/appliance.toml",
        ));
}

#[test]
fn a_long_value_is_cut_in_the_message() {
    let img = Image::debian();
    let long = "x".repeat(100_000);
    let out = img.cmd().args(["device-id", "set", &long]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.len() < 2_000, "{} bytes of error", stderr.len());
    assert!(stderr.contains("more characters)"), "{stderr}");
}

/// `setup status` names each damaged file once, and a user whose password was removed
/// (`image prepare --vnc-passwords`) with the command that sets one.
#[test]
#[ignore = "needs root"]
fn the_status_names_a_damaged_file_once_and_a_user_without_a_password() {
    let img = Image::debian().with_vnc_set_up();
    std::fs::create_dir_all(img.path("/home/admin")).unwrap();
    std::os::unix::fs::chown(img.path("/home/admin"), Some(1000), Some(1000)).unwrap();
    img.cmd()
        .args(["vnc-user", "--user", "admin", "--password-stdin"])
        .write_stdin("secret12\n")
        .assert()
        .success();
    std::fs::remove_file(img.path("/home/admin/.vnc/passwd")).unwrap();
    img.write("/var/lib/edge-setup/first-boot.done", "{bad\n");
    let out = img.cmd().args(["setup", "status"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root = img.root().display().to_string();
    assert!(
        stdout.contains(&format!(
            "admin on :1 (port 5901; no password: edge-setup --root {root} vnc-user --user admin)"
        )),
        "{stdout}"
    );
    let damaged: Vec<&str> = stdout.lines().filter(|l| l.starts_with("damaged:")).collect();
    assert_eq!(damaged.len(), 1, "{stdout}");
    assert_eq!(damaged[0].matches("first-boot.done").count(), 1, "{}", damaged[0]);
    assert!(!damaged[0].contains("is damaged"), "{}", damaged[0]);
    let json = common::json::envelope(&img.cmd().args(["--json", "setup", "status"]).output().unwrap());
    assert_eq!(json["result"]["vnc_users"][0]["password"], false, "{json:#}");
}

/// An image root made by `mktemp -d` (0700): the user cannot pass it, said so with the
/// chmod that fixes it, not a hint about immutable flags.
#[test]
#[ignore = "needs root"]
fn an_image_root_a_user_cannot_pass_is_named_with_its_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let img = Image::debian().with_vnc_set_up();
    std::fs::create_dir_all(img.path("/home/admin")).unwrap();
    std::os::unix::fs::chown(img.path("/home/admin"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(img.root(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = img.snapshot();
    img.cmd()
        .args(["vnc-user", "--user", "admin", "--password-stdin"])
        .write_stdin("secret12\n")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("admin cannot reach the home directory"))
        .stderr(predicate::str::contains(format!(
            "chmod 755 {} and run",
            img.root().display()
        )))
        .stderr(predicate::str::contains("immutable").not());
    assert_eq!(img.snapshot(), before);
    std::fs::set_permissions(img.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    img.cmd()
        .args(["vnc-user", "--user", "admin", "--password-stdin"])
        .write_stdin("secret12\n")
        .assert()
        .success();
}
