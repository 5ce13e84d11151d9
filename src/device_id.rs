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
pub fn missing(sys: &System) -> Error {
    if sys.is_image() {
        return Error::failure("no Edge device ID is set in this image").hint(
            "each appliance made from it derives its own: run 'sudo edge-setup device-id generate' on the appliance; or give this image one: 'sudo edge-setup device-id set <ID>'",
        );
    }
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
    if sys.is_image() {
        return Err(not_in_an_image());
    }
    if let Some(serial) = sys.read_string(Path::new(DMI_SERIAL)).ok().flatten()
        && let Some(id) = from_serial(&serial)
    {
        return Ok(id);
    }
    let machine_id = sys.read_string(Path::new(MACHINE_ID))?.unwrap_or_default();
    let machine_id = machine_id.trim();
    let problem = if machine_id.is_empty() {
        Some("missing or empty")
    } else if machine_id.len() != 32 || !machine_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some("not a machine ID")
    } else if machine_id.bytes().all(|b| b == machine_id.as_bytes()[0]) {
        // a placeholder some image builders leave: every machine would share it
        Some("a placeholder (one digit 32 times), not this machine's own ID")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(Error::failure(format!(
            "cannot derive a device ID: no meaningful DMI serial and {} is {problem}",
            sys.host_path(Path::new(MACHINE_ID)).display(),
        ))
        .hint("give this machine its own machine ID (sudo rm -f /etc/machine-id && sudo systemd-machine-id-setup), or choose a device ID: sudo edge-setup device-id set <ID>"));
    }
    let digest = Sha256::new()
        .chain_update(b"edge-setup device-id\0")
        .chain_update(machine_id.to_ascii_lowercase().as_bytes())
        .finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    Ok(DeviceId::parse(&format!("edge-{hex}")).expect("edge- and hex digits are a valid device ID"))
}

/// The refusal to derive an ID in image mode: the image's machine ID (and the
/// build host's DMI serial) would give every appliance made from it the same one.
fn not_in_an_image() -> Error {
    Error::bad_input("a device ID is not derived in an image")
        .why("every appliance made from the image would get the same one, and Cumulocity would see them as one device")
        .hint("run 'sudo edge-setup device-id generate' on each appliance, or give this image its own: 'sudo edge-setup device-id set <ID>'")
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
    use crate::system::Mode;
    use crate::testkit::Fixture;

    const MACHINE: &str = "4c4c4544004e3510804bc4c04f4d3232\n";

    fn on_machine(machine_id: Option<&str>, serial: Option<&str>) -> Fixture {
        let f = Fixture::debian();
        match machine_id {
            Some(id) => f.write(MACHINE_ID, id),
            None => std::fs::remove_file(f.path(MACHINE_ID)).unwrap(),
        }
        if let Some(serial) = serial {
            f.write(DMI_SERIAL, serial);
        }
        f
    }

    #[test]
    fn derived_from_the_machine_id_stable_and_without_it() {
        let id = derive(&on_machine(Some(MACHINE), None).live()).unwrap();
        assert!(id.as_str().starts_with("edge-"), "{id}");
        assert!(
            !id.as_str().contains("4c4c4544"),
            "the raw machine ID must not show: {id}"
        );
        assert_eq!(derive(&on_machine(Some(MACHINE), None).live()).unwrap(), id);
        let other = derive(&on_machine(Some("0123456789abcdef0123456789abcdef\n"), None).live()).unwrap();
        assert_ne!(other, id);
    }

    #[test]
    fn a_meaningful_dmi_serial_wins() {
        let f = on_machine(Some(MACHINE), Some("SN-4711-XY\n"));
        assert_eq!(derive(&f.live()).unwrap().as_str(), "SN-4711-XY");
        let f = on_machine(Some(MACHINE), Some("To be filled by O.E.M.\n"));
        assert!(derive(&f.live()).unwrap().as_str().starts_with("edge-"));
    }

    #[test]
    fn empty_or_placeholder_machine_ids_are_refused_with_what_to_do() {
        for (machine_id, problem) in [
            (None, "missing or empty"),
            (Some(""), "missing or empty"),
            (Some("uninitialized\n"), "not a machine ID"),
            (Some("00000000000000000000000000000000\n"), "a placeholder"),
            (Some("ffffffffffffffffffffffffffffffff\n"), "a placeholder"),
        ] {
            let err = derive(&on_machine(machine_id, None).live()).unwrap_err().to_string();
            assert!(err.contains(problem), "{machine_id:?}: {err}");
            assert!(
                err.contains("systemd-machine-id-setup") && err.contains("device-id set <ID>"),
                "{err}"
            );
        }
    }

    /// The image's machine ID and the build host's serial would be every clone's.
    #[test]
    fn never_derived_in_an_image() {
        let f = on_machine(Some(MACHINE), Some("SN-4711-XY\n"));
        let err = derive(&f.system(Mode::Image, false)).unwrap_err().to_string();
        assert!(err.contains("a device ID is not derived in an image"), "{err}");
        assert!(
            err.contains("device-id generate") && err.contains("on each appliance"),
            "{err}"
        );
    }

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
