//! TigerVNC as the distributions package it, and the contract between
//! `edge-setup vnc` (installs) and `edge-setup vnc-user` (enables users).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::system::System;
use crate::system::os_release::Family;
use crate::system::runner::{CLEAN_PATH, Cmd, Tool};

/// The appliance's own mapping file, one `user:N` line per user.
pub const MAPPING_FILE: &str = "/opt/c8y/utilities/vnc-display-mapping";
/// TigerVNC's mapping of displays to users, one `:N=user` line each.
pub const USERS_FILE: &str = "/etc/tigervnc/vncserver.users";
/// The lock held around read-allocate-write of both mapping files.
pub const MAPPING_LOCK: &str = "/opt/c8y/utilities/.vnc-display-mapping.lock";
/// The X session `edge-setup vnc` installs and every user's config selects.
pub const SESSION: &str = "edge-setup";
pub const XSESSION_FILE: &str = "/usr/share/xsessions/edge-setup.desktop";
/// Members of this group may run their own part of `vnc-user` through sudo.
pub const VNC_GROUP: &str = "vncusers";
/// The record of what `edge-setup vnc` added; in an image, the sign that it ran.
pub const INSTALL_RECORD: &str = "/var/lib/edge-setup/vnc-installed.json";
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/edge-setup-vnc";
/// The argument that selects the privileged part of `vnc-user`; the sudoers
/// rule allows exactly these argument lists, so a user cannot add `--user`.
pub const SYSTEM_PART_ARG: &str = "--system-part";
pub const FIRST_PORT: u16 = 5900;
pub const MAX_DISPLAY: u32 = 99;

/// The systemd unit of a display (the instance name carries the colon).
pub fn unit(family: Family, display: u32) -> String {
    match family {
        Family::Debian => format!("tigervncserver@:{display}.service"),
        Family::RedHat => format!("vncserver@:{display}.service"),
    }
}

/// The drop-in `edge-setup vnc` adds to the session units: a program in a
/// session that ignores SIGTERM would hold every stop, and so every restart by
/// `vnc-user`, for systemd's default 90 s.
pub fn stop_dropin(family: Family) -> String {
    let template = match family {
        Family::Debian => "tigervncserver@.service",
        Family::RedHat => "vncserver@.service",
    };
    format!("/etc/systemd/system/{template}.d/edge-setup.conf")
}

/// How long a session may take to stop before systemd kills what is left of it.
pub const STOP_TIMEOUT: &str = "15s";

pub fn stop_dropin_text() -> String {
    format!(
        "# Installed by 'edge-setup vnc': a program in a VNC session that ignores SIGTERM\n\
         # would hold a stop (and every restart by 'edge-setup vnc-user') for 90 s; after\n\
         # {STOP_TIMEOUT} systemd kills what is left of the session.\n\
         [Service]\n\
         TimeoutStopSec={STOP_TIMEOUT}\n"
    )
}

pub fn port(display: u32) -> u16 {
    FIRST_PORT + display as u16
}

/// The sudoers rule of `edge-setup vnc` for these edge-setup binaries (this
/// one first, then any earlier one it keeps): members of the vncusers group may
/// run the privileged part of `vnc-user`, with a clean environment, and nothing else.
pub fn sudoers_rule(exes: &[PathBuf]) -> String {
    let mut rule = format!(
        "# Installed by 'edge-setup vnc': members of {VNC_GROUP} may run their own part of\n\
         # 'edge-setup vnc-user' as root. The identity comes from SUDO_UID, never from an argument.\n\
         # The caller's environment is dropped and PATH fixed, whatever the site's defaults\n\
         # (its env_keep and env_check lists are emptied for these binaries).\n"
    );
    for exe in exes {
        rule.push_str(&format!(
            // command Defaults apply after the site's, so a site's
            // `env_keep += "https_proxy"` is emptied here
            "Defaults!{} env_reset, !env_keep, !env_check, secure_path=\"{CLEAN_PATH}\"\n",
            exe.display()
        ));
    }
    let commands: Vec<String> = exes
        .iter()
        .flat_map(|exe| {
            let exe = exe.display();
            [
                format!("{exe} vnc-user {SYSTEM_PART_ARG}"),
                format!("{exe} vnc-user {SYSTEM_PART_ARG} --restart"),
                format!("{exe} vnc-user {SYSTEM_PART_ARG} --remove"),
            ]
        })
        .collect();
    rule.push_str(&format!("%{VNC_GROUP} ALL=(root) NOPASSWD: {}\n", commands.join(", ")));
    rule
}

