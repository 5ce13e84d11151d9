//! The firewall rule for `vnc.listen = lan`: firewalld, else ufw, else nftables.
//! With the default `localhost` no port is opened: sessions are reached through
//! the local agent.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::system::System;
use crate::system::fs::FileSpec;
use crate::system::packages::has_program;
use crate::system::runner::{Cmd, Tool};
use crate::tigervnc;

/// edge-setup's own nftables table, kept in a file of its own.
pub const NFT_FILE: &str = "/etc/nftables.d/edge-setup-vnc.nft";
const NFT_TABLE: &str = "edge_setup";
/// firewalld's `vnc-server` service opens 5900-5903; displays above need ports of their own.
const SERVICE_LAST_DISPLAY: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Firewalld,
    Ufw,
    Nftables,
}

/// The rule edge-setup adds: TCP ports 5900 up to `last_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub backend: Backend,
    pub last_port: u16,
}

impl Rule {
    /// The rule for the highest display in use (at least :3, what firewalld's service covers).
    pub fn new(backend: Backend, highest_display: u32) -> Rule {
        Rule {
            backend,
            last_port: tigervnc::port(highest_display.clamp(SERVICE_LAST_DISPLAY, tigervnc::MAX_DISPLAY)),
        }
    }

    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Firewalld if self.last_port > service_last_port() => format!(
                "firewalld: service vnc-server and ports {}-{}/tcp",
                service_last_port() + 1,
                self.last_port
            ),
            Backend::Firewalld => "firewalld: service vnc-server (ports 5900-5903/tcp)".to_string(),
            Backend::Ufw => format!("ufw: ports {}:{}/tcp", tigervnc::FIRST_PORT, self.last_port),
            Backend::Nftables => format!(
                "nftables: table inet {NFT_TABLE}, ports {}-{}/tcp",
                tigervnc::FIRST_PORT,
                self.last_port
            ),
        }
    }

    /// Adds the rule: runs the commands (printed in image mode), writes the nftables file.
    pub fn apply(&self, sys: &System) -> Result<()> {
        match self.backend {
            Backend::Firewalld => self.firewalld(sys, "add")?,
            Backend::Ufw => {
                sys.run(Cmd::new(Tool::Ufw).args(["allow", &self.ufw_ports()]))?;
            }
            Backend::Nftables => {
                sys.write(Path::new(NFT_FILE), self.nft_file().as_bytes(), FileSpec::root(0o644))?;
                sys.run(Cmd::new(Tool::Nft).args(["-f", NFT_FILE]))?;
            }
        }
        Ok(())
    }

    /// Whether the running firewall has the rule (live only; `None` when it
    /// cannot tell, or in an image).
    pub fn is_open(&self, sys: &System) -> Result<Option<bool>> {
        let query = match self.backend {
            Backend::Firewalld => Cmd::new(Tool::FirewallCmd).arg("--query-service=vnc-server"),
            Backend::Ufw => Cmd::new(Tool::Ufw).arg("status"),
            Backend::Nftables => Cmd::new(Tool::Nft).args(["list", "table", "inet", NFT_TABLE]),
        };
        let Some(out) = sys.query(query)? else {
            return Ok(None);
        };
        Ok(Some(match self.backend {
            Backend::Ufw => out.stdout.contains(&self.ufw_ports()),
            Backend::Firewalld | Backend::Nftables => out.success(),
        }))
    }

    /// Removes the rule again.
    pub fn remove(&self, sys: &System) -> Result<()> {
        match self.backend {
            Backend::Firewalld => self.firewalld(sys, "remove")?,
            Backend::Ufw => {
                sys.run(Cmd::new(Tool::Ufw).args(["delete", "allow", &self.ufw_ports()]))?;
            }
            Backend::Nftables => {
                // The table is gone already when the ruleset was reloaded since.
                sys.run_unchecked(Cmd::new(Tool::Nft).args(["delete", "table", "inet", NFT_TABLE]))?;
                sys.remove(Path::new(NFT_FILE))?;
            }
        }
        Ok(())
    }

    /// firewalld's commands to `add` or `remove` the rule (service, extra ports), then reload.
    fn firewalld(&self, sys: &System, verb: &str) -> Result<()> {
        sys.run(firewall_cmd(&format!("--{verb}-service=vnc-server")))?;
        if let Some(range) = self.extra_ports() {
            sys.run(firewall_cmd(&format!("--{verb}-port={range}")))?;
        }
        sys.run(Cmd::new(Tool::FirewallCmd).arg("--reload"))?;
        Ok(())
    }

    fn extra_ports(&self) -> Option<String> {
        (self.last_port > service_last_port()).then(|| format!("{}-{}/tcp", service_last_port() + 1, self.last_port))
    }

    fn ufw_ports(&self) -> String {
        format!("{}:{}/tcp", tigervnc::FIRST_PORT, self.last_port)
    }

    fn nft_file(&self) -> String {
        format!(
            "# Installed by 'sudo edge-setup vnc' because vnc.listen = lan: accepts VNC connections.\n\
             # Load it from /etc/nftables.conf (include \"{NFT_FILE}\") to keep it across reboots.\n\
             # A drop in another table's input chain still drops these packets.\n\
             table inet {NFT_TABLE}\n\
             flush table inet {NFT_TABLE}\n\
             table inet {NFT_TABLE} {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\ttcp dport {}-{} accept\n\
             \t}}\n\
             }}\n",
            tigervnc::FIRST_PORT,
            self.last_port
        )
    }
}

