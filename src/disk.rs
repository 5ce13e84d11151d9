//! Option 5, Expand data disk size: after the disk was grown on the
//! hypervisor, grow the partition under the data mount point (growpart) and
//! then its file system (resize2fs for ext3/ext4, xfs_growfs for XFS). The
//! device is found from /proc/self/mountinfo and /sys/class/block, so
//! `/dev/root` and UUID sources work too.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::command_failed;
use crate::system::runner::{Cmd, Tool};

const MOUNTINFO: &str = "/proc/self/mountinfo";
const SYS_BLOCK: &str = "/sys/class/block";
const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// How a file system is grown while mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grower {
    Resize2fs,
    XfsGrowfs,
}

impl Grower {
    /// The grower for a file system type; others are refused by name.
    pub fn for_fstype(fstype: &str, mount: &Path) -> Result<Grower> {
        match fstype {
            "ext4" | "ext3" => Ok(Grower::Resize2fs),
            "xfs" => Ok(Grower::XfsGrowfs),
            other => {
                let hint = match other {
                    "btrfs" => format!("grow it with: btrfs filesystem resize max {}", mount.display()),
                    _ => "grow it with that file system's own tool".to_string(),
                };
                Err(Error::failure(format!(
                    "the file system at {} is {other}; edge-setup grows ext4 and XFS file systems only",
                    mount.display()
                ))
                .hint(hint))
            }
        }
    }

    pub fn tool(self) -> &'static str {
        match self {
            Grower::Resize2fs => "resize2fs",
            Grower::XfsGrowfs => "xfs_growfs",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Grower::Resize2fs => "e2fsprogs",
            Grower::XfsGrowfs => "xfsprogs",
        }
    }
}

/// The block device holding the data mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub mount: PathBuf,
    pub fstype: String,
    /// Kernel name, like `vda2` or `nvme0n1p2`.
    pub name: String,
    /// The disk and partition number, when the file system is on a partition.
    pub partition: Option<(String, u32)>,
}

impl Device {
    pub fn path(&self) -> String {
        format!("/dev/{}", self.name)
    }
}

/// A mount point as mountinfo writes it: space, tab, newline and backslash octal-escaped.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `major:minor` and file system type mounted at `mount` (the last
/// mount there wins, as it hides the ones below it).
pub fn parse_mountinfo(text: &str, mount: &Path) -> Option<(String, String)> {
    text.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        let (devno, point, fstype) = (fields.get(2)?, fields.get(4)?, fields.get(sep + 1)?);
        (Path::new(&unescape(point)) == mount).then(|| (devno.to_string(), fstype.to_string()))
    })
}

fn sys_file(sys: &System, path: &str) -> Result<Option<String>> {
    Ok(sys.read_string(Path::new(path))?.map(|s| s.trim().to_string()))
}

/// Finds the device under `mount` and refuses what cannot be grown, before any change.
pub fn find(sys: &System, mount: &Path) -> Result<Device> {
    let mountinfo = sys.read_string(Path::new(MOUNTINFO))?.ok_or_else(|| {
        Error::failure(format!("cannot read {MOUNTINFO}")).hint("run this option on the running appliance")
    })?;
    let (devno, fstype) = parse_mountinfo(&mountinfo, mount).ok_or_else(|| {
        Error::failure(format!("nothing is mounted at {}", mount.display()))
            .hint("set the data mount point: edge-setup config set disk.data-mount /data (the default is /)")
    })?;
    Grower::for_fstype(&fstype, mount)?;
    let mut name = None;
    for entry in sys.list_dir(Path::new(SYS_BLOCK))? {
        let entry = entry.to_string_lossy().into_owned();
        if sys_file(sys, &format!("{SYS_BLOCK}/{entry}/dev"))?.as_deref() == Some(devno.as_str()) {
            name = Some(entry);
            break;
        }
    }
    let name = name.ok_or_else(|| {
        Error::failure(format!(
            "the file system at {} is not on a block device (device {devno})",
            mount.display()
        ))
    })?;
    if sys.meta(Path::new(&format!("{SYS_BLOCK}/{name}/dm")))?.is_some() {
        return Err(Error::failure(format!(
            "the file system at {} is on /dev/{name}, a device-mapper volume (LVM or encryption)",
            mount.display()
        ))
        .hint("grow the volume with its own tools (pvresize, lvextend -r), then the file system"));
    }
    let partition = match sys_file(sys, &format!("{SYS_BLOCK}/{name}/partition"))? {
        None => None,
        Some(n) => {
            let number: u32 = n
                .parse()
                .map_err(|_| Error::failure(format!("{SYS_BLOCK}/{name}/partition holds '{n}', not a number")))?;
            // The partition's sysfs directory sits inside its disk's.
            let uevent = sys_file(sys, &format!("{SYS_BLOCK}/{name}/../uevent"))?.unwrap_or_default();
            let disk = uevent
                .lines()
                .find_map(|l| l.strip_prefix("DEVNAME="))
                .ok_or_else(|| Error::failure(format!("cannot find the disk that holds /dev/{name}")))?;
            Some((disk.to_string(), number))
        }
    };
    Ok(Device {
        mount: mount.to_path_buf(),
        fstype,
        name,
        partition,
    })
}

