//! Options 2 to 6 through the command line, on image roots: every input rule,
//! what is installed where, and the order between the options.

use crate::common;

use common::Image;
use common::pki::{DOMAIN, NEW_PASSWORD, PASSWORD, Pki};
use predicates::prelude::*;

const DAT: &str = "/opt/c8y/utilities/post-installer/config.dat";
const STATE: &str = "/var/lib/edge-setup/post-install.json";
const CRT: &str = "/etc/edge-setup/ssl/edge.example.com.crt";
const KEY: &str = "/etc/edge-setup/ssl/edge.example.com.key";
const LICENCE: &str = "/etc/edge-setup/licence/c8y.licence";
const APAMA: &str = "/etc/edge-setup/licence/apama.xml";

/// An image whose DNS is configured, as option 2's agent step needs.
fn appliance() -> Image {
    let img = Image::debian();
    img.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
    img
}

fn post_install(img: &Image, pki: &Pki) {
    let answers = pki.answers(&pki.post_install(&[]));
    img.cmd()
        .args(["setup", "post-install", "--answers"])
        .arg(&answers)
        .assert()
        .success();
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn post_install_installs_the_files_saves_config_dat_and_records_success() {
    let img = appliance();
    let pki = Pki::new();
    let answers = pki.answers(&pki.post_install(&[]));
    let out = img
        .cmd()
        .args(["setup", "post-install", "--answers"])
        .arg(&answers)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "Installing the SSL certificate as {CRT} ... created"
        )))
        .stderr(predicate::str::contains(
            "Setting c8y.url = https://tenant.cumulocity.com",
        ))
        .stderr(predicate::str::contains(
            "No platform steps are installed for this option (none in /etc/edge-setup/hooks/post-install.d/)",
        ))
        .get_output()
        .clone();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(PASSWORD), "the password was printed:\n{all}");

    assert_eq!(
        img.read(CRT).unwrap(),
        std::fs::read_to_string(pki.path("edge.crt")).unwrap()
    );
    assert_eq!(
        img.read(KEY).unwrap(),
        std::fs::read_to_string(pki.path("edge.key")).unwrap()
    );
    assert_eq!(img.read(LICENCE).unwrap(), "LICENCE-KEY-1234\n");
    assert_eq!(img.read(APAMA).unwrap(), "<license>apama</license>\n");
    assert_eq!((img.mode(CRT), img.mode(KEY), img.mode(LICENCE)), (0o644, 0o600, 0o644));
    assert_eq!(img.owner(KEY), (0, 0));

    let dat = img.read(DAT).unwrap();
    assert!(
        dat.starts_with(&format!(
            "tenant.admin.username=admin\ntenant.admin.password={}\ntenant.domain.name={DOMAIN}\nssl.certificate=/etc/edge-setup/secrets/edge.crt\n",
            base64(PASSWORD),
        )),
        "{dat}"
    );
    // an image records copies of the build host's files, never the host's paths
    assert!(!dat.contains(&pki.file("")), "a host path reached the image:\n{dat}");
    for name in ["edge.crt", "edge.key", "c8y.licence", "apama.xml"] {
        let copy = format!("/etc/edge-setup/secrets/{name}");
        assert!(dat.contains(&format!("={copy}\n")), "{name} is not recorded:\n{dat}");
        assert_eq!(
            img.read(&copy).unwrap(),
            std::fs::read_to_string(pki.path(name)).unwrap()
        );
        assert_eq!((img.mode(&copy), img.owner(&copy)), (0o600, (0, 0)));
    }
    assert_eq!(img.mode("/etc/edge-setup/secrets"), 0o700);
    assert!(dat.contains("cloud.url=https://tenant.cumulocity.com\n"), "{dat}");
    assert_eq!(img.mode(DAT), 0o600);

    let state = img.read(STATE).unwrap();
    assert!(state.contains("\"tenant_domain\": \"edge.example.com\""), "{state}");
    assert!(state.contains(KEY), "{state}");
    assert!(!state.contains(PASSWORD), "{state}");
    assert!(
        img.read("/etc/edge-setup/edge-setup.toml")
            .unwrap()
            .contains("url = \"https://tenant.cumulocity.com\"")
    );

    // The same answers again change no file but the state's timestamp.
    img.cmd()
        .args(["setup", "post-install", "--answers"])
        .arg(&answers)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "Installing the SSL certificate as {CRT} ... unchanged"
        )));
}

