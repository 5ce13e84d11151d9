//! Cloud Remote Access endpoints of this device in the tenant, kept to match
//! the appliance: one VNC endpoint per user with a display (`sync`), an SSH
//! endpoint per user who asked for one (`ssh`).
//!
//! edge-setup touches only the endpoints it created: their ids are recorded
//! in `RECORD` (root's, 0600) for the tenant and the device's managed object,
//! with a salted digest of the body last sent. The tenant never shows an
//! endpoint's password again, so the digest is how a second sync knows that
//! nothing changed without sending the password once more.

pub mod ssh;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::registration;
use crate::system::System;
use crate::system::fs::FileSpec;
use crate::tenant::{Method, Permission, Tenant};
use crate::tigervnc;
use crate::vnc_user;

/// The endpoints edge-setup created, per tenant and device.
pub const RECORD: &str = "/var/lib/edge-setup/remote-access.json";

/// Serialises the changes of edge-setup's endpoints (sync, ssh, vnc-user's
/// update). Held across the tenant's requests, unlike other locks: the record
/// and the tenant change together, and two runs at once would create the
/// same endpoint twice.
pub const LOCK: &str = "/var/lib/edge-setup/.remote-access.lock";
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `f` holding the remote access lock (none in a dry run).
pub fn locked<T>(sys: &System, f: impl FnOnce() -> Result<T>) -> Result<T> {
    // made (and reported) here rather than silently by the lock, so that a dry
    // run's plan, whose record write makes it, matches the real run
    if !sys.dry_run() {
        sys.ensure_dir(Path::new("/var/lib/edge-setup"), FileSpec::root(0o755))?;
    }
    // Nothing is printed while the lock is held: a caller whose output nobody
    // reads (a full pipe) would hold every other user's endpoint update.
    sys.out().hold(|| {
        let _lock = sys.lock(Path::new(LOCK), LOCK_WAIT)?;
        f()
    })
}

/// Where every endpoint connects: the Edge agent on the appliance reaches the
/// sessions (which listen on loopback, or on every interface) there.
pub const HOST: &str = "127.0.0.1";

/// The endpoints edge-setup created, for one tenant and device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub tenant: String,
    /// The device's managed object id.
    pub device: String,
    /// Hex; the salt of every digest.
    pub salt: String,
    pub endpoints: Vec<Owned>,
}

/// An endpoint edge-setup created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub id: String,
    /// `VNC` or `SSH`.
    pub protocol: String,
    pub user: String,
    /// Salted SHA-256 of the body last sent.
    pub digest: String,
    /// SSH: the public key installed for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl Record {
    /// The record for this tenant and device; a record for another (a clone
    /// of an image, another tenant) names endpoints that are not this device's.
    pub fn load(sys: &System, tenant: &str, device: &str) -> Result<Record> {
        let fresh = || -> Result<Record> {
            Ok(Record {
                tenant: tenant.to_string(),
                device: device.to_string(),
                salt: hex(&random_bytes()?),
                endpoints: Vec::new(),
            })
        };
        let Some((bytes, meta)) = sys.read_small(Path::new(RECORD), 1024 * 1024)? else {
            return fresh();
        };
        if !sys.trusts(meta.uid) {
            return Err(Error::failure(format!(
                "{} belongs to uid {}, not to root",
                sys.host_path(Path::new(RECORD)).display(),
                meta.uid
            ))
            .hint(format!(
                "remove it (sudo rm {RECORD}); the next sync creates the endpoints again"
            )));
        }
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
            Error::failure(format!("{} is damaged", sys.host_path(Path::new(RECORD)).display()))
                .why(e)
                .hint(format!(
                    "remove it (sudo rm {RECORD}) and delete edge-setup's endpoints in the tenant by hand; the next sync creates them again"
                ))
        })?;
        if record.tenant == tenant && record.device == device {
            Ok(record)
        } else {
            fresh()
        }
    }

    pub fn save(&self, sys: &System) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("the record serialises");
        text.push('\n');
        sys.ensure_dir(Path::new("/var/lib/edge-setup"), FileSpec::root(0o755))?;
        sys.write(Path::new(RECORD), text.as_bytes(), FileSpec::root(0o600))?;
        Ok(())
    }

    /// The salted digest of a body.
    pub fn digest(&self, body: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.salt.as_bytes());
        h.update(body);
        hex(&h.finalize())
    }

    pub fn find(&self, protocol: &str, user: &str) -> Option<&Owned> {
        self.endpoints.iter().find(|e| e.protocol == protocol && e.user == user)
    }

    pub fn put(&mut self, owned: Owned) {
        self.endpoints
            .retain(|e| !(e.protocol == owned.protocol && e.user == owned.user));
        self.endpoints.push(owned);
    }

    fn forget(&mut self, id: &str) {
        self.endpoints.retain(|e| e.id != id);
    }
}