/// The command that shows the running firewall's rules where edge-setup's are
/// (what `diag collect` puts in its bundle).
pub fn listing(backend: Backend) -> Cmd {
    match backend {
        Backend::Firewalld => Cmd::new(Tool::FirewallCmd).arg("--list-all"),
        Backend::Ufw => Cmd::new(Tool::Ufw).args(["status", "verbose"]),
        Backend::Nftables => Cmd::new(Tool::Nft).args(["list", "table", "inet", NFT_TABLE]),
    }
}

fn service_last_port() -> u16 {
    tigervnc::port(SERVICE_LAST_DISPLAY)
}

fn firewall_cmd(change: &str) -> Cmd {
    Cmd::new(Tool::FirewallCmd).args(["--permanent", change])
}

/// The firewall in charge: firewalld when installed (and running, on a live system),
/// else ufw, else nftables; `None` when there is none.
pub fn detect(sys: &System) -> Result<Option<Backend>> {
    if has_program(sys, "firewall-cmd")? {
        let running = match sys.query(Cmd::new(Tool::FirewallCmd).arg("--state"))? {
            Some(out) => out.success(),
            None => true,
        };
        if running {
            return Ok(Some(Backend::Firewalld));
        }
    }
    if has_program(sys, "ufw")? {
        return Ok(Some(Backend::Ufw));
    }
    if has_program(sys, "nft")? {
        return Ok(Some(Backend::Nftables));
    }
    Ok(None)
}

/// The highest display in the mapping files (0 when no user is enabled yet).
pub fn highest_display(sys: &System) -> Result<u32> {
    let (mappings, _) = crate::vnc_user::load_mappings(sys)?;
    Ok(mappings.used().last().copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_the_highest_display() {
        let r = Rule::new(Backend::Firewalld, 0);
        assert_eq!(r.last_port, 5903);
        assert_eq!(r.extra_ports(), None);
        let r = Rule::new(Backend::Firewalld, 12);
        assert_eq!(r.extra_ports().as_deref(), Some("5904-5912/tcp"));
        assert_eq!(Rule::new(Backend::Ufw, 5).ufw_ports(), "5900:5905/tcp");
        let nft = Rule::new(Backend::Nftables, 7).nft_file();
        assert!(nft.contains("tcp dport 5900-5907 accept"));
        assert!(nft.contains("flush table inet edge_setup"));
    }
}
