//! The test kit shared by the unit tests and the CLI tests (feature `testkit`,
//! which the crate's own tests turn on): a system root in a temporary
//! directory, a fake runner that records every command, and the `System` and
//! `Ctx` over them, so every test drives the same code paths a real run does.

use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::context::Ctx;
use crate::output::{Capture, Out};
use crate::prompt::{NoPrompt, NoPromptReason, Prompter};
use crate::system::fs::Root;
use crate::system::runner::{Cmd, Output, Runner, Tool};
use crate::system::{Mode, System};

pub const DEBIAN_12: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
pub const ROCKY_9: &str = "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.3\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";

type Responder = Box<dyn Fn(&Cmd) -> Option<std::io::Result<Output>>>;

/// Records every command and answers from rules, first match wins; an
/// unmatched command succeeds with empty output.
#[derive(Default)]
pub struct FakeRunner {
    calls: RefCell<Vec<Cmd>>,
    rules: RefCell<Vec<Responder>>,
    /// Tools this fake host lacks (it has every other, at its first path).
    absent: RefCell<Vec<Tool>>,
}

impl FakeRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers commands whose line starts with `prefix`.
    pub fn respond(&self, prefix: &str, out: Output) {
        let prefix = prefix.to_string();
        self.rules.borrow_mut().push(Box::new(move |c| {
            c.line().starts_with(&prefix).then(|| Ok(out.clone()))
        }));
    }

    /// Answers with a function of the command.
    pub fn respond_with(&self, f: impl Fn(&Cmd) -> Option<std::io::Result<Output>> + 'static) {
        self.rules.borrow_mut().push(Box::new(f));
    }

    /// This fake host has no `tool`.
    pub fn without(&self, tool: Tool) {
        self.absent.borrow_mut().push(tool);
    }

    pub fn calls(&self) -> Vec<Cmd> {
        self.calls.borrow().clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.calls.borrow().iter().map(Cmd::line).collect()
    }
}

impl Runner for FakeRunner {
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output> {
        self.calls.borrow_mut().push(cmd.clone());
        for rule in self.rules.borrow().iter() {
            if let Some(out) = rule(cmd) {
                return out;
            }
        }
        Ok(Output::ok(""))
    }

    fn locate(&self, tool: Tool) -> Option<PathBuf> {
        (!self.absent.borrow().contains(&tool)).then(|| PathBuf::from(tool.paths()[0]))
    }
}

/// A system root in a temporary directory (removed when dropped), with the
/// fake runner and the output the systems built over it report to.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub fake: Rc<FakeRunner>,
    pub out: Capture,
    pub err: Capture,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::empty()
    }
}

impl Fixture {
    /// An empty root.
    pub fn empty() -> Fixture {
        Fixture::over(tempfile::tempdir().expect("a temporary directory"))
    }

    /// An empty root in a temporary directory the caller made (under a given parent).
    pub fn over(dir: tempfile::TempDir) -> Fixture {
        Fixture {
            dir,
            fake: Rc::new(FakeRunner::new()),
            out: Capture::default(),
            err: Capture::default(),
        }
    }

    /// A Debian 12 root with the users root, admin (1000) and operator (1001).
    pub fn debian() -> Fixture {
        Fixture::with_os_release(DEBIAN_12)
    }

    /// A root with this os-release, the users root, admin (1000) and operator
    /// (1001), and a machine ID.
    pub fn with_os_release(os_release: &str) -> Fixture {
        Fixture::empty().with_system_files(os_release)
    }

    /// Adds os-release, the users root, admin (1000) and operator (1001), and a machine ID.
    pub fn with_system_files(self, os_release: &str) -> Fixture {
        let f = self;
        f.write("/etc/os-release", os_release);
        f.write(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\noperator:x:1001:1001::/home/operator:/bin/bash\n",
        );
        f.write("/etc/group", "root:x:0:\nadmin:x:1000:\noperator:x:1001:\n");
        f.write("/etc/machine-id", "4c4c4544004e3510804bc4c04f4d3232\n");
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The host path of a path on the target.
    pub fn path(&self, target: &str) -> PathBuf {
        self.dir.path().join(target.trim_start_matches('/'))
    }

    /// Writes a file on the target, with its directories.
    pub fn write(&self, target: &str, contents: &str) {
        let p = self.path(target);
        std::fs::create_dir_all(p.parent().expect("a path under the root")).expect("the directory is created");
        std::fs::write(p, contents).expect("the file is written");
    }

    pub fn read(&self, target: &str) -> Option<String> {
        std::fs::read_to_string(self.path(target)).ok()
    }

    pub fn read_bytes(&self, target: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(target)).ok()
    }

    pub fn exists(&self, target: &str) -> bool {
        self.path(target).symlink_metadata().is_ok()
    }

    pub fn mode(&self, target: &str) -> u32 {
        std::fs::symlink_metadata(self.path(target))
            .expect("the file exists")
            .mode()
            & 0o7777
    }

