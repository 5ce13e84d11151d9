use crate::common;

use common::Image;
use predicates::prelude::*;

const ANSWERS: &str = "[network]\nip = \"192.168.10.20\"\nnetmask = \"255.255.255.0\"\ngateway = \"192.168.10.1\"\n";
const DAT: &str = "/opt/c8y/utilities/post-installer/config.dat";

fn appliance() -> Image {
    let img = Image::debian();
    img.write(
        "/etc/network/interfaces",
        "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n",
    );
    img.write("/sys/class/net/eth0/type", "1\n");
    img.write("/sys/class/net/eth0/operstate", "up\n");
    std::fs::create_dir_all(img.path("/sys/class/net/eth0/device")).unwrap();
    img.write("/sys/class/net/lo/type", "772\n");
    img.write("/sys/class/net/lo/operstate", "unknown\n");
    img.write("/etc/hosts", "127.0.0.1 localhost\n");
    img
}

/// A file outside the image (input files are host paths), removed with the test's temp dir.
fn answers(text: &str) -> std::path::PathBuf {
    let (file, path) = tempfile::NamedTempFile::new().unwrap().keep().unwrap();
    drop(file);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn answers_file_configures_ifupdown_and_a_second_run_changes_nothing() {
    let img = appliance();
    let file = answers(ANSWERS);
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&file)
        .assert()
        .success()
        // ifupdown brings it up with these files when the image boots
        .stderr(predicate::str::contains(
            "Applying the configuration with ifupdown ... applied by the network's service when the image boots",
        ))
        .stderr(predicate::str::contains("ifup eth0").not());
    let interfaces = img.read("/etc/network/interfaces").unwrap();
    assert!(
        interfaces.contains("iface eth0 inet static\n    address 192.168.10.20/24\n    gateway 192.168.10.1\n"),
        "{interfaces}"
    );
    assert!(interfaces.contains("iface lo inet loopback"));
    assert!(!interfaces.contains("inet dhcp"));
    assert_eq!(
        img.read("/etc/resolv.conf").unwrap().lines().last(),
        Some("nameserver 192.168.10.1")
    );
    let dat = img.read(DAT).unwrap();
    assert!(
        dat.contains(
            "network.ip=192.168.10.20\nnetmask=255.255.255.0\ngateway.ip=192.168.10.1\ndns.server.ip=192.168.10.1\n"
        ),
        "{dat}"
    );
    assert_eq!(img.mode(DAT), 0o600);

    let before = img.snapshot();
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains("nothing changed"))
        .stderr(predicate::str::contains("first boot").not());
    assert_eq!(img.snapshot(), before);
    std::fs::remove_file(file).unwrap();
}

