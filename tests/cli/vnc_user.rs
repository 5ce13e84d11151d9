//! `edge-setup vnc-user` in image roots: files, rules, concurrency, crashes, traps.
//! These tests create files owned by other users, so they need root (as CI has).

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tmux::Tmux;
use common::{Image, ROCKY_9};
use edge_setup::vnc_user::mapping::{Mappings, Source};
use predicates::prelude::*;

const MAPPING: &str = "/opt/c8y/utilities/vnc-display-mapping";
const USERS: &str = "/etc/tigervnc/vncserver.users";
const LOCK: &str = "/opt/c8y/utilities/.vnc-display-mapping.lock";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An image with the users' homes, owned by them.
fn image_with_homes(img: Image) -> Image {
    let img = img.with_vnc_set_up();
    for (home, uid) in [("/home/admin", 1000), ("/home/operator", 1001)] {
        make_home(&img, home, uid);
    }
    img
}

fn make_home(img: &Image, home: &str, uid: u32) {
    let p = img.path(home);
    std::fs::create_dir_all(&p).unwrap();
    std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
}

fn debian() -> Image {
    image_with_homes(Image::debian())
}

/// Like `debian()`, in a directory of the caller's choosing.
fn debian_in(parent: &Path) -> Image {
    let dir = tempfile::tempdir_in(parent).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    image_with_homes(Image(common::Fixture::over(dir).with_system_files(common::DEBIAN_12)))
}

/// An image with `n` users u1..un (uid 2001..) and their homes.
fn image_with_users(n: u32) -> Image {
    let img = Image::debian().with_vnc_set_up();
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/bash\n");
    for i in 1..=n {
        passwd.push_str(&format!("u{i}:x:{}:{}::/home/u{i}:/bin/sh\n", 2000 + i, 2000 + i));
    }
    img.write("/etc/passwd", &passwd);
    for i in 1..=n {
        make_home(&img, &format!("/home/u{i}"), 2000 + i);
    }
    img
}

fn enable(img: &Image, user: &str, stdin: &str) -> assert_cmd::assert::Assert {
    img.cmd()
        .args(["vnc-user", "--user", user, "--password-stdin"])
        .write_stdin(stdin)
        .assert()
}

fn read_bytes(img: &Image, target: &str) -> Vec<u8> {
    std::fs::read(img.path(target)).unwrap()
}

/// Parses both mapping files and checks they agree (no entry on one side only).
fn mappings(img: &Image) -> Mappings {
    let a = img.read(MAPPING).unwrap_or_default();
    let t = img.read(USERS).unwrap_or_default();
    let (m, notes) = Mappings::parse(
        &Source {
            path: Path::new(MAPPING),
            text: &a,
        },
        &Source {
            path: Path::new(USERS),
            text: &t,
        },
    )
    .unwrap_or_else(|e| panic!("the mapping files do not parse: {e}\n{a}\n{t}"));
    assert!(notes.is_empty(), "the mapping files disagree: {notes:?}\n{a}\n{t}");
    m
}

#[test]
#[ignore = "needs root"]
fn before_edge_setup_vnc_a_user_is_refused_and_nothing_is_written() {
    let img = image_with_homes(Image::debian());
    std::fs::remove_file(img.path(edge_setup::tigervnc::INSTALL_RECORD)).unwrap();
    let before = img.snapshot();
    enable(&img, "admin", "password\n")
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("VNC is not set up in this image"))
        .stderr(predicate::str::contains(format!(
            "edge-setup --root {} vnc, then this command again",
            img.root().display()
        )));
    assert_eq!(img.snapshot(), before);
    // after `vnc`, the same command goes through
    img.cmd().arg("vnc").assert().success();
    enable(&img, "admin", "password\n").success();
    assert_eq!(img.read(MAPPING).unwrap(), "admin:1\n");
}