/// The binaries a rule of `sudoers_rule` names, in its order.
pub fn sudoers_rule_exes(rule: &str) -> Vec<PathBuf> {
    rule.lines()
        .filter_map(|l| l.strip_prefix("Defaults!"))
        .filter_map(|l| l.split_whitespace().next())
        .map(PathBuf::from)
        .collect()
}

/// A TigerVNC version, major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    /// Debian 12 ships 1.12; what `vnc-user` assumes when it cannot tell.
    pub const DEBIAN_12: Version = Version(1, 12);

    /// From this version the per-user files are in `~/.config/tigervnc`.
    pub const CONFIG_DIR: Version = Version(1, 14);

    /// Parses a package version such as `1.12.0+dfsg-8` or `1.14.1-2.el9`.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.split_once(':').map_or(s, |(_, v)| v);
        let mut it = s.split(|c: char| !c.is_ascii_digit());
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some(Version(major, minor))
    }

    /// The per-user directory this version reads its password and config from.
    pub fn user_dir(self, home: &Path) -> PathBuf {
        if self >= Version::CONFIG_DIR {
            home.join(".config/tigervnc")
        } else {
            home.join(".vnc")
        }
    }
}

/// Where TigerVNC writes a session's log, `HOST:N.log`: `~/.vnc` before 1.14,
/// `~/.local/state/tigervnc` from 1.14 (an upgraded system may have both).
pub fn log_dirs(home: &Path) -> [PathBuf; 2] {
    [home.join(".vnc"), home.join(".local/state/tigervnc")]
}

/// The installed TigerVNC version: from dpkg's status file on Debian (live
/// and image alike), from rpm on a live RHEL-like system. `None` when not installed
/// or unknown.
pub fn installed_version(sys: &System, family: Family) -> Result<Option<Version>> {
    match family {
        Family::Debian => {
            let status = sys.read_string(Path::new("/var/lib/dpkg/status"))?.unwrap_or_default();
            Ok(dpkg_installed_version(&status, "tigervnc-common")
                .or_else(|| dpkg_installed_version(&status, "tigervnc-standalone-server"))
                .and_then(|v| Version::parse(&v)))
        }
        Family::RedHat => {
            let cmd = Cmd::new(Tool::Rpm).args(["-q", "--qf", "%{VERSION}", "tigervnc-server"]);
            Ok(sys
                .query(cmd)?
                .filter(|o| o.success())
                .and_then(|o| Version::parse(o.stdout.trim())))
        }
    }
}

