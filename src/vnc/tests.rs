//! In-process tests of `edge-setup vnc` on a live system (a temporary root with the
//! recording fake runner): command flows and the package manager's failures.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::error::Kind;
use crate::system::runner::Output;
use crate::testkit::Fixture;

const DEBIAN: &str = "ID=debian\nVERSION_ID=\"12\"\n";

/// A live-mode system rooted in a temporary directory, with this test binary
/// present (root-owned) at its own path, as the sudoers check expects.
struct Live(Fixture);

impl std::ops::Deref for Live {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl Live {
    /// Needs root (file owners, the sudoers binary check): its tests are `#[ignore = "needs root"]`.
    fn new(os_release: &str) -> Live {
        assert!(
            nix::unistd::geteuid().is_root(),
            "live-mode tests need root (file owners and the sudoers binary check): run them as root"
        );
        let live = Live(Fixture::empty());
        live.write("/etc/os-release", os_release);
        live.write("/etc/hosts", "127.0.0.1\tlocalhost\n");
        let exe = std::env::current_exe().unwrap();
        live.write(exe.to_str().unwrap(), "binary");
        live
    }

    /// Marks every package of the Debian table installed.
    fn all_installed(&self) {
        let os = OsRelease::parse(DEBIAN);
        let status: String = Desktop::for_os(&os, Family::Debian, &[])
            .packages
            .iter()
            .map(|p| format!("Package: {p}\nStatus: install ok installed\nVersion: 1.0\n\n"))
            .collect();
        self.write("/var/lib/dpkg/status", &status);
    }

    /// Runs `edge-setup vnc` as root with this environment (its package-lock wait).
    fn run(&self, request: Request, env: &[(&str, &str)]) -> Result<()> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        run(&self.live(), &request, packages::lock_timeout(&env))
    }

    fn lines(&self) -> Vec<String> {
        self.fake.lines()
    }

    fn ran(&self, prefix: &str) -> usize {
        self.lines().iter().filter(|l| l.starts_with(prefix)).count()
    }
}

fn install() -> Request {
    Request::Install { offline: None }
}

fn uninstall(purge: bool) -> Request {
    Request::Uninstall { purge }
}

const APT_INSTALL: &str = "DEBIAN_FRONTEND=noninteractive apt-get install";

#[test]
#[ignore = "needs root"]
fn not_root_is_refused_before_anything_runs_or_changes() {
    let live = Live::new(DEBIAN);
    let err = run(&live.live().with_ids(1000, 1000), &install(), Duration::ZERO).unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(err.to_string().contains("sudo edge-setup vnc"), "{err}");
    assert!(live.lines().is_empty());
    assert!(!live.exists(tigervnc::XSESSION_FILE));
    assert!(!live.exists(state::PATH));
}

#[test]
#[ignore = "needs root"]
fn unknown_distribution_is_refused_by_its_id() {
    let live = Live::new("ID=arch\n");
    let err = live.run(install(), &[]).unwrap_err();
    assert_eq!(err.kind, Kind::BadInput);
    assert!(err.what.contains("ID=arch"), "{err}");
    assert!(live.lines().is_empty());
    assert!(!live.exists(tigervnc::XSESSION_FILE));
}

#[test]
#[ignore = "needs root"]
fn installs_missing_packages_in_one_transaction_then_prepares_the_rest() {
    let live = Live::new(DEBIAN);
    live.write(
        "/var/lib/dpkg/status",
        "Package: sudo\nStatus: install ok installed\n\nPackage: xterm\nStatus: install ok installed\n",
    );
    live.run(install(), &[]).unwrap();
    let lines = live.lines();
    assert_eq!(live.ran("apt-get update"), 1, "{lines:#?}");
    let installs: Vec<&String> = lines.iter().filter(|l| l.starts_with(APT_INSTALL)).collect();
    assert_eq!(installs.len(), 1, "{lines:#?}");
    assert!(installs[0].contains(" fluxbox ") && installs[0].contains(" firefox-esr "));
    assert!(
        !installs[0].contains(" sudo") && !installs[0].contains(" xterm "),
        "{}",
        installs[0]
    );
    assert!(lines.iter().any(|l| l.starts_with("visudo -c -f ")), "{lines:#?}");
    assert!(live.exists(tigervnc::SUDOERS_FILE));
    assert!(!live.exists(SUDOERS_CANDIDATE));
    let state = std::fs::read_to_string(live.path(state::PATH)).unwrap();
    let state: State = serde_json::from_str(&state).unwrap();
    assert!(state.packages.contains("fluxbox"));
    assert!(!state.packages.contains("xterm"), "xterm was there before");
    let text = live.err.text();
    assert!(text.contains("Next: each user"), "{text}");
}

