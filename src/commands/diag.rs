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
            let command = format!("diag upload {}", bundle.display());
            ctx.sys.require_root(&command)?;
            // the file is checked before the credentials are read and anything is sent
            let bundle = diag::upload::Bundle::read(&ctx.sys, bundle)?;
            let tenant = super::remote_access::connect(ctx, credentials, &command)?;
            ctx.out.result(diag::upload::run(&tenant, &bundle)?);
            Ok(())
        }
    }
}
