//! The first boot's records and the parts of it that are the system's: where
//! the answers are, the SSH host keys. The run itself is the wizard's
//! (`wizard::first_boot`), as it applies answers files. Success is recorded in
//! DONE, which the unit's condition reads, so it never runs again; a failure is
//! recorded in FAILED (for `setup status`) and the unit runs again at the next
//! boot.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::FileSpec;
use crate::system::offline::{PENDING, Pending};
use crate::system::runner::{Cmd, Tool};

/// Answers files (`*.toml`) applied at first boot, in name order; cloud-init's
/// `write_files` puts them (and their secret files) here.
pub const ANSWERS_DIR: &str = "/etc/edge-setup/answers.d";
/// The record of a completed first boot; while it exists the unit does not run.
pub const DONE: &str = "/var/lib/edge-setup/first-boot.done";
/// The record of the last failed attempt (removed by the one that succeeds).
pub const FAILED: &str = "/var/lib/edge-setup/first-boot.failed";
pub const UNIT: &str = "edge-setup-firstboot.service";
const SSH_DIR: &str = "/etc/ssh";

#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    pub completed_at: String,
    pub device_id: Option<String>,
    /// The answers files applied, in order.
    pub answers: Vec<String>,
    /// The steps the image left for the first boot, run in this order.
    #[serde(default)]
    pub steps: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Failed {
    pub failed_at: String,
    /// Failed attempts so far (one per boot, or per manual run).
    pub attempts: u32,
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// An image prepared with `--ssh-host-keys` has none: make them (cloud-init
/// does so itself, before this runs) and restart the SSH server, which could
/// not start without them.
pub fn ssh_host_keys(sys: &System) -> Result<()> {
    if sys.meta(&Path::new(SSH_DIR).join("sshd_config"))?.is_none() || !host_keys(sys)?.is_empty() {
        return Ok(());
    }
    let step = sys.out().step("Making this machine's SSH host keys");
    sys.run(Cmd::new(Tool::SshKeygen).arg("-A"))?;
    step.done(sys.done_word());
    for unit in ["ssh.service", "sshd.service"] {
        if crate::image::unit_file(sys, unit)?.is_some() {
            let step = sys.out().step(&format!("Restarting {unit} with them"));
            // a start that failed for want of keys may have hit the start limit
            sys.run_unchecked(Cmd::new(Tool::Systemctl).args(["reset-failed", unit]))?;
            sys.run(Cmd::new(Tool::Systemctl).args(["restart", unit]))?;
            step.done(sys.done_word());
            break;
        }
    }
    Ok(())
}

/// Runs the steps an image left for its first boot (`system::offline`), in
/// order. Each leaves the record once it ran, so that a failed one is where the
/// next attempt starts and none runs twice. A step the first boot cannot run
/// (`image prepare` refuses an image with one) is named and kept.
pub fn run_pending(sys: &System) -> Result<Vec<String>> {
    // root runs what it names: root's alone, like the answers files
    sys.check_controlled(Path::new(PENDING)).map_err(|e| {
        e.hint(format!(
            "the record must be root's own regular file: sudo chown root: {PENDING} && sudo chmod 644 {PENDING}"
        ))
    })?;
    let mut pending = Pending::load(sys)?;
    let mut ran = Vec::new();
    while let Some(at) = pending.steps.iter().position(|s| s.left.is_none()) {
        let step = pending.steps[at].clone();
        let line = step.line();
        let shown = sys
            .out()
            .step(&format!("Running what the image left for its first boot: {line}"));
        sys.run(step.cmd()?).map_err(|e| {
            e.hint(format!(
                "it stays in {PENDING} with the steps after it, for the next attempt"
            ))
        })?;
        shown.done(sys.done_word());
        pending.steps.remove(at);
        pending.save(sys)?;
        ran.push(line);
    }
    for step in pending.left() {
        sys.out().warn(&format!(
            "the image left a step that the first boot cannot run ({}): {}; run it on this appliance, then remove it from {PENDING}",
            step.left.as_deref().unwrap_or_default(),
            step.line()
        ));
    }
    Ok(ran)
}

/// The answers files of ANSWERS_DIR (`*.toml`, not hidden), in the order they apply.
pub fn answers_paths(sys: &System) -> Result<Vec<PathBuf>> {
    let mut names: Vec<String> = sys
        .list_dir(Path::new(ANSWERS_DIR))?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.ends_with(".toml") && !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names.into_iter().map(|n| Path::new(ANSWERS_DIR).join(n)).collect())
}

