//! Platform steps really run: an in-process context in live mode over a
//! temporary root, with the host's command runner. Image mode only lists the
//! steps, so this is where their order, halting, and where the secrets go are
//! proven.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::live_ctx;
use common::pki::{DOMAIN, NEW_PASSWORD, PASSWORD, Pki};
use edge_setup::cli::{OptionInput, SetupArgs, SetupCommand};

/// Installs a step that appends its name to `log` in the root, then runs `body`.
fn step(root: &Path, option: &str, name: &str, body: &str) {
    let dir = root.join(format!("etc/edge-setup/hooks/{option}.d"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = format!(
        "#!/bin/sh\nset -e\nroot=$(cd \"$(dirname \"$0\")/../../../..\" && pwd)\necho {name} >> \"$root/log\"\n{body}\n"
    );
    std::fs::write(dir.join(name), script).unwrap();
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn setup(option: SetupCommand) -> SetupArgs {
    SetupArgs {
        answers: None,
        force: false,
        option: Some(option),
    }
}

fn answers(file: &Path) -> OptionInput {
    OptionInput {
        config_dat: None,
        answers: Some(file.to_path_buf()),
    }
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_default()
}

#[test]
#[ignore = "needs root"]
fn steps_run_in_order_with_the_secret_only_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pki = Pki::new();
    step(root, "post-install", "10-first", "");
    step(
        root,
        "post-install",
        "20-dump",
        "printf '%s\\n' \"$0\" \"$@\" > \"$root/argv\"\nenv > \"$root/env\"\ncat > \"$root/stdin\"\necho imported",
    );
    let (ctx, err) = live_ctx(root);
    let file = pki.answers(&pki.post_install(&[]));
    edge_setup::wizard::run(&ctx, &setup(SetupCommand::PostInstall(answers(&file)))).unwrap();

    assert_eq!(read(root, "log"), "10-first\n20-dump\n");
    let argv = read(root, "argv");
    assert_eq!(argv.lines().count(), 1, "the step gets no arguments: {argv}");
    assert!(!argv.contains(PASSWORD));
    assert!(!read(root, "env").contains(PASSWORD));
    assert!(!read(root, "env").is_empty());

    let json: serde_json::Value = serde_json::from_str(&read(root, "stdin")).unwrap();
    assert_eq!(json["option"], "post-install");
    assert_eq!(json["tenant_password"], PASSWORD);
    assert_eq!(json["tenant_username"], "admin");
    assert_eq!(json["tenant_domain"], DOMAIN);
    assert_eq!(json["cloud_url"], "https://tenant.cumulocity.com");
    assert_eq!(json["files"]["key"], "/etc/edge-setup/ssl/edge.example.com.key");
    assert_eq!(json["files"]["apama_licence"], "/etc/edge-setup/licence/apama.xml");

    let text = err.text();
    assert!(
        text.contains("Platform step post-install.d/10-first ... done"),
        "{text}"
    );
    assert!(
        text.contains("Platform step post-install.d/20-dump ...\n    imported\n  ... done"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(root.join("var/lib/edge-setup/post-install.json").exists());
}

#[test]
#[ignore = "needs root"]
fn a_failing_step_halts_the_option_and_success_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pki = Pki::new();
    step(root, "post-install", "10-ok", "");
    step(
        root,
        "post-install",
        "20-fails",
        "echo 'tenant database unreachable' >&2\nexit 3",
    );
    step(root, "post-install", "30-never", "");
    let (ctx, _) = live_ctx(root);
    let file = pki.answers(&pki.post_install(&[]));
    let e = edge_setup::wizard::run(&ctx, &setup(SetupCommand::PostInstall(answers(&file)))).unwrap_err();
    assert_eq!(e.what, "the platform step post-install.d/20-fails failed");
    assert_eq!(e.why.as_deref(), Some("exit status 3: tenant database unreachable"));
    assert_eq!(read(root, "log"), "10-ok\n20-fails\n");
    assert!(!root.join("var/lib/edge-setup/post-install.json").exists());

    // Option 6 still refuses: option 2 did not succeed.
    let e = edge_setup::wizard::run(&ctx, &setup(SetupCommand::TenantPassword(answers(&file)))).unwrap_err();
    assert!(e.what.contains("needs a completed post-installation"), "{e}");
}

#[test]
#[ignore = "needs root"]
fn tenant_password_steps_get_the_new_password_and_a_failure_keeps_the_old_one_saved() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pki = Pki::new();
    let (ctx, _) = live_ctx(root);
    let file = pki.answers(&pki.post_install(&[]));
    edge_setup::wizard::run(&ctx, &setup(SetupCommand::PostInstall(answers(&file)))).unwrap();
    let dat = "opt/c8y/utilities/post-installer/config.dat";
    let saved = read(root, dat);

    let new = pki.answers(&format!(
        "[tenant-password]\npassword-file = \"{}\"\n",
        pki.file("new-password")
    ));
    step(root, "tenant-password", "10-refuse", "cat > /dev/null\nexit 1");
    let e = edge_setup::wizard::run(&ctx, &setup(SetupCommand::TenantPassword(answers(&new)))).unwrap_err();
    assert!(e.what.contains("tenant-password.d/10-refuse failed"), "{e}");
    assert_eq!(read(root, dat), saved, "config.dat keeps the password the platform has");

    std::fs::remove_file(root.join("etc/edge-setup/hooks/tenant-password.d/10-refuse")).unwrap();
    step(root, "tenant-password", "10-change", "cat > \"$root/stdin\"");
    edge_setup::wizard::run(&ctx, &setup(SetupCommand::TenantPassword(answers(&new)))).unwrap();
    let json: serde_json::Value = serde_json::from_str(&read(root, "stdin")).unwrap();
    assert_eq!(json["option"], "tenant-password");
    assert_eq!(json["tenant_password"], NEW_PASSWORD);
    assert_eq!(json["tenant_username"], "admin");
    assert_ne!(read(root, dat), saved);
}

#[test]
#[ignore = "needs root"]
fn a_step_others_may_write_is_refused_before_any_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pki = Pki::new();
    step(root, "post-install", "10-fine", "");
    step(root, "post-install", "20-writable", "");
    let hook = root.join("etc/edge-setup/hooks/post-install.d/20-writable");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ctx, _) = live_ctx(root);
    let file = pki.answers(&pki.post_install(&[]));
    let e = edge_setup::wizard::run(&ctx, &setup(SetupCommand::PostInstall(answers(&file)))).unwrap_err();
    assert!(e.what.contains("group or others may change it"), "{e}");
    assert_eq!(read(root, "log"), "", "no step ran");
}
