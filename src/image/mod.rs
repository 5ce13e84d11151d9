//! Golden images: `edge-setup image prepare` makes a reference machine (or an
//! image tree, `--root`) ready to be cloned, so that each appliance made from
//! it gets its own identity at its first boot (`first_boot`).

pub mod first_boot;

use std::path::{Path, PathBuf};

use crate::device_id;
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileKind, FileSpec};
use crate::system::offline::Pending;

const MACHINE_ID: &str = "/etc/machine-id";
/// D-Bus's copy; on Debian a link to /etc/machine-id, elsewhere a file of its own.
const DBUS_MACHINE_ID: &str = "/var/lib/dbus/machine-id";
/// Where packages install unit files (merged /usr first; the second for
/// a Debian installed before the merge).
const UNIT_DIRS: [&str; 2] = ["/usr/lib/systemd/system", "/lib/systemd/system"];
const WANTS_DIR: &str = "/etc/systemd/system/multi-user.target.wants";

/// What `image prepare` resets beyond what it always does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resets {
    pub ssh_host_keys: bool,
    pub vnc_passwords: bool,
}

/// The path of `unit`'s file in the target, when a package installed it.
pub fn unit_file(sys: &System, unit: &str) -> Result<Option<PathBuf>> {
    for dir in UNIT_DIRS {
        let path = Path::new(dir).join(unit);
        if sys.kind(&path)? == Some(FileKind::File) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The link that enables the first-boot unit.
pub fn wants_link() -> PathBuf {
    Path::new(WANTS_DIR).join(first_boot::UNIT)
}

/// `edge-setup image prepare`: empties the machine ID, removes the device ID
/// and edge-setup's per-machine records, enables the first-boot unit; lists
/// the SSH host keys and users' VNC passwords and removes them only when
/// `resets` says so. Everything is checked before anything changes.
pub fn prepare(sys: &System, resets: Resets) -> Result<serde_json::Value> {
    sys.require_root("image prepare")?;
    let out = sys.out();
    let unit = unit_file(sys, first_boot::UNIT)?.ok_or_else(|| {
        Error::failure(format!("the first-boot unit {} is not installed", first_boot::UNIT))
            .why(format!("none of {} has it", UNIT_DIRS.join(", ")))
            .hint("install the edge-setup package (it ships the unit), then run 'sudo edge-setup image prepare' again")
    })?;
    let pending = Pending::load(sys)?;
    let left: Vec<String> = pending
        .left()
        .map(|s| format!("{} ({})", s.line(), s.left.as_deref().unwrap_or_default()))
        .collect();
    if !left.is_empty() {
        return Err(Error::failure(format!(
            "the image still needs {} step{} that its first boot cannot do",
            left.len(),
            if left.len() == 1 { "" } else { "s" }
        ))
        .why(left.join("\n"))
        .hint(format!(
            "run the command that left {} again as root on a build host that can do it in the image (see \"Golden images\" in the README: what needs what), then 'image prepare' again; nothing was changed",
            if left.len() == 1 { "it" } else { "them" }
        )));
    }
    let ssh_keys = first_boot::host_keys(sys)?;
    let vnc = crate::vnc_user::password_files(sys)?;
    let answers = first_boot::answers_paths(sys)?.len();

    let step = out.step(&format!(
        "Emptying {MACHINE_ID} (each clone makes its own at its first boot)"
    ));
    let change = sys.write(Path::new(MACHINE_ID), b"", FileSpec::root(0o444))?;
    step.done(sys.change_word(change));
    if sys.kind(Path::new(DBUS_MACHINE_ID))? == Some(FileKind::File) {
        let step = out.step(&format!("Removing D-Bus's copy {DBUS_MACHINE_ID}"));
        sys.remove(Path::new(DBUS_MACHINE_ID))?;
        step.done(sys.word("removed", "would be removed"));
    }
    for (path, what) in [
        (device_id::PATH, "the device ID"),
        (first_boot::DONE, "the record of this machine's first boot"),
        (first_boot::FAILED, "the record of a failed first boot"),
        (
            crate::network::ROLLBACK_FILE,
            "this machine's network files before its last change",
        ),
        (
            crate::remote_access::RECORD,
            "the tenant endpoints of this machine's device",
        ),
    ] {
        if sys.meta(Path::new(path))?.is_some() {
            let step = out.step(&format!("Removing {what} ({path})"));
            sys.remove(Path::new(path))?;
            step.done(sys.word("removed", "would be removed"));
        }
    }
    let step = out.step(&format!("Enabling {} for the clones' first boot", first_boot::UNIT));
    let change = sys.symlink(&wants_link(), &unit)?;
    step.done(match change {
        Change::Unchanged => "enabled already",
        _ => sys.word("enabled", "would be enabled"),
    });

    if resets.ssh_host_keys {
        for key in &ssh_keys {
            let step = out.step(&format!("Removing the SSH host key {}", key.display()));
            sys.remove(key)?;
            step.done(sys.word("removed", "would be removed"));
        }
    } else if !ssh_keys.is_empty() {
        out.note(&format!(
            "Kept {} SSH host key files in /etc/ssh: every clone would share them; --ssh-host-keys removes them (cloud-init, or else the first boot, makes new ones).",
            ssh_keys.len()
        ));
    }
    let with_files: Vec<_> = vnc.iter().filter(|u| !u.files.is_empty()).collect();
    if resets.vnc_passwords {
        crate::vnc_user::remove_passwords(sys, &vnc)?;
    } else if !with_files.is_empty() {
        let users: Vec<String> = with_files
            .iter()
            .map(|u| format!("{} (:{})", u.user, u.display))
            .collect();
        out.note(&format!(
            "Kept the VNC passwords of {}: every clone would accept them; --vnc-passwords removes them (a [[vnc-user]] entry at first boot sets new ones).",
            users.join(", ")
        ));
    }
    // after the resets, which drop the starts of the sessions they disabled
    let first_boot_steps: Vec<String> = Pending::load(sys)?.steps.iter().map(|s| s.line()).collect();
    if !first_boot_steps.is_empty() {
        out.note(&format!(
            "The first boot of every clone runs {} step{} the image could not do without running: {}.",
            first_boot_steps.len(),
            if first_boot_steps.len() == 1 { "" } else { "s" },
            first_boot_steps.join("; ")
        ));
    }
    if answers > 0 {
        out.note(&format!(
            "{answers} answers file{} in {} will be applied on every clone at its first boot.",
            if answers == 1 { "" } else { "s" },
            first_boot::ANSWERS_DIR
        ));
    }
    if !sys.is_image() && !sys.dry_run() {
        out.note("Shut this machine down now and capture its disk: booting it again makes it an appliance with its own identity.");
    }
    Ok(serde_json::json!({
        "first_boot_unit": unit,
        "ssh_host_keys": { "files": ssh_keys, "removed": resets.ssh_host_keys },
        "vnc_passwords": { "users": vnc, "removed": resets.vnc_passwords },
        "answers_files": answers,
        "first_boot_steps": first_boot_steps,
    }))
}
