"""Scenario 1, fresh appliance to working VNC: `sudo edge-setup vnc` installs the real
packages (vnc.listen = lan, so Xvnc listens on the guest's NIC, where QEMU's user-net
forwards arrive); admin and operator each run `edge-setup vnc-user --password-stdin` as
themselves and get displays 1 and 2; a real VNC client (vncdotool) on the host logs in to
each through a forwarded port and captures a desktop that is not blank; a wrong password is
refused and the view-only password connects."""

from vmtest.edge import (USERS, assert_not_blank, display_of, install_package, vnc_dir, vnc_user_as,
                         wait_for_desktop)
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: in a container for the proof; in a VM as the release's whole-appliance smoke (its own kernel, a real boot).
KINDS = ("container", "vm")


def test(machine):
    install_package(machine)
    machine.succeed("dpkg-query -W -f '${Status}' edge-setup | grep -qx 'install ok installed'")
    machine.succeed("test -x /usr/bin/edge-setup && test ! -e /usr/local/bin/edge-setup")
    machine.succeed("edge-setup --version | grep -q '(commit '")
    for user in USERS:
        # Debian has a system group named operator: the user then gets the default group.
        machine.succeed(f"useradd -m -s /bin/bash $(getent group {user} >/dev/null && echo -N) {user}")
    machine.succeed("edge-setup config set vnc.listen lan")

    out = machine.succeed("edge-setup vnc 2>&1", timeout=1800)
    # bullseye's TigerVNC 1.11 has tigervncpasswd in tigervnc-common, no tigervnc-tools
    tools = () if machine.distro == "bullseye" else ("tigervnc-tools",)
    for pkg in ("tigervnc-standalone-server", "tigervnc-common", *tools, "fluxbox", "xterm",
                "firefox-esr", "xfonts-base", "x11-utils", "dbus-x11"):
        machine.succeed(f"dpkg-query -W -f '${{Status}}' {pkg} | grep -qx 'install ok installed'")
    machine.succeed("getent group vncusers && getent hosts appliance")
    machine.succeed("visudo -c -f /etc/sudoers.d/edge-setup-vnc")
    # the package's binary, the only one installed
    machine.succeed("grep -q 'NOPASSWD: /usr/bin/edge-setup vnc-user' /etc/sudoers.d/edge-setup-vnc")
    machine.fail("grep -q /usr/local/bin /etc/sudoers.d/edge-setup-vnc")
    assert "vnc-user" in out, f"edge-setup vnc does not say what users do next:\n{out}"

    machine.succeed("usermod -aG vncusers admin && usermod -aG vncusers operator")
    for n, (user, (password, view_only)) in enumerate(USERS.items(), start=1):
        out = vnc_user_as(machine, user, password, view_only)
        assert f"590{n}" in out, f"vnc-user for {user} does not print port 590{n}:\n{out}"
        assert display_of(machine, user) == n
        machine.succeed(f"test \"$(stat -c '%U %a' {vnc_dir(machine, user)}/passwd)\" = '{user} 600'")
        machine.wait_for_unit(f"tigervncserver@:{n}.service", timeout=180)
        machine.wait_for_open_port(5900 + n, timeout=120)
    # Reachable from outside the guest: listening on the NIC, not only on loopback.
    machine.succeed("ss -Htln 'sport = :5901' | grep -v '127.0.0.1' | grep -q .")

    for n, (user, (password, view_only)) in enumerate(USERS.items(), start=1):
        port = 5900 + n
        machine.wait_until_succeeds(f"pgrep -u {user} -x fluxbox", timeout=180)
        wait_for_desktop(machine, port, password, f"{user}-desktop.png")
        shot = machine.screenshot(port, view_only, f"{user}-view-only.png")
        assert_not_blank(shot)
    # One wrong password only: TigerVNC blocks the address after 5.
    status, output = machine.vncdo(5901, "wrongpw1", "capture", str(machine.out_dir / "refused.png"))
    assert status == 3, f"a wrong password was not refused (vncdo exit {status}):\n{output}"
    # operator's password does not open admin's display.
    status, output = machine.vncdo(5901, USERS["operator"][0], "capture", str(machine.out_dir / "refused.png"))
    assert status == 3, f"operator's password opened admin's display (exit {status}):\n{output}"
