"""`edge-setup check` on an appliance broken in six ways (issue 28), on each release's
systemd, TigerVNC, sudo and OpenSSL: operator's session stopped, admin's password file
made 0644, a stale X lock and socket left for operator's display, the /etc/hosts line
removed, the sudoers rule naming a binary that is gone, and a tenant (on the guest's
loopback) whose clock is two hours behind. `check` names each with its next command and
exits 1; `check --fix --dry-run` plans the fixes and changes nothing; `check --fix`
repairs all but the clock; the second `check` finds only what failed before the breaking
(the clock); admin checks her own
VNC as herself; the local checks' time is printed. Then `diag collect`: the bundle is
root's 0600, holds operator's session journal (its restart by the fix) and none of the
secrets (the VNC passwords, their files' bytes, the tenant credentials). Runs after 10_vnc on
the shared machine and leaves it as it found it."""

import json
import re
import shlex
import tarfile
import time

from vmtest.edge import (CERTS, SUDOERS, USERS, as_10_vnc_left, as_user, restore_files, save_files, vnc_dir)
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: systemd units, TigerVNC sessions, sudo, /tmp and TLS on loopback; nothing of
# a kernel of its own.
KINDS = ("container",)
NEEDS = ("10_vnc",)

# A tenant on the guest's loopback that answers GETs from files (`openssl s_server -HTTP`
# sends each file as the whole response): its Date header is two hours behind the guest's.
TENANT = "/root/check-tenant"
TENANT_SETUP = "set -e\n" + CERTS + r"""d=/root/check-tenant
mkdir -p $d/www/tenant
cd $d
certs 'check CA'
printf 'HTTP/1.0 200 OK\r\nDate: %s\r\nContent-Type: application/json\r\n\r\n{"loginOptions":[]}' \
  "$(date -u -d '-2 hours' '+%a, %d %b %Y %H:%M:%S GMT')" >www/tenant/loginOptions
printf '#!/bin/sh\ncd %s/www\nwhile :; do openssl s_server -accept 127.0.0.1:8444 -cert ../srv.pem -key ../srv.key -HTTP -quiet; sleep 0.2; done\n' $d >serve
chmod 755 serve
setsid -f ./serve >log 2>&1 </dev/null
"""
GONE = "/opt/gone/edge-setup"


def checks(machine, args: str = "", user: str | None = None) -> tuple[int, dict]:
    """`edge-setup check --json ARGS` (as `user`): its exit status and its object."""
    command = f"edge-setup check --json {args}"
    if user:
        command = as_user(user, command)
    status, out = machine.execute(command + " 2>/dev/null", timeout=300)
    return status, json.loads(out)


def entry(result: dict, check_id: str, user: str | None = None) -> dict:
    for c in result["result"]["checks"]:
        if c["id"] == check_id and (user is None or c.get("user") == user):
            return c
    raise AssertionError(f"no check {check_id} {user or ''} in {json.dumps(result, indent=1)}")


def failing(result: dict) -> set[tuple[str, str | None]]:
    return {(c["id"], c.get("user")) for c in result["result"]["checks"] if c["status"] == "fail"}


def test(machine):
    save_files(machine)
    machine.succeed(f"cp -a {SUDOERS} /root/edge-setup-vnc.orig && cp -a /etc/hosts /root/hosts.orig")
    try:
        machine.succeed(TENANT_SETUP)
        machine.succeed(f"install -m 0644 {TENANT}/ca.pem /etc/edge-setup/check-tenant-ca.pem")
        for key, value in (("c8y.url", "https://127.0.0.1:8444"), ("c8y.ca-file", "/etc/edge-setup/check-tenant-ca.pem"),
                           ("c8y.request-timeout", "5"), ("device.id", "edge-check-01")):
            machine.succeed(f"edge-setup config set {key} {shlex.quote(value)}")
        machine.wait_for_open_port(8444)
        broken_and_fixed(machine)
        bundle(machine)
    finally:
        machine.succeed("pkill -f '[/]root/check-tenant/serve'; pkill -f '[o]penssl s_server -accept 127.0.0.1:8444'; true")
        machine.succeed(f"cp -a /root/edge-setup-vnc.orig {SUDOERS} && cp /root/hosts.orig /etc/hosts && "
                        "rm -f /root/edge-setup-vnc.orig /root/hosts.orig")
        restore_files(machine, "/etc/edge-setup/check-tenant-ca.pem", "/etc/edge-setup/check-credentials",
                      "/root/diag.tar.gz", TENANT)
        machine.succeed("systemctl start tigervncserver@:2.service")
    as_10_vnc_left(machine)


