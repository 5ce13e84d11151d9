"""Golden images and first boot (issue 17): a reference machine with the package, `edge-setup
vnc`, cloud-init and an SSH server is prepared with `edge-setup image prepare
--ssh-host-keys --vnc-passwords` and shut down; two clones of its disk boot, each with its
own NoCloud seed made from examples/cloud-init-user-data.yaml (its own host name, agent
URL, VNC password; clone A names its device ID, clone B's is derived from its new machine
ID). Each clone gets its own machine ID, SSH host keys and device ID, its answers applied,
and a VNC session that takes its own password and refuses the other's. Clone B's first
seed has a VNC password that is too short: the first boot fails, `setup status` says so,
nothing is changed, and after the seed is fixed the next boot succeeds. A second boot of
clone A does not run the first boot again."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vmtest.cloudinit import seed
from vmtest.edge import display_of, reference_machine

# Where it runs: clones of a disk booting from a cloud-init seed disk.
KINDS = ("vm",)

# A machine of its own from the snapshot after 10_vnc, whose VNC packages are installed (run
# alone, it installs them).
MACHINE = "golden"
FROM = "10_vnc"
# Its two clones boot at once: the scheduler gives it both VM slots.
VMS = 2
DISTROS = ("bookworm",)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cloud-init-user-data.yaml"
UNIT = "edge-setup-firstboot.service"
DONE = "/var/lib/edge-setup/first-boot.done"


def user_data(password: str, url: str, device_id: str | None) -> str:
    """The shipped example with this clone's values. The guests have no name server, so
    the agent table also says force = true."""
    text = EXAMPLE.read_text()
    for old, new in (('url = "https://plant7.cumulocity.com"', f'url = "{url}"\n      force = true'),
                     ("      Plant7vn\n", f"      {password}\n")):
        assert old in text, f"the example no longer has {old!r}"
        text = text.replace(old, new)
    if device_id:
        return text.replace('id = "edge-plant7-01"', f'id = "{device_id}"')
    # no [device-id] table: the first boot derives the ID from the machine
    without = re.sub(r"(?ms)^      # Leave this table out.*?^      id = .*?\n\n", "", text)
    assert "\n      [device-id]\n" not in without, "the example's [device-id] table was not removed"
    return without


def host_key(m) -> str:
    """The fingerprint of the machine's ED25519 host key."""
    return m.succeed("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()[1]


def status(clone) -> tuple[int, dict]:
    code, out = clone.execute("edge-setup setup status --json 2>/dev/null")
    return code, json.loads(out)


def session_takes(clone, own: str, other: str, png: str) -> None:
    """admin's session on the clone opens with `own` and refuses `other`."""
    clone.wait_for_unit("tigervncserver@:1.service", timeout=300)
    clone.wait_for_open_port(5901, timeout=180)
    clone.screenshot(5901, own, png)
    code, output = clone.vncdo(5901, other, "capture", str(clone.out_dir / f"refused-{png}"))
    assert code == 3, f"{clone.name}: the other clone's password opened the session (exit {code}):\n{output}"


def test(machine):
    # The reference machine: the package, VNC, admin enabled; cloud-init and openssh-server
    # are in the bookworm image (vmtest/image.py).
    reference_machine(machine)
    assert display_of(machine, "admin") == 1
    machine.succeed("cloud-init --version && test -e /usr/sbin/sshd")
    reference_key = host_key(machine)
    machine.succeed("edge-setup device-id set edge-reference")
    reference_id = machine.succeed("cat /etc/machine-id").strip()

    out = machine.succeed("edge-setup image prepare --ssh-host-keys --vnc-passwords 2>&1")
    (machine.out_dir / "prepare.txt").write_text(out)
    assert "Removing the SSH host key /etc/ssh/ssh_host_ed25519_key " in out, out
    machine.succeed("! ls /etc/ssh/ssh_host_*")
    machine.succeed("test -e /etc/machine-id && test ! -s /etc/machine-id")
    machine.succeed("test ! -e /usr/edge/properties/edge-agent/device-id && test ! -e ~admin/.vnc/passwd")
    assert machine.succeed(f"systemctl is-enabled {UNIT}").strip() == "enabled"
    machine.succeed(f"systemd-analyze verify --man=no /usr/lib/systemd/system/{UNIT} 2>&1")
    machine.shutdown()

    a, b = machine.clone("a"), machine.clone("b")
    out = machine.out_dir
    a.extra_disks.append(seed(out / "seed-a.iso", user_data("cl0neA1x", "https://a.example.com",
                                                             "edge-clone-a"), "clone-a-1", "clone-a"))
    b.extra_disks.append(seed(out / "seed-b.iso", user_data("cl0n", "https://b.example.com", None),
                              "clone-b-1", "clone-b"))
    for clone in (a, b):
        clone.forward(5901)
    # Both first boots at once: a TCG guest with one vCPU keeps one host core busy, and clone
    # B's (which fails) needs nothing from clone A's.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda clone: clone.start(), (a, b)))

    # Clone A: its own machine ID, the seed's device ID and URL, its VNC password.
    a.wait_for_unit(UNIT, timeout=900)
    a_machine_id = a.succeed("cat /etc/machine-id").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", a_machine_id) and a_machine_id != reference_id
    assert a.succeed("edge-setup device-id 2>/dev/null").strip() == "edge-clone-a"
    a_key = host_key(a)
    assert a_key != reference_key
    assert "url=https://a.example.com" in a.succeed(
        "cat /usr/edge/properties/edge-agent/remote-connectivity.properties")
    code, st = status(a)
    assert code == 0 and st["result"]["first_boot"]["state"] == "done", st
    # the marked secret is gone, the answers file stays
    a.succeed("test ! -e /etc/edge-setup/answers.d/admin.vncpass && test -e /etc/edge-setup/answers.d/10-appliance.toml")
    session_takes(a, "cl0neA1x", "cl0neB1x", "a.png")
    # A second boot: the first boot does not run again.
    done = a.succeed(f"sha256sum {DONE}")
    a.reboot()
    a.wait_until_succeeds("systemctl is-system-running --wait | grep -Eq 'running|degraded'", timeout=600)
    assert a.succeed(f"systemctl show -p ConditionResult --value {UNIT}").strip() == "no"
    assert a.succeed(f"sha256sum {DONE}") == done
    assert a.succeed("edge-setup device-id 2>/dev/null").strip() == "edge-clone-a"
    a.stop()

    # Clone B, first seed: its VNC password is too short. Nothing changes; status says so.
    b.wait_until_succeeds(f"systemctl is-failed --quiet {UNIT}", timeout=900)
    code, st = status(b)
    assert code == 1 and st["result"]["first_boot"]["state"] == "failed", st
    assert "at least 6" in json.dumps(st["result"]["first_boot"]), st
    b.succeed("test ! -e /usr/edge/properties/edge-agent/device-id && test ! -e ~admin/.vnc/passwd")
    b.succeed("test ! -e /usr/edge/properties/edge-agent/remote-connectivity.properties")
    b.succeed("test -e /etc/edge-setup/answers.d/admin.vncpass")   # kept for the retry
    b_machine_id = b.succeed("cat /etc/machine-id").strip()
    assert b_machine_id not in (reference_id, a_machine_id)
    b.shutdown()
    # The fixed seed (a new instance, so that cloud-init writes the files again).
    seed(out / "seed-b.iso", user_data("cl0neB1x", "https://b.example.com", None), "clone-b-2", "clone-b")
    b.wait_for_unit(UNIT, timeout=900)
    assert b.succeed("cat /etc/machine-id").strip() == b_machine_id
    assert host_key(b) not in (reference_key, a_key)
    b_id = b.succeed("edge-setup device-id 2>/dev/null").strip()
    assert re.fullmatch(r"edge-[0-9a-f]{20}", b_id), b_id
    assert "url=https://b.example.com" in b.succeed(
        "cat /usr/edge/properties/edge-agent/remote-connectivity.properties")
    code, st = status(b)
    assert code == 0 and st["result"]["first_boot"]["state"] == "done", st
    session_takes(b, "cl0neB1x", "cl0neA1x", "b.png")
