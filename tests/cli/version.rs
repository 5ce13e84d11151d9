//! `edge-setup --version` names the commit; `edge-setup completions SHELL`
//! prints a script the shell accepts.

use crate::common;

use common::Image;

#[test]
fn the_version_names_the_package_version_and_the_commit() {
    let out = Image::debian().cmd().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rest = text
        .strip_prefix(&format!("edge-setup {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{text}"));
    let commit = rest.strip_suffix(")\n").unwrap_or_else(|| panic!("{text}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
}

#[test]
fn the_bash_completion_is_valid_bash_and_json_carries_it() {
    let img = Image::debian();
    let out = img.cmd().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge-setup.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    // the script asks edge-setup itself at each Tab (tests/cli/completion.rs presses Tab)
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("_EDGE_SETUP_COMPLETE=\"bash\"") && script.contains("complete -o nospace"),
        "{script}"
    );

    let out = img.cmd().args(["--json", "completions", "zsh"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["changed"], false);
    assert_eq!(json["result"]["shell"], "zsh");
    assert!(
        json["result"]["script"]
            .as_str()
            .unwrap()
            .starts_with("#compdef edge-setup")
    );
    img.cmd().args(["completions", "tcsh"]).assert().code(2);
}
