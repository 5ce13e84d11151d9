"""Smoke test of the harness and the image: boot, system state, host name, offline
package repository, copying a host file in, arbitrary output bytes."""

import hashlib
import os
import tempfile
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: the harness on both: a container's and a VM's boot, control shell and files.
KINDS = ("container", "vm")


def test(machine):
    machine.start()

    # The boot finished; "degraded" is accepted, but the failed units are shown.
    state = machine.execute("systemctl is-system-running --wait", timeout=300)[1].strip()
    if state == "degraded":
        machine.log("    system degraded; failed units:\n"
                    + machine.succeed("systemctl --failed --no-legend --plain"))
    else:
        assert state == "running", f"system state is {state!r}"

    # The host name is set, and deliberately not resolvable (edge-setup must fix that).
    assert machine.succeed("hostname").strip() == "appliance"
    machine.fail("getent hosts appliance")

    # The guest has no network source: packages come from the offline repository.
    sources = machine.succeed("apt-get indextargets --format '$(SITE)' | sort -u").split()
    assert sources == ["file:/var/local/edge-repo"], sources
    machine.fail("dpkg -s cloud-guest-utils")
    # (10_vnc and 70_data_disk really install from it; a simulation is enough here)
    machine.succeed("apt-get install -s cloud-guest-utils | grep -q '^Inst cloud-guest-utils'", timeout=300)

    # copy_in: a host file arrives intact, with its mode.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "payload.bin")
        data = os.urandom(3 * 1024 * 1024)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o750)
        machine.copy_in(path, "/opt/vmt/payload.bin")
    digest = machine.succeed("sha256sum /opt/vmt/payload.bin").split()[0]
    assert digest == hashlib.sha256(data).hexdigest(), "copied file differs"
    assert machine.succeed("stat -c %a /opt/vmt/payload.bin").strip() == "750"

    # The control channel passes any bytes and reports exit statuses.
    out = machine.execute_bytes("printf '\\000\\001\\377\\r\\n@@VMT-END x 0\\n'; exit 7")
    assert out == (7, b"\x00\x01\xff\r\n@@VMT-END x 0\n"), out
    status, _ = machine.execute("sleep 10", timeout=2)
    assert status == 124, f"timeout status {status}"
