//! Option 5, Expand data disk size: the appliance's part is `crate::disk`;
//! then the `expand-disk` platform steps get the sizes.

use crate::config;
use crate::context::Ctx;
use crate::disk;
use crate::error::Result;
use crate::hooks;

pub fn run(ctx: &Ctx) -> Result<()> {
    ctx.sys.require_root("setup expand-disk")?;
    let mount = ctx.config()?.require(&ctx.sys, config::DISK_DATA_MOUNT)?;
    if ctx.sys.is_image() {
        ctx.out.info(&format!(
            "The data disk can only be grown on the running appliance: there this option finds the block device under {} (disk.data-mount), grows its partition with growpart and its file system with resize2fs (ext4) or xfs_growfs (XFS).",
            mount.0.display()
        ));
        for (tool, package) in [("growpart", "cloud-guest-utils"), ("resize2fs", "e2fsprogs")] {
            if !disk::has_tool(&ctx.sys, tool)? {
                ctx.out.note(&format!(
                    "the image has no {tool}: install {package} in it so option 5 can run"
                ));
            }
        }
        return Ok(());
    }
    let device = disk::find(&ctx.sys, &mount.0)?;
    let report = disk::grow(&ctx.sys, &device)?;
    match (report.size_before, report.size_after) {
        _ if !ctx.sys.applies_commands() => ctx.out.info("Dry run: nothing was grown."),
        (Some(before), Some(after)) if after > before => ctx.out.info(&format!(
            "The file system at {} grew from {} to {}.",
            report.mount.display(),
            disk::human(before),
            disk::human(after)
        )),
        (_, after) => ctx.out.info(&format!(
            "Nothing to grow: the file system at {} already uses the whole disk{}. Grow the disk on the hypervisor first, then run this option again.",
            report.mount.display(),
            after.map(|a| format!(" ({})", disk::human(a))).unwrap_or_default()
        )),
    }
    hooks::run(&ctx.sys, "expand-disk", &report)?;
    Ok(())
}
