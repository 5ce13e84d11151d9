//! edge-setup's own parts of the bundle, each a fixed list of what it reads or
//! runs: nothing goes in because it happens to lie in a directory, so no secret
//! the appliance holds (password files, the tenant's credentials, keys) is ever
//! read. Commands run within `Limits`, so a hung one cannot hold the bundle up.

use std::path::Path;
use std::time::Duration;

use super::Since;
use super::bundle::{Files, Found, Report, Status, describe, transcript};
use super::redact;
use crate::config::{AGENT_SERVICE, Config};
use crate::error::Result;
use crate::image::first_boot;
use crate::installed;
use crate::remote_access;
use crate::system::System;
use crate::system::fs::as_user;
use crate::system::os_release::Family;
use crate::system::packages::DPKG_STATUS;
use crate::system::runner::{Cmd, Limits, Output, Tool};
use crate::tigervnc::{self, MAPPING_FILE, SUDOERS_FILE, USERS_FILE};
use crate::vnc::firewall;
use crate::vnc::package_set::Desktop;
use crate::vnc::state::{self, State};
use crate::vnc_user::{self, mapping::Mappings};

/// A command of the system's: a minute, and the newest 4 MiB of what it prints
/// (a journal's end is what matters).
const COMMAND: Limits = Limits {
    time: Duration::from_secs(60),
    grace: Duration::from_secs(5),
    output: 4 << 20,
};

/// edge-setup's own `check`: its tenant checks wait for the tenant, each request
/// bounded by c8y.request-timeout.
const OWN: Limits = Limits {
    time: Duration::from_secs(180),
    ..COMMAND
};

/// The end of each TigerVNC log that goes in (the newest lines), and how many
/// logs of one user: a user decides what is in their directory.
pub const LOG_TAIL: u64 = 256 << 10;
const LOGS_PER_USER: usize = 4;

const LIVE_ONLY: &str = "an image has no running system to ask: this part is collected on the appliance";

/// What the parts read, loaded once.
pub struct Source<'a> {
    pub sys: &'a System,
    since: Since,
    /// The distribution's family, or why it is not known.
    family: std::result::Result<Family, String>,
    mappings: std::result::Result<Mappings, String>,
    /// The units whose status and journal go in, and what of them is not known.
    units: (Vec<String>, Vec<String>),
}

