//! The desktop TigerVNC starts: an X session file, the session script, and fluxbox's
//! resources, menu (right-click: xterm, Firefox) and keys, all system-wide so that no
//! per-user `~/.fluxbox` is needed; and the /etc/hosts line that makes the host name resolve.

use crate::tigervnc;

/// The script the X session file runs.
pub const SESSION_SCRIPT: &str = "/usr/libexec/edge-setup/session";
/// fluxbox's files for the session, passed with `fluxbox -rc`.
pub const FLUXBOX_DIR: &str = "/usr/share/edge-setup/fluxbox";
/// Directories edge-setup creates for these files (removed by `--uninstall` when empty).
pub const DIRS: &[&str] = &[FLUXBOX_DIR, "/usr/share/edge-setup", "/usr/libexec/edge-setup"];

/// A file edge-setup writes, with its content and mode (owner root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFile {
    pub path: String,
    pub contents: String,
    pub mode: u32,
}

fn render(template: &str, firefox: &str) -> String {
    template
        .replace("{{SESSION_SCRIPT}}", SESSION_SCRIPT)
        .replace("{{FLUXBOX_DIR}}", FLUXBOX_DIR)
        .replace("{{FIREFOX}}", firefox)
}

/// The desktop's files; `firefox` is the browser's command on this distribution.
pub fn files(firefox: &str) -> Vec<ManagedFile> {
    let file = |path: String, template: &str, mode| ManagedFile {
        path,
        contents: render(template, firefox),
        mode,
    };
    let fluxbox = |name: &str| format!("{FLUXBOX_DIR}/{name}");
    vec![
        file(
            tigervnc::XSESSION_FILE.to_string(),
            include_str!("../../templates/vnc/edge-setup.desktop"),
            0o644,
        ),
        file(
            SESSION_SCRIPT.to_string(),
            include_str!("../../templates/vnc/session"),
            0o755,
        ),
        file(fluxbox("init"), include_str!("../../templates/vnc/fluxbox-init"), 0o644),
        file(fluxbox("menu"), include_str!("../../templates/vnc/fluxbox-menu"), 0o644),
        file(fluxbox("keys"), include_str!("../../templates/vnc/fluxbox-keys"), 0o644),
        file(
            fluxbox("overlay"),
            include_str!("../../templates/vnc/fluxbox-overlay"),
            0o644,
        ),
    ]
}

/// The line added to /etc/hosts (Debian's convention for the machine's own name).
pub fn hosts_line(hostname: &str) -> String {
    format!("127.0.1.1\t{hostname}")
}

/// Whether /etc/hosts maps `hostname` (any address, any alias, case-insensitive).
pub fn hosts_has_name(hosts: &str, hostname: &str) -> bool {
    hosts.lines().any(|line| {
        let line = line.split('#').next().unwrap_or("");
        line.split_whitespace()
            .skip(1)
            .any(|name| name.eq_ignore_ascii_case(hostname))
    })
}

/// /etc/hosts with `line` appended; everything before is kept byte for byte.
pub fn hosts_append(hosts: &str, line: &str) -> String {
    let mut out = hosts.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out
}

/// /etc/hosts without the first line equal to `line`; `None` when there is none.
pub fn hosts_remove(hosts: &str, line: &str) -> Option<String> {
    let mut offset = 0;
    for l in hosts.split_inclusive('\n') {
        if l.trim_end_matches(['\n', '\r']) == line {
            return Some(format!("{}{}", &hosts[..offset], &hosts[offset + l.len()..]));
        }
        offset += l.len();
    }
    None
}

