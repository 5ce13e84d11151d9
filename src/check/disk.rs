//! Free space on / and on the data disk.

use std::path::Path;

use crate::config::DISK_DATA_MOUNT;
use crate::health::{Area, Check, Probe};

const AREA: Area = Area::Disk;

/// Under this share of free space a file system is reported.
const WARN_PERCENT: u64 = 10;

pub fn checks(p: &Probe) -> Vec<Check> {
    if let Some(why) = p.live_only() {
        return vec![Check::skipped(AREA, "disk.root", why)];
    }
    let mut out = vec![free("disk.root", Path::new("/"), &p.sys.host_path(Path::new("/")))];
    if let Some(data) = p.get(DISK_DATA_MOUNT)
        && data.0 != Path::new("/")
    {
        out.push(free("disk.data", &data.0, &p.sys.host_path(&data.0)));
    }
    out
}

/// The free space of the file system at `mount` (`host`: where this process finds it).
fn free(id: &'static str, mount: &Path, host: &Path) -> Check {
    let shown = mount.display();
    let st = match nix::sys::statvfs::statvfs(host) {
        Ok(st) => st,
        Err(e) => {
            return Check::fail(
                AREA,
                id,
                format!("cannot read the free space of {shown}: {e}"),
                format!("check that {shown} is mounted (findmnt {shown})"),
            );
        }
    };
    let block = st.fragment_size() as u64;
    let (total, avail) = (st.blocks() as u64 * block, st.blocks_available() as u64 * block);
    let percent = (avail * 100).checked_div(total).unwrap_or(0);
    let said = format!(
        "{shown}: {} free of {} ({percent} %)",
        crate::disk::human(avail),
        crate::disk::human(total)
    );
    if percent < WARN_PERCENT {
        Check::warn(
            AREA,
            id,
            format!("{said}, under {WARN_PERCENT} %"),
            format!(
                "free space (sudo journalctl --vacuum-size=200M; sudo du -xh {shown} | sort -h | tail), or grow the disk and run: sudo edge-setup setup expand-disk"
            ),
        )
    } else {
        Check::ok(AREA, id, said)
    }
}