#[test]
#[ignore = "needs root"]
fn a_prepared_system_runs_no_install() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.run(install(), &[]).unwrap();
    live.run(install(), &[]).unwrap();
    assert_eq!(live.ran("apt-get"), 0);
    assert_eq!(live.ran(APT_INSTALL), 0, "{:#?}", live.lines());
    // the rule is validated once, when it is written
    assert_eq!(live.ran("visudo"), 1);
    // the sessions' stop timeout: written once, systemd told once
    let dropin = tigervnc::stop_dropin(Family::Debian);
    assert_eq!(
        std::fs::read_to_string(live.path(&dropin)).unwrap(),
        tigervnc::stop_dropin_text()
    );
    assert_eq!(live.ran("systemctl daemon-reload"), 1, "{:#?}", live.lines());
}

/// A session program that ignores SIGTERM cannot hold a stop for 90 s: the
/// drop-in goes with --uninstall (and systemd is told again).
#[test]
#[ignore = "needs root"]
fn the_stop_timeout_drop_in_is_installed_and_uninstalled() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.run(install(), &[]).unwrap();
    let dropin = tigervnc::stop_dropin(Family::Debian);
    assert!(
        std::fs::read_to_string(live.path(&dropin))
            .unwrap()
            .contains("[Service]\nTimeoutStopSec=15s\n")
    );
    live.run(uninstall(false), &[]).unwrap();
    assert!(!live.exists(&dropin));
    assert!(!live.exists("/etc/systemd/system/tigervncserver@.service.d"));
    assert_eq!(live.ran("systemctl daemon-reload"), 2, "{:#?}", live.lines());
}

#[test]
#[ignore = "needs root"]
fn a_locked_package_manager_is_waited_for_visibly() {
    let live = Live::new(DEBIAN);
    let attempts = Rc::new(Cell::new(0));
    let seen = attempts.clone();
    live.fake.respond_with(move |c| {
        (c.line().starts_with(APT_INSTALL)).then(|| {
            seen.set(seen.get() + 1);
            Ok(if seen.get() == 1 {
                Output::failed(
                    100,
                    "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)\n",
                )
            } else {
                Output::ok("")
            })
        })
    });
    live.run(install(), &[("EDGE_SETUP_LOCK_TIMEOUT", "1")]).unwrap();
    assert_eq!(attempts.get(), 2);
    let text = live.err.text();
    assert!(
        text.contains("waiting for the package manager lock, up to 1 s"),
        "{text}"
    );
    assert!(text.contains("process 812"), "{text}");
}

#[test]
#[ignore = "needs root"]
fn a_lock_held_past_the_timeout_is_a_clear_error_and_nothing_else_happens() {
    let live = Live::new(DEBIAN);
    live.fake.respond(
        "apt-get update",
        Output::failed(
            100,
            "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 77 (apt-get)\n",
        ),
    );
    let err = live.run(install(), &[("EDGE_SETUP_LOCK_TIMEOUT", "0")]).unwrap_err();
    assert_eq!(err.kind, Kind::Failure);
    assert!(err.what.contains("the package manager is busy"), "{err}");
    assert!(err.why.as_deref().unwrap().contains("process 77"), "{err}");
    assert!(
        err.hint.as_deref().unwrap().contains("EDGE_SETUP_LOCK_TIMEOUT"),
        "{err}"
    );
    assert_eq!(live.ran(APT_INSTALL), 0);
    assert!(!live.exists(tigervnc::XSESSION_FILE));
    assert!(!live.exists(state::PATH));
}

#[test]
#[ignore = "needs root"]
fn a_failed_install_reports_the_package_managers_error_line_and_how_to_retry() {
    let live = Live::new(DEBIAN);
    live.fake.respond(
        APT_INSTALL,
        Output::failed(
            100,
            "Reading package lists...\nBuilding dependency tree...\nE: Unable to locate package fluxbox\n",
        ),
    );
    let err = live.run(install(), &[]).unwrap_err();
    assert_eq!(err.why.as_deref(), Some("E: Unable to locate package fluxbox"));
    let hint = err.hint.as_deref().unwrap();
    assert!(
        hint.contains("as apt-get left it") && hint.contains("'sudo edge-setup vnc' again"),
        "{hint}"
    );
    assert_eq!(live.ran("groupadd"), 0, "no step after a failed install");
    assert!(!live.exists(tigervnc::XSESSION_FILE));
    assert!(!live.exists(state::PATH), "nothing was added");
}

