//! The package manager of the target: apt, dnf or yum, which packages are installed
//! (one query), installs from the archive or from a directory of package files, its lock
//! and its errors. Used by `vnc` (the desktop), `remote_access` (the SSH server), and
//! whatever else installs or checks packages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::FileKind;
use crate::system::os_release::Family;
use crate::system::runner::{Cmd, Output, Program, Tool};

/// The package manager of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Dnf,
    Yum,
}

impl Manager {
    /// apt on Debian; dnf, else yum on the Red Hat family (dnf when the image has neither).
    pub fn detect(sys: &System, family: Family) -> Result<Manager> {
        Ok(match family {
            Family::Debian => Manager::Apt,
            Family::RedHat if has_program(sys, "dnf")? => Manager::Dnf,
            Family::RedHat if has_program(sys, "yum")? => Manager::Yum,
            Family::RedHat => Manager::Dnf,
        })
    }

    pub fn tool(self) -> Tool {
        match self {
            Manager::Apt => Tool::AptGet,
            Manager::Dnf => Tool::Dnf,
            Manager::Yum => Tool::Yum,
        }
    }

    pub fn name(self) -> &'static str {
        self.tool().name()
    }

    /// The package file extension of this manager.
    pub fn file_ext(self) -> &'static str {
        match self {
            Manager::Apt => "deb",
            Manager::Dnf | Manager::Yum => "rpm",
        }
    }

    /// Refreshes the package lists before an online install (dnf and yum do it themselves).
    pub fn update_cmd(self) -> Option<Cmd> {
        match self {
            Manager::Apt => Some(Cmd::new(Tool::AptGet).arg("update")),
            Manager::Dnf | Manager::Yum => None,
        }
    }

    /// Installs packages by name, or package files by path, in one transaction.
    pub fn install_cmd(self, items: &[String], files: bool) -> Cmd {
        match self {
            Manager::Apt => Cmd::new(Tool::AptGet).env("DEBIAN_FRONTEND", "noninteractive").args([
                "install",
                "-y",
                "--no-install-recommends",
            ]),
            Manager::Dnf | Manager::Yum if files => Cmd::new(self.tool()).args(["install", "-y", "--disablerepo=*"]),
            Manager::Dnf | Manager::Yum => Cmd::new(self.tool()).args(["install", "-y"]),
        }
        .args(items.iter().cloned())
    }

    /// Removes packages with the dependencies nothing else needs any more.
    pub fn remove_cmd(self, packages: &[String]) -> Cmd {
        match self {
            Manager::Apt => {
                Cmd::new(Tool::AptGet)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["remove", "-y", "--auto-remove"])
            }
            Manager::Dnf | Manager::Yum => Cmd::new(self.tool()).args(["remove", "-y"]),
        }
        .args(packages.iter().cloned())
    }

    /// The line that names the failure in the package manager's output: apt's `E:`
    /// lines, dnf's `Error:` and `No match for argument` lines, else the last line.
    pub fn error_lines(self, out: &Output) -> Vec<String> {
        let text = format!("{}\n{}", out.stderr, out.stdout);
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| match self {
                Manager::Apt => l.starts_with("E: "),
                Manager::Dnf | Manager::Yum => l.starts_with("Error") || l.starts_with("No match for argument"),
            })
            .map(str::to_string)
            .collect();
        if !lines.is_empty() {
            return lines;
        }
        let last = out
            .stderr
            .lines()
            .chain(out.stdout.lines())
            .rfind(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string());
        let status = match out.status {
            Some(code) => format!("{} exited with status {code}", self.name()),
            None => format!("{} was killed by a signal", self.name()),
        };
        vec![last.unwrap_or(status)]
    }

    pub fn classify(self, out: &Output) -> Failure {
        let text = format!("{}\n{}", out.stderr, out.stdout);
        let find = |patterns: &[&str]| {
            text.lines()
                .find(|l| patterns.iter().any(|p| l.contains(p)))
                .map(|l| l.trim().to_string())
        };
        if let Some(line) = find(LOCKED) {
            return Failure::Locked(line);
        }
        if let Some(line) = find(UNREACHABLE) {
            return Failure::Unreachable(line);
        }
        Failure::Other(self.error_lines(out))
    }
}

/// Another process holds the package manager's lock (apt fails at once; dnf and yum wait on their own).
const LOCKED: &[&str] = &[
    "Could not get lock",
    "Unable to acquire the dpkg frontend lock",
    "Unable to lock directory",
    "Unable to lock the administration directory",
];

/// The package repositories cannot be reached (network, DNS, proxy, mirror).
const UNREACHABLE: &[&str] = &[
    "Temporary failure resolving",
    "Could not resolve",
    "Failed to fetch",
    "Unable to connect to",
    "Could not connect to",
    "Network is unreachable",
    "Cannot download repomd.xml",
    "Failed to download metadata",
    "Errors during downloading metadata",
    "Curl error",
];

