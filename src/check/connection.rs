//! The tenant: DNS, TCP, TLS with the configured trust, the clock against the
//! tenant's, NTP; with the configured credentials: accepted, the device
//! registered, its endpoints as `remote-access sync` would make them. Each
//! network step is bounded by `c8y.request-timeout`; nothing is sent that
//! changes the tenant.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use crate::config::{C8Y_CREDENTIALS_FILE, C8Y_PROXY, C8Y_REQUEST_TIMEOUT};
use crate::health::{Area, Check, Fix, Probe};
use crate::output::Out;
use crate::registration;
use crate::remote_access::{self, Device};
use crate::system::runner::{Cmd, Tool};
use crate::tenant::{self, Tenant};

const AREA: Area = Area::Tenant;

/// The clock may differ from the tenant's by this much before a warning...
const SKEW_WARN: Duration = Duration::from_secs(60);
/// ...and this much before a failure (tokens and certificates stop working).
const SKEW_FAIL: Duration = Duration::from_secs(300);

const IDS: [&str; 8] = [
    "tenant.dns",
    "tenant.tcp",
    "tenant.tls",
    "tenant.clock",
    "tenant.ntp",
    "tenant.credentials",
    "tenant.registered",
    "tenant.endpoints",
];

fn skip_all(why: &str) -> Vec<Check> {
    IDS.iter().map(|id| Check::skipped(AREA, id, why)).collect()
}

pub fn checks(p: &Probe) -> Vec<Check> {
    if let Some(why) = p.live_only() {
        return skip_all(why);
    }
    let Some(cfg) = &p.cfg else {
        return skip_all("the configuration does not parse (see edge-setup.config)");
    };
    let url = match cfg.tenant_url(p.sys) {
        Ok(Some(u)) => u,
        Ok(None) => return skip_all("c8y.url is not set"),
        Err(e) => return skip_all(&e.what),
    };
    let timeout = p
        .get(C8Y_REQUEST_TIMEOUT)
        .map(|s| s.duration())
        .unwrap_or(Duration::from_secs(30));
    // through a proxy the appliance reaches the proxy, which reaches the tenant
    let (host, port, what) = match p.get(C8Y_PROXY) {
        Some(proxy) => (proxy.host.clone(), proxy.port, format!("the proxy {proxy}")),
        None => (
            url.host.clone(),
            url.port_or_default(),
            format!("the tenant's host {}", url.host),
        ),
    };
    let mut out = Vec::new();
    let addrs = match resolve(&host, port, timeout) {
        Ok(addrs) => {
            out.push(Check::ok(
                AREA,
                "tenant.dns",
                format!(
                    "{what} resolves ({} address{})",
                    addrs.len(),
                    if addrs.len() == 1 { "" } else { "es" }
                ),
            ));
            addrs
        }
        Err(why) => {
            out.push(Check::fail(
                AREA,
                "tenant.dns",
                format!("{what} does not resolve: {why}"),
                "check the DNS server and c8y.url: sudo edge-setup remote-connectivity status",
            ));
            out.extend(
                IDS[1..]
                    .iter()
                    .map(|id| Check::skipped(AREA, id, "the tenant's host does not resolve")),
            );
            return out;
        }
    };
    match connect(&addrs, timeout) {
        Ok(addr) => out.push(Check::ok(
            AREA,
            "tenant.tcp",
            format!("{what} accepts connections ({addr})"),
        )),
        Err(why) => {
            out.push(Check::fail(
                AREA,
                "tenant.tcp",
                format!("cannot connect to {what} on port {port}: {why}"),
                format!("check the route and firewall to {host}:{port} (ip route; sudo nft list ruleset)"),
            ));
            out.extend(
                IDS[2..]
                    .iter()
                    .map(|id| Check::skipped(AREA, id, "the tenant cannot be reached")),
            );
            return out;
        }
    }
    if url.is_insecure() {
        out.push(Check::warn(
            AREA,
            "tenant.tls",
            format!("{url} is not encrypted"),
            p.sys.next_command("config set c8y.url https://<tenant host>"),
        ));
        out.push(Check::skipped(AREA, "tenant.clock", "an http:// tenant is not asked"));
    } else {
        let probed = Tenant::anonymous(p.sys).and_then(|t| t.probe());
        match probed {
            Ok(probe) => {
                out.push(Check::ok(
                    AREA,
                    "tenant.tls",
                    format!("{url} presents a certificate the system's CAs and c8y.ca-file trust"),
                ));
                out.push(clock(probe.date));
            }
            Err(e) => {
                out.push(Check::failed(AREA, "tenant.tls", e, || {
                    "check the tenant's certificate and c8y.ca-file".into()
                }));
                out.push(Check::skipped(AREA, "tenant.clock", "the tenant did not answer"));
            }
        }
    }
    out.push(ntp(p));
    out.extend(with_credentials(p));
    out
}