/// The version of an installed package in a dpkg status file.
pub fn dpkg_installed_version(status: &str, package: &str) -> Option<String> {
    status.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')).map(str::trim))
        };
        (field("Package") == Some(package) && field("Status").is_some_and(|s| s.ends_with(" installed")))
            .then(|| field("Version").map(str::to_string))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_carry_the_colon() {
        assert_eq!(unit(Family::Debian, 1), "tigervncserver@:1.service");
        assert_eq!(unit(Family::RedHat, 12), "vncserver@:12.service");
        // the drop-in is for the template the units come from
        assert_eq!(
            stop_dropin(Family::Debian),
            "/etc/systemd/system/tigervncserver@.service.d/edge-setup.conf"
        );
        assert_eq!(
            stop_dropin(Family::RedHat),
            "/etc/systemd/system/vncserver@.service.d/edge-setup.conf"
        );
        assert!(stop_dropin_text().contains("[Service]\nTimeoutStopSec=15s\n"));
        assert_eq!(port(1), 5901);
        assert_eq!(port(99), 5999);
    }

    #[test]
    fn versions_and_user_dirs() {
        assert_eq!(Version::parse("1.12.0+dfsg-8"), Some(Version(1, 12)));
        assert_eq!(Version::parse("1:1.14.1-2.el9"), Some(Version(1, 14)));
        assert_eq!(Version::parse("garbage"), None);
        let home = Path::new("/home/admin");
        assert_eq!(Version(1, 12).user_dir(home), Path::new("/home/admin/.vnc"));
        assert_eq!(Version(1, 15).user_dir(home), Path::new("/home/admin/.config/tigervnc"));
    }

    #[test]
    fn dpkg_status_lookup_needs_installed_state() {
        let status = "Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.12.0+dfsg-8\n\n\
                      Package: xterm\nStatus: deinstall ok config-files\nVersion: 379-1\n";
        assert_eq!(
            dpkg_installed_version(status, "tigervnc-common").as_deref(),
            Some("1.12.0+dfsg-8")
        );
        assert_eq!(dpkg_installed_version(status, "xterm"), None);
        assert_eq!(dpkg_installed_version(status, "firefox-esr"), None);
    }

    #[test]
    fn sudoers_rule_allows_only_the_system_part() {
        let rule = sudoers_rule(&["/usr/local/bin/edge-setup".into()]);
        assert!(rule.contains(
            "%vncusers ALL=(root) NOPASSWD: /usr/local/bin/edge-setup vnc-user --system-part, \
             /usr/local/bin/edge-setup vnc-user --system-part --restart, \
             /usr/local/bin/edge-setup vnc-user --system-part --remove\n"
        ));
        assert_eq!(
            sudoers_rule_exes(&rule),
            vec![PathBuf::from("/usr/local/bin/edge-setup")]
        );
    }

    /// After an upgrade from a copied binary to the package, the rule names both
    /// while the copy is still installed (it comes first in PATH).
    #[test]
    fn a_rule_for_two_binaries_names_both_and_reads_back() {
        let exes: Vec<PathBuf> = vec!["/usr/bin/edge-setup".into(), "/usr/local/bin/edge-setup".into()];
        let rule = sudoers_rule(&exes);
        assert_eq!(sudoers_rule_exes(&rule), exes);
        assert!(
            rule.contains("NOPASSWD: /usr/bin/edge-setup vnc-user --system-part, "),
            "{rule}"
        );
        assert!(
            rule.ends_with("/usr/local/bin/edge-setup vnc-user --system-part --remove\n"),
            "{rule}"
        );
        visudo_accepts(&rule);
    }

    /// Where sudoers has no secure_path of its own, the rule still drops the
    /// caller's environment and fixes PATH; visudo accepts it.
    #[test]
    fn sudoers_rule_resets_the_environment_and_visudo_accepts_it() {
        let rule = sudoers_rule(&["/usr/local/bin/edge-setup".into()]);
        let defaults = "Defaults!/usr/local/bin/edge-setup env_reset, !env_keep, !env_check, \
                        secure_path=\"/usr/sbin:/usr/bin:/sbin:/bin\"\n";
        let (at, rule_at) = (rule.find(defaults), rule.find("%vncusers"));
        assert!(at.is_some() && at < rule_at, "{rule}");
        visudo_accepts(&rule);
    }

    fn visudo_accepts(rule: &str) {
        let visudo = Tool::Visudo
            .locate()
            .expect("visudo is missing: install sudo (scripts/install-deps does)");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge-setup-vnc");
        std::fs::write(&file, rule).unwrap();
        let out = std::process::Command::new(visudo)
            .args(["-c", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
