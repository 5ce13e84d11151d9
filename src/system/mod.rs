//! Everything that touches the operating system, behind one value: files under
//! the root, users, the distribution, and commands. A live run, image mode
//! (`--root`), `--dry-run` and the tests all go through the same calls; only
//! what happens at the edge differs.

pub mod fs;
pub mod os_release;
pub mod runner;
pub mod users;

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::output::Out;
use fs::{Change, FileSpec, Root};
use runner::{Cmd, Output, Runner};
use users::{Source, UserInfo, Users};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The running system: commands run on this host.
    Live,
    /// An image under `--root`: commands are printed for the target, not run.
    Image,
}

/// Files staged to be put in place together by `System::commit`.
#[derive(Default)]
pub struct Batch {
    staged: Vec<fs::Staged>,
}

pub struct System {
    pub root: Root,
    pub mode: Mode,
    pub dry_run: bool,
    runner: Box<dyn Runner>,
    out: Out,
}

impl System {
    pub fn new(root: Root, mode: Mode, dry_run: bool, runner: Box<dyn Runner>, out: Out) -> Self {
        System {
            root: root.durable(mode == Mode::Live),
            mode,
            dry_run,
            runner,
            out,
        }
    }

    /// The output this system reports its steps to.
    pub fn out(&self) -> &Out {
        &self.out
    }

    pub fn is_image(&self) -> bool {
        self.mode == Mode::Image
    }

    /// Whether commands that change the system actually run.
    pub fn applies_commands(&self) -> bool {
        self.mode == Mode::Live && !self.dry_run
    }

