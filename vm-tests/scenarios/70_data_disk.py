"""Scenario 7, the data disk: a second disk partitioned and formatted in the guest and
mounted at /data (disk.data-mount); with the machine off it is grown by 256 MiB with
`qemu-img resize` on the host; after the boot `edge-setup setup expand-disk` grows the
partition (growpart) and the ext4 file system (resize2fs), and `df` shows it larger."""

import subprocess
import tempfile
from pathlib import Path

from vmtest.edge import install_package

# Where it runs: partitions and file systems on a disk of its own.
KINDS = ("vm",)

FRESH_MACHINE = True
MiB = 1024 * 1024


def size_of(machine) -> int:
    return int(machine.succeed("df -B1 --output=size /data | tail -n1").strip())


def test(machine):
    with tempfile.TemporaryDirectory(prefix="vmt-data-") as tmp:
        disk = Path(tmp) / "data.raw"
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk), "256M"], check=True)
        machine.extra_disks.append(disk)
        install_package(machine)
        machine.succeed("DEBIAN_FRONTEND=noninteractive apt-get install -y cloud-guest-utils", timeout=600)
        machine.succeed("test \"$(lsblk -bdno SIZE /dev/vdb)\" = 268435456")
        machine.succeed("echo ',,L' | sfdisk --label gpt /dev/vdb && udevadm settle && mkfs.ext4 -q -L data /dev/vdb1")
        machine.succeed("mkdir -p /data && echo 'LABEL=data /data ext4 defaults 0 2' >> /etc/fstab && mount /data")
        machine.succeed("echo keep > /data/marker")
        machine.succeed("edge-setup config set disk.data-mount /data")
        before = size_of(machine)

        machine.shutdown()
        subprocess.run(["qemu-img", "resize", "-q", "-f", "raw", str(disk), "+256M"], check=True)
        machine.start()
        machine.succeed("test \"$(lsblk -bdno SIZE /dev/vdb)\" = 536870912")
        assert size_of(machine) == before, "the file system grew before expand-disk"
        out = machine.succeed("edge-setup setup expand-disk 2>&1", timeout=300)
        (machine.out_dir / "expand-disk.txt").write_text(out)
        after = size_of(machine)
        machine.log(f"    /data: {before // MiB} MiB -> {after // MiB} MiB")
        assert after > before + 200 * MiB, f"/data did not grow: {before} -> {after} bytes\n{out}"
        assert machine.succeed("cat /data/marker").strip() == "keep"
        # Nothing left to grow: a second run says so and succeeds.
        machine.succeed("edge-setup setup expand-disk 2>&1", timeout=300)
        assert size_of(machine) == after
        machine.shutdown()
