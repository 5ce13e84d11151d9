//! What `edge-setup check` reports: named checks in areas, each `ok`, `warn`,
//! `fail` or `skipped`, with a finding and the next command, and the fix
//! `--fix` may apply. The types only: each capability checks itself (`check`,
//! `vnc_user::health`, the wizard's certificates) and `commands::check` runs them.

use serde::Serialize;
use serde_json::json;

use crate::config::{Config, Key, KeyValue};
use crate::error::Error;
use crate::system::System;

/// The areas, in the order they are checked and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// edge-setup's own files: configuration, sudoers rule, first boot, locks.
    EdgeSetup,
    /// Device ID, machine ID, host name.
    Identity,
    /// The Edge agent: URL, unit, properties.
    Agent,
    /// The tenant: DNS, TCP, TLS, clock, NTP, credentials, registration, endpoints.
    Tenant,
    /// Packages, mappings, and each user's password file, session and port.
    Vnc,
    /// The SSL certificate of the post-installation: expiry, key.
    Certificates,
    /// Free space on / and the data disk.
    Disk,
}

impl Area {
    pub const ALL: [Area; 7] = [
        Area::EdgeSetup,
        Area::Identity,
        Area::Agent,
        Area::Tenant,
        Area::Vnc,
        Area::Certificates,
        Area::Disk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Area::EdgeSetup => "edge-setup",
            Area::Identity => "identity",
            Area::Agent => "agent",
            Area::Tenant => "tenant",
            Area::Vnc => "vnc",
            Area::Certificates => "certificates",
            Area::Disk => "disk",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Skipped,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skip",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, documented in the README: `area.name`.
    pub id: &'static str,
    pub area: Area,
    /// The user a per-user check is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub status: Status,
    pub finding: String,
    /// The command that fixes it, when not ok.
    pub next: Option<String>,
    /// What `--fix` would do about it.
    #[serde(skip)]
    pub fix: Option<Fix>,
}

impl Check {
    pub fn ok(area: Area, id: &'static str, finding: impl Into<String>) -> Check {
        Check {
            id,
            area,
            user: None,
            status: Status::Ok,
            finding: finding.into(),
            next: None,
            fix: None,
        }
    }

    pub fn warn(area: Area, id: &'static str, finding: impl Into<String>, next: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            next: Some(next.into()),
            ..Check::ok(area, id, finding)
        }
    }

    pub fn fail(area: Area, id: &'static str, finding: impl Into<String>, next: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            next: Some(next.into()),
            ..Check::ok(area, id, finding)
        }
    }

    pub fn skipped(area: Area, id: &'static str, why: impl Into<String>) -> Check {
        Check {
            status: Status::Skipped,
            ..Check::ok(area, id, why)
        }
    }

    /// A check that failed on `e`: what and why as the finding, its hint as the
    /// next command, else `otherwise`.
    pub fn failed(area: Area, id: &'static str, e: Error, otherwise: impl FnOnce() -> String) -> Check {
        let finding = e.line();
        Check::fail(area, id, finding, e.hint.unwrap_or_else(otherwise))
    }

    pub fn for_user(mut self, user: &str) -> Check {
        self.user = Some(user.to_string());
        self
    }

    /// `--fix` may apply `fix`; the next command then names `check --fix` first.
    pub fn fixable(mut self, sys: &System, fix: Fix) -> Check {
        let by_fix = fix_command(sys, Some(self.area));
        self.next = Some(match self.next.take() {
            Some(other) if other != by_fix => format!("{by_fix} (or: {other})"),
            _ => by_fix,
        });
        self.fix = Some(fix);
        self
    }

    /// `id [user]`, the name a line shows.
    pub fn name(&self) -> String {
        match &self.user {
            Some(u) => format!("{} [{u}]", self.id),
            None => self.id.to_string(),
        }
    }
}

