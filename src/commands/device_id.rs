//! `edge-setup device-id [show | set ID | generate [--force]]`.

use crate::cli::{DeviceIdAction, DeviceIdArgs};
use crate::context::Ctx;
use crate::device_id::{REGISTRATION_STEPS, derive, missing, parse_arg, read, store};
use crate::error::Result;

/// `edge-setup device-id [show|set|generate]`.
pub fn run(ctx: &Ctx, args: &DeviceIdArgs) -> Result<()> {
    match args.action.as_ref().unwrap_or(&DeviceIdAction::Show) {
        DeviceIdAction::Show => {
            let id = read(&ctx.sys)?.ok_or_else(|| missing(&ctx.sys))?;
            ctx.out.result(serde_json::json!({ "device_id": id.as_str() }));
            ctx.out.data(id.as_str());
            ctx.out.note(REGISTRATION_STEPS);
            Ok(())
        }
        DeviceIdAction::Set { id } => {
            let id = parse_arg(id)?;
            ctx.sys.require_root(&format!("device-id set {id}"))?;
            store(&ctx.sys, &id)?;
            ctx.out.result(serde_json::json!({ "device_id": id.as_str() }));
            ctx.out.data(id.as_str());
            Ok(())
        }
        DeviceIdAction::Generate { force } => {
            ctx.sys.require_root(if *force {
                "device-id generate --force"
            } else {
                "device-id generate"
            })?;
            if let Some(existing) = read(&ctx.sys)?
                && !force
            {
                ctx.out.info(&format!(
                    "Keeping the device ID that is already set ({existing}); use 'edge-setup device-id generate --force' to replace it."
                ));
                ctx.out.result(serde_json::json!({ "device_id": existing.as_str() }));
                ctx.out.data(existing.as_str());
                return Ok(());
            }
            let id = derive(&ctx.sys)?;
            store(&ctx.sys, &id)?;
            ctx.out.result(serde_json::json!({ "device_id": id.as_str() }));
            ctx.out.data(id.as_str());
            ctx.out.note(REGISTRATION_STEPS);
            Ok(())
        }
    }
}
