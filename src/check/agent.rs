//! The Edge agent: its tenant URL, its unit, and its properties against the configuration.

use crate::agent::{self, Status, service::State};
use crate::health::{Area, Check, Probe};
use crate::system::runner::{Cmd, Tool};

const AREA: Area = Area::Agent;

pub fn checks(p: &Probe) -> Vec<Check> {
    match agent::local_status(p.sys) {
        Ok(st) => vec![url(p, &st), service(p, &st), properties(p, &st)],
        Err(e) => vec![Check::failed(AREA, "agent.url", e, || {
            p.sys.next_command("remote-connectivity status")
        })],
    }
}

fn url(p: &Probe, st: &Status) -> Check {
    let id = "agent.url";
    match (&st.url, st.enabled) {
        (Some(u), true) if u.is_insecure() => Check::warn(
            AREA,
            id,
            format!("remote connectivity is enabled for {u}, which is not encrypted"),
            p.sys
                .next_command("remote-connectivity enable --url https://<tenant host>"),
        ),
        (Some(u), true) => Check::ok(AREA, id, format!("remote connectivity is enabled for {u}")),
        (Some(u), false) => Check::ok(AREA, id, format!("remote connectivity is disabled; {u} is kept for it")),
        (None, _) => Check::warn(
            AREA,
            id,
            "no tenant URL is set: the appliance is not remotely managed",
            p.sys
                .next_command("remote-connectivity enable --url https://<tenant host>"),
        ),
    }
}

fn service(p: &Probe, st: &Status) -> Check {
    let id = "agent.service";
    let unit = st.unit.as_str();
    if !st.enabled {
        return Check::skipped(AREA, id, "remote connectivity is disabled");
    }
    let restart = format!("sudo systemctl restart {unit} (journalctl -u {unit} tells why it stopped)");
    match &st.service {
        State::NotInstalled => Check::fail(
            AREA,
            id,
            format!("{unit} is not installed"),
            format!(
                "install the Edge agent, or name its unit: {}",
                p.sys.next_command("config set agent.service <unit>")
            ),
        ),
        State::Masked => Check::fail(
            AREA,
            id,
            format!("{unit} is masked"),
            format!("sudo systemctl unmask {unit}"),
        ),
        State::Installed => Check::ok(AREA, id, format!("{unit} is installed (it runs on the appliance)")),
        State::Unknown(why) => Check::warn(AREA, id, format!("{unit}: {why}"), format!("systemctl status {unit}")),
        State::Loaded(active) if active == "active" => {
            let enabled = p
                .sys
                .query(Cmd::new(Tool::Systemctl).args(["is-enabled", unit]))
                .ok()
                .flatten()
                .map(|o| o.stdout.trim().to_string())
                .unwrap_or_default();
            match enabled.as_str() {
                "enabled" | "static" | "alias" | "indirect" | "generated" => {
                    Check::ok(AREA, id, format!("{unit} is enabled and active"))
                }
                other => Check::warn(
                    AREA,
                    id,
                    format!(
                        "{unit} is active but {}: it will not start at the next boot",
                        if other.is_empty() { "not enabled" } else { other }
                    ),
                    format!("sudo systemctl enable {unit}"),
                ),
            }
        }
        State::Loaded(active) => Check::fail(AREA, id, format!("{unit} is {active}"), restart),
    }
}

fn properties(p: &Probe, st: &Status) -> Check {
    let id = "agent.properties";
    if let Some(problem) = st.problems.first() {
        return Check::fail(
            AREA,
            id,
            format!("{}: {}", problem.file, problem.problem),
            problem
                .next
                .clone()
                .unwrap_or_else(|| p.sys.next_command("remote-connectivity enable")),
        );
    }
    match (&st.pending_url, &st.url) {
        (Some(pending), Some(url)) => Check::warn(
            AREA,
            id,
            format!("c8y.url is {pending}, but the agent is configured for {url}"),
            p.sys.next_command("remote-connectivity enable"),
        ),
        (_, None) => Check::skipped(AREA, id, "no tenant URL to agree with"),
        _ => Check::ok(
            AREA,
            id,
            format!("{} agrees with the configuration", agent::properties::PATH),
        ),
    }
}