    pub fn users(&self) -> Users<'_> {
        let source = match self.mode {
            Mode::Live => Source::Host,
            Mode::Image => Source::Image,
        };
        Users::new(&self.root, source)
    }

    /// Whether a process with `pid` runs on this host; never in an image.
    pub fn process_alive(&self, pid: i32) -> bool {
        use nix::errno::Errno;
        if self.is_image() || pid <= 0 {
            return false;
        }
        // EPERM: it exists, it is only not ours to signal
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Ok(()) | Err(Errno::EPERM)
        )
    }

    pub fn os_release(&self) -> Result<os_release::OsRelease> {
        os_release::OsRelease::load(&self.root)
    }

    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        self.root.read(path)
    }

    pub fn read_string(&self, path: &Path) -> Result<Option<String>> {
        self.root.read_string(path)
    }

    /// Reads a file the user named on the command line (an answers file, a
    /// config.dat): a path on this host, not under the root.
    pub fn read_host_file(&self, path: &Path) -> Result<String> {
        std::fs::read_to_string(path).map_err(|e| {
            Error::io("read", path, e).hint(format!("check the path {} and run the command again", path.display()))
        })
    }

    /// Reads a file the user named (a certificate, a licence) as bytes: a host path.
    pub fn read_host_bytes(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>> {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|e| Error::io("read", path, e))
    }

    /// Reads a file of secrets the user named; refuses one that group or others may read.
    pub fn read_host_private(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
        if meta.mode() & 0o077 != 0 {
            return Err(Error::bad_input(format!(
                "{} may be read by group or others (mode {:04o}); make it private: chmod 600 {}",
                path.display(),
                meta.mode() & 0o7777,
                path.display()
            )));
        }
        self.read_host_bytes(path)
    }

    /// Reads a secret from a file the user named (first line, without its line
    /// ending); refuses a file that group or others may read.
    pub fn read_host_secret(&self, path: &Path) -> Result<Zeroizing<String>> {
        let bytes = self.read_host_private(path)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::bad_input(format!("{} is not a text file", path.display())))?;
        Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_string()))
    }

    /// Runs a command that changes the target system and fails on a non-zero
    /// exit. In image mode and with `--dry-run` it is printed instead.
    pub fn run(&self, cmd: Cmd) -> Result<Output> {
        if !self.applies_commands() {
            let label = if self.dry_run { "would run" } else { "run on the target" };
            self.out.info(&format!("    {label}: {cmd}"));
            return Ok(Output::ok(""));
        }
        let out = self.spawn(&cmd)?;
        if !out.success() {
            return Err(command_failed(&cmd, &out));
        }
        Ok(out)
    }

    /// Runs a command whose non-zero exit the caller interprets; printed, not run,
    /// like `run` when commands do not apply (then `None`).
    pub fn run_unchecked(&self, cmd: Cmd) -> Result<Option<Output>> {
        if !self.applies_commands() {
            let label = if self.dry_run { "would run" } else { "run on the target" };
            self.out.info(&format!("    {label}: {cmd}"));
            return Ok(None);
        }
        self.spawn(&cmd).map(Some)
    }

    /// Runs a read-only query on the live system (also with `--dry-run`).
    /// `None` in image mode, where the caller reads the image's files instead.
    pub fn query(&self, cmd: Cmd) -> Result<Option<Output>> {
        if self.is_image() {
            return Ok(None);
        }
        self.spawn(&cmd).map(Some)
    }

    fn spawn(&self, cmd: &Cmd) -> Result<Output> {
        self.runner.run(cmd).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "install the package that provides '{}' and run the command again",
                    cmd.program.name()
                )
            } else {
                "check the command and run edge-setup again".to_string()
            };
            Error::failure(format!("cannot run `{cmd}`")).why(e).hint(hint)
        })
    }

    /// Writes a file atomically (printed with `--dry-run`).
    pub fn write(&self, path: &Path, contents: &[u8], spec: FileSpec) -> Result<Change> {
        if self.dry_run {
            return self.plan_write(path, contents, spec);
        }
        self.root.write(path, contents, spec)
    }

    /// Writes a file in a user's home with that user's file-system identity.
    pub fn write_as(&self, user: &UserInfo, path: &Path, contents: &[u8], mode: u32) -> Result<Change> {
        let spec = FileSpec {
            mode,
            uid: user.uid,
            gid: user.gid,
        };
        if self.dry_run {
            return fs::as_user(user.uid, user.gid, || self.plan_write(path, contents, spec));
        }
        fs::as_user(user.uid, user.gid, || self.root.write(path, contents, spec))
    }

    /// Creates a directory in a user's home as that user.
    pub fn ensure_dir_as(&self, user: &UserInfo, path: &Path, mode: u32) -> Result<Change> {
        let spec = FileSpec {
            mode,
            uid: user.uid,
            gid: user.gid,
        };
        fs::as_user(user.uid, user.gid, || self.ensure_dir(path, spec))
    }

    pub fn ensure_dir(&self, path: &Path, spec: FileSpec) -> Result<Change> {
        if self.dry_run {
            return match self.root.meta(path)? {
                Some(m) if m.is_dir && m.mode == spec.mode && m.uid == spec.uid && m.gid == spec.gid => {
                    Ok(Change::Unchanged)
                }
                existing => {
                    self.out.info(&format!(
                        "    would {} directory {} ({}, mode {:04o})",
                        if existing.is_some() { "update" } else { "create" },
                        self.root.host_path(path).display(),
                        self.owner_name(spec),
                        spec.mode
                    ));
                    Ok(if existing.is_some() {
                        Change::Updated
                    } else {
                        Change::Created
                    })
                }
            };
        }
        self.root.ensure_dir(path, spec)
    }

    /// Removes a file (printed with `--dry-run`). `false` when it was absent.
    pub fn remove(&self, path: &Path) -> Result<bool> {
        if self.dry_run {
            let exists = self.root.meta(path)?.is_some();
            if exists {
                self.out
                    .info(&format!("    would remove {}", self.root.host_path(path).display()));
            }
            return Ok(exists);
        }
        self.root.remove(path)
    }

    /// Removes an empty directory (printed with `--dry-run`). `false` when absent or not empty.
    pub fn remove_empty_dir(&self, path: &Path) -> Result<bool> {
        if self.dry_run {
            let empty = self.root.meta(path)?.is_some_and(|m| m.is_dir) && self.root.list_dir(path)?.is_empty();
            if empty {
                self.out
                    .info(&format!("    would remove {}", self.root.host_path(path).display()));
            }
            return Ok(empty);
        }
        self.root.remove_empty_dir(path)
    }

    /// Removes a file in a user's home as that user.
    pub fn remove_as(&self, user: &UserInfo, path: &Path) -> Result<bool> {
        fs::as_user(user.uid, user.gid, || self.remove(path))
    }

    /// Writes a file to a temporary name for `commit` to put in place with the
    /// rest of the batch (planned, not written, with `--dry-run`).
    pub fn stage(&self, batch: &mut Batch, path: &Path, contents: &[u8], spec: FileSpec) -> Result<Change> {
        if self.dry_run {
            return self.plan_write(path, contents, spec);
        }
        Ok(match self.root.stage(path, contents, spec)? {
            None => Change::Unchanged,
            Some(staged) => {
                let change = staged.change;
                batch.staged.push(staged);
                change
            }
        })
    }

    /// Stages a file in a user's home with that user's file-system identity.
    pub fn stage_as(
        &self,
        batch: &mut Batch,
        user: &UserInfo,
        path: &Path,
        contents: &[u8],
        mode: u32,
    ) -> Result<Change> {
        let spec = FileSpec {
            mode,
            uid: user.uid,
            gid: user.gid,
        };
        fs::as_user(user.uid, user.gid, || self.stage(batch, path, contents, spec))
    }

    /// Puts every file of the batch in place as one step: after a crash or a
    /// kill, all of them are old or all new.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        fs::commit_together(batch.staged)
    }

    /// Removes an empty directory in a user's home as that user (`false` when absent or not empty).
    pub fn remove_empty_dir_as(&self, user: &UserInfo, path: &Path) -> Result<bool> {
        if self.dry_run {
            return Ok(false);
        }
        fs::as_user(user.uid, user.gid, || self.root.remove_empty_dir(path))
    }

    /// How a step reports a file change ("would be ..." with `--dry-run`).
    pub fn change_word(&self, change: Change) -> &'static str {
        match (change, self.dry_run) {
            (Change::Created, false) => "created",
            (Change::Updated, false) => "updated",
            (Change::Created, true) => "would be created",
            (Change::Updated, true) => "would be updated",
            (Change::Unchanged, _) => "unchanged",
        }
    }

    fn plan_write(&self, path: &Path, contents: &[u8], spec: FileSpec) -> Result<Change> {
        let change = match self.root.meta(path)? {
            None => Change::Created,
            Some(m)
                if m.mode == spec.mode
                    && m.uid == spec.uid
                    && m.gid == spec.gid
                    && self.root.read(path)?.as_deref() == Some(contents) =>
            {
                Change::Unchanged
            }
            Some(_) => Change::Updated,
        };
        if change != Change::Unchanged {
            self.out.info(&format!(
                "    would write {} ({}, mode {:04o}, {} bytes)",
                self.root.host_path(path).display(),
                self.owner_name(spec),
                spec.mode,
                contents.len()
            ));
        }
        Ok(change)
    }

    fn owner_name(&self, spec: FileSpec) -> String {
        let users = self.users();
        let user = users
            .by_uid(spec.uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| spec.uid.to_string());
        let group = match spec.gid {
            0 => "root".to_string(),
            gid => gid.to_string(),
        };
        let user = if spec.uid == 0 { "root".to_string() } else { user };
        format!("owner {user}:{group}")
    }
}

