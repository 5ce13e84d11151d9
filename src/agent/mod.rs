//! Remote connectivity of the Edge agent: "Configure Edge Agent" (option 7 of the
//! old post-installation menu) and the switch behind newer appliances'
//! `/edge/configuration/remote-connectivity`.
//!
//! The agent's side is a properties file beside the device ID (see
//! `properties`); edge-setup's side is `c8y.url` (and `c8y.insecure` for an
//! http URL accepted with `--insecure`). `enable`, `disable` and `status` are
//! what the wizard calls; `run` is the command.

pub mod dns;
pub mod properties;
pub mod service;

use std::path::Path;

use serde::Serialize;

use crate::config::{self, AGENT_SERVICE, C8Y_INSECURE, C8Y_URL, Config, TenantUrl};
use crate::device_id::{self, DeviceId};
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::Change;
use dns::{Dns, Resolution};
use properties::AgentConfig;
use service::{Restart, State, UnitName};

/// Choices of `enable` beyond the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnableOpts {
    /// Accept an http:// URL (with a warning).
    pub insecure: bool,
    /// Enable even without a configured name server.
    pub force: bool,
    /// The ID to write when none is set (an answers file's `[device-id]`),
    /// instead of one derived from the machine.
    pub device_id: Option<DeviceId>,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub enabled: bool,
    /// The tenant the agent is configured for, else c8y.url.
    pub url: Option<TenantUrl>,
    /// c8y.url when it differs from what the agent is configured with.
    pub pending_url: Option<TenantUrl>,
    pub device_id: Option<DeviceId>,
    pub dns: Dns,
    /// Resolving the tenant's host; `None` when not tried (image mode, no URL).
    pub resolution: Option<Resolution>,
    pub unit: UnitName,
    pub service: State,
    /// Files that could not be read (damaged), with what is wrong: status goes on without them.
    pub problems: Vec<Problem>,
    /// The image under `--root` this is the status of, if any: its next steps differ.
    pub image: Option<std::path::PathBuf>,
}

/// A damaged file `status` read past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub problem: String,
    /// What to do about it, when the reader said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl Problem {
    fn of(sys: &crate::system::System, file: &str, e: &Error) -> Problem {
        Problem::new(&sys.host_path(std::path::Path::new(file)).display().to_string(), e)
    }

    /// `file`'s problem as `e` says it, without naming `file` again (`PATH is damaged`,
    /// `PATH:3: cannot parse ...` become `line 3: cannot parse ...`).
    pub fn new(file: &str, e: &Error) -> Problem {
        let what = match e.what.strip_prefix(file) {
            Some(rest) => {
                let rest = rest.trim_start_matches(" is damaged");
                match rest.strip_prefix(':').map(|r| r.split_once(':')) {
                    Some(Some((line, text))) if line.chars().all(|c| c.is_ascii_digit()) => {
                        format!("line {line}:{text}")
                    }
                    _ => rest.trim_start_matches(':').trim().to_string(),
                }
            }
            None => e.what.clone(),
        };
        Problem {
            file: file.to_string(),
            problem: match (&e.why, what.is_empty()) {
                (Some(why), true) => why.clone(),
                (Some(why), false) => format!("{what}: {why}"),
                (None, _) => what,
            },
            next: e.hint.clone(),
        }
    }

    /// The status line.
    pub fn line(&self) -> String {
        format!("damaged:             {}: {}", self.file, self.problem)
    }
}

impl Status {
    /// The JSON object: `enabled` and `url` first, as in the appliance's REST
    /// payload, then what else status knows.
    pub fn to_json(&self) -> serde_json::Value {
        let json = Json {
            enabled: self.enabled,
            url: self.url.as_ref().map(ToString::to_string),
            device_id: self.device_id.as_ref().map(ToString::to_string),
            dns_configured: self.dns.configured(),
            name_servers: &self.dns.servers,
            host_resolves: self.resolution.as_ref().map(Result::is_ok),
            agent_service: self.unit.as_str(),
            agent_state: self.service.word(),
            problems: &self.problems,
        };
        serde_json::to_value(&json).expect("plain data serializes")
    }

