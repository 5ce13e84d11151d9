//! The packages of the VNC desktop per distribution; the package manager that
//! installs them is `system::packages`.

use crate::config::{self, Config, PackageList};
use crate::error::Result;
use crate::system::System;
use crate::system::os_release::{Family, OsRelease};

/// Debian and Ubuntu: the TigerVNC server and `tigervncpasswd`, fluxbox, xterm, the
/// browser, what the session needs (xauth, a D-Bus session bus, core fonts for
/// Xtigervnc, xsetroot, xmessage for the Ctrl+Alt+Del note), and sudo for the
/// `vnc-user` rule. Recommends are not installed, so the fonts are named here.
const DEBIAN: &[&str] = &[
    "tigervnc-standalone-server",
    "tigervnc-tools",
    "tigervnc-common",
    "fluxbox",
    "xterm",
    "xauth",
    "dbus-x11",
    "x11-xserver-utils",
    "x11-utils",
    "xfonts-base",
    "sudo",
];

/// Fedora, RHEL, CentOS, Rocky, Alma. fluxbox comes from EPEL on the RHEL rebuilds.
const REDHAT: &[&str] = &[
    "tigervnc-server",
    "fluxbox",
    "xterm",
    "xorg-x11-xauth",
    "dbus-x11",
    "sudo",
];

/// What the desktop needs on one distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desktop {
    pub packages: Vec<String>,
    /// The browser's command (and package): `firefox-esr` on Debian, else `firefox`.
    pub firefox: &'static str,
}

impl Desktop {
    /// The table for this distribution, extended by the target's `vnc.desktop-apps`.
    pub fn configured(sys: &System, os: &OsRelease, family: Family) -> Result<Desktop> {
        let extra: PackageList = Config::load(sys)?
            .get(sys, config::VNC_DESKTOP_APPS)?
            .unwrap_or_default();
        Ok(Desktop::for_os(os, family, &extra.0))
    }

    /// The table for this distribution, extended by `vnc.desktop-apps`.
    pub fn for_os(os: &OsRelease, family: Family, extra: &[String]) -> Desktop {
        let is_ubuntu = os.id == "ubuntu" || os.id_like.iter().any(|i| i == "ubuntu");
        let (base, firefox) = match family {
            Family::Debian if !is_ubuntu => (DEBIAN, "firefox-esr"),
            Family::Debian => (DEBIAN, "firefox"),
            Family::RedHat => (REDHAT, "firefox"),
        };
        let mut packages: Vec<String> = base
            .iter()
            .filter(|p| **p != "tigervnc-tools" || has_tigervnc_tools(os, is_ubuntu))
            .map(|s| s.to_string())
            .collect();
        let after_xterm = packages
            .iter()
            .position(|p| p == "xterm")
            .map_or(packages.len(), |i| i + 1);
        packages.insert(after_xterm, firefox.to_string());
        for p in extra {
            if !packages.contains(p) {
                packages.push(p.clone());
            }
        }
        Desktop { packages, firefox }
    }
}

/// `tigervnc-tools` (tigervncpasswd) split from `tigervnc-common` in TigerVNC 1.12:
/// Debian 12 and Ubuntu 22.04 on. Debian 11 has no such package (found by the
/// Debian 11 guest: apt refused the whole install).
fn has_tigervnc_tools(os: &OsRelease, is_ubuntu: bool) -> bool {
    let major = |v: &str| v.split('.').next().and_then(|m| m.parse::<u32>().ok());
    match os.version_id.as_deref().and_then(major) {
        Some(v) if is_ubuntu => v >= 22,
        Some(v) if os.id == "debian" => v >= 12,
        // testing/sid and derivatives without a version: the current layout
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsRelease {
        OsRelease::parse(text)
    }

    #[test]
    fn tables_per_distribution_and_extras() {
        let deb = Desktop::for_os(&os("ID=debian\n"), Family::Debian, &["mousepad".into(), "xterm".into()]);
        assert_eq!(deb.firefox, "firefox-esr");
        assert!(deb.packages.contains(&"firefox-esr".to_string()));
        assert!(deb.packages.contains(&"tigervnc-tools".to_string()));
        assert_eq!(deb.packages.last().unwrap(), "mousepad");
        assert_eq!(deb.packages.iter().filter(|p| *p == "xterm").count(), 1);
        let ubuntu = Desktop::for_os(&os("ID=ubuntu\nID_LIKE=debian\n"), Family::Debian, &[]);
        assert_eq!(ubuntu.firefox, "firefox");
        let rocky = Desktop::for_os(&os("ID=rocky\n"), Family::RedHat, &[]);
        assert!(rocky.packages.contains(&"tigervnc-server".to_string()));
        assert!(rocky.packages.contains(&"firefox".to_string()));
    }

    /// tigervncpasswd is in tigervnc-common before TigerVNC 1.12: Debian 11 and
    /// Ubuntu 20.04 have no tigervnc-tools, and apt refuses an install naming it.
    #[test]
    fn tigervnc_tools_only_where_it_exists() {
        let tools = |text: &str| {
            Desktop::for_os(&os(text), Family::Debian, &[])
                .packages
                .contains(&"tigervnc-tools".to_string())
        };
        assert!(!tools("ID=debian\nVERSION_ID=\"11\"\n"));
        assert!(tools("ID=debian\nVERSION_ID=\"12\"\n"));
        assert!(tools("ID=debian\nVERSION_ID=\"13\"\n"));
        assert!(!tools("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"20.04\"\n"));
        assert!(tools("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n"));
        assert!(tools("ID=debian\n"), "testing without a version has it");
        let deb11 = Desktop::for_os(&os("ID=debian\nVERSION_ID=\"11\"\n"), Family::Debian, &[]);
        assert!(deb11.packages.contains(&"tigervnc-common".to_string()));
    }
}