/// The error for a command that exited non-zero: the command, its status and
/// the last lines of its stderr.
pub fn command_failed(cmd: &Cmd, out: &Output) -> Error {
    let status = match out.status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    };
    let stderr: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = stderr[stderr.len().saturating_sub(5)..].join("\n    ");
    let why = if tail.is_empty() {
        status
    } else {
        format!("{status}: {tail}")
    };
    Error::failure(format!("`{cmd}` failed")).why(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Capture;
    use runner::{FakeRunner, Tool};
    use std::rc::Rc;

    fn sys(mode: Mode, dry_run: bool, fake: Rc<FakeRunner>) -> (tempfile::TempDir, System, Capture) {
        let dir = tempfile::tempdir().unwrap();
        let err = Capture::default();
        let out = Out::new(Box::new(Capture::default()), Box::new(err.clone()), false);
        let sys = System::new(Root::new(dir.path()).unwrap(), mode, dry_run, Box::new(fake), out);
        (dir, sys, err)
    }

    #[test]
    fn image_mode_prints_commands_instead_of_running_them() {
        let fake = Rc::new(FakeRunner::new());
        let (_d, sys, err) = sys(Mode::Image, false, fake.clone());
        sys.run(Cmd::new(Tool::Systemctl).args(["restart", "edge-agent"]))
            .unwrap();
        assert!(fake.calls().is_empty());
        assert!(err.text().contains("run on the target: systemctl restart edge-agent"));
        assert_eq!(sys.query(Cmd::new(Tool::DpkgQuery)).unwrap(), None);
    }

    #[test]
    fn live_mode_runs_and_reports_failures_with_stderr() {
        let fake = Rc::new(FakeRunner::new());
        fake.respond("apt-get", Output::failed(100, "E: Unable to locate package nope\n"));
        let (_d, sys, _) = sys(Mode::Live, false, fake.clone());
        let err = sys.run(Cmd::new(Tool::AptGet).args(["install", "nope"])).unwrap_err();
        assert_eq!(err.what, "`apt-get install nope` failed");
        assert_eq!(
            err.why.as_deref(),
            Some("exit status 100: E: Unable to locate package nope")
        );
        assert_eq!(fake.lines(), vec!["apt-get install nope"]);
    }

    #[test]
    fn dry_run_writes_nothing_and_says_what_it_would_write() {
        let fake = Rc::new(FakeRunner::new());
        let (dir, sys, err) = sys(Mode::Image, true, fake);
        let change = sys
            .write(Path::new("/etc/x.conf"), b"a", FileSpec::root(0o644))
            .unwrap();
        assert_eq!(change, Change::Created);
        assert!(!dir.path().join("etc/x.conf").exists());
        assert!(err.text().contains("would write"), "{}", err.text());
        assert!(err.text().contains("mode 0644"));
    }
}