/// A host name worth writing to /etc/hosts: letters, digits, '-' and '.'.
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_rendered_for_the_distribution() {
        let files = files("firefox-esr");
        let get = |p: &str| files.iter().find(|f| f.path == p).unwrap();
        let desktop = get("/usr/share/xsessions/edge-setup.desktop");
        assert!(desktop.contents.contains("\nExec=/usr/libexec/edge-setup/session\n"));
        assert!(desktop.contents.starts_with("[Desktop Entry]\n"));
        let session = get(SESSION_SCRIPT);
        assert_eq!(session.mode, 0o755);
        assert!(session.contents.starts_with("#!/bin/sh\n"));
        assert!(
            session
                .contents
                .contains("fluxbox -rc /usr/share/edge-setup/fluxbox/init &\n")
        );
        assert!(session.contents.contains("Ctrl+Alt+Del"));
        // without ~/.fluxbox, fluxbox 1.3 copies its default init over the -rc file
        let mkdir = session.contents.find("mkdir -p \"$HOME/.fluxbox\"").unwrap();
        assert!(mkdir < session.contents.find("fluxbox -rc").unwrap());
        let menu = get("/usr/share/edge-setup/fluxbox/menu");
        assert!(menu.contents.contains("[exec] (xterm) {xterm}"));
        assert!(menu.contents.contains("[exec] (Firefox) {firefox-esr}"));
        let init = get("/usr/share/edge-setup/fluxbox/init");
        assert!(
            init.contents
                .contains("session.menuFile: /usr/share/edge-setup/fluxbox/menu\n")
        );
        assert!(
            init.contents
                .contains("session.keyFile: /usr/share/edge-setup/fluxbox/keys\n")
        );
        let keys = get("/usr/share/edge-setup/fluxbox/keys");
        assert!(keys.contents.contains("OnDesktop Mouse3 :RootMenu"));
        assert!(
            !keys.contents.contains(":Exit"),
            "Ctrl+Alt+Del must not end the session"
        );
        for f in &files {
            assert!(!f.contents.contains("{{"), "{} has an unrendered placeholder", f.path);
        }
    }

    /// `systemctl stop` sends SIGTERM to the whole session; fluxbox often ignores it (the
    /// VM suite saw every restart but the first wait systemd's 90 s). A fake fluxbox that
    /// ignores SIGTERM must be gone as soon as the script gets SIGTERM.
    #[test]
    fn the_session_script_ends_a_window_manager_that_ignores_sigterm() {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        use std::os::unix::fs::PermissionsExt;
        use std::time::{Duration, Instant};

        fn until(what: &str, mut done: impl FnMut() -> bool) {
            let start = Instant::now();
            while !done() {
                assert!(start.elapsed() < Duration::from_secs(10), "{what}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = |name: &str, body: &str| {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        tool("xsetroot", "exit 0");
        tool("xmessage", "exit 0");
        tool(
            "fluxbox",
            "trap '' TERM\necho $$ > \"$HOME/fluxbox.pid\"\nexec sleep 60",
        );
        let session = files("firefox-esr")
            .into_iter()
            .find(|f| f.path == SESSION_SCRIPT)
            .unwrap();
        let script = dir.path().join("session");
        std::fs::write(&script, session.contents).unwrap();
        let mut child = std::process::Command::new("sh")
            .arg(&script)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", dir.path())
            .spawn()
            .unwrap();
        let pid_file = dir.path().join("fluxbox.pid");
        let mut wm = 0;
        until("the fake fluxbox did not start", || {
            wm = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            wm > 0
        });
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let mut status = None;
        until("the session script did not end on SIGTERM", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        assert_eq!(status.unwrap().code(), Some(143));
        // Gone, or a zombie waiting for init to reap it.
        until("the window manager outlived its session", || {
            std::fs::read_to_string(format!("/proc/{wm}/stat"))
                .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
                .unwrap_or(true)
        });
    }

    #[test]
    fn hosts_lines_are_added_and_removed_byte_for_byte() {
        let hosts = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # comment appliance\n";
        assert!(!hosts_has_name(hosts, "appliance"));
        assert!(hosts_has_name(hosts, "LOCALHOST"));
        let line = hosts_line("appliance");
        let added = hosts_append(hosts, &line);
        assert_eq!(added, format!("{hosts}127.0.1.1\tappliance\n"));
        assert!(hosts_has_name(&added, "appliance"));
        assert_eq!(hosts_remove(&added, &line).as_deref(), Some(hosts));
        assert_eq!(hosts_remove(hosts, &line), None);
        assert_eq!(hosts_append("a b", "c d"), "a b\nc d\n");
        assert!(valid_hostname("appliance.example"));
        assert!(!valid_hostname("bad name") && !valid_hostname("") && !valid_hostname("-x"));
    }
}