/// An endpoint as the tenant lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub hostname: String,
    pub port: u64,
    #[serde(rename = "credentialsType")]
    pub credentials_type: String,
    /// SSH: the keys the tenant shows (public only).
    #[serde(skip)]
    pub public_key: Option<String>,
    #[serde(skip)]
    pub host_key: Option<String>,
}

impl Listed {
    fn of(v: &Value) -> Option<Listed> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let id = match v.get("id")? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(Listed {
            id,
            name: text("name").unwrap_or_default(),
            protocol: text("protocol").unwrap_or_default(),
            hostname: text("hostname").unwrap_or_default(),
            port: v.get("port").and_then(Value::as_u64).unwrap_or(0),
            credentials_type: text("credentialsType").unwrap_or_default(),
            public_key: text("publicKey").filter(|s| !s.is_empty()),
            host_key: text("hostKey").filter(|s| !s.is_empty()),
        })
    }

    /// Whether the fields the tenant shows are those of `want`.
    fn shows(&self, want: &Shown) -> bool {
        self.name == want.name
            && self.protocol == want.protocol
            && self.hostname == HOST
            && self.port == u64::from(want.port)
            && self.credentials_type == want.credentials_type
    }
}

/// The fields of an endpoint the tenant shows back.
pub struct Shown {
    pub name: String,
    pub protocol: &'static str,
    pub port: u16,
    pub credentials_type: &'static str,
}

/// The device in the tenant: its managed object and its endpoints.
pub struct Device<'t, 'a> {
    pub tenant: &'t Tenant<'a>,
    pub managed_object: String,
}

impl<'t, 'a> Device<'t, 'a> {
    /// This appliance's device in the tenant; an error naming `register` when
    /// the tenant does not know it yet.
    pub fn find(tenant: &'t Tenant<'a>) -> Result<Device<'t, 'a>> {
        Device::find_for(tenant, "remote access endpoints belong to a registered device")
    }

    /// `find`, for something else that belongs to the device (`why` says what).
    pub fn find_for(tenant: &'t Tenant<'a>, why: &str) -> Result<Device<'t, 'a>> {
        let sys = tenant.sys();
        let id = crate::device_id::read(sys)?.ok_or_else(|| crate::device_id::missing(sys))?;
        let e = match registration::state(tenant, &id)? {
            registration::State::Registered { managed_object } => return Ok(Device { tenant, managed_object }),
            registration::State::Requested { status } if status == "ACCEPTED" => Error::failure(format!(
                "device {id} is accepted, but the Edge agent has not fetched its credentials yet, so the tenant has no device for it"
            ))
            .hint("the agent does that within a minute of the acceptance: run the command again then ('sudo edge-setup remote-connectivity status' shows the registration)"),
            st @ registration::State::Requested { .. } => {
                Error::failure(format!("device {id} is not registered in the tenant {} yet: {}", tenant.url(), st.describe()))
                    .hint(registration::waiting_hint(&st, false))
            }
            registration::State::Unknown => Error::failure(format!(
                "device {id} is not registered in the tenant {}",
                tenant.url()
            ))
            .hint("register it first: sudo edge-setup register --accept --wait"),
        };
        Err(e.why(why))
    }