#[test]
fn the_old_config_dat_with_its_base64_password_is_accepted() {
    let img = appliance();
    let pki = Pki::new();
    let dat = format!(
        "tenant.admin.username=admin\ntenant.admin.password={}\ntenant.domain.name={DOMAIN}\nssl.certificate={}\nssl.certificate.key={}\nc8y.license={}\napama.license=\n",
        base64(PASSWORD),
        pki.file("edge.crt"),
        pki.file("edge.key"),
        pki.file("c8y.licence")
    );
    pki.write("config.dat", &dat);
    img.cmd()
        .args(["setup", "post-install", "--config-dat"])
        .arg(pki.path("config.dat"))
        .assert()
        .success()
        .stderr(predicate::str::contains("Remote connectivity is disabled"));
    assert!(img.read(DAT).unwrap().contains(&base64(PASSWORD)));
    assert!(img.read(APAMA).is_none());
    assert!(img.read(STATE).is_some());
}

#[test]
fn every_rule_is_refused_with_the_file_and_the_reason_and_nothing_changes() {
    let img = appliance();
    let pki = Pki::new();
    pki.write("loose-password", &format!("{PASSWORD}\n"));
    pki.secret("short-password", "Short1");
    pki.secret("space-password", "has space 123");
    let f = |n: &str| pki.file(n);
    // (answers changes, what the error must say)
    type Case = (Vec<(&'static str, Option<String>)>, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            vec![("certificate", Some(f("expired.crt")))],
            vec![format!("{}: the certificate expired on 2000-01-01", f("expired.crt"))],
        ),
        (
            vec![("certificate", Some(f("other-domain.crt")))],
            vec![format!(
                "{}: the certificate does not cover edge.example.com: it names other.example.com",
                f("other-domain.crt")
            )],
        ),
        (
            vec![("key", Some(f("other.key")))],
            vec![format!(
                "{}: the key does not belong to the certificate",
                f("other.key")
            )],
        ),
        (
            vec![("key", Some(f("cert-not-key.key")))],
            vec![format!("{}: no private key found", f("cert-not-key.key"))],
        ),
        (
            vec![("licence", Some(f("empty.licence")))],
            vec![format!("{}: the Cumulocity licence file is empty", f("empty.licence"))],
        ),
        (
            vec![("certificate", Some(f("edge.pem")))],
            vec![format!(
                "{}: the SSL certificate must be a .crt or .cert file",
                f("edge.pem")
            )],
        ),
        (
            vec![("apama-licence", Some(f("c8y.licence")))],
            vec!["the Apama licence must be a .xml file".into()],
        ),
        (
            vec![("certificate", Some("certs/edge.crt".into()))],
            vec!["certs/edge.crt: the path of the SSL certificate must be absolute".into()],
        ),
        (
            vec![("licence", Some(f("missing.licence")))],
            vec![format!("{} does not exist", f("missing.licence"))],
        ),
        (
            vec![("domain", Some("edge".into()))],
            vec!["'domain' is not valid".into(), "at least two labels".into()],
        ),
        (
            vec![
                ("domain", Some("example.com".into())),
                ("certificate", Some(f("wildcard.crt"))),
            ],
            vec!["does not cover example.com: it names *.example.com".into()],
        ),
        (
            vec![("password-file", Some(f("short-password")))],
            vec!["8 to 32 characters".into(), "it has 6 characters".into()],
        ),
        (
            vec![("password-file", Some(f("space-password")))],
            vec!["a character that is not allowed".into()],
        ),
        (
            vec![("password-file", Some(f("loose-password")))],
            vec!["may be read by group or others".into(), "chmod 600".into()],
        ),
        (vec![("password-file", None)], vec!["has no 'password-file'".into()]),
        (vec![("username", Some("jane doe".into()))], vec!["no spaces".into()]),
        (
            vec![("cloud-url", Some("http://tenant.cumulocity.com".into()))],
            vec!["'cloud-url' is not valid".into(), "not encrypted".into()],
        ),
    ];
    for (changes, expected) in cases {
        let changes: Vec<(&str, Option<&str>)> = changes.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let answers = pki.answers(&pki.post_install(&changes));
        let before = img.snapshot();
        let out = img
            .cmd()
            .args(["setup", "post-install", "--answers"])
            .arg(&answers)
            .assert()
            .code(2)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for e in &expected {
            assert!(stderr.contains(e.as_str()), "{changes:?}: expected {e:?} in:\n{stderr}");
        }
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        assert!(!stderr.contains("has space 123"), "{stderr}");
        assert_eq!(img.snapshot(), before, "{changes:?} changed the image");
    }
}

