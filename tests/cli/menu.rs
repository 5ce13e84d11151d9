//! The interactive menu, driven through a real pseudo-terminal with tmux.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Image;
use common::tmux::Tmux;

fn wait_for_file(path: &Path) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

fn menu_session(img: &Image) -> (Tmux, std::path::PathBuf) {
    let exit_file = img.root().join("exit-code");
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let cmd = format!(
        "{} --root {} setup; echo $? > {}; sleep 30",
        bin.display(),
        img.root().display(),
        exit_file.display()
    );
    (Tmux::start(&cmd), exit_file)
}

#[test]
fn the_menu_sets_a_device_id_and_exits_with_8() {
    let img = Image::debian();
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    let screen = tmux.screen();
    assert!(screen.contains(" 1  Configure network"), "{screen}");
    assert!(screen.contains(" 8  Exit"), "{screen}");
    tmux.send(&["1", "1", "Enter"]);
    tmux.wait_for("Set a new device ID", 1);
    tmux.send(&["y"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("Device ID (leave blank", 1);
    tmux.send(&["edge-menu-1", "Enter"]);
    tmux.wait_for("Enter your choice", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-menu-1\n"
    );
}

#[test]
fn escape_leaves_the_menu_with_exit_code_0() {
    let img = Image::debian();
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    // a number not on the menu is ignored
    tmux.send(&["9", "Enter"]);
    tmux.send(&["Escape"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
}

#[test]
fn option_7_stores_the_cloud_url_and_8_exits_with_0() {
    let img = Image::debian();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    assert!(tmux.screen().contains(" 7  Configure Edge Agent"));
    tmux.send(&["7", "Enter"]);
    tmux.wait_for("Enter cloud URL (leave blank to disable remote management)", 1);
    tmux.send(&["MyTenant.cumulocity.com", "Enter"]);
    tmux.wait_for("Enter your choice", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    let props = img
        .read("/usr/edge/properties/edge-agent/remote-connectivity.properties")
        .unwrap();
    assert!(props.contains("enabled=true"), "{props}");
    assert!(props.contains("url=https://mytenant.cumulocity.com"), "{props}");
    assert!(
        img.read("/etc/edge-setup/edge-setup.toml")
            .unwrap()
            .contains("url = \"https://mytenant.cumulocity.com\"")
    );
    // in an image the device ID is left to each appliance: none is derived here
    assert!(img.read("/usr/edge/properties/edge-agent/device-id").is_none());
}

/// As in the old menu, a blank answer at option 7 disables remote management, once
/// confirmed; the current URL is shown, not taken by Enter.
#[test]
fn option_7_with_a_blank_answer_disables_when_confirmed() {
    let img = Image::debian();
    let (tmux, exit_file) = blank_answer_at_option_7(&img);
    tmux.send(&["y"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("Enter your choice", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    let props = img
        .read("/usr/edge/properties/edge-agent/remote-connectivity.properties")
        .unwrap();
    assert!(props.contains("enabled=false"), "{props}");
    // the URL is kept for a later enable
    assert!(props.contains("url=https://t.example.com"), "{props}");
}

#[test]
fn the_menu_offers_options_2_to_6_and_option_6_needs_option_2() {
    let img = Image::debian();
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    let screen = tmux.screen();
    for line in [
        " 2  Run post-installation",
        " 3  Update license and SSL certificates",
        " 4  Run post-upgrade",
        " 5  Expand data disk size",
        " 6  Update tenant password",
    ] {
        assert!(screen.contains(line), "{line:?} missing:\n{screen}");
    }
    tmux.send(&["6", "Enter"]);
    tmux.wait_for("run option 2 first", 1);
    tmux.wait_for("Enter your choice", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
}

#[test]
fn option_2_from_the_console_asks_the_password_twice() {
    let img = Image::debian();
    let pki = common::pki::Pki::new();
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    tmux.send(&["2", "Enter"]);
    tmux.wait_for("[C] to take input from console", 1);
    tmux.send(&["C", "Enter"]);
    tmux.wait_for("Tenant admin username", 1);
    tmux.send(&["admin", "Enter"]);
    tmux.wait_for("Tenant admin password", 1);
    tmux.send(&["short", "Enter"]);
    tmux.wait_for("8 to 32 characters", 1);
    // each password typed where its prompt waits, never before echo is off
    tmux.wait_for_prompt("Tenant admin password:");
    tmux.send(&[common::pki::PASSWORD, "Enter"]);
    tmux.wait_for_prompt("Verify:");
    tmux.send(&["Different#123", "Enter"]);
    tmux.wait_for("do not match", 1);
    tmux.wait_for_prompt("Tenant admin password:");
    tmux.send(&[common::pki::PASSWORD, "Enter"]);
    tmux.wait_for_prompt("Verify:");
    tmux.send(&[common::pki::PASSWORD, "Enter"]);
    tmux.wait_for("Tenant domain name", 1);
    tmux.send(&[common::pki::DOMAIN, "Enter"]);
    tmux.wait_for("SSL certificate path", 1);
    tmux.send(&[&pki.file("expired.crt"), "Enter"]);
    tmux.wait_for("expired on 2000-01-01", 1);
    tmux.send(&["C-u", &pki.file("edge.crt"), "Enter"]);
    tmux.wait_for("SSL certificate key path", 1);
    tmux.send(&[&pki.file("edge.key"), "Enter"]);
    tmux.wait_for("Cumulocity licence path", 1);
    tmux.send(&[&pki.file("c8y.licence"), "Enter"]);
    tmux.wait_for("Apama licence path", 1);
    tmux.send(&["Enter"]);
    tmux.wait_for("Enter cloud URL", 1);
    tmux.send(&["Enter"]);
    tmux.wait_for("Run post-installation: done.", 1);
    let screen = tmux.screen();
    assert!(!screen.contains(common::pki::PASSWORD), "{screen}");
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    assert!(img.read("/var/lib/edge-setup/post-install.json").is_some());
    assert_eq!(img.mode("/etc/edge-setup/ssl/edge.example.com.key"), 0o600);
}

/// A person types `y`, then Enter, as two keystrokes (issue 27): the `y` alone answers
/// nothing, the Enter answers the question it was typed for and not the next one, and a
/// blank answer does not replace a set device ID without asking once more.
#[test]
fn a_confirmation_waits_for_enter_and_a_blank_answer_keeps_the_set_id() {
    let img = Image::debian();
    img.cmd().args(["device-id", "set", "edge-old-1"]).assert().success();
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let exit_file = img.root().join("exit-code");
    let tmux = Tmux::start(&format!(
        "{} --root {} setup device-id; echo $? > {}; sleep 30",
        bin.display(),
        img.root().display(),
        exit_file.display()
    ));
    tmux.wait_for("Set a new device ID", 1);
    tmux.send(&["y"]);
    std::thread::sleep(Duration::from_millis(500));
    let screen = tmux.screen();
    assert!(
        !screen.contains("Device ID (leave blank"),
        "a y without Enter was taken:\n{screen}"
    );
    tmux.send(&["Enter"]);
    tmux.wait_for("Device ID (leave blank", 1);
    tmux.send(&["Enter"]);
    tmux.wait_for("Replace the device ID edge-old-1 with one derived from this machine", 1);
    tmux.send(&["Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    tmux.wait_for("The device ID stays edge-old-1.", 1);
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-old-1\n"
    );
}

/// Enter at option 7 with a URL set, then Enter at the question that follows: remote
/// management stays on.
#[test]
fn option_7_with_a_blank_answer_not_confirmed_keeps_the_connection() {
    let img = Image::debian();
    let props = "/usr/edge/properties/edge-agent/remote-connectivity.properties";
    let (tmux, exit_file) = blank_answer_at_option_7(&img);
    let before = img.read(props).unwrap();
    tmux.send(&["Enter"]);
    tmux.wait_for("Remote management stays as it is.", 1);
    tmux.wait_for("Enter your choice", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    assert_eq!(img.read(props).unwrap(), before);
}

/// Remote connectivity enabled with a URL, then the menu's option 7 answered with Enter:
/// the session waits at `Disable remote management (now URL)`.
fn blank_answer_at_option_7(img: &Image) -> (Tmux, std::path::PathBuf) {
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    img.cmd()
        .args(["remote-connectivity", "enable", "--url", "t.example.com"])
        .assert()
        .success();
    let (tmux, exit_file) = menu_session(img);
    tmux.wait_for("Enter your choice", 1);
    tmux.send(&["7", "Enter"]);
    tmux.wait_for("now https://t.example.com)", 1);
    tmux.send(&["Enter"]);
    tmux.wait_for("Disable remote management (now https://t.example.com)", 1);
    (tmux, exit_file)
}

/// What a person types wrong at the menu is answered, not silently cleared; the status
/// stays on the screen until Enter (issue 27).
#[test]
fn a_wrong_choice_is_said_and_the_status_waits_for_enter() {
    let img = Image::debian();
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    tmux.send(&["-l", "a"]);
    tmux.wait_for("'a' is not a number", 1);
    tmux.send(&["-l", "99"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("99 is not on the menu: type a number from 1 to 14", 1);
    tmux.send(&["Enter"]);
    tmux.wait_for("Nothing typed", 1);
    tmux.send(&["-l", "12"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("Press Enter to go back to the menu.", 1);
    std::thread::sleep(Duration::from_millis(500));
    let screen = tmux.screen();
    assert!(screen.contains("VNC users:"), "{screen}");
    assert_eq!(
        screen.matches("edge-setup: appliance setup").count(),
        1,
        "the menu was drawn again under the status:\n{screen}"
    );
    tmux.send(&["Enter"]);
    tmux.wait_for("edge-setup: appliance setup", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
}

/// Option 14 asks for a key and its value, each checked by the key's rule where it is
/// typed, and sets it as `config set` does (issue 27).
#[test]
fn option_14_sets_a_configuration_key_checked_as_typed() {
    let img = Image::debian();
    let (tmux, exit_file) = menu_session(&img);
    tmux.wait_for("Enter your choice", 1);
    assert!(tmux.screen().contains("14  Set configuration keys"));
    tmux.send(&["-l", "14"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("Key to set", 1);
    assert!(tmux.screen().contains("vnc.geometry"), "the keys are listed");
    tmux.send(&["-l", "c8y.url"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("c8y.url is set with [agent] url", 1);
    tmux.send(&["-l", "vnc.geometry"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("Value of vnc.geometry", 1);
    tmux.send(&["BSpace"; 8]);
    tmux.send(&["-l", "big"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("expected WIDTHxHEIGHT", 1);
    tmux.send(&["-l", "1920x1080"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("Setting vnc.geometry = 1920x1080", 1);
    tmux.wait_for("Enter your choice", 2);
    tmux.send(&["8", "Enter"]);
    assert_eq!(wait_for_file(&exit_file), "0\n");
    assert!(
        img.read("/etc/edge-setup/edge-setup.toml")
            .unwrap()
            .contains("geometry = \"1920x1080\"")
    );
}
