//! `edge-setup vnc-user`: enables a user for VNC (replaces vnc-user-setup.sh).
//!
//! Privilege model:
//! - As root (`sudo edge-setup vnc-user [--user NAME]`) and in image mode
//!   (`--root`), everything runs in this process; files in the user's home are
//!   written with the user's file-system identity.
//! - As an ordinary user, this process reads the passwords and writes the
//!   password file and session settings in the user's own home, as the user;
//!   then it runs the privileged part, `sudo -n edge-setup vnc-user
//!   --system-part`, which the sudoers rule of `edge-setup vnc` allows the
//!   `vncusers` group. No secret crosses that boundary, and the privileged part
//!   takes the identity from SUDO_UID only, so a user can only act for
//!   themselves.
//!
//! The display mappings are changed under one exclusive lock, and both files
//! are put in place together (`System::commit`), so concurrent runs get
//! distinct displays and a kill leaves both files old or both new. The lock
//! is held only for that read-allocate-commit (`transact`): nothing prints or
//! runs a program while holding it, and it is waited for at most
//! `vnc.lock-wait`. A user's files are read (`UserFiles`) with their rights
//! and checked (regular, theirs, one link, small) before any lock is taken.

mod displays;
mod files;
pub mod health;
pub mod mapping;
mod migrate;
pub mod password;
mod passwords;
mod privileged;
mod report;
mod reset;
mod session;
mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::{Config, Geometry, Listen, VNC_GEOMETRY, VNC_LISTEN};
use crate::error::{Error, Kind, Result, exit};
use crate::system::fs::{Change, FileKind, FileSpec, as_user};
use crate::system::os_release::Family;
use crate::system::runner::{Cmd, Tool};
use crate::system::users::UserInfo;
use crate::system::{Batch, System};
use crate::tigervnc::{self, MAPPING_FILE, MAPPING_LOCK, SESSION, SYSTEM_PART_ARG, USERS_FILE, VNC_GROUP, Version};
use displays::*;
use files::*;
use mapping::{Mappings, Source};
use privileged::*;
use report::*;
use session::*;
use target::*;

pub use displays::load_mappings;
pub use migrate::move_legacy_files;
pub use passwords::{PASSWORD_LINE_MAX, Passwords, check_view_only};
pub use privileged::system_part;
pub use reset::{
    UserEndpoint, UserPasswords, current_passwords, password_files, remove_passwords, restart_enabled_sessions,
};

/// Brings the user's endpoint in the tenant up to date after a change (the
/// front end passes `remote_access::after_vnc_user`): the line for the
/// summary, or `None` when no tenant credentials are configured, and then the
/// summary shows the endpoint to enter by hand. Not called in a dry run,
/// which sends nothing to the tenant. Its arguments: the user, and what this
/// run changed here (for a failure, which must say what is done and what is not).
pub type EndpointHook<'a> = &'a dyn Fn(&System, &str, &str) -> Option<String>;

/// The hook's answer, where a run may call it.
fn endpoint_of(sys: &System, hook: EndpointHook, user: &str, local: &str) -> Option<String> {
    (!sys.dry_run()).then(|| hook(sys, user, local)).flatten()
}

/// What enabling changed here, in the words of `EndpointHook`'s failure line
/// (`changed`: a password or settings written, or the display recorded).
fn enabled_here(user: &str, display: u32, changed: bool) -> String {
    if changed {
        format!("{user}'s VNC session on :{display} takes the password set here")
    } else {
        format!("nothing changed for {user}'s VNC session on :{display}")
    }
}

/// What removing changed here, likewise.
fn removed_here(user: &str) -> String {
    format!("{user}'s VNC session is removed here")
}

/// What the privileged part (`--system-part`) is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Record the display and start the session; `restart` when the user part changed
    /// the password file or the settings of a session that may be running.
    Enable {
        restart: bool,
    },
    Remove,
}

/// The session settings from the configuration.
struct Settings {
    listen: Listen,
    geometry: Geometry,
    /// How long to wait for the mapping lock (`vnc.lock-wait`).
    lock_wait: Duration,
}

impl Settings {
    fn load(sys: &System) -> Result<Settings> {
        let cfg = Config::load(sys)?;
        Ok(Settings {
            listen: cfg.require(sys, VNC_LISTEN)?,
            geometry: cfg.require(sys, VNC_GEOMETRY)?,
            lock_wait: cfg.lock_wait(sys)?,
        })
    }
}