    fn path(&self) -> String {
        format!(
            "/service/remoteaccess/devices/{}/configurations",
            crate::tenant::segment(&self.managed_object)
        )
    }

    /// The device's endpoints, as the tenant lists them.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let v = self.tenant.get(&self.path(), Permission::RemoteAccess)?.ok_or_else(|| {
            Error::failure(format!(
                "the tenant {} has no remote access service for this device (404)",
                self.tenant.url()
            ))
            .hint("subscribe the tenant to Cloud Remote Access (Administration > Applications), then run the command again")
        })?;
        // a plain array; some versions wrap it in a page
        let items = v
            .as_array()
            .or_else(|| v.get("configurations").and_then(Value::as_array))
            .ok_or_else(|| {
                Error::failure(format!(
                    "the tenant's answer to GET {} is not a list of endpoints",
                    self.path()
                ))
            })?;
        Ok(items.iter().filter_map(Listed::of).collect())
    }

    pub fn record(&self) -> Result<Record> {
        Record::load(self.tenant.sys(), &self.tenant.url(), &self.managed_object)
    }

    /// Creates an endpoint; its id (`None` in a dry run).
    pub fn create(&self, body: &[u8], name: &str) -> Result<Option<String>> {
        let made = self.tenant.change(
            Method::Post,
            &self.path(),
            Some(body),
            &format!("create endpoint '{name}'"),
            Permission::RemoteAccess,
        )?;
        let Some(made) = made else { return Ok(None) };
        made.as_ref().and_then(Listed::of).map(|l| Some(l.id)).ok_or_else(|| {
            Error::failure(format!("the tenant created endpoint '{name}' but did not say its id"))
                .hint("run 'sudo edge-setup remote-access list', delete that endpoint in the tenant, and sync again")
        })
    }

    pub fn update(&self, id: &str, body: &[u8], name: &str) -> Result<()> {
        let done = self.tenant.change(
            Method::Put,
            &format!("{}/{}", self.path(), crate::tenant::segment(id)),
            Some(body),
            &format!("update endpoint '{name}'"),
            Permission::RemoteAccess,
        )?;
        if let Some(None) = done {
            return Err(Error::failure(format!(
                "endpoint '{name}' (id {id}) was deleted in the tenant meanwhile"
            ))
            .hint("run the command again: it creates the endpoint anew"));
        }
        Ok(())
    }

    /// Deletes an endpoint; one already gone is fine.
    pub fn delete(&self, id: &str, name: &str) -> Result<()> {
        self.tenant.change(
            Method::Delete,
            &format!("{}/{}", self.path(), crate::tenant::segment(id)),
            None,
            &format!("delete endpoint '{name}'"),
            Permission::RemoteAccess,
        )?;
        Ok(())
    }
}

/// What became of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub user: String,
    pub protocol: String,
    pub port: u16,
    /// `None` in a dry run, for an endpoint not created yet.
    pub id: Option<String>,
    /// created, updated, unchanged, deleted, skipped
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The name of a user's VNC endpoint.
pub fn vnc_name(user: &str, display: u32) -> String {
    format!("VNC {user} (:{display})")
}

/// The body of a VNC endpoint; the password stays in zeroizing memory.
fn vnc_body(name: &str, port: u16, password: &str) -> Zeroizing<Vec<u8>> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        name: &'a str,
        hostname: &'a str,
        port: u16,
        protocol: &'a str,
        credentials_type: &'a str,
        password: &'a str,
    }
    to_json(&Body {
        name,
        hostname: HOST,
        port,
        protocol: "VNC",
        credentials_type: "PASS_ONLY",
        password,
    })
}

/// JSON into zeroizing memory, sized up front so no copy is left behind by a reallocation.
pub(crate) fn to_json<T: Serialize>(body: &T) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(16 * 1024));
    serde_json::to_writer(&mut *out, body).expect("the body serialises");
    out
}

