//! Option 5 on a real disk: a partitioned loop device with XFS, grown like a
//! hypervisor grows a virtual disk, then found and grown by edge-setup on the
//! live system (growpart, xfs_growfs, df). ext4 takes the same path with
//! resize2fs; it is proven with the recording runner in src/disk.rs because
//! this sandbox denies the ext4 online-resize ioctl.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use edge_setup::disk;

const TOOLS: [&str; 7] = [
    "losetup",
    "sfdisk",
    "partx",
    "mkfs.xfs",
    "growpart",
    "xfs_growfs",
    "mount",
];

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A loop device over a sparse file, with one partition holding XFS, mounted.
struct LoopDisk {
    _dir: tempfile::TempDir,
    image: PathBuf,
    device: String,
    mount: PathBuf,
}

impl LoopDisk {
    fn new() -> LoopDisk {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("data");
        std::fs::create_dir(&mount).unwrap();
        std::fs::File::create(&image).unwrap().set_len(400 << 20).unwrap();
        let mut sfdisk = Command::new("sfdisk")
            .args(["-q", image.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        // One partition from 1 MiB to the end of the disk.
        sfdisk.stdin.take().unwrap().write_all(b"start=2048\n").unwrap();
        assert!(sfdisk.wait().unwrap().success());
        let device = sh(&["losetup", "--find", "--show", "--partscan", image.to_str().unwrap()]);
        // Without udev the partition may need announcing; "already exists" is fine.
        let _ = Command::new("partx").args(["-a", &device]).output();
        let part = format!("{device}p1");
        sh(&["mkfs.xfs", "-q", &part]);
        sh(&["mount", &part, mount.to_str().unwrap()]);
        LoopDisk {
            _dir: dir,
            image,
            device,
            mount,
        }
    }

    /// What the hypervisor does: a bigger disk.
    fn grow_disk(&self, bytes: u64) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.image)
            .unwrap()
            .set_len(bytes)
            .unwrap();
        sh(&["losetup", "--set-capacity", &self.device]);
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

#[test]
#[ignore = "needs root"]
fn a_grown_disk_grows_partition_and_xfs_and_a_second_run_has_nothing_to_grow() {
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .unwrap()
                .status
                .success()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "missing tools {missing:?}: install them with 'scripts/install-deps' (cloud-guest-utils fdisk xfsprogs)"
    );
    let disk = LoopDisk::new();
    let (ctx, err) = common::live_ctx(Path::new("/"));
    let name = Path::new(&disk.device)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    let dev = disk::find(&ctx.sys, &disk.mount).unwrap();
    assert_eq!(dev.name, format!("{name}p1"));
    assert_eq!(dev.partition, Some((name.clone(), 1)));
    assert_eq!(dev.fstype, "xfs");

    disk.grow_disk(800 << 20);
    let report = disk::grow(&ctx.sys, &dev).unwrap();
    let (before, after) = (report.size_before.unwrap(), report.size_after.unwrap());
    assert!(after > before + (300 << 20), "{before} -> {after}\n{}", err.text());
    assert!(
        err.text()
            .contains(&format!("Growing partition 1 of /dev/{name} ... grown")),
        "{}",
        err.text()
    );

    let again = disk::grow(&ctx.sys, &dev).unwrap();
    assert_eq!(again.size_before, again.size_after);
    assert!(err.text().contains("it already fills the disk"), "{}", err.text());
}