/// Enables `named` (default: the caller, or the one who ran sudo) with the
/// passwords `passwords` gives: `vnc-user`, and the wizard's option 10. The
/// passwords are asked for only after everything that can be refused was checked.
pub fn enable(
    sys: &System,
    named: Option<&str>,
    passwords: impl FnOnce() -> Result<Passwords>,
    hook: EndpointHook,
) -> Result<()> {
    let (target, delegated) = target_of(sys, named, true)?;
    enable_target(sys, &target, delegated, passwords, hook)
}

/// `vnc-user --remove`: stops the session, frees the display, deletes the password file.
pub fn remove(sys: &System, named: Option<&str>, hook: EndpointHook) -> Result<()> {
    let (target, delegated) = target_of(sys, named, false)?;
    if delegated {
        remove_delegated(sys, &target)
    } else {
        remove_here(sys, &target, hook)
    }
}

/// The user's VNC files for the installed TigerVNC, and whether the privileged
/// part must go through sudo (an ordinary user on a live system).
fn target_of(sys: &System, named: Option<&str>, enabling: bool) -> Result<(Target, bool)> {
    let family = sys.os_release()?.family()?;
    let user = target_user(sys, named)?;
    let target = Target::new(sys, family, user, enabling)?;
    if let Some(note) = &target.version_note {
        sys.out().note(note);
    }
    Ok((target, !sys.is_image() && !sys.is_root()))
}

fn enable_target(
    sys: &System,
    target: &Target,
    delegated: bool,
    passwords: impl FnOnce() -> Result<Passwords>,
    hook: EndpointHook,
) -> Result<()> {
    require_home(sys, &target.user)?;
    let settings = Settings::load(sys)?;
    // Everything that can be refused is checked before the passwords are asked
    // (and before any lock is taken).
    let (preview, _) = load_mappings(sys)?;
    check_name(&target.user.name)?;
    if preview.display_of(&target.user.name).is_none() && preview.allocate(|_| false).is_none() {
        return Err(no_free_display(&target.user, &[]));
    }
    check_user_paths(sys, target)?;
    let existing = UserFiles::read(sys, target)?;
    let passwords = passwords()?;
    let (display, endpoint) = if delegated {
        enable_delegated(
            sys,
            target,
            &settings,
            &existing,
            &passwords,
            preview.display_of(&target.user.name),
        )?
    } else {
        let display = enable_here(sys, target, &settings, &existing, &passwords)?;
        let local = enabled_here(&target.user.name, display, sys.change_count() > 0);
        (display, endpoint_of(sys, hook, &target.user.name, &local))
    };
    print_summary(sys, &target.user, display, settings.listen, endpoint.as_deref());
    Ok(())
}

/// Root or image mode: user files, mappings, session, all from this process.
fn enable_here(
    sys: &System,
    target: &Target,
    settings: &Settings,
    existing: &UserFiles,
    passwords: &Passwords,
) -> Result<u32> {
    let user = &target.user;
    let config = existing.config_text(settings);
    let servers = x_servers(sys);
    let mut created = Vec::new();
    let done = transact(sys, settings.lock_wait, |m, batch| {
        let chosen = choose_display(m, user, &servers)?;
        if !sys.dry_run() {
            for p in [&target.passwd, &target.config] {
                as_user(user.uid, user.gid, || sys.remove_stale_temps(p))?;
            }
        }
        created = create_dirs(sys, target)?;
        let passwd = sys.stage_as(batch, user, &target.passwd, &passwords.file(), 0o600)?;
        let config = sys.stage_as(batch, user, &target.config, config.as_bytes(), 0o644)?;
        Ok((chosen, FileChanges { passwd, config }))
    });
    let ((chosen, changes), mappings, notes) = done.inspect_err(|_| remove_dirs(sys, target, &created))?;
    tighten_dir(sys, target, &created)?;
    for note in notes {
        sys.out().note(&note);
    }
    note_skipped(sys, &chosen.skipped);
    report_user_files(sys, target, &changes);
    delete_legacy_passwd(sys, target)?;
    let display = chosen.display;
    sys.out()
        .step(&format!(
            "Recording display :{display} for {} in {MAPPING_FILE} and {USERS_FILE}",
            user.name
        ))
        .done(recorded_word(sys, chosen.kept, mappings));
    let restart = chosen.kept && (changes.passwd != Change::Unchanged || changes.config != Change::Unchanged);
    start_session(sys, target, display, restart)?;
    Ok(display)
}