#[test]
#[ignore = "needs root"]
fn unreachable_repositories_say_what_the_appliance_needs() {
    let live = Live::new(DEBIAN);
    live.fake.respond(
        "apt-get update",
        Output {
            status: Some(0),
            stdout: String::new(),
            stderr: "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'\n".into(),
            ..Output::default()
        },
    );
    live.fake.respond(
        APT_INSTALL,
        Output::failed(
            100,
            "E: Failed to fetch http://deb.debian.org/debian/pool/main/f/fluxbox/fluxbox_1.3.5-2.1_amd64.deb  Temporary failure resolving 'deb.debian.org'\n",
        ),
    );
    let err = live.run(install(), &[]).unwrap_err();
    assert_eq!(err.what, "the appliance cannot reach its package repositories");
    let hint = err.hint.as_deref().unwrap();
    assert!(
        hint.contains("must reach its package repositories") && hint.contains("--offline DIR"),
        "{hint}"
    );
    assert!(!err.to_string().contains("Reading package lists"));
}

#[test]
#[ignore = "needs root"]
fn a_sudoers_rule_visudo_refuses_is_not_installed() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.fake.respond(
        "visudo",
        Output::failed(
            1,
            ">>> /etc/sudoers.d/.edge-setup-vnc.candidate: syntax error near line 3 <<<\n",
        ),
    );
    let err = live.run(install(), &[]).unwrap_err();
    assert!(err.what.contains("did not pass 'visudo -c'"), "{err}");
    assert!(err.why.as_deref().unwrap().contains("syntax error near line 3"));
    assert!(!live.exists(tigervnc::SUDOERS_FILE));
    assert!(!live.exists(SUDOERS_CANDIDATE));
    // what was done before the failure is recorded for --uninstall
    assert!(live.exists(state::PATH));
}

#[test]
#[ignore = "needs root"]
fn firewall_variants_for_lan() {
    let cases: &[(&str, &[&str])] = &[
        (
            "/usr/bin/firewall-cmd",
            &[
                "firewall-cmd --state",
                "firewall-cmd --permanent --add-service=vnc-server",
                "firewall-cmd --permanent --add-port=5904-5905/tcp",
                "firewall-cmd --reload",
            ],
        ),
        ("/usr/sbin/ufw", &["ufw allow 5900:5905/tcp"]),
        ("/usr/sbin/nft", &["nft -f /etc/nftables.d/edge-setup-vnc.nft"]),
    ];
    for (program, expected) in cases {
        let live = Live::new(DEBIAN);
        live.all_installed();
        live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
        live.write(tigervnc::MAPPING_FILE, "admin:1\noperator:5\n");
        live.write(program, "");
        live.run(install(), &[]).unwrap();
        let fw: Vec<String> = live
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("firewall-cmd") || l.starts_with("ufw") || l.starts_with("nft"))
            .collect();
        assert_eq!(fw, *expected, "{program}");
        // a second run leaves the rule alone
        live.run(install(), &[]).unwrap();
        assert_eq!(
            live.lines()
                .iter()
                .filter(|l| l.contains("--add-") || l.starts_with("ufw") || l.starts_with("nft"))
                .count(),
            expected
                .iter()
                .filter(|l| !l.contains("--state") && !l.contains("--reload"))
                .count(),
            "{program}: {:#?}",
            live.lines()
        );
    }
}

#[test]
#[ignore = "needs root"]
fn the_firewall_covers_displays_of_either_mapping_file() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
    live.write(tigervnc::MAPPING_FILE, "admin:1\n");
    live.write(tigervnc::USERS_FILE, ":1=admin\n:9=operator\n");
    live.write("/usr/sbin/ufw", "");
    live.run(install(), &[]).unwrap();
    assert!(
        live.lines().contains(&"ufw allow 5900:5909/tcp".to_string()),
        "{:#?}",
        live.lines()
    );
}

