"""A fleet on Ansible (issue 18): two appliances cloned from a golden image (the package,
`edge-setup vnc`, admin enabled, `image prepare`; their first boot without cloud-init data:
the SSH host keys and the device ID made by edge-setup itself), reached over SSH through loopback forwards with a key the harness
makes, one inventory. The role edge_setup.fleet.appliance installs the package (removed
from the clones first) and, through the module edge_setup, enables VNC for admin with a
password and an agent URL of each host's own. A real VNC client logs in to each with that
host's password and is refused with the other's; a second run reports changed=0 for both;
a third run with one host's password too short fails that host only, completes the
other, and leaves the failed host's files as they were. Both clones run at once.

Then (issue 19) `remote-access ssh --user admin` on fleet1 against a tenant on the host's
loopback (reached through a reverse SSH forward): the host's ssh client logs in as admin with
the private key the endpoint request carried, verifying the host key it named (a wrong one is
refused), and a second run changes nothing."""

import json
import subprocess

from vmtest import edge_setup_deb
from vmtest.ansible import Ansible
from vmtest.edge import reference_machine
from vmtest.tenant import PASSWORD, USER, Tenant

# Where it runs: SSH, Ansible, sessions and the tenant need no kernel of their own, and a
# container's clone starts from the golden container's files as a VM's from its disk (95_first_boot
# proves the clones' boot from a seed disk in VMs).
KINDS = ("container",)
MACHINE = "fleet"
DISTROS = ("bookworm",)

HOSTS = {"fleet1": ("fl33tOne", "https://one.example.com"),
         "fleet2": ("fl33tTwo", "https://two.example.com")}
# What a failed run must leave as it was.
FILES = ("/usr/edge/properties/edge-agent/remote-connectivity.properties",
         "/opt/c8y/utilities/vnc-display-mapping", "/home/admin/.vnc/passwd",
         "/usr/edge/properties/edge-agent/device-id")

PLAYBOOK = """\
- name: Set up the appliances
  hosts: appliances
  gather_facts: false
  roles:
    - role: edge_setup.fleet.appliance
"""


def inventory(passwords: dict[str, str], ports: dict[str, int], key, deb) -> str:
    hosts = {}
    for name, (_, url) in HOSTS.items():
        hosts[name] = {
            "ansible_host": "127.0.0.1",
            "ansible_port": ports[name],
            # the guests have no name server: the agent's DNS check is waived
            "edge_setup_answers": {"agent": {"url": url, "force": True},
                                   "vnc": {"install": True, "listen": "lan"}},
            "edge_setup_vnc_users": [{"user": "admin", "password": passwords[name]}],
        }
    return json.dumps({"appliances": {"hosts": hosts, "vars": {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
        "edge_setup_package": str(deb),
    }}}, indent=2)


def checksums(clone) -> str:
    return clone.succeed(f"sha256sum {' '.join(FILES)}")