/// An ordinary user: own files here, the privileged part through sudo.
fn enable_delegated(
    sys: &System,
    target: &Target,
    settings: &Settings,
    existing: &UserFiles,
    passwords: &Passwords,
    known: Option<u32>,
) -> Result<(u32, Option<String>)> {
    let config = existing.config_text(settings);
    let previous = [
        Previous::of(sys, &target.user, &target.passwd, existing.passwd.clone())?,
        Previous::of(
            sys,
            &target.user,
            &target.config,
            existing.config.clone().map(Zeroizing::new),
        )?,
    ];
    let passwd_file = passwords.file();
    let changes = !previous[0].holds(&passwd_file) || !previous[1].holds(config.as_bytes());
    let part = Part::Enable {
        restart: known.is_some() && changes,
    };
    check_sudo(sys, target, part)?;
    let created = create_dirs(sys, target)?;
    let mut written = 0;
    let result = (|| {
        let passwd = sys.write_as(&target.user, &target.passwd, &passwd_file, 0o600)?;
        written += 1;
        let config_change = sys.write_as(&target.user, &target.config, config.as_bytes(), 0o644)?;
        written += 1;
        report_user_files(
            sys,
            target,
            &FileChanges {
                passwd,
                config: config_change,
            },
        );
        run_system_part(sys, target, part).map(|(d, endpoint)| (d.or(known), endpoint))
    })();
    if result.is_ok() {
        delete_legacy_passwd(sys, target)?;
    }
    let (display, endpoint) = match result {
        Ok(r) => r,
        Err(e) => {
            for p in previous.iter().take(written).rev() {
                p.restore(sys, &target.user);
            }
            remove_dirs(sys, target, &created);
            return Err(e);
        }
    };
    tighten_dir(sys, target, &created)?;
    // Only a dry run has no answer from the privileged part.
    Ok((display.unwrap_or(0), endpoint))
}

fn remove_here(sys: &System, target: &Target, hook: EndpointHook) -> Result<()> {
    let wait = Config::load(sys)?.lock_wait(sys)?;
    let display = free_display(sys, target, wait)?;
    delete_passwd(sys, target)?;
    delete_legacy_passwd(sys, target)?;
    let endpoint = endpoint_of(sys, hook, &target.user.name, &removed_here(&target.user.name));
    print_removed(sys, &target.user, display, endpoint.as_deref());
    Ok(())
}