#[test]
#[ignore = "needs root"]
fn a_mapping_file_that_does_not_parse_stops_a_lan_install_before_any_change() {
    let live = Live::new(DEBIAN);
    live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
    live.write(tigervnc::MAPPING_FILE, "admin:1\nadmin 2\n");
    live.write("/usr/sbin/ufw", "");
    let err = live.run(install(), &[]).unwrap_err();
    assert!(err.what.contains("vnc-display-mapping:2"), "{err}");
    assert!(
        !live
            .lines()
            .iter()
            .any(|l| l.starts_with(APT_INSTALL) || l.starts_with("ufw"))
    );
    assert!(!live.exists(tigervnc::XSESSION_FILE));
    assert!(!live.exists(state::PATH));
}

#[test]
#[ignore = "needs root"]
fn purge_refuses_a_mapping_file_that_does_not_parse_before_removing_anything() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.run(install(), &[]).unwrap();
    live.write(tigervnc::USERS_FILE, ":1=admin\n:x=operator\n");
    let before = live.lines().len();
    let err = live.run(uninstall(true), &[]).unwrap_err();
    assert!(err.what.contains("vncserver.users:2"), "{err}");
    assert_eq!(live.lines().len(), before, "no command ran");
    assert!(live.exists(tigervnc::XSESSION_FILE) && live.exists(state::PATH));
}

#[test]
#[ignore = "needs root"]
fn a_stopped_firewalld_falls_back_and_no_firewall_is_a_warning() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
    live.write("/usr/bin/firewall-cmd", "");
    live.fake
        .respond("firewall-cmd --state", Output::failed(252, "not running\n"));
    live.run(install(), &[]).unwrap();
    assert_eq!(live.ran("firewall-cmd --permanent"), 0);
    assert!(
        live.err
            .text()
            .contains("warning: vnc.listen = lan but neither firewalld")
    );
}

#[test]
#[ignore = "needs root"]
fn localhost_opens_nothing_and_closes_what_lan_opened() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.write("/usr/sbin/ufw", "");
    live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
    live.run(install(), &[]).unwrap();
    assert_eq!(live.ran("ufw allow 5900:5903/tcp"), 1);
    live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"localhost\"\n");
    live.run(install(), &[]).unwrap();
    assert_eq!(live.ran("ufw delete allow 5900:5903/tcp"), 1);
}

#[test]
#[ignore = "needs root"]
fn uninstall_removes_the_firewalld_service_and_ports_it_added() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.write("/usr/bin/firewall-cmd", "");
    live.write("/etc/edge-setup/edge-setup.toml", "[vnc]\nlisten = \"lan\"\n");
    live.write(tigervnc::MAPPING_FILE, "admin:1\noperator:5\n");
    live.run(install(), &[]).unwrap();
    live.run(uninstall(false), &[]).unwrap();
    for removal in [
        "firewall-cmd --permanent --remove-service=vnc-server",
        "firewall-cmd --permanent --remove-port=5904-5905/tcp",
    ] {
        assert_eq!(live.ran(removal), 1, "{removal}: {:#?}", live.lines());
    }
    assert_eq!(
        live.ran("firewall-cmd --reload"),
        2,
        "one after adding, one after removing"
    );
}

#[test]
#[ignore = "needs root"]
fn selinux_enforcing_restores_contexts_and_warns() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.write("/usr/sbin/getenforce", "");
    live.fake.respond("getenforce", Output::ok("Enforcing\n"));
    live.run(install(), &[]).unwrap();
    let restore: Vec<String> = live
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("restorecon -R"))
        .collect();
    assert_eq!(restore.len(), 1);
    assert!(restore[0].contains(tigervnc::XSESSION_FILE) && restore[0].contains(tigervnc::SUDOERS_FILE));
    assert!(live.err.text().contains("does not work with SELinux enforcing"));
    // nothing written on the second run: no restorecon, still the warning
    live.run(install(), &[]).unwrap();
    assert_eq!(live.ran("restorecon"), 1);
}

#[test]
#[ignore = "needs root"]
fn uninstall_removes_exactly_the_packages_edge_setup_installed() {
    let live = Live::new(DEBIAN);
    live.write(
        "/var/lib/dpkg/status",
        "Package: sudo\nStatus: install ok installed\n\nPackage: xterm\nStatus: install ok installed\n",
    );
    live.run(install(), &[]).unwrap();
    live.all_installed(); // what the install did
    live.run(uninstall(false), &[]).unwrap();
    let removes: Vec<String> = live
        .lines()
        .into_iter()
        .filter(|l| l.contains("apt-get remove"))
        .collect();
    assert_eq!(removes.len(), 1);
    assert!(removes[0].starts_with("DEBIAN_FRONTEND=noninteractive apt-get remove -y --auto-remove "));
    assert!(removes[0].contains(" fluxbox") && removes[0].contains(" firefox-esr"));
    assert!(
        !removes[0].contains(" sudo") && !removes[0].contains(" xterm"),
        "{}",
        removes[0]
    );
    assert_eq!(live.ran("groupdel vncusers"), 0, "the group exists on no host NSS here");
    assert!(!live.exists(tigervnc::SUDOERS_FILE) && !live.exists(state::PATH));
    assert!(!live.exists("/usr/share/edge-setup") && !live.exists("/usr/libexec/edge-setup"));
}

