"""Upgrades (issue 15): an appliance set up before the packages existed (edge-setup copied
to /usr/local/bin, its sudoers rule naming that path) gets an earlier package, then this
one. At each step the users' sessions keep their passwords and `vnc-user` keeps working
for ordinary users: the packages' postinst refreshes the rule through `edge-setup vnc
refresh-sudoers`, keeping the copy while it is installed (PATH finds it first). Removing
the package leaves the sessions and the mappings; purging it drops only the rule, once no
binary it names is left.

A container of its own starts from the image: the package, `edge-setup vnc`, admin and
operator enabled, as 10_vnc leaves its machine (at native speed, so no snapshot of another
scenario's machine is worth it); then the package is purged, which leaves an appliance as
the scripts set it up, and `edge-setup vnc` through the copy has nothing to download."""

import re
import shutil
import subprocess
from pathlib import Path

from vmtest import edge_setup_binary, edge_setup_deb
from vmtest.edge import USERS, display_of, install_package, vnc_user_as, wait_for_desktop

# Where it runs: the package's maintainer scripts and the sudoers rule.
KINDS = ("container",)

MACHINE = "upgrade"
RULE = "/etc/sudoers.d/edge-setup-vnc"


def earlier_package(deb: Path, out: Path) -> Path:
    """The package under test repacked as version 0.0.1-1: a release to upgrade from."""
    work = out / "earlier"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-R", str(deb), str(work)], check=True)
    control = work / "DEBIAN" / "control"
    control.write_text(re.sub(r"(?m)^Version: .*$", "Version: 0.0.1-1", control.read_text()))
    earlier = out / "edge-setup_0.0.1-1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(work), str(earlier)],
                   check=True, capture_output=True)
    shutil.rmtree(work)
    return earlier


def rule_names(machine) -> list[str]:
    machine.succeed(f"visudo -c -f {RULE}")
    text = machine.succeed(f"cat {RULE}")
    return re.findall(r"(?m)^Defaults!(\S+) ", text)


def sessions_accept_passwords(machine, tag: str, passwords: dict[str, str]) -> None:
    for user, password in passwords.items():
        n = display_of(machine, user)
        machine.wait_for_unit(f"tigervncserver@:{n}.service", timeout=180)
        machine.wait_for_open_port(5900 + n, timeout=120)
        machine.screenshot(5900 + n, password, f"{user}-{tag}.png")


def test(machine):
    deb = edge_setup_deb()
    earlier = earlier_package(deb, machine.out_dir)

    # An appliance set up with the package: VNC, admin and operator enabled through it.
    install_package(machine)
    for user in USERS:
        machine.succeed(f"useradd -m -s /bin/bash $(getent group {user} >/dev/null && echo -N) {user}")
    machine.succeed("edge-setup config set vnc.listen lan")
    machine.succeed("edge-setup vnc 2>&1", timeout=1800)
    machine.succeed("usermod -aG vncusers admin && usermod -aG vncusers operator")
    for user, (password, view_only) in USERS.items():
        vnc_user_as(machine, user, password, view_only)

    # Before the packages: a copied binary, `edge-setup vnc`, admin enabled through it.
    machine.succeed("DEBIAN_FRONTEND=noninteractive apt-get purge -y edge-setup 2>&1 && test ! -e " + RULE,
                    timeout=600)
    machine.copy_in(edge_setup_binary(), "/usr/local/bin/edge-setup", mode="0755")
    for user in USERS:
        machine.succeed(f"getent passwd {user} || "
                        f"useradd -m -s /bin/bash $(getent group {user} >/dev/null && echo -N) {user}")
    machine.succeed("edge-setup config set vnc.listen lan")
    machine.succeed("edge-setup vnc 2>&1", timeout=1800)
    machine.succeed("usermod -aG vncusers admin && usermod -aG vncusers operator")
    assert rule_names(machine) == ["/usr/local/bin/edge-setup"]
    admin_pw, _ = USERS["admin"]
    vnc_user_as(machine, "admin", admin_pw)
    sessions_accept_passwords(machine, "copied", {"admin": admin_pw})

    # The earlier package: its postinst keeps the copy in the rule (PATH still finds it first).
    out = install_package(machine, earlier)
    (machine.out_dir / "install-earlier.txt").write_text(out)
    assert "Refreshing the sudoers rule" in out, f"the postinst did not refresh the rule:\n{out}"
    assert rule_names(machine) == ["/usr/bin/edge-setup", "/usr/local/bin/edge-setup"]
    op_pw, _ = USERS["operator"]
    vnc_user_as(machine, "operator", op_pw)   # through the copy in /usr/local/bin
    machine.succeed(f"runuser -u admin -- sh -c \"printf '%s\\n' {admin_pw} | "
                    "/usr/bin/edge-setup vnc-user --password-stdin\" 2>&1", timeout=600)
    assert (display_of(machine, "admin"), display_of(machine, "operator")) == (1, 2)
    sessions_accept_passwords(machine, "earlier", {"admin": admin_pw, "operator": op_pw})

    # The operator removes the copy; this package upgrades the earlier one.
    machine.succeed("rm /usr/local/bin/edge-setup")
    out = install_package(machine, deb)
    (machine.out_dir / "upgrade.txt").write_text(out)
    version = machine.succeed("dpkg-query -W -f '${Version}' edge-setup").strip()
    assert not version.startswith("0.0.1"), f"the upgrade left version {version}"
    assert rule_names(machine) == ["/usr/bin/edge-setup"], "the removed copy is still in the rule"
    sessions_accept_passwords(machine, "upgraded", {"admin": admin_pw, "operator": op_pw})
    # An ordinary user changes their password: the running session takes the new one.
    new_pw = "upgr4ded"
    vnc_user_as(machine, "admin", new_pw)
    machine.wait_for_unit("tigervncserver@:1.service", timeout=180)
    machine.wait_for_open_port(5901, timeout=120)
    wait_for_desktop(machine, 5901, new_pw, "admin-new-password.png")
    status, output = machine.vncdo(5901, admin_pw, "capture", str(machine.out_dir / "refused.png"))
    assert status == 3, f"the old password still opens admin's display (exit {status}):\n{output}"

    # Removing the package leaves sessions, mappings and the rule; purging drops the rule only.
    mappings = machine.succeed("sha256sum /opt/c8y/utilities/vnc-display-mapping /etc/tigervnc/vncserver.users")
    machine.succeed("DEBIAN_FRONTEND=noninteractive apt-get remove -y edge-setup 2>&1", timeout=600)
    machine.succeed("test ! -e /usr/bin/edge-setup && test -e " + RULE)
    machine.succeed("DEBIAN_FRONTEND=noninteractive apt-get purge -y edge-setup 2>&1", timeout=600)
    machine.succeed("test ! -e " + RULE)
    assert machine.succeed("sha256sum /opt/c8y/utilities/vnc-display-mapping "
                           "/etc/tigervnc/vncserver.users") == mappings
    machine.succeed("test -s ~admin/.vnc/passwd && test -s ~operator/.vnc/passwd")
    sessions_accept_passwords(machine, "purged", {"admin": new_pw, "operator": op_pw})
