//! edge-setup's own state: its configuration, the sudoers rule, the first boot,
//! and who holds its locks.

use std::path::Path;

use crate::config::{self, Config};
use crate::health::{Area, Check, Fix, Probe};
use crate::image::first_boot;
use crate::vnc::health::{self, Sudoers};

const AREA: Area = Area::EdgeSetup;

/// A lock held longer than this by one process is reported: edge-setup holds its
/// locks for a read-modify-write, the tenant's for its requests.
const LOCK_AGE_WARN_SECS: u64 = 600;

pub fn checks(p: &Probe) -> Vec<Check> {
    vec![config(p), sudoers(p), first_boot(p), locks(p)]
}

fn config(p: &Probe) -> Check {
    let id = "edge-setup.config";
    match Config::load(p.sys) {
        Ok(cfg) => {
            // every key set must still parse: a hand edit is read at the next command
            let bad = config::KEYS
                .iter()
                .filter(|def| def.name != config::DEVICE_ID.name)
                .find_map(|def| {
                    cfg.show(p.sys, def.name)
                        .err()
                        .map(|e| format!("{}: {}", def.name, e.why.unwrap_or(e.what)))
                });
            match bad {
                Some(why) => Check::fail(
                    AREA,
                    id,
                    format!("{} holds a value that does not parse: {why}", config::PATH),
                    "edge-setup config list --doc (then sudo edge-setup config set KEY VALUE)",
                ),
                None => Check::ok(AREA, id, format!("{} parses", config::PATH)),
            }
        }
        Err(e) => Check::failed(AREA, id, e, || {
            format!("fix {} by hand, then: edge-setup config list", config::PATH)
        }),
    }
}

fn sudoers(p: &Probe) -> Check {
    let id = "edge-setup.sudoers";
    match health::sudoers(p.sys) {
        Ok(Sudoers::NotSetUp) => {
            Check::skipped(AREA, id, "VNC is not set up here ('edge-setup vnc' installs the rule)")
        }
        Ok(Sudoers::Missing) => Check::fail(
            AREA,
            id,
            format!(
                "VNC is set up but {} is missing: vncusers cannot run vnc-user",
                crate::tigervnc::SUDOERS_FILE
            ),
            p.sys.next_command("vnc"),
        ),
        Ok(Sudoers::Sound { names }) => Check::ok(
            AREA,
            id,
            format!(
                "the rule passes visudo and names {}",
                names
                    .iter()
                    .map(|n| n.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Ok(Sudoers::Wrong {
            finding,
            refresh_fixes: true,
        }) => Check::fail(AREA, id, finding, p.sys.next_command("vnc refresh-sudoers"))
            .fixable(p.sys, Fix::RefreshSudoers),
        Ok(Sudoers::Wrong {
            finding,
            refresh_fixes: false,
        }) => Check::warn(
            AREA,
            id,
            finding,
            "install the edge-setup package, or copy the binary where only root can change it, then: sudo edge-setup vnc refresh-sudoers",
        ),
        Err(e) => Check::failed(AREA, id, e, || p.sys.next_command("vnc")),
    }
}

fn first_boot(p: &Probe) -> Check {
    let id = "edge-setup.first-boot";
    match first_boot::state(p.sys) {
        Ok(first_boot::State::NotPrepared) => Check::ok(AREA, id, "not needed (not made from a prepared image)"),
        Ok(first_boot::State::Done(d)) => Check::ok(AREA, id, format!("completed at {}", d.completed_at)),
        Ok(first_boot::State::Pending) if p.sys.is_image() => {
            Check::ok(AREA, id, format!("runs at the first boot ({})", first_boot::UNIT))
        }
        Ok(first_boot::State::Pending) => Check::warn(
            AREA,
            id,
            format!("{} is enabled but has not completed", first_boot::UNIT),
            format!(
                "sudo systemctl start {} (journalctl -u {} tells why it did not)",
                first_boot::UNIT,
                first_boot::UNIT
            ),
        ),
        Ok(st @ first_boot::State::Failed(_)) => {
            let e = st.failure().expect("a failed state has its error");
            Check::fail(
                AREA,
                id,
                e.what,
                e.hint.unwrap_or_else(|| p.sys.next_command("image first-boot")),
            )
        }
        Err(e) => Check::failed(AREA, id, e, || p.sys.next_command("setup status")),
    }
}

/// edge-setup's lock files, for `locks`.
const LOCKS: &[&str] = &[
    config::LOCK,
    crate::tigervnc::MAPPING_LOCK,
    health::LOCK,
    crate::remote_access::LOCK,
];

fn locks(p: &Probe) -> Check {
    let id = "edge-setup.locks";
    if let Some(why) = p.live_only() {
        return Check::skipped(AREA, id, why);
    }
    let table = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok());
    let mut held = Vec::new();
    for lock in LOCKS {
        let host = p.sys.host_path(Path::new(lock));
        let Ok(meta) = std::fs::metadata(&host) else {
            continue;
        };
        for pid in holders(&table, std::os::unix::fs::MetadataExt::ino(&meta)) {
            let age = uptime.and_then(|up| process_age(pid, up));
            held.push((lock, pid, age, command_of(pid)));
        }
    }
    let stale: Vec<_> = held
        .iter()
        .filter(|(_, _, age, _)| age.is_some_and(|a| a >= LOCK_AGE_WARN_SECS))
        .collect();
    if let Some((lock, pid, age, cmd)) = stale.first() {
        return Check::warn(
            AREA,
            id,
            format!(
                "{lock} has been held for {} min by process {pid} ({cmd}); other edge-setup runs wait for it",
                age.unwrap_or(0) / 60
            ),
            format!("if that run hangs, stop it: sudo kill {pid}"),
        );
    }
    match held.first() {
        Some((lock, pid, _, cmd)) => Check::ok(AREA, id, format!("{lock} is held by a run in progress ({pid}: {cmd})")),
        None => Check::ok(AREA, id, "no edge-setup lock is held"),
    }
}

/// The processes that hold a lock on the file with inode `ino`, from the
/// kernel's /proc/locks (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END`;
/// waiters are marked `->` and hold nothing).
pub(super) fn holders(table: &str, ino: u64) -> Vec<i32> {
    table
        .lines()
        .filter(|l| !l.contains("->"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let pid = f.get(4)?.parse::<i32>().ok()?;
            let inode = f.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
            (inode == ino).then_some(pid)
        })
        .collect()
}

/// How long process `pid` has run, in seconds (its start in clock ticks after boot,
/// field 22 of /proc/PID/stat, counted after the command's closing parenthesis).
fn process_age(pid: i32, uptime: f64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some((uptime - ticks / hz as f64).max(0.0) as u64)
}

fn command_of(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "gone".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_holders_come_from_proc_locks_by_inode() {
        let table = "1: FLOCK  ADVISORY  WRITE 4242 00:1a:917 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 4343 00:1a:917 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 77 fd:01:12 0 EOF\n";
        assert_eq!(holders(table, 917), vec![4242], "a waiter holds nothing");
        assert_eq!(holders(table, 12), vec![77]);
        assert!(holders(table, 5).is_empty());
    }
}
