//! `edge-setup remote-connectivity [enable | disable | status]`.

use crate::agent;
use crate::cli::{RemoteConnectivityAction, RemoteConnectivityArgs};
use crate::config::C8Y_URL;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::registration;
use crate::tenant::{self, Tenant};

/// `edge-setup remote-connectivity [enable|disable|status]`.
pub fn run(ctx: &Ctx, args: &RemoteConnectivityArgs) -> Result<()> {
    match args.action.as_ref().unwrap_or(&RemoteConnectivityAction::Status) {
        RemoteConnectivityAction::Enable { url, insecure, force } => {
            let (url, insecure) = match url {
                Some(s) => (agent::parse_url(s)?, *insecure),
                None => {
                    // c8y.url is http only when --insecure recorded it (c8y.insecure)
                    let url = ctx.config()?.tenant_url(&ctx.sys)?.ok_or_else(|| {
                        Error::missing_key(C8Y_URL.name).hint(
                            "or give it here: sudo edge-setup remote-connectivity enable --url https://<tenant host>",
                        )
                    })?;
                    let insecure = *insecure || url.is_insecure();
                    (url, insecure)
                }
            };
            agent::enable(
                &ctx.sys,
                &url,
                &agent::EnableOpts {
                    insecure,
                    force: *force,
                    device_id: None,
                },
            )
        }
        RemoteConnectivityAction::Disable => agent::disable(&ctx.sys),
        RemoteConnectivityAction::Status => {
            let st = agent::status(&ctx.sys)?;
            let mut json = st.to_json();
            let mut lines = st.lines();
            if let Some((line, value)) = registration(ctx) {
                lines.push(format!("registration: {line}"));
                json["registration"] = value;
            }
            ctx.out.result(json);
            for line in lines {
                ctx.out.data(&line);
            }
            if let Some(first) = st.problems.first() {
                return Err(agent::damaged(&st.problems, first));
            }
            if let (Some(Err(why)), Some(url)) = (&st.resolution, &st.url) {
                ctx.out.warn(&format!(
                    "the tenant's host {} does not resolve ({why}): 'sudo edge-setup check --only tenant' checks the way to it step by step",
                    url.host
                ));
            }
            if let (Some(pending), Some(url)) = (&st.pending_url, &st.url) {
                ctx.out.note(&format!(
                    "c8y.url is {pending}, but the agent is configured for {url}: 'sudo edge-setup remote-connectivity enable' applies it"
                ));
            }
            Ok(())
        }
    }
}

/// The device's registration in the tenant, when tenant credentials are
/// configured and the device has an ID: the line and its JSON. A tenant that
/// cannot be asked is shown, not a failure of the status.
fn registration(ctx: &Ctx) -> Option<(String, serde_json::Value)> {
    let id = crate::device_id::read(&ctx.sys).ok().flatten()?;
    let asked = match tenant::configured(&ctx.sys) {
        Ok(None) => return None,
        Ok(Some(credentials)) => Tenant::new(&ctx.sys, credentials).and_then(|t| registration::state(&t, &id)),
        Err(e) => Err(e),
    };
    Some(match asked {
        Ok(state) => (state.describe(), state.to_json()),
        Err(e) => (
            format!("unknown: {}", e.what),
            serde_json::json!({"state": "unknown", "error": e.what}),
        ),
    })
}