/// Whether the target has `tool` in a system directory.
pub fn has_tool(sys: &System, tool: &str) -> Result<bool> {
    for dir in TOOL_DIRS {
        if sys.meta(&Path::new(dir).join(tool))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn require_tool(sys: &System, tool: &str, package: &str) -> Result<()> {
    if has_tool(sys, tool)? {
        return Ok(());
    }
    Err(Error::failure(format!("{tool} is not installed"))
        .hint(format!("install it ({package}) and run the option again")))
}

/// The size of the file system at `mount` in bytes (live only).
fn fs_size(sys: &System, mount: &Path) -> Result<Option<u64>> {
    let cmd = Cmd::new(Tool::Df)
        .args(["-B1", "--output=size"])
        .arg(mount.to_string_lossy());
    let Some(out) = sys.query(cmd.clone())? else {
        return Ok(None);
    };
    if !out.success() {
        return Err(command_failed(&cmd, &out));
    }
    Ok(out.stdout.lines().last().and_then(|l| l.trim().parse().ok()))
}

/// What the growth did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub mount: PathBuf,
    pub device: String,
    pub filesystem: String,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

/// Grows the partition (when there is one) and the file system of `dev`.
pub fn grow(sys: &System, dev: &Device) -> Result<Report> {
    let grower = Grower::for_fstype(&dev.fstype, &dev.mount)?;
    if dev.partition.is_some() {
        require_tool(
            sys,
            "growpart",
            "cloud-guest-utils on Debian and Ubuntu, cloud-utils-growpart on RHEL",
        )?;
    }
    require_tool(sys, grower.tool(), grower.package())?;
    let before = fs_size(sys, &dev.mount)?;
    if let Some((disk, number)) = &dev.partition {
        let step = sys.out().step(&format!("Growing partition {number} of /dev/{disk}"));
        let cmd = Cmd::new(Tool::Growpart)
            .arg(format!("/dev/{disk}"))
            .arg(number.to_string());
        match sys.run_unchecked(cmd.clone())? {
            None => step.done("planned"),
            Some(out) if out.success() => step.done("grown"),
            // growpart's way of saying the partition already ends at the disk's end.
            Some(out) if out.status == Some(1) && out.stdout.contains("NOCHANGE") => {
                step.done("it already fills the disk")
            }
            Some(out) => return Err(command_failed(&cmd, &out)),
        }
    }
    let step = sys
        .out()
        .step(&format!("Growing the {} file system on {}", dev.fstype, dev.path()));
    let cmd = match grower {
        Grower::Resize2fs => Cmd::new(Tool::Resize2fs).arg(dev.path()),
        Grower::XfsGrowfs => Cmd::new(Tool::XfsGrowfs).arg(dev.mount.to_string_lossy()),
    };
    sys.run(cmd)?;
    step.done(sys.done_word());
    let after = fs_size(sys, &dev.mount)?;
    Ok(Report {
        mount: dev.mount.clone(),
        device: dev.path(),
        filesystem: dev.fstype.clone(),
        size_before: before,
        size_after: after,
    })
}

/// A size for people: GiB with one decimal, MiB below 1 GiB.
pub fn human(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::system::runner::Output;
    use crate::testkit::{FakeRunner, Fixture};
    use std::cell::Cell;

    const MOUNTINFO_TEXT: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 253:2 / / rw,relatime shared:1 - ext4 /dev/root rw
30 27 253:17 / /data\\040disk rw,relatime - xfs /dev/vdb1 rw
31 27 8:0 / /whole rw - ext4 /dev/sda rw
32 27 0:40 / /srv rw - btrfs /dev/vdc rw
33 27 254:0 / /lvm rw - ext4 /dev/mapper/vg-data rw
";

    /// A fake /sys: vda (vda2 a partition), vdb (vdb1), sda whole, dm-0.
    fn fake_sys(dir: &Path) {
        let w = |p: &str, s: &str| {
            let p = dir.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w("/proc/self/mountinfo", MOUNTINFO_TEXT);
        for (disk, part, devno, pdevno) in [("vda", "vda2", "253:0", "253:2"), ("vdb", "vdb1", "253:16", "253:17")] {
            let base = format!("/sys/devices/pci0000:00/virtio/block/{disk}");
            w(&format!("{base}/dev"), &format!("{devno}\n"));
            w(
                &format!("{base}/uevent"),
                &format!("MAJOR=253\nDEVNAME={disk}\nDEVTYPE=disk\n"),
            );
            w(&format!("{base}/{part}/dev"), &format!("{pdevno}\n"));
            w(&format!("{base}/{part}/partition"), &format!("{}\n", &part[3..]));
        }
        w("/sys/devices/pci0000:00/ata/block/sda/dev", "8:0\n");
        w("/sys/devices/virtual/block/dm-0/dev", "254:0\n");
        w("/sys/devices/virtual/block/dm-0/dm/name", "vg-data\n");
        let class = dir.join("sys/class/block");
        std::fs::create_dir_all(&class).unwrap();
        for (name, target) in [
            ("vda", "../../devices/pci0000:00/virtio/block/vda"),
            ("vda2", "../../devices/pci0000:00/virtio/block/vda/vda2"),
            ("vdb", "../../devices/pci0000:00/virtio/block/vdb"),
            ("vdb1", "../../devices/pci0000:00/virtio/block/vdb/vdb1"),
            ("sda", "../../devices/pci0000:00/ata/block/sda"),
            ("dm-0", "../../devices/virtual/block/dm-0"),
        ] {
            std::os::unix::fs::symlink(target, class.join(name)).unwrap();
        }
        for tool in ["growpart", "resize2fs", "xfs_growfs"] {
            w(&format!("/usr/sbin/{tool}"), "");
        }
    }

    #[test]
    fn mountinfo_is_read_with_escapes_and_the_last_mount_wins() {
        assert_eq!(
            parse_mountinfo(MOUNTINFO_TEXT, Path::new("/")),
            Some(("253:2".into(), "ext4".into()))
        );
        assert_eq!(
            parse_mountinfo(MOUNTINFO_TEXT, Path::new("/data disk")),
            Some(("253:17".into(), "xfs".into()))
        );
        let stacked = format!("{MOUNTINFO_TEXT}40 27 0:50 / / rw - overlay overlay rw\n");
        assert_eq!(
            parse_mountinfo(&stacked, Path::new("/")),
            Some(("0:50".into(), "overlay".into()))
        );
        assert_eq!(parse_mountinfo(MOUNTINFO_TEXT, Path::new("/nope")), None);
    }

    #[test]
    fn devices_partitions_and_refusals() {
        let f = Fixture::empty();
        fake_sys(f.root());
        let sys = f.live();
        let d = find(&sys, Path::new("/")).unwrap();
        assert_eq!(d.name, "vda2");
        assert_eq!(d.partition, Some(("vda".into(), 2)));
        let d = find(&sys, Path::new("/data disk")).unwrap();
        assert_eq!((d.name.as_str(), d.fstype.as_str()), ("vdb1", "xfs"));
        assert_eq!(d.partition, Some(("vdb".into(), 1)));
        let d = find(&sys, Path::new("/whole")).unwrap();
        assert_eq!((d.name.as_str(), d.partition.clone()), ("sda", None));
        let e = find(&sys, Path::new("/srv")).unwrap_err();
        assert!(e.what.contains("is btrfs"), "{e}");
        assert_eq!(
            e.hint.as_deref(),
            Some("grow it with: btrfs filesystem resize max /srv")
        );
        let e = find(&sys, Path::new("/lvm")).unwrap_err();
        assert!(e.what.contains("device-mapper"), "{e}");
        let e = find(&sys, Path::new("/nope")).unwrap_err();
        assert!(e.what.contains("nothing is mounted at /nope"), "{e}");
    }

    /// df answers `before` the first time and `after` from then on.
    fn df(fake: &FakeRunner, before: u64, after: u64) {
        let calls = Cell::new(0);
        fake.respond_with(move |c| {
            (c.program.name() == "df").then(|| {
                calls.set(calls.get() + 1);
                let size = if calls.get() == 1 { before } else { after };
                Ok(Output::ok(&format!("   1B-blocks\n{size}\n")))
            })
        });
    }

    #[test]
    fn ext4_on_a_partition_grows_partition_then_file_system() {
        let f = Fixture::empty();
        fake_sys(f.root());
        df(&f.fake, 10 << 30, 20 << 30);
        let sys = f.system(Mode::Live, false);
        let err = &f.err;
        let dev = find(&sys, Path::new("/")).unwrap();
        let r = grow(&sys, &dev).unwrap();
        assert_eq!(
            f.fake.lines(),
            vec![
                "df -B1 --output=size /",
                "growpart /dev/vda 2",
                "resize2fs /dev/vda2",
                "df -B1 --output=size /"
            ]
        );
        assert_eq!((r.size_before, r.size_after), (Some(10 << 30), Some(20 << 30)));
        assert!(
            err.text().contains("Growing partition 2 of /dev/vda ... grown"),
            "{}",
            err.text()
        );
    }

    #[test]
    fn xfs_grows_by_mount_point_and_nochange_is_not_an_error() {
        let f = Fixture::empty();
        fake_sys(f.root());
        df(&f.fake, 5 << 30, 5 << 30);
        f.fake.respond(
            "growpart",
            Output {
                status: Some(1),
                stdout: "NOCHANGE: partition 1 is size 10483712. it cannot be grown\n".into(),
                ..Output::default()
            },
        );
        let sys = f.system(Mode::Live, false);
        let err = &f.err;
        let dev = find(&sys, Path::new("/data disk")).unwrap();
        let r = grow(&sys, &dev).unwrap();
        assert_eq!(f.fake.lines()[1..3], ["growpart /dev/vdb 1", "xfs_growfs '/data disk'"]);
        assert_eq!(r.size_before, r.size_after);
        assert!(err.text().contains("it already fills the disk"), "{}", err.text());
    }

    #[test]
    fn growpart_failures_and_missing_tools_are_errors() {
        let f = Fixture::empty();
        fake_sys(f.root());
        f.fake.respond("growpart", Output::failed(2, "FAILED: disk is busy\n"));
        let sys = f.system(Mode::Live, false);
        let dev = find(&sys, Path::new("/")).unwrap();
        let e = grow(&sys, &dev).unwrap_err();
        assert_eq!(e.what, "`growpart /dev/vda 2` failed");
        assert!(!f.fake.lines().iter().any(|l| l.starts_with("resize2fs")));
        std::fs::remove_file(f.root().join("usr/sbin/growpart")).unwrap();
        let e = grow(&sys, &dev).unwrap_err();
        assert_eq!(e.what, "growpart is not installed");
        assert!(e.hint.unwrap().contains("cloud-guest-utils"));
        // a whole-disk file system needs no growpart
        let dev = find(&sys, Path::new("/whole")).unwrap();
        grow(&sys, &dev).unwrap();
        assert!(f.fake.lines().last().unwrap().starts_with("df"));
        assert!(f.fake.lines().contains(&"resize2fs /dev/sda".to_string()));
    }

    #[test]
    fn dry_run_prints_the_commands() {
        let f = Fixture::empty();
        fake_sys(f.root());
        df(&f.fake, 1 << 30, 1 << 30);
        let sys = f.system(Mode::Live, true);
        let err = &f.err;
        let dev = find(&sys, Path::new("/")).unwrap();
        grow(&sys, &dev).unwrap();
        assert!(
            f.fake.lines().iter().all(|l| l.starts_with("df")),
            "{:?}",
            f.fake.lines()
        );
        assert!(err.text().contains("would run: growpart /dev/vda 2"), "{}", err.text());
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human(20 << 30), "20.0 GiB");
        assert_eq!(human(512 << 20), "512.0 MiB");
    }
}
