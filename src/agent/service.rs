//! The Edge agent's systemd service: its name (key `agent.service`), whether it
//! is installed, and restarting it after its configuration changed.

use std::path::Path;

use crate::error::Result;
use crate::system::System;
use crate::system::runner::{Cmd, Tool};
pub use crate::values::UnitName;

/// Where unit files live in an image, most important first.
const UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];
/// What is known about the agent's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No unit of that name.
    NotInstalled,
    /// Masked (linked to /dev/null or empty): it cannot start.
    Masked,
    /// The unit file is in the image; whether it runs is up to the target.
    Installed,
    /// Loaded on the running system, with systemd's ActiveState.
    Loaded(String),
    /// systemctl could not tell.
    Unknown(String),
}

impl State {
    /// A short word for JSON and tables.
    pub fn word(&self) -> String {
        match self {
            State::NotInstalled => "not-installed".into(),
            State::Masked => "masked".into(),
            State::Installed => "installed".into(),
            State::Loaded(active) => active.clone(),
            State::Unknown(_) => "unknown".into(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            State::NotInstalled => "not installed".into(),
            State::Masked => "masked (it cannot start)".into(),
            State::Installed => "installed (its state shows on the running system)".into(),
            State::Loaded(active) => active.clone(),
            State::Unknown(why) => format!("unknown ({why})"),
        }
    }
}

/// The state of `unit`: systemctl on a live system, the unit files in an image.
pub fn state(sys: &System, unit: &UnitName) -> Result<State> {
    let query = Cmd::new(Tool::Systemctl)
        .arg("show")
        .arg("--property=LoadState,ActiveState")
        .arg(unit.as_str());
    let Some(out) = sys.query(query)? else {
        return image_state(sys, unit);
    };
    if !out.success() {
        let why = out
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("systemctl failed");
        return Ok(State::Unknown(why.trim().to_string()));
    }
    let value = |key: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .unwrap_or("")
    };
    Ok(match value("LoadState") {
        "loaded" => State::Loaded(value("ActiveState").to_string()),
        "not-found" => State::NotInstalled,
        "masked" => State::Masked,
        "" => State::Unknown("systemctl reported no LoadState".into()),
        other => State::Unknown(format!("systemd reports LoadState={other}")),
    })
}

fn image_state(sys: &System, unit: &UnitName) -> Result<State> {
    let mut names = vec![unit.as_str().to_string()];
    // an instance (agent@x.service) is installed when its template is
    if let Some((prefix, _)) = unit.as_str().split_once('@') {
        names.push(format!("{prefix}@.service"));
    }
    for dir in UNIT_DIRS {
        for name in &names {
            let path = Path::new(dir).join(name);
            if sys.meta(&path)?.is_none() {
                continue;
            }
            // systemd treats a unit linked to /dev/null, or empty, as masked
            let masked = match sys.read(&path)? {
                Some(bytes) => bytes.iter().all(u8::is_ascii_whitespace),
                None => true,
            };
            return Ok(if masked { State::Masked } else { State::Installed });
        }
    }
    Ok(State::NotInstalled)
}

/// How to restart the agent after its configuration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Start it or restart it: the agent should run (enable).
    Always,
    /// Restart only a running agent (disable: a stopped one reads the file when it starts).
    IfRunning,
}

/// Restarts the agent's service when there is one; a missing, masked or
/// unknown service is a note, not a failure.
pub fn restart(sys: &System, unit: &UnitName, state: &State, how: Restart) -> Result<()> {
    let verb = match how {
        Restart::Always => "restart",
        Restart::IfRunning => "try-restart",
    };
    match state {
        State::NotInstalled => {
            sys.out().note(&format!(
                "the Edge agent's service {unit} is not installed, so nothing was restarted; the agent reads the configuration when it starts (another unit name: edge-setup config set agent.service NAME)"
            ));
            Ok(())
        }
        State::Masked => {
            sys.out().note(&format!(
                "the Edge agent's service {unit} is masked, so it was not restarted; unmask it with 'sudo systemctl unmask {unit}'"
            ));
            Ok(())
        }
        State::Unknown(why) => {
            sys.out().note(&format!(
                "cannot tell whether {unit} is installed ({why}); if it is, restart it: sudo systemctl {verb} {unit}"
            ));
            Ok(())
        }
        State::Installed | State::Loaded(_) => {
            let step = sys.out().step(&format!("Restarting {unit}"));
            sys
                .run(Cmd::new(Tool::Systemctl).arg(verb).arg(unit.as_str()))
                .map_err(|e| {
                    e.hint(format!(
                        "the configuration is written; see 'journalctl -u {unit}', then run 'sudo systemctl {verb} {unit}'"
                    ))
                })?;
            step.done(sys.done_word());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::KeyValue;

    #[test]
    fn unit_names() {
        let ok = |s: &str| UnitName::parse(s).unwrap().to_string();
        assert_eq!(ok("edge-agent"), "edge-agent.service");
        assert_eq!(ok("edge-agent.service"), "edge-agent.service");
        assert_eq!(ok("c8y.edge.agent"), "c8y.edge.agent.service");
        assert_eq!(ok("agent@tenant1.service"), "agent@tenant1.service");
        let bad = |s: &str| UnitName::parse(s).unwrap_err();
        assert!(bad("").contains("empty"));
        assert!(bad("-x.service").contains("start with"));
        assert!(bad("a b").contains("ASCII letters"));
        assert!(bad("a;reboot").contains("ASCII letters"));
        assert!(bad("agent@.service").contains("template"));
        assert!(bad("edge.timer").contains("not a timer unit"));
        assert!(bad(&"a".repeat(250)).contains("255"));
    }
}