/// What to do after a failed first boot, after the failure's own hint.
pub fn retry_hint(hint: Option<&str>) -> String {
    let next = hint.map_or_else(String::new, |h| format!("{h}; "));
    format!(
        "{next}then reboot, or run 'sudo edge-setup image first-boot' (it runs at every boot until it succeeds; 'journalctl -u {UNIT}' has its output)"
    )
}

/// The SSH host key files (private and public) in /etc/ssh.
pub fn host_keys(sys: &System) -> Result<Vec<PathBuf>> {
    let mut keys: Vec<PathBuf> = sys
        .list_dir(Path::new(SSH_DIR))?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.starts_with("ssh_host_") && (n.ends_with("_key") || n.ends_with("_key.pub")))
        .map(|n| Path::new(SSH_DIR).join(n))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Where the first boot stands, for `setup status`.
pub enum State {
    /// The unit is not enabled and nothing was recorded: not made from a prepared image.
    NotPrepared,
    /// Enabled, not run yet (the image, before its first boot).
    Pending,
    Done(Done),
    Failed(Failed),
}

pub fn state(sys: &System) -> Result<State> {
    if let Some(done) = read::<Done>(sys, DONE)? {
        return Ok(State::Done(done));
    }
    if let Some(failed) = read::<Failed>(sys, FAILED)? {
        return Ok(State::Failed(failed));
    }
    match sys.is_link(&crate::image::wants_link())? {
        true => Ok(State::Pending),
        false => Ok(State::NotPrepared),
    }
}

impl State {
    /// The line of `setup status`.
    pub fn line(&self) -> String {
        let text = match self {
            State::NotPrepared => "not set up (the machine was not made from a prepared image)".to_string(),
            State::Pending => format!("waits for the next boot ({UNIT})"),
            State::Done(d) => format!("completed at {}", d.completed_at),
            State::Failed(f) => format!(
                "FAILED at {} (attempt {}): {}; it runs again at the next boot",
                f.failed_at, f.attempts, f.error
            ),
        };
        format!("first boot:          {text}")
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            State::NotPrepared => serde_json::json!({ "state": "not-prepared" }),
            State::Pending => serde_json::json!({ "state": "pending" }),
            State::Done(d) => serde_json::json!({ "state": "done", "record": d }),
            State::Failed(f) => serde_json::json!({ "state": "failed", "record": f }),
        }
    }

    /// A failed first boot as the error of `setup status`.
    pub fn failure(&self) -> Option<Error> {
        let State::Failed(f) = self else {
            return None;
        };
        let mut e = Error::failure(format!("the first boot failed at {}: {}", f.failed_at, f.error));
        if let Some(why) = &f.why {
            e = e.why(why);
        }
        Some(e.hint(retry_hint(f.hint.as_deref())))
    }
}

pub fn read<T: for<'de> Deserialize<'de>>(sys: &System, path: &str) -> Result<Option<T>> {
    let Some(text) = sys.read_string(Path::new(path))? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::failure(format!("{} is damaged", sys.host_path(Path::new(path)).display()))
            .why(e)
            .hint(format!(
                "remove it (sudo rm {}) and run 'sudo edge-setup image first-boot'",
                sys.host_path(Path::new(path)).display()
            ))
    })
}

pub fn write<T: Serialize>(sys: &System, path: &str, record: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(record).expect("the record serializes") + "\n";
    sys.write(Path::new(path), text.as_bytes(), FileSpec::root(0o644))?;
    Ok(())
}

/// Now, for the records.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats")
}
