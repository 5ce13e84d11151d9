//! Temporary image roots for CLI tests.
#![allow(dead_code)]

pub mod pki;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub const DEBIAN_12: &str =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
pub const ROCKY_9: &str = "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.3\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";

/// A system image in a temporary directory: os-release, passwd, group, machine-id.
pub struct Image {
    pub dir: tempfile::TempDir,
}

impl Image {
    pub fn debian() -> Self {
        Self::with_os_release(DEBIAN_12)
    }

    pub fn with_os_release(os_release: &str) -> Self {
        let img = Image {
            dir: tempfile::tempdir().unwrap(),
        };
        img.write("/etc/os-release", os_release);
        img.write(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\noperator:x:1001:1001::/home/operator:/bin/bash\n",
        );
        img.write("/etc/group", "root:x:0:\nadmin:x:1000:\noperator:x:1001:\n");
        img.write("/etc/machine-id", "4c4c4544004e3510804bc4c04f4d3232\n");
        img
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, target: &str) -> PathBuf {
        self.dir.path().join(target.trim_start_matches('/'))
    }

    pub fn write(&self, target: &str, contents: &str) {
        let p = self.path(target);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn read(&self, target: &str) -> Option<String> {
        std::fs::read_to_string(self.path(target)).ok()
    }

    pub fn mode(&self, target: &str) -> u32 {
        std::fs::symlink_metadata(self.path(target)).unwrap().mode() & 0o7777
    }

    pub fn owner(&self, target: &str) -> (u32, u32) {
        let m = std::fs::symlink_metadata(self.path(target)).unwrap();
        (m.uid(), m.gid())
    }

    /// The binary with `--root` set to this image and no terminal.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("edge-setup").unwrap();
        c.arg("--root").arg(self.root());
        c.env_remove("SUDO_UID")
            .env_remove("SSH_CONNECTION")
            .env_remove("SSH_CLIENT")
            .env_remove("SSH_TTY");
        c
    }

    /// Every path under the image with its metadata (links not followed), sorted.
    fn walk(&self) -> Vec<(PathBuf, std::fs::Metadata)> {
        let mut out = Vec::new();
        let mut stack = vec![self.root().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                let m = std::fs::symlink_metadata(&path).unwrap();
                if m.is_dir() {
                    stack.push(path.clone());
                }
                out.push((path, m));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every file under the image with its content, to prove nothing changed.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>, u32)> {
        self.walk()
            .into_iter()
            .map(|(path, m)| {
                let content = if m.is_dir() {
                    Vec::new()
                } else if m.file_type().is_symlink() {
                    std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()
                } else {
                    std::fs::read(&path).unwrap()
                };
                (path, content, m.mode())
            })
            .collect()
    }

    /// Every path under the image with its modification time: a run that
    /// rewrites a file with the same bytes still shows here.
    pub fn mtimes(&self) -> Vec<(PathBuf, std::time::SystemTime)> {
        self.walk()
            .into_iter()
            .map(|(path, m)| (path, m.modified().unwrap()))
            .collect()
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// An in-process context in live mode over `root` with the host's command
/// runner: commands really run (image mode would only print them).
pub fn live_ctx(root: &Path) -> (edge_setup::context::Ctx, edge_setup::output::Capture) {
    use edge_setup::output::{Capture, Out};
    // what the agent step of the options needs: a machine to derive an ID from, and DNS
    std::fs::create_dir_all(root.join("etc")).unwrap();
    for (file, text) in [
        ("etc/machine-id", "4c4c4544004e3510804bc4c04f4d3232\n"),
        ("etc/resolv.conf", "nameserver 192.0.2.53\n"),
    ] {
        if !root.join(file).exists() {
            std::fs::write(root.join(file), text).unwrap();
        }
    }
    let err = Capture::default();
    let out = Out::new(Box::new(Capture::default()), Box::new(err.clone()), false);
    let sys = edge_setup::system::System::new(
        edge_setup::system::fs::Root::new(root).unwrap(),
        edge_setup::system::Mode::Live,
        false,
        Box::new(edge_setup::system::runner::HostRunner),
        out,
    );
    let prompt = edge_setup::prompt::NoPrompt(edge_setup::prompt::NoPromptReason::NoTerminal);
    let ctx = edge_setup::context::Ctx::new(sys, Box::new(prompt)).with_yes(true);
    (ctx, err)
}
