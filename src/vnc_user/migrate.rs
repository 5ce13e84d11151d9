//! Users' files after an upgrade to TigerVNC 1.14 (Debian 12 to 13): moved from `~/.vnc`.

use super::*;

/// TigerVNC 1.14 reads `~/.config/tigervnc` only, and the session of a user
/// whose files are still in `~/.vnc` does not come up ("~/.vnc is deprecated";
/// Debian 13's wrapper moves the directory only when the user runs it by hand).
/// For every user with a display, as the user: the password file is copied to
/// the new directory as it is (the same password), the session settings
/// written there, the old password file deleted, and the session restarted.
/// Nothing when TigerVNC is older or not installed. A user whose files cannot
/// be taken is a warning naming the fix, not a failed run. Returns whether
/// anyone's files were moved.
pub fn move_legacy_files(sys: &System, family: Family) -> Result<bool> {
    let Some(version) = tigervnc::installed_version(sys, family)?.filter(|v| *v >= Version::CONFIG_DIR) else {
        return Ok(false);
    };
    let (mappings, _) = load_mappings(sys)?;
    let users = sys.users();
    let settings = Settings::load(sys)?;
    let mut moved = false;
    for (name, display, _) in mappings.appliance.entries() {
        let Some(user) = users.by_name(name)? else {
            continue;
        };
        match move_user_files(sys, &Target::at(family, user, version), &settings, display) {
            Ok(m) => moved |= m,
            Err(e) => sys.out().warn(&format!(
                "{name}'s VNC files were not moved, so the session of display :{display} stays down: {}; \
                 {name} can run 'edge-setup vnc-user' to set a new password",
                e.to_string().replace('\n', " ")
            )),
        }
    }
    Ok(moved)
}

/// One user's move. Nothing when the new directory has a password file already
/// (only a leftover old one is deleted) or there is no old one.
fn move_user_files(sys: &System, target: &Target, settings: &Settings, display: u32) -> Result<bool> {
    let Some(old) = &target.legacy_passwd else {
        return Ok(false);
    };
    let user = &target.user;
    let existing = UserFiles::read(sys, target)?;
    if existing.passwd.is_some() {
        delete_legacy_passwd(sys, target)?;
        return Ok(false);
    }
    let old_dir = old.parent().unwrap_or(&user.home);
    // lstat: a link is the wrapper's own migration, already in the new place
    if as_user(user.uid, user.gid, || sys.kind(old_dir))? != Some(FileKind::Dir) {
        return Ok(false);
    }
    let read = |path: &Path, max| as_user(user.uid, user.gid, || sys.read_user_file(path, user.uid, max));
    let Some(passwd) = read(old, PASSWD_MAX)?.map(Zeroizing::new) else {
        return Ok(false);
    };
    // settings already in the new directory win over the old ones
    let config = match existing.config {
        Some(_) => existing,
        None => UserFiles {
            passwd: None,
            config: read(&old_dir.join("config"), CONFIG_MAX)?,
        },
    }
    .config_text(settings);

    sys.out().info(&format!(
        "{}'s VNC files are in {}, which TigerVNC {}.{} no longer reads: moving them to {}",
        user.name,
        sys.host_path(old_dir).display(),
        Version::CONFIG_DIR.0,
        Version::CONFIG_DIR.1,
        sys.host_path(&target.dir).display()
    ));
    check_user_paths(sys, target)?;
    let created = create_dirs(sys, target)?;
    let written = (|| {
        let passwd = sys.write_as(user, &target.passwd, &passwd, 0o600)?;
        let config = sys.write_as(user, &target.config, config.as_bytes(), 0o644)?;
        Ok(FileChanges { passwd, config })
    })();
    let changes = match written {
        Ok(changes) => changes,
        Err(e) => {
            let _ = sys.remove_as(user, &target.passwd);
            remove_dirs(sys, target, &created);
            return Err(e);
        }
    };
    tighten_dir(sys, target, &created)?;
    report_user_files(sys, target, &changes);
    delete_legacy_passwd(sys, target)?;
    start_session(sys, target, display, true)?;
    Ok(true)
}