    /// The report for people, one `label: value` a line.
    pub fn lines(&self) -> Vec<String> {
        let url = match &self.url {
            Some(u) if u.is_insecure() => format!("{u} (unencrypted)"),
            Some(u) => u.to_string(),
            None => "not set".into(),
        };
        let next = |args: &str| crate::system::next_command(self.image.as_deref(), args);
        let device = match (&self.device_id, &self.image) {
            (Some(id), _) => id.to_string(),
            // an image's ID is each appliance's own (its first boot derives it), or set
            (None, Some(_)) => format!(
                "not set (each appliance derives its own at its first boot; or: {})",
                next("device-id set ID")
            ),
            (None, None) => format!("not set ({})", next("device-id generate")),
        };
        let dns = if self.dns.configured() {
            format!("configured: {}", self.dns.describe())
        } else {
            format!("not configured ({})", next("setup network"))
        };
        let host = match (&self.resolution, &self.url) {
            (_, None) => "no tenant URL".to_string(),
            (None, Some(_)) => "not checked in image mode".to_string(),
            (Some(Ok(n)), Some(u)) => format!("{} resolves ({n} address{})", u.host, if *n == 1 { "" } else { "es" }),
            (Some(Err(why)), Some(u)) => format!("{} does not resolve: {why}", u.host),
        };
        vec![
            format!(
                "remote connectivity: {}",
                if self.enabled { "enabled" } else { "disabled" }
            ),
            format!("tenant URL:          {url}"),
            format!("device ID:           {device}"),
            format!("DNS:                 {dns}"),
            format!("tenant host:         {host}"),
            format!("agent service:       {}: {}", self.unit, self.service.describe()),
        ]
        .into_iter()
        .chain(self.problems.iter().map(Problem::line))
        .collect()
    }
}

/// The JSON form of `Status`, fields in this order.
#[derive(Serialize)]
struct Json<'a> {
    enabled: bool,
    /// `null` when unset, as `device_id`.
    url: Option<String>,
    device_id: Option<String>,
    dns_configured: bool,
    name_servers: &'a [String],
    /// `null` when not tried.
    host_resolves: Option<bool>,
    agent_service: &'a str,
    agent_state: String,
    /// Damaged files, each with what is wrong.
    problems: &'a [Problem],
}

/// Parses a tenant URL given by the user (http is accepted here; `enable` decides).
pub fn parse_url(s: &str) -> Result<TenantUrl> {
    TenantUrl::parse_any(s).map_err(|rule| {
        let hint = if s.trim().is_empty() {
            "to turn remote connectivity off, run 'sudo edge-setup remote-connectivity disable'"
        } else {
            "give https://HOST[:PORT] or a bare host name, like mytenant.cumulocity.com"
        };
        Error::bad_input(format!("'{}' is not a valid tenant URL", s.escape_debug()))
            .why(rule)
            .hint(hint)
    })
}

/// Stores `url` as c8y.url, enables remote connectivity in the agent's
/// configuration (generating a device ID when none is set) and restarts the
/// agent when something changed. Everything is checked before the first write.
pub fn enable(sys: &System, url: &TenantUrl, opts: &EnableOpts) -> Result<()> {
    enable_with(sys, url, opts, &dns::resolve)
}

