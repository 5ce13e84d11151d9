//! `edge-setup diag collect | upload`.

use crate::cli::{DiagAction, DiagArgs};
use crate::context::Ctx;
use crate::diag;
use crate::error::Result;

pub fn run(ctx: &Ctx, args: &DiagArgs) -> Result<()> {
    match &args.action {
        DiagAction::Collect { output, since } => diag::collect::run(&ctx.sys, output.as_deref(), *since),
        DiagAction::Upload { bundle, credentials } => {
            let tenant = super::remote_access::connect(ctx, credentials, "diag upload")?;
            diag::upload::run(&tenant, bundle)
        }
    }
}