#[test]
#[ignore = "needs root"]
fn enables_a_user_with_every_file_in_place() {
    let img = debian();
    enable(&img, "admin", "password\n")
        .success()
        .stdout(predicate::str::contains("display :1, port 5901"))
        .stdout(predicate::str::contains("protocol: VNC"))
        .stdout(predicate::str::contains("host:     127.0.0.1"))
        .stdout(predicate::str::contains("port:     5901"))
        // no TigerVNC unit file in this image (yet): enabled and started at the first boot
        .stderr(predicate::str::contains(
            "at the first boot: systemctl enable --now tigervncserver@:1.service",
        ))
        .stderr(predicate::str::contains("assuming version 1.12"));
    assert_eq!(img.read(MAPPING).unwrap(), "admin:1\n");
    assert_eq!(img.read(USERS).unwrap(), ":1=admin\n");
    assert_eq!(img.mode(MAPPING), 0o644);
    assert_eq!(img.owner(MAPPING), (0, 0));
    let passwd = "/home/admin/.vnc/passwd";
    assert_eq!(hex(&read_bytes(&img, passwd)), "dbd83cfd727a1458");
    assert_eq!(img.mode(passwd), 0o600);
    assert_eq!(img.owner(passwd), (1000, 1000));
    assert_eq!(img.mode("/home/admin/.vnc"), 0o700);
    assert_eq!(img.owner("/home/admin/.vnc"), (1000, 1000));
    let config = img.read("/home/admin/.vnc/config").unwrap();
    assert!(config.contains("\nsession=edge-setup\n"), "{config}");
    assert!(config.contains("\ngeometry=1280x800\n"), "{config}");
    assert!(config.contains("\nlocalhost\n"), "{config}");
    assert_eq!(img.mode("/home/admin/.vnc/config"), 0o644);
    assert_eq!(img.owner("/home/admin/.vnc/config"), (1000, 1000));
}

#[test]
#[ignore = "needs root"]
fn an_image_in_a_private_directory_works() {
    // like `mktemp -d`: the image's users could not pass this directory on the host
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let img = debian_in(private.path());
    enable(&img, "admin", "secret12\n").success();
    assert_eq!(img.owner("/home/admin/.vnc/passwd"), (1000, 1000));
}

#[test]
#[ignore = "needs root"]
fn a_rerun_changes_the_password_and_keeps_the_display() {
    let img = debian();
    enable(&img, "operator", "12345678\n").success();
    enable(&img, "admin", "12345678\n").success();
    enable(&img, "admin", "password\nviewonly\n")
        .success()
        .stdout(predicate::str::contains("display :2, port 5902"))
        .stderr(predicate::str::contains("... kept"));
    assert_eq!(
        hex(&read_bytes(&img, "/home/admin/.vnc/passwd")),
        "dbd83cfd727a14583b33820a27ba4dd0"
    );
    assert_eq!(img.read(MAPPING).unwrap(), "operator:1\nadmin:2\n");
    assert_eq!(img.read(USERS).unwrap(), ":1=operator\n:2=admin\n");
}

#[test]
#[ignore = "needs root"]
fn comments_blank_lines_and_other_settings_are_kept() {
    let img = debian();
    img.write(MAPPING, "# users of this appliance\n\noperator:4\n");
    img.write(USERS, "# TigerVNC User assignment\n#\n# :2=andrew\n:4=operator\n");
    std::fs::create_dir_all(img.path("/home/admin/.vnc")).unwrap();
    std::os::unix::fs::chown(img.path("/home/admin/.vnc"), Some(1000), Some(1000)).unwrap();
    img.write(
        "/home/admin/.vnc/config",
        "# mine\ndepth=24\ngeometry=800x600\nalwaysshared\n",
    );
    enable(&img, "admin", "secret12\n").success();
    assert_eq!(
        img.read(MAPPING).unwrap(),
        "# users of this appliance\n\noperator:4\nadmin:1\n"
    );
    assert_eq!(
        img.read(USERS).unwrap(),
        "# TigerVNC User assignment\n#\n# :2=andrew\n:4=operator\n:1=admin\n"
    );
    assert_eq!(
        img.read("/home/admin/.vnc/config").unwrap(),
        "# mine\ndepth=24\ngeometry=1280x800\nalwaysshared\nsession=edge-setup\nlocalhost\n"
    );
    assert_eq!(img.mode("/home/admin/.vnc"), 0o700);
    // a Perl-style configuration takes precedence over `config` on Debian
    img.write("/home/admin/.vnc/tigervnc.conf", "$geometry = \"800x600\";\n");
    enable(&img, "admin", "secret12\n")
        .success()
        .stderr(predicate::str::contains(
            "tigervnc.conf exists, so Debian's TigerVNC reads it instead",
        ));
}

#[test]
#[ignore = "needs root"]
fn settings_come_from_the_configuration() {
    let img = debian();
    img.cmd()
        .args(["config", "set", "vnc.listen", "lan"])
        .assert()
        .success();
    img.cmd()
        .args(["config", "set", "vnc.geometry", "1920x1080"])
        .assert()
        .success();
    enable(&img, "admin", "secret12\n")
        .success()
        .stdout(predicate::str::contains("all interfaces"))
        .stdout(predicate::str::contains("host:     <the appliance's IP address>"));
    let config = img.read("/home/admin/.vnc/config").unwrap();
    assert!(
        config.contains("\ngeometry=1920x1080\n") && config.contains("\nlocalhost=no\n"),
        "{config}"
    );
}

