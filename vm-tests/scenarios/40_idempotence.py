"""Scenario 4, idempotence and removal: `sudo edge-setup vnc` again changes nothing;
`vnc-user` again changes the password and keeps the display; `vnc-user --remove` stops
the session and frees the display. Runs after 10_vnc."""

from vmtest.edge import USERS, display_of, vnc_dir, vnc_user_as, wait_for_desktop
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: files, packages and sessions: the release's systemd in a container is the same.
KINDS = ("container",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

WATCHED = ("/etc/tigervnc/vncserver.users /etc/sudoers.d/edge-setup-vnc /etc/hosts "
           "/etc/group /usr/share/xsessions/edge-setup.desktop /usr/libexec/edge-setup/session "
           "/usr/share/edge-setup/fluxbox/* /var/lib/edge-setup/vnc-installed.json")


def test(machine):
    sums = machine.succeed(f"sha256sum {WATCHED}")
    packages = machine.succeed("dpkg-query -W -f '${Package} ${Version} ${Status}\\n' | sort")
    out = machine.succeed("edge-setup vnc 2>&1", timeout=900)
    assert "Nothing to change" in out, f"a second `edge-setup vnc` did something:\n{out}"
    assert machine.succeed(f"sha256sum {WATCHED}") == sums, "a second `edge-setup vnc` changed files"
    assert machine.succeed("dpkg-query -W -f '${Package} ${Version} ${Status}\\n' | sort") == packages

    # A new password for admin: same display, the session restarted (Xtigervnc reads the
    # password only at start), the old password refused, the new one works.
    old, _ = USERS["admin"]
    new = "n3wpass1"
    out = vnc_user_as(machine, "admin", new, "")
    assert "5901" in out, f"vnc-user again did not keep port 5901:\n{out}"
    assert "Restarting tigervncserver@:1.service" in out, f"the session was not restarted:\n{out}"
    assert display_of(machine, "admin") == 1
    machine.wait_for_open_port(5901)
    wait_for_desktop(machine, 5901, new, "admin-new-password.png")
    status, output = machine.vncdo(5901, old, "capture", str(machine.out_dir / "refused.png"))
    assert status == 3, f"admin's old password still opens :1 (exit {status}):\n{output}"
    # The same password again restarts nothing.
    out = vnc_user_as(machine, "admin", new, "")
    assert "Restarting" not in out, f"an unchanged password restarted the session:\n{out}"
    # Back to the first password for the scenarios that follow.
    vnc_user_as(machine, "admin", *USERS["admin"])
    assert display_of(machine, "admin") == 1
    machine.wait_for_open_port(5901)
    wait_for_desktop(machine, 5901, old, "admin-first-password-again.png")
    # Each restart stopped the session cleanly: no process outlived systemd's SIGTERM
    # (fluxbox did, until the session script killed it itself).
    journal = machine.succeed("journalctl -b -u 'tigervncserver@*' --no-pager")
    assert "timed out" not in journal, f"a session did not stop on SIGTERM:\n{journal}"

    # operator gives VNC up: the session stops, the display and the port are free.
    out = machine.succeed("runuser -u operator -- edge-setup vnc-user --remove 2>&1", timeout=300)
    machine.wait_for_closed_port(5902, timeout=60)
    machine.fail("grep -q operator /etc/tigervnc/vncserver.users")
    machine.fail("systemctl is-active tigervncserver@:2.service")
    machine.fail("systemctl is-enabled tigervncserver@:2.service")
    machine.fail(f"test -e {vnc_dir(machine, 'operator')}/passwd")
    # admin is untouched.
    machine.succeed("systemctl is-active tigervncserver@:1.service")