def broken_and_fixed(machine):
    # as 10_vnc left it, the VNC checks pass: sessions up, ports, the RFB greeting
    status, before = checks(machine)
    for user in ("admin", "operator"):
        for check_id in ("vnc.password-file", "vnc.stale-files", "vnc.session", "vnc.port", "vnc.rfb"):
            assert entry(before, check_id, user)["status"] == "ok", entry(before, check_id, user)
        assert entry(before, "vnc.rfb", user)["finding"].endswith(("RFB 003.008", "RFB 003.003", "RFB 003.007"))
    for check_id in ("edge-setup.sudoers", "identity.host-name", "vnc.packages", "vnc.desktop", "vnc.mappings",
                     "vnc.firewall", "tenant.tls"):
        assert entry(before, check_id)["status"] == "ok", entry(before, check_id)
    assert ("tenant.clock", None) in failing(before), before
    # what fails already (the clock; a container's machine ID may be one) stays the only failure
    unfixable = failing(before)

    # the local checks of an appliance with two users: well under a second
    took = []
    for _ in range(5):
        started = time.monotonic()
        machine.succeed("edge-setup check --only edge-setup,identity,agent,vnc,certificates,disk >/dev/null 2>&1; true")
        took.append(time.monotonic() - started)
    print(f"  check, local areas, two users: best {min(took) * 1000:.0f} ms of 5 "
          f"(the harness's shell round trip included)")

    # six things break
    passwd = f"{vnc_dir(machine, 'admin')}/passwd"
    machine.succeed("systemctl stop tigervncserver@:2.service")
    machine.wait_for_closed_port(5902, timeout=60)
    machine.succeed(f"chmod 0644 {passwd}")
    machine.succeed("printf '%10d\\n' 999999 >/tmp/.X2-lock && "
                    "perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), "
                    "Local => \"/tmp/.X11-unix/X2\", Listen => 1) or die $!' && test -S /tmp/.X11-unix/X2")
    machine.succeed("sed -i '/[[:space:]]appliance\\([[:space:]]\\|$\\)/d' /etc/hosts && ! grep -qw appliance /etc/hosts")
    machine.succeed(f"sed -i 's#/usr/bin/edge-setup#{GONE}#g' {SUDOERS} && visudo -c -f {SUDOERS}")

    status, broken = checks(machine)
    assert status == 1, broken
    found = failing(broken)
    wanted = {("vnc.session", "operator"), ("vnc.password-file", "admin"), ("vnc.stale-files", "operator"),
              ("identity.host-name", None), ("edge-setup.sudoers", None), ("tenant.clock", None)}
    assert wanted <= found, f"missing {wanted - found}: {json.dumps(broken['result'], indent=1)}"
    nexts = {(c["id"], c.get("user")): c["next"] for c in broken["result"]["checks"]}
    assert "check --fix --only vnc" in nexts[("vnc.session", "operator")]
    assert "mode 0644" in entry(broken, "vnc.password-file", "admin")["finding"]
    assert "/tmp/.X2-lock" in entry(broken, "vnc.stale-files", "operator")["finding"]
    assert "check --fix --only identity" in nexts[("identity.host-name", None)]
    sudoers = entry(broken, "edge-setup.sudoers")
    assert f"{GONE}, which does not exist" in sudoers["finding"], sudoers
    assert "vnc refresh-sudoers" in sudoers["next"], sudoers
    clock = entry(broken, "tenant.clock")
    # two hours, give or take the seconds between writing the tenant's file and the check
    ahead = re.search(r"clock is (\d+) s ahead of the tenant's", clock["finding"])
    assert ahead and abs(int(ahead.group(1)) - 7200) < 120, clock
    assert "timedatectl set-ntp true" in clock["next"], clock
    assert not clock["fixable"]
    # the text report: the same findings, each with its next command under it
    text = machine.fail("edge-setup check 2>&1")
    for line in ("FAIL  vnc.session [operator]", "FAIL  edge-setup.sudoers", "next: sudo edge-setup check --fix"):
        assert line in text, text

    # a dry run plans the fixes and changes nothing
    sums = machine.succeed(f"stat -c '%a %U' {passwd}; cat {SUDOERS} /etc/hosts; ls -a /tmp /tmp/.X11-unix")
    status, planned = checks(machine, "--fix --dry-run")
    assert planned["dry_run"] and planned["changes"], planned
    assert machine.succeed(f"stat -c '%a %U' {passwd}; cat {SUDOERS} /etc/hosts; ls -a /tmp /tmp/.X11-unix") == sums
    machine.fail("systemctl is-active tigervncserver@:2.service")

    # --fix repairs what is edge-setup's to repair; the clock stays a finding
    status, fixed = checks(machine, "--fix")
    assert status == 1 and fixed["changed"], fixed
    assert failing(fixed) == unfixable, json.dumps(fixed["result"], indent=1)
    machine.wait_for_unit("tigervncserver@:2.service", timeout=120)
    machine.wait_for_open_port(5902, timeout=120)
    machine.succeed(f"test \"$(stat -c '%a %U' {passwd})\" = '600 admin'")
    machine.succeed("getent hosts appliance")
    machine.succeed(f"! grep -q {GONE} {SUDOERS} && grep -q 'NOPASSWD: /usr/bin/edge-setup vnc-user' {SUDOERS}")
    machine.succeed("visudo -c -f " + SUDOERS)
    status, again = checks(machine)
    assert failing(again) == unfixable, json.dumps(again["result"], indent=1)
    assert entry(again, "vnc.rfb", "operator")["status"] == "ok"
    status, nothing = checks(machine, "--fix")
    assert not nothing["changed"], nothing

    # an ordinary user checks her own VNC, as herself
    status, own = checks(machine, user="admin")
    assert status == 0, own
    assert {c["area"] for c in own["result"]["checks"]} == {"vnc"}, own
    assert {c.get("user") for c in own["result"]["checks"] if c.get("user")} == {"admin"}, own
    assert entry(own, "vnc.rfb", "admin")["status"] == "ok"


