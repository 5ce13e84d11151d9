//! `edge-setup vnc`: the arguments become a request for `crate::vnc`.

use crate::cli::{VncAction, VncArgs};
use crate::context::Ctx;
use crate::error::Result;
use crate::system::packages;
use crate::vnc::{self, Request};

pub fn run(ctx: &Ctx, args: &VncArgs) -> Result<()> {
    let request = match &args.action {
        Some(VncAction::Bundle { dir }) => Request::Bundle { dir: dir.clone() },
        Some(VncAction::RefreshSudoers) => Request::RefreshSudoers,
        None if args.uninstall => Request::Uninstall { purge: args.purge },
        None => Request::Install {
            offline: args.offline.clone(),
        },
    };
    vnc::run(&ctx.sys, &request, packages::lock_timeout(&ctx.env))
}