impl<'a> Source<'a> {
    pub fn new(sys: &'a System, since: Since) -> Source<'a> {
        let family = sys.os_release().and_then(|o| o.family()).map_err(|e| describe(&e));
        let mappings = vnc_user::load_mappings(sys).map(|(m, _)| m).map_err(|e| describe(&e));
        let units = units_of(sys, &family, &mappings);
        Source {
            sys,
            since,
            family,
            mappings,
            units,
        }
    }

    /// The units, each problem of finding them reported in `found`.
    fn units(&self, found: &mut Found) -> &[String] {
        for problem in &self.units.1 {
            found.problem(problem.clone());
        }
        &self.units.0
    }

    /// Runs a read-only command of the live system (`None` in an image), its
    /// transcript as the file `name`; running past its time is a problem.
    fn ask(&self, found: &mut Found, name: &str, cmd: Cmd) -> Result<Option<Output>> {
        let cmd = cmd.limits(COMMAND);
        let Some(out) = self.sys.query(cmd.clone())? else {
            return Ok(None);
        };
        if out.timed_out {
            found.problem(format!("`{cmd}` stopped at its time limit ({:?})", COMMAND.time));
        }
        found.file(name, transcript(&cmd, &out));
        Ok(Some(out))
    }

    /// A file of the target as it is, as `name`; `false` when it does not exist.
    fn copy(&self, found: &mut Found, path: &str, name: &str) -> Result<bool> {
        let Some(bytes) = self.sys.read(Path::new(path))? else {
            return Ok(false);
        };
        found.file(name, bytes);
        Ok(true)
    }

    /// `copy` for a part of that one file, skipped when it does not exist.
    fn copy_only(&self, found: &mut Found, path: &str, name: &str) -> Result<()> {
        if !self.copy(found, path, name)? {
            found.skip(format!(
                "{} does not exist",
                self.sys.host_path(Path::new(path)).display()
            ));
        }
        Ok(())
    }
}

/// The first boot's unit, each VNC session's, the agent's and the SSH server's;
/// and what of them is not known.
fn units_of(
    sys: &System,
    family: &std::result::Result<Family, String>,
    mappings: &std::result::Result<Mappings, String>,
) -> (Vec<String>, Vec<String>) {
    let (mut units, mut problems) = (vec![first_boot::UNIT.to_string()], Vec::new());
    match (family, mappings) {
        (Ok(family), Ok(m)) => units.extend(m.appliance.entries().map(|(_, d, _)| tigervnc::unit(*family, d))),
        (Err(why), _) | (_, Err(why)) => problems.push(format!("the VNC sessions' units are not known: {why}")),
    }
    match Config::load(sys).and_then(|c| c.get(sys, AGENT_SERVICE)) {
        Ok(Some(unit)) => units.push(unit.to_string()),
        Ok(None) => {}
        Err(e) => problems.push(format!("the agent's unit is not known: {}", describe(&e))),
    }
    if let Ok(family) = family {
        units.push(remote_access::ssh::server_unit(*family).to_string());
    }
    (units, problems)
}

/// One part of the bundle.
pub struct Part {
    pub name: &'static str,
    /// What it collects, for the plan of `--dry-run`.
    pub what: &'static str,
    /// Only a running system can tell (skipped in an image).
    pub live_only: bool,
    collect: fn(&Source, &mut Found) -> Result<()>,
}

impl Part {
    /// What `--dry-run` says of it.
    pub fn plan(&self, sys: &System) -> Report {
        match self.live_only && sys.is_image() {
            true => Report::new(self.name, Status::Skipped, Some(LIVE_ONLY.to_string())),
            false => Report::new(self.name, Status::Planned, Some(self.what.to_string())),
        }
    }

