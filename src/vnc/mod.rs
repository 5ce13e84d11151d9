//! `sudo edge-setup vnc`: installs and prepares what `edge-setup vnc-user` needs
//! (replaces vnc-setup.sh). Packages in one transaction (only the missing ones), the
//! desktop session, the host name in /etc/hosts, the `vncusers` group and its sudoers
//! rule, the firewall for `vnc.listen = lan`, SELinux. A second run on a prepared
//! system runs no install, writes nothing and says so; `--uninstall` removes exactly
//! what was added, as recorded in the state file.

pub mod desktop;
pub mod firewall;
pub mod health;
pub mod package_set;
pub mod state;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config, Listen};
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, Entry, FileSpec};
use crate::system::os_release::{Family, OsRelease};
use crate::system::packages::{self, Installed, Manager, OfflineDir};
use crate::system::runner::{Cmd, Tool};
use crate::system::users::UserInfo;
use crate::tigervnc::{self, SUDOERS_FILE, VNC_GROUP};
use crate::vnc_user;
use firewall::{Backend, Rule};
use package_set::Desktop;
use state::State;

const RETRY: &str = "sudo edge-setup vnc";
const RETRY_UNINSTALL: &str = "sudo edge-setup vnc --uninstall";
/// Serialises runs of `edge-setup vnc` (install and uninstall).
const RUN_LOCK: &str = "/var/lib/edge-setup/.vnc.lock";
/// Where `visudo -c` checks the rule before it is installed: sudo skips names with a dot.
const SUDOERS_CANDIDATE: &str = "/etc/sudoers.d/.edge-setup-vnc.candidate";
/// Where the sudoers rule expects edge-setup in an image: the first that exists, else the first.
const IMAGE_EXE: &[&str] = &[
    "/usr/bin/edge-setup",
    "/usr/local/bin/edge-setup",
    "/usr/local/sbin/edge-setup",
    "/usr/sbin/edge-setup",
];
const INSTALL_STEPS: u64 = 10;

/// What `edge-setup vnc` is asked to do.
pub enum Request {
    /// Install, from the repositories or from a directory made by `Bundle`.
    Install { offline: Option<PathBuf> },
    /// Remove what the install added; `purge` also the users' password files.
    Uninstall { purge: bool },
    /// Download the packages the install needs into a directory.
    Bundle { dir: PathBuf },
    /// Rewrite an existing sudoers rule for this binary (package upgrades).
    RefreshSudoers,
}

/// `edge-setup vnc [--offline DIR | --uninstall [--purge] | bundle DIR]`; waits
/// up to `package_wait` for another process's package-manager lock.
pub fn run(sys: &System, request: &Request, package_wait: Duration) -> Result<()> {
    match request {
        Request::Bundle { dir } => return bundle(sys, &Target::load(sys, package_wait)?, dir),
        Request::RefreshSudoers => return refresh_sudoers(sys),
        _ => {}
    }
    let uninstalling = matches!(request, Request::Uninstall { .. });
    sys.require_root(if uninstalling { "vnc --uninstall" } else { "vnc" })?;
    let target = Target::load(sys, package_wait)?;
    match request {
        Request::Uninstall { purge } => uninstall(sys, &target, *purge),
        Request::Install { offline } => install(sys, &target, offline.as_deref()),
        Request::Bundle { .. } | Request::RefreshSudoers => unreachable!("handled above"),
    }
}

/// The distribution and its package manager.
struct Target {
    os: OsRelease,
    family: Family,
    manager: Manager,
    /// How long to wait for another process's package-manager lock.
    package_wait: Duration,
}

impl Target {
    fn load(sys: &System, package_wait: Duration) -> Result<Target> {
        let os = sys.os_release()?;
        let family = os.family()?;
        let manager = Manager::detect(sys, family)?;
        Ok(Target {
            os,
            family,
            manager,
            package_wait,
        })
    }

    fn desktop(&self, sys: &System) -> Result<Desktop> {
        Desktop::configured(sys, &self.os, self.family)
    }
}

// ---- install ----------------------------------------------------------------------

/// Everything decided before the first change.
struct Plan {
    desktop: Desktop,
    missing: Vec<String>,
    offline: Option<OfflineDir>,
    /// The edge-setup binaries the sudoers rule names.
    exes: Vec<PathBuf>,
    hostname: Option<String>,
    listen: Listen,
    /// For the firewall rule; 0 with `vnc.listen = localhost`.
    highest_display: u32,
}

