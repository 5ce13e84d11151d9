//! What `edge-setup vnc` added to the system, so `--uninstall` removes exactly that:
//! the packages it installed (not those that were there before), the files it
//! wrote, the /etc/hosts line, the group and the firewall rule.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};
use crate::vnc::firewall::Rule;

pub const PATH: &str = crate::tigervnc::INSTALL_RECORD;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Packages edge-setup installed (in image mode: planned for the target).
    pub packages: BTreeSet<String>,
    /// Files edge-setup wrote, target paths.
    pub files: BTreeSet<String>,
    /// The line edge-setup appended to /etc/hosts.
    pub hosts_line: Option<String>,
    /// Whether edge-setup created the VNC group.
    pub group_created: bool,
    /// The firewall rule edge-setup added.
    pub firewall: Option<Rule>,
}

impl State {
    pub fn load(sys: &System) -> Result<State> {
        let Some(text) = sys.read_string(Path::new(PATH))? else {
            return Ok(State::default());
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::failure(format!(
                "{} is not readable",
                sys.host_path(Path::new(PATH)).display()
            ))
            .why(e)
            .hint("it lists what 'edge-setup vnc' installed; restore it from a backup, or remove it to start over (then --uninstall no longer knows what to remove)")
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == State::default()
    }

    pub fn save(&self, sys: &System) -> Result<Change> {
        let mut text = serde_json::to_string_pretty(self).expect("the state serialises");
        text.push('\n');
        sys.write(Path::new(PATH), text.as_bytes(), FileSpec::root(0o644))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_missing_fields() {
        let mut s = State::default();
        assert!(s.is_empty());
        s.packages.insert("xterm".into());
        s.hosts_line = Some("127.0.1.1\tappliance".into());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<State>(&text).unwrap(), s);
        let old: State = serde_json::from_str(r#"{"packages":["fluxbox"]}"#).unwrap();
        assert!(old.packages.contains("fluxbox") && old.files.is_empty());
    }
}