/// The lines for people: one per check, its next command under it; an area
/// whose checks were all skipped for one reason is one line.
pub fn lines(checks: &[Check]) -> Vec<String> {
    let mut rows: Vec<(Status, String, &str, Option<&str>)> = Vec::new();
    for area in Area::ALL {
        let of: Vec<&Check> = checks.iter().filter(|c| c.area == area).collect();
        let Some(first) = of.first() else { continue };
        if of.len() > 1
            && of
                .iter()
                .all(|c| c.status == Status::Skipped && c.finding == first.finding)
        {
            rows.push((
                Status::Skipped,
                format!("{} ({} checks)", area.name(), of.len()),
                &first.finding,
                None,
            ));
            continue;
        }
        for c in of {
            let next = c.next.as_deref().filter(|_| c.status > Status::Skipped);
            rows.push((c.status, c.name(), &c.finding, next));
        }
    }
    let width = rows
        .iter()
        .map(|(_, name, _, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    for (status, name, finding, next) in rows {
        out.push(format!("{:<4}  {name:<width$}  {finding}", status.label()));
        if let Some(next) = next {
            out.push(format!("{:<4}  {:<width$}  next: {next}", "", ""));
        }
    }
    out
}

/// The command that applies the fixes (of one area), as the caller would type it.
pub fn fix_command(sys: &System, area: Option<Area>) -> String {
    let args = match area {
        Some(area) => format!("check --fix --only {}", area.name()),
        None => "check --fix".to_string(),
    };
    if sys.is_root() || sys.is_image() {
        sys.next_command(&args)
    } else {
        format!("edge-setup {args}")
    }
}

/// What every area's checks read.
pub struct Probe<'a> {
    pub sys: &'a System,
    /// The configuration, `None` when it does not parse (`edge-setup.config` says why).
    pub cfg: Option<Config>,
    /// Root checks everything; an ordinary user her own VNC session.
    pub root: bool,
}

impl Probe<'_> {
    /// A key's value (its default when unset); `None` when the configuration or
    /// the value does not parse, which `edge-setup.config` reports.
    pub fn get<T: KeyValue>(&self, key: Key<T>) -> Option<T> {
        self.cfg.as_ref()?.get(self.sys, key).ok().flatten()
    }

    /// Why a check that needs a running system is skipped, in an image.
    pub fn live_only(&self) -> Option<&'static str> {
        self.sys
            .is_image()
            .then_some("needs the running system (this checks an image)")
    }
}

/// The counts per status, for the summary and `--json`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(checks: &[Check]) -> Counts {
        let mut c = Counts::default();
        for check in checks {
            match check.status {
                Status::Ok => c.ok += 1,
                Status::Warn => c.warn += 1,
                Status::Fail => c.fail += 1,
                Status::Skipped => c.skipped += 1,
            }
        }
        c
    }

    pub fn line(&self) -> String {
        format!(
            "{} ok, {} warning{}, {} failed, {} skipped",
            self.ok,
            self.warn,
            if self.warn == 1 { "" } else { "s" },
            self.fail,
            self.skipped
        )
    }
}

/// The `--json` form of a run: every check, and the counts.
pub fn to_json(checks: &[Check]) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).expect("a check serialises");
            v["fixable"] = json!(c.fix.is_some());
            v
        })
        .collect();
    json!({ "checks": entries, "counts": Counts::of(checks) })
}

/// What `check --fix` may do about a finding: only edge-setup's own
/// idempotent operations (`check::fix` applies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Start (or restart) a user's session that is down.
    RestartSession { user: String, display: u32 },
    /// Remove the X lock or socket file of a display no live server holds.
    RemoveStale { display: u32 },
    /// Rewrite a user's password file as the user, mode 0600.
    RestorePasswordFile { user: String },
    /// Put edge-setup's /etc/hosts line for the host name back.
    HostsLine,
    /// `vnc refresh-sudoers`.
    RefreshSudoers,
    /// `remote-access sync`, with the configured credentials.
    RemoteAccessSync,
}

impl Fix {
    pub fn describe(&self) -> String {
        match self {
            Fix::RestartSession { user, display } => format!("Starting {user}'s VNC session on :{display}"),
            Fix::RemoveStale { display } => format!("Removing the stale X lock and socket files of :{display}"),
            Fix::RestorePasswordFile { user } => {
                format!("Restoring the owner and mode (0600) of {user}'s VNC password file")
            }
            Fix::HostsLine => "Making the host name resolve (/etc/hosts)".to_string(),
            Fix::RefreshSudoers => "Refreshing the sudoers rule (vnc refresh-sudoers)".to_string(),
            Fix::RemoteAccessSync => "Syncing the tenant's remote access endpoints (remote-access sync)".to_string(),
        }
    }
}