/// Resolves within `timeout`: the system resolver cannot be told one, so it
/// runs on a thread that is left behind when it takes longer.
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    std::thread::spawn(move || {
        let _ = tx.send((name.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err("no address".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// The first address that accepts a connection, each tried within `timeout`.
fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<SocketAddr, String> {
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(_) => return Ok(*addr),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

fn clock(date: Option<SystemTime>) -> Check {
    let id = "tenant.clock";
    let Some(date) = date else {
        return Check::skipped(AREA, id, "the tenant's answer has no Date header");
    };
    let now = SystemTime::now();
    let (skew, ahead) = match now.duration_since(date) {
        Ok(d) => (d, true),
        Err(e) => (e.duration(), false),
    };
    let said = format!(
        "this appliance's clock is {} s {} the tenant's",
        skew.as_secs(),
        if ahead { "ahead of" } else { "behind" }
    );
    let next = "turn on time synchronisation: sudo timedatectl set-ntp true (or set the time: sudo date -s 'YYYY-MM-DD HH:MM:SS')";
    if skew > SKEW_FAIL {
        Check::fail(
            AREA,
            id,
            format!("{said}: certificates and tokens fail over 5 min"),
            next,
        )
    } else if skew > SKEW_WARN {
        Check::warn(AREA, id, said, next)
    } else {
        Check::ok(AREA, id, format!("{said} (within 60 s)"))
    }
}

fn ntp(p: &Probe) -> Check {
    let id = "tenant.ntp";
    let asked = p
        .sys
        .query(Cmd::new(Tool::Timedatectl).args(["show", "--property=NTPSynchronized", "--value"]));
    match asked {
        Ok(Some(out)) if out.success() && out.stdout.trim() == "yes" => {
            Check::ok(AREA, id, "the clock is synchronised (NTP)")
        }
        Ok(Some(out)) if out.success() => Check::warn(
            AREA,
            id,
            "the clock is not synchronised by NTP",
            "sudo timedatectl set-ntp true (timedatectl timesync-status tells which server)",
        ),
        _ => Check::skipped(AREA, id, "timedatectl cannot tell (no systemd-timedated)"),
    }
}

/// The checks that need the tenant credentials of `c8y.credentials-file`.
const WITH_CREDENTIALS: [&str; 3] = ["tenant.credentials", "tenant.registered", "tenant.endpoints"];

/// `done`, then the rest of `WITH_CREDENTIALS` skipped for `why`.
fn skip_the_rest(done: Vec<Check>, why: &str) -> Vec<Check> {
    let rest = WITH_CREDENTIALS[done.len()..].iter();
    done.into_iter()
        .chain(rest.map(|id| Check::skipped(AREA, id, why)))
        .collect()
}

/// Runs on a dry run's system: requests that only read are made, none that would
/// change the tenant, so the endpoints are compared as `remote-access sync
/// --dry-run` compares them (the record's digests), nothing sent.
fn with_credentials(p: &Probe) -> Vec<Check> {
    let credentials = match tenant::configured(p.sys) {
        Ok(Some(c)) => c,
        Ok(None) => return skip_the_rest(Vec::new(), &format!("{C8Y_CREDENTIALS_FILE} is not set")),
        Err(e) => {
            let read = || p.sys.next_command(&format!("config get {C8Y_CREDENTIALS_FILE}"));
            let failed = Check::failed(AREA, "tenant.credentials", e, read);
            return skip_the_rest(vec![failed], "the credentials cannot be read");
        }
    };
    let Ok(Some(id)) = crate::device_id::read(p.sys) else {
        return skip_the_rest(Vec::new(), "no device ID (see identity.device-id)");
    };
    let quiet = Out::new(Box::new(std::io::sink()), Box::new(std::io::sink()), false);
    let planning = p.sys.planning(quiet);
    let status = || p.sys.next_command("remote-connectivity status");
    let tenant = match Tenant::new(&planning, credentials) {
        Ok(t) => t,
        Err(e) => {
            let failed = Check::failed(AREA, "tenant.credentials", e, status);
            return skip_the_rest(vec![failed], "no connection to the tenant");
        }
    };
    let state = match registration::state(&tenant, &id) {
        Ok(state) => state,
        Err(e) => {
            let failed = Check::failed(AREA, "tenant.credentials", e, status);
            return skip_the_rest(vec![failed], "the tenant did not answer the device's registration");
        }
    };
    let accepted = Check::ok(
        AREA,
        "tenant.credentials",
        "the tenant accepts the configured credentials",
    );
    let registration::State::Registered { managed_object } = state else {
        let unregistered = Check::fail(
            AREA,
            "tenant.registered",
            format!("device {id} is not registered: {}", state.describe()),
            p.sys.next_command("register --accept --wait"),
        );
        return skip_the_rest(vec![accepted, unregistered], "the device is not registered");
    };
    let registered = Check::ok(
        AREA,
        "tenant.registered",
        format!("device {id} is registered (managed object {managed_object})"),
    );
    let device = Device {
        tenant: &tenant,
        managed_object,
    };
    vec![accepted, registered, endpoints(p, &device)]
}

/// Whether `remote-access sync` would change anything (`device` is on a dry
/// run's system: it reads the tenant and the users' files and sends no change).
fn endpoints(p: &Probe, device: &Device) -> Check {
    let id = "tenant.endpoints";
    match remote_access::sync(device, None) {
        Ok(outcomes) => {
            let differ: Vec<String> = outcomes
                .iter()
                .filter(|o| !matches!(o.action, "unchanged" | "skipped"))
                .map(|o| {
                    let how = match o.action {
                        "created" => "missing",
                        "updated" => "out of date",
                        "deleted" => "left over",
                        other => other,
                    };
                    format!("{} ({how})", o.name)
                })
                .collect();
            let kept = outcomes.iter().filter(|o| o.action == "unchanged").count();
            if differ.is_empty() {
                Check::ok(
                    AREA,
                    id,
                    format!("{kept} endpoint{} match the users", if kept == 1 { "" } else { "s" }),
                )
            } else {
                Check::fail(
                    AREA,
                    id,
                    format!(
                        "the tenant's endpoints differ from the users here: {}",
                        differ.join(", ")
                    ),
                    p.sys.next_command("remote-access sync"),
                )
                .fixable(p.sys, Fix::RemoteAccessSync)
            }
        }
        Err(e) => Check::failed(AREA, id, e, || p.sys.next_command("remote-access list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_warns_over_a_minute_and_fails_over_five() {
        let now = SystemTime::now();
        assert_eq!(clock(Some(now)).status, crate::health::Status::Ok);
        let warn = clock(Some(now - Duration::from_secs(120)));
        assert_eq!(warn.status, crate::health::Status::Warn);
        assert!(warn.finding.contains("ahead of"), "{}", warn.finding);
        let fail = clock(Some(now + Duration::from_secs(600)));
        assert_eq!(fail.status, crate::health::Status::Fail);
        assert!(fail.finding.contains("behind"), "{}", fail.finding);
        assert_eq!(clock(None).status, crate::health::Status::Skipped);
    }
}