fn install(sys: &System, t: &Target, offline: Option<&Path>) -> Result<()> {
    let listen: Listen = Config::load(sys)?
        .get(sys, config::VNC_LISTEN)?
        .unwrap_or(Listen::Localhost);
    let desktop = t.desktop(sys)?;
    let installed = Installed::query(sys, t.family, &desktop.packages)?;
    let missing = installed.missing(&desktop.packages);
    let offline = offline
        .map(|dir| OfflineDir::scan(sys, t.manager, dir, &missing))
        .transpose()?;
    let plan = Plan {
        desktop,
        missing,
        offline,
        exes: sudoers_exes(sys)?,
        hostname: host_name(sys)?,
        listen,
        // read before any change: a mapping file edge-setup cannot parse stops the run here
        highest_display: match listen {
            Listen::Lan => firewall::highest_display(sys)?,
            Listen::Localhost => 0,
        },
    };

    let _lock = run_lock(sys)?;
    clean_stale(sys, Path::new(state::PATH))?;
    let mut state = State::load(sys)?;
    let recorded = state.clone();
    sys.out().progress(INSTALL_STEPS);
    let result = install_steps(sys, t, &plan, &mut state, &recorded);
    if result.is_err()
        && let Err(e) = record(sys, &state)
    {
        // The failure itself is what the user needs to see first.
        sys.out().warn(&format!("cannot record what was added: {e}"));
    }
    let changed = result?;
    sys.out().finish_bar();
    // Without changes, or in a dry run, the closing line is edge-setup's own ("Nothing to change.").
    if changed && !sys.dry_run() {
        sys.out().info(&if sys.is_image() {
            format!(
                "The VNC components are set up in the image {}{}.",
                sys.root_dir().display(),
                if sys.target_commands().is_empty() {
                    ""
                } else {
                    "; what needs the running appliance is recorded for its first boot (listed above)"
                }
            )
        } else {
            "The VNC components are installed.".to_string()
        });
    }
    sys.out().info(
        "Next: each user who needs a VNC desktop runs 'edge-setup vnc-user' (as that user) to set a password and get a display and port.",
    );
    Ok(())
}

/// What a step of the install did.
#[derive(Clone, Copy)]
struct Done {
    /// Anything changed (or, planned, would).
    changed: bool,
    /// A file was written, whose SELinux context may need restoring.
    wrote: bool,
}

impl Done {
    const NOTHING: Done = Done {
        changed: false,
        wrote: false,
    };
    const CHANGED: Done = Done {
        changed: true,
        wrote: false,
    };
    const WROTE: Done = Done {
        changed: true,
        wrote: true,
    };
}

/// The steps of an install, in order; `true` when anything changed (or would, or was planned).
fn install_steps(sys: &System, t: &Target, plan: &Plan, state: &mut State, recorded: &State) -> Result<bool> {
    let mut done = vec![
        install_packages(sys, t, plan, state)?,
        write_session(sys, plan, state)?,
        limit_stop_time(sys, t, state)?,
        resolve_host_name(sys, plan, state)?,
        create_group(sys, state)?,
        install_sudoers_rule(sys, plan, state)?,
        configure_firewall(sys, plan, state)?,
        move_legacy_user_files(sys, t)?,
    ];
    let wrote = done.iter().any(|d| d.wrote);
    check_selinux(sys, state, wrote)?;
    done.push(record_added(sys, state, recorded)?);
    Ok(done.iter().any(|d| d.changed))
}

/// 1. Packages, in one transaction, only those missing.
fn install_packages(sys: &System, t: &Target, plan: &Plan, state: &mut State) -> Result<Done> {
    if plan.missing.is_empty() {
        sys.out()
            .step("Checking the VNC packages")
            .done(&format!("all {} installed", plan.desktop.packages.len()));
    } else {
        let step = sys.out().step(&format!(
            "Installing {} packages with {}: {}",
            plan.missing.len(),
            t.manager.name(),
            plan.missing.join(" ")
        ));
        // Recorded first: a run killed during the install still lets --uninstall remove them.
        let before = state.packages.clone();
        state.packages.extend(plan.missing.iter().cloned());
        record(sys, state)?;
        let result = packages::install(
            sys,
            t.manager,
            &plan.missing,
            plan.offline.as_ref(),
            RETRY,
            t.package_wait,
        );
        let installed = match result {
            Ok(installed) => installed,
            Err(e) => {
                // Keep only what the failed transaction did install.
                let now = Installed::query(sys, t.family, &plan.missing)?;
                state.packages = before;
                state
                    .packages
                    .extend(plan.missing.iter().filter(|p| now.contains(p)).cloned());
                return Err(e);
            }
        };
        step.done(&if installed {
            applied(sys, "installed")
        } else {
            "left for the target (see the warning above)".to_string()
        });
        return Ok(Done::CHANGED);
    }
    Ok(Done::NOTHING)
}

/// 2. The desktop session.
fn write_session(sys: &System, plan: &Plan, state: &mut State) -> Result<Done> {
    let step = sys
        .out()
        .step("Writing the desktop session (fluxbox: right-click for xterm and Firefox)");
    let mut changes = Vec::new();
    for file in desktop::files(plan.desktop.firefox) {
        if state.files.insert(file.path.clone()) {
            record(sys, state)?;
        }
        changes.push(write_managed(
            sys,
            &file.path,
            file.contents.as_bytes(),
            FileSpec::root(file.mode),
        )?);
    }
    let change = combined(&changes);
    step.done(&format!("{} files {}", changes.len(), sys.change_word(change)));
    Ok(if change == Change::Unchanged {
        Done::NOTHING
    } else {
        Done::WROTE
    })
}

/// systemd reads a changed unit file on a running system; an image's systemd
/// reads them when it first boots, so there is nothing to run for it.
fn daemon_reload(sys: &System) -> Result<()> {
    if !sys.is_image() {
        sys.run(Cmd::new(Tool::Systemctl).arg("daemon-reload"))?;
    }
    Ok(())
}

