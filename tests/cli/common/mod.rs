//! Temporary image roots for CLI tests.
// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod json;
pub mod pki;
pub mod proxy;
pub mod tenant;
pub mod tmux;

use assert_cmd::Command;
pub use edge_setup::testkit::{DEBIAN_12, Fixture, ROCKY_9, host_ctx as live_ctx};

/// A system image in a temporary directory (the shared test kit's fixture),
/// and the binary run against it.
pub struct Image(pub Fixture);

impl std::ops::Deref for Image {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.0
    }
}

impl Image {
    pub fn debian() -> Self {
        Image(Fixture::debian())
    }

    pub fn with_os_release(os_release: &str) -> Self {
        Image(Fixture::with_os_release(os_release))
    }

    /// As `edge-setup --root R vnc` leaves an image whose packages are the target's: its
    /// record, without which `vnc-user` refuses (no session could start).
    pub fn with_vnc_set_up(self) -> Self {
        self.write(edge_setup::tigervnc::INSTALL_RECORD, "{}\n");
        self
    }

    /// The binary with `--root` set to this image and no terminal.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("edge-setup").unwrap();
        c.arg("--root").arg(self.root());
        c.env_remove("SUDO_UID")
            .env_remove("SSH_CONNECTION")
            .env_remove("SSH_CLIENT")
            .env_remove("SSH_TTY");
        // a proxy of the machine that runs the tests is not the tests' to use
        for var in edge_setup::system::environ::PROXY {
            c.env_remove(var);
        }
        c
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