#[test]
fn a_wildcard_certificate_covers_the_domain() {
    let img = appliance();
    let pki = Pki::new();
    let answers = pki.answers(&pki.post_install(&[("certificate", Some(&pki.file("wildcard.crt")))]));
    img.cmd()
        .args(["setup", "post-install", "--answers"])
        .arg(&answers)
        .assert()
        .success();
}

#[test]
fn options_3_4_and_6_refuse_until_option_2_succeeded() {
    let img = appliance();
    let pki = Pki::new();
    let answers = pki.answers("[certificates]\n[tenant-password]\n");
    for args in [
        vec!["setup", "certificates"],
        vec!["setup", "post-upgrade"],
        vec!["setup", "tenant-password"],
        vec!["setup", "certificates", "--rollback"],
    ] {
        img.cmd()
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("needs a completed post-installation"))
            .stderr(predicate::str::contains(format!(
                "run option 2 first: edge-setup --root {} setup post-install",
                img.root().display()
            )));
    }
    img.cmd()
        .args(["setup", "--answers"])
        .arg(&answers)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("run option 2 first"));
}

#[test]
fn the_domain_cannot_change_after_post_installation() {
    let img = appliance();
    let pki = Pki::new();
    post_install(&img, &pki);
    let answers = pki.answers(&pki.post_install(&[
        ("domain", Some("other.example.com")),
        ("certificate", Some(&pki.file("other-domain.crt"))),
    ]));
    img.cmd()
        .args(["setup", "post-install", "--answers"])
        .arg(&answers)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the tenant domain is edge.example.com since the first post-installation and cannot change",
        ));
}