#[test]
#[ignore = "needs root"]
fn remove_takes_the_access_away() {
    let img = debian();
    enable(&img, "admin", "secret12\n").success();
    enable(&img, "operator", "secret12\n").success();
    img.cmd()
        .args(["vnc-user", "--user", "admin", "--remove"])
        .assert()
        .success()
        .stdout(predicate::str::contains("display :1 (port 5901) is free"));
    // its start at the first boot is dropped, operator's kept
    let pending = img.read(edge_setup::system::offline::PENDING).unwrap();
    assert!(!pending.contains("tigervncserver@:1.service"), "{pending}");
    assert!(pending.contains("tigervncserver@:2.service"), "{pending}");
    assert_eq!(img.read(MAPPING).unwrap(), "operator:2\n");
    assert_eq!(img.read(USERS).unwrap(), ":2=operator\n");
    assert!(!img.path("/home/admin/.vnc/passwd").exists());
    // the freed display goes to the next user
    enable(&img, "admin", "secret12\n")
        .success()
        .stdout(predicate::str::contains("display :1,"));
    // removing someone without VNC is not an error
    img.cmd()
        .args(["vnc-user", "--user", "root", "--remove"])
        .assert()
        .success()
        .stderr(predicate::str::contains("root has no VNC display"));
}

#[test]
#[ignore = "needs root"]
fn rhel_uses_its_unit_and_restores_selinux_labels() {
    let img = image_with_homes(Image::with_os_release(ROCKY_9));
    enable(&img, "admin", "secret12\n")
        .success()
        .stderr(predicate::str::contains("at the first boot: restorecon -F"))
        .stderr(predicate::str::contains("/home/admin/.vnc"))
        .stderr(predicate::str::contains(
            "at the first boot: systemctl enable --now vncserver@:1.service",
        ));
}

#[test]
#[ignore = "needs root"]
fn tigervnc_1_14_reads_the_xdg_directory() {
    let img = debian();
    img.write(
        "/var/lib/dpkg/status",
        "Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.14.1+dfsg-1\n\n",
    );
    enable(&img, "admin", "password\n")
        .success()
        .stderr(predicate::str::contains("assuming").not());
    let passwd = "/home/admin/.config/tigervnc/passwd";
    assert_eq!(hex(&read_bytes(&img, passwd)), "dbd83cfd727a1458");
    assert_eq!(img.mode(passwd), 0o600);
    assert_eq!(img.mode("/home/admin/.config/tigervnc"), 0o700);
    assert_eq!(img.owner("/home/admin/.config"), (1000, 1000));
    assert!(
        img.read("/home/admin/.config/tigervnc/config")
            .unwrap()
            .contains("session=edge-setup")
    );
    assert!(!img.path("/home/admin/.vnc").exists());
}

/// An appliance upgraded to TigerVNC 1.14+ keeps the ~/.vnc/passwd of the old
/// version: a second copy of an old password that no server reads. Enabling the
/// user again writes ~/.config/tigervnc and deletes it; a ~/.vnc that Debian 13's
/// wrapper made a link to the new directory is left alone.
#[test]
#[ignore = "needs root"]
fn after_an_upgrade_to_1_14_the_old_password_file_goes() {
    let img = debian();
    enable(&img, "admin", "oldpass1\n").success();
    let old = "/home/admin/.vnc/passwd";
    assert!(img.exists(old));
    img.write(
        "/var/lib/dpkg/status",
        "Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.15.0+dfsg-2.1\n\n",
    );
    enable(&img, "admin", "password\n")
        .success()
        .stderr(predicate::str::contains(
            "/home/admin/.vnc/passwd, left from TigerVNC before 1.14 (this one reads ",
        ));
    assert!(!img.exists(old), "the old password file is still there");
    assert_eq!(
        hex(&read_bytes(&img, "/home/admin/.config/tigervnc/passwd")),
        "dbd83cfd727a1458"
    );
    assert!(img.exists("/home/admin/.vnc/config"), "only the password file goes");
    // a second run has nothing left to delete
    enable(&img, "admin", "password\n")
        .success()
        .stderr(predicate::str::contains("Deleting").not());

    // the wrapper's migration: ~/.vnc is a link to ~/.config/tigervnc
    let migrated = debian();
    migrated.write(
        "/var/lib/dpkg/status",
        "Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.15.0+dfsg-2.1\n\n",
    );
    enable(&migrated, "operator", "secret12\n").success();
    let link = migrated.path("/home/operator/.vnc");
    std::os::unix::fs::symlink(".config/tigervnc", &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(1001), Some(1001)).unwrap();
    enable(&migrated, "operator", "secret34\n").success();
    assert!(migrated.exists("/home/operator/.config/tigervnc/passwd"));
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
}

