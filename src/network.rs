//! Option 1 of the wizard: a static IPv4 address for the appliance, written for
//! the network stack the appliance actually uses, with the previous files kept
//! so `--rollback` restores them.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::FileSpec;
use crate::system::runner::{Cmd, Tool};

/// Where the files replaced by the last network change are kept.
pub const ROLLBACK_FILE: &str = "/var/lib/edge-setup/network-rollback.json";

/// Validated static settings for one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub dns: Ipv4Addr,
}

pub fn parse_ip(s: &str) -> Result<Ipv4Addr, String> {
    s.trim().parse::<Ipv4Addr>().map_err(|_| {
        format!(
            "'{}' is not an IPv4 address (four numbers 0-255 separated by dots)",
            s.trim()
        )
    })
}

/// A netmask as dotted quad (`255.255.255.0`) or prefix length (`/24`, `24`).
pub fn parse_netmask(s: &str) -> Result<u8, String> {
    let s = s.trim();
    let bare = s.strip_prefix('/').unwrap_or(s);
    if !bare.contains('.') {
        return match bare.parse::<u8>() {
            Ok(p) if (1..=32).contains(&p) => Ok(p),
            _ => Err(format!(
                "'{s}' is not a netmask: give a prefix length 1-32 or a mask like 255.255.255.0"
            )),
        };
    }
    let mask = u32::from(parse_ip(bare).map_err(|_| format!("'{s}' is not a netmask like 255.255.255.0"))?);
    let prefix = mask.leading_ones();
    if mask.checked_shl(prefix).unwrap_or(0) != 0 || prefix == 0 {
        return Err(format!(
            "'{s}' is not a contiguous netmask (its one bits must all come first)"
        ));
    }
    Ok(prefix as u8)
}

pub fn netmask_of(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
}

/// An interface name as the kernel accepts it.
pub fn parse_interface(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty()
        || s.len() > 15
        || s == "."
        || s == ".."
        || s.chars().any(|c| c == '/' || c.is_whitespace() || c == ':')
    {
        return Err(format!(
            "'{s}' is not an interface name (1-15 characters, no '/', ':' or spaces)"
        ));
    }
    Ok(s.to_string())
}

impl Settings {
    /// Checks the combination: gateway inside the subnet, neither address the
    /// network or broadcast address, gateway not the appliance itself.
    pub fn validate(&self) -> Result<(), String> {
        let mask = u32::from(netmask_of(self.prefix));
        let addr = u32::from(self.address);
        let net = addr & mask;
        let broadcast = net | !mask;
        if self.prefix <= 30 {
            if addr == net {
                return Err(format!(
                    "{} is the network address of {}/{}",
                    self.address,
                    Ipv4Addr::from(net),
                    self.prefix
                ));
            }
            if addr == broadcast {
                return Err(format!(
                    "{} is the broadcast address of {}/{}",
                    self.address,
                    Ipv4Addr::from(net),
                    self.prefix
                ));
            }
        }
        let gw = u32::from(self.gateway);
        if gw & mask != net {
            return Err(format!(
                "the gateway {} is outside the subnet {}/{} of {}",
                self.gateway,
                Ipv4Addr::from(net),
                self.prefix,
                self.address
            ));
        }
        if self.prefix <= 30 && (gw == net || gw == broadcast) {
            return Err(format!(
                "the gateway {} is the network or broadcast address of its subnet",
                self.gateway
            ));
        }
        if gw == addr {
            return Err(format!("the gateway {} is the appliance's own address", self.gateway));
        }
        if self.address.is_loopback() || self.address.is_multicast() || self.address.is_unspecified() {
            return Err(format!("{} cannot be the appliance's address", self.address));
        }
        Ok(())
    }
}

/// The network stacks edge-setup writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    NetworkManager,
    Networkd,
    Ifupdown,
    Ifcfg,
}

impl Stack {
    pub const ALL: [Stack; 4] = [Stack::NetworkManager, Stack::Networkd, Stack::Ifupdown, Stack::Ifcfg];