#[test]
fn certificates_are_replaced_with_the_old_ones_kept_and_rolled_back() {
    let img = appliance();
    let pki = Pki::new();
    post_install(&img, &pki);
    let old_crt = img.read(CRT).unwrap();
    let old_key = img.read(KEY).unwrap();

    // checked against the domain of option 2
    let wrong = pki.answers(&format!(
        "[certificates]\ncertificate = \"{}\"\nkey = \"{}\"\nlicence = \"{}\"\n",
        pki.file("other-domain.crt"),
        pki.file("edge.key"),
        pki.file("c8y.licence")
    ));
    let before = img.snapshot();
    img.cmd()
        .args(["setup", "certificates", "--answers"])
        .arg(&wrong)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not cover edge.example.com"));
    assert_eq!(img.snapshot(), before);

    let next = pki.answers(&format!(
        "[certificates]\ncertificate = \"{}\"\nkey = \"{}\"\nlicence = \"{}\"\n",
        pki.file("next.crt"),
        pki.file("next.key"),
        pki.file("next.licence")
    ));
    img.cmd()
        .args(["setup", "certificates", "--answers"])
        .arg(&next)
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "Replacing the SSL certificate key {KEY} ... updated"
        )))
        .stderr(predicate::str::contains(
            "sudo edge-setup setup certificates --rollback",
        ));
    assert_eq!(
        img.read(CRT).unwrap(),
        std::fs::read_to_string(pki.path("next.crt")).unwrap()
    );
    assert_eq!(img.read(LICENCE).unwrap(), "LICENCE-KEY-5678\n");
    assert_eq!(img.mode(KEY), 0o600);
    assert_eq!(
        img.read("/var/lib/edge-setup/previous/edge.example.com.crt").unwrap(),
        old_crt
    );
    assert_eq!(img.mode("/var/lib/edge-setup/previous/edge.example.com.key"), 0o600);
    assert!(
        img.read(APAMA).is_some(),
        "the Apama licence was not given, so it stays"
    );
    assert!(
        img.read(DAT)
            .unwrap()
            .contains("ssl.certificate=/etc/edge-setup/secrets/next.crt\n")
    );

    img.cmd()
        .args(["setup", "certificates", "--rollback"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("Putting back {CRT} ... updated")));
    assert_eq!(img.read(CRT).unwrap(), old_crt);
    assert_eq!(img.read(KEY).unwrap(), old_key);
    assert_eq!(img.read(LICENCE).unwrap(), "LICENCE-KEY-1234\n");
    assert!(img.read("/var/lib/edge-setup/previous/edge.example.com.crt").is_none());
    img.cmd()
        .args(["setup", "certificates", "--rollback"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no previous certificate files"));
}

#[test]
fn tenant_password_is_checked_saved_base64_and_never_printed() {
    let img = appliance();
    let pki = Pki::new();
    post_install(&img, &pki);
    pki.secret("bad", "short");
    let bad = pki.answers(&format!("[tenant-password]\npassword-file = \"{}\"\n", pki.file("bad")));
    let before = img.snapshot();
    img.cmd()
        .args(["setup", "tenant-password", "--answers"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("8 to 32 characters"));
    assert_eq!(img.snapshot(), before);

    let good = pki.answers(&format!(
        "[tenant-password]\npassword-file = \"{}\"\n",
        pki.file("new-password")
    ));
    let out = img
        .cmd()
        .args(["setup", "tenant-password", "--answers"])
        .arg(&good)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "none in /etc/edge-setup/hooks/tenant-password.d/",
        ))
        .get_output()
        .clone();
    assert!(!String::from_utf8_lossy(&out.stderr).contains(NEW_PASSWORD));
    let dat = img.read(DAT).unwrap();
    assert!(
        dat.contains(&format!("tenant.admin.password={}\n", base64(NEW_PASSWORD))),
        "{dat}"
    );
    assert!(
        dat.contains("tenant.admin.username=admin\n"),
        "the other answers stay: {dat}"
    );
    // Without a terminal the console is not an option: the error names the file forms.
    img.cmd()
        .args(["setup", "tenant-password"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--answers FILE with a [tenant-password] table",
        ));
}

