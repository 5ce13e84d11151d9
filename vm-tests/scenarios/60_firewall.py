"""Scenario 5, the firewall: with vnc.listen = lan and firewalld installed and running,
`edge-setup vnc` opens firewalld's vnc-server service (5900-5903) and the ports above 5903
up to the highest display; `--uninstall` closes them (and removes what it installed).
Runs last on the shared machine, since --uninstall removes the packages."""

from vmtest.edge import USERS, display_of, vnc_user_as

# Where it runs: firewalld's rules in the container's own network namespace, crossed by the client from its LAN.
KINDS = ("container",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)


def test(machine):
    machine.succeed("DEBIAN_FRONTEND=noninteractive apt-get install -y firewalld", timeout=900)
    machine.succeed("systemctl enable --now firewalld")
    machine.wait_for_unit("firewalld.service", timeout=180)
    # operator back on display 2 (40_idempotence removed it; in a VM 50_wizard enabled it again),
    # then displays 3 and 4 for two more users, so that a port above 5903 is needed.
    if "operator" not in machine.succeed("cat /etc/tigervnc/vncserver.users"):
        vnc_user_as(machine, "operator", *USERS["operator"])
    assert display_of(machine, "operator") == 2
    for n, user in ((3, "viewer3"), (4, "viewer4")):
        machine.succeed(f"useradd -m -s /bin/bash {user}")
        machine.succeed(f"printf 'pass{n}wd\\n\\n' | edge-setup vnc-user --user {user} --password-stdin 2>&1",
                        timeout=300)
        machine.succeed(f"grep -qx ':{n}={user}' /etc/tigervnc/vncserver.users")

    machine.succeed("edge-setup vnc 2>&1", timeout=900)
    services = machine.succeed("firewall-cmd --list-services").split()
    ports = machine.succeed("firewall-cmd --list-ports").split()
    assert "vnc-server" in services, services
    assert "5904-5904/tcp" in ports or "5904/tcp" in ports, ports
    perm = machine.succeed("firewall-cmd --permanent --list-all")
    assert "vnc-server" in perm and "5904" in perm, perm
    # Through the firewall, the client still gets in (the forward reaches the guest's NIC).
    machine.wait_for_open_port(5904, timeout=120)
    status, out = machine.vncdo(5904, "pass4wd", "capture", str(machine.out_dir / "viewer4.png"))
    assert status == 0, f"display 4 not reachable through firewalld (exit {status}):\n{out}"
    status, out = machine.vncdo(5901, USERS["admin"][0], "capture", str(machine.out_dir / "admin.png"))
    assert status == 0, f"display 1 not reachable through firewalld (exit {status}):\n{out}"

    machine.succeed("edge-setup vnc --uninstall 2>&1", timeout=1800)
    services = machine.succeed("firewall-cmd --list-services").split()
    perm = machine.succeed("firewall-cmd --permanent --list-all")
    assert "vnc-server" not in services and "vnc-server" not in perm, perm
    assert "5904" not in machine.succeed("firewall-cmd --list-ports") and "5904" not in perm, perm
    machine.fail("test -e /etc/sudoers.d/edge-setup-vnc")
    machine.fail("dpkg-query -W -f '${Status}' tigervnc-standalone-server | grep -q 'ok installed'")
    machine.succeed("dpkg-query -W -f '${Status}' firewalld | grep -q 'ok installed'")