/// Why a package manager command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Locked(String),
    Unreachable(String),
    Other(Vec<String>),
}

/// Whether a program is installed under the root (/usr/sbin, /usr/bin, /sbin, /bin).
pub fn has_program(sys: &System, name: &str) -> Result<bool> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        if sys.meta(&Path::new(dir).join(name))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What is known about installed packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    Known(BTreeSet<String>),
    /// An RPM image on a build host without rpm: its database cannot be read, so nothing is assumed.
    Unknown,
}

impl Installed {
    /// Which of `packages` are installed, in one query: dpkg's status file on Debian
    /// (live and image alike), one `rpm -q` with every name on an RPM system (an
    /// image's with this host's `rpm --root`).
    pub fn query(sys: &System, family: Family, packages: &[String]) -> Result<Installed> {
        match family {
            Family::Debian => {
                let status = sys.read_string(Path::new(DPKG_STATUS))?.unwrap_or_default();
                Ok(Installed::Known(dpkg_installed(&status)))
            }
            Family::RedHat => {
                if packages.is_empty() {
                    return Ok(Installed::Known(BTreeSet::new()));
                }
                let cmd = Cmd::new(Tool::Rpm)
                    .args(["-q", "--qf", "%{NAME}\\n"])
                    .args(packages.iter().cloned());
                // an image's database is read with this host's rpm, where it has one
                let out = if !sys.is_image() {
                    sys.query(cmd)?
                } else if Tool::Rpm.locate().is_some() {
                    let mut image = Cmd::new(Tool::Rpm).arg(format!("--root={}", sys.root_dir().display()));
                    image.args.extend(cmd.args);
                    Some(sys.run_read_only(image)?)
                } else {
                    None
                };
                Ok(match out {
                    // rpm exits with the number of missing packages; its stdout says which are there.
                    Some(out) => Installed::Known(
                        out.stdout
                            .lines()
                            .map(str::trim)
                            .filter(|l| packages.iter().any(|p| p == l))
                            .map(str::to_string)
                            .collect(),
                    ),
                    None => Installed::Unknown,
                })
            }
        }
    }

    pub fn contains(&self, package: &str) -> bool {
        match self {
            Installed::Known(set) => set.contains(package),
            Installed::Unknown => false,
        }
    }

    pub fn missing(&self, packages: &[String]) -> Vec<String> {
        packages.iter().filter(|p| !self.contains(p)).cloned().collect()
    }
}

pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// The names of the installed packages in a dpkg status file.
pub fn dpkg_installed(status: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for stanza in status.split("\n\n") {
        let (mut name, mut installed) = (None, false);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.trim_end().ends_with(" installed");
            }
        }
        if let (Some(name), true) = (name, installed) {
            set.insert(name.to_string());
        }
    }
    set
}

/// The package name in a package file name: `name_version_arch.deb`,
/// `name-version-release.arch.rpm`.
pub fn package_of_file(file: &str, manager: Manager) -> Option<String> {
    match manager {
        Manager::Apt => {
            let stem = file.strip_suffix(".deb")?;
            let name = stem.split('_').next()?;
            (!name.is_empty() && stem.contains('_')).then(|| name.to_string())
        }
        Manager::Dnf | Manager::Yum => {
            let stem = file.strip_suffix(".rpm")?;
            let mut parts = stem.rsplitn(3, '-');
            let (_release, _version, name) = (parts.next()?, parts.next()?, parts.next()?);
            (!name.is_empty()).then(|| name.to_string())
        }
    }
}

/// A directory of package files for `--offline DIR`, checked before anything changes.
#[derive(Debug, Clone)]
pub struct OfflineDir {
    /// The directory: the target's, or in image mode the build host's.
    pub dir: PathBuf,
    /// (package name, file name), sorted by file name.
    pub files: Vec<(String, String)>,
    /// Image mode: `dir` is on the build host, and apt in the image sees it at IMAGE_BUNDLE.
    on_host: bool,
}

/// Where apt in an image sees a bundle of the build host (bound there read-only, for the run).
const IMAGE_BUNDLE: &str = "/run/edge-setup-bundle";

