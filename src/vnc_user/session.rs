//! The session's unit: enable, start or restart it, SELinux labels first on RHEL.

use super::*;

/// Enables and starts the display's unit (printed in image mode); with `restart`, restarts
/// it: a running session keeps the password and settings it read at start (Debian's
/// tigervncserver even hands Xtigervnc a copy of the password file), so without a
/// restart a changed password would leave the old one working.
pub(super) fn start_session(sys: &System, target: &Target, display: u32, restart: bool) -> Result<()> {
    clear_stale(sys, display);
    let outcome = sys.done_word();
    if target.family == Family::RedHat && selinux_enabled(sys) {
        let step = sys.out().step("Restoring the SELinux labels of the VNC files");
        // Only the paths edge-setup made, by name and without -R: restorecon
        // resolves each path itself, sets the policy's default label for where
        // it really is and never follows a link at the last component, so a
        // user who swaps a directory after the checks can at most have root
        // restore the default label of one other file named like these.
        let mut cmd = Cmd::new(Tool::Restorecon).arg("-F");
        for path in target.dirs().iter().chain([&target.passwd, &target.config]) {
            cmd = cmd.arg(sys.host_path(path).display().to_string());
        }
        sys.run(cmd)?;
        step.done(outcome);
    }
    let unit = target.unit(display);
    let hint = |e: Error| {
        e.hint(format!(
            "see 'journalctl -u {unit}'; display :{display} stays recorded, so run 'edge-setup vnc-user' again once it is fixed"
        ))
    };
    if restart {
        let step = sys.out().step(&format!(
            "Restarting {unit}, so it reads the password and settings written now (windows open in it close)"
        ));
        sys.run(Cmd::new(Tool::Systemctl).args(["enable", &unit]))
            .map_err(hint)?;
        sys.run(Cmd::new(Tool::Systemctl).args(["restart", &unit]))
            .map_err(hint)?;
        wait_until_serving(sys, &unit, display).map_err(hint)?;
        step.done(outcome);
    } else {
        let step = sys.out().step(&format!("Enabling and starting {unit}"));
        if enabled_and_active(sys, &unit) {
            step.done("unchanged (enabled and running)");
            return Ok(());
        }
        sys.run(Cmd::new(Tool::Systemctl).args(["enable", "--now", &unit]))
            .map_err(hint)?;
        wait_until_serving(sys, &unit, display).map_err(hint)?;
        step.done(outcome);
    }
    Ok(())
}

/// How long a started session may take to listen (a VM under emulation takes
/// a few seconds; a session that cannot start fails within one).
const START_WAIT: Duration = Duration::from_secs(30);

/// After a start: waits until the unit is active and the session's port
/// listens. systemctl returns once the wrapper forked, and an X server that
/// cannot bind its socket dies a moment later: only the port proves the
/// session serves. Nothing to wait for where commands are only printed.
fn wait_until_serving(sys: &System, unit: &str, display: u32) -> Result<()> {
    if !sys.applies_commands() {
        return Ok(());
    }
    let port = tigervnc::port(display);
    let started = std::time::Instant::now();
    loop {
        let state = sys
            .query(Cmd::new(Tool::Systemctl).args(["is-active", unit]))?
            .map(|out| (out.success(), out.stdout.trim().to_string()));
        let (active, state) = state.unwrap_or((true, String::new()));
        let waiting = matches!(state.as_str(), "activating" | "reloading" | "deactivating");
        if !active && !waiting {
            return Err(Error::failure(format!(
                "{unit} did not keep running: it is {} after the start",
                if state.is_empty() { "not active" } else { state.as_str() }
            )));
        }
        // `None`: this system does not show its sockets, so there is nothing more to tell
        if active && sys.tcp_listening(port).unwrap_or(true) {
            return Ok(());
        }
        if started.elapsed() >= START_WAIT {
            return Err(Error::failure(format!(
                "{unit} is {}, but nothing listens on port {port} after {} s",
                if active { "active" } else { state.as_str() },
                START_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the unit is enabled and running already (live only): then there is
/// nothing to start, and a second run changes nothing.
pub(super) fn enabled_and_active(sys: &System, unit: &str) -> bool {
    let query = Cmd::new(Tool::Systemctl)
        .args(["show", "--property=UnitFileState,ActiveState"])
        .arg(unit);
    let Ok(Some(out)) = sys.query(query) else {
        return false;
    };
    let has = |line: &str| out.stdout.lines().any(|l| l.trim() == line);
    out.success() && has("UnitFileState=enabled") && has("ActiveState=active")
}

/// Whether SELinux is on (live), or may be (image mode, where the command is printed).
pub(super) fn selinux_enabled(sys: &System) -> bool {
    match sys.query(Cmd::new(Tool::Selinuxenabled)) {
        Ok(Some(out)) => out.success(),
        Ok(None) => true,
        Err(_) => false,
    }
}
