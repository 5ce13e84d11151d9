//! Option 13, "Register this device and sync remote access": the tenant half
//! of the setup in one step (`register --accept --wait`, then `remote-access sync`).

use std::time::Duration;

use crate::cli::CredentialArgs;
use crate::commands::remote_access::credentials;
use crate::context::Ctx;
use crate::device_id;
use crate::error::Result;
use crate::prompt::Question;
use crate::registration::{self, State};
use crate::remote_access::{self, Device};
use crate::tenant::{self, Credentials, Tenant};

/// How long the option waits for the device to be accepted.
const WAIT: Duration = Duration::from_secs(600);

const NONINTERACTIVE: &str = "edge-setup setup remote-access --credentials-stdin, or set c8y.credentials-file";

pub fn run(ctx: &Ctx, args: &CredentialArgs) -> Result<()> {
    ctx.sys.require_root("setup remote-access")?;
    // the device ID first: without one there is nothing to ask credentials for
    let id = device_id::read(&ctx.sys)?.ok_or_else(|| device_id::missing(&ctx.sys))?;
    let credentials = if args.credentials_stdin || args.credentials.is_some() {
        credentials(ctx, args, "setup remote-access")?
    } else if let Some(configured) = tenant::configured(&ctx.sys)? {
        configured
    } else {
        ask(ctx)?
    };
    let tenant = Tenant::new(&ctx.sys, credentials)?;
    let st = registration::register(
        &tenant,
        &id,
        &registration::Options {
            accept: true,
            wait: Some(WAIT),
            registered: true,
        },
    )?;
    ctx.out.data(&format!("Registration: {}", st.describe()));
    // registered: the wait ends there, or a dry run stops short of it
    let State::Registered { managed_object } = st.clone() else {
        ctx.out
            .note("the endpoints are synced once the device is registered (not in a dry run)");
        return Ok(());
    };
    let device = Device {
        tenant: &tenant,
        managed_object,
    };
    let outcomes = remote_access::locked(&ctx.sys, || remote_access::sync(&device, None))?;
    for o in &outcomes {
        ctx.out.data(&format!(
            "Endpoint '{}' ({}:{}): {}",
            o.name,
            remote_access::HOST,
            o.port,
            o.action
        ));
    }
    if outcomes.is_empty() {
        ctx.out
            .data("No VNC user has a display yet: enable one (option 10), then run this option again.");
    }
    ctx.out.result(serde_json::json!({
        "registration": st.to_json(),
        "managed_object": device.managed_object,
        "endpoints": outcomes,
    }));
    Ok(())
}

/// The tenant user and password, asked on the terminal.
fn ask(ctx: &Ctx) -> Result<Credentials> {
    let user = ctx.prompt.text(
        Question {
            prompt: "Tenant user (TENANT/USER, like t12345/admin)",
            noninteractive: NONINTERACTIVE,
        },
        None,
        &|s| {
            if s.trim().is_empty() || s.contains(':') || s.chars().any(char::is_whitespace) {
                Err("give TENANT/USER, without ':' or spaces".into())
            } else {
                Ok(())
            }
        },
    )?;
    let password = ctx.prompt.secret(
        Question {
            prompt: "Tenant password",
            noninteractive: NONINTERACTIVE,
        },
        false,
        &|s| {
            if s.is_empty() {
                Err("the password cannot be empty".into())
            } else {
                Ok(())
            }
        },
    )?;
    Ok(Credentials::Basic { user, password })
}