/// 3. A stop timeout for the session units (`tigervnc::stop_dropin`), and a
///    daemon-reload when it changed so the next stop already uses it.
fn limit_stop_time(sys: &System, t: &Target, state: &mut State) -> Result<Done> {
    let path = tigervnc::stop_dropin(t.family);
    let step = sys.out().step(&format!(
        "Limiting how long a VNC session may take to stop (TimeoutStopSec={} in {path})",
        tigervnc::STOP_TIMEOUT
    ));
    if state.files.insert(path.clone()) {
        record(sys, state)?;
    }
    let change = write_managed(
        sys,
        &path,
        tigervnc::stop_dropin_text().as_bytes(),
        FileSpec::root(0o644),
    )?;
    if change != Change::Unchanged {
        daemon_reload(sys)?;
    }
    step.done(sys.change_word(change));
    Ok(if change == Change::Unchanged {
        Done::NOTHING
    } else {
        Done::WROTE
    })
}

/// 4. The host name must resolve, or Debian's TigerVNC refuses to start a session.
fn resolve_host_name(sys: &System, plan: &Plan, state: &mut State) -> Result<Done> {
    let step = sys.out().step("Making the host name resolve");
    match &plan.hostname {
        None => step.done("skipped: no valid host name in /etc/hostname"),
        Some(name) => {
            let hosts_path = Path::new("/etc/hosts");
            let hosts = sys.read_string(hosts_path)?.unwrap_or_default();
            if desktop::hosts_has_name(&hosts, name) {
                step.done(&format!("unchanged ({name} is in /etc/hosts)"));
            } else {
                let line = write_hosts_line(sys, state, &hosts, name)?;
                step.done(&format!(
                    "{} '{}' to /etc/hosts",
                    if sys.dry_run() { "would add" } else { "added" },
                    line.replace('\t', " ")
                ));
                return Ok(Done::WROTE);
            }
        }
    }
    Ok(Done::NOTHING)
}

/// On a clone of a golden image the host name may be new (cloud-init sets each
/// clone's), and Debian's TigerVNC starts no session for a name that does not
/// resolve. Where `edge-setup vnc` ran, /etc/hosts is made to name the host name
/// now: the line edge-setup added for the image's name is replaced, or one is
/// added. Whether /etc/hosts changed.
pub fn refresh_host_name(sys: &System) -> Result<bool> {
    let mut state = State::load(sys)?;
    let Some(name) = host_name(sys)?.filter(|_| !state.is_empty()) else {
        return Ok(false);
    };
    let hosts_path = Path::new("/etc/hosts");
    let hosts = sys.read_string(hosts_path)?.unwrap_or_default();
    if desktop::hosts_has_name(&hosts, &name) {
        return Ok(false);
    }
    let step = sys
        .out()
        .step(&format!("Making the host name {name} resolve for the VNC sessions"));
    let line = write_hosts_line(sys, &mut state, &hosts, &name)?;
    step.done(&format!(
        "{} '{}'",
        sys.word("wrote", "would write"),
        line.replace('\t', " ")
    ));
    Ok(true)
}

/// Appends edge-setup's line for `name` to /etc/hosts (text `hosts`), in place of
/// the line it recorded before (the record holds one: a renamed host's, or a
/// golden image's), keeping the file's owner and mode. The line is recorded
/// before the file is written, so `--uninstall` finds it even after a crash.
fn write_hosts_line(sys: &System, state: &mut State, hosts: &str, name: &str) -> Result<String> {
    let kept = state
        .hosts_line
        .as_deref()
        .and_then(|old| desktop::hosts_remove(hosts, old))
        .unwrap_or_else(|| hosts.to_string());
    let line = desktop::hosts_line(name);
    let spec = hosts_spec(sys)?.unwrap_or(FileSpec::root(0o644));
    state.hosts_line = Some(line.clone());
    record(sys, state)?;
    write_managed(sys, "/etc/hosts", desktop::hosts_append(&kept, &line).as_bytes(), spec)?;
    Ok(line)
}

/// /etc/hosts's owner and mode, which a rewrite keeps; `None` when it is missing.
fn hosts_spec(sys: &System) -> Result<Option<FileSpec>> {
    Ok(sys.meta(Path::new("/etc/hosts"))?.map(|m| FileSpec {
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
    }))
}

/// 5. The group whose members may run their part of vnc-user through sudo.
fn create_group(sys: &System, state: &mut State) -> Result<Done> {
    let step = sys.out().step(&format!("Creating the group {VNC_GROUP}"));
    if sys.users().group(VNC_GROUP)?.is_some() {
        step.done("unchanged (it exists)");
    } else {
        state.group_created = true;
        record(sys, state)?;
        sys.run(Cmd::new(Tool::Groupadd).args(["--system", VNC_GROUP]))?;
        step.done(&applied(sys, "created"));
        return Ok(Done::CHANGED);
    }
    Ok(Done::NOTHING)
}

/// 6. The sudoers rule, checked by visudo before it is put in place.
fn install_sudoers_rule(sys: &System, plan: &Plan, state: &mut State) -> Result<Done> {
    let step = sys.out().step(&format!("Installing the sudoers rule {SUDOERS_FILE}"));
    let Some(rule) = sudoers_rule_to_write(sys, &plan.exes)? else {
        step.done("unchanged");
        return Ok(Done::NOTHING);
    };
    if state.files.insert(SUDOERS_FILE.to_string()) {
        record(sys, state)?;
    }
    let change = write_managed(sys, SUDOERS_FILE, rule.as_bytes(), FileSpec::root(0o440))?;
    step.done(sys.change_word(change));
    if sys.is_image() && sys.meta(&plan.exes[0])?.is_none() {
        sys.out().warn(&format!(
            "the rule allows {} but the image has no edge-setup there: install it at that path in the image",
            plan.exes[0].display()
        ));
    }
    Ok(Done::WROTE)
}