    pub fn owner(&self, target: &str) -> (u32, u32) {
        let m = std::fs::symlink_metadata(self.path(target)).expect("the file exists");
        (m.uid(), m.gid())
    }

    /// The commands the systems over this root ran, as shell lines.
    pub fn commands(&self) -> Vec<String> {
        self.fake.lines()
    }

    /// A system over this root, reporting to `out`/`err`, with root's ids and the fake runner.
    pub fn system(&self, mode: Mode, dry_run: bool) -> System {
        self.system_with(mode, dry_run, Box::new(self.fake.clone()))
    }

    /// A system over this root with another runner (the host's, to run commands for real).
    pub fn system_with(&self, mode: Mode, dry_run: bool, runner: Box<dyn Runner>) -> System {
        let out = Out::new(Box::new(self.out.clone()), Box::new(self.err.clone()), false);
        let root = Root::new(self.root()).expect("the root exists");
        System::new(root, mode, dry_run, runner, out)
    }

    /// A live system over this root.
    pub fn live(&self) -> System {
        self.system(Mode::Live, false)
    }

    /// A context over `sys` that never asks (`--yes`), with empty stdin and environment.
    pub fn ctx(&self, sys: System) -> Ctx {
        self.ctx_asking(sys, Box::new(NoPrompt(NoPromptReason::Yes)))
            .with_yes(true)
    }

    /// A context over `sys` whose questions go to `prompt`.
    pub fn ctx_asking(&self, sys: System, prompt: Box<dyn Prompter>) -> Ctx {
        Ctx::new(sys, prompt)
    }

    /// Every path under the root with its metadata (links not followed), sorted.
    fn walk(&self) -> Vec<(PathBuf, std::fs::Metadata)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("a readable directory") {
                let path = e.expect("a directory entry").path();
                let m = std::fs::symlink_metadata(&path).expect("the entry exists");
                if m.is_dir() {
                    stack.push(path.clone());
                }
                out.push((path, m));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every file under the root with its content and mode, to prove nothing changed.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>, u32)> {
        self.walk()
            .into_iter()
            .map(|(path, m)| {
                let content = if m.is_dir() {
                    Vec::new()
                } else if m.file_type().is_symlink() {
                    std::fs::read_link(&path)
                        .expect("a readable link")
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    std::fs::read(&path).expect("a readable file")
                };
                (path, content, m.mode())
            })
            .collect()
    }

    /// Every path under the root with its modification time: a run that
    /// rewrites a file with the same bytes still shows here.
    pub fn mtimes(&self) -> Vec<(PathBuf, std::time::SystemTime)> {
        self.walk()
            .into_iter()
            .map(|(path, m)| (path, m.modified().expect("a modification time")))
            .collect()
    }
}

/// A context in live mode over `root` (a temporary root, or `/`) with the
/// host's runner: commands really run. What the agent step of the options needs
/// is added when missing: a machine ID to derive a device ID from, and DNS.
pub fn host_ctx(root: &Path) -> (Ctx, Capture) {
    std::fs::create_dir_all(root.join("etc")).expect("the root's /etc");
    for (file, text) in [
        ("etc/machine-id", "4c4c4544004e3510804bc4c04f4d3232\n"),
        ("etc/resolv.conf", "nameserver 192.0.2.53\n"),
    ] {
        if !root.join(file).exists() {
            std::fs::write(root.join(file), text).expect("the file is written");
        }
    }
    let err = Capture::default();
    let out = Out::new(Box::new(Capture::default()), Box::new(err.clone()), false);
    let root = Root::new(root).expect("the root exists");
    let sys = System::new(
        root,
        Mode::Live,
        false,
        Box::new(crate::system::runner::HostRunner),
        out,
    );
    let ctx = Ctx::new(sys, Box::new(NoPrompt(NoPromptReason::NoTerminal))).with_yes(true);
    (ctx, err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::runner::Tool;

    #[test]
    fn the_fake_runner_records_and_answers() {
        let fake = FakeRunner::new();
        fake.respond("dpkg-query", Output::failed(1, "no packages found"));
        assert_eq!(fake.run(&Cmd::new(Tool::DpkgQuery).arg("-W")).unwrap().status, Some(1));
        assert!(fake.run(&Cmd::new(Tool::Systemctl)).unwrap().success());
        assert_eq!(fake.lines(), vec!["dpkg-query -W", "systemctl"]);
    }

    #[test]
    fn a_system_over_the_fixture_writes_under_its_root_and_runs_through_the_fake() {
        let f = Fixture::debian();
        let image = f.system(Mode::Image, false);
        assert_eq!(image.users().by_name("admin").unwrap().unwrap().uid, 1000);
        let sys = f.live();
        sys.write(Path::new("/etc/x"), b"y\n", crate::system::fs::FileSpec::root(0o640))
            .unwrap();
        assert_eq!(f.read("/etc/x").as_deref(), Some("y\n"));
        sys.run(Cmd::new(Tool::Systemctl).arg("daemon-reload")).unwrap();
        assert_eq!(f.commands(), vec!["systemctl daemon-reload"]);
    }
}
