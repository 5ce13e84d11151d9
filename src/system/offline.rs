//! Image mode (`--root`): what becomes of a command that changes the target when
//! the target is an image tree that never boots here. It is done in the image
//! now, with the distribution's own offline means, where one exists
//! (`systemctl --root` links, `groupadd --root`, the image's package manager in
//! a chroot or `dnf --installroot`: see `packages`); what needs the running
//! appliance (starting a unit, the kernel's firewall) is recorded in the image
//! as a pending step that `image first-boot` runs once, in order; what even the
//! first boot cannot do is recorded as left for the target, and `image prepare`
//! refuses an image that still has such a step.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::System;
use super::fs::FileSpec;
use super::runner::{Cmd, Program, Tool, shell_quote};
use crate::error::{Error, Result};

/// The steps an image left for its first boot, in order.
pub const PENDING: &str = "/var/lib/edge-setup/first-boot.pending";

/// One command the image left for the appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The tool's name and its arguments.
    pub command: Vec<String>,
    /// Variables set for it on top of the clean environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// Why the first boot cannot run it; `None` when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
}

impl Step {
    /// The command line, as `target_commands` and the messages show it.
    pub fn line(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .chain(self.command.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command to run at the first boot: a tool of edge-setup's table, by
    /// its absolute path like every command root runs; anything else is refused.
    pub fn cmd(&self) -> Result<Cmd> {
        let (name, args) = self
            .command
            .split_first()
            .ok_or_else(|| damaged("a step without a command"))?;
        let tool = Tool::by_name(name).ok_or_else(|| damaged(&format!("'{name}' is not a program edge-setup runs")))?;
        let mut cmd = Cmd::new(tool).args(args.iter().cloned());
        for (k, v) in &self.env {
            cmd = cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// The record of `cmd`, left for the target for `left` (else run by the first boot).
    pub(super) fn of(cmd: &Cmd, left: Option<String>) -> Step {
        Step {
            command: std::iter::once(cmd.program.name())
                .chain(cmd.args.iter().cloned())
                .collect(),
            env: cmd.env.clone(),
            left,
        }
    }

    /// Whether it is the same command as `other`, whoever is to run it.
    pub(super) fn same_command(&self, other: &Step) -> bool {
        (&self.command, &self.env) == (&other.command, &other.env)
    }

    /// Whether it starts (or restarts) `unit`: what disabling the unit cancels.
    pub(super) fn starts(&self, unit: &str) -> bool {
        let args: Vec<&str> = self.command.iter().map(String::as_str).collect();
        matches!(
            args.as_slice(),
            ["systemctl", "start" | "restart" | "try-restart", u] if *u == unit
        ) || matches!(args.as_slice(), ["systemctl", "enable", "--now", u] if *u == unit)
    }
}

fn damaged(why: &str) -> Error {
    Error::failure(format!("{PENDING} is damaged"))
        .why(why.to_string())
        .hint(format!(
            "it is edge-setup's record of what the image left for the first boot; remove it (sudo rm {PENDING}) and run the steps by hand"
        ))
}

/// The record of pending steps in the image (or on the appliance, until its first boot ran them).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub steps: Vec<Step>,
}

impl Pending {
    pub fn load(sys: &System) -> Result<Pending> {
        let Some(text) = sys.read_string(Path::new(PENDING))? else {
            return Ok(Pending::default());
        };
        serde_json::from_str(&text).map_err(|e| damaged(&e.to_string()))
    }

    /// Writes the record, or removes it when no step is left.
    pub fn save(&self, sys: &System) -> Result<()> {
        if self.steps.is_empty() {
            sys.remove(Path::new(PENDING))?;
            return Ok(());
        }
        let text = serde_json::to_string_pretty(self).expect("the record serializes") + "\n";
        sys.write(Path::new(PENDING), text.as_bytes(), FileSpec::root(0o644))?;
        Ok(())
    }

    /// The steps the first boot cannot run.
    pub fn left(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.left.is_some())
    }
}

/// What image mode does with one command.
#[derive(Debug)]
pub(super) enum Fate {
    /// Run on this host now: it changes the image only.
    Now(Cmd),
    /// Recorded for the first boot.
    FirstBoot(Cmd),
    /// Recorded as left for the target: the first boot cannot run it, for this reason.
    Left(Cmd, String),
    /// The unit is disabled in the image: a pending start of it is dropped.
    Cancel(String),
}

/// What becomes of `cmd` in the image under `sys`.
pub(super) fn fates(sys: &System, cmd: &Cmd) -> Result<Vec<Fate>> {
    if cmd.stdin.is_some() {
        // values on stdin may be secrets, and secrets are never stored in a record
        return Ok(vec![Fate::Left(
            cmd.clone(),
            "it reads values on standard input, which are not stored in the image".into(),
        )]);
    }
    let Program::Tool(tool) = cmd.program else {
        return Ok(vec![Fate::Left(
            cmd.clone(),
            "it is a program of the appliance's own, run only where it is checked".into(),
        )]);
    };
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    Ok(match (tool, args.as_slice()) {
        // systemd reads unit files when the image boots; a unit not running in
        // an image reads its configuration when it starts; the network's
        // service applies its files at boot (these commands only apply them now)
        (Tool::Systemctl, ["daemon-reload" | "try-restart" | "reload" | "try-reload-or-restart", ..])
        | (Tool::Ifdown | Tool::Ifup | Tool::Nmcli | Tool::Networkctl, _) => Vec::new(),
        // a restart makes a running unit read its new configuration: on the
        // appliance, it is to run
        (Tool::Systemctl, ["restart", units @ ..]) => units
            .iter()
            .map(|u| Fate::FirstBoot(Cmd::new(Tool::Systemctl).args(["start", u])))
            .collect(),
        (Tool::Systemctl, ["enable", rest @ ..]) => {
            let (now, units) = split_now(rest);
            let mut fates = Vec::new();
            for unit in units {
                match enable_in_image(sys, unit)? {
                    // no unit file in the image (yet), or no systemctl here: all of it at the first boot
                    Enable::Impossible => fates.push(Fate::FirstBoot(
                        Cmd::new(Tool::Systemctl)
                            .arg("enable")
                            .args(now.then_some("--now"))
                            .arg(unit),
                    )),
                    enable => {
                        if let Enable::Run(cmd) = enable {
                            fates.push(Fate::Now(cmd));
                        }
                        if now {
                            fates.push(Fate::FirstBoot(Cmd::new(Tool::Systemctl).args(["start", unit])));
                        }
                    }
                }
            }
            fates
        }
        (Tool::Systemctl, ["disable", rest @ ..]) => {
            let (_, units) = split_now(rest);
            let mut fates = Vec::new();
            for unit in units {
                if sys.host_tool(Tool::Systemctl).is_some() && enabled_in_image(sys, unit)? {
                    fates.push(Fate::Now(systemctl_root(sys).args(["disable", unit])));
                }
                fates.push(Fate::Cancel(unit.to_string()));
            }
            fates
        }
        (Tool::Groupadd | Tool::Groupdel, _) if sys.is_root() && sys.host_tool(tool).is_some() => {
            // shadow's tools chroot into the image themselves and use its files
            vec![Fate::Now(
                Cmd::new(tool)
                    .args(["--root", &sys.root_dir().display().to_string()])
                    .args(cmd.args.iter().cloned()),
            )]
        }
        _ => vec![Fate::FirstBoot(cmd.clone())],
    })
}

fn split_now<'a>(args: &'a [&'a str]) -> (bool, Vec<&'a str>) {
    let now = args.contains(&"--now");
    (now, args.iter().copied().filter(|a| *a != "--now").collect())
}

fn systemctl_root(sys: &System) -> Cmd {
    Cmd::new(Tool::Systemctl).arg(format!("--root={}", sys.root_dir().display()))
}

/// What enabling a unit in the image takes.
enum Enable {
    /// `systemctl --root=IMAGE enable UNIT`.
    Run(Cmd),
    /// Enabled there already.
    Done,
    /// Not in the image: this host has no systemctl, or the image no unit file (yet).
    Impossible,
}

/// `systemctl --root=IMAGE enable UNIT` where it can work here: this host has
/// systemctl and the image has the unit's file (a template's for an instance).
fn enable_in_image(sys: &System, unit: &str) -> Result<Enable> {
    if sys.host_tool(Tool::Systemctl).is_none() || !unit_file_in_image(sys, unit)? {
        return Ok(Enable::Impossible);
    }
    if enabled_in_image(sys, unit)? {
        return Ok(Enable::Done);
    }
    Ok(Enable::Run(systemctl_root(sys).args(["enable", unit])))
}

/// What `systemctl --root` says of the unit in the image (read-only, a dry run too).
fn enabled_in_image(sys: &System, unit: &str) -> Result<bool> {
    let out = sys.run_read_only(systemctl_root(sys).args(["is-enabled", unit]))?;
    Ok(out.success() && out.stdout.trim() == "enabled")
}

/// Where packages install unit files (merged /usr first), and the administrator's.
const UNIT_DIRS: [&str; 3] = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

fn unit_file_in_image(sys: &System, unit: &str) -> Result<bool> {
    // an instance's file is its template's
    let file = match unit.split_once('@') {
        Some((prefix, rest)) => match rest.rsplit_once('.') {
            Some((_, kind)) => format!("{prefix}@.{kind}"),
            None => return Ok(false),
        },
        None => unit.to_string(),
    };
    for dir in UNIT_DIRS {
        if sys.meta(&Path::new(dir).join(&file))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::system::runner::Output;
    use crate::testkit::Fixture;

    const UNIT: &str = "tigervncserver@:1.service";

    fn with_template(f: &Fixture) {
        f.write(
            "/usr/lib/systemd/system/tigervncserver@.service",
            "[Install]\nWantedBy=multi-user.target\n",
        );
    }

    fn enable_now() -> Cmd {
        Cmd::new(Tool::Systemctl).args(["enable", "--now", UNIT])
    }

    fn steps(sys: &System) -> Vec<String> {
        Pending::load(sys).unwrap().steps.iter().map(Step::line).collect()
    }

    #[test]
    fn a_unit_is_enabled_in_the_image_and_started_at_the_first_boot() {
        let f = Fixture::empty();
        with_template(&f);
        let sys = f.system(Mode::Image, false);
        sys.run(enable_now()).unwrap();
        let root = f.root().display().to_string();
        assert_eq!(
            f.fake.lines(),
            [
                format!("systemctl --root={root} is-enabled {UNIT}"),
                format!("systemctl --root={root} enable {UNIT}")
            ]
        );
        assert_eq!(steps(&sys), [format!("systemctl start {UNIT}")]);
        assert_eq!(sys.first_boot_commands(), [format!("systemctl start {UNIT}")]);

        // enabled already, its start recorded already: a second run changes nothing
        f.fake
            .respond(&format!("systemctl --root={root} is-enabled"), Output::ok("enabled\n"));
        let again = f.system(Mode::Image, false);
        again.run(enable_now()).unwrap();
        assert_eq!(again.change_count(), 0, "{:?}", again.changes());
        assert_eq!(f.fake.lines().len(), 3);

        // disabled in the image: its start is dropped
        let off = f.system(Mode::Image, false);
        off.run(Cmd::new(Tool::Systemctl).args(["disable", "--now", UNIT]))
            .unwrap();
        assert_eq!(
            f.fake.lines().last().unwrap(),
            &format!("systemctl --root={root} disable {UNIT}")
        );
        assert!(steps(&off).is_empty());
        assert!(!f.exists(PENDING), "an empty record is removed");
    }

    #[test]
    fn without_the_unit_file_or_systemctl_all_of_it_waits_for_the_first_boot() {
        let f = Fixture::empty();
        let sys = f.system(Mode::Image, false);
        sys.run(enable_now()).unwrap();
        assert_eq!(f.fake.lines(), Vec::<String>::new());
        assert_eq!(steps(&sys), [format!("systemctl enable --now {UNIT}")]);
        // the unit file, but no systemctl on this host
        with_template(&f);
        f.fake.without(Tool::Systemctl);
        let again = f.system(Mode::Image, false);
        again.run(enable_now()).unwrap();
        assert_eq!(f.fake.lines(), Vec::<String>::new());
        assert_eq!(again.change_count(), 0);

        // a host with systemctl does the enable in the image, and the record
        // holds only the start
        let g = Fixture::empty();
        with_template(&g);
        g.write(PENDING, &f.read(PENDING).unwrap());
        let sys = g.system(Mode::Image, false);
        sys.run(enable_now()).unwrap();
        assert_eq!(steps(&sys), [format!("systemctl start {UNIT}")]);
    }

    #[test]
    fn groups_are_made_in_the_image_by_shadow_as_root_else_at_the_first_boot() {
        let f = Fixture::empty();
        let root = f.root().display().to_string();
        let groupadd = || Cmd::new(Tool::Groupadd).args(["--system", "vncusers"]);
        f.system(Mode::Image, false).run(groupadd()).unwrap();
        assert_eq!(f.fake.lines(), [format!("groupadd --root {root} --system vncusers")]);
        assert!(!f.exists(PENDING));

        let user = f.system(Mode::Image, false).with_ids(1000, 1000);
        user.run(groupadd()).unwrap();
        assert_eq!(f.fake.lines().len(), 1, "groupadd --root chroots: only root can");
        assert_eq!(steps(&user), ["groupadd --system vncusers"]);
        // done as root later: the record drops it
        f.system(Mode::Image, false).run(groupadd()).unwrap();
        assert!(!f.exists(PENDING));
    }

    #[test]
    fn a_dry_run_plans_the_same_and_writes_nothing() {
        let f = Fixture::empty();
        with_template(&f);
        let dry = f.system(Mode::Image, true);
        dry.run(enable_now()).unwrap();
        dry.run(Cmd::new(Tool::Systemctl).arg("daemon-reload")).unwrap();
        let root = f.root().display().to_string();
        // only the read-only question ran
        assert_eq!(f.fake.lines(), [format!("systemctl --root={root} is-enabled {UNIT}")]);
        assert!(!f.exists(PENDING));
        let planned: Vec<String> = dry.changes().iter().map(|c| c.describe()).collect();
        let real = f.system(Mode::Image, false);
        real.run(enable_now()).unwrap();
        let done: Vec<String> = real.changes().iter().map(|c| c.describe()).collect();
        assert_eq!(planned, done);
        assert_eq!(dry.first_boot_commands(), real.first_boot_commands());
        assert!(
            f.err
                .text()
                .contains(&format!("would leave for the first boot: systemctl start {UNIT}"))
        );
    }

    #[test]
    fn a_damaged_record_or_an_unknown_program_is_refused() {
        let f = Fixture::empty();
        f.write(PENDING, "{not json");
        let sys = f.system(Mode::Image, false);
        let e = Pending::load(&sys).unwrap_err();
        assert!(e.what.contains("is damaged"), "{e}");
        let step = Step {
            command: vec!["rm".into(), "-rf".into(), "/".into()],
            env: Vec::new(),
            left: None,
        };
        let e = step.cmd().unwrap_err();
        assert!(
            e.why
                .as_deref()
                .unwrap()
                .contains("'rm' is not a program edge-setup runs"),
            "{e:?}"
        );
    }
}
