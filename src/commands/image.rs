//! `edge-setup image prepare` (`image first-boot` is the wizard's: it applies answers files).

use crate::context::Ctx;
use crate::error::Result;
use crate::image::{self, Resets};

pub fn prepare(ctx: &Ctx, resets: Resets) -> Result<()> {
    let result = image::prepare(&ctx.sys, resets)?;
    ctx.out.result(result);
    Ok(())
}