def bundle(machine):
    """`diag collect` after the fix: root's 0600 file; operator's session journal in it; no
    secret of the appliance anywhere in it (read on the host, byte for byte)."""
    # a credentials file as remote-access would use it: its password must not leave either
    machine.succeed("install -m 0600 /dev/null /etc/edge-setup/check-credentials && "
                    "printf 't100/admin\\nCheck-Tenant#7\\n' >/etc/edge-setup/check-credentials && "
                    "edge-setup config set c8y.credentials-file /etc/edge-setup/check-credentials")
    out = machine.succeed("edge-setup diag collect --since 1h --output /root/diag.tar.gz 2>&1", timeout=300)
    machine.succeed("test \"$(stat -c '%a %U' /root/diag.tar.gz)\" = '600 root'")
    size = int(machine.succeed("stat -c %s /root/diag.tar.gz"))
    print(f"  diag collect: {size} bytes")
    host = machine.copy_out("/root/diag.tar.gz", machine.out_dir / "diag.tar.gz")
    files = {}
    with tarfile.open(host) as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    journal = [n for n in files if n.endswith("journal/tigervncserver@:2.service.log")]
    assert journal, f"no journal of operator's session in {sorted(files)}\n{out}"
    assert b"tigervncserver@:2.service" in files[journal[0]] or b"Xtigervnc" in files[journal[0]], files[journal[0]][:2000]
    secrets = [b"Check-Tenant#7"]
    for user, passwords in USERS.items():
        secrets += [p.encode() for p in passwords]
        raw = machine.execute_bytes(f"cat {vnc_dir(machine, user)}/passwd")[1]
        assert len(raw) in (8, 16), raw
        secrets += [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for name, data in files.items():
        for secret in secrets:
            assert secret not in data, f"a secret ({len(secret)} bytes) is in {name}"