/// The rule for `exes` when the sudoers file does not hold exactly it (root's,
/// mode 0440), checked by visudo where commands run; `None` when it does.
fn sudoers_rule_to_write(sys: &System, exes: &[PathBuf]) -> Result<Option<String>> {
    let rule = tigervnc::sudoers_rule(exes);
    let current = sys.read(Path::new(SUDOERS_FILE))?;
    let meta = sys.meta(Path::new(SUDOERS_FILE))?;
    if current.as_deref() == Some(rule.as_bytes()) && meta.is_some_and(|m| (m.mode, m.uid, m.gid) == (0o440, 0, 0)) {
        return Ok(None);
    }
    if sys.applies_commands() {
        validate_sudoers(sys, &rule)?;
    }
    Ok(Some(rule))
}

/// `edge-setup vnc refresh-sudoers`: the packages' maintainer scripts run it so
/// that an upgrade (from a copied binary, or from an earlier package) leaves
/// vncusers able to run `vnc-user`. It rewrites an existing rule only; the rule
/// is `edge-setup vnc`'s to create.
fn refresh_sudoers(sys: &System) -> Result<()> {
    sys.require_root("vnc refresh-sudoers")?;
    if sys.meta(Path::new(SUDOERS_FILE))?.is_none() {
        sys.out().info(&format!(
            "There is no sudoers rule {SUDOERS_FILE} ('edge-setup vnc' installs it): nothing to refresh."
        ));
        return Ok(());
    }
    let _lock = run_lock(sys)?;
    let exes = sudoers_exes(sys)?;
    let names: Vec<String> = exes.iter().map(|e| e.display().to_string()).collect();
    let step = sys.out().step(&format!(
        "Refreshing the sudoers rule {SUDOERS_FILE} for {}",
        names.join(" and ")
    ));
    let Some(rule) = sudoers_rule_to_write(sys, &exes)? else {
        step.done("unchanged");
        return Ok(());
    };
    let change = write_managed(sys, SUDOERS_FILE, rule.as_bytes(), FileSpec::root(0o440))?;
    step.done(sys.change_word(change));
    Ok(())
}

/// 7. The firewall, only for vnc.listen = lan.
fn configure_firewall(sys: &System, plan: &Plan, state: &mut State) -> Result<Done> {
    let step = sys.out().step("Configuring the firewall");
    let (wanted, none_found) = match plan.listen {
        Listen::Localhost => (None, false),
        Listen::Lan => match firewall::detect(sys)? {
            Some(backend) => (Some(Rule::new(backend, plan.highest_display)), false),
            None => (None, true),
        },
    };
    if wanted == state.firewall {
        match (&wanted, none_found) {
            (Some(rule), _) => step.done(&format!("unchanged ({})", rule.describe())),
            (None, true) => {
                step.done("no firewall found");
                sys.out().warn(
                    "vnc.listen = lan but neither firewalld, ufw nor nftables is installed: no port was opened; make sure TCP ports 5900-5999 reach this appliance",
                );
            }
            (None, false) => {
                step.done("nothing to open: vnc.listen = localhost (sessions are reached through the local agent)")
            }
        }
    } else {
        if let Some(old) = state.firewall {
            old.remove(sys)?;
            state.firewall = None;
            if old.backend == Backend::Nftables {
                state.files.remove(firewall::NFT_FILE);
            }
            record(sys, state)?;
        }
        let mut done = Done::CHANGED;
        let outcome = match wanted {
            Some(rule) => {
                state.firewall = Some(rule);
                if rule.backend == Backend::Nftables {
                    state.files.insert(firewall::NFT_FILE.to_string());
                    done = Done::WROTE;
                }
                record(sys, state)?;
                rule.apply(sys)?;
                format!("{} ({})", applied(sys, "opened"), rule.describe())
            }
            None => applied(sys, "closed again (vnc.listen = localhost)"),
        };
        step.done(&outcome);
        return Ok(done);
    }
    Ok(Done::NOTHING)
}

/// 8. SELinux: labels restored where files were written, and a warning when enforcing.
fn check_selinux(sys: &System, state: &State, wrote: bool) -> Result<()> {
    let step = sys.out().step("Checking SELinux");
    match selinux_mode(sys)? {
        None => step.done("not present"),
        Some(mode) if mode != "enforcing" => step.done(&mode),
        Some(_) => {
            if wrote {
                let mut paths: Vec<String> = state.files.iter().cloned().collect();
                paths.extend(desktop::DIRS.iter().map(|d| d.to_string()));
                paths.push("/etc/hosts".into());
                sys.run(Cmd::new(Tool::Restorecon).arg("-R").args(paths))?;
            }
            step.done("enforcing");
            sys.out().warn(
                "SELinux is enforcing. The appliance documentation says the VNC server does not work with SELinux enforcing: where that still applies, set SELINUX=permissive in /etc/selinux/config and reboot",
            );
        }
    }

    Ok(())
}