fn remove_delegated(sys: &System, target: &Target) -> Result<()> {
    let (m, _) = load_mappings(sys)?;
    check_sudo(sys, target, Part::Remove)?;
    let (_, endpoint) = run_system_part(sys, target, Part::Remove)?;
    delete_passwd(sys, target)?;
    delete_legacy_passwd(sys, target)?;
    print_removed(sys, &target.user, m.display_of(&target.user.name), endpoint.as_deref());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::VncUserArgs;
    use crate::commands::vnc_user::run;
    use crate::context::Ctx;
    use crate::prompt::{NoPrompt, NoPromptReason, Prompter, Scripted};
    use crate::system::Mode;
    use crate::system::runner::Output;
    use crate::testkit::Fixture;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const DEBIAN: &str = "ID=debian\nVERSION_ID=\"12\"\n";
    const ROCKY: &str = "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";

    /// A live-mode system on a temporary root with a recording fake runner.
    struct Live(Fixture);

    impl std::ops::Deref for Live {
        type Target = Fixture;
        fn deref(&self) -> &Fixture {
            &self.0
        }
    }

    impl Live {
        /// With TigerVNC installed (1.12 on Debian, 1.13 on the Red Hat family).
        fn new(os_release: &str) -> Live {
            let live = Live::without_tigervnc(os_release);
            live.write(
                "/var/lib/dpkg/status",
                "Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.12.0+dfsg-8\n",
            );
            live.fake.respond("rpm -q", Output::ok("1.13.1"));
            live
        }

        fn without_tigervnc(os_release: &str) -> Live {
            let f = Fixture::empty();
            f.write("/etc/os-release", os_release);
            std::fs::create_dir_all(f.path("/root")).unwrap();
            Live(f)
        }

        fn ctx(&self, uid: u32, env: &[(&str, &str)], prompt: Box<dyn Prompter>, stdin: &str) -> Ctx {
            self.ctx_asking(self.system(Mode::Live, false).with_ids(uid, uid), prompt)
                .with_stdin(Box::new(std::io::Cursor::new(stdin.as_bytes().to_vec())))
                .with_env(env.iter().copied())
        }

        /// The commands run, without the read-only `systemctl show` queries.
        fn commands(&self) -> Vec<String> {
            self.fake
                .lines()
                .into_iter()
                .filter(|l| !l.starts_with("systemctl show ") && !l.starts_with("systemctl is-active "))
                .collect()
        }

        fn read(&self, target: &str) -> Option<Vec<u8>> {
            self.read_bytes(target)
        }
    }

    fn args(user: Option<&str>, stdin: bool, remove: bool, system_part: bool) -> VncUserArgs {
        VncUserArgs {
            user: user.map(str::to_string),
            password_stdin: stdin,
            remove,
            system_part,
            restart: false,
        }
    }

    fn no_prompt() -> Box<dyn Prompter> {
        Box::new(NoPrompt(NoPromptReason::NoTerminal))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn root_asks_twice_reasks_on_mismatch_and_starts_the_unit() {
        let live = Live::new(DEBIAN);
        let prompt = Scripted::new([
            "password", "passw0rd", // mismatch: asked again
            "password", "password", "y", "password", // view-only equal to the full one: refused
            "viewonly", "viewonly",
        ]);
        let ctx = live.ctx(0, &[], Box::new(prompt), "");
        run(&ctx, &args(Some("root"), false, false, false)).unwrap();
        assert_eq!(
            hex(&live.read("/root/.vnc/passwd").unwrap()),
            "dbd83cfd727a14583b33820a27ba4dd0"
        );
        assert_eq!(
            live.commands(),
            vec!["systemctl enable --now tigervncserver@:1.service"]
        );
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");
        assert!(live.out.text().contains("display :1, port 5901"), "{}", live.out.text());
    }

    /// Before `edge-setup vnc`, a user is refused with the command that installs VNC, and
    /// nothing is written or run (issue 27: the files were written, then the unit was missing).
    #[test]
    fn without_tigervnc_a_user_is_refused_before_anything_is_written() {
        for os in [DEBIAN, ROCKY] {
            let live = Live::without_tigervnc(os);
            live.fake.respond(
                "rpm -q",
                Output::failed(1, "package tigervnc-server is not installed\n"),
            );
            let before = live.snapshot();
            let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
            let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
            assert_eq!(err.what, "VNC is not installed");
            assert_eq!(
                err.hint.as_deref(),
                Some("sudo edge-setup vnc, then this command again")
            );
            assert_eq!(live.snapshot(), before);
            assert!(
                live.commands().iter().all(|c| c.starts_with("rpm -q")),
                "{:?}",
                live.commands()
            );
        }
    }

    /// A session that is enabled and running already is left alone: the second
    /// run with the same input runs nothing and records no change.
    #[test]
    fn a_running_session_is_not_started_again() {
        let live = Live::new(DEBIAN);
        live.fake.respond(
            "systemctl show --property=UnitFileState,ActiveState tigervncserver@:1.service",
            Output::ok("UnitFileState=enabled\nActiveState=active\n"),
        );
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert!(live.commands().is_empty(), "{:?}", live.fake.lines());
        assert!(
            live.err
                .text()
                .contains("Enabling and starting tigervncserver@:1.service ... unchanged (enabled and running)")
        );
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert_eq!(ctx.sys.changes(), vec![], "the second run changed something");
    }

    #[test]
    fn root_without_a_user_acts_for_the_sudo_caller_or_asks_for_one() {
        let live = Live::new(DEBIAN);
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(None, true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::BadInput);
        assert!(err.hint.unwrap().contains("--user NAME"));
        let ctx = live.ctx(0, &[("SUDO_UID", "0")], no_prompt(), "secret12\n");
        run(&ctx, &args(None, true, false, false)).unwrap();
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");
    }

    #[test]
    fn rhel_restores_labels_when_selinux_is_on_and_a_failed_start_keeps_the_display() {
        let live = Live::new(ROCKY);
        live.fake.respond("rpm -q", Output::ok("1.13.1"));
        live.fake.respond(
            "systemctl enable",
            Output::failed(
                1,
                "Job for vncserver@:1.service failed because the control process exited with error code.\n",
            ),
        );
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        let lines = live.commands();
        assert_eq!(lines[0], "rpm -q --qf '%{VERSION}' tigervnc-server");
        assert_eq!(lines[1], "selinuxenabled");
        let home = live.path("/root/.vnc").display().to_string();
        // exactly the files edge-setup made, by name, not recursively
        assert_eq!(
            lines[2],
            format!("restorecon -F {home} {home}/passwd {home}/config"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "systemctl enable --now vncserver@:1.service");
        assert!(err.to_string().contains("journalctl -u vncserver@:1.service"), "{err}");
        assert_eq!(live.read(USERS_FILE).unwrap(), b":1=root\n");
    }

    #[test]
    fn the_system_part_acts_for_sudo_uid_only() {
        let live = Live::new(DEBIAN);
        let ctx = live.ctx(0, &[], no_prompt(), "");
        let err = run(&ctx, &args(None, false, false, true)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
        assert!(err.what.contains("SUDO_UID"));
        let ctx = live.ctx(1000, &[("SUDO_UID", "0")], no_prompt(), "");
        assert_eq!(
            run(&ctx, &args(None, false, false, true)).unwrap_err().kind,
            Kind::NotPermitted
        );

        let ctx = live.ctx(0, &[("SUDO_UID", "0")], no_prompt(), "");
        let err = run(&ctx, &args(None, false, false, true)).unwrap_err();
        assert!(err.what.contains("no VNC password file"), "{err}");
        assert!(live.fake.calls().is_empty());

        std::fs::create_dir_all(live.path("/root/.vnc")).unwrap();
        std::fs::write(live.path("/root/.vnc/passwd"), password::encode("secret12", None)).unwrap();
        run(&ctx, &args(None, false, false, true)).unwrap();
        assert_eq!(live.out.text(), "{\"display\":1,\"changed\":true}\n");
        assert_eq!(
            live.commands(),
            vec!["systemctl enable --now tigervncserver@:1.service"]
        );
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");

        run(&ctx, &args(None, false, true, true)).unwrap();
        assert_eq!(live.commands()[1], "systemctl disable --now tigervncserver@:1.service");
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"");
        // the password file is the user's to delete
        assert!(live.read("/root/.vnc/passwd").is_some());
    }

    #[test]
    fn the_system_part_refuses_a_fifo_for_a_password_file_at_once() {
        let live = Live::new(DEBIAN);
        std::fs::create_dir_all(live.path("/root/.vnc")).unwrap();
        nix::unistd::mkfifo(
            &live.path("/root/.vnc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let ctx = live.ctx(0, &[("SUDO_UID", "0")], no_prompt(), "");
        let err = run(&ctx, &args(None, false, false, true)).unwrap_err();
        assert!(err.what.contains("a FIFO (named pipe), not a regular file"), "{err}");
        assert!(live.fake.calls().is_empty());
        assert!(live.read(MAPPING_FILE).is_none());
    }

    /// An ordinary user: `nobody` from the host's user database, its home in the temporary root.
    /// Needs root and the `nobody` user: its tests are `#[ignore = "needs root"]`.
    fn as_nobody(live: &Live) -> UserInfo {
        assert!(nix::unistd::geteuid().is_root(), "this test needs root: run it as root");
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(65534))
            .ok()
            .flatten()
            .expect("this test needs the user 'nobody' (uid 65534) on this host");
        let home = live.path(&user.dir.to_string_lossy());
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(65534), Some(user.gid.as_raw())).unwrap();
        UserInfo {
            name: user.name,
            uid: 65534,
            gid: user.gid.as_raw(),
            home: user.dir,
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn an_ordinary_user_writes_own_files_and_runs_the_privileged_part_through_sudo() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        live.fake.respond(
            "sudo -n -l ",
            Output::ok("/usr/local/bin/edge-setup vnc-user --system-part\n"),
        );
        live.fake.respond(
            "sudo -n ",
            Output {
                status: Some(0),
                stdout: "{\"display\":7,\"changed\":true}\n".into(),
                stderr: "Recording display :7 for nobody ... added\n".into(),
                ..Output::default()
            },
        );
        let ctx = live.ctx(65534, &[], no_prompt(), "password\n");
        run(&ctx, &args(None, true, false, false)).unwrap();
        let lines = live.fake.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("sudo -n -l ") && lines[0].ends_with(" vnc-user --system-part"));
        assert!(lines[1].starts_with("sudo -n ") && lines[1].ends_with(" vnc-user --system-part"));
        // no secret crosses into the privileged part
        assert!(live.fake.calls().iter().all(|c| c.stdin.is_none()));
        let passwd = nobody.home.join(".vnc/passwd");
        assert_eq!(hex(&live.read(&passwd.to_string_lossy()).unwrap()), "dbd83cfd727a1458");
        assert_eq!(
            std::fs::metadata(live.path(&passwd.to_string_lossy())).unwrap().uid(),
            65534
        );
        assert!(live.out.text().contains("display :7, port 5907"), "{}", live.out.text());
        assert!(live.err.text().contains("Recording display :7 for nobody ... added"));

        // --remove: the privileged part frees the display, the user deletes the file
        run(&ctx, &args(None, false, true, false)).unwrap();
        assert!(live.fake.lines()[3].ends_with(" vnc-user --system-part --remove"));
        assert!(live.read(&passwd.to_string_lossy()).is_none());
    }

    /// A running session reads its password only at start: a changed password restarts
    /// it, an unchanged one leaves it alone.
    #[test]
    fn a_changed_password_restarts_the_session_and_an_unchanged_one_does_not() {
        let live = Live::new(DEBIAN);
        let unit = "tigervncserver@:1.service";
        for (stdin, expected) in [
            ("password\n", vec![format!("systemctl enable --now {unit}")]),
            (
                "n3wpass1\n",
                vec![format!("systemctl enable {unit}"), format!("systemctl restart {unit}")],
            ),
            ("n3wpass1\n", vec![format!("systemctl enable --now {unit}")]),
        ] {
            let before = live.commands().len();
            let ctx = live.ctx(0, &[], no_prompt(), stdin);
            run(&ctx, &args(Some("root"), true, false, false)).unwrap();
            assert_eq!(live.commands()[before..], expected[..], "{stdin:?}");
        }
        assert!(live.err.text().contains("Restarting tigervncserver@:1.service"));
    }

    #[test]
    #[ignore = "needs root"]
    fn an_ordinary_users_new_password_asks_the_privileged_part_to_restart() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        live.write(MAPPING_FILE, "nobody:7\n");
        live.write(USERS_FILE, ":7=nobody\n");
        live.fake.respond(
            "sudo -n -l ",
            Output::ok("/usr/local/bin/edge-setup vnc-user --system-part --restart\n"),
        );
        // the privileged part changes something exactly when it restarts the session here
        live.fake.respond_with(|c| {
            let line = c.line();
            (line.starts_with("sudo -n ") && !line.starts_with("sudo -n -l ")).then(|| {
                let changed = line.ends_with(" --restart");
                Ok(Output::ok(&format!("{{\"display\":7,\"changed\":{changed}}}\n")))
            })
        });
        for (stdin, restart) in [("password\n", true), ("password\n", false), ("n3wpass1\n", true)] {
            let before = live.fake.lines().len();
            let ctx = live.ctx(65534, &[], no_prompt(), stdin);
            run(&ctx, &args(None, true, false, false)).unwrap();
            // the same password again: nothing written, nothing changed as root either
            assert_eq!(
                ctx.sys.change_count() == 0,
                !restart,
                "{stdin:?}: {:?}",
                ctx.sys.changes()
            );
            let lines = &live.fake.lines()[before..];
            assert_eq!(lines.len(), 2, "{lines:?}");
            for line in lines {
                assert_eq!(line.ends_with(" --system-part --restart"), restart, "{stdin:?}: {line}");
                assert!(line.contains(" vnc-user --system-part"), "{line}");
            }
        }
        assert!(live.read(&nobody.home.join(".vnc/passwd").to_string_lossy()).is_some());
    }

    #[test]
    #[ignore = "needs root"]
    fn an_ordinary_user_without_the_sudo_rule_is_told_how_to_get_it_and_nothing_changes() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        live.fake
            .respond("sudo -n -l ", Output::failed(1, "sudo: a password is required\n"));
        let ctx = live.ctx(65534, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(None, true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
        assert_eq!(err.why.as_deref(), Some("sudo: a password is required"));
        let hint = err.hint.unwrap();
        assert!(
            hint.contains("usermod -aG vncusers") && hint.contains("sudo edge-setup vnc-user --user"),
            "{hint}"
        );
        assert!(!live.path(&nobody.home.join(".vnc").to_string_lossy()).exists());

        // nor may a user act for someone else
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
    }

    #[test]
    #[ignore = "needs root"]
    fn a_failed_privileged_part_puts_the_users_files_back() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        let vnc = live.path(&nobody.home.join(".vnc").to_string_lossy());
        std::fs::create_dir_all(&vnc).unwrap();
        std::os::unix::fs::chown(&vnc, Some(65534), Some(nobody.gid)).unwrap();
        std::fs::write(vnc.join("passwd"), b"OLDOLDOL").unwrap();
        std::os::unix::fs::chown(vnc.join("passwd"), Some(65534), Some(nobody.gid)).unwrap();
        live.fake.respond("sudo -n -l ", Output::ok(""));
        live.fake.respond(
            "sudo -n ",
            Output::failed(1, "error: /opt/c8y/utilities/vnc-display-mapping:2: cannot parse 'x'\n"),
        );
        let ctx = live.ctx(65534, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(None, true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::Failure);
        assert!(live.err.text().contains("cannot parse 'x'"), "{}", live.err.text());
        assert_eq!(std::fs::read(vnc.join("passwd")).unwrap(), b"OLDOLDOL");
        assert!(!vnc.join("config").exists());
    }

    /// What any local user can put in /tmp is no information about X servers:
    /// a link for /tmp/.X11-unix, fake or stale lock files (one naming a live
    /// process that is no X server), zero-padded names, socket files whose
    /// process has ended (issue 26, finding 4: they used to fill all 99 displays).
    #[test]
    fn planted_tmp_files_do_not_stop_an_allocation() {
        let live = Live::new(DEBIAN);
        std::fs::create_dir_all(live.path("/tmp/.X11-unix")).unwrap();
        std::fs::set_permissions(live.path("/tmp/.X11-unix"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        for n in 1..=99 {
            live.write(&format!("/tmp/.X{n}-lock"), "fake\n");
            // a socket file of a process that has ended
            drop(std::os::unix::net::UnixListener::bind(live.path(&format!("/tmp/.X11-unix/X{n}"))).unwrap());
        }
        if nix::unistd::geteuid().is_root() {
            // planted by a user, as on a real system
            for n in 1..=99 {
                std::os::unix::fs::lchown(live.path(&format!("/tmp/.X11-unix/X{n}")), Some(4242), None).unwrap();
            }
        }
        // a live process, but no X server: it has no X socket
        live.write("/tmp/.X1-lock", &format!("{:>10}\n", std::process::id()));
        // not display 3: X writes no leading zeros
        live.write("/tmp/.X0003-lock", &format!("{:>10}\n", std::process::id()));
        // the kernel's list of open Unix sockets names none of them
        live.write("/proc/net/unix", UNIX_HEADER);
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");
        // the lock and the socket of :1 would stop the session: gone; the others are left
        assert!(live.read("/tmp/.X1-lock").is_none());
        assert!(!live.path("/tmp/.X11-unix/X1").exists());
        let err = live.err.text();
        assert!(
            err.contains("removed /tmp/.X1-lock: no running X server holds display :1"),
            "{err}"
        );
        assert!(
            err.contains("removed /tmp/.X11-unix/X1: no running X server holds display :1"),
            "{err}"
        );
        assert!(live.read("/tmp/.X2-lock").is_some());
        assert!(live.path("/tmp/.X11-unix/X2").exists());
    }

    const UNIX_HEADER: &str = "Num       RefCount Protocol Flags    Type St Inode Path\n";

    /// A live root with X servers on :1 (an abstract socket, and a lock file
    /// naming this process) and :2 (a socket file in a root-owned 1777
    /// /tmp/.X11-unix), as the kernel lists their open sockets.
    fn with_x_servers() -> Live {
        let live = Live::new(DEBIAN);
        std::fs::create_dir_all(live.path("/tmp/.X11-unix")).unwrap();
        std::fs::set_permissions(live.path("/tmp/.X11-unix"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        live.write("/tmp/.X1-lock", &format!("{:>10}\n", std::process::id()));
        drop(std::os::unix::net::UnixListener::bind(live.path("/tmp/.X11-unix/X2")).unwrap());
        live.write(
            "/proc/net/unix",
            &format!(
                "{UNIX_HEADER}\
                 0000000000000000: 00000002 00000000 00010000 0001 01 31001 @/tmp/.X11-unix/X1\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 31002 /tmp/.X11-unix/X2\n\
                 0000000000000000: 00000002 00000000 00010000 0001 01 31003 /run/systemd/private\n\
                 0000000000000000: 00000002 00000000 00000000 0002 01 31004\n"
            ),
        );
        live
    }

    #[test]
    fn displays_with_an_open_x_socket_are_x_servers() {
        let live = with_x_servers();
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let servers = x_servers(&ctx.sys);
        assert_eq!(servers.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        // the owners: the socket file's, else the live lock's
        let me = nix::unistd::geteuid().as_raw();
        assert_eq!((servers[&1], servers[&2]), (me, me));
        // a socket directory anyone could have made tells no owner
        std::fs::set_permissions(live.path("/tmp/.X11-unix"), std::fs::Permissions::from_mode(0o777)).unwrap();
        live.write("/tmp/.X1-lock", "fake\n");
        let servers = x_servers(&ctx.sys);
        assert_eq!((servers[&1], servers[&2]), (u32::MAX, u32::MAX));
    }

    /// X servers of another uid than the user's are skipped, and the run says so;
    /// when they hold every display the mapping leaves, the error says that.
    #[test]
    #[ignore = "needs root"]
    fn displays_held_by_another_user_are_skipped() {
        let live = with_x_servers();
        std::os::unix::fs::chown(live.path("/tmp/.X1-lock"), Some(4242), None).unwrap();
        std::os::unix::fs::lchown(live.path("/tmp/.X11-unix/X2"), Some(4242), None).unwrap();
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:3\n");
        let err = live.err.text();
        assert!(err.contains("display :1 is held by another X server"), "{err}");
        assert!(err.contains("display :2 is held by another X server"), "{err}");
        assert!(live.read("/tmp/.X1-lock").is_some(), "a live server's files stay");

        let mapping: String = (3..=99).map(|n| format!("u{n}:{n}\n")).collect();
        live.write(MAPPING_FILE, &mapping);
        let users: String = (3..=99).map(|n| format!(":{n}=u{n}\n")).collect();
        live.write(USERS_FILE, &users);
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        assert!(err.what.contains("all 99 displays are taken"), "{err}");
        let why = err.why.unwrap_or_default();
        assert!(
            why.contains("lists 97 of them; running X servers of other users hold the other 2"),
            "{why}"
        );
        assert!(err.hint.unwrap_or_default().contains("ss -xlp"));
    }

    #[test]
    fn x_sockets_are_read_from_the_kernels_list() {
        let list = format!(
            "{UNIX_HEADER}\
             0000000000000000: 00000002 00000000 00010000 0001 01 1 /tmp/.X11-unix/X7\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 2 @/tmp/.X11-unix/X12\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 3 /tmp/.X11-unix/X0003\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 4 /home/x/tmp/.X11-unix/X9\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 5 /tmp/.X11-unix/Xa\n\
             0000000000000000: 00000003 00000000 00000000 0001 03 6\n"
        );
        assert_eq!(parse_unix_sockets(&list).into_iter().collect::<Vec<_>>(), vec![7, 12]);
        assert!(parse_unix_sockets("").is_empty());
    }

    #[test]
    fn display_numbers_are_written_as_x_writes_them() {
        assert_eq!(display_number("3"), Some(3));
        assert_eq!(display_number("0"), Some(0));
        assert_eq!(display_number("0003"), None);
        assert_eq!(display_number(""), None);
        assert_eq!(display_number("3a"), None);
    }

    #[test]
    fn a_long_password_line_is_refused_without_reading_it_all() {
        let live = Live::new(DEBIAN);
        let stdin = format!("{}\n", "x".repeat(1 << 20));
        let ctx = live.ctx(0, &[], no_prompt(), &stdin);
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::BadInput);
        assert!(err.what.contains("longer than 256 bytes"), "{err}");
        assert!(live.read(MAPPING_FILE).is_none());
    }

    #[test]
    fn session_config_sets_our_keys_and_keeps_the_rest() {
        let s = Settings {
            listen: Listen::Lan,
            geometry: Geometry {
                width: 1024,
                height: 768,
            },
            lock_wait: Duration::from_secs(10),
        };
        assert_eq!(
            session_config(Some("# c\nSession=gnome\nlocalhost\nlocalhost=yes\nrfbport=5999\n"), &s),
            "# c\nsession=edge-setup\nlocalhost=no\nrfbport=5999\ngeometry=1024x768\n"
        );
        assert!(session_config(None, &s).starts_with("# TigerVNC session settings"));
    }

    const CONFIG_NEAR: &[&str] = &[
        "session=gnome",
        "Session = xfce",
        "geometry=800x600",
        "localhost",
        "localhost=no",
        "rfbport=5999",
        "# comment",
        "=",
        "securitytypes=VncAuth",
        "GEOMETRY",
        "session",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any TigerVNC settings file gets our three keys exactly once, and keeps
        /// every other line; the result is no more than the input and our lines.
        #[test]
        fn any_session_settings_get_our_keys_once(text in crate::fuzz::text(CONFIG_NEAR)) {
            let s = Settings { listen: Listen::Localhost, geometry: Geometry { width: 1280, height: 800 }, lock_wait: Duration::from_secs(1) };
            let out = session_config(Some(&text), &s);
            let key = |l: &str| l.trim().split('=').next().unwrap_or("").trim().to_ascii_lowercase();
            for ours in ["session", "geometry", "localhost"] {
                let n = out.lines().filter(|l| !l.trim().starts_with('#') && key(l) == ours).count();
                proptest::prop_assert_eq!(n, 1, "{}", ours);
            }
            proptest::prop_assert!(out.len() <= text.len() + text.lines().count() + 200);
        }

        /// Any list of the kernel's Unix sockets names only X displays in range.
        #[test]
        fn any_unix_socket_list_names_displays(text in crate::fuzz::text(&[
            "Num       RefCount Protocol Flags    Type St Inode Path",
            "0000000000000000: 00000002 00000000 00010000 0001 01 31001 @/tmp/.X11-unix/X1",
            "0000000000000000: 00000002 00000000 00010000 0001 01 31002 /tmp/.X11-unix/X42",
            "0000000000000000: 00000002 00000000 00000000 0002 01 31004",
        ])) {
            for n in parse_unix_sockets(&text) {
                let path = format!("/tmp/.X11-unix/X{n}");
                proptest::prop_assert!(text.contains(&path), "{}", path);
            }
        }
    }
}
