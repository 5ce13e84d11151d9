//! `edge-setup register [--accept] [--wait [--timeout S]]`.

use std::time::Duration;

use serde_json::json;

use crate::cli::RegisterArgs;
use crate::commands::remote_access::connect;
use crate::context::Ctx;
use crate::device_id;
use crate::error::Result;
use crate::registration::{self, Options, State};

pub fn run(ctx: &Ctx, args: &RegisterArgs) -> Result<()> {
    // the device ID first: without one there is nothing to ask credentials for
    let id = device_id::read(&ctx.sys)?.ok_or_else(|| device_id::missing(&ctx.sys))?;
    let tenant = connect(ctx, &args.credentials, "register")?;
    let st = registration::register(
        &tenant,
        &id,
        &Options {
            accept: args.accept,
            wait: args.wait.then(|| Duration::from_secs(args.timeout.into())),
            registered: false,
        },
    )?;
    let mut result = st.to_json();
    result["device_id"] = json!(id.as_str());
    result["tenant"] = json!(tenant.url());
    ctx.out.result(result);
    ctx.out
        .data(&format!("Device {id} in {}: {}", tenant.url(), st.describe()));
    match &st {
        State::Registered { .. } => {}
        State::Requested { status } if status == "ACCEPTED" => {}
        _ if ctx.sys.dry_run() => {}
        other => ctx.out.note(&registration::waiting_hint(other, args.accept)),
    }
    Ok(())
}