    pub fn collect(&self, src: &Source) -> (Report, Files) {
        let mut found = Found::default();
        let result = if self.live_only && src.sys.is_image() {
            found.skip(LIVE_ONLY);
            Ok(())
        } else {
            (self.collect)(src, &mut found)
        };
        (found.report(self.name, result), found.files)
    }
}

pub const PARTS: &[Part] = &[
    Part {
        name: "versions",
        what: "edge-setup's version, the kernel's and TigerVNC's",
        live_only: false,
        collect: versions,
    },
    Part {
        name: "os-release",
        what: "/etc/os-release",
        live_only: false,
        collect: |src, found| src.copy_only(found, "/etc/os-release", "os-release"),
    },
    Part {
        name: "check",
        what: "edge-setup check --json",
        live_only: false,
        collect: |src, found| own(src, found, &["check"], "check.json"),
    },
    Part {
        name: "setup-status",
        what: "edge-setup setup status --json",
        live_only: false,
        collect: |src, found| own(src, found, &["setup", "status"], "setup-status.json"),
    },
    Part {
        name: "config",
        what: "the configuration: the values of the keys the README lists, other keys by name",
        live_only: false,
        collect: config,
    },
    Part {
        name: "mappings",
        what: "both display mapping files",
        live_only: false,
        collect: |src, found| {
            let appliance = src.copy(found, MAPPING_FILE, "mappings/vnc-display-mapping")?;
            if !src.copy(found, USERS_FILE, "mappings/vncserver.users")? && !appliance {
                found.skip("neither mapping file exists: no user has VNC yet");
            }
            Ok(())
        },
    },
    Part {
        name: "sudoers",
        what: "the sudoers rule of 'edge-setup vnc'",
        live_only: false,
        collect: |src, found| src.copy_only(found, SUDOERS_FILE, "sudoers/edge-setup-vnc"),
    },
    Part {
        name: "records",
        what: "edge-setup's records: what 'vnc' installed, the post-installation, the first boot, the remote access endpoints (without digests)",
        live_only: false,
        collect: records,
    },
    Part {
        name: "units",
        what: "the status of the first boot's, the VNC sessions', the agent's and the SSH server's units, and the failed units",
        live_only: true,
        collect: units,
    },
    Part {
        name: "journal",
        what: "the journal of the same units, as far back as --since",
        live_only: true,
        collect: journal,
    },
    Part {
        name: "vnc-logs",
        what: "each VNC user's TigerVNC logs, read as the user, the last 256 KiB of each",
        live_only: false,
        collect: vnc_logs,
    },
    Part {
        name: "packages",
        what: "the versions of the packages edge-setup installs",
        live_only: false,
        collect: packages,
    },
    Part {
        name: "addresses",
        what: "ip address",
        live_only: true,
        collect: |src, found| {
            src.ask(found, "network/addresses.txt", Cmd::new(Tool::Ip).arg("address"))
                .map(drop)
        },
    },
    Part {
        name: "routes",
        what: "ip route, ip -6 route",
        live_only: true,
        collect: |src, found| {
            src.ask(found, "network/routes.txt", Cmd::new(Tool::Ip).arg("route"))?;
            src.ask(
                found,
                "network/routes-ipv6.txt",
                Cmd::new(Tool::Ip).args(["-6", "route"]),
            )
            .map(drop)
        },
    },
    Part {
        name: "resolv.conf",
        what: "/etc/resolv.conf",
        live_only: false,
        collect: |src, found| src.copy_only(found, "/etc/resolv.conf", "network/resolv.conf"),
    },
    Part {
        name: "firewall",
        what: "the running firewall's rules where edge-setup's VNC rule is, and edge-setup's nftables file",
        live_only: false,
        collect: firewall,
    },
    Part {
        name: "disk",
        what: "df -hPT",
        live_only: true,
        collect: |src, found| src.ask(found, "disk.txt", Cmd::new(Tool::Df).arg("-hPT")).map(drop),
    },
    Part {
        name: "time",
        what: "timedatectl status, timedatectl timesync-status",
        live_only: true,
        collect: |src, found| {
            src.ask(found, "time/status.txt", Cmd::new(Tool::Timedatectl).arg("status"))?;
            // only where systemd-timesyncd synchronises: its failure elsewhere says so
            src.ask(
                found,
                "time/timesync.txt",
                Cmd::new(Tool::Timedatectl).arg("timesync-status"),
            )
            .map(drop)
        },
    },
];

fn versions(src: &Source, found: &mut Found) -> Result<()> {
    let sys = src.sys;
    let mut text = format!(
        "edge-setup {} (commit {})\n",
        env!("CARGO_PKG_VERSION"),
        env!("EDGE_SETUP_COMMIT")
    );
    if sys.is_image() {
        text.push_str(&format!("system: the image at {}\n", sys.root_dir().display()));
    } else if let Some((release, _)) = sys.read_small(Path::new("/proc/sys/kernel/osrelease"), 4096)? {
        text.push_str(&format!("kernel: {}", String::from_utf8_lossy(&release)));
    }
    let tigervnc = match &src.family {
        Ok(family) => match tigervnc::installed_version(sys, *family)? {
            Some(tigervnc::Version(major, minor)) => format!("{major}.{minor}"),
            None => "not installed".to_string(),
        },
        Err(why) => format!("unknown ({why})"),
    };
    text.push_str(&format!("TigerVNC: {tigervnc}\n"));
    found.file("versions.txt", text);
    Ok(())
}

/// `edge-setup [--root DIR] ARGS --json` by this very binary, its object as `name`.
fn own(src: &Source, found: &mut Found, args: &[&str], name: &str) -> Result<()> {
    let sys = src.sys;
    let mut cmd = Cmd::checked(sys.current_exe()?);
    if sys.is_image() {
        cmd = cmd.args(["--root".to_string(), sys.root_dir().display().to_string()]);
    }
    let cmd = cmd.args(args.iter().copied()).arg("--json").limits(OWN);
    let out = sys.run_read_only(cmd.clone())?;
    if out.timed_out {
        found.problem(format!("`{cmd}` stopped at its time limit ({:?})", OWN.time));
    }
    match serde_json::from_str::<serde_json::Value>(out.stdout.trim()) {
        Ok(_) => found.file(name, out.stdout),
        Err(_) => {
            found.problem(format!("`{cmd}` printed no JSON object (its output is in the bundle)"));
            found.file(name.replace(".json", ".txt"), transcript(&cmd, &out));
        }
    }
    Ok(())
}

fn config(src: &Source, found: &mut Found) -> Result<()> {
    match redact::config(src.sys)? {
        Some(text) => found.file("config.txt", text),
        None => found.skip("there is no configuration file: every key has its default"),
    }
    Ok(())
}

/// edge-setup's own records, which hold no secret by design; the remote access
/// record loses its digests.
fn records(src: &Source, found: &mut Found) -> Result<()> {
    for (path, name) in [
        (state::PATH, "records/vnc-installed.json"),
        (installed::STATE_PATH, "records/post-install.json"),
        (first_boot::DONE, "records/first-boot.done"),
        (first_boot::FAILED, "records/first-boot.failed"),
    ] {
        src.copy(found, path, name)?;
    }
    if let Some(text) = src.sys.read_string(Path::new(remote_access::RECORD))? {
        match redact::remote_access_record(&text) {
            Some(kept) => found.file("records/remote-access.json", kept),
            None => found.problem(format!("{} is not JSON: left out", remote_access::RECORD)),
        }
    }
    if found.files.is_empty() {
        found.skip("edge-setup has made no record here yet");
    }
    Ok(())
}

fn units(src: &Source, found: &mut Found) -> Result<()> {
    let units = src.units(found);
    let status = Cmd::new(Tool::Systemctl)
        .args(["status", "--no-pager", "--full", "--lines=0"])
        .args(units);
    src.ask(found, "units/status.txt", status)?;
    let failed = Cmd::new(Tool::Systemctl).args(["list-units", "--failed", "--no-pager"]);
    src.ask(found, "units/failed.txt", failed).map(drop)
}

fn journal(src: &Source, found: &mut Found) -> Result<()> {
    let since = format!("--since=-{}s", src.since.0.as_secs());
    for unit in src.units(found) {
        let cmd = Cmd::new(Tool::Journalctl).args([
            "--no-pager",
            "--output=short-iso",
            since.as_str(),
            "--unit",
            unit.as_str(),
        ]);
        src.ask(found, &format!("journal/{unit}.log"), cmd)?;
    }
    Ok(())
}

/// Each VNC user's TigerVNC logs (`HOST:N.log` of their display) from both
/// places TigerVNC writes them, read as the user with the checks of every file in
/// a home (not through a link, theirs, one link), the last `LOG_TAIL` bytes each.
fn vnc_logs(src: &Source, found: &mut Found) -> Result<()> {
    let sys = src.sys;
    let mappings = match &src.mappings {
        Ok(m) => m,
        Err(why) => {
            found.problem(format!("the VNC users are not known: {why}"));
            return Ok(());
        }
    };
    let users = sys.users();
    for (name, display, _) in mappings.appliance.entries() {
        let Some(user) = users.by_name(name)? else {
            found.problem(format!("{name} (display :{display}) is not a user of this system"));
            continue;
        };
        let suffix = format!(":{display}.log");
        let mut logs = Vec::new();
        for dir in tigervnc::log_dirs(&user.home) {
            match as_user(user.uid, user.gid, || sys.list_dir(&dir)) {
                Ok(names) => logs.extend(
                    names
                        .iter()
                        .filter_map(|n| n.to_str())
                        .filter(|n| n.ends_with(&suffix))
                        .map(|n| dir.join(n)),
                ),
                Err(e) => found.problem(describe(&e)),
            }
        }
        if logs.len() > LOGS_PER_USER {
            found.problem(format!(
                "{name} has {} logs of display :{display}: only {LOGS_PER_USER} are taken",
                logs.len()
            ));
        }
        for path in logs.iter().take(LOGS_PER_USER) {
            let read = as_user(user.uid, user.gid, || sys.read_user_tail(path, user.uid, LOG_TAIL));
            match read {
                Ok(Some((tail, size))) => {
                    let mut text = Vec::new();
                    if size > LOG_TAIL {
                        let head = format!("[edge-setup: the first {} bytes are left out]\n", size - LOG_TAIL);
                        text.extend_from_slice(head.as_bytes());
                    }
                    text.extend_from_slice(&tail);
                    let rel = path.strip_prefix(&user.home).unwrap_or(path);
                    found.file(format!("vnc-logs/{name}/{}", rel.display()), text);
                }
                Ok(None) => {}
                Err(e) => found.problem(describe(&e)),
            }
        }
    }
    if found.files.is_empty() {
        found.skip("no VNC user has a TigerVNC log");
    }
    Ok(())
}

/// The versions of the packages `edge-setup vnc` installs (for this
/// distribution and vnc.desktop-apps, and what its record says it installed),
/// the SSH server of `remote-access ssh`, and edge-setup's own.
fn packages(src: &Source, found: &mut Found) -> Result<()> {
    let sys = src.sys;
    let family = match &src.family {
        Ok(f) => *f,
        Err(why) => {
            found.problem(format!("the distribution is not known: {why}"));
            return Ok(());
        }
    };
    let os = sys.os_release()?;
    let desktop = Desktop::configured(sys, &os, family).unwrap_or_else(|e| {
        found.problem(format!("vnc.desktop-apps is left out: {}", describe(&e)));
        Desktop::for_os(&os, family, &[])
    });
    let mut names: std::collections::BTreeSet<String> = desktop.packages.into_iter().collect();
    names.extend(State::load(sys).map(|s| s.packages).unwrap_or_default());
    names.extend(["openssh-server".to_string(), "edge-setup".to_string()]);
    match family {
        Family::Debian => {
            let status = sys.read_string(Path::new(DPKG_STATUS))?.unwrap_or_default();
            let text: String = names
                .iter()
                .map(|p| {
                    let version = tigervnc::dpkg_installed_version(&status, p);
                    format!("{p} {}\n", version.as_deref().unwrap_or("(not installed)"))
                })
                .collect();
            found.file("packages.txt", text);
        }
        Family::RedHat => {
            let query = Cmd::new(Tool::Rpm)
                .args(["-q", "--qf", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n"])
                .args(names);
            if src.ask(found, "packages.txt", query)?.is_none() {
                found.skip("an image's RPM database is read by rpm on the appliance: this part is collected there");
            }
        }
    }
    Ok(())
}

fn firewall(src: &Source, found: &mut Found) -> Result<()> {
    let nft = src.copy(found, firewall::NFT_FILE, "firewall/edge-setup-vnc.nft")?;
    if src.sys.is_image() {
        if !nft {
            found.skip(format!("{} does not exist, and {LIVE_ONLY}", firewall::NFT_FILE));
        }
        return Ok(());
    }
    match firewall::detect(src.sys)? {
        Some(backend) => src
            .ask(found, "firewall/rules.txt", firewall::listing(backend))
            .map(drop),
        None => {
            if !nft {
                found.skip("no firewall is installed");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::testkit::Fixture;

    fn since() -> Since {
        Since(Duration::from_secs(3600))
    }

    fn collect(sys: &System, name: &str) -> (Report, Files) {
        let part = PARTS.iter().find(|p| p.name == name).unwrap();
        part.collect(&Source::new(sys, since()))
    }

    fn appliance() -> Fixture {
        let f = Fixture::debian();
        f.write(MAPPING_FILE, "admin:1\noperator:2\n");
        f.write(USERS_FILE, ":1=admin\n:2=operator\n");
        f
    }

    #[test]
    fn the_journal_covers_each_unit_as_far_back_as_since() {
        let f = appliance();
        f.write(
            "/etc/edge-setup/edge-setup.toml",
            "[agent]\nservice = \"edge-agent.service\"\n",
        );
        let (report, files) = collect(&f.live(), "journal");
        assert_eq!(report.status, Status::Collected, "{report:?}");
        let lines = f.fake.lines();
        assert_eq!(
            lines,
            [
                "edge-setup-firstboot.service",
                "tigervncserver@:1.service",
                "tigervncserver@:2.service",
                "edge-agent.service",
                "ssh.service"
            ]
            .map(|u| format!("journalctl --no-pager --output=short-iso --since=-3600s --unit {u}"))
        );
        assert!(f.fake.calls().iter().all(|c| c.limits == Some(COMMAND)));
        assert_eq!(files[1].0, "journal/tigervncserver@:1.service.log");
    }

    #[test]
    fn live_only_parts_are_skipped_in_an_image_with_why() {
        let f = appliance();
        let (report, files) = collect(&f.system(Mode::Image, false), "journal");
        assert_eq!(report.status, Status::Skipped);
        assert_eq!(report.why.as_deref(), Some(LIVE_ONLY));
        assert!(files.is_empty() && f.fake.calls().is_empty());
    }

    #[test]
    fn a_command_past_its_time_is_an_error_and_its_output_stays() {
        let f = appliance();
        f.fake.respond_with(|c| {
            (c.program.name() == "df").then(|| {
                Ok(Output {
                    timed_out: true,
                    ..Output::ok("Filesystem\n")
                })
            })
        });
        let (report, files) = collect(&f.live(), "disk");
        assert_eq!(report.status, Status::Error);
        assert_eq!(report.why.as_deref(), Some("`df -hPT` stopped at its time limit (60s)"));
        assert_eq!(files[0].0, "disk.txt");
        assert!(String::from_utf8_lossy(&files[0].1).contains("Filesystem"));
    }

    /// The newest end of a long log, said so; a link where a log is is refused, the
    /// others still taken; at most `LOGS_PER_USER` of a user.
    #[test]
    fn users_logs_go_in_by_their_end_and_only_as_regular_files() {
        let f = appliance();
        let mut long = vec![b'a'; 100];
        long.extend(vec![b'z'; LOG_TAIL as usize]);
        std::fs::create_dir_all(f.path("/home/admin/.vnc")).unwrap();
        std::fs::write(f.path("/home/admin/.vnc/edge:1.log"), &long).unwrap();
        f.write("/home/admin/.vnc/edge:2.log", "another display's\n");
        std::os::unix::fs::symlink("/etc/shadow", f.path("/home/admin/.vnc/old:1.log")).unwrap();
        for i in 0..5 {
            f.write(&format!("/home/operator/.local/state/tigervnc/h{i}:2.log"), "x\n");
        }
        let (report, files) = collect(&f.system(Mode::Image, false), "vnc-logs");
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "vnc-logs/admin/.vnc/edge:1.log",
                "vnc-logs/operator/.local/state/tigervnc/h0:2.log",
                "vnc-logs/operator/.local/state/tigervnc/h1:2.log",
                "vnc-logs/operator/.local/state/tigervnc/h2:2.log",
                "vnc-logs/operator/.local/state/tigervnc/h3:2.log",
            ]
        );
        let head = "[edge-setup: the first 100 bytes are left out]\n";
        assert!(files[0].1.starts_with(head.as_bytes()));
        assert_eq!(files[0].1.len(), head.len() + LOG_TAIL as usize);
        assert!(files[0].1[head.len()..].iter().all(|b| *b == b'z'));
        assert_eq!(report.status, Status::Error);
        let why = report.why.unwrap();
        assert!(why.contains("old:1.log: it is a symbolic link"), "{why}");
        assert!(
            why.contains("operator has 5 logs of display :2: only 4 are taken"),
            "{why}"
        );
    }

    #[test]
    fn package_versions_come_from_dpkg_s_status_in_an_image_too() {
        let f = appliance();
        f.write(
            DPKG_STATUS,
            "Package: tigervnc-standalone-server\nStatus: install ok installed\nVersion: 1.12.0+dfsg-8\n\n\
             Package: edge-setup\nStatus: install ok installed\nVersion: 0.1.0\n",
        );
        let (report, files) = collect(&f.system(Mode::Image, false), "packages");
        assert_eq!(report.status, Status::Collected);
        let text = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(text.contains("tigervnc-standalone-server 1.12.0+dfsg-8\n"), "{text}");
        assert!(text.contains("edge-setup 0.1.0\n"), "{text}");
        assert!(text.contains("fluxbox (not installed)\n"), "{text}");
    }
}