/// 9. What was added, for --uninstall.
fn record_added(sys: &System, state: &State, recorded: &State) -> Result<Done> {
    let step = sys
        .out()
        .step(&format!("Recording what edge-setup added in {}", state::PATH));
    state.save(sys)?;
    if *state == *recorded {
        step.done("unchanged");
        return Ok(Done::NOTHING);
    }
    step.done(if recorded.is_empty() {
        sys.change_word(Change::Created)
    } else {
        sys.change_word(Change::Updated)
    });
    Ok(Done::CHANGED)
}

/// Saves the state before the change it records (write-ahead), so that a run killed
/// half-way still lets --uninstall remove what it added. A dry run plans the same saves:
/// its plan is the run's (one change per file, however often it is saved).
fn record(sys: &System, state: &State) -> Result<()> {
    if state.is_empty() {
        // Nothing added (a failed first install): leave no state file behind.
        sys.remove(Path::new(state::PATH))?;
    } else {
        state.save(sys)?;
    }
    Ok(())
}

/// How a step reports a command: done, in the image in image mode, "would be" with --dry-run.
fn applied(sys: &System, done: &str) -> String {
    if sys.dry_run() {
        format!("would be {done}")
    } else if sys.is_image() {
        format!("{done} in the image")
    } else {
        done.to_string()
    }
}

fn combined(changes: &[Change]) -> Change {
    if changes.contains(&Change::Created) {
        Change::Created
    } else if changes.contains(&Change::Updated) {
        Change::Updated
    } else {
        Change::Unchanged
    }
}

/// Writes one of edge-setup's files, first removing temporary files an interrupted
/// (killed) run left beside it. Runs are serialised by the run lock, so no temporary
/// file of a live writer is touched.
fn write_managed(sys: &System, path: &str, contents: &[u8], spec: FileSpec) -> Result<Change> {
    let path = Path::new(path);
    clean_stale(sys, path)?;
    sys.write(path, contents, spec)
}

/// Removes the temporary files a killed run left beside `path` (`.NAME.XXXXXX.tmp`).
fn clean_stale(sys: &System, path: &Path) -> Result<()> {
    if sys.dry_run() {
        return Ok(());
    }
    for stale in sys.remove_stale_temps(path)? {
        sys.out().note(&format!(
            "removed {}, left by an interrupted run",
            sys.host_path(&stale).display()
        ));
    }
    Ok(())
}

fn run_lock(sys: &System) -> Result<Option<nix::fcntl::Flock<File>>> {
    let wait = Config::load(sys)?.lock_wait(sys)?;
    sys.lock(Path::new(RUN_LOCK), wait)
}

/// The edge-setup binaries the sudoers rule names: this one first, then each
/// earlier one the current rule names that is still installed where only root
/// can change it (a copy in /usr/local/bin that PATH still finds before the
/// package's, say). One that is gone, or that others may change, is dropped.
fn sudoers_exes(sys: &System) -> Result<Vec<PathBuf>> {
    let mut exes = vec![sudoers_exe(sys)?];
    let current = sys.read_string(Path::new(SUDOERS_FILE))?.unwrap_or_default();
    for earlier in tigervnc::sudoers_rule_exes(&current) {
        let present = match sys.is_image() {
            true => sys.meta(&earlier)?.is_some_and(|m| !m.is_dir),
            false => root_only(sys, &earlier).is_ok(),
        };
        if !present || exes.contains(&earlier) {
            continue;
        }
        // Any root-owned program at that path would run as root for every vncusers member:
        // only an edge-setup binary that has the hardened privileged part stays.
        match binary_version(sys, &earlier)? {
            Some(version) if version >= MIN_RULE_VERSION => {
                sys.out().warn(&format!(
                    "the sudoers rule keeps {} (edge-setup {}.{}.{}) besides {}: remove that copy once nothing uses it, then run: sudo edge-setup vnc refresh-sudoers",
                    earlier.display(),
                    version.0,
                    version.1,
                    version.2,
                    exes[0].display()
                ));
                exes.push(earlier);
            }
            _ => sys.out().warn(&format!(
                "dropping {} from the sudoers rule: it is not an edge-setup binary of version {}.{}.{} or later (edge-setup's binaries carry a mark naming their version)",
                earlier.display(),
                MIN_RULE_VERSION.0,
                MIN_RULE_VERSION.1,
                MIN_RULE_VERSION.2
            )),
        }
    }
    Ok(exes)
}

/// Every edge-setup binary carries this mark, so that root can tell one at a path an
/// earlier sudoers rule names from any other program without running it.
#[used]
static BINARY_MARK: &str = concat!("\0edge-setup-binary ", env!("CARGO_PKG_VERSION"), "\0");

/// The oldest edge-setup an earlier sudoers rule may keep naming (the first with the mark).
const MIN_RULE_VERSION: (u64, u64, u64) = (0, 1, 0);

