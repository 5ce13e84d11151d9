"""Scenario 3, persistence: after a reboot both sessions come back by themselves on the
same displays and ports, and the same passwords open them. Runs after 10_vnc."""

from vmtest.edge import USERS, assert_not_blank, display_of, vnc_dir, wait_for_desktop
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: a reboot needs a kernel and a boot of its own.
KINDS = ("vm",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

def test(machine):
    files = " ".join(["/etc/tigervnc/vncserver.users"] + [f"{vnc_dir(machine, u)}/passwd" for u in USERS])
    displays = {user: display_of(machine, user) for user in USERS}
    assert displays == {"admin": 1, "operator": 2}, displays
    sums = machine.succeed(f"sha256sum {files}")
    machine.reboot()
    assert {user: display_of(machine, user) for user in USERS} == displays
    assert machine.succeed(f"sha256sum {files}") == sums, "the VNC files changed across the reboot"
    for user, n in displays.items():
        machine.wait_for_unit(f"tigervncserver@:{n}.service", timeout=300)
        machine.wait_for_open_port(5900 + n, timeout=120)
        machine.succeed(f"systemctl is-enabled tigervncserver@:{n}.service")
    for user, n in displays.items():
        password, view_only = USERS[user]
        wait_for_desktop(machine, 5900 + n, password, f"{user}-after-reboot.png")
        assert_not_blank(machine.screenshot(5900 + n, view_only, f"{user}-view-only-after-reboot.png"))
