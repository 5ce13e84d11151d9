//! tmux as a real terminal for the tests that drive prompts and the menu.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own running one command; killed when dropped.
///
/// Each test has its own socket: with one shared server, a test whose session
/// ends last stops the server while another test's `new-session` connects to
/// it ("server exited unexpectedly").
pub struct Tmux {
    name: String,
}

impl Tmux {
    pub fn start(command: &str) -> Tmux {
        assert!(
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success()),
            "tmux is missing: install it with 'scripts/install-deps' (apt-get install tmux)"
        );
        let name = format!("edge-setup-test-{}-{}", std::process::id(), rand_suffix());
        let ok = tmux(&name)
            .args(["new-session", "-d", "-s", &name, "-x", "150", "-y", "50", command])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux could not start a session");
        Tmux { name }
    }

    pub fn screen(&self) -> String {
        let out = tmux(&self.name)
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes as escape sequences.
    pub fn screen_with_escapes(&self) -> String {
        let out = tmux(&self.name)
            .args(["capture-pane", "-e", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` (after `after` occurrences of it).
    pub fn wait_for(&self, text: &str, count: usize) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= count {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "waited 20 s for {text:?}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `prompt` is the last line on the screen, with nothing typed after it:
    /// the program is waiting there. Keys sent before (after an error line, say) could reach
    /// the terminal before a password prompt turned echo off, and would show.
    pub fn wait_for_prompt(&self, prompt: &str) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.lines().rfind(|l| !l.trim().is_empty()).map(str::trim_end) == Some(prompt) {
                // the prompt is drawn just before the terminal's echo is turned off
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "waited 20 s for the prompt {prompt:?}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn send(&self, keys: &[&str]) {
        let ok = tmux(&self.name)
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux send-keys failed");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tmux(&self.name).arg("kill-server").status();
    }
}

/// tmux talking to the server on the socket named `name`.
fn tmux(name: &str) -> Command {
    let mut cmd = Command::new("tmux");
    cmd.args(["-L", name]);
    cmd
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
