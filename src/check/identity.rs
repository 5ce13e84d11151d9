//! Who this appliance is: its device ID, its machine ID, its host name.

use std::path::Path;

use crate::health::{Area, Check, Fix, Probe};
use crate::vnc::health;

const AREA: Area = Area::Identity;

pub fn checks(p: &Probe) -> Vec<Check> {
    vec![device_id(p), machine_id(p), host_name(p)]
}

fn device_id(p: &Probe) -> Check {
    let id = "identity.device-id";
    match crate::device_id::read(p.sys) {
        Ok(Some(dev)) => Check::ok(AREA, id, format!("{dev}")),
        Ok(None) if p.sys.is_image() => Check::ok(
            AREA,
            id,
            "none in the image: each appliance derives its own at its first boot",
        ),
        Ok(None) => Check::fail(
            AREA,
            id,
            format!("no device ID is set ({} is missing or empty)", crate::device_id::PATH),
            "sudo edge-setup device-id generate (or: sudo edge-setup device-id set ID)",
        ),
        Err(e) => Check::failed(AREA, id, e, || p.sys.next_command("device-id set ID")),
    }
}

/// The values systemd and image tools leave where no machine ID was made.
fn placeholder(text: &str) -> bool {
    let t = text.trim();
    t.is_empty() || t == "uninitialized" || t.chars().all(|c| c == '0') || t.len() != 32
}

fn machine_id(p: &Probe) -> Check {
    let id = "identity.machine-id";
    let text = match p.sys.read_string(Path::new("/etc/machine-id")) {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return Check::failed(AREA, id, e, || "sudo systemd-machine-id-setup".into()),
    };
    match (placeholder(&text), p.sys.is_image()) {
        (false, _) => Check::ok(AREA, id, "set"),
        // a prepared image empties it on purpose: systemd makes one at the first boot
        (true, true) => Check::ok(AREA, id, "empty: systemd makes one at the first boot"),
        (true, false) => Check::fail(
            AREA,
            id,
            format!(
                "/etc/machine-id is {}: clones would share one identity",
                if text.trim().is_empty() {
                    "empty".to_string()
                } else {
                    format!("'{}'", text.trim())
                }
            ),
            "sudo rm -f /etc/machine-id && sudo systemd-machine-id-setup",
        ),
    }
}

fn host_name(p: &Probe) -> Check {
    let id = "identity.host-name";
    match health::hosts_line(p.sys) {
        Ok(Some((name, true))) => Check::ok(AREA, id, format!("{name} is in /etc/hosts")),
        Ok(Some((name, false))) => Check::fail(
            AREA,
            id,
            format!(
                "{name} is not in /etc/hosts: Debian's TigerVNC starts no session for a name that does not resolve"
            ),
            p.sys.next_command("vnc"),
        )
        .fixable(p.sys, Fix::HostsLine),
        Ok(None) => match (p.sys.hostname(), p.live_only()) {
            (_, Some(why)) => Check::skipped(AREA, id, format!("VNC is not set up, and resolving {why}")),
            (None, None) => Check::warn(AREA, id, "the host name cannot be read", "hostnamectl"),
            (Some(name), None) => match crate::agent::dns::resolve(&name, 0) {
                Ok(_) => Check::ok(AREA, id, format!("{name} resolves")),
                Err(why) => Check::warn(
                    AREA,
                    id,
                    format!("{name} does not resolve: {why}"),
                    format!("add it to /etc/hosts: echo '127.0.1.1 {name}' | sudo tee -a /etc/hosts"),
                ),
            },
        },
        Err(e) => Check::failed(AREA, id, e, || p.sys.next_command("vnc")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id_placeholders() {
        assert!(placeholder(""));
        assert!(placeholder("uninitialized\n"));
        assert!(placeholder("00000000000000000000000000000000\n"));
        assert!(placeholder("abc"));
        assert!(!placeholder("4f1c2a7e9b0d4c3e8a6f5b2d1c0e9f8a\n"));
    }
}
