"""NoCloud seeds for cloud-init: a small ISO 9660 disk labelled `cidata` holding
`user-data`, `meta-data` and `network-config`, made on the host with Debian's
genisoimage and attached to a guest as a further disk (`machine.extra_disks`)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from . import hosttools


def seed(path: Path, user_data: str, instance_id: str, hostname: str) -> Path:
    """Writes the seed to `path`. cloud-init runs its per-instance modules (write_files)
    once per `instance_id`: a changed seed needs a new one. The guests keep their own
    network configuration (networkd, DHCP); cloud-init is told to leave it alone."""
    hosttools.ensure({"genisoimage": "genisoimage"})
    with tempfile.TemporaryDirectory() as d:
        files = {
            "user-data": user_data,
            "meta-data": f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n",
            "network-config": "network:\n  config: disabled\n",
        }
        for name, text in files.items():
            (Path(d) / name).write_text(text)
        path.unlink(missing_ok=True)
        subprocess.run(["genisoimage", "-quiet", "-output", str(path), "-volid", "cidata",
                        "-joliet", "-rock", *files], cwd=d, check=True)
    return path