fn enable_with(
    sys: &System,
    url: &TenantUrl,
    opts: &EnableOpts,
    resolve: &dyn Fn(&str, u16) -> Resolution,
) -> Result<()> {
    if url.is_insecure() && !opts.insecure {
        let port = url.port.map(|p| format!(":{p}")).unwrap_or_default();
        return Err(Error::bad_input(format!("refusing the unencrypted URL {url}"))
            .why("over http:// the agent's traffic to the tenant, credentials included, can be read and changed on the way")
            .hint(format!(
                "use https://{}{port}, or add --insecure to accept http knowingly",
                url.host
            )));
    }
    sys.require_root("remote-connectivity enable")?;
    let cfg = Config::load(sys)?;
    let current = properties::read(sys)?;
    let unit = agent_unit(sys, &cfg)?;
    let stored = device_id::read(sys)?;
    // in an image with none stored or given, each appliance made from it derives its own
    let id_on_appliance = stored.is_none() && opts.device_id.is_none() && sys.is_image();
    let new_id = match (stored, &opts.device_id) {
        (Some(_), _) => None,
        (None, Some(given)) => Some(given.clone()),
        (None, None) if id_on_appliance => None,
        (None, None) => Some(device_id::derive(sys)?),
    };

    let dns = dns::inspect(sys)?;
    let step = sys.out().step("Checking DNS");
    if dns.configured() {
        step.done(&dns.describe());
    } else if opts.force {
        step.done("no name server");
        sys.out().warn(
            "no name server is configured; the agent cannot reach the tenant until DNS works (enabled anyway: --force)",
        );
    } else {
        return Err(no_dns(&dns));
    }
    if url.is_insecure() {
        sys.out().warn(&format!(
            "{url} is not encrypted: the agent's traffic to the tenant can be read and changed on the way (accepted: --insecure)"
        ));
    } else if opts.insecure {
        sys.out().note("--insecure has no effect on an https URL");
    }
    if !sys.is_image() {
        let step = sys.out().step(&format!("Resolving {}", url.host));
        match resolve(&url.host, url.port_or_default()) {
            Ok(n) => step.done(&format!("{n} address{}", if n == 1 { "" } else { "es" })),
            Err(why) => {
                step.done("failed");
                sys.out().warn(&format!(
                    "{} does not resolve ({why}); the agent cannot reach the tenant until it does: check the URL and the DNS servers",
                    url.host
                ));
            }
        }
    }

    let wanted = AgentConfig {
        enabled: true,
        url: Some(url.clone()),
    };
    // stored values that do not parse are replaced, not reported: this sets them
    let toml_changes = cfg.tenant_url(sys).ok().flatten().as_ref() != Some(url)
        || if url.is_insecure() {
            cfg.get(sys, C8Y_INSECURE).ok().flatten() != Some(true)
        } else {
            cfg.is_set(C8Y_INSECURE.name)
        };
    let props_change = current.as_ref().map(|(text, _)| text.as_str()) != Some(wanted.render().as_str());
    let checks = [
        (new_id.is_some(), device_id::PATH),
        (toml_changes, config::PATH),
        (props_change, properties::PATH),
    ];
    for (_, path) in checks.iter().filter(|(changes, _)| *changes) {
        sys.check_writable(Path::new(path))?;
    }

    let mut changed = false;
    if let Some(id) = &new_id {
        changed |= device_id::store(sys, id)? != Change::Unchanged;
    }
    let step = sys.out().step(&format!("Setting c8y.url = {url}"));
    let change = if toml_changes {
        // Loaded again under the lock, once nothing can refuse the run any more.
        let mut cfg = Config::load_for_update(sys)?;
        cfg.set(C8Y_URL, url);
        if url.is_insecure() {
            cfg.set(C8Y_INSECURE, &true);
        } else {
            cfg.unset_raw(C8Y_INSECURE.def());
        }
        cfg.save(sys)?
    } else {
        Change::Unchanged
    };
    step.done(sys.change_word(change));
    changed |= write_agent_config(sys, &wanted)? != Change::Unchanged;

    if changed {
        let state = service::state(sys, &unit)?;
        service::restart(sys, &unit, &state, Restart::Always)?;
        sys.out().info(&format!(
            "Remote connectivity {}: the Edge agent {} to {url}.",
            sys.word("is enabled", "would be enabled"),
            sys.word("connects", "would connect")
        ));
    } else {
        sys.out().info(&format!(
            "Remote connectivity was already enabled for {url}: nothing changed, so {unit} was not restarted."
        ));
    }
    if let Some(id) = &new_id {
        sys.out().info(&format!("The Edge device ID is {id} (new)."));
        sys.out().note(device_id::REGISTRATION_STEPS);
    }
    if id_on_appliance {
        sys.out().note(
            "The image has no device ID, so that each appliance made from it gets its own: run 'sudo edge-setup device-id generate' on each appliance; the agent registers once it has one.",
        );
    }
    Ok(())
}

