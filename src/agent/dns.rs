//! Whether the target names a DNS server, and whether a host name resolves.
//!
//! `/etc/resolv.conf` is the first word (read through a trusted symbolic link,
//! as the fs layer does). When it names only systemd-resolved's stub
//! (127.0.0.53, or the proxy stub 127.0.0.54), or is a link into an empty /run
//! (an image), the real servers are those systemd-resolved knows: its runtime
//! list in /run/systemd/resolve/resolv.conf, `DNS=`/`FallbackDNS=` in
//! resolved.conf and its drop-ins, and `DNS=` in systemd-networkd's .network files.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::system::System;

pub const RESOLV_CONF: &str = "/etc/resolv.conf";
const RESOLVED_RUNTIME: &str = "/run/systemd/resolve/resolv.conf";
const RESOLVED_CONF: &str = "/etc/systemd/resolved.conf";
/// Drop-in directories of resolved.conf, most important first (same-named files
/// in /etc override /run, which override /usr/lib).
const RESOLVED_DROPINS: &[&str] = &[
    "/etc/systemd/resolved.conf.d",
    "/run/systemd/resolved.conf.d",
    "/usr/lib/systemd/resolved.conf.d",
];
const NETWORKD_DIRS: &[&str] = &["/etc/systemd/network", "/run/systemd/network"];
const STUBS: &[&str] = &["127.0.0.53", "127.0.0.54"];

/// The name servers the target is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    pub servers: Vec<String>,
    /// The target file the servers were found in (resolv.conf when none were).
    pub source: String,
    /// /etc/resolv.conf points at systemd-resolved's stub.
    pub resolved_stub: bool,
}

impl Dns {
    pub fn configured(&self) -> bool {
        !self.servers.is_empty()
    }

    /// "1.1.1.1, 9.9.9.9 from /etc/resolv.conf", for messages.
    pub fn describe(&self) -> String {
        if self.servers.is_empty() {
            return "no name server".into();
        }
        format!("{} from {}", self.servers.join(", "), self.source)
    }
}

/// Finds the name servers of the target.
pub fn inspect(sys: &System) -> Result<Dns> {
    let resolv = sys.read_string(Path::new(RESOLV_CONF))?;
    let listed = resolv.as_deref().map(resolv_conf_servers).unwrap_or_default();
    let dangling_link = resolv.is_none() && sys.is_link(Path::new(RESOLV_CONF))?;
    let only_stubs = !listed.is_empty() && listed.iter().all(|s| STUBS.contains(&s.as_str()));
    if !only_stubs && !dangling_link {
        return Ok(Dns {
            servers: listed,
            source: RESOLV_CONF.into(),
            resolved_stub: false,
        });
    }
    let resolved = |servers: Vec<String>, source: &str| Dns {
        servers,
        source: source.into(),
        resolved_stub: true,
    };
    if let Some(text) = sys.read_string(Path::new(RESOLVED_RUNTIME))? {
        let servers: Vec<String> = resolv_conf_servers(&text)
            .into_iter()
            .filter(|s| !STUBS.contains(&s.as_str()))
            .collect();
        if !servers.is_empty() {
            return Ok(resolved(servers, RESOLVED_RUNTIME));
        }
    }
    let mut files = vec![PathBuf::from(RESOLVED_CONF)];
    files.extend(dropins(sys, RESOLVED_DROPINS, ".conf")?);
    let mut dns = Vec::new();
    let mut fallback = Vec::new();
    for file in &files {
        if let Some(text) = sys.read_string(file)? {
            apply_ini_list(&text, "Resolve", "DNS", &mut dns);
            apply_ini_list(&text, "Resolve", "FallbackDNS", &mut fallback);
        }
    }
    dns.extend(fallback);
    if !dns.is_empty() {
        return Ok(resolved(dns, RESOLVED_CONF));
    }
    for file in dropins(sys, NETWORKD_DIRS, ".network")? {
        let mut servers = Vec::new();
        if let Some(text) = sys.read_string(&file)? {
            apply_ini_list(&text, "Network", "DNS", &mut servers);
        }
        if !servers.is_empty() {
            return Ok(resolved(servers, &file.to_string_lossy()));
        }
    }
    Ok(resolved(Vec::new(), RESOLV_CONF))
}

/// The `nameserver` addresses of a resolv.conf, in order (invalid ones are
/// ignored, as the C library does).
fn resolv_conf_servers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr = words.next()?;
            let bare = addr.split('%').next().unwrap_or(addr);
            bare.parse::<IpAddr>().ok().map(|_| addr.to_string())
        })
        .collect()
}

/// Files with `suffix` in drop-in directories, ordered by file name; a name in
/// an earlier directory hides the same name in later ones.
fn dropins(sys: &System, dirs: &[&str], suffix: &str) -> Result<Vec<PathBuf>> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in dirs {
        for name in sys.list_dir(Path::new(dir))? {
            let name = name.to_string_lossy().into_owned();
            if name.ends_with(suffix) && !by_name.contains_key(&name) {
                by_name.insert(name.clone(), Path::new(dir).join(&name));
            }
        }
    }
    Ok(by_name.into_values().collect())
}

/// Applies a systemd list setting (`KEY=a b`, an empty `KEY=` resets) from
/// `[section]` of a unit-style file.
fn apply_ini_list(text: &str, section: &str, key: &str, list: &mut Vec<String>) {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with(';') || t.is_empty() {
            continue;
        }
        if t.starts_with('[') {
            in_section = t == format!("[{section}]");
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        if in_section && k.trim() == key {
            let values: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if values.is_empty() {
                list.clear();
            }
            list.extend(values);
        }
    }
}

/// What resolving the tenant's host gave: the number of addresses, or why not.
pub type Resolution = std::result::Result<usize, String>;

/// Resolves `host` with the system's resolver (live systems only).
pub fn resolve(host: &str, port: u16) -> Resolution {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => match addrs.count() {
            0 => Err("no address".into()),
            n => Ok(n),
        },
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# generated\nsearch lan\nnameserver 192.168.1.1\n; nameserver 8.8.8.8\nnameserver fe80::1%eth0\nnameserver bogus\noptions edns0\n";
        assert_eq!(resolv_conf_servers(text), vec!["192.168.1.1", "fe80::1%eth0"]);
        assert!(resolv_conf_servers("search lan\n").is_empty());
    }

    #[test]
    fn systemd_lists_append_and_reset() {
        let mut list = Vec::new();
        apply_ini_list(
            "[Resolve]\nDNS=1.1.1.1 9.9.9.9#dns.quad9.net\n#DNS=8.8.8.8\n[Other]\nDNS=7.7.7.7\n",
            "Resolve",
            "DNS",
            &mut list,
        );
        assert_eq!(list, vec!["1.1.1.1", "9.9.9.9#dns.quad9.net"]);
        apply_ini_list("[Resolve]\nDNS=\nDNS=10.0.0.1\n", "Resolve", "DNS", &mut list);
        assert_eq!(list, vec!["10.0.0.1"]);
    }
}
