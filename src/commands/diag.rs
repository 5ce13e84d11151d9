//! `edge-setup diag collect | upload`.

use crate::cli::{DiagAction, DiagArgs};
use crate::context::Ctx;
use crate::diag;
use crate::error::Result;

pub fn run(ctx: &Ctx, args: &DiagArgs) -> Result<()> {
    match &args.action {
        DiagAction::Collect { output, since } => {
            let result = diag::collect::run(&ctx.sys, output.as_deref(), *since)?;
            // the bundle's path on stdout, for `bundle=$(sudo edge-setup diag collect)`
            if !ctx.sys.dry_run()
                && let Some(path) = result["path"].as_str()
            {
                ctx.out.data(path);
            }
            ctx.out.result(result);
            Ok(())
        }
        DiagAction::Upload { bundle, credentials } => {
            let tenant = super::remote_access::connect(ctx, credentials, "diag upload")?;
            diag::upload::run(&tenant, bundle)
        }
    }
}