/// The version in the mark of the edge-setup binary at `path`; `None` for any other file.
/// Read as a stream (a debug build is larger than `read` allows), through directories only
/// root can change, without following a link.
fn binary_version(sys: &System, path: &Path) -> Result<Option<(u64, u64, u64)>> {
    use std::io::Read;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let Some(dir) = sys.open_controlled_dir(parent)? else {
        return Ok(None);
    };
    let Some(Entry::File(fd, _)) = sys.open_controlled_entry(&dir, name)? else {
        return Ok(None);
    };
    let prefix = BINARY_MARK.split_inclusive(' ').next().unwrap_or_default().as_bytes();
    // what a mark cut at a chunk's end needs from the one before
    let keep = prefix.len() + 32;
    let mut file = File::from(fd);
    let mut chunk = vec![0u8; 1 << 16];
    let mut window: Vec<u8> = Vec::with_capacity(chunk.len() + keep);
    loop {
        let n = file
            .read(&mut chunk)
            .map_err(|e| Error::io("read", &sys.host_path(path), e))?;
        if n == 0 {
            return Ok(None);
        }
        window.extend_from_slice(&chunk[..n]);
        if let Some(version) = marked_version(&window, prefix) {
            return Ok(Some(version));
        }
        window.drain(..window.len().saturating_sub(keep));
    }
}

/// The first `prefix VERSION\0` in `bytes`.
fn marked_version(bytes: &[u8], prefix: &[u8]) -> Option<(u64, u64, u64)> {
    let mut rest = bytes;
    while let Some(at) = rest.windows(prefix.len()).position(|w| w == prefix) {
        rest = &rest[at + prefix.len()..];
        let end = rest.iter().take(32).position(|&b| b == 0);
        if let Some(version) = end
            .and_then(|end| std::str::from_utf8(&rest[..end]).ok())
            .and_then(parse_version)
        {
            return Some(version);
        }
    }
    None
}

fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// The edge-setup the sudoers rule names first. Live: this very binary, which must be
/// changeable by root only (else the rule would hand root to whoever can replace it).
/// Image: where the image has edge-setup, else /usr/bin/edge-setup (the packages' path).
fn sudoers_exe(sys: &System) -> Result<PathBuf> {
    if sys.is_image() {
        for candidate in IMAGE_EXE {
            if sys.meta(Path::new(candidate))?.is_some() {
                return Ok(PathBuf::from(candidate));
            }
        }
        return Ok(PathBuf::from(IMAGE_EXE[0]));
    }
    let exe = sys.current_exe()?;
    root_only(sys, &exe)?;
    Ok(exe)
}

/// Refuses a binary that anyone but root can replace: it and every directory above it.
fn root_only(sys: &System, exe: &Path) -> Result<()> {
    let hint = "install the edge-setup package (it puts the binary in /usr/bin), or copy it where only root can change it (sudo install -m 0755 edge-setup /usr/local/bin/), and run that one: 'sudo /usr/bin/edge-setup vnc'";
    for path in exe.ancestors().filter(|p| p.parent().is_some()) {
        match sys.meta(path)? {
            Some(m) if m.uid == 0 && m.mode & 0o022 == 0 => {}
            Some(_) => {
                return Err(Error::failure(format!(
                    "cannot let vncusers run {} through sudo: {} can be changed by users other than root",
                    exe.display(),
                    path.display()
                ))
                .why("the sudoers rule would let whoever can replace that file run anything as root")
                .hint(hint));
            }
            None => {
                return Err(Error::failure(format!("cannot find the edge-setup binary {}", exe.display())).hint(hint));
            }
        }
    }
    Ok(())
}

/// The host name TigerVNC resolves: the running one on a live system, the image's
/// /etc/hostname in image mode. `None` when there is no usable one.
fn host_name(sys: &System) -> Result<Option<String>> {
    let from_file = || -> Result<Option<String>> {
        Ok(sys
            .read_string(Path::new("/etc/hostname"))?
            .and_then(|t| t.lines().next().map(|l| l.trim().to_string())))
    };
    let name = match sys.hostname() {
        Some(n) => Some(n),
        None => from_file()?,
    };
    Ok(name.filter(|n| desktop::valid_hostname(n)))
}

fn validate_sudoers(sys: &System, rule: &str) -> Result<()> {
    let candidate = Path::new(SUDOERS_CANDIDATE);
    sys.write(candidate, rule.as_bytes(), FileSpec::root(0o440))?;
    let checked = sys.query(
        Cmd::new(Tool::Visudo)
            .args(["-c", "-f"])
            .arg(sys.host_path(candidate).display().to_string()),
    );
    sys.remove(candidate)?;
    match checked? {
        Some(out) if !out.success() => {
            let text = format!("{}{}", out.stdout, out.stderr);
            Err(Error::failure(format!(
                "the sudoers rule for vnc-user did not pass 'visudo -c'; {SUDOERS_FILE} was not installed"
            ))
            .why(text.trim())
            .hint("check that the path of the edge-setup binary has no unusual characters, then run 'sudo edge-setup vnc' again"))
        }
        _ => Ok(()),
    }
}

/// SELinux's mode in lower case (`enforcing`, `permissive`, `disabled`); `None` without SELinux.
fn selinux_mode(sys: &System) -> Result<Option<String>> {
    if sys.is_image() {
        let Some(text) = sys.read_string(Path::new("/etc/selinux/config"))? else {
            return Ok(None);
        };
        return Ok(text
            .lines()
            .find_map(|l| l.trim().strip_prefix("SELINUX="))
            .map(|v| v.trim().trim_matches('"').to_ascii_lowercase()));
    }
    if !packages::has_program(sys, "getenforce")? {
        return Ok(None);
    }
    Ok(sys
        .query(Cmd::new(Tool::Getenforce))?
        .filter(|o| o.success())
        .map(|o| o.stdout.trim().to_ascii_lowercase()))
}