#[test]
#[ignore = "needs root"]
fn a_failed_removal_keeps_what_is_left_to_remove() {
    let live = Live::new(DEBIAN);
    live.run(install(), &[]).unwrap();
    live.all_installed();
    live.fake.respond(
        "DEBIAN_FRONTEND=noninteractive apt-get remove",
        Output::failed(100, "E: Sub-process /usr/bin/dpkg returned an error code (1)\n"),
    );
    let err = live.run(uninstall(false), &[]).unwrap_err();
    assert!(
        err.hint.as_deref().unwrap().contains("sudo edge-setup vnc --uninstall"),
        "{err}"
    );
    let state: State = serde_json::from_str(&std::fs::read_to_string(live.path(state::PATH)).unwrap()).unwrap();
    assert!(state.packages.contains("fluxbox"));
    assert!(state.files.is_empty(), "the files are gone already");
}

#[test]
#[ignore = "needs root"]
fn offline_install_makes_the_bundle_apts_only_source_for_the_missing_packages() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    let status = std::fs::read_to_string(live.path("/var/lib/dpkg/status")).unwrap();
    live.write(
        "/var/lib/dpkg/status",
        &status.replace(
            "Package: fluxbox\nStatus: install ok installed",
            "Package: fluxbox\nStatus: deinstall ok config-files",
        ),
    );
    live.write("/srv/bundle/fluxbox_1.3.5-2.1_amd64.deb", "");
    live.write("/srv/bundle/xterm_379-1_amd64.deb", "");
    live.run(
        Request::Install {
            offline: Some("/srv/bundle".into()),
        },
        &[],
    )
    .unwrap();
    assert_eq!(live.ran("apt-get update"), 0, "the system's sources are not refreshed");
    let installs: Vec<String> = live.lines().into_iter().filter(|l| l.starts_with("sh -c ")).collect();
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert!(
        installs[0].ends_with(" sh /srv/bundle fluxbox"),
        "the missing package by name, the bundle as the source: {}",
        installs[0]
    );
}

#[test]
#[ignore = "needs root"]
fn stale_temporary_files_of_a_killed_run_are_cleaned() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    live.write("/usr/share/xsessions/.edge-setup.desktop.Ab12Cd.tmp", "half");
    live.write("/usr/share/xsessions/.other.desktop.Ab12Cd.tmp", "not ours");
    live.run(install(), &[]).unwrap();
    assert!(!live.exists("/usr/share/xsessions/.edge-setup.desktop.Ab12Cd.tmp"));
    assert!(live.exists("/usr/share/xsessions/.other.desktop.Ab12Cd.tmp"));
    assert!(live.err.text().contains("left by an interrupted run"));
}

#[test]
#[ignore = "needs root"]
fn a_binary_users_can_replace_is_refused_for_the_sudoers_rule() {
    let live = Live::new(DEBIAN);
    live.all_installed();
    let exe = std::env::current_exe().unwrap();
    let dir = live.path(exe.parent().unwrap().to_str().unwrap());
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let err = live.run(install(), &[]).unwrap_err();
    assert!(err.what.contains("can be changed by users other than root"), "{err}");
    assert!(err.hint.as_deref().unwrap().contains("/usr/local/bin"));
    assert!(live.lines().is_empty());
    assert!(!live.exists(tigervnc::XSESSION_FILE));
}

