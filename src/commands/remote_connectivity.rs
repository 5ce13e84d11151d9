//! `edge-setup remote-connectivity [enable | disable | status]`.

use crate::agent;
use crate::cli::{RemoteConnectivityAction, RemoteConnectivityArgs};
use crate::config::C8Y_URL;
use crate::context::Ctx;
use crate::error::{Error, Result};

/// `edge-setup remote-connectivity [enable|disable|status]`.
pub fn run(ctx: &Ctx, args: &RemoteConnectivityArgs) -> Result<()> {
    match args.action.as_ref().unwrap_or(&RemoteConnectivityAction::Status) {
        RemoteConnectivityAction::Enable { url, insecure, force } => {
            let (url, insecure) = match url {
                Some(s) => (agent::parse_url(s)?, *insecure),
                None => {
                    // c8y.url is http only when --insecure recorded it (c8y.insecure)
                    let url = ctx.config()?.tenant_url(&ctx.sys)?.ok_or_else(|| {
                        Error::missing_key(C8Y_URL).hint(
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
            ctx.out.result(st.to_json());
            for line in st.lines() {
                ctx.out.data(&line);
            }
            if let Some(first) = st.problems.first() {
                return Err(agent::damaged(&st.problems, first));
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
