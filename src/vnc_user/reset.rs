//! Users' VNC passwords in a golden image: listed by `image prepare`, removed
//! only when asked (`--vnc-passwords`), so that clones do not share them.

use super::*;

/// A user with a display, and the password files they have.
#[derive(serde::Serialize)]
pub struct UserPasswords {
    pub user: String,
    pub display: u32,
    /// As the host sees them.
    pub files: Vec<PathBuf>,
    /// Where the files are, for `remove_passwords` (read once, by `password_files`).
    #[serde(skip)]
    target: Target,
}

/// Every user with a display, with the password files found for them (an
/// entry without files is listed too: their session cannot start anyway).
pub fn password_files(sys: &System) -> Result<Vec<UserPasswords>> {
    let family = sys.os_release()?.family()?;
    let version = tigervnc::installed_version(sys, family)?.unwrap_or(Version::DEBIAN_12);
    let (mappings, _) = load_mappings(sys)?;
    let users = sys.users();
    let mut out = Vec::new();
    for (name, display, _) in mappings.appliance.entries() {
        let Some(user) = users.by_name(name)? else {
            continue;
        };
        let target = Target::at(family, user, version);
        let mut files = Vec::new();
        for path in std::iter::once(&target.passwd).chain(&target.legacy_passwd) {
            let u = &target.user;
            if as_user(u.uid, u.gid, || sys.kind(path))? == Some(FileKind::File) {
                files.push(sys.host_path(path));
            }
        }
        out.push(UserPasswords {
            user: name.to_string(),
            display,
            files,
            target,
        });
    }
    Ok(out)
}

/// A user with a display and the full-access VNC password recovered from
/// their password file, for the tenant's endpoint (`remote-access sync`).
pub struct UserEndpoint {
    pub user: String,
    pub display: u32,
    /// `Err` says why there is no password to send (no file, not readable).
    pub password: Result<Zeroizing<String>, String>,
}

/// Every user with a display (or only `only`), with their current password:
/// the file the installed TigerVNC reads, read as the user with the checks of
/// every file in a home (never through a link, theirs, small).
pub fn current_passwords(sys: &System, only: Option<&str>) -> Result<Vec<UserEndpoint>> {
    let listed = password_files(sys)?;
    let mut out = Vec::new();
    for entry in listed.into_iter().filter(|u| only.is_none_or(|o| o == u.user)) {
        let target = &entry.target;
        let password = match UserFiles::read(sys, target) {
            Ok(UserFiles {
                passwd: Some(bytes), ..
            }) => password::decode(&bytes).ok_or_else(|| {
                format!(
                    "{} is not a VNC password file edge-setup can read",
                    sys.host_path(&target.passwd).display()
                )
            }),
            Ok(_) => Err(format!("{} has no VNC password file", entry.user)),
            Err(e) => Err(e.what),
        };
        out.push(UserEndpoint {
            user: entry.user,
            display: entry.display,
            password,
        });
    }
    Ok(out)
}

/// Deletes the users' password files (as each user) and disables their
/// sessions, which could not start without them; the displays stay recorded,
/// so `edge-setup vnc-user` (or a `[[vnc-user]]` entry at first boot) brings a
/// user back on the same port. In an image the session's `multi-user.target`
/// link is removed, and its start at the first boot with it; on a running
/// system `systemctl disable --now`.
/// Users listed without files are left alone.
pub fn remove_passwords(sys: &System, listed: &[UserPasswords]) -> Result<()> {
    for entry in listed.iter().filter(|u| !u.files.is_empty()) {
        let target = &entry.target;
        delete_passwd(sys, target)?;
        delete_legacy_passwd(sys, target)?;
        let unit = target.unit(entry.display);
        let step = sys.out().step(&format!("Disabling {unit} (it has no password now)"));
        if sys.is_image() {
            let link = Path::new("/etc/systemd/system/multi-user.target.wants").join(&unit);
            let removed = sys.remove(&link)?;
            // a session without a password would fail the clones' first boot
            sys.cancel_pending(&unit)?;
            step.done(if removed { sys.done_word() } else { "not enabled" });
        } else {
            sys.run(Cmd::new(Tool::Systemctl).args(["disable", "--now", &unit]))?;
            step.done(sys.done_word());
        }
    }
    Ok(())
}

/// Restarts every enabled session (live only): after the first boot made the
/// host name resolve, the sessions that could not start at boot come up.
pub fn restart_enabled_sessions(sys: &System) -> Result<()> {
    if sys.is_image() {
        return Ok(());
    }
    let family = sys.os_release()?.family()?;
    let (mappings, _) = load_mappings(sys)?;
    for (_, display, _) in mappings.appliance.entries() {
        let unit = tigervnc::unit(family, display);
        let query = Cmd::new(Tool::Systemctl).args(["is-enabled", "--quiet", &unit]);
        if sys.query(query)?.is_some_and(|o| o.success()) {
            let step = sys.out().step(&format!("Restarting {unit}"));
            sys.run(Cmd::new(Tool::Systemctl).args(["restart", &unit]))?;
            step.done(sys.done_word());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::system::runner::Output;
    use crate::testkit::Fixture;

    fn with_two_users() -> Fixture {
        let f = Fixture::debian();
        f.write(MAPPING_FILE, "admin:1\noperator:2\n");
        f.write(USERS_FILE, ":1=admin\n:2=operator\n");
        f
    }

    #[test]
    fn only_the_enabled_sessions_are_restarted_and_none_in_an_image() {
        let f = with_two_users();
        f.fake.respond_with(|cmd| {
            let line = cmd.line();
            (line.starts_with("systemctl is-enabled") && line.contains(":2."))
                .then(|| Ok(Output::failed(1, "disabled")))
        });
        restart_enabled_sessions(&f.live()).unwrap();
        let restarts: Vec<String> = f.commands().into_iter().filter(|l| l.contains("restart")).collect();
        assert_eq!(restarts, ["systemctl restart tigervncserver@:1.service"]);
        let image = with_two_users();
        restart_enabled_sessions(&image.system(Mode::Image, false)).unwrap();
        assert!(image.commands().is_empty(), "{:?}", image.commands());
    }

    #[test]
    #[ignore = "needs root"]
    fn password_files_lists_each_user_with_a_display_and_the_files_found() {
        let f = with_two_users();
        for (home, uid) in [("/home/admin", 1000), ("/home/operator", 1001)] {
            std::fs::create_dir_all(f.path(home)).unwrap();
            std::os::unix::fs::chown(f.path(home), Some(uid), Some(uid)).unwrap();
        }
        f.write("/home/admin/.vnc/passwd", "12345678");
        let listed = password_files(&f.system(Mode::Image, false)).unwrap();
        let users: Vec<(&str, u32, usize)> = listed
            .iter()
            .map(|u| (u.user.as_str(), u.display, u.files.len()))
            .collect();
        assert_eq!(users, [("admin", 1, 1), ("operator", 2, 0)]);
        assert!(listed[0].files[0].ends_with("home/admin/.vnc/passwd"));
    }
}