impl OfflineDir {
    /// Validates DIR: it exists, holds package files of this distribution's kind, and
    /// one for every package still missing. Bad input otherwise (nothing changed).
    pub fn scan(sys: &System, manager: Manager, dir: &Path, missing: &[String]) -> Result<OfflineDir> {
        let dir = std::path::absolute(dir)
            .map_err(|e| Error::bad_input(format!("cannot use {} for --offline", dir.display())).why(e))?;
        let remake = "prepare it on a machine with the same distribution and a network: edge-setup vnc bundle DIR";
        // In an image the bundle is the build host's, like every file named on the command line.
        let on_host = sys.is_image();
        let shown = if on_host { dir.clone() } else { sys.host_path(&dir) };
        let names = if on_host {
            std::fs::read_dir(&dir)
                .and_then(|entries| {
                    entries
                        .map(|e| e.map(|e| e.file_name()))
                        .collect::<std::io::Result<Vec<_>>>()
                })
                .ok()
        } else {
            match sys.meta(&dir)? {
                Some(m) if m.is_dir => Some(sys.list_dir(&dir)?),
                _ => None,
            }
        };
        let Some(names) = names else {
            return Err(Error::bad_input(format!("--offline {}: no such directory", shown.display())).hint(remake));
        };
        let ext = manager.file_ext();
        let mut files = Vec::new();
        let mut other_kind = false;
        for name in names {
            let name = name.to_string_lossy().into_owned();
            match package_of_file(&name, manager) {
                Some(package) => files.push((package, name)),
                None => other_kind |= name.ends_with(".deb") || name.ends_with(".rpm"),
            }
        }
        if files.is_empty() {
            let why = if other_kind {
                format!(
                    "it holds package files of another distribution family; this {} system needs .{ext} files",
                    manager.name()
                )
            } else {
                format!("it holds no .{ext} package files")
            };
            return Err(
                Error::bad_input(format!("--offline {}: no packages to install", shown.display()))
                    .why(why)
                    .hint(remake),
            );
        }
        let absent: Vec<&String> = missing
            .iter()
            .filter(|p| !files.iter().any(|(name, _)| name == *p))
            .collect();
        if !absent.is_empty() {
            return Err(Error::bad_input(format!(
                "--offline {}: the directory lacks {}",
                shown.display(),
                absent.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .hint(format!("make the bundle again with this configuration ({remake})")));
        }
        // the build host's bundle is for the image alone: not left for a target that lacks it
        if on_host && let Err(why) = in_image(sys, manager, &Cmd::new(manager.tool()), Some(&dir))? {
            return Err(Error::failure(format!(
                "cannot install from {} into the image on this host",
                shown.display()
            ))
            .why(why)
            .hint("run it as root on a build host that can (see \"Golden images\" in the README: what needs what); nothing was changed"));
        }
        files.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(OfflineDir { dir, files, on_host })
    }

    /// Installs the missing packages from the directory in one transaction. apt gets
    /// the directory as its only source, a one-off local repository, and resolves as it
    /// does online: it installs what is missing and upgrades an installed package only
    /// where a bundled one needs its newer version (the bundle's perl needs its
    /// perl-base). Handing apt the files instead can do neither: files of installed
    /// packages left out cannot upgrade them, and every file given is installed.
    /// dnf and yum take every file and skip what is installed.
    pub fn install_cmd(&self, manager: Manager, missing: &[String]) -> Cmd {
        let dir = match (self.on_host, manager) {
            (true, Manager::Apt) => IMAGE_BUNDLE.to_string(),
            // dnf --installroot reads package files of the host
            _ => self.dir.display().to_string(),
        };
        match manager {
            Manager::Apt => Cmd::new(Tool::Sh)
                .args(["-c", APT_OFFLINE_SCRIPT, "sh", &dir])
                .args(missing.iter().cloned()),
            Manager::Dnf | Manager::Yum => {
                let files = self
                    .files
                    .iter()
                    .map(|(_, file)| self.dir.join(file).display().to_string());
                manager.install_cmd(&files.collect::<Vec<_>>(), true)
            }
        }
    }
}

/// `sh -c SCRIPT sh DIR PACKAGE...`: indexes DIR's .deb files with dpkg-deb (always on
/// Debian) into a Packages file in a temporary directory, so the bundle itself is only
/// read (it may be a read-only medium), and runs apt with that index as its only source:
/// the system's source lists, lists and archive cache are neither used nor changed.
const APT_OFFLINE_SCRIPT: &str = concat!(
    r#"set -e; dir=$1; shift; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; "#,
    // apt reads the index as its unprivileged _apt user.
    r#"chmod 755 "$tmp"; mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/parts"; "#,
    r#"ln -s "$dir" "$tmp/pool"; "#,
    r#"for f in "$dir"/*.deb; do dpkg-deb -f "$f"; "#,
    r#"printf 'Filename: pool/%s\nSize: %s\nSHA256: %s\n\n' "${f##*/}" "$(stat -c %s "$f")" "#,
    r#""$(sha256sum < "$f" | cut -d' ' -f1)"; done > "$tmp/Packages"; "#,
    r#"echo "deb [trusted=yes] file:$tmp ./" > "$tmp/sources.list"; "#,
    r#"apt() { apt-get -q -o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts="$tmp/parts" "#,
    r#"-o Dir::State::Lists="$tmp/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "#,
    r#"-o Dir::Cache::archives="$tmp/archives" "$@"; }; "#,
    r#"export DEBIAN_FRONTEND=noninteractive; apt update; apt -y --no-install-recommends install "$@""#
);

/// How long to wait for another process's package manager lock: the
/// caller's `EDGE_SETUP_LOCK_TIMEOUT` seconds, default 300.
pub fn lock_timeout(env: &std::collections::HashMap<String, String>) -> Duration {
    let secs = env
        .get("EDGE_SETUP_LOCK_TIMEOUT")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Installs the `missing` packages in one transaction: from the repositories
/// (apt's lists refreshed first) or from `offline`. In an image the image's own
/// package manager does it (`in_image`). `false` when it could not be done here
/// and was left for the target.
pub fn install(
    sys: &System,
    manager: Manager,
    missing: &[String],
    offline: Option<&OfflineDir>,
    retry_command: &str,
    timeout: Duration,
) -> Result<bool> {
    if let Some(dir) = offline {
        let bundle = dir.on_host.then_some(dir.dir.as_path());
        return run_bound(
            sys,
            manager,
            dir.install_cmd(manager, missing),
            bundle,
            retry_command,
            timeout,
        );
    }
    // where the update is left for the target, so is the install (for the same reason)
    let updated = match manager.update_cmd() {
        Some(update) => run(sys, manager, update, retry_command, timeout)?,
        None => true,
    };
    let installed = run(
        sys,
        manager,
        manager.install_cmd(missing, false),
        retry_command,
        timeout,
    )?;
    Ok(updated && installed)
}

/// Runs a package manager command (in an image, against the image); while
/// another process holds the lock it says so and retries for up to `timeout`.
/// Failures become errors that say what to do. `false` when it could not be
/// run here and was left for the target.
pub fn run(sys: &System, manager: Manager, cmd: Cmd, retry_command: &str, timeout: Duration) -> Result<bool> {
    run_bound(sys, manager, cmd, None, retry_command, timeout)
}

/// Runs a package manager command that only downloads (a bundle): in an image
/// with the image's package manager, or an error where this host cannot.
pub fn download(sys: &System, manager: Manager, cmd: Cmd, retry_command: &str, timeout: Duration) -> Result<()> {
    if sys.is_image()
        && let Err(why) = in_image(sys, manager, &cmd, None)?
    {
        return Err(Error::failure("cannot download with the image's package manager on this host")
            .why(why)
            .hint(format!(
                "run '{retry_command}' as root on a build host that can (see \"Golden images\" in the README), or on a running machine of the image's release"
            )));
    }
    run(sys, manager, cmd, retry_command, timeout).map(|_| ())
}

/// `run`, with an image's package manager seeing `bundle` of the build host at IMAGE_BUNDLE.
fn run_bound(
    sys: &System,
    manager: Manager,
    cmd: Cmd,
    bundle: Option<&Path>,
    retry_command: &str,
    timeout: Duration,
) -> Result<bool> {
    let in_image = if sys.is_image() {
        match in_image(sys, manager, &cmd, bundle)? {
            Ok(host_cmd) => Some(host_cmd),
            Err(why) => {
                sys.defer(&cmd, Some(why))?;
                return Ok(false);
            }
        }
    } else {
        None
    };
    let start = Instant::now();
    let mut announced = false;
    loop {
        let out = match &in_image {
            Some(host_cmd) => sys.run_in_image_unchecked(host_cmd.clone())?,
            None => sys.run_unchecked(cmd.clone())?,
        };
        let Some(out) = out else {
            return Ok(true);
        };
        if out.success() {
            if in_image.is_some() {
                sys.settle(&cmd)?;
            }
            return Ok(true);
        }
        match manager.classify(&out) {
            Failure::Locked(line) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(Error::failure(format!(
                        "the package manager is busy: another process has held its lock for {} s",
                        waited.as_secs()
                    ))
                    .why(line)
                    .hint(format!(
                        "wait until that process (often automatic updates) has finished, then run '{retry_command}' again; EDGE_SETUP_LOCK_TIMEOUT=SECONDS waits longer"
                    )));
                }
                if !announced {
                    sys.out().info(&format!(
                        "    waiting for the package manager lock, up to {} s: {line}",
                        timeout.as_secs()
                    ));
                    announced = true;
                }
                std::thread::sleep(Duration::from_secs(2).min(timeout - waited));
            }
            Failure::Unreachable(line) => return Err(unreachable(manager, line)),
            Failure::Other(lines) => return Err(failed(manager, &cmd, lines, retry_command)),
        }
    }
}

/// Prepares an image's file systems for its package manager in a mount
/// namespace of its own (what it mounts is gone with it, whatever happens):
/// /proc, /sys and /dev of this host, an empty /run (no running systemd for
/// the maintainer scripts to talk to), the bundle read-only, and a
/// policy-rc.d that keeps them from starting services (the image's own is
/// kept); then runs the command in the image with chroot.
/// `sh -c SCRIPT edge-setup ROOT BUNDLE|'' PROGRAM ARG...`
const IMAGE_SCRIPT: &str = concat!(
    r#"set -e; root=$1; bundle=$2; shift 2; "#,
    r#"mount -t proc proc "$root/proc"; mount --rbind /sys "$root/sys"; mount --rbind /dev "$root/dev"; "#,
    r#"mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"; "#,
    r#"if [ -n "$bundle" ]; then mkdir "$root/run/edge-setup-bundle"; "#,
    r#"mount --bind -o ro "$bundle" "$root/run/edge-setup-bundle"; fi; "#,
    r#"policy="$root/usr/sbin/policy-rc.d"; "#,
    r#"if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then "#,
    r#"printf '#!/bin/sh
# edge-setup: no service starts in an image
exit 101
' > "$policy"; "#,
    r#"chmod 755 "$policy"; trap 'rm -f "$policy"' EXIT; fi; "#,
    r#"chroot "$root" "$@""#
);

/// The command of this host that runs the package manager's `cmd` against the
/// image: for apt the image's own apt in a chroot (IMAGE_SCRIPT in a mount
/// namespace of its own), for dnf and yum this host's with `--installroot`.
/// `Err` says why this host cannot, and nothing was changed.
fn in_image(
    sys: &System,
    manager: Manager,
    cmd: &Cmd,
    bundle: Option<&Path>,
) -> Result<std::result::Result<Cmd, String>> {
    let root = sys.root_dir().display().to_string();
    let Program::Tool(tool) = cmd.program else {
        return Ok(Err(format!(
            "{} is not a package manager's command",
            cmd.program.name()
        )));
    };
    if manager != Manager::Apt {
        if sys.host_tool(tool).is_none() {
            return Ok(Err(format!(
                "this build host has no {0}, which installs into an image with {0} --installroot",
                tool.name()
            )));
        }
        let mut host = Cmd::new(tool)
            .arg(format!("--installroot={root}"))
            .args(cmd.args.iter().cloned());
        host.env = cmd.env.clone();
        return Ok(Ok(host));
    }
    if !sys.is_root() {
        return Ok(Err(
            "installing packages into an image needs root on the build host (chroot and mounts)".into(),
        ));
    }
    let mut sh = None;
    for host_tool in [Tool::Unshare, Tool::Chroot, Tool::Sh] {
        match sys.host_tool(host_tool) {
            Some(path) => sh = Some(path),
            None => {
                return Ok(Err(format!(
                    "this build host has no {} (looked for {})",
                    host_tool.name(),
                    host_tool.paths().join(", ")
                )));
            }
        }
    }
    for dir in ["/proc", "/sys", "/dev", "/run", "/usr/sbin"] {
        if sys.kind(Path::new(dir))? != Some(FileKind::Dir) {
            return Ok(Err(format!("the image has no directory {dir}")));
        }
    }
    let mut program = None;
    for path in tool.paths() {
        if matches!(sys.kind(Path::new(path))?, Some(FileKind::File | FileKind::Link)) {
            program = Some(*path);
            break;
        }
    }
    let Some(program) = program else {
        return Ok(Err(format!(
            "the image has no {} ({})",
            tool.name(),
            tool.paths().join(", ")
        )));
    };
    let sh = sh.expect("found above").display().to_string();
    let mut host = Cmd::new(Tool::Unshare)
        .args(["--mount", "--fork", "--", &sh, "-c", IMAGE_SCRIPT, "edge-setup", &root])
        .arg(bundle.map(|b| b.display().to_string()).unwrap_or_default())
        .arg(program)
        .args(cmd.args.iter().cloned());
    host.env = cmd.env.clone();
    Ok(Ok(host))
}

fn unreachable(manager: Manager, line: String) -> Error {
    let sources = match manager {
        Manager::Apt => "/etc/apt/sources.list and /etc/apt/sources.list.d/",
        Manager::Dnf | Manager::Yum => "/etc/yum.repos.d/",
    };
    Error::failure("the appliance cannot reach its package repositories")
        .why(line)
        .hint(format!(
            "the appliance must reach its package repositories: check the network, DNS, proxy and {sources}, then run 'sudo edge-setup vnc' again; without internet, prepare the packages on another machine with 'edge-setup vnc bundle DIR' and install them here with 'sudo edge-setup vnc --offline DIR'"
        ))
}

fn failed(manager: Manager, cmd: &Cmd, lines: Vec<String>, retry_command: &str) -> Error {
    let mut hint = format!(
        "the system is as {} left it; fix the cause above and run '{retry_command}' again",
        manager.name()
    );
    if manager == Manager::Apt {
        hint.push_str(" (if an install was interrupted, 'sudo dpkg --configure -a' finishes it first)");
    }
    if lines.iter().any(|l| l.contains("fluxbox")) && manager != Manager::Apt {
        hint.push_str(
            "; on RHEL, Rocky, Alma and CentOS fluxbox comes from EPEL: 'sudo dnf install -y epel-release' (on RHEL, enable the CodeReady Builder repository too)",
        );
    }
    Error::failure(format!("`{cmd}` failed"))
        .why(lines.join("\n"))
        .hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn which(program: &str) -> Option<PathBuf> {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    }

    /// Builds a minimal .deb with dpkg-deb.
    fn deb(dir: &Path, name: &str, version: &str, depends: Option<&str>) {
        let src = dir.join(format!("src-{name}"));
        std::fs::create_dir_all(src.join("DEBIAN")).unwrap();
        let depends = depends.map(|d| format!("Depends: {d}\n")).unwrap_or_default();
        std::fs::write(
            src.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.com>\n{depends}Description: test\n"
            ),
        )
        .unwrap();
        let out = dir.join("bundle").join(format!("{name}_{version}_all.deb"));
        let status = std::process::Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&src)
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The offline script against the real apt of this (Debian) machine, with apt-get
    /// wrapped to only download: apt must resolve the dependency from the
    /// bundle alone and leave the system's lists and the bundle untouched.
    #[test]
    fn apt_offline_script_resolves_from_the_bundle_alone() {
        if which("apt-get").is_none() || which("dpkg-deb").is_none() {
            eprintln!("skipped: needs apt-get and dpkg-deb (a Debian machine)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("bundle")).unwrap();
        deb(
            tmp.path(),
            "edge-setup-test-app",
            "1.0",
            Some("edge-setup-test-lib (>= 2)"),
        );
        deb(tmp.path(), "edge-setup-test-lib", "2.1", None);
        deb(tmp.path(), "edge-setup-test-unneeded", "1.0", None);
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let real = which("apt-get").unwrap();
        let wrapper = bin.join("apt-get");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\ncase \"$*\" in *' install '*) exec {} --download-only \"$@\";; esac\nexec {} \"$@\"\n",
                real.display(),
                real.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let before: Vec<_> = std::fs::read_dir(tmp.path().join("bundle")).unwrap().collect();
        let out = std::process::Command::new("sh")
            .args(["-c", APT_OFFLINE_SCRIPT, "sh"])
            .arg(tmp.path().join("bundle"))
            .arg("edge-setup-test-app")
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Fetched through the index (Filename, Size and SHA256 checked by apt).
        assert!(stdout.contains(" edge-setup-test-lib 2.1 ["), "{stdout}");
        assert!(stdout.contains(" edge-setup-test-app 1.0 ["), "{stdout}");
        assert!(stdout.contains("Download complete"), "{stdout}");
        assert!(!stdout.contains("edge-setup-test-unneeded"), "{stdout}");
        let after: Vec<_> = std::fs::read_dir(tmp.path().join("bundle")).unwrap().collect();
        assert_eq!(before.len(), after.len(), "the bundle was written to");
    }

    #[test]
    fn dpkg_status_gives_installed_names() {
        let status = "Package: xterm\nStatus: install ok installed\nVersion: 379-1\n\n\
                      Package: fluxbox\nStatus: deinstall ok config-files\n\n\
                      Package: sudo\nArchitecture: amd64\nStatus: install ok installed\n";
        let set = dpkg_installed(status);
        assert!(set.contains("xterm") && set.contains("sudo"));
        assert!(!set.contains("fluxbox"));
    }

    #[test]
    fn package_names_from_file_names() {
        assert_eq!(
            package_of_file("tigervnc-common_1.12.0+dfsg-8_amd64.deb", Manager::Apt).as_deref(),
            Some("tigervnc-common")
        );
        assert_eq!(
            package_of_file("xorg-x11-xauth-1.1-10.el9.x86_64.rpm", Manager::Dnf).as_deref(),
            Some("xorg-x11-xauth")
        );
        assert_eq!(package_of_file("README", Manager::Apt), None);
        assert_eq!(package_of_file("x.rpm", Manager::Apt), None);
        assert_eq!(package_of_file("x_1_all.deb", Manager::Dnf), None);
    }

    #[test]
    fn failures_are_classified() {
        let apt = Manager::Apt;
        let locked = Output::failed(
            100,
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)\n",
        );
        assert!(matches!(apt.classify(&locked), Failure::Locked(l) if l.contains("812")));
        let offline = Output::failed(
            100,
            "E: Failed to fetch http://deb.debian.org/debian/pool/main/x/xterm.deb  Temporary failure resolving 'deb.debian.org'\n",
        );
        assert!(matches!(apt.classify(&offline), Failure::Unreachable(_)));
        let broken = Output::failed(
            100,
            "Reading package lists...\nE: Unable to locate package tigervnc-nope\nE: Couldn't find any package\n",
        );
        assert_eq!(
            apt.classify(&broken),
            Failure::Other(vec![
                "E: Unable to locate package tigervnc-nope".into(),
                "E: Couldn't find any package".into()
            ])
        );
        let dnf = Output::failed(
            1,
            "No match for argument: fluxbox\nError: Unable to find a match: fluxbox\n",
        );
        assert_eq!(
            Manager::Dnf.classify(&dnf),
            Failure::Other(vec![
                "No match for argument: fluxbox".into(),
                "Error: Unable to find a match: fluxbox".into()
            ])
        );
        let repo = Output::failed(
            1,
            "Errors during downloading metadata for repository 'baseos':\nError: Failed to download metadata for repo 'baseos'\n",
        );
        assert!(matches!(Manager::Dnf.classify(&repo), Failure::Unreachable(_)));
        assert_eq!(
            apt.error_lines(&Output::failed(1, "")),
            vec!["apt-get exited with status 1".to_string()]
        );
    }

    #[test]
    fn commands_name_the_manager_and_every_package() {
        let pk = vec!["xterm".to_string(), "fluxbox".to_string()];
        assert_eq!(
            Manager::Apt.install_cmd(&pk, false).line(),
            "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends xterm fluxbox"
        );
        assert_eq!(
            Manager::Dnf.install_cmd(&pk, false).line(),
            "dnf install -y xterm fluxbox"
        );
        assert_eq!(
            Manager::Dnf.install_cmd(&["/b/x.rpm".into()], true).line(),
            "dnf install -y '--disablerepo=*' /b/x.rpm"
        );
        assert_eq!(
            Manager::Apt.remove_cmd(&pk).line(),
            "DEBIAN_FRONTEND=noninteractive apt-get remove -y --auto-remove xterm fluxbox"
        );
    }

    mod image {
        use super::super::*;
        use crate::system::Mode;
        use crate::system::offline::{PENDING, Pending};
        use crate::testkit::Fixture;

        const WAIT: Duration = Duration::from_secs(1);

        /// A Debian image tree with what the chroot needs.
        fn debian_image() -> Fixture {
            let f = Fixture::debian();
            for dir in ["proc", "sys", "dev", "run", "usr/sbin"] {
                std::fs::create_dir_all(f.root().join(dir)).unwrap();
            }
            f.write("/usr/bin/apt-get", "");
            f.write("/bin/sh", "");
            f
        }

        fn pkgs() -> Vec<String> {
            vec!["xterm".into(), "fluxbox".into()]
        }

        fn left(sys: &System) -> Vec<(String, String)> {
            Pending::load(sys)
                .unwrap()
                .steps
                .iter()
                .map(|s| (s.line(), s.left.clone().unwrap_or_default()))
                .collect()
        }

        #[test]
        fn apt_runs_in_the_image_in_a_chroot_of_its_own_mount_namespace() {
            let f = debian_image();
            let sys = f.system(Mode::Image, false);
            assert!(install(&sys, Manager::Apt, &pkgs(), None, "retry", WAIT).unwrap());
            let root = f.root().display().to_string();
            let calls = f.fake.calls();
            assert_eq!(calls.len(), 2, "{:?}", f.fake.lines());
            for (call, tail) in calls.iter().zip([
                vec!["/usr/bin/apt-get", "update"],
                vec![
                    "/usr/bin/apt-get",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "xterm",
                    "fluxbox",
                ],
            ]) {
                assert_eq!(call.program.name(), "unshare");
                assert_eq!(&call.args[..4], ["--mount", "--fork", "--", "/bin/sh"]);
                assert_eq!(call.args[5], IMAGE_SCRIPT);
                // the image, no bundle, then the image's own apt-get
                assert_eq!(&call.args[6..9], ["edge-setup", root.as_str(), ""]);
                assert_eq!(&call.args[9..], tail.as_slice());
            }
            assert_eq!(
                calls[1].env,
                [("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())]
            );
            assert!(!f.exists(PENDING));
            assert!(sys.target_commands().is_empty());
        }

        #[test]
        fn a_host_that_cannot_leaves_the_install_for_the_target_and_says_why() {
            let f = Fixture::debian();
            let sys = f.system(Mode::Image, false);
            assert!(!install(&sys, Manager::Apt, &pkgs(), None, "retry", WAIT).unwrap());
            assert!(f.fake.calls().is_empty());
            let why = "the image has no directory /proc";
            assert_eq!(
                left(&sys),
                [
                    ("apt-get update".to_string(), why.to_string()),
                    (
                        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends xterm fluxbox"
                            .to_string(),
                        why.to_string()
                    )
                ]
            );
            assert!(sys.first_boot_commands().is_empty());
            assert!(
                f.err
                    .text()
                    .contains("the first boot cannot do it (the image has no directory /proc)")
            );
            // again for another reason: the same two steps, with the latest reason
            let user = f.system(Mode::Image, false).with_ids(1000, 1000);
            install(&user, Manager::Apt, &pkgs(), None, "retry", WAIT).unwrap();
            let again = left(&user);
            assert_eq!(again.len(), 2, "{again:?}");
            assert!(again.iter().all(|(_, why)| why.contains("needs root")), "{again:?}");

            let user = debian_image();
            let sys = user.system(Mode::Image, false).with_ids(1000, 1000);
            install(&sys, Manager::Apt, &pkgs(), None, "retry", WAIT).unwrap();
            assert!(
                left(&sys)[0].1.contains("needs root on the build host"),
                "{:?}",
                left(&sys)
            );
            // done by root later: nothing is left
            install(
                &user.system(Mode::Image, false),
                Manager::Apt,
                &pkgs(),
                None,
                "retry",
                WAIT,
            )
            .unwrap();
            assert!(!user.exists(PENDING));
        }

        #[test]
        fn dnf_installs_with_installroot_from_the_build_host() {
            let f = Fixture::with_os_release(crate::testkit::ROCKY_9);
            let sys = f.system(Mode::Image, false);
            assert!(install(&sys, Manager::Dnf, &pkgs(), None, "retry", WAIT).unwrap());
            assert_eq!(
                f.fake.lines(),
                [format!(
                    "dnf --installroot={} install -y xterm fluxbox",
                    f.root().display()
                )]
            );
            let g = Fixture::with_os_release(crate::testkit::ROCKY_9);
            g.fake.without(Tool::Dnf);
            let sys = g.system(Mode::Image, false);
            assert!(!install(&sys, Manager::Dnf, &pkgs(), None, "retry", WAIT).unwrap());
            assert_eq!(
                left(&sys),
                [(
                    "dnf install -y xterm fluxbox".to_string(),
                    "this build host has no dnf, which installs into an image with dnf --installroot".to_string()
                )]
            );
        }

        #[test]
        fn an_rpm_image_is_queried_with_the_hosts_rpm() {
            let f = Fixture::with_os_release(crate::testkit::ROCKY_9);
            f.fake.respond("rpm", Output::ok("xterm\n"));
            let sys = f.system(Mode::Image, false);
            let installed = Installed::query(&sys, Family::RedHat, &pkgs()).unwrap();
            assert_eq!(installed.missing(&pkgs()), ["fluxbox"]);
            assert_eq!(
                f.fake.lines(),
                [format!(
                    "rpm --root={} -q --qf '%{{NAME}}\\n' xterm fluxbox",
                    f.root().display()
                )]
            );
        }

        #[test]
        fn a_bundle_of_the_build_host_is_bound_into_the_image() {
            let f = debian_image();
            let bundle = tempfile::tempdir().unwrap();
            for name in ["xterm_1_amd64.deb", "fluxbox_1_amd64.deb"] {
                std::fs::write(bundle.path().join(name), "").unwrap();
            }
            let sys = f.system(Mode::Image, false);
            let dir = OfflineDir::scan(&sys, Manager::Apt, bundle.path(), &pkgs()).unwrap();
            assert!(install(&sys, Manager::Apt, &pkgs(), Some(&dir), "retry", WAIT).unwrap());
            let call = &f.fake.calls()[0];
            assert_eq!(call.args[8], bundle.path().display().to_string());
            // the offline script reads it where the mount puts it
            assert_eq!(&call.args[9..12], ["/bin/sh", "-c", APT_OFFLINE_SCRIPT]);
            assert_eq!(&call.args[12..], ["sh", IMAGE_BUNDLE, "xterm", "fluxbox"]);
            // a directory that is only in the image is not the build host's
            f.write("/srv/bundle/xterm_1_amd64.deb", "");
            let e = OfflineDir::scan(&sys, Manager::Apt, Path::new("/srv/bundle"), &pkgs()).unwrap_err();
            assert!(e.what.contains("--offline /srv/bundle: no such directory"), "{e}");
        }
    }
}