#[test]
fn post_upgrade_reapplies_network_and_agent_and_refuses_over_ssh() {
    let img = appliance();
    img.write(
        "/etc/network/interfaces",
        "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n",
    );
    img.write("/sys/class/net/eth0/type", "1\n");
    img.write("/sys/class/net/eth0/operstate", "up\n");
    std::fs::create_dir_all(img.path("/sys/class/net/eth0/device")).unwrap();
    let pki = Pki::new();
    let mut text = pki.post_install(&[]);
    text.push_str("[network]\nip = \"192.168.10.20\"\nnetmask = \"255.255.255.0\"\ngateway = \"192.168.10.1\"\n");
    let answers = pki.answers(&text);
    img.cmd().args(["setup", "--answers"]).arg(&answers).assert().success();

    // Someone edits the interfaces file: the post-upgrade writes the saved configuration again.
    let configured = img.read("/etc/network/interfaces").unwrap();
    img.write("/etc/network/interfaces", "auto lo\niface lo inet loopback\n");
    // an image has no live link an SSH session could lose: not refused there
    img.cmd()
        .env("SSH_CONNECTION", "10.0.0.9 50000 10.0.0.5 22")
        .args(["--dry-run", "setup", "post-upgrade"])
        .assert()
        .success();
    img.write(
        "/etc/edge-setup/hooks/post-upgrade.d/10-platform",
        "#!/bin/sh\ntouch /tmp/edge-setup-hook-must-not-run\n",
    );
    std::fs::set_permissions(
        img.path("/etc/edge-setup/hooks/post-upgrade.d/10-platform"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    img.cmd()
        .args(["setup", "post-upgrade"])
        .assert()
        .success()
        .stderr(predicate::str::contains("ifup eth0").not())
        .stderr(predicate::str::contains("Remote connectivity was already enabled for https://tenant.cumulocity.com"))
        // its values are not stored in the image: left for the target, named
        .stderr(predicate::str::contains(
            "the first boot cannot do it (it reads values on standard input, which are not stored in the image): /etc/edge-setup/hooks/post-upgrade.d/10-platform",
        ));
    assert!(configured.contains("address 192.168.10.20/24"), "{configured}");
    let rewritten = img.read("/etc/network/interfaces").unwrap();
    assert!(
        rewritten.contains("iface eth0 inet static\n    address 192.168.10.20/24\n"),
        "{rewritten}"
    );
    assert!(!std::path::Path::new("/tmp/edge-setup-hook-must-not-run").exists());
}

#[test]
fn an_answers_file_runs_options_2_3_and_6_in_menu_order() {
    let img = appliance();
    let pki = Pki::new();
    let mut text = pki.post_install(&[("apama-licence", None)]);
    text.push_str(&format!(
        "[certificates]\ncertificate = \"{}\"\nkey = \"{}\"\nlicence = \"{}\"\n[tenant-password]\npassword-file = \"{}\"\n",
        pki.file("next.crt"),
        pki.file("next.key"),
        pki.file("next.licence"),
        pki.file("new-password")
    ));
    let answers = pki.answers(&text);
    let out = img
        .cmd()
        .args(["setup", "--answers"])
        .arg(&answers)
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = |s: &str| stderr.find(s).unwrap_or_else(|| panic!("{s:?} missing:\n{stderr}"));
    assert!(
        at("== 2 Run post-installation") < at("== 3 Update license") && at("== 3 Update license") < at("== 6 Update")
    );
    assert_eq!(
        img.read(CRT).unwrap(),
        std::fs::read_to_string(pki.path("next.crt")).unwrap()
    );
    assert!(img.read(DAT).unwrap().contains(&base64(NEW_PASSWORD)));
}

#[test]
fn expand_disk_in_image_mode_explains_itself() {
    let img = appliance();
    img.cmd()
        .args(["setup", "expand-disk"])
        .assert()
        .success()
        .stderr(predicate::str::contains("can only be grown on the running appliance"))
        .stderr(predicate::str::contains("the image has no growpart"));
    img.cmd()
        .args(["config", "set", "disk.data-mount", "data"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("absolute path"));
    img.cmd()
        .args(["config", "set", "disk.data-mount", "/data/"])
        .assert()
        .success();
    img.cmd()
        .args(["setup", "expand-disk"])
        .assert()
        .success()
        .stderr(predicate::str::contains("under /data (disk.data-mount)"));
}

#[test]
fn without_dns_option_2_with_a_cloud_url_changes_nothing() {
    let img = Image::debian();
    let pki = Pki::new();
    let answers = pki.answers(&pki.post_install(&[]));
    let before = img.snapshot();
    img.cmd()
        .args(["setup", "post-install", "--answers"])
        .arg(&answers)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("needs DNS"));
    assert_eq!(img.snapshot(), before);
}
