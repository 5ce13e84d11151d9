//! The Edge device ID: the name the appliance registers under in Cumulocity.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};
pub use crate::values::DeviceId;

/// Where the appliance keeps its device ID (read by the Edge agent).
pub const PATH: &str = "/usr/edge/properties/edge-agent/device-id";
const DMI_SERIAL: &str = "/sys/class/dmi/id/product_serial";
const MACHINE_ID: &str = "/etc/machine-id";

/// The registration steps the user follows in Cumulocity.
pub const REGISTRATION_STEPS: &str = "Register it in Cumulocity: Device Management > Registration > Register device > \
General device registration, enter the ID, then Accept once the device shows \"Pending acceptance\".";

/// The ID on the appliance, `None` when none is set. A file that holds an
/// invalid ID is an error naming the file and the rule.
pub fn read(sys: &System) -> Result<Option<DeviceId>> {
    let Some(text) = sys.read_string(Path::new(PATH))? else {
        return Ok(None);
    };
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    DeviceId::parse(line).map(Some).map_err(|rule| {
        Error::failure(format!(
            "{} holds an invalid device ID",
            sys.host_path(Path::new(PATH)).display()
        ))
        .why(rule)
        .hint("set a valid one: sudo edge-setup device-id set <ID>")
    })
}

/// The error for "no device ID": it says how to set one.
pub fn missing() -> Error {
    Error::failure("no Edge device ID is set on this appliance").hint(
        "derive one from this machine with 'sudo edge-setup device-id generate', or choose one with 'sudo edge-setup device-id set <ID>'",
    )
}

/// Writes the ID (one line, root, 0644).
pub fn write(sys: &System, id: &DeviceId) -> Result<Change> {
    sys.write(Path::new(PATH), format!("{id}\n").as_bytes(), FileSpec::root(0o644))
}

pub fn parse_arg(s: &str) -> Result<DeviceId> {
    DeviceId::parse(s).map_err(|rule| {
        Error::bad_input(format!("'{}' is not a valid device ID", s.escape_debug()))
            .why(rule)
            .hint("choose 1 to 64 characters of letters, digits, '-', '_', '.', ':' and run 'edge-setup device-id set <ID>' again")
    })
}

/// Derives a stable ID from the machine: the DMI product serial when it is
/// meaningful, else a hash of /etc/machine-id (never the raw machine ID, which
/// systemd asks applications not to expose).
pub fn derive(sys: &System) -> Result<DeviceId> {
    if let Some(serial) = sys.read_string(Path::new(DMI_SERIAL)).ok().flatten()
        && let Some(id) = from_serial(&serial)
    {
        return Ok(id);
    }
    let machine_id = sys.read_string(Path::new(MACHINE_ID))?.unwrap_or_default();
    let machine_id = machine_id.trim();
    if machine_id.len() != 32 || !machine_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::failure(format!(
            "cannot derive a device ID: no meaningful DMI serial and {} is {}",
            sys.host_path(Path::new(MACHINE_ID)).display(),
            if machine_id.is_empty() {
                "missing or empty"
            } else {
                "not a machine ID"
            }
        ))
        .hint("run 'systemd-machine-id-setup' first, or choose an ID: sudo edge-setup device-id set <ID>"));
    }
    let digest = Sha256::new()
        .chain_update(b"edge-setup device-id\0")
        .chain_update(machine_id.to_ascii_lowercase().as_bytes())
        .finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    Ok(DeviceId::parse(&format!("edge-{hex}")).expect("edge- and hex digits are a valid device ID"))
}

/// Serials firmware vendors leave in place of a real one.
const PLACEHOLDER_SERIALS: &[&str] = &[
    "none",
    "null",
    "n/a",
    "na",
    "0",
    "default string",
    "to be filled by o.e.m.",
    "system serial number",
    "not specified",
    "not applicable",
    "not available",
    "unknown",
    "chassis serial number",
    "serial",
    "0123456789",
    "123456789",
];

fn from_serial(raw: &str) -> Option<DeviceId> {
    let serial = raw.trim();
    let lower = serial.to_ascii_lowercase();
    if serial.len() < 4 || PLACEHOLDER_SERIALS.contains(&lower.as_str()) {
        return None;
    }
    // all one character ("00000000", "xxxxxx") carries no identity
    let mut chars = serial.chars().filter(|c| c.is_ascii_alphanumeric());
    let first = chars.next()?;
    if chars.all(|c| c == first) {
        return None;
    }
    // VMware-style "VMware-56 4d ..." serials: keep the identity, drop the spaces
    let cleaned: String = serial
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    DeviceId::parse(&cleaned).ok()
}

/// Writes the ID as a step of the run.
pub fn store(sys: &System, id: &DeviceId) -> Result<Change> {
    let step = sys.out().step(&format!("Writing the device ID {id} to {PATH}"));
    let change = write(sys, id)?;
    step.done(sys.change_word(change));
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_named() {
        assert!(DeviceId::parse("edge-01.plant:7_a").is_ok());
        assert_eq!(DeviceId::parse("").unwrap_err(), "a device ID cannot be empty");
        assert!(DeviceId::parse("a b").unwrap_err().contains("white space"));
        assert!(DeviceId::parse("a/b").unwrap_err().contains("'/'"));
        assert!(DeviceId::parse("a\u{7}b").unwrap_err().contains("control"));
        assert!(DeviceId::parse(&"a".repeat(65)).unwrap_err().contains("at most 64"));
        assert!(DeviceId::parse(&"a".repeat(64)).is_ok());
        assert!(DeviceId::parse("dév").unwrap_err().contains("ASCII"));
        assert!(DeviceId::parse("-x").unwrap_err().contains("start with"));
    }

    #[test]
    fn placeholder_serials_are_ignored() {
        for s in [
            "",
            "0",
            "Default string",
            "To be filled by O.E.M.",
            "00000000",
            "None\n",
        ] {
            assert_eq!(from_serial(s), None, "{s:?}");
        }
        assert_eq!(from_serial("PF3ABCD7\n").unwrap().as_str(), "PF3ABCD7");
        assert_eq!(
            from_serial("VMware-56 4d 2a 9f").unwrap().as_str(),
            "VMware-56-4d-2a-9f"
        );
    }
}