/// Disables remote connectivity in the agent's configuration, keeping the
/// tenant URL for a later `enable`, and restarts a running agent when something changed.
pub fn disable(sys: &System) -> Result<()> {
    sys.require_root("remote-connectivity disable")?;
    let cfg = Config::load(sys)?;
    let current = properties::read(sys)?;
    let unit = agent_unit(sys, &cfg)?;
    let url = match current.as_ref().and_then(|(_, c)| c.url.clone()) {
        Some(u) => Some(u),
        None => cfg.tenant_url(sys)?,
    };
    let wanted = AgentConfig { enabled: false, url };
    if current.as_ref().map(|(text, _)| text.as_str()) != Some(wanted.render().as_str()) {
        sys.check_writable(Path::new(properties::PATH))?;
    }
    let changed = write_agent_config(sys, &wanted)? != Change::Unchanged;
    if changed {
        let state = service::state(sys, &unit)?;
        service::restart(sys, &unit, &state, Restart::IfRunning)?;
    }
    let kept = match &wanted.url {
        Some(u) => {
            format!(" The tenant URL {u} is kept: 'sudo edge-setup remote-connectivity enable' turns it back on.")
        }
        None => String::new(),
    };
    if changed {
        sys.out().info(&format!(
            "Remote connectivity {}.{kept}",
            sys.word("is disabled", "would be disabled")
        ));
    } else {
        sys.out().info(&format!(
            "Remote connectivity was already disabled: nothing changed, so {unit} was not restarted.{kept}"
        ));
    }
    Ok(())
}

/// The error of a status that read past damaged files: the first one named.
pub fn damaged(problems: &[Problem], first: &Problem) -> Error {
    Error::failure(format!(
        "{} file{} could not be read: {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        first.file
    ))
    .why(&first.problem)
    .hint(
        first
            .next
            .clone()
            .unwrap_or_else(|| "fix or remove the damaged file and run the command again".to_string()),
    )
}

/// What is configured and how the agent's service is doing.
pub fn status(sys: &System) -> Result<Status> {
    status_with(sys, Some(&dns::resolve))
}

/// The status without resolving the tenant's host (`resolution` is `None`), for
/// `check`, whose tenant checks resolve it themselves within their time limit.
pub fn local_status(sys: &System) -> Result<Status> {
    status_with(sys, None)
}

/// How `status` resolves the tenant's host (a test's answer in the tests).
type Resolver<'a> = &'a dyn Fn(&str, u16) -> Resolution;

fn status_with(sys: &System, resolve: Option<Resolver>) -> Result<Status> {
    let mut problems = Vec::new();
    // A damaged file is reported (and named) in the status, not instead of it.
    let mut readable = |file: &str, e: Error| problems.push(Problem::of(sys, file, &e));
    let cfg = match Config::load(sys) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            readable(config::PATH, e);
            None
        }
    };
    let agent = properties::read(sys)
        .unwrap_or_else(|e| {
            readable(properties::PATH, e);
            None
        })
        .map(|(_, c)| c);
    let c8y_url = match cfg.as_ref().map(|c| c.tenant_url(sys)).transpose() {
        Ok(url) => url.flatten(),
        Err(e) => {
            readable(config::PATH, e);
            None
        }
    };
    let enabled = agent.as_ref().is_some_and(|c| c.enabled);
    let url = agent.and_then(|c| c.url).or_else(|| c8y_url.clone());
    let pending_url = c8y_url.filter(|u| Some(u) != url.as_ref());
    let resolution = match (&url, resolve) {
        (Some(u), Some(resolve)) if !sys.is_image() => Some(resolve(&u.host, u.port_or_default())),
        _ => None,
    };
    let unit = match &cfg {
        Some(cfg) => agent_unit(sys, cfg)?,
        // the configuration is damaged: its key's default
        None => {
            <UnitName as config::KeyValue>::parse(AGENT_SERVICE.def().default.expect("agent.service has a default"))
                .expect("the default parses")
        }
    };
    let device_id = device_id::read(sys).unwrap_or_else(|e| {
        readable(device_id::PATH, e);
        None
    });
    Ok(Status {
        enabled,
        url,
        pending_url,
        device_id,
        dns: dns::inspect(sys)?,
        resolution,
        service: service::state(sys, &unit)?,
        unit,
        problems,
        image: sys.is_image().then(|| sys.root_dir().to_path_buf()),
    })
}

