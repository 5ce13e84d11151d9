//! Users' VNC passwords in a golden image: listed by `image prepare`, removed
//! only when asked (`--vnc-passwords`), so that clones do not share them.

use super::*;

/// A user with a display, and the password files they have.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserPasswords {
    pub user: String,
    pub display: u32,
    /// As the host sees them.
    pub files: Vec<PathBuf>,
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
        });
    }
    Ok(out)
}

/// Deletes the users' password files (as each user) and disables their
/// sessions, which could not start without them; the displays stay recorded,
/// so `edge-setup vnc-user` (or a `[[vnc-user]]` entry at first boot) brings a
/// user back on the same port. In an image the session's `multi-user.target`
/// link is removed; on a running system `systemctl disable --now`.
pub fn remove_passwords(sys: &System, listed: &[UserPasswords]) -> Result<()> {
    let family = sys.os_release()?.family()?;
    let version = tigervnc::installed_version(sys, family)?.unwrap_or(Version::DEBIAN_12);
    let users = sys.users();
    for entry in listed {
        let Some(user) = users.by_name(&entry.user)? else {
            continue;
        };
        let target = Target::at(family, user, version);
        delete_passwd(sys, &target)?;
        delete_legacy_passwd(sys, &target)?;
        let unit = target.unit(entry.display);
        let step = sys.out().step(&format!("Disabling {unit} (it has no password now)"));
        if sys.is_image() {
            let link = Path::new("/etc/systemd/system/multi-user.target.wants").join(&unit);
            let removed = sys.remove(&link)?;
            step.done(if removed { sys.done_word() } else { "not enabled" });
        } else {
            sys.run(Cmd::new(Tool::Systemctl).args(["disable", "--now", &unit]))?;
            step.done(sys.done_word());
        }
    }
    Ok(())
}
