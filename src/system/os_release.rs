//! The distribution, from /etc/os-release (or /usr/lib/os-release).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::system::fs::Root;

/// The two families of distribution edge-setup drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Debian, Ubuntu and derivatives: apt, dpkg.
    Debian,
    /// Fedora, RHEL, CentOS, Rocky, Alma: dnf (or yum), rpm, SELinux.
    RedHat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

impl OsRelease {
    pub fn load(root: &Root) -> Result<Self> {
        for path in ["/etc/os-release", "/usr/lib/os-release"] {
            if let Some(text) = root.read_string(Path::new(path))? {
                return Ok(Self::parse(&text));
            }
        }
        Err(Error::failure(format!(
            "cannot tell the distribution: neither {} nor {} exists",
            root.host_path(Path::new("/etc/os-release")).display(),
            root.host_path(Path::new("/usr/lib/os-release")).display()
        ))
        .hint("check that --root names the image's top directory"))
    }

    pub fn parse(text: &str) -> Self {
        let vars: HashMap<&str, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), unquote(v.trim())))
            .collect();
        OsRelease {
            id: vars.get("ID").cloned().unwrap_or_default(),
            id_like: vars
                .get("ID_LIKE")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            version_id: vars.get("VERSION_ID").cloned(),
            pretty_name: vars.get("PRETTY_NAME").cloned(),
        }
    }

    /// The family, from ID first and then ID_LIKE; an unknown one is refused by name.
    pub fn family(&self) -> Result<Family> {
        let ids = std::iter::once(self.id.as_str()).chain(self.id_like.iter().map(String::as_str));
        for id in ids {
            match id {
                "debian" | "ubuntu" | "raspbian" | "linuxmint" => return Ok(Family::Debian),
                "fedora" | "rhel" | "centos" | "rocky" | "almalinux" | "ol" => return Ok(Family::RedHat),
                _ => {}
            }
        }
        Err(Error::bad_input(format!(
            "unsupported distribution: ID={} ID_LIKE={}",
            if self.id.is_empty() { "(none)" } else { &self.id },
            if self.id_like.is_empty() { "(none)".to_string() } else { self.id_like.join(" ") }
        ))
        .hint("edge-setup supports the Debian/Ubuntu family (apt) and the Fedora/RHEL/CentOS/Rocky/Alma family (dnf or yum)"))
    }
}

fn unquote(v: &str) -> String {
    let v = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    v.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_id_and_id_like() {
        let deb = OsRelease::parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(deb.family().unwrap(), Family::Debian);
        assert_eq!(deb.version_id.as_deref(), Some("12"));
        let rocky = OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
        assert_eq!(rocky.family().unwrap(), Family::RedHat);
        let mint = OsRelease::parse("ID=somethingelse\nID_LIKE='ubuntu debian'\n");
        assert_eq!(mint.family().unwrap(), Family::Debian);
        let err = OsRelease::parse("ID=arch\n").family().unwrap_err();
        assert!(err.what.contains("ID=arch"), "{err}");
    }

    const NEAR: &[&str] = &[
        "ID=debian",
        "ID=\"rocky\"",
        "ID_LIKE=\"rhel centos fedora\"",
        "VERSION_ID=\"12\"",
        "PRETTY_NAME='x'",
        "ID=",
        "=",
        "\"",
        "ID='",
        "# comment",
        "ID_LIKE=",
        "VERSION_ID=\"\\\"\"",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any os-release parses; its family is known or an error naming what it found.
        #[test]
        fn any_text_parses_and_names_its_family_or_the_problem(text in crate::fuzz::text(NEAR)) {
            let os = OsRelease::parse(&text);
            proptest::prop_assert!(os.id.len() <= text.len());
            // an ID only from an ID= line, and one whenever such a line has a value
            let id_lines: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| k.trim() == "ID")
                .map(|(_, v)| v)
                .collect();
            proptest::prop_assert_eq!(os.id.is_empty(), id_lines.last().is_none_or(|v| unquote(v.trim()).is_empty()));
            if let Err(e) = os.family() {
                proptest::prop_assert!(!e.what.is_empty());
            }
        }
    }
}