/// One planned change of `sync`.
enum Step {
    Create {
        name: String,
        user: String,
        port: u16,
        body: Zeroizing<Vec<u8>>,
    },
    Update {
        id: String,
        name: String,
        user: String,
        port: u16,
        body: Zeroizing<Vec<u8>>,
    },
    Keep {
        id: String,
        name: String,
        user: String,
        port: u16,
    },
    Delete {
        id: String,
        name: String,
        user: String,
        protocol: String,
        port: u16,
        why: String,
    },
    Skip {
        name: String,
        user: String,
        port: u16,
        why: String,
    },
}

/// Makes the tenant's VNC endpoints match the display mapping: creates or
/// updates one per user (or only `only`), deletes edge-setup's VNC endpoints of
/// users who have no display any more and its SSH endpoints of users who are
/// gone, and leaves every other endpoint alone. Everything is planned (users'
/// files read, the tenant listed) before the first change; the record is saved
/// at the end, after a failure too, so an endpoint made halfway is known again.
pub fn sync(device: &Device, only: Option<&str>) -> Result<Vec<Outcome>> {
    let sys = device.tenant.sys();
    let users = vnc_user::current_passwords(sys, only)?;
    let listed = device.list()?;
    let mut record = device.record()?;
    let by_id = |id: &str| listed.iter().find(|l| l.id == id);
    let mut steps = Vec::new();
    for u in &users {
        let name = vnc_name(&u.user, u.display);
        let port = tigervnc::port(u.display);
        let owned = record.find("VNC", &u.user).filter(|o| by_id(&o.id).is_some());
        let password = match &u.password {
            Ok(p) => p,
            Err(why) => {
                steps.push(Step::Skip {
                    name,
                    user: u.user.clone(),
                    port,
                    why: format!("{why}; set one with: sudo edge-setup vnc-user --user {}", u.user),
                });
                continue;
            }
        };
        let body = vnc_body(&name, port, password);
        let shown = Shown {
            name: name.clone(),
            protocol: "VNC",
            port,
            credentials_type: "PASS_ONLY",
        };
        // an endpoint made by hand for the same session keeps its old password
        for l in listed.iter().filter(|l| {
            l.protocol == "VNC"
                && l.port == u64::from(port)
                && matches!(l.hostname.as_str(), HOST | "localhost")
                && !record.endpoints.iter().any(|o| o.id == l.id)
        }) {
            sys.out().warn(&format!(
                "endpoint '{}' (id {}) reaches {u}'s session ({HOST}:{port}) too, and edge-setup did not create it: \
                 it keeps the password it was given; delete it in the tenant (Device Management > the device > \
                 Remote access) once '{name}' works",
                l.name,
                l.id,
                u = u.user
            ));
        }
        let user = u.user.clone();
        steps.push(match owned {
            None => Step::Create { name, user, port, body },
            Some(o) if o.digest == record.digest(&body) && by_id(&o.id).is_some_and(|l| l.shows(&shown)) => {
                Step::Keep {
                    id: o.id.clone(),
                    name,
                    user,
                    port,
                }
            }
            Some(o) => Step::Update {
                id: o.id.clone(),
                name,
                user,
                port,
                body,
            },
        });
    }
    for o in &record.endpoints {
        if only.is_some_and(|only| only != o.user) {
            continue;
        }
        let why = match o.protocol.as_str() {
            "VNC" if !users.iter().any(|u| u.user == o.user) => format!("{} has no VNC display now", o.user),
            // an SSH endpoint stays while its user does (`remote-access ssh` keeps it)
            "SSH" if sys.users().by_name(&o.user)?.is_none() => {
                format!("{} is no longer a user of this system", o.user)
            }
            _ => continue,
        };
        // one deleted in the tenant already is only forgotten (below)
        if let Some(l) = by_id(&o.id) {
            steps.push(Step::Delete {
                id: o.id.clone(),
                name: l.name.clone(),
                user: o.user.clone(),
                protocol: o.protocol.clone(),
                port: u16::try_from(l.port).unwrap_or(0),
                why,
            });
        }
    }
    let known: Vec<String> = listed.iter().map(|l| l.id.clone()).collect();
    record.endpoints.retain(|o| known.contains(&o.id));
    apply(device, &mut record, steps)
}

