//! What `check` asks of `edge-setup vnc`'s own work: the sudoers rule, the
//! /etc/hosts line, the lock of a run and the firewall rule. Reads only.

use super::*;
use crate::health::{Area, Check, Probe};

const AREA: Area = Area::Vnc;

/// The sudoers rule as `check` sees it.
pub enum Sudoers {
    /// `edge-setup vnc` has not run here: there is no rule to have.
    NotSetUp,
    /// VNC is set up but the rule is missing.
    Missing,
    /// The rule is root's 0440, names `this` binary first, and every binary it names exists.
    Sound { names: Vec<PathBuf> },
    /// What is wrong, and whether `vnc refresh-sudoers` puts it right.
    Wrong { finding: String, refresh_fixes: bool },
}

/// The rule, checked: owner and mode, `visudo -c` (live), the binaries it names.
pub fn sudoers(sys: &System) -> Result<Sudoers> {
    let path = Path::new(SUDOERS_FILE);
    let Some(meta) = sys.meta(path)? else {
        return Ok(match State::load(sys)?.is_empty() {
            true => Sudoers::NotSetUp,
            false => Sudoers::Missing,
        });
    };
    let wrong = |finding: String, refresh_fixes| Ok(Sudoers::Wrong { finding, refresh_fixes });
    if (meta.mode, meta.uid, meta.gid) != (0o440, 0, 0) && !sys.is_image() {
        return wrong(
            format!(
                "{SUDOERS_FILE} is mode {:04o} owned by {}:{}, not root's 0440 (sudo ignores such a file)",
                meta.mode, meta.uid, meta.gid
            ),
            true,
        );
    }
    if let Some(out) = sys.query(
        Cmd::new(Tool::Visudo)
            .args(["-c", "-q", "-f"])
            .arg(sys.host_path(path).display().to_string()),
    )? && !out.success()
    {
        let text = format!("{}{}", out.stdout, out.stderr);
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("visudo refused it");
        return wrong(
            format!("{SUDOERS_FILE} does not pass 'visudo -c': {}", first.trim()),
            true,
        );
    }
    let rule = sys.read_string(path)?.unwrap_or_default();
    let names = tigervnc::sudoers_rule_exes(&rule);
    if names.is_empty() {
        return wrong(format!("{SUDOERS_FILE} names no edge-setup binary"), true);
    }
    if let Some(gone) = names.iter().find(|p| sys.meta(p).ok().flatten().is_none()) {
        return wrong(
            format!("{SUDOERS_FILE} names {}, which does not exist", gone.display()),
            true,
        );
    }
    match sudoers_exe(sys) {
        Ok(this) if names.contains(&this) => Ok(Sudoers::Sound { names }),
        Ok(this) => wrong(
            format!("{SUDOERS_FILE} does not name this edge-setup ({})", this.display()),
            true,
        ),
        // this binary may not be named at all (a copy others can change): not the rule's fault
        Err(e) => wrong(format!("{}; {}", e.what, e.why.unwrap_or_default()), false),
    }
}

/// The host name and whether /etc/hosts names it, where `edge-setup vnc` manages
/// that line (it ran here); `None` elsewhere, or without a valid host name.
pub fn hosts_line(sys: &System) -> Result<Option<(String, bool)>> {
    if State::load(sys)?.is_empty() {
        return Ok(None);
    }
    let Some(name) = host_name(sys)? else {
        return Ok(None);
    };
    let hosts = sys.read_string(Path::new("/etc/hosts"))?.unwrap_or_default();
    let named = desktop::hosts_has_name(&hosts, &name);
    Ok(Some((name, named)))
}

/// The lock a run of `edge-setup vnc` holds.
pub const LOCK: &str = RUN_LOCK;

/// `vnc.firewall`: with `vnc.listen = lan`, the rule edge-setup recorded reaches
/// the highest display's port and is in the running firewall.
pub fn firewall_check(p: &Probe) -> Check {
    let id = "vnc.firewall";
    let sys = p.sys;
    if p.get(config::VNC_LISTEN) != Some(Listen::Lan) {
        return Check::skipped(AREA, id, "vnc.listen is localhost: no port is opened");
    }
    let m = match vnc_user::load_mappings(sys) {
        Ok((m, _)) => m,
        Err(e) => return Check::skipped(AREA, id, format!("the mappings cannot be read: {}", e.what)),
    };
    let Some(highest) = m.used().last().copied() else {
        return Check::skipped(AREA, id, "no user has a display");
    };
    let state = match State::load(sys) {
        Ok(s) => s,
        Err(e) => return Check::failed(AREA, id, e, || sys.next_command("vnc")),
    };
    let needed = tigervnc::port(highest);
    match state.firewall {
        None => match firewall::detect(sys) {
            Ok(None) => Check::ok(AREA, id, "no firewall is installed: the ports are open"),
            _ => Check::fail(
                AREA,
                id,
                "vnc.listen is lan but edge-setup opened no port in the firewall",
                sys.next_command("vnc"),
            ),
        },
        Some(rule) if rule.last_port < needed => Check::fail(
            AREA,
            id,
            format!(
                "the rule ({}) does not reach port {needed} of display :{highest}",
                rule.describe()
            ),
            sys.next_command("vnc"),
        ),
        Some(rule) => match rule.is_open(sys) {
            Ok(Some(false)) => Check::fail(
                AREA,
                id,
                format!(
                    "the rule ({}) is recorded but not in the running firewall",
                    rule.describe()
                ),
                sys.next_command("vnc"),
            ),
            _ => Check::ok(AREA, id, format!("open: {}", rule.describe())),
        },
    }
}

/// `vnc.desktop`: every package of the desktop `edge-setup vnc` installs (the
/// distribution's table and `vnc.desktop-apps`) is installed; an image's may be
/// left to the target.
pub fn desktop_check(p: &Probe) -> Check {
    let id = "vnc.desktop";
    let sys = p.sys;
    let packages = (|| -> Result<(Vec<String>, Installed)> {
        let os = sys.os_release()?;
        let family = os.family()?;
        let desktop = Desktop::configured(sys, &os, family)?;
        let installed = Installed::query(sys, family, &desktop.packages)?;
        Ok((desktop.packages, installed))
    })();
    match packages {
        Ok((_, Installed::Unknown)) => Check::skipped(AREA, id, "the package manager cannot tell here"),
        Ok((wanted, installed)) => match installed.missing(&wanted) {
            missing if missing.is_empty() => {
                Check::ok(AREA, id, format!("the {} desktop packages are installed", wanted.len()))
            }
            missing if sys.is_image() => Check::ok(
                AREA,
                id,
                format!("{} of the desktop packages are the target's to install", missing.len()),
            ),
            missing => Check::fail(
                AREA,
                id,
                format!("not installed: {}", missing.join(", ")),
                sys.next_command("vnc"),
            ),
        },
        Err(e) => Check::failed(AREA, id, e, || sys.next_command("vnc")),
    }
}