#[test]
#[ignore = "needs root"]
fn bundle_resolves_one_consistent_set_as_for_an_empty_system() {
    let live = Live::new(DEBIAN);
    let dir = live.path("/srv/b");
    live.fake.respond_with(move |c| {
        c.line().starts_with("sh -c").then(|| {
            // what apt-get --download-only leaves behind
            for f in ["xterm_379-1_amd64.deb", "libc6_2.36-9_amd64.deb", "lock"] {
                std::fs::write(Path::new(&dir).join(f), "").unwrap();
            }
            Ok(Output::ok(""))
        })
    });
    live.run(Request::Bundle { dir: "/srv/b".into() }, &[]).unwrap();
    let download = live.lines().into_iter().find(|l| l.starts_with("sh -c")).unwrap();
    // resolved against an empty dpkg status, downloaded into the directory
    assert!(download.contains("Dir::State::status=\"$status\""), "{download}");
    assert!(download.contains("--download-only"), "{download}");
    assert!(download.contains("Dir::Cache::archives=\"$dir\""), "{download}");
    assert!(download.contains("sh /srv/b tigervnc-standalone-server"), "{download}");
    assert!(
        !download.contains("apt-cache depends"),
        "every alternative of a choice must not be bundled"
    );
    let err = live.err.text();
    assert!(err.contains("... 2 packages"), "{err}");
    assert!(err.contains("sudo edge-setup vnc --offline DIR"));
}

#[test]
#[ignore = "needs root"]
fn a_failed_install_records_what_the_package_manager_did_install() {
    let live = Live::new(DEBIAN);
    live.write("/var/lib/dpkg/status", "");
    let status = live.path("/var/lib/dpkg/status");
    live.fake.respond_with(move |c| {
        c.line().starts_with(APT_INSTALL).then(|| {
            // dpkg configured fluxbox, then failed on another package
            std::fs::write(&status, "Package: fluxbox\nStatus: install ok installed\n").unwrap();
            Ok(Output::failed(
                100,
                "E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
            ))
        })
    });
    let err = live.run(install(), &[]).unwrap_err();
    assert_eq!(
        err.why.as_deref(),
        Some("E: Sub-process /usr/bin/dpkg returned an error code (1)")
    );
    let state: State = serde_json::from_str(&std::fs::read_to_string(live.path(state::PATH)).unwrap()).unwrap();
    assert_eq!(state.packages.iter().collect::<Vec<_>>(), vec!["fluxbox"]);
}

/// A clone with its own host name: the image's line for its old name is replaced
/// by one for the new name, and the record follows; nothing without a VNC install.
#[test]
fn a_new_host_name_replaces_the_images_hosts_line() {
    let f = Fixture::debian();
    f.write("/etc/hostname", "clone-a\n");
    f.write("/etc/hosts", "127.0.0.1\tlocalhost\n");
    let image = f.system(crate::system::Mode::Image, false);
    assert!(!refresh_host_name(&image).unwrap(), "changed without a VNC install");
    f.write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tappliance\n# kept\n");
    let state = State {
        hosts_line: Some("127.0.1.1\tappliance".into()),
        group_created: true,
        ..State::default()
    };
    state.save(&image).unwrap();
    assert!(refresh_host_name(&image).unwrap());
    assert_eq!(
        f.read("/etc/hosts").unwrap(),
        "127.0.0.1\tlocalhost\n# kept\n127.0.1.1\tclone-a\n"
    );
    assert_eq!(
        State::load(&image).unwrap().hosts_line.as_deref(),
        Some("127.0.1.1\tclone-a")
    );
    // the second time: nothing to change
    assert!(!refresh_host_name(&image).unwrap());
}

#[test]
fn an_edge_setup_binary_is_told_by_its_mark_and_nothing_else() {
    let prefix = BINARY_MARK.split_inclusive(' ').next().unwrap().as_bytes();
    assert_eq!(prefix, b"\0edge-setup-binary ");
    // this very build carries its own version
    let own = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let version = parse_version(env!("CARGO_PKG_VERSION")).unwrap();
    assert_eq!(marked_version(&own, prefix), Some(version));
    // the prefix alone, or followed by junk, is no mark; a later real one is found (built
    // here, so that this test's binary carries no second mark)
    let with = |parts: &[&[u8]]| parts.concat();
    assert_eq!(marked_version(&with(&[b"x", prefix, b"1.2"]), prefix), None);
    assert_eq!(marked_version(&with(&[prefix, b"rm -rf\0"]), prefix), None);
    let later = with(&[prefix, b"9.x\0..", prefix, b"0.3.12\0"]);
    assert_eq!(marked_version(&later, prefix), Some((0, 3, 12)));
    assert_eq!(parse_version("1.2.3.4"), None);
    assert_eq!(parse_version("1.2"), None);
    assert!((0, 1, 0) >= MIN_RULE_VERSION && (0, 0, 9) < MIN_RULE_VERSION);
}