    pub fn name(self) -> &'static str {
        match self {
            Stack::NetworkManager => "networkmanager",
            Stack::Networkd => "networkd",
            Stack::Ifupdown => "ifupdown",
            Stack::Ifcfg => "ifcfg",
        }
    }

    pub fn parse(s: &str) -> Result<Stack, String> {
        Stack::ALL.into_iter().find(|st| st.name() == s.trim()).ok_or_else(|| {
            format!(
                "expected one of networkmanager, networkd, ifupdown, ifcfg, not '{}'",
                s.trim()
            )
        })
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn exists(sys: &System, path: &str) -> Result<bool> {
    Ok(sys.meta(Path::new(path))?.is_some())
}

fn enabled_unit(sys: &System, unit: &str) -> Result<bool> {
    for wants in [
        "/etc/systemd/system/multi-user.target.wants",
        "/etc/systemd/system/network-online.target.wants",
    ] {
        if exists(sys, &format!("{wants}/{unit}"))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The stack in use: NetworkManager when installed and enabled, then RHEL's
/// legacy network-scripts, systemd-networkd when enabled, then ifupdown.
pub fn detect_stack(sys: &System) -> Result<Stack> {
    let nm_installed = exists(sys, "/usr/sbin/NetworkManager")?;
    if nm_installed && (enabled_unit(sys, "NetworkManager.service")? || !exists(sys, "/etc/network/interfaces")?) {
        return Ok(Stack::NetworkManager);
    }
    if exists(sys, "/etc/sysconfig/network-scripts")? && !nm_installed {
        return Ok(Stack::Ifcfg);
    }
    if enabled_unit(sys, "systemd-networkd.service")? {
        return Ok(Stack::Networkd);
    }
    if exists(sys, "/etc/network/interfaces")? {
        return Ok(Stack::Ifupdown);
    }
    Err(Error::failure("cannot tell which network stack this appliance uses")
        .why("none of NetworkManager, systemd-networkd (enabled), /etc/network/interfaces or /etc/sysconfig/network-scripts was found")
        .hint("name it: edge-setup setup network --stack networkmanager|networkd|ifupdown|ifcfg"))
}

/// Ethernet interfaces (kernel type 1, not virtual) and whether each is up.
pub fn interfaces(sys: &System) -> Result<Vec<(String, bool)>> {
    let mut found = Vec::new();
    for name in sys.list_dir(Path::new("/sys/class/net"))? {
        let name = name.to_string_lossy().into_owned();
        let base = format!("/sys/class/net/{name}");
        let kind = sys
            .read_string(Path::new(&format!("{base}/type")))
            .ok()
            .flatten()
            .unwrap_or_default();
        if name == "lo" || kind.trim() != "1" {
            continue;
        }
        // virtual devices (bridges, veth, docker) have no backing device
        if sys.meta(Path::new(&format!("{base}/device")))?.is_none() {
            continue;
        }
        let state = sys
            .read_string(Path::new(&format!("{base}/operstate")))
            .ok()
            .flatten()
            .unwrap_or_default();
        found.push((name, state.trim() == "up"));
    }
    Ok(found)
}

/// A file the stack needs, and how to bring the interface up with it.
pub struct Plan {
    pub files: Vec<(PathBuf, String, FileSpec)>,
    pub apply: Vec<Cmd>,
}

const HEADER: &str =
    "Written by 'edge-setup setup network'; 'edge-setup setup network --rollback' restores the previous file.";

/// The files and commands for `settings` on `stack`. `current` reads existing
/// files (ifupdown's interfaces file is edited, not replaced).
pub fn plan(sys: &System, stack: Stack, s: &Settings) -> Result<Plan> {
    let cidr = format!("{}/{}", s.address, s.prefix);
    let iface = &s.interface;
    Ok(match stack {
        Stack::NetworkManager => {
            let id = format!("edge-setup-{iface}");
            let body = format!(
                "# {HEADER}\n[connection]\nid={id}\ntype=ethernet\ninterface-name={iface}\nautoconnect=true\nautoconnect-priority=100\n\n\
                 [ipv4]\nmethod=manual\naddress1={cidr},{gw}\ndns={dns};\nignore-auto-dns=true\n\n[ipv6]\nmethod=auto\n",
                gw = s.gateway,
                dns = s.dns
            );
            Plan {
                files: vec![(
                    PathBuf::from(format!("/etc/NetworkManager/system-connections/{id}.nmconnection")),
                    body,
                    FileSpec::root(0o600),
                )],
                apply: vec![
                    Cmd::new(Tool::Nmcli).args(["connection", "reload"]),
                    Cmd::new(Tool::Nmcli).args(["connection", "up", "id", &id]),
                ],
            }
        }
        Stack::Networkd => {
            let body = format!(
                "# {HEADER}\n[Match]\nName={iface}\n\n[Network]\nAddress={cidr}\nGateway={gw}\nDNS={dns}\n",
                gw = s.gateway,
                dns = s.dns
            );
            let mut files = vec![(
                PathBuf::from(format!("/etc/systemd/network/10-edge-setup-{iface}.network")),
                body,
                FileSpec::root(0o644),
            )];
            // networkd's DNS= reaches resolv.conf only through systemd-resolved (whose
            // stub resolv.conf is a link); without it resolv.conf must name the server.
            if !sys.is_link(Path::new("/etc/resolv.conf"))? {
                files.extend(dns_file(sys, s.dns)?);
            }
            Plan {
                files,
                apply: vec![
                    Cmd::new(Tool::Networkctl).arg("reload"),
                    Cmd::new(Tool::Networkctl).args(["reconfigure", iface]),
                ],
            }
        }
        Stack::Ifupdown => {
            let current = sys
                .read_string(Path::new("/etc/network/interfaces"))?
                .unwrap_or_default();
            let stanza = format!(
                "# {HEADER}\niface {iface} inet static\n    address {cidr}\n    gateway {gw}\n",
                gw = s.gateway
            );
            let mut files = vec![(
                PathBuf::from("/etc/network/interfaces"),
                replace_stanza(&current, iface, &stanza),
                FileSpec::root(0o644),
            )];
            files.extend(dns_file(sys, s.dns)?);
            Plan {
                files,
                apply: vec![
                    Cmd::new(Tool::Ifdown).args(["--force", iface]),
                    Cmd::new(Tool::Ifup).arg(iface),
                ],
            }
        }
        Stack::Ifcfg => {
            let body = format!(
                "# {HEADER}\nDEVICE={iface}\nNAME={iface}\nTYPE=Ethernet\nBOOTPROTO=none\nONBOOT=yes\nIPADDR={ip}\nPREFIX={p}\nGATEWAY={gw}\nDNS1={dns}\nDEFROUTE=yes\n",
                ip = s.address,
                p = s.prefix,
                gw = s.gateway,
                dns = s.dns
            );
            Plan {
                files: vec![(
                    PathBuf::from(format!("/etc/sysconfig/network-scripts/ifcfg-{iface}")),
                    body,
                    FileSpec::root(0o644),
                )],
                apply: vec![Cmd::new(Tool::Ifdown).arg(iface), Cmd::new(Tool::Ifup).arg(iface)],
            }
        }
    })
}

/// DNS for stacks without a DNS setting of their own: systemd-resolved's drop-in
/// when resolv.conf points at its stub, else resolv.conf itself.
fn dns_file(sys: &System, dns: Ipv4Addr) -> Result<Option<(PathBuf, String, FileSpec)>> {
    if sys.is_link(Path::new("/etc/resolv.conf"))? {
        return Ok(Some((
            PathBuf::from("/etc/systemd/resolved.conf.d/edge-setup.conf"),
            format!("# {HEADER}\n[Resolve]\nDNS={dns}\n"),
            FileSpec::root(0o644),
        )));
    }
    Ok(Some((
        PathBuf::from("/etc/resolv.conf"),
        format!("# {HEADER}\nnameserver {dns}\n"),
        FileSpec::root(0o644),
    )))
}

/// Replaces the `iface NAME ...` stanza of an interfaces(5) file (or appends one),
/// keeping every other line, and makes sure the interface is brought up at boot.
pub fn replace_stanza(text: &str, iface: &str, stanza: &str) -> String {
    let starts_stanza = |l: &str| {
        let first = l.split_whitespace().next().unwrap_or("");
        matches!(first, "iface" | "auto" | "mapping" | "source" | "source-directory") || first.starts_with("allow-")
    };
    let ours = |l: &str| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= 2 && w[0] == "iface" && w[1] == iface && w.get(2).is_none_or(|f| *f == "inet")
    };
    let mut out = Vec::new();
    let mut skipping = false;
    let mut replaced = false;
    let mut has_auto = false;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with(&format!("# {HEADER}")) {
            continue;
        }
        if ours(t) {
            skipping = true;
            if !replaced {
                out.push(stanza.trim_end().to_string());
                replaced = true;
            }
            continue;
        }
        if skipping
            && (starts_stanza(t) || (t.is_empty() && lines.peek().is_some_and(|n| starts_stanza(n.trim_start()))))
        {
            skipping = false;
        }
        if skipping {
            continue;
        }
        let w: Vec<&str> = t.split_whitespace().collect();
        if (w.first() == Some(&"auto") || w.first().is_some_and(|f| f.starts_with("allow-"))) && w[1..].contains(&iface)
        {
            has_auto = true;
        }
        out.push(line.to_string());
    }
    if !replaced {
        if out.last().is_some_and(|l| !l.trim().is_empty()) {
            out.push(String::new());
        }
        out.push(stanza.trim_end().to_string());
    }
    if !has_auto {
        let pos = out
            .iter()
            .position(|l| l.contains(&format!("iface {iface} inet static")))
            .unwrap_or(out.len());
        out.insert(pos, format!("auto {iface}"));
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// A file as it was before a network change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    /// `None` when the file did not exist (rollback removes it).
    pub content: Option<String>,
    pub mode: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rollback {
    pub stack: Stack,
    pub interface: String,
    pub files: Vec<Saved>,
}

/// Writes the plan's files, keeping what they replace for `--rollback`; returns
/// whether anything changed.
pub fn write(sys: &System, stack: Stack, s: &Settings, plan: &Plan) -> Result<bool> {
    let mut saved = Vec::new();
    let mut changed = false;
    for (path, body, spec) in &plan.files {
        let old = sys.read_string(path)?;
        if old.as_deref() != Some(body.as_str()) {
            changed = true;
        }
        let mode = sys.meta(path)?.map(|m| m.mode).unwrap_or(spec.mode);
        saved.push(Saved {
            path: path.clone(),
            content: old,
            mode,
        });
    }
    if !changed {
        return Ok(false);
    }
    let rollback = Rollback {
        stack,
        interface: s.interface.clone(),
        files: saved,
    };
    let json = serde_json::to_string_pretty(&rollback).expect("rollback state serialises");
    sys.write(Path::new(ROLLBACK_FILE), json.as_bytes(), FileSpec::root(0o600))?;
    for (path, body, spec) in &plan.files {
        sys.write(path, body.as_bytes(), *spec)?;
    }
    Ok(true)
}

/// Restores the files saved by the last change; returns the stack and interface.
pub fn rollback(sys: &System) -> Result<Rollback> {
    let text = sys.read_string(Path::new(ROLLBACK_FILE))?.ok_or_else(|| {
        Error::failure("there is no earlier network configuration to restore").why(format!(
            "{ROLLBACK_FILE} does not exist: edge-setup has not changed the network here"
        ))
    })?;
    let rb: Rollback = serde_json::from_str(&text).map_err(|e| {
        Error::failure(format!(
            "{} is damaged",
            sys.host_path(Path::new(ROLLBACK_FILE)).display()
        ))
        .why(e)
        .hint("restore the network files by hand")
    })?;
    for f in &rb.files {
        match &f.content {
            Some(c) => {
                sys.write(&f.path, c.as_bytes(), FileSpec::root(f.mode))?;
            }
            None => {
                sys.remove(&f.path)?;
            }
        }
    }
    sys.remove(Path::new(ROLLBACK_FILE))?;
    Ok(rb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("255.255.255.0"), Ok(24));
        assert_eq!(parse_netmask("/16"), Ok(16));
        assert_eq!(parse_netmask("32"), Ok(32));
        assert!(parse_netmask("255.0.255.0").unwrap_err().contains("contiguous"));
        assert!(parse_netmask("0.0.0.0").is_err());
        assert!(parse_netmask("33").is_err());
        assert!(parse_netmask("255.255.255.256").is_err());
        assert_eq!(netmask_of(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask_of(32), Ipv4Addr::new(255, 255, 255, 255));
    }

    fn s(ip: &str, prefix: u8, gw: &str) -> Settings {
        Settings {
            interface: "eth0".into(),
            address: ip.parse().unwrap(),
            prefix,
            gateway: gw.parse().unwrap(),
            dns: gw.parse().unwrap(),
        }
    }

    #[test]
    fn combinations() {
        assert!(s("192.168.1.10", 24, "192.168.1.1").validate().is_ok());
        assert!(
            s("192.168.1.10", 24, "192.168.2.1")
                .validate()
                .unwrap_err()
                .contains("outside the subnet")
        );
        assert!(
            s("192.168.1.0", 24, "192.168.1.1")
                .validate()
                .unwrap_err()
                .contains("network address")
        );
        assert!(
            s("192.168.1.255", 24, "192.168.1.1")
                .validate()
                .unwrap_err()
                .contains("broadcast")
        );
        assert!(
            s("192.168.1.10", 24, "192.168.1.255")
                .validate()
                .unwrap_err()
                .contains("broadcast")
        );
        assert!(
            s("192.168.1.10", 24, "192.168.1.10")
                .validate()
                .unwrap_err()
                .contains("own address")
        );
        assert!(s("10.0.0.0", 31, "10.0.0.1").validate().is_ok());
    }

    #[test]
    fn interfaces_stanza_is_replaced_and_the_rest_kept() {
        let text = "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n    hostname x\n\nauto eth1\niface eth1 inet dhcp\n";
        let st = "iface eth0 inet static\n    address 10.0.0.2/24\n    gateway 10.0.0.1\n";
        let out = replace_stanza(text, "eth0", st);
        assert_eq!(
            out,
            "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet static\n    address 10.0.0.2/24\n    gateway 10.0.0.1\n\nauto eth1\niface eth1 inet dhcp\n"
        );
        // idempotent
        assert_eq!(replace_stanza(&out, "eth0", st), out);
        // a missing interface is appended with auto
        let out = replace_stanza("auto lo\niface lo inet loopback\n", "ens3", &st.replace("eth0", "ens3"));
        assert!(
            out.ends_with("auto ens3\niface ens3 inet static\n    address 10.0.0.2/24\n    gateway 10.0.0.1\n"),
            "{out}"
        );
    }
}
