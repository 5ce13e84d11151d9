//! `edge-setup register`: the device's registration in the tenant (Device
//! Management > Registration), which the Edge documentation has the operator
//! do by hand: request, wait for the device to ask, accept.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::tenant::{Method, Permission, Tenant, segment};
use crate::values::DeviceId;

/// Where the device stands in the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Registered: the tenant knows the device as this managed object.
    Registered { managed_object: String },
    /// A registration request, in one of the tenant's states:
    /// WAITING_FOR_CONNECTION, PENDING_ACCEPTANCE or ACCEPTED.
    Requested { status: String },
    /// Neither registered nor requested.
    Unknown,
}

impl State {
    /// The state in words, with what happens next.
    pub fn describe(&self) -> String {
        match self {
            State::Registered { managed_object } => format!("registered (managed object {managed_object})"),
            State::Requested { status } => match status.as_str() {
                "WAITING_FOR_CONNECTION" => {
                    "requested, waiting for the device to connect (WAITING_FOR_CONNECTION)".to_string()
                }
                "PENDING_ACCEPTANCE" => {
                    "requested, the device is waiting to be accepted (PENDING_ACCEPTANCE)".to_string()
                }
                "ACCEPTED" => "accepted, the device is fetching its credentials (ACCEPTED)".to_string(),
                other => format!("requested ({other})"),
            },
            State::Unknown => "not registered".to_string(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            State::Registered { managed_object } => json!({"state": "registered", "managed_object": managed_object}),
            State::Requested { status } => json!({"state": "requested", "status": status}),
            State::Unknown => json!({"state": "not-registered"}),
        }
    }

    fn done(&self) -> bool {
        matches!(self, State::Registered { .. }) || matches!(self, State::Requested { status } if status == "ACCEPTED")
    }
}

/// The device's managed object id, when it is registered.
pub fn managed_object(tenant: &Tenant, id: &DeviceId) -> Result<Option<String>> {
    let path = format!("/identity/externalIds/c8y_Serial/{}", segment(id.as_str()));
    let Some(found) = tenant.get(&path, Permission::Identity)? else {
        return Ok(None);
    };
    let mo = found.pointer("/managedObject/id").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    mo.map(Some).ok_or_else(|| {
        Error::failure(format!("the tenant's answer to GET {path} has no managedObject.id"))
            .hint("check that c8y.url is the tenant's URL; report the answer if it is")
    })
}

/// The device's state: registered, requested, or neither.
pub fn state(tenant: &Tenant, id: &DeviceId) -> Result<State> {
    if let Some(managed_object) = managed_object(tenant, id)? {
        return Ok(State::Registered { managed_object });
    }
    let path = request_path(id);
    Ok(match tenant.get(&path, Permission::Registration)? {
        Some(req) => State::Requested {
            status: req
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .to_string(),
        },
        // the request goes when the device has fetched its credentials: it
        // may have been registered between the two questions
        None => match managed_object(tenant, id)? {
            Some(managed_object) => State::Registered { managed_object },
            None => State::Unknown,
        },
    })
}

fn request_path(id: &DeviceId) -> String {
    format!("/devicecontrol/newDeviceRequests/{}", segment(id.as_str()))
}

/// What `register` was asked for.
pub struct Options {
    pub accept: bool,
    /// With `--wait`: how long to wait for ACCEPTED (or the device registered).
    pub wait: Option<Duration>,
    /// Wait past ACCEPTED until the device is registered (it has fetched its
    /// credentials), for what needs its managed object next.
    pub registered: bool,
}

/// Requests the registration of `id` unless the device is registered or
/// requested, accepts it when asked and the tenant allows, and waits when asked.
pub fn register(tenant: &Tenant, id: &DeviceId, opts: &Options) -> Result<State> {
    let sys = tenant.sys();
    let out = sys.out();
    let step = out.step(&format!("Looking up device {id} in {}", tenant.url()));
    let mut st = state(tenant, id)?;
    step.done(&st.describe());
    if st == State::Unknown {
        let body = serde_json::to_vec(&json!({"id": id.as_str()})).expect("the body serialises");
        let step = out.step(&format!("Requesting the registration of {id}"));
        let sent = tenant.change(
            Method::Post,
            "/devicecontrol/newDeviceRequests",
            Some(&body),
            &format!("register device {id}"),
            Permission::Registration,
        )?;
        step.done(sys.word("done", "planned"));
        st = match sent {
            Some(Some(v)) => State::Requested {
                status: v
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("WAITING_FOR_CONNECTION")
                    .to_string(),
            },
            // a dry run: what the request would make
            _ => State::Requested {
                status: "WAITING_FOR_CONNECTION".to_string(),
            },
        };
    }
    if sys.dry_run() {
        return Ok(st);
    }
    let deadline = opts.wait.map(|w| Instant::now() + w);
    let started = Instant::now();
    let mut polls = 0u32;
    loop {
        if opts.accept && matches!(&st, State::Requested { status } if status == "PENDING_ACCEPTANCE") {
            let body = serde_json::to_vec(&json!({"status": "ACCEPTED"})).expect("the body serialises");
            let step = out.step(&format!("Accepting device {id}"));
            tenant.change(
                Method::Put,
                &request_path(id),
                Some(&body),
                &format!("accept device {id}"),
                Permission::Registration,
            )?;
            step.done(sys.word("done", "planned"));
            st = State::Requested {
                status: "ACCEPTED".to_string(),
            };
        }
        let Some(deadline) = deadline else { break };
        if st.done() && (!opts.registered || matches!(st, State::Registered { .. })) {
            break;
        }
        if Instant::now() >= deadline {
            out.finish_bar();
            return Err(Error::failure(format!(
                "device {id} is still {} after {} s",
                st.describe(),
                started.elapsed().as_secs()
            ))
            .hint(waiting_hint(&st, opts.accept)));
        }
        if polls == 0 {
            out.spinner(&format!("Waiting for device {id}: {}", st.describe()));
        }
        // quick at first (a test tenant, an operator at the screen), then every 5 s
        let pause = if polls < 10 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        polls += 1;
        let next = state(tenant, id)?;
        if next != st {
            out.finish_bar();
            out.info(&format!("Device {id}: {}", next.describe()));
            if !next.done() {
                out.spinner(&format!("Waiting for device {id}: {}", next.describe()));
            }
        }
        st = next;
    }
    out.finish_bar();
    Ok(st)
}

/// What to do about a registration that is not done.
pub fn waiting_hint(st: &State, accepting: bool) -> String {
    match st {
        State::Requested { status } if status == "WAITING_FOR_CONNECTION" => {
            "the Edge agent must connect to the tenant first: sudo edge-setup remote-connectivity enable; \
             then run 'sudo edge-setup register --accept --wait' again"
                .to_string()
        }
        State::Requested { status } if status == "PENDING_ACCEPTANCE" && !accepting => {
            "accept it in Device Management > Registration, or: sudo edge-setup register --accept".to_string()
        }
        _ => "run 'sudo edge-setup register --wait' again to keep waiting".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_in_words_and_json() {
        let s = State::Requested {
            status: "PENDING_ACCEPTANCE".into(),
        };
        assert!(s.describe().contains("waiting to be accepted"));
        assert_eq!(
            s.to_json(),
            json!({"state": "requested", "status": "PENDING_ACCEPTANCE"})
        );
        assert!(!s.done());
        assert!(
            State::Registered {
                managed_object: "7".into()
            }
            .done()
        );
        assert!(waiting_hint(&s, false).contains("register --accept"));
        let w = State::Requested {
            status: "WAITING_FOR_CONNECTION".into(),
        };
        assert!(waiting_hint(&w, true).contains("remote-connectivity enable"));
    }
}
