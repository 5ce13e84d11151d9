//! Whose VNC files, and where: the user to act for and their directory for the installed TigerVNC.

use super::*;

/// Where a user's VNC files are, for the installed TigerVNC.
pub(super) struct Target {
    pub(super) user: UserInfo,
    pub(super) family: Family,
    /// `~/.vnc` (TigerVNC < 1.14) or `~/.config/tigervnc`.
    pub(super) dir: PathBuf,
    pub(super) passwd: PathBuf,
    pub(super) config: PathBuf,
    /// From TigerVNC 1.14: the `~/.vnc/passwd` an older TigerVNC read.
    pub(super) legacy_passwd: Option<PathBuf>,
    /// Said when the TigerVNC version had to be assumed.
    pub(super) version_note: Option<String>,
}

impl Target {
    /// For `enabling` a user, refuses before anything is written when no session could
    /// start: TigerVNC is not installed here, or (in an image, whose packages may be left to
    /// the target) `edge-setup vnc` never ran in it.
    pub(super) fn new(sys: &System, family: Family, user: UserInfo, enabling: bool) -> Result<Target> {
        let installed = tigervnc::installed_version(sys, family)?;
        if installed.is_none() && enabling {
            require_vnc_set_up(sys)?;
        }
        let (version, version_note) = match installed {
            Some(v) => (v, None),
            None => (
                Version::DEBIAN_12,
                Some(format!(
                    "TigerVNC is not installed{}; assuming version {}.{} (Debian 12), which reads ~/.vnc",
                    if sys.is_image() { " in this image" } else { "" },
                    Version::DEBIAN_12.0,
                    Version::DEBIAN_12.1
                )),
            ),
        };
        Ok(Target {
            version_note,
            ..Target::at(family, user, version)
        })
    }

    /// The user's files for a TigerVNC version known already.
    pub(super) fn at(family: Family, user: UserInfo, version: Version) -> Target {
        let dir = version.user_dir(&user.home);
        let old_dir = Version::DEBIAN_12.user_dir(&user.home);
        Target {
            legacy_passwd: (dir != old_dir).then(|| old_dir.join("passwd")),
            passwd: dir.join("passwd"),
            config: dir.join("config"),
            dir,
            user,
            family,
            version_note: None,
        }
    }

    /// The directories to create, outermost first: `~/.config` too for 1.14.
    pub(super) fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.dir.clone()];
        if let Some(parent) = self.dir.parent().filter(|p| *p != self.user.home) {
            dirs.insert(0, parent.to_path_buf());
        }
        dirs
    }

    pub(super) fn unit(&self, display: u32) -> String {
        tigervnc::unit(self.family, display)
    }
}

/// The user to act for. Without root only oneself; root names the user or
/// acts for the one who ran sudo; image mode needs the name.
pub(super) fn target_user(sys: &System, named: Option<&str>) -> Result<UserInfo> {
    let users = sys.users();
    if sys.is_image() {
        let name = named.ok_or_else(|| {
            Error::bad_input("which user? --user NAME is needed with --root")
                .hint("for example: edge-setup --root IMAGE vnc-user --user admin --password-stdin")
        })?;
        return users.require(name);
    }
    if sys.is_root() {
        if let Some(name) = named {
            return users.require(name);
        }
        if let Some(uid) = sys.sudo_uid() {
            return users
                .by_uid(uid)?
                .ok_or_else(|| Error::failure(format!("there is no user with uid {uid} (from SUDO_UID)")));
        }
        return Err(
            Error::bad_input("which user? Running as root, vnc-user needs --user NAME").hint(
                "run it as the user (edge-setup vnc-user), or name the user: sudo edge-setup vnc-user --user NAME",
            ),
        );
    }
    let me = users
        .by_uid(sys.uid())?
        .ok_or_else(|| Error::failure(format!("there is no user with uid {} on this system", sys.uid())))?;
    if let Some(name) = named
        && name != me.name
    {
        return Err(
            Error::not_permitted(format!("{} cannot enable VNC for another user ({name})", me.name)).hint(format!(
                "run it as {name}, or ask an administrator: sudo edge-setup vnc-user --user {name}"
            )),
        );
    }
    Ok(me)
}

pub(super) fn require_home(sys: &System, user: &UserInfo) -> Result<()> {
    match sys.meta(&user.home)? {
        Some(m) if m.is_dir => passable(sys, user),
        _ => Err(Error::failure(format!(
            "the home directory {} of {} does not exist",
            sys.host_path(&user.home).display(),
            user.name
        ))
        .hint(format!(
            "create it (sudo mkhomedir_helper {}) and run the command again",
            user.name
        ))),
    }
}

/// In an image, whether `user` may pass the image's root and the directories down to the
/// home: edge-setup writes a user's VNC files as that user, from the root down. An image
/// root made by `mktemp -d` (0700, root's) lets no user pass.
fn passable(sys: &System, user: &UserInfo) -> Result<()> {
    if !sys.is_image() {
        return Ok(());
    }
    let mut ancestors: Vec<&Path> = user.home.ancestors().skip(1).collect();
    ancestors.reverse();
    for dir in ancestors {
        // the image's root itself is a directory of the host's; below it, the image's own
        let meta = match dir == Path::new("/") {
            true => std::fs::metadata(sys.root_dir())
                .ok()
                .map(|m| crate::system::fs::Meta::from(&m)),
            false => sys.meta(dir)?,
        };
        let Some(meta) = meta else { continue };
        let bit = if meta.uid == user.uid {
            0o100
        } else if meta.gid == user.gid {
            0o010
        } else {
            0o001
        };
        if meta.mode & bit == 0 {
            // the image's root as its directory's name, without a trailing slash
            let shown = match dir == Path::new("/") {
                true => sys.root_dir().to_path_buf(),
                false => sys.host_path(dir),
            };
            return Err(Error::not_permitted(format!(
                "{} cannot reach the home directory {}",
                user.name,
                sys.host_path(&user.home).display()
            ))
            .why(format!(
                "{} (mode {:04o}, owner uid {}) does not let {} pass, and edge-setup writes a user's VNC files as that user",
                shown.display(),
                meta.mode,
                meta.uid,
                user.name
            ))
            .hint(format!("chmod 755 {} and run the command again", shown.display())));
        }
    }
    Ok(())
}

pub(super) fn check_name(name: &str) -> Result<()> {
    mapping::check_user_name(name).map_err(|why| Error::bad_input(format!("cannot enable VNC for '{name}'")).why(why))
}

/// Without TigerVNC: an image where `edge-setup vnc` ran passes (its packages are the
/// target's); anything else is refused with the command that installs VNC.
fn require_vnc_set_up(sys: &System) -> Result<()> {
    if !sys.is_image() {
        return Err(Error::failure("VNC is not installed")
            .why("the TigerVNC server is not installed, so no session could start; nothing was written")
            .hint("sudo edge-setup vnc, then this command again"));
    }
    if sys.meta(Path::new(tigervnc::INSTALL_RECORD))?.is_some() {
        return Ok(());
    }
    Err(Error::failure("VNC is not set up in this image")
        .why("'edge-setup vnc' never ran in it and TigerVNC is not installed, so no session could start; nothing was written")
        .hint(format!(
            "edge-setup --root {} vnc, then this command again",
            sys.root_dir().display()
        )))
}