// ---- uninstall ----------------------------------------------------------------------

fn uninstall(sys: &System, t: &Target, purge: bool) -> Result<()> {
    let _lock = run_lock(sys)?;
    clean_stale(sys, Path::new(state::PATH))?;
    let mut state = State::load(sys)?;
    let users = vnc_users(sys)?;
    let sudoers_present = sys.meta(Path::new(SUDOERS_FILE))?.is_some();
    let passwords_to_purge = purge && !users.is_empty();
    if state.is_empty() && !sudoers_present && !passwords_to_purge {
        sys.out().info(&format!(
            "Nothing to remove: 'edge-setup vnc' has not installed anything here ({} does not exist).",
            state::PATH
        ));
        return Ok(());
    }
    sys.out().progress(7);
    let result = uninstall_steps(sys, t, purge, &users, &mut state);
    if result.is_err()
        && let Err(e) = record(sys, &state)
    {
        sys.out().warn(&format!("cannot record what is left to remove: {e}"));
    }
    result?;
    sys.out().finish_bar();
    sys.out().info(if sys.dry_run() {
        "Dry run: nothing was changed; the lines above say what would be removed."
    } else {
        "The VNC components edge-setup added are removed."
    });
    if !purge && !users.is_empty() {
        sys.out().note(&format!(
            "the VNC password files of {} users are kept; 'sudo edge-setup vnc --uninstall --purge' removes them",
            users.len()
        ));
    }
    Ok(())
}

fn uninstall_steps(sys: &System, t: &Target, purge: bool, users: &[UserInfo], state: &mut State) -> Result<()> {
    let step = sys.out().step("Removing the firewall rule");
    match state.firewall {
        Some(rule) => {
            rule.remove(sys)?;
            state.firewall = None;
            state.files.remove(firewall::NFT_FILE);
            step.done(&format!("{} ({})", applied(sys, "removed"), rule.describe()));
        }
        None => step.done("none was added"),
    }

    let step = sys.out().step(&format!("Removing the sudoers rule {SUDOERS_FILE}"));
    let removed = sys.remove(Path::new(SUDOERS_FILE))?;
    state.files.remove(SUDOERS_FILE);
    step.done(if removed {
        sys.word("removed", "would be removed")
    } else {
        "absent"
    });

    let step = sys
        .out()
        .step("Removing the desktop session files and the session units' drop-in");
    let dropin = tigervnc::stop_dropin(t.family);
    let mut count = 0;
    let mut reload = false;
    for file in std::mem::take(&mut state.files) {
        let removed = sys.remove(Path::new(&file))?;
        reload |= removed && file == dropin;
        count += usize::from(removed);
    }
    for dir in desktop::DIRS
        .iter()
        .copied()
        .chain(Path::new(&dropin).parent().and_then(Path::to_str))
    {
        sys.remove_empty_dir(Path::new(dir))?;
    }
    if reload {
        daemon_reload(sys)?;
    }
    step.done(&format!("{count} removed"));

    let step = sys.out().step("Removing the host name line from /etc/hosts");
    match state.hosts_line.take() {
        None => step.done("none was added"),
        Some(line) => {
            let hosts_path = Path::new("/etc/hosts");
            let hosts = sys.read_string(hosts_path)?.unwrap_or_default();
            match (desktop::hosts_remove(&hosts, &line), hosts_spec(sys)?) {
                (Some(text), Some(spec)) => {
                    sys.write(hosts_path, text.as_bytes(), spec)?;
                    step.done(sys.word("removed", "would be removed"));
                }
                _ => step.done("already gone"),
            }
        }
    }

    let step = sys.out().step(&format!("Removing the group {VNC_GROUP}"));
    if !state.group_created {
        step.done("not created by edge-setup: kept");
    } else if sys.users().group(VNC_GROUP)?.is_some() {
        sys.run(Cmd::new(Tool::Groupdel).arg(VNC_GROUP))?;
        step.done(&applied(sys, "removed"));
    } else {
        step.done("already gone");
    }
    state.group_created = false;

    let step = sys.out().step("Removing the users' VNC password files");
    if purge {
        let mut removed = 0;
        for user in users {
            for dir in [".vnc", ".config/tigervnc"] {
                removed += usize::from(sys.remove_as(user, &user.home.join(dir).join("passwd"))?);
            }
        }
        step.done(&format!("{removed} removed"));
    } else {
        step.done("kept (--purge removes them)");
    }

    let step = sys.out().step("Removing the packages edge-setup installed");
    let recorded: Vec<String> = state.packages.iter().cloned().collect();
    let installed = Installed::query(sys, t.family, &recorded)?;
    let to_remove: Vec<String> = match &installed {
        Installed::Known(_) => recorded.iter().filter(|p| installed.contains(p)).cloned().collect(),
        Installed::Unknown => recorded.clone(),
    };
    if to_remove.is_empty() {
        step.done("none to remove");
    } else {
        packages::run(
            sys,
            t.manager,
            t.manager.remove_cmd(&to_remove),
            RETRY_UNINSTALL,
            t.package_wait,
        )?;
        step.done(&if sys.applies_commands() {
            format!("removed with {}: {}", t.manager.name(), to_remove.join(" "))
        } else {
            applied(sys, "removed")
        });
    }
    state.packages.clear();

    sys.remove(Path::new(state::PATH))?;
    Ok(())
}