#[test]
#[ignore = "needs root"]
fn password_rules_refuse_and_change_nothing() {
    let img = debian();
    enable(&img, "operator", "secret12\n").success();
    let cases = [
        ("abcdefghi\n", "uses only the first 8"),
        ("abcde\n", "at least 6"),
        ("\n", "at least 6"),
        ("pässwort\n", "printable ASCII"),
        ("tab\there\n", "control character"),
        ("secret12\nshort\n", "view-only password"),
        ("secret12\nsecret12\n", "must differ"),
        ("", "standard input is empty"),
    ];
    for (stdin, why) in cases {
        let before = img.snapshot();
        enable(&img, "admin", stdin)
            .code(2)
            .stderr(predicate::str::contains(why));
        assert_eq!(img.snapshot(), before, "{stdin:?} changed a file");
    }
}

#[test]
#[ignore = "needs root"]
fn without_a_terminal_the_error_names_password_stdin() {
    let img = debian();
    let before = img.snapshot();
    img.cmd()
        .args(["vnc-user", "--user", "admin"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("standard input is not a terminal"))
        .stderr(predicate::str::contains("--password-stdin"));
    assert_eq!(img.snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn bad_users_are_refused_and_change_nothing() {
    let img = debian();
    let before = img.snapshot();
    enable(&img, "ghost", "secret12\n")
        .code(2)
        .stderr(predicate::str::contains("no user 'ghost'"));
    img.cmd()
        .args(["vnc-user", "--password-stdin"])
        .write_stdin("secret12\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--user NAME is needed with --root"));
    img.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nnohome:x:1500:1500::/home/nohome:/bin/sh\n",
    );
    let before_nohome = img.snapshot();
    enable(&img, "nohome", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("home directory"));
    assert_eq!(img.snapshot(), before_nohome);
    img.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\noperator:x:1001:1001::/home/operator:/bin/bash\n",
    );
    assert_eq!(img.snapshot(), before);
    // the privileged part is for sudo only
    img.cmd()
        .args(["vnc-user", "--system-part"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not take --root"));
    img.cmd()
        .args(["vnc-user", "--system-part", "--user", "admin"])
        .assert()
        .code(2);
}

#[test]
#[ignore = "needs root"]
fn an_unparseable_mapping_line_is_named_and_nothing_changes() {
    let img = debian();
    img.write(MAPPING, "# ok\nadmin:1\nthis is not a mapping\n");
    let before = img.snapshot();
    enable(&img, "operator", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains(
            "vnc-display-mapping:3: cannot parse 'this is not a mapping'",
        ));
    assert_eq!(img.snapshot(), before);

    let img = debian();
    img.write(USERS, ":1=admin\n:2 admin\n");
    let before = img.snapshot();
    enable(&img, "operator", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("vncserver.users:2: cannot parse"));
    assert_eq!(img.snapshot(), before);

    let img = debian();
    img.write(MAPPING, "admin:1\n");
    img.write(USERS, ":1=operator\n");
    let before = img.snapshot();
    enable(&img, "operator", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("disagree"));
    assert_eq!(img.snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn a_symlinked_mapping_file_is_refused_and_nothing_changes() {
    for file in [MAPPING, USERS] {
        let img = debian();
        img.write("/etc/shadow", "root:secret:::::::\n");
        std::fs::create_dir_all(img.path(file).parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", img.path(file)).unwrap();
        let before = img.snapshot();
        enable(&img, "admin", "secret12\n")
            .code(1)
            .stderr(predicate::str::contains("is a symbolic link"));
        assert_eq!(img.snapshot(), before, "{file}");
    }
}

/// An image runs no X server: lock files left in its /tmp say nothing.
#[test]
#[ignore = "needs root"]
fn an_images_tmp_holds_no_displays() {
    let img = debian();
    img.write("/tmp/.X1-lock", &format!("{:>10}\n", std::process::id()));
    enable(&img, "admin", "secret12\n")
        .success()
        .stdout(predicate::str::contains("display :1,"));
}

#[test]
#[ignore = "needs root"]
fn exhausted_displays_are_a_clear_error() {
    let img = debian();
    let a: String = (1..=99).map(|n| format!("x{n}:{n}\n")).collect();
    let t: String = (1..=99).map(|n| format!(":{n}=x{n}\n")).collect();
    img.write(MAPPING, &a);
    img.write(USERS, &t);
    let before = img.snapshot();
    enable(&img, "admin", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("all 99 displays are taken"))
        .stderr(predicate::str::contains("--remove"));
    assert_eq!(img.snapshot(), before);
}

/// A link created in the image, owned by `uid` as if the user had planted it.
fn plant_link(img: &Image, target: &str, link: &str, uid: u32) {
    let p = img.path(link);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, &p).unwrap();
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        &p,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(uid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn links_planted_in_the_home_redirect_nothing() {
    let shadow = "root:$y$secret:19000:0:99999:7:::\n";
    let traps: [(&str, &str, Option<&str>); 4] = [
        ("/etc/shadow", "/home/admin/.vnc/passwd", None),
        ("/etc/shadow", "/home/admin/.vnc/config", None),
        ("/etc", "/home/admin/.vnc", None),
        ("/etc", "/home/admin/.config/tigervnc", Some("1.14.1-1")),
    ];
    for (dest, link, version) in traps {
        let img = debian();
        img.write("/etc/shadow", shadow);
        std::fs::set_permissions(img.path("/etc/shadow"), std::fs::Permissions::from_mode(0o640)).unwrap();
        if let Some(v) = version {
            img.write(
                "/var/lib/dpkg/status",
                &format!("Package: tigervnc-common\nStatus: install ok installed\nVersion: {v}\n\n"),
            );
        }
        let parent = Path::new(link).parent().unwrap().to_str().unwrap().to_string();
        if parent != "/home/admin" {
            std::fs::create_dir_all(img.path(&parent)).unwrap();
            std::fs::set_permissions(img.path(&parent), std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(img.path(&parent), Some(1000), Some(1000)).unwrap();
        }
        plant_link(&img, dest, link, 1000);
        let before = img.snapshot();
        enable(&img, "admin", "secret12\n")
            .code(predicate::in_iter([1, 3]))
            .stderr(predicate::str::contains("symbolic link"));
        assert_eq!(img.snapshot(), before, "{link} -> {dest}");
        assert_eq!(img.read("/etc/shadow").unwrap(), shadow);
        assert_eq!(img.mode("/etc/shadow"), 0o640);
        assert!(!img.path("/etc/passwd.tmp").exists());
    }
}

#[test]
#[ignore = "needs root"]
fn a_full_disk_leaves_every_file_as_it_was() {
    let mnt = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(mnt.path())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot mount a small tmpfs to fill (needs mount and root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let img = debian_in(mnt.path());
    enable(&img, "operator", "secret12\n").success();
    // fill the file system
    let mut filler = std::fs::File::create(img.path("/filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    let before = img.snapshot();
    enable(&img, "admin", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("No space left on device"))
        .stderr(predicate::str::contains("free some space"));
    assert_eq!(img.snapshot(), before);
    enable(&img, "operator", "other123\n")
        .code(1)
        .stderr(predicate::str::contains("No space left on device"));
    assert_eq!(img.snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn dry_run_changes_nothing() {
    let img = debian();
    let before = img.snapshot();
    img.cmd()
        .args(["--dry-run", "vnc-user", "--user", "admin", "--password-stdin"])
        .write_stdin("secret12\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("would write"))
        .stderr(predicate::str::contains(
            "would leave for the first boot: systemctl enable --now tigervncserver@:1.service",
        ));
    assert_eq!(img.snapshot(), before);
}

/// With TigerVNC's unit in the image, the session is enabled there by this
/// host's `systemctl --root` and only its start waits for the first boot; a
/// second run changes nothing, a removal takes both back.
#[test]
#[ignore = "needs root"]
fn in_an_image_the_session_is_enabled_there_and_started_at_the_first_boot() {
    if !Path::new("/usr/bin/systemctl").exists() && !Path::new("/bin/systemctl").exists() {
        panic!("this test needs systemctl on the host (apt-get install systemd)");
    }
    let img = debian();
    img.write(
        "/usr/lib/systemd/system/tigervncserver@.service",
        "[Unit]\nDescription=TigerVNC\n[Service]\nExecStart=/usr/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    );
    let link = "/etc/systemd/system/multi-user.target.wants/tigervncserver@:1.service";
    let run = |args: &[&str]| -> serde_json::Value {
        let out = img
            .cmd()
            .arg("--json")
            .args(args)
            .write_stdin("secret12\n")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = run(&["vnc-user", "--user", "admin", "--password-stdin"]);
    assert_eq!(
        std::fs::read_link(img.path(link)).unwrap(),
        Path::new("/usr/lib/systemd/system/tigervncserver@.service")
    );
    assert_eq!(
        first["first_boot_commands"],
        serde_json::json!(["systemctl start tigervncserver@:1.service"])
    );
    let runs: Vec<&str> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    assert_eq!(
        runs,
        [format!(
            "systemctl --root={} enable tigervncserver@:1.service",
            img.root().display()
        )]
    );
    let pending = img.read(edge_setup::system::offline::PENDING).unwrap();
    assert!(
        pending.contains("\"start\",\n        \"tigervncserver@:1.service\""),
        "{pending}"
    );

    let before = img.snapshot();
    let second = run(&["vnc-user", "--user", "admin", "--password-stdin"]);
    assert_eq!(second["changed"], false, "{second}");
    assert_eq!(img.snapshot(), before);

    run(&["vnc-user", "--user", "admin", "--remove"]);
    assert!(!img.path(link).exists() && !img.path(link).is_symlink());
    assert!(img.read(edge_setup::system::offline::PENDING).is_none());
}

/// 64 users at once: distinct displays, both files in agreement.
#[test]
#[ignore = "needs root"]
fn concurrent_users_get_distinct_displays() {
    const N: u32 = 64;
    let img = image_with_users(N);
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let children: Vec<_> = (1..=N)
        .map(|i| {
            let mut child = Command::new(&bin)
                .arg("--root")
                .arg(img.root())
                .args(["vnc-user", "--user", &format!("u{i}"), "--password-stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"secret12\n").unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let m = mappings(&img);
    let displays: std::collections::BTreeSet<u32> = (1..=N).map(|i| m.display_of(&format!("u{i}")).unwrap()).collect();
    assert_eq!(displays, (1..=N).collect());
    for i in 1..=N {
        assert_eq!(read_bytes(&img, &format!("/home/u{i}/.vnc/passwd")).len(), 8);
    }
}

/// Killed with SIGKILL at random moments: after each kill, both files parse,
/// have unique displays and agree (checked under the same lock edge-setup takes).
#[test]
#[ignore = "needs root"]
fn kill_9_at_any_moment_leaves_the_old_or_the_new_files() {
    let img = image_with_users(12);
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut killed_mid_run = 0;
    for round in 0..150 {
        let user = format!("u{}", 1 + next(12));
        let mut cmd = Command::new(&bin);
        cmd.arg("--root").arg(img.root()).args(["vnc-user", "--user", &user]);
        if round % 3 == 2 {
            cmd.arg("--remove");
        } else {
            cmd.arg("--password-stdin");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"secret12\n");
        std::thread::sleep(Duration::from_micros(next(12_000)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_run += 1;
        }
        // take the lock as edge-setup does, so a commit in flight finishes first
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(img.path(LOCK))
            .ok()
            .map(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap());
        let m = mappings(&img);
        let used = m.used();
        assert_eq!(used.len(), m.appliance.entries().count(), "duplicate displays");
        drop(lock);
    }
    assert!(killed_mid_run > 10, "the kills should land mid-run ({killed_mid_run})");
    // a run after the kills clears what they left behind
    enable(&img, "u1", "secret12\n").success();
    mappings(&img);
    for dir in ["/opt/c8y/utilities", "/etc/tigervnc", "/home/u1/.vnc"] {
        let leftovers: Vec<_> = std::fs::read_dir(img.path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{dir}: {leftovers:?}");
    }
    let m = std::fs::metadata(img.path(MAPPING)).unwrap();
    assert_eq!(m.uid(), 0);
}

/// The real prompts on a terminal (tmux): hidden input, a mismatch and a short
/// password asked again, the view-only question.
#[test]
#[ignore = "needs root"]
fn on_a_terminal_the_prompts_ask_again() {
    let img = debian();
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let term = Tmux::start(&format!(
        "{} --root {} vnc-user --user admin; echo EXIT=$?; sleep 60",
        bin.display(),
        img.root().display()
    ));
    let wait_for = |text: &str, count: usize| term.wait_for(text, count);
    let typed = |keys: &str| {
        term.send(&["-l", keys]);
        term.send(&["Enter"]);
    };
    let prompt = |text: &str| term.wait_for_prompt(text);
    prompt("VNC password:");
    typed("secret12");
    prompt("Verify:");
    typed("secret99");
    wait_for("do not match", 1);
    prompt("VNC password:");
    typed("short");
    wait_for("at least 6", 1);
    // each prompt waited for where the cursor is: keys sent before a password prompt has
    // turned echo off are echoed by the terminal (under load they were)
    prompt("VNC password:");
    typed("secret12");
    prompt("Verify:");
    typed("secret12");
    wait_for("view-only password?", 1);
    // y and Enter as two keystrokes: the y alone answers nothing, and the Enter does not
    // fall into the view-only password's prompt as an empty entry
    term.send(&["y"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !term.screen().contains("View-only password:"),
        "a y without Enter was taken"
    );
    term.send(&["Enter"]);
    prompt("View-only password:");
    typed("viewonly");
    prompt("Verify:");
    typed("viewonly");
    wait_for("EXIT=", 1);
    let shown = term.screen();
    assert!(shown.contains("EXIT=0"), "{shown}");
    assert!(
        !shown.contains("secret12") && !shown.contains("viewonly"),
        "a password was echoed:\n{shown}"
    );
    assert_eq!(
        hex(&read_bytes(&img, "/home/admin/.vnc/passwd")),
        hex(&edge_setup::vnc_user::password::encode("secret12", Some("viewonly")))
    );
}

// ---- what a hostile user may plant (issue: harden the privileged half) --------------

/// A dpkg status with TigerVNC 1.12 installed, so vnc-user has no note to print
/// before it takes the mapping lock.
fn with_tigervnc(img: &Image) {
    img.write(
        "/var/lib/dpkg/status",
        "Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.12.0+dfsg-8\n",
    );
}

fn chown_to(img: &Image, target: &str, uid: u32) {
    std::os::unix::fs::lchown(img.path(target), Some(uid), Some(uid)).unwrap();
}

/// Whether the mapping lock is free now (taken and released at once).
fn lock_is_free(img: &Image) -> bool {
    let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open(img.path(LOCK)) else {
        return true;
    };
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
}

#[test]
#[ignore = "needs root"]
fn a_fifo_or_a_huge_file_in_a_home_is_refused_at_once() {
    for name in ["config", "passwd"] {
        let img = debian();
        std::fs::create_dir_all(img.path("/home/admin/.vnc")).unwrap();
        chown_to(&img, "/home/admin/.vnc", 1000);
        let file = format!("/home/admin/.vnc/{name}");
        nix::unistd::mkfifo(&img.path(&file), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        chown_to(&img, &file, 1000);
        img.cmd()
            .args(["vnc-user", "--user", "admin", "--password-stdin"])
            .write_stdin("secret12\n")
            .timeout(Duration::from_secs(20))
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "refusing to read {}",
                img.path(&file).display()
            )))
            .stderr(predicate::str::contains("a FIFO (named pipe), not a regular file"));
        // nothing written, and the FIFO still a FIFO
        assert!(img.read(MAPPING).is_none() && img.read(USERS).is_none(), "{name}");
        let kind = std::fs::symlink_metadata(img.path(&file)).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
        assert!(lock_is_free(&img));
        // another user is not held up
        enable(&img, "operator", "secret12\n").success();

        // a sparse 2 GiB file: refused by its size, not read
        std::fs::remove_file(img.path(&file)).unwrap();
        std::fs::File::create(img.path(&file))
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        chown_to(&img, &file, 1000);
        enable(&img, "admin", "secret12\n")
            .code(1)
            .stderr(predicate::str::contains("it is 2147483648 bytes long, more than the"));
        assert_eq!(std::fs::metadata(img.path(&file)).unwrap().len(), 2 << 30);
    }
}

#[test]
#[ignore = "needs root"]
fn a_hard_linked_session_config_is_refused() {
    let img = debian();
    img.write("/etc/vnc-secret", "root's secret\n");
    std::fs::create_dir_all(img.path("/home/admin/.vnc")).unwrap();
    chown_to(&img, "/home/admin/.vnc", 1000);
    std::fs::hard_link(img.path("/etc/vnc-secret"), img.path("/home/admin/.vnc/config")).unwrap();
    // even owned by the user, it is a second name of a file elsewhere
    chown_to(&img, "/etc/vnc-secret", 1000);
    let before = img.snapshot();
    enable(&img, "admin", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("/home/admin/.vnc/config: it has 2 hard links"));
    assert_eq!(img.snapshot(), before);
}

/// Another process holds the mapping lock: vnc-user waits vnc.lock-wait (10 s by
/// default), then fails naming the lock file and the holder.
#[test]
#[ignore = "needs root"]
fn a_held_lock_fails_within_the_wait_naming_the_lock_and_its_holder() {
    for (wait, config) in [(10, ""), (1, "[vnc]\nlock-wait = 1\n")] {
        let img = debian();
        if !config.is_empty() {
            img.write("/etc/edge-setup/edge-setup.toml", config);
        }
        std::fs::create_dir_all(img.path(LOCK).parent().unwrap()).unwrap();
        let f = std::fs::File::create(img.path(LOCK)).unwrap();
        let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let started = std::time::Instant::now();
        img.cmd()
            .args(["vnc-user", "--user", "admin", "--password-stdin"])
            .write_stdin("secret12\n")
            .timeout(Duration::from_secs(wait + 20))
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "holds the lock {} and did not release it within {wait} s",
                img.path(LOCK).display()
            )))
            .stderr(predicate::str::contains(format!(
                "held by process {}",
                std::process::id()
            )));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(wait) && took < Duration::from_secs(wait + 5),
            "{took:?}"
        );
        drop(held);
        assert!(img.read(MAPPING).is_none());
    }
}

/// A run whose output nobody reads (a full pipe) blocks only itself: it holds no
/// lock while it writes, so another user's run goes on.
#[test]
#[ignore = "needs root"]
fn a_full_output_pipe_does_not_block_another_users_run() {
    let img = debian();
    with_tigervnc(&img);
    enable(&img, "admin", "secret12\n").success();
    let (reader, mut writer) = os_pipe::pipe().unwrap();
    // fill the pipe: its next write blocks
    nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
    while std::io::Write::write(&mut writer, &[0; 4096]).is_ok() {}
    nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty())).unwrap();
    let mut stuck = Command::new(assert_cmd::cargo::cargo_bin("edge-setup"))
        .arg("--root")
        .arg(img.root())
        .args(["vnc-user", "--user", "admin", "--remove"])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        stuck.try_wait().unwrap().is_none(),
        "the run with the full pipe should be blocked"
    );
    img.cmd()
        .args(["vnc-user", "--user", "operator", "--password-stdin"])
        .write_stdin("secret12\n")
        .timeout(Duration::from_secs(20))
        .assert()
        .success()
        .stdout(predicate::str::contains("display :2,"));
    stuck.kill().unwrap();
    stuck.wait().unwrap();
    drop(reader);
    // it was blocked before it changed anything
    assert_eq!(img.read(USERS).unwrap(), ":1=admin\n:2=operator\n");
}

/// vncserver.users decides which user each session runs as: no one but root may
/// change it or the directories that hold it.
#[test]
#[ignore = "needs root"]
fn mapping_files_or_directories_others_may_change_are_refused() {
    let img = debian();
    img.write(USERS, "");
    let before = img.snapshot();
    std::fs::set_permissions(img.path(USERS), std::fs::Permissions::from_mode(0o666)).unwrap();
    enable(&img, "admin", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains("group or others may change it (mode 0666)"))
        .stderr(predicate::str::contains(format!(
            "chmod go-w {}",
            img.path(USERS).display()
        )));
    std::fs::set_permissions(img.path(USERS), std::fs::Permissions::from_mode(0o644)).unwrap();
    chown_to(&img, "/etc/tigervnc", 1000);
    enable(&img, "admin", "secret12\n")
        .code(1)
        .stderr(predicate::str::contains(format!(
            "refusing to use the directory {}: it is owned by uid 1000, not by root",
            img.path("/etc/tigervnc").display()
        )));
    chown_to(&img, "/etc/tigervnc", 0);
    assert_eq!(img.snapshot(), before);
    enable(&img, "admin", "secret12\n").success();
}

/// A variable that is not UTF-8 (LANG=$'\xff') is left out, not a panic.
#[test]
fn an_environment_variable_that_is_not_utf8_is_no_panic() {
    use std::os::unix::ffi::OsStrExt;
    let img = Image::debian();
    img.cmd()
        .env("LANG", std::ffi::OsStr::from_bytes(b"\xff"))
        .args(["config", "get", "vnc.listen"])
        .assert()
        .success()
        .stdout("localhost\n");
}