def test(machine):
    # the golden image
    reference_machine(machine)
    machine.succeed("edge-setup image prepare --ssh-host-keys --vnc-passwords 2>&1")
    machine.shutdown()
    out = machine.out_dir
    key = out / "id_ed25519"
    key.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vm-tests", "-f", str(key)],
                   check=True)
    ansible = Ansible(out)

    clones = {name: machine.clone(name) for name in HOSTS}
    ssh_ports = {name: c.forward(22) for name, c in clones.items()}
    vnc_ports = {name: c.forward(5901) for name, c in clones.items()}
    for c in clones.values():
        c.start()
    for name, c in clones.items():
        # The first boot without cloud-init: host keys by edge-setup, then sshd restarted.
        c.wait_for_unit("edge-setup-firstboot.service", timeout=900)
        c.wait_for_unit("ssh.service", timeout=120)
        c.succeed("ls /etc/ssh/ssh_host_ed25519_key && edge-setup device-id")
        c.succeed("install -d -m 0700 /root/.ssh")
        c.copy_in(key.with_suffix(".pub"), "/root/.ssh/authorized_keys", mode="0600")
        # the role installs it
        c.succeed("DEBIAN_FRONTEND=noninteractive apt-get remove -y edge-setup 2>&1", timeout=600)
    ids = {name: c.succeed("cat /usr/edge/properties/edge-agent/device-id") for name, c in clones.items()}
    assert ids["fleet1"] != ids["fleet2"], ids

    passwords = {name: pw for name, (pw, _) in HOSTS.items()}
    inv = out / "inventory.json"
    inv.write_text(inventory(passwords, ssh_ports, key, edge_setup_deb()))
    site = out / "site.yml"
    site.write_text(PLAYBOOK)

    def run(tag: str, *args: str) -> tuple[int, dict]:
        code, output, recap = ansible.playbook(inv, site, *args)
        (out / f"ansible-{tag}.txt").write_text(output)
        machine.log(f"  96_fleet ansible-playbook ({tag}): exit {code}, {recap}")
        return code, recap

    code, recap = run("first")
    assert code == 0 and all(recap[h]["changed"] > 0 and recap[h]["failed"] == 0 for h in HOSTS), recap
    for name, c in clones.items():
        c.succeed("test -x /usr/bin/edge-setup")
        url = HOSTS[name][1]
        c.succeed(f"grep -qx 'url={url}' /usr/edge/properties/edge-agent/remote-connectivity.properties")
        c.wait_for_unit("tigervncserver@:1.service", timeout=300)
        c.wait_for_open_port(5901, timeout=180)
        c.screenshot(5901, passwords[name], f"{name}.png")
        other = next(pw for h, pw in passwords.items() if h != name)
        status, output = c.vncdo(5901, other, "capture", str(out / f"{name}-refused.png"))
        assert status == 3, f"{name}: the other host's password opened its session (exit {status}):\n{output}"

    code, recap = run("second")
    assert code == 0 and all(recap[h]["changed"] == 0 and recap[h]["failed"] == 0 for h in HOSTS), recap

    before = {name: checksums(c) for name, c in clones.items()}
    broken = dict(passwords, fleet2="fl33")     # 4 characters: refused
    inv.write_text(inventory(broken, ssh_ports, key, edge_setup_deb()))
    code, recap = run("broken")
    assert code != 0, recap
    assert recap["fleet2"]["failed"] == 1 and recap["fleet1"]["failed"] == 0, recap
    assert recap["fleet1"]["changed"] == 0, recap
    assert checksums(clones["fleet2"]) == before["fleet2"], "the failed host's files changed"
    assert "at least 6" in (out / "ansible-broken.txt").read_text()

    ssh_endpoint(clones["fleet1"], ssh_ports["fleet1"], ids["fleet1"].strip(), key, out)


def ssh_endpoint(c, ssh_port: int, device_id: str, key, out) -> None:
    tenant = Tenant(out, {device_id: "5150"})
    guest_port = 18443
    forward = subprocess.Popen(
        ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", str(key), "-p", str(ssh_port),
         "-R", f"{guest_port}:127.0.0.1:{tenant.port}", "root@127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c.copy_in(tenant.ca, "/etc/edge-setup/tenant-ca.pem", mode="0644")
        c.succeed(f"edge-setup config set c8y.url https://localhost:{guest_port} 2>&1 && "
                  "edge-setup config set c8y.ca-file /etc/edge-setup/tenant-ca.pem 2>&1")
        c.wait_until_succeeds(f"bash -c 'echo > /dev/tcp/127.0.0.1/{guest_port}'", timeout=60)
        run = (f"printf '%s\\n' '{USER}' '{PASSWORD}' | "
               "edge-setup remote-access ssh --user admin --credentials-stdin 2>&1")
        said = c.succeed(run, timeout=300)
        assert PASSWORD not in said and "PRIVATE KEY" not in said, said
        assert tenant.changes() == ["POST /service/remoteaccess/devices/5150/configurations"], tenant.changes()
        assert not tenant.violations, tenant.violations
        body = next(b for m, _, b in tenant.log if m == "POST")
        assert body["username"] == "admin" and body["port"] == 22 and body["hostname"] == "127.0.0.1", body
        guest_key = c.succeed("cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").strip()
        assert body["hostKey"] == guest_key, (body["hostKey"], guest_key)
        c.succeed("! grep -rl 'PRIVATE KEY' /etc/edge-setup /var/lib/edge-setup /home/admin /tmp")

        private = out / "endpoint-key"
        private.unlink(missing_ok=True)
        private.touch(mode=0o600)
        private.write_text(body["privateKey"])
        known = out / "endpoint-known-hosts"

        def login(host_key: str) -> subprocess.CompletedProcess:
            known.write_text(f"[127.0.0.1]:{ssh_port} {host_key}\n")
            return subprocess.run(
                ["ssh", "-i", str(private), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                 "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                 "-p", str(ssh_port), "admin@127.0.0.1", "id -un"],
                capture_output=True, text=True, timeout=120)

        r = login(body["hostKey"])
        assert r.returncode == 0 and r.stdout.strip() == "admin", r.stderr
        other = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        r = login(other)
        assert r.returncode != 0 and "Host key verification failed" in r.stderr, r.stderr

        again = c.succeed(run, timeout=300)
        assert "unchanged" in again, again
        assert len(tenant.changes()) == 1, tenant.changes()
    finally:
        forward.terminate()
        tenant.close()