fn apply(device: &Device, record: &mut Record, steps: Vec<Step>) -> Result<Vec<Outcome>> {
    let sys = device.tenant.sys();
    let out = sys.out();
    let mut outcomes = Vec::new();
    let outcome = |name: &str, user: &str, port, id: Option<String>, action, why: Option<String>| Outcome {
        name: name.to_string(),
        user: user.to_string(),
        protocol: "VNC".to_string(),
        port,
        id,
        action,
        why,
    };
    let mut result = Ok(());
    for step in steps {
        let done = (|| -> Result<Outcome> {
            Ok(match step {
                Step::Create { name, user, port, body } => {
                    let s = out.step(&format!("Creating endpoint '{name}' ({HOST}:{port})"));
                    let id = device.create(&body, &name)?;
                    s.done(sys.word("done", "planned"));
                    if let Some(id) = &id {
                        record.put(Owned {
                            id: id.clone(),
                            protocol: "VNC".into(),
                            user: user.clone(),
                            digest: record.digest(&body),
                            public_key: None,
                        });
                    }
                    outcome(&name, &user, port, id, "created", None)
                }
                Step::Update {
                    id,
                    name,
                    user,
                    port,
                    body,
                } => {
                    let s = out.step(&format!("Updating endpoint '{name}' ({HOST}:{port})"));
                    device.update(&id, &body, &name)?;
                    s.done(sys.word("done", "planned"));
                    record.put(Owned {
                        id: id.clone(),
                        protocol: "VNC".into(),
                        user: user.clone(),
                        digest: record.digest(&body),
                        public_key: None,
                    });
                    outcome(&name, &user, port, Some(id), "updated", None)
                }
                Step::Keep { id, name, user, port } => {
                    out.step(&format!("Endpoint '{name}' ({HOST}:{port})"))
                        .done("unchanged");
                    outcome(&name, &user, port, Some(id), "unchanged", None)
                }
                Step::Delete {
                    id,
                    name,
                    user,
                    protocol,
                    port,
                    why,
                } => {
                    let s = out.step(&format!("Deleting endpoint '{name}' ({why})"));
                    device.delete(&id, &name)?;
                    s.done(sys.word("done", "planned"));
                    if !sys.dry_run() {
                        record.forget(&id);
                    }
                    Outcome {
                        protocol,
                        ..outcome(&name, &user, port, Some(id), "deleted", Some(why))
                    }
                }
                Step::Skip { name, user, port, why } => {
                    out.warn(&format!("endpoint '{name}' is left as it is: {why}"));
                    outcome(&name, &user, port, None, "skipped", Some(why))
                }
            })
        })();
        match done {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // saved also after a failure: the endpoints made so far are edge-setup's
    record.save(sys)?;
    result.map(|()| outcomes)
}

/// After `vnc-user` changed a user (a password, a display, a removal): that
/// user's endpoint brought up to date when tenant credentials are configured
/// (`c8y.credentials-file`) and the device has an ID; the line for the
/// summary, `None` without (a golden image has no device ID). A failure is a
/// warning with why, and a line saying what `local` change is done here, that
/// the tenant lags behind, and the command that finishes the job: the VNC change
/// itself is done and stays.
pub fn after_vnc_user(sys: &System, user: &str, local: &str) -> Option<String> {
    let retry = format!("sudo edge-setup remote-access sync --user {user}");
    let behind = |e: &Error| {
        // only what failed and why: a hint written for a whole command (such as a
        // lock's "nothing was changed") would be wrong after the local change
        let why = e.why.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
        sys.out().warn(&format!(
            "the tenant's endpoint for {user} was not updated: {}{why}",
            e.what
        ));
        Some(format!(
            "Done here: {local}. Not done: the tenant's endpoint for {user} still has what it had before \
             (Cloud Remote Access may offer an old password, or no endpoint). Finish it with: {retry}"
        ))
    };
    if !matches!(crate::device_id::read(sys), Ok(Some(_))) {
        return None;
    }
    let credentials = match crate::tenant::configured(sys) {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => return behind(&e),
    };
    let synced = (|| {
        let tenant = Tenant::new(sys, credentials)?;
        let device = Device::find(&tenant)?;
        locked(sys, || sync(&device, Some(user)))
    })();
    match synced {
        Ok(outcomes) => Some(match outcomes.first() {
            Some(o) if o.action == "skipped" => format!("The tenant's endpoint '{}' is left as it was.", o.name),
            Some(o) => format!(
                "The tenant's remote access endpoint '{}' ({HOST}:{}) is {}.",
                o.name, o.port, o.action
            ),
            None => "The tenant has no VNC endpoint of edge-setup's for this user.".to_string(),
        }),
        Err(e) => behind(&e),
    }
}

/// `remote-access list`: the device's endpoints, edge-setup's marked.
pub fn list(device: &Device) -> Result<(Vec<Listed>, Record)> {
    Ok((device.list()?, device.record()?))
}

/// The `--json` result of a list.
pub fn list_json(listed: &[Listed], record: &Record) -> Value {
    json!(
        listed
            .iter()
            .map(|l| {
                let mine = record.endpoints.iter().find(|o| o.id == l.id);
                json!({
                    "id": l.id,
                    "name": l.name,
                    "protocol": l.protocol,
                    "hostname": l.hostname,
                    "port": l.port,
                    "credentialsType": l.credentials_type,
                    "managed_by_edge_setup": mine.is_some(),
                    "user": mine.map(|o| o.user.clone()),
                })
            })
            .collect::<Vec<_>>()
    )
}

fn random_bytes() -> Result<[u8; 16]> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vnc_body_is_what_the_tenant_expects() {
        let body = vnc_body("VNC admin (:1)", 5901, "secret12");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"name": "VNC admin (:1)", "hostname": "127.0.0.1", "port": 5901, "protocol": "VNC",
                   "credentialsType": "PASS_ONLY", "password": "secret12"})
        );
    }

    #[test]
    fn digests_are_salted() {
        let a = Record {
            salt: "aa".into(),
            ..Record::default()
        };
        let b = Record {
            salt: "bb".into(),
            ..Record::default()
        };
        assert_eq!(a.digest(b"x"), a.digest(b"x"));
        assert_ne!(a.digest(b"x"), b.digest(b"x"));
        assert_ne!(a.digest(b"x"), a.digest(b"y"));
    }

    #[test]
    fn listed_endpoints_take_string_or_number_ids() {
        let l = Listed::of(
            &json!({"id": 12, "name": "n", "protocol": "VNC", "hostname": "127.0.0.1", "port": 5901,
                                   "credentialsType": "PASS_ONLY"}),
        )
        .unwrap();
        assert_eq!(l.id, "12");
        assert!(l.shows(&Shown {
            name: "n".into(),
            protocol: "VNC",
            port: 5901,
            credentials_type: "PASS_ONLY"
        }));
        assert!(!l.shows(&Shown {
            name: "n".into(),
            protocol: "VNC",
            port: 5902,
            credentials_type: "PASS_ONLY"
        }));
        assert!(Listed::of(&json!({"name": "no id"})).is_none());
    }

    /// JSON values of any shape, with the keys an endpoint has.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            let key = prop_oneof![
                proptest::sample::select(
                    &[
                        "id",
                        "name",
                        "protocol",
                        "hostname",
                        "port",
                        "credentialsType",
                        "publicKey",
                        "hostKey"
                    ][..]
                )
                .prop_map(str::to_string),
                any::<String>(),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(key, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any JSON the tenant lists is an endpoint or skipped, never a panic.
        #[test]
        fn any_listed_json_is_an_endpoint_or_skipped(v in json_value()) {
            // an endpoint exactly when it has an id, a string or a number, and that id
            let id = match v.get("id") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            proptest::prop_assert_eq!(Listed::of(&v).map(|l| l.id), id);
        }
    }
}
