//! `diag upload`: a bundle attached to this device in the tenant, the way
//! Cumulocity keeps a device's files (a log file request's answer too): an
//! event of the device's managed object, with the bundle as its binary.

use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::remote_access::Device;
use crate::system::System;
use crate::tenant::{self, Attachment, Method, Permission, Tenant};

/// The largest bundle sent: the tenant's default limit for the file of an
/// event is 50 MiB, and a larger one would be refused only after the event
/// is made and the whole file sent.
pub const MAX: u64 = 50 * 1024 * 1024;

/// The event's type. `c8y_` names are Cumulocity's own; others take a prefix
/// of their own, as its domain model's `resortenergymgmt_Room` does.
pub const EVENT_TYPE: &str = "edgesetup_DiagnosticsBundle";

/// What a bundle is: `diag collect` writes a .tar.gz.
const CONTENT_TYPE: &str = "application/gzip";

/// A bundle read from this host, checked before any request.
pub struct Bundle {
    /// The path as the user named it, for messages.
    path: String,
    /// Its file name, as the tenant shows it.
    name: String,
    bytes: Vec<u8>,
}

impl Bundle {
    /// Reads the file the user named: a regular file reached without a link of
    /// a user's (root sends it on), at most `MAX` bytes, gzip data. Anything else
    /// is refused here, so nothing is sent.
    pub fn read(sys: &System, path: &Path) -> Result<Bundle> {
        let shown = path.display().to_string();
        let too_large = |len: u64| {
            Error::bad_input(format!(
                "{shown} has {len} bytes; diag upload sends at most {MAX} (50 MiB), the tenant's default limit for a file"
            ))
            .hint("collect a smaller bundle, with shorter journals: sudo edge-setup diag collect --since 2h")
        };
        let (file, len) = sys.open_host_regular(path)?;
        if len > MAX {
            return Err(too_large(len));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", path, e))?;
        // it may have grown since its length was read
        if bytes.len() as u64 > MAX {
            return Err(too_large(bytes.len() as u64));
        }
        // root may read any file: only a bundle leaves the appliance, not a
        // credentials file named by mistake
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            return Err(
                Error::bad_input(format!("{shown} is not a bundle: it is not gzip data"))
                    .hint("name the .tar.gz that 'sudo edge-setup diag collect' wrote (it prints its path)"),
            );
        }
        let name = path
            .file_name()
            .map(|n| tenant::file_name(&n.to_string_lossy()))
            .unwrap_or_else(|| "bundle.tar.gz".to_string());
        Ok(Bundle {
            path: shown,
            name,
            bytes,
        })
    }
}

/// Creates the event on this device and attaches the bundle to it: the result
/// for `--json` (the event is `null` in a dry run, which sends neither).
pub fn run(tenant: &Tenant, bundle: &Bundle) -> Result<Value> {
    let sys = tenant.sys();
    let out = sys.out();
    let step = out.step(&format!("Looking up this device in {}", tenant.url()));
    let device = Device::find_for(tenant, "a bundle is attached to the device's managed object")?;
    let mo = &device.managed_object;
    step.done(&format!("managed object {mo}"));

    let size = bundle.bytes.len();
    let step = out.step(&format!("Creating an event for {} on device {mo}", bundle.name));
    let event = create_event(tenant, mo, bundle)?;
    step.done(&event.as_ref().map_or("planned".to_string(), |id| format!("event {id}")));

    let step = out.step(&format!("Attaching {} ({size} bytes) to the event", bundle.name));
    let path = format!(
        "/event/events/{}/binaries",
        event.as_deref().map_or("{id}".to_string(), tenant::segment)
    );
    let file = Attachment {
        name: &bundle.name,
        content_type: CONTENT_TYPE,
        bytes: &bundle.bytes,
    };
    let attached = tenant
        .upload(
            &path,
            &file,
            &format!("attach {} to the event", bundle.name),
            Permission::Events,
        )
        .map_err(|e| unattached(sys, bundle, event.as_deref(), e))?;
    if let Some(None) = attached {
        let e = Error::failure(format!("POST {path}: the tenant has no such event (404)"));
        return Err(unattached(sys, bundle, event.as_deref(), e));
    }
    step.done(sys.word("done", "planned"));
    if let Some(id) = &event {
        out.data(&format!("Attached {} to event {id} of device {mo}.", bundle.name));
    }
    Ok(json!({
        "managed_object": mo,
        "event_id": event,
        "type": EVENT_TYPE,
        "file": bundle.name,
        "size": size,
    }))
}

/// `POST /event/events`: the new event's id (`None` in a dry run).
fn create_event(tenant: &Tenant, mo: &str, bundle: &Bundle) -> Result<Option<String>> {
    let now = time::OffsetDateTime::now_utc();
    // milliseconds, as the tenant keeps them
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .expect("whole milliseconds are a valid time");
    let time = now
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC time formats as RFC 3339");
    let body = serde_json::to_vec(&json!({
        "source": {"id": mo},
        "type": EVENT_TYPE,
        "text": format!("edge-setup diagnostics bundle {} ({} bytes)", bundle.name, bundle.bytes.len()),
        "time": time,
    }))
    .expect("the body serialises");
    let made = tenant.change(
        Method::Post,
        "/event/events",
        Some(&body),
        &format!("create an event {EVENT_TYPE} on device {mo}"),
        Permission::Events,
    )?;
    let Some(made) = made else { return Ok(None) };
    let id = made.as_ref().and_then(|v| match v.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match (made, id) {
        (_, Some(id)) => Ok(Some(id)),
        (None, _) => Err(Error::failure(format!(
            "the tenant {} has no event API: POST /event/events answered 404",
            tenant.url()
        ))
        .hint(format!(
            "check that c8y.url ({}) is the tenant's own URL, then run the command again",
            tenant.url()
        ))),
        (Some(_), None) => Err(Error::failure(format!(
            "the tenant made an event on device {mo} but did not say its id"
        ))
        .hint(format!(
            "delete that event ({EVENT_TYPE}) in Device management > device {mo} > Events, then run the command again"
        ))),
    }
}

/// A failed attachment: says that the event was made without the bundle, and
/// how to send it again.
fn unattached(sys: &System, bundle: &Bundle, event: Option<&str>, e: Error) -> Error {
    let Some(id) = event else { return e };
    let retry = format!(
        "to send the bundle again: {} with the same credentials option (a new event; event {id} stays, without a file)",
        sys.next_command(&format!("diag upload {}", bundle.path))
    );
    let joined = Error::new(
        e.kind,
        format!(
            "event {id} was created, but the bundle was not attached to it: {}",
            e.what
        ),
    )
    .hint(match &e.hint {
        Some(h) => format!("{h}; {retry}"),
        None => retry,
    });
    match e.why {
        Some(why) => joined.why(why),
        None => joined,
    }
}
