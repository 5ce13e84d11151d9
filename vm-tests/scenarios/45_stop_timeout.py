"""A program in a session that ignores SIGTERM cannot hold a restart for systemd's 90 s:
`edge-setup vnc` installed a drop-in with TimeoutStopSec=15s for the session units. A
stubborn program (a shell that ignores SIGTERM) is put in admin's session (the unit's
cgroup, where everything started from the desktop runs); `systemctl restart` of the
session then takes about 15 s, not 90 s, the program is gone, and the new session takes
admin's password. (The program ignores SIGHUP and SIGINT as well: whatever the unit sends
first, only the SIGKILL after the timeout ends it.)"""

import time

from vmtest.edge import USERS, display_of
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: systemd's stop timeout and cgroups: the container's systemd on the unified hierarchy.
KINDS = ("container",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

DROPIN = "/etc/systemd/system/tigervncserver@.service.d/edge-setup.conf"


def test(machine):
    machine.succeed(f"grep -qx 'TimeoutStopSec=15s' {DROPIN}")
    n = display_of(machine, "admin")
    unit = f"tigervncserver@:{n}.service"
    machine.wait_for_unit(unit)
    assert machine.succeed(f"systemctl show -p TimeoutStopUSec --value {unit}").strip() == "15s"

    # how the unit stops its processes, for the record
    machine.log("    " + machine.succeed(f"systemctl show -p KillMode,KillSignal,SendSIGHUP {unit}")
                .replace("\n", " "))
    machine.succeed("runuser -u admin -- setsid -f sh -c "
                    "'echo $$ >/tmp/stubborn.pid; trap \"\" TERM HUP INT; while :; do sleep 1; done' "
                    "</dev/null >/dev/null 2>&1")
    pid = machine.wait_until_succeeds("test -s /tmp/stubborn.pid && cat /tmp/stubborn.pid").strip()
    cgroup = machine.succeed(f"systemctl show -p ControlGroup --value {unit}").strip()
    machine.succeed(f"echo {pid} > /sys/fs/cgroup{cgroup}/cgroup.procs")
    machine.succeed(f"grep -qx {pid} /sys/fs/cgroup{cgroup}/cgroup.procs")

    start = time.monotonic()
    machine.succeed(f"systemctl restart {unit}", timeout=150)
    took = time.monotonic() - start
    machine.log(f"    restart with a SIGTERM-ignoring program in the session: {took:.1f}s")
    assert 10 <= took < 45, f"the restart took {took:.1f}s: the stop timeout is not 15 s"
    machine.fail(f"kill -0 {pid}")
    machine.succeed("rm /tmp/stubborn.pid")
    machine.wait_for_unit(unit, timeout=120)
    machine.wait_for_open_port(5900 + n, timeout=120)
    machine.screenshot(5900 + n, USERS["admin"][0], "after-restart.png")
