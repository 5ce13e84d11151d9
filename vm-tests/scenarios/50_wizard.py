"""Scenario 6, the wizard from an answers file: a static address on the guest's NIC
(systemd-networkd, the address QEMU's DHCP gave, so the guest stays reachable), the agent's
URL, the device ID, VNC (listen = lan), a configuration key (the sessions' geometry) and a
VNC user; `ip addr`, the files and the session's screen size show it, and a second run
changes nothing and says so. Runs after 10_vnc (operator enabled)."""

from vmtest.edge import png_size

# Where it runs: edge-setup picks the NIC by its backing device (/sys/class/net/*/device), which a container's veth lacks.
KINDS = ("vm",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

ANSWERS = """\
[config]
vnc.geometry = "1024x768"

[network]
ip = "10.0.2.15"
netmask = "255.255.255.0"
gateway = "10.0.2.2"
dns = "10.0.2.3"

[device-id]
id = "edge-vmtest-01"

[agent]
url = "mytenant.cumulocity.com"

[vnc]
install = true
listen = "lan"

[[vnc-user]]
user = "operator"
password-file = "/root/operator.vncpass"
"""

FILES = ("/etc/systemd/network/10-edge-setup-*.network /etc/resolv.conf "
         "/usr/edge/properties/edge-agent/device-id "
         "/usr/edge/properties/edge-agent/remote-connectivity.properties "
         "/etc/edge-setup/edge-setup.toml /etc/tigervnc/vncserver.users ~operator/.vnc/passwd")


def test(machine):
    machine.succeed(f"cat > /root/appliance.toml <<'EOF'\n{ANSWERS}EOF")
    machine.succeed("umask 077; printf 'opsecr34\\nopview56\\n' > /root/operator.vncpass")
    first = machine.succeed("edge-setup setup --answers /root/appliance.toml 2>&1", timeout=900)

    iface = machine.succeed("ip -4 -o route show default | awk '{print $5}'").strip()
    addr = machine.succeed(f"ip -4 -o addr show dev {iface}")
    assert "10.0.2.15/24" in addr, addr
    net = machine.succeed(f"cat /etc/systemd/network/10-edge-setup-{iface}.network")
    for want in ("Address=10.0.2.15/24", "Gateway=10.0.2.2", "DNS=10.0.2.3"):
        assert want in net, f"{want} not in the networkd file:\n{net}"
    assert "DHCP=yes" not in net and "DHCP=ipv4" not in net, net
    machine.succeed("ip -4 route show default | grep -q 'via 10.0.2.2'")
    assert machine.succeed("cat /usr/edge/properties/edge-agent/device-id").strip() == "edge-vmtest-01"
    props = machine.succeed("cat /usr/edge/properties/edge-agent/remote-connectivity.properties")
    assert "enabled=true" in props and "url=https://mytenant.cumulocity.com" in props, props
    assert machine.succeed("edge-setup config get c8y.url").strip() == "https://mytenant.cumulocity.com"
    assert machine.succeed("edge-setup config get vnc.listen").strip() == "lan"
    assert machine.succeed("edge-setup device-id 2>/dev/null").strip() == "edge-vmtest-01"
    machine.wait_for_unit("tigervncserver@:2.service", timeout=180)
    machine.wait_for_open_port(5902, timeout=120)
    status, _ = machine.vncdo(5902, "opsecr34", "capture", str(machine.out_dir / "operator.png"))
    assert status == 0, "operator's session from the answers file does not accept its password"
    # [config] was applied before [[vnc-user]], whose session took the geometry
    assert machine.succeed("edge-setup config get vnc.geometry").strip() == "1024x768"
    size = png_size(machine.out_dir / "operator.png")
    assert size == (1024, 768), f"operator's screen is {size}, not the [config] table's 1024x768"

    sums = machine.succeed(f"sha256sum {FILES}")
    second = machine.succeed("edge-setup setup --answers /root/appliance.toml 2>&1", timeout=900)
    (machine.out_dir / "first-run.txt").write_text(first)
    (machine.out_dir / "second-run.txt").write_text(second)
    assert machine.succeed(f"sha256sum {FILES}") == sums, "the second run changed files"
    for said in ("already configured this way; nothing changed",
                 "nothing changed, so",
                 "Nothing to change"):
        assert said in second, f"the second run does not say {said!r}:\n{second}"
    machine.succeed("ip -4 -o addr show | grep -q 10.0.2.15/24")