#[test]
fn each_stack_gets_its_own_file() {
    let cases = [
        (
            "networkmanager",
            "/etc/NetworkManager/system-connections/edge-setup-eth0.nmconnection",
            "address1=192.168.10.20/24,192.168.10.1",
            0o600,
            "nmcli connection up id edge-setup-eth0",
        ),
        (
            "networkd",
            "/etc/systemd/network/10-edge-setup-eth0.network",
            "Address=192.168.10.20/24\nGateway=192.168.10.1\nDNS=192.168.10.1",
            0o644,
            "networkctl reconfigure eth0",
        ),
        (
            "ifcfg",
            "/etc/sysconfig/network-scripts/ifcfg-eth0",
            "IPADDR=192.168.10.20\nPREFIX=24\nGATEWAY=192.168.10.1\nDNS1=192.168.10.1",
            0o644,
            "ifup eth0",
        ),
    ];
    for (stack, file, expect, mode, cmd) in cases {
        let img = appliance();
        let f = answers(&format!("{ANSWERS}stack = \"{stack}\"\n"));
        img.cmd()
            .args(["setup", "network", "--answers"])
            .arg(&f)
            .assert()
            .success()
            // an image's network service applies the file when it boots: nothing is run or left
            .stderr(predicate::str::contains(format!(
                "Applying the configuration with {stack} ... applied by the network's service when the image boots"
            )))
            .stderr(predicate::str::contains(cmd).not());
        assert!(img.read(edge_setup::system::offline::PENDING).is_none(), "{stack}");
        let text = img.read(file).unwrap_or_else(|| panic!("{stack}: {file} missing"));
        assert!(text.contains(expect), "{stack}: {text}");
        assert_eq!(img.mode(file), mode, "{stack}");
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn networkd_without_resolved_also_writes_resolv_conf() {
    // networkd's DNS= only reaches resolv.conf through systemd-resolved's stub link.
    let img = appliance();
    img.write("/etc/resolv.conf", "# no name server\n");
    let f = answers(&format!("{ANSWERS}stack = \"networkd\"\n"));
    img.cmd()
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .success();
    let resolv = img.read("/etc/resolv.conf").unwrap();
    assert!(resolv.contains("nameserver 192.168.10.1"), "{resolv}");

    let stub = appliance();
    std::fs::create_dir_all(stub.path("/run/systemd/resolve")).unwrap();
    stub.write("/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53\n");
    let _ = std::fs::remove_file(stub.path("/etc/resolv.conf"));
    std::os::unix::fs::symlink("/run/systemd/resolve/stub-resolv.conf", stub.path("/etc/resolv.conf")).unwrap();
    stub.cmd()
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .success();
    assert!(
        stub.read("/etc/systemd/network/10-edge-setup-eth0.network")
            .unwrap()
            .contains("DNS=192.168.10.1")
    );
    assert!(
        std::fs::symlink_metadata(stub.path("/etc/resolv.conf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(f).unwrap();
}

#[test]
fn network_manager_is_detected_when_installed_and_enabled() {
    let img = appliance();
    img.write("/usr/sbin/NetworkManager", "");
    std::fs::create_dir_all(img.path("/etc/systemd/system/multi-user.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/NetworkManager.service",
        img.path("/etc/systemd/system/multi-user.target.wants/NetworkManager.service"),
    )
    .unwrap();
    let f = answers(ANSWERS);
    img.cmd()
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .success()
        .stderr(predicate::str::contains("for networkmanager"));
    assert!(
        img.read("/etc/NetworkManager/system-connections/edge-setup-eth0.nmconnection")
            .is_some()
    );
    std::fs::remove_file(f).unwrap();
}

#[test]
fn config_dat_import_good_and_bad() {
    let img = appliance();
    let good = answers("network.ip=10.1.2.3\nnetmask=/16\ngateway.ip=10.1.0.1\ndns.server.ip=10.1.0.53\n");
    img.cmd()
        .args(["setup", "network", "--config-dat"])
        .arg(&good)
        .assert()
        .success();
    assert!(
        img.read("/etc/network/interfaces")
            .unwrap()
            .contains("address 10.1.2.3/16")
    );
    assert!(img.read(DAT).unwrap().contains("netmask=255.255.0.0"));

    let bad_cases = [
        (
            "network.ip=10.1.2.3\nnetmask=255.0.255.0\ngateway.ip=10.1.0.1\n",
            "'netmask'",
            "contiguous",
        ),
        (
            "network.ip=10.1.2.3\nnetmask=255.255.255.0\ngateway.ip=10.9.0.1\n",
            "'gateway.ip'",
            "outside the subnet",
        ),
        (
            "network.ip=10.1.2.0\nnetmask=255.255.255.0\ngateway.ip=10.1.2.1\n",
            "'gateway.ip'",
            "network address",
        ),
        ("network.ip=10.1.2.3\nnetmask=24\n", "'gateway.ip'", "has no"),
        ("network.ip=10.1.2.3\nthis line is broken\n", ":2:", "key=value"),
    ];
    for (text, key, rule) in bad_cases {
        let img = appliance();
        let f = answers(text);
        let before = img.snapshot();
        img.cmd()
            .args(["setup", "network", "--config-dat"])
            .arg(&f)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(key))
            .stderr(predicate::str::contains(rule));
        assert_eq!(img.snapshot(), before, "{text}");
        std::fs::remove_file(f).unwrap();
    }
    std::fs::remove_file(good).unwrap();
}

/// Over SSH the live network is refused (unit tests in src/wizard/network.rs);
/// an image or a dry run has no live link to lose, so neither is refused.
#[test]
fn over_ssh_an_image_or_a_dry_run_is_not_refused() {
    let img = appliance();
    let f = answers(ANSWERS);
    let before = img.snapshot();
    img.cmd()
        .env("SSH_CONNECTION", "10.0.0.9 50000 10.0.0.5 22")
        .args(["--dry-run", "setup", "--answers"])
        .arg(&f)
        .assert()
        .success();
    assert_eq!(img.snapshot(), before);
    img.cmd()
        .env("SSH_CONNECTION", "10.0.0.9 50000 10.0.0.5 22")
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .success();
    std::fs::remove_file(f).unwrap();
}

#[test]
fn rollback_restores_the_previous_files() {
    let img = appliance();
    let original = img.read("/etc/network/interfaces").unwrap();
    let f = answers(ANSWERS);
    img.cmd()
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .success();
    img.cmd()
        .args(["setup", "network", "--rollback"])
        .assert()
        .success()
        .stderr(predicate::str::contains("restored"));
    assert_eq!(img.read("/etc/network/interfaces").unwrap(), original);
    assert!(
        img.read("/etc/resolv.conf").is_none(),
        "a file that did not exist is removed again"
    );
    img.cmd()
        .args(["setup", "network", "--rollback"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no earlier network configuration"));
    std::fs::remove_file(f).unwrap();
}

#[test]
fn systemd_resolved_gets_a_drop_in_instead_of_resolv_conf() {
    let img = appliance();
    img.write("/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53\n");
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", img.path("/etc/resolv.conf")).unwrap();
    let f = answers(&format!("{ANSWERS}dns = \"9.9.9.9\"\n"));
    img.cmd()
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .success();
    assert_eq!(
        img.read("/etc/systemd/resolved.conf.d/edge-setup.conf")
            .unwrap()
            .lines()
            .last(),
        Some("DNS=9.9.9.9")
    );
    assert!(
        std::fs::symlink_metadata(img.path("/etc/resolv.conf"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(f).unwrap();
}

#[test]
fn interface_choice_and_errors() {
    let img = appliance();
    img.write("/sys/class/net/eth0/operstate", "down\n");
    let f = answers(ANSWERS);
    img.cmd()
        .args(["setup", "network", "--answers"])
        .arg(&f)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no ethernet interface is up"))
        // the input was the file: its key is named, not the flag
        .stderr(predicate::str::contains("interface = \"NAME\" in "))
        .stderr(predicate::str::contains("[network]"))
        .stderr(predicate::str::contains("--interface").not());
    img.cmd()
        .args(["setup", "network", "--interface", "eth0", "--answers"])
        .arg(&f)
        .assert()
        .success();
    img.cmd()
        .args(["setup", "network", "--interface", "bad/name", "--answers"])
        .arg(&f)
        .assert()
        .code(2);
    std::fs::remove_file(f).unwrap();
}

#[test]
fn answers_files_with_unknown_tables_or_keys_are_refused() {
    let img = appliance();
    for (text, expect) in [
        ("[netwrk]\nip = \"1.2.3.4\"\n", "unknown table [netwrk]"),
        ("[network]\nipaddr = \"1.2.3.4\"\n", "unknown key 'ipaddr' in [network]"),
        ("[network\n", "not valid TOML"),
    ] {
        let f = answers(text);
        let before = img.snapshot();
        img.cmd()
            .args(["setup", "--answers"])
            .arg(&f)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expect));
        assert_eq!(img.snapshot(), before);
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn without_a_terminal_the_menu_names_the_noninteractive_form() {
    let img = appliance();
    img.cmd()
        .arg("setup")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs a terminal"))
        .stderr(predicate::str::contains(format!(
            "edge-setup --root {} setup --answers FILE",
            img.root().display()
        )));
    img.cmd()
        .args(["setup", "network"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--config-dat FILE"));
}

const PROPERTIES: &str = "/usr/edge/properties/edge-agent/remote-connectivity.properties";

#[test]
fn answers_file_runs_network_device_id_and_agent_then_changes_nothing() {
    let img = appliance();
    let f = answers(&format!(
        "{ANSWERS}\n[device-id]\nid = \"edge-fleet-7\"\n\n[agent]\nurl = \"mytenant.cumulocity.com\"\n"
    ));
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&f)
        .assert()
        .success()
        .stderr(predicate::str::contains("== 7 Configure Edge Agent"))
        .stderr(predicate::str::contains("General device registration"));
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-fleet-7\n"
    );
    let props = img.read(PROPERTIES).unwrap();
    assert!(
        props.contains("enabled=true") && props.contains("url=https://mytenant.cumulocity.com"),
        "{props}"
    );
    let before = img.snapshot();
    img.cmd().args(["setup", "--answers"]).arg(&f).assert().success();
    assert_eq!(img.snapshot(), before, "a second run must change nothing");

    // a blank URL disables remote management and keeps the URL
    let off = answers("[agent]\nurl = \"\"\n");
    img.cmd()
        .args(["setup", "agent", "--answers"])
        .arg(&off)
        .assert()
        .success();
    let props = img.read(PROPERTIES).unwrap();
    assert!(
        props.contains("enabled=false") && props.contains("url=https://mytenant.cumulocity.com"),
        "{props}"
    );
    std::fs::remove_file(f).unwrap();
    std::fs::remove_file(off).unwrap();
}

#[test]
fn a_bad_value_anywhere_in_the_answers_file_applies_nothing() {
    for agent in [
        "url = \"http://t.example.com\"",
        "url = \"https://t.example.com/path\"",
        "insecure = \"yes\"\nurl = \"t.example.com\"",
    ] {
        let img = appliance();
        let f = answers(&format!("{ANSWERS}\n[agent]\n{agent}\n"));
        let before = img.snapshot();
        img.cmd().args(["setup", "--answers"]).arg(&f).assert().code(2);
        assert_eq!(
            img.snapshot(),
            before,
            "{agent}: the network must not be configured either"
        );
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn setup_status_reports_the_agent_and_device() {
    let img = appliance();
    img.cmd().args(["device-id", "set", "edge-s1"]).assert().success();
    img.cmd()
        .args(["setup", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("remote connectivity: disabled"))
        .stdout(predicate::str::contains("edge-s1"));
}

/// One bad entry anywhere in an answers file changes nothing, and the error
/// names the file, the table (with the entry of an array) and the key.
#[test]
fn an_answers_file_with_a_bad_vnc_user_applies_nothing() {
    let img = appliance();
    let pw = tempfile::tempdir().unwrap();
    let private = |name: &str, text: &str| {
        let path = pw.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        path
    };
    let password = private("vnc.pass", "secret12\n");
    let long = private("long.pass", "fifteen-chars12\n");
    let head = "[device-id]\nid = \"edge-plant7-01\"\n[agent]\nurl = \"mytenant.cumulocity.com\"\n";
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    let before = img.snapshot();
    let f = answers(&format!(
        "{head}[[vnc-user]]\nuser = \"root\"\npassword-file = \"{}\"\n[[vnc-user]]\nuser = \"nobody-here\"\npassword-file = \"{}\"\n",
        password.display(),
        password.display()
    ));
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{} [[vnc-user]] #2 (user nobody-here): there is no user 'nobody-here'",
            f.display()
        )))
        .stderr(predicate::str::contains("nothing was changed"));
    assert_eq!(img.snapshot(), before);
    let f = answers(&format!(
        "{head}[[vnc-user]]\nuser = \"root\"\npassword-file = \"{}\"\n",
        long.display()
    ));
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{} [[vnc-user]] #1 (user root) 'password-file' {}: the VNC password is refused",
            f.display(),
            long.display()
        )))
        .stderr(predicate::str::contains("standard input").not());
    assert_eq!(img.snapshot(), before);
}

#[test]
fn an_empty_answers_file_is_an_error() {
    let img = appliance();
    let f = answers("# nothing yet\n");
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("configures nothing"));
}

/// The plan of a dry run is what the real run does: the file's device ID, not
/// one derived from the machine, reaches the agent's step.
#[test]
fn a_dry_run_plans_on_what_earlier_options_would_write() {
    let img = appliance();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    img.write("/etc/machine-id", "4c4c4544004e3510804bc4c04f4d3232\n");
    let f = answers("[device-id]\nid = \"edge-plant7-01\"\n[agent]\nurl = \"mytenant.cumulocity.com\"\n");
    let before = img.snapshot();
    let out = img
        .cmd()
        .args(["--dry-run", "--json", "setup", "--answers"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(img.snapshot(), before);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("edge-4c4c") && !stderr.contains("Generating"),
        "{stderr}"
    );
    let json = common::json::envelope(&out);
    assert_eq!(json["dry_run"], true);
    let writes = common::json::written(&json);
    let id_file = img
        .path("/usr/edge/properties/edge-agent/device-id")
        .display()
        .to_string();
    assert_eq!(writes.iter().filter(|p| **p == id_file).count(), 1, "{writes:?}");
    img.cmd().args(["setup", "--answers"]).arg(&f).assert().success();
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-plant7-01\n"
    );
}

/// A file named on the command line that does not exist is bad input (2), like any wrong argument.
#[test]
fn a_missing_answers_or_config_dat_file_is_bad_input() {
    let img = appliance();
    for args in [
        vec!["setup", "--answers", "/nonexistent/answers.toml"],
        vec!["setup", "network", "--config-dat", "/nonexistent/config.dat"],
    ] {
        img.cmd()
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("/nonexistent/").and(predicate::str::contains("does not exist")));
    }
}

/// Options run in menu order; the agent (7) registers with the ID the file's
/// [device-id] (11) gives, which then finds it in place.
#[test]
fn answers_run_in_menu_order_and_the_agent_registers_the_files_device_id() {
    let img = appliance();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    img.write("/etc/machine-id", "4c4c4544004e3510804bc4c04f4d3232\n");
    let f = answers("[device-id]\nid = \"edge-plant7-01\"\n[agent]\nurl = \"mytenant.cumulocity.com\"\n");
    let out = img.cmd().args(["setup", "--answers"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    let (agent, id) = (err.find("== 7 ").unwrap(), err.find("== 11 ").unwrap());
    assert!(agent < id, "{err}");
    assert!(err[agent..id].contains("Writing the device ID edge-plant7-01"), "{err}");
    assert!(
        err[id..].contains("edge-plant7-01 to /usr/edge/properties/edge-agent/device-id ... unchanged"),
        "{err}"
    );
    assert_eq!(
        img.read("/usr/edge/properties/edge-agent/device-id").unwrap(),
        "edge-plant7-01\n"
    );
}