/// 8. Users' files moved to TigerVNC 1.14's directory (`vnc_user::move_legacy_files`):
///    after an upgrade from an older TigerVNC their sessions would not come up.
fn move_legacy_user_files(sys: &System, t: &Target) -> Result<Done> {
    Ok(if vnc_user::move_legacy_files(sys, t.family)? {
        Done::WROTE
    } else {
        Done::NOTHING
    })
}

/// The users in the mapping files (either of them), as known to the system, by name.
fn vnc_users(sys: &System) -> Result<Vec<UserInfo>> {
    let (mappings, _) = vnc_user::load_mappings(sys)?;
    // after parsing, the appliance's file holds the users of both
    let names: BTreeSet<&str> = mappings.appliance.entries().map(|(name, _, _)| name).collect();
    let users = sys.users();
    let mut out = Vec::new();
    for name in names {
        if let Some(user) = users.by_name(name)? {
            out.push(user);
        }
    }
    Ok(out)
}

// ---- bundle -------------------------------------------------------------------------

/// Resolves the install as apt would on a system with nothing installed (an empty
/// dpkg status), so the bundle holds one consistent set: every dependency the
/// appliance may lack, and of each choice (`a | b`) only the one apt picks.
/// Listing every alternative instead (`apt-cache depends --recurse`) brings in
/// packages that conflict (libelogind0 and libsystemd0), which apt then refuses.
const APT_BUNDLE_SCRIPT: &str = concat!(
    r#"set -e; dir=$1; shift; status=$(mktemp); "#,
    r#"trap 'rm -f "$status"; rm -rf "$dir/partial" "$dir/lock"' EXIT; mkdir -p "$dir/partial"; "#,
    r#"apt-get install --download-only -y -q --no-install-recommends -o Dir::State::status="$status" "#,
    r#"-o Dir::Cache::archives="$dir" -o Debug::NoLocking=1 "$@""#
);

/// `edge-setup vnc bundle DIR`: every package the install needs, with all dependencies,
/// as package files in DIR, for `--offline DIR` on an appliance of the same distribution.
fn bundle(sys: &System, t: &Target, dir: &Path) -> Result<()> {
    let desktop = t.desktop(sys)?;
    let dir = std::path::absolute(dir)
        .map_err(|e| Error::bad_input(format!("cannot use {} for the bundle", dir.display())).why(e))?;
    match sys.meta(&dir)? {
        Some(m) if m.is_dir => {}
        Some(_) => {
            return Err(Error::bad_input(format!("{} is not a directory", dir.display()))
                .hint("name a new or existing directory: edge-setup vnc bundle DIR"));
        }
        None => {
            let spec = FileSpec {
                mode: 0o755,
                uid: sys.euid(),
                gid: sys.egid(),
            };
            sys.ensure_dir(&dir, spec)?;
        }
    }
    let retry = format!("edge-setup vnc bundle {}", dir.display());
    let host_dir = sys.host_path(&dir).display().to_string();
    // Commands name target paths, like every command edge-setup runs or prints; apt
    // runs in the image, but dnf and yum --installroot are the build host's.
    let cmd_dir = dir.display().to_string();
    let rpm_dir = if sys.is_image() {
        host_dir.clone()
    } else {
        cmd_dir.clone()
    };
    let step = sys.out().step(&format!(
        "Downloading {} packages and their dependencies into {host_dir}",
        desktop.packages.len()
    ));
    let count = match t.manager {
        Manager::Apt => {
            let download = Cmd::new(Tool::Sh)
                .args(["-c", APT_BUNDLE_SCRIPT, "sh"])
                .arg(cmd_dir.clone())
                .args(desktop.packages.iter().cloned());
            packages::download(sys, t.manager, download, &retry, t.package_wait)?;
            if sys.applies_commands() {
                let debs = sys.list_dir(&dir)?;
                Some(debs.iter().filter(|n| n.to_string_lossy().ends_with(".deb")).count())
            } else {
                None
            }
        }
        Manager::Dnf => {
            let cmd = Cmd::new(Tool::Dnf)
                .args(["download", "--resolve", "--alldeps", "--destdir", &rpm_dir])
                .args(desktop.packages.iter().cloned());
            packages::download(sys, t.manager, cmd, &retry, t.package_wait)?;
            None
        }
        Manager::Yum => {
            let cmd = Cmd::new(Tool::Yumdownloader)
                .args(["--resolve", "--destdir", &rpm_dir])
                .args(desktop.packages.iter().cloned());
            packages::download(sys, t.manager, cmd, &retry, t.package_wait)?;
            None
        }
    };
    step.done(&match count {
        Some(n) => format!("{n} packages"),
        None => applied(sys, "done"),
    });
    sys.out().info(&format!(
        "Copy {host_dir} to the appliance (same distribution and release) and run there: sudo edge-setup vnc --offline DIR"
    ));
    Ok(())
}

#[cfg(test)]
mod tests;