fn agent_unit(sys: &System, cfg: &Config) -> Result<UnitName> {
    Ok(cfg.get(sys, AGENT_SERVICE)?.expect("agent.service has a default"))
}

fn write_agent_config(sys: &System, wanted: &AgentConfig) -> Result<Change> {
    let step = sys
        .out()
        .step(&format!("Writing the Edge agent configuration {}", properties::PATH));
    let change = properties::write(sys, wanted)?;
    step.done(sys.change_word(change));
    Ok(change)
}

fn no_dns(dns: &Dns) -> Error {
    let why = if dns.resolved_stub {
        "/etc/resolv.conf points at systemd-resolved, which knows no server (no DNS= in /etc/systemd/resolved.conf or a .network file, none in /run/systemd/resolve/resolv.conf)"
    } else {
        "/etc/resolv.conf names no name server"
    };
    Error::failure("remote connectivity needs DNS, but no name server is configured")
        .why(why)
        .hint("configure DNS first: sudo edge-setup setup network (or add 'nameserver ADDRESS' to /etc/resolv.conf); --force enables it anyway")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::error::Kind;
    use crate::system::runner::Output;
    use crate::testkit::Fixture;

    struct Live {
        f: Fixture,
        sys: System,
    }

    impl std::ops::Deref for Live {
        type Target = Fixture;
        fn deref(&self) -> &Fixture {
            &self.f
        }
    }

    impl Live {
        /// A live-mode run against a temporary root with DNS and a device ID.
        fn new(euid: u32) -> Live {
            let f = Fixture::empty();
            f.write("/etc/resolv.conf", "nameserver 10.0.0.1\n");
            f.write("/usr/edge/properties/edge-agent/device-id", "edge-7\n");
            let sys = f.live().with_ids(euid, euid);
            Live { f, sys }
        }

        fn agent_file(&self) -> Option<String> {
            self.read(properties::PATH)
        }

        fn systemd_says(&self, show: &str) {
            self.fake.respond("systemctl show", Output::ok(show));
        }
    }

    fn url(s: &str) -> TenantUrl {
        TenantUrl::parse_any(s).unwrap()
    }

    const LOADED: &str = "LoadState=loaded\nActiveState=active\n";

    #[test]
    fn enable_restarts_a_loaded_agent_once_and_warns_when_the_host_does_not_resolve() {
        let t = Live::new(0);
        t.systemd_says(LOADED);
        let unresolvable = |_: &str, _: u16| -> Resolution { Err("Name or service not known".into()) };
        enable_with(&t.sys, &url("t.example.com"), &EnableOpts::default(), &unresolvable).unwrap();
        assert_eq!(
            t.fake.lines(),
            vec![
                "systemctl show --property=LoadState,ActiveState edge-agent.service",
                "systemctl restart edge-agent.service"
            ]
        );
        let err = t.err.text();
        assert!(
            err.contains("warning: t.example.com does not resolve (Name or service not known)"),
            "{err}"
        );
        assert!(
            t.agent_file()
                .unwrap()
                .contains("enabled=true\nurl=https://t.example.com\n")
        );

        // the same again: nothing written, nothing restarted, and it says so
        let resolvable = |_: &str, port: u16| -> Resolution {
            assert_eq!(port, 443);
            Ok(2)
        };
        enable_with(&t.sys, &url("t.example.com"), &EnableOpts::default(), &resolvable).unwrap();
        assert_eq!(t.fake.calls().len(), 2, "{:?}", t.fake.lines());
        assert!(t.err.text().contains("Resolving t.example.com ... 2 addresses"));
        assert!(
            t.err
                .text()
                .contains("nothing changed, so edge-agent.service was not restarted")
        );
    }

    #[test]
    fn disable_restarts_only_a_running_agent_and_a_missing_unit_is_a_note() {
        let t = Live::new(0);
        t.systemd_says(LOADED);
        enable_with(&t.sys, &url("t.example.com:8443"), &EnableOpts::default(), &|_, _| {
            Ok(1)
        })
        .unwrap();
        disable(&t.sys).unwrap();
        assert_eq!(
            t.fake.lines().last().unwrap(),
            "systemctl try-restart edge-agent.service"
        );
        assert!(
            t.agent_file()
                .unwrap()
                .contains("enabled=false\nurl=https://t.example.com:8443\n")
        );

        let t = Live::new(0);
        t.systemd_says("LoadState=not-found\nActiveState=inactive\n");
        disable(&t.sys).unwrap();
        assert_eq!(t.fake.lines().len(), 1, "only the query: {:?}", t.fake.lines());
        assert!(
            t.err
                .text()
                .contains("note: the Edge agent's service edge-agent.service is not installed")
        );
    }

    #[test]
    fn a_failing_restart_is_an_error_that_says_where_to_look() {
        let t = Live::new(0);
        t.systemd_says(LOADED);
        t.fake.respond(
            "systemctl restart",
            Output::failed(1, "Job for edge-agent.service failed.\n"),
        );
        let err = enable_with(&t.sys, &url("t.example.com"), &EnableOpts::default(), &|_, _| Ok(1)).unwrap_err();
        assert_eq!(err.kind, Kind::Failure);
        assert!(err.why.unwrap().contains("Job for edge-agent.service failed"));
        assert!(err.hint.unwrap().contains("journalctl -u edge-agent.service"));
    }

    #[test]
    fn without_systemd_the_restart_is_left_to_the_user() {
        let t = Live::new(0);
        t.fake.respond(
            "systemctl show",
            Output::failed(
                1,
                "System has not been booted with systemd as init system (PID 1). Can't operate.\n",
            ),
        );
        enable_with(&t.sys, &url("t.example.com"), &EnableOpts::default(), &|_, _| Ok(1)).unwrap();
        assert_eq!(t.fake.lines().len(), 1);
        assert!(
            t.err
                .text()
                .contains("cannot tell whether edge-agent.service is installed (System has not been booted")
        );
        assert!(t.err.text().contains("sudo systemctl restart edge-agent.service"));
    }

    #[test]
    fn status_resolves_the_tenant_host_in_live_mode() {
        let t = Live::new(0);
        t.systemd_says("LoadState=loaded\nActiveState=failed\n");
        enable_with(
            &t.sys,
            &url("http://t.example.com"),
            &EnableOpts {
                insecure: true,
                ..Default::default()
            },
            &|_, _| Ok(1),
        )
        .unwrap();
        let st = status_with(
            &t.sys,
            Some(&|host, port| {
                assert_eq!((host, port), ("t.example.com", 80));
                Ok(3)
            }),
        )
        .unwrap();
        assert_eq!(st.resolution, Some(Ok(3)));
        assert_eq!(st.service, State::Loaded("failed".into()));
        let json = st.to_json();
        assert_eq!(json["host_resolves"], true);
        assert_eq!(json["url"], "http://t.example.com");
        assert_eq!(json["agent_state"], "failed");
        assert!(
            st.lines()
                .iter()
                .any(|l| l.ends_with("t.example.com resolves (3 addresses)"))
        );
        assert!(
            st.lines()
                .iter()
                .any(|l| l.contains("http://t.example.com (unencrypted)"))
        );
    }

    #[test]
    fn live_mode_needs_root_and_changes_nothing_without_it() {
        let t = Live::new(1000);
        let err = enable_with(&t.sys, &url("t.example.com"), &EnableOpts::default(), &|_, _| Ok(1)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
        assert!(err.hint.unwrap().contains("sudo edge-setup remote-connectivity enable"));
        assert_eq!(disable(&t.sys).unwrap_err().kind, Kind::NotPermitted);
        assert!(t.agent_file().is_none());
        assert!(t.fake.calls().is_empty());
    }
}
