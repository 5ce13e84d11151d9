//! The user's own files: session settings, password file, directories, read and written as the user.

use super::*;

/// The most root reads of a user's session settings and password file.
pub(super) const CONFIG_MAX: u64 = 64 * 1024;

pub(super) const PASSWD_MAX: u64 = 16;

/// The per-user server settings: our three keys set, every other line kept.
pub(super) fn session_config(existing: Option<&str>, settings: &Settings) -> String {
    let localhost = match settings.listen {
        Listen::Localhost => "localhost".to_string(),
        // Debian's wrapper listens on localhost unless told otherwise.
        Listen::Lan => "localhost=no".to_string(),
    };
    let ours = [
        ("session", format!("session={SESSION}")),
        (
            "geometry",
            format!("geometry={}x{}", settings.geometry.width, settings.geometry.height),
        ),
        ("localhost", localhost),
    ];
    let key_of = |line: &str| {
        let t = line.trim();
        (!t.starts_with('#')).then(|| t.split('=').next().unwrap_or("").trim().to_ascii_lowercase())
    };
    let mut out = String::new();
    let mut done = [false; 3];
    match existing {
        None => out.push_str(
            "# TigerVNC session settings. edge-setup vnc-user sets session, geometry and localhost;\n\
             # other lines are kept.\n",
        ),
        Some(text) => {
            for line in text.lines() {
                let pos = key_of(line).and_then(|k| ours.iter().position(|(name, _)| *name == k));
                match pos {
                    Some(i) if done[i] => {}
                    Some(i) => {
                        out.push_str(&ours[i].1);
                        out.push('\n');
                        done[i] = true;
                    }
                    None => {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
    }
    for (i, (_, line)) in ours.iter().enumerate() {
        if !done[i] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Refuses, before anything is written, a VNC directory or file that is a
/// link, a file where a directory belongs, or a directory the user does not
/// own. The writes check again (the user may race), this says it early.
pub(super) fn check_user_paths(sys: &System, target: &Target) -> Result<()> {
    let user = &target.user;
    let host = |p: &Path| sys.host_path(p).display().to_string();
    let link = |p: &Path| {
        Error::failure(format!("{} is a symbolic link", host(p)))
            .why("edge-setup writes a user's VNC files only as regular files in real directories, so that no link can redirect them")
            .hint("remove the link and run the command again; nothing was changed")
    };
    as_user(user.uid, user.gid, || -> Result<()> {
        for dir in target.dirs() {
            if sys.is_link(&dir)? {
                return Err(link(&dir));
            }
            match sys.meta(&dir)? {
                Some(m) if !m.is_dir => {
                    return Err(Error::failure(format!("{} is a file, not a directory", host(&dir)))
                        .hint("move it away and run the command again; nothing was changed"));
                }
                Some(m) if dir == target.dir && m.uid != user.uid => {
                    return Err(Error::failure(format!(
                        "{} belongs to uid {}, not to {}",
                        host(&dir),
                        m.uid,
                        user.name
                    ))
                    .hint(format!(
                        "give it back to the user (sudo chown -R {}: {}) and run the command again",
                        user.name,
                        dir.display()
                    )));
                }
                _ => {}
            }
        }
        for file in [&target.passwd, &target.config] {
            if sys.is_link(file)? {
                return Err(link(file));
            }
        }
        Ok(())
    })
}

/// Creates the user's missing VNC directories (0700) as the user; returns
/// those created. An existing one is left as it is until the files are in
/// place (`tighten_dir`), so a refused run changes nothing.
pub(super) fn create_dirs(sys: &System, target: &Target) -> Result<Vec<PathBuf>> {
    let user = &target.user;
    let mut created = Vec::new();
    for dir in target.dirs() {
        let found = as_user(user.uid, user.gid, || -> Result<_> {
            Ok((sys.meta(&dir)?, sys.is_link(&dir)?))
        });
        let outcome = match found {
            Ok((Some(m), false)) if m.is_dir => continue,
            Ok((Some(_), is_link)) => Err(Error::failure(format!(
                "{} is {}, not a directory",
                sys.host_path(&dir).display(),
                if is_link { "a symbolic link" } else { "a file" }
            ))
            .hint("move it away and run the command again; nothing was changed")),
            Ok((None, _)) => sys.ensure_dir_as(user, &dir, 0o700),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(_) => created.push(dir),
            Err(e) => {
                remove_dirs(sys, target, &created);
                return Err(e);
            }
        }
    }
    Ok(created)
}

/// Keeps an existing VNC directory 0700 and the user's (a new one already is).
pub(super) fn tighten_dir(sys: &System, target: &Target, created: &[PathBuf]) -> Result<()> {
    if created.contains(&target.dir) {
        return Ok(());
    }
    sys.ensure_dir_as(&target.user, &target.dir, 0o700).map(|_| ())
}

/// Removes directories this run created (innermost first), on failure.
pub(super) fn remove_dirs(sys: &System, target: &Target, created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = sys.remove_empty_dir_as(&target.user, dir);
    }
}

/// The user's password file and session settings as they are before this run,
/// read as the user with `Root::read_user_file`'s checks, before any lock.
pub(super) struct UserFiles {
    pub(super) passwd: Option<Zeroizing<Vec<u8>>>,
    pub(super) config: Option<Vec<u8>>,
}

impl UserFiles {
    pub(super) fn read(sys: &System, target: &Target) -> Result<UserFiles> {
        let user = &target.user;
        let read = |path: &Path, max| as_user(user.uid, user.gid, || sys.read_user_file(path, user.uid, max));
        Ok(UserFiles {
            passwd: read(&target.passwd, PASSWD_MAX)?.map(Zeroizing::new),
            config: read(&target.config, CONFIG_MAX)?,
        })
    }

    pub(super) fn config_text(&self, settings: &Settings) -> String {
        let existing = self.config.as_deref().map(String::from_utf8_lossy);
        session_config(existing.as_deref(), settings)
    }
}

pub(super) struct FileChanges {
    pub(super) passwd: Change,
    pub(super) config: Change,
}

pub(super) fn report_user_files(sys: &System, target: &Target, changes: &FileChanges) {
    let host = |p: &Path| sys.host_path(p).display().to_string();
    sys.out()
        .step(&format!("Writing the VNC password file {}", host(&target.passwd)))
        .done(sys.change_word(changes.passwd));
    sys.out()
        .step(&format!("Writing the session settings {}", host(&target.config)))
        .done(sys.change_word(changes.config));
    // Debian's wrapper reads the first of these it finds, and `config` last.
    if target.family == Family::Debian {
        for name in ["tigervnc.conf", "vnc.conf"] {
            let path = target.dir.join(name);
            let user = &target.user;
            if as_user(user.uid, user.gid, || sys.meta(&path)).ok().flatten().is_some() {
                sys.out().warn(&format!(
                    "{} exists, so Debian's TigerVNC reads it instead of {}: move its settings there or remove it",
                    host(&path),
                    host(&target.config)
                ));
                break;
            }
        }
    }
}

/// A user's file as it was before this run, put back when the run fails.
pub(super) struct Previous<'a> {
    pub(super) path: &'a Path,
    pub(super) content: Option<(Zeroizing<Vec<u8>>, u32)>,
}

impl<'a> Previous<'a> {
    /// Whether the file holds exactly `content` already.
    pub(super) fn holds(&self, content: &[u8]) -> bool {
        self.content
            .as_ref()
            .is_some_and(|(bytes, _)| bytes.as_slice() == content)
    }

    /// The file at `path` held `bytes` (as `UserFiles` read it).
    pub(super) fn of(
        sys: &System,
        user: &UserInfo,
        path: &'a Path,
        bytes: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Previous<'a>> {
        let content = match bytes {
            Some(bytes) => {
                let mode = as_user(user.uid, user.gid, || sys.meta(path))?.map_or(0o600, |m| m.mode);
                Some((bytes, mode))
            }
            None => None,
        };
        Ok(Previous { path, content })
    }

    /// Best effort: the error that made the run fail is the one to report.
    pub(super) fn restore(&self, sys: &System, user: &UserInfo) {
        let _ = match &self.content {
            Some((bytes, mode)) => sys.write_as(user, self.path, bytes, *mode).map(|_| ()),
            None => sys.remove_as(user, self.path).map(|_| ()),
        };
    }
}

pub(super) fn delete_passwd(sys: &System, target: &Target) -> Result<()> {
    let what = format!(
        "Deleting the VNC password file {}",
        sys.host_path(&target.passwd).display()
    );
    delete_as_user(sys, &target.user, &target.passwd, &what)
}

/// One step deleting a file of the user's, as the user.
fn delete_as_user(sys: &System, user: &UserInfo, path: &Path, what: &str) -> Result<()> {
    let step = sys.out().step(what);
    let removed = sys.remove_as(user, path)?;
    step.done(if removed {
        sys.word("deleted", "would be deleted")
    } else {
        "not there"
    });
    Ok(())
}

/// From TigerVNC 1.14 the password is read from `~/.config/tigervnc`. A
/// `~/.vnc/passwd` left from an older TigerVNC (the appliance was upgraded) is
/// a second copy of an old password, in a reversible encoding, that no server
/// reads and that disagrees with the new one: it is deleted, as the user. A
/// `~/.vnc` that Debian 13's wrapper replaced with a link to the new directory
/// is left alone, and so is anything but a regular file.
pub(super) fn delete_legacy_passwd(sys: &System, target: &Target) -> Result<()> {
    let Some(old) = &target.legacy_passwd else {
        return Ok(());
    };
    let user = &target.user;
    let dir = old.parent().unwrap_or(&user.home);
    // lstat: a link (the wrapper's migration) is not the directory TigerVNC once read
    let kind = |p: &Path| as_user(user.uid, user.gid, || sys.kind(p));
    let is_file = kind(dir)? == Some(FileKind::Dir) && kind(old)? == Some(FileKind::File);
    if !is_file {
        return Ok(());
    }
    let what = format!(
        "Deleting {}, left from TigerVNC before 1.14 (this one reads {})",
        sys.host_path(old).display(),
        sys.host_path(&target.passwd).display()
    );
    delete_as_user(sys, user, old, &what)
}
