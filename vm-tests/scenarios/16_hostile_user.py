"""A hostile member of vncusers, and another local user, against the privileged part of
`vnc-user` (issue 26), on each release's own sudo, systemd, OpenSSL and TigerVNC: a site's
`env_keep` of `https_proxy` and `SSL_CERT_FILE` hands the privileged part neither her proxy
nor her CA (finding 1); root's `remote-access sync` whose output nobody reads holds the
remote access lock only for its requests (finding 2); lock files and left-over sockets in
/tmp take no display, and a session that cannot start is reported as failed (finding 4).
Runs after 10_vnc on the shared machine and leaves it as it found it."""

import shlex
import time

from vmtest.edge import (CERTS, DEFAULTS, SUDOERS, SYSTEM_PART, USERS, as_10_vnc_left, as_user, blocked_on_pipe,
                         display_of, environ_seen, restore_files, save_files, vnc_user_as)
from vmtest.image import DISTROS  # runs on every release: sudo 1.9.5 to 1.9.16, OpenSSL 1.1.1 and 3

# Where it runs: sudo, systemd units, TLS and /tmp; nothing of a kernel of its own (the
# blocked process's wait is read from the host kernel's wchan, as in a VM from the guest's).
KINDS = ("container",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

# A tenant on the guest's loopback that answers GETs from files: `openssl s_server -HTTP`.
# The device is registered (4711) and has no endpoints; a POST ends the connection
# unanswered (s_server stops on it; the loop starts it again).
TENANT = "/root/sec-tenant"
TENANT_SETUP = "set -e\n" + CERTS + r"""d=/root/sec-tenant
mkdir -p $d/www/identity/externalIds/c8y_Serial $d/www/service/remoteaccess/devices/4711
cd $d
certs 'sec CA'
ok='HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n'
printf "$ok"'{"externalId":"edge-sec-01","type":"c8y_Serial","managedObject":{"id":"4711"}}' \
  >www/identity/externalIds/c8y_Serial/edge-sec-01
printf "$ok"'[]' >www/service/remoteaccess/devices/4711/configurations
printf '#!/bin/sh\ncd %s/www\nwhile :; do openssl s_server -accept 127.0.0.1:8443 -cert ../srv.pem -key ../srv.key -HTTP -quiet; sleep 0.2; done\n' $d >serve
chmod 755 serve
setsid -f ./serve >log 2>&1 </dev/null
"""
def with_tenant(machine, body) -> None:
    """Runs `body` with the static tenant up and edge-setup configured for it (URL, CA,
    a credentials file, a device ID); then puts the configuration back as it was."""
    save_files(machine)
    try:
        machine.succeed(TENANT_SETUP)
        machine.succeed(f"install -m 0644 {TENANT}/ca.pem /etc/edge-setup/sec-tenant-ca.pem && "
                        "install -m 0600 /dev/null /etc/edge-setup/sec-credentials && "
                        "printf 't100/admin\\nVm-Tenant#1\\n' >/etc/edge-setup/sec-credentials")
        for key, value in (("c8y.url", "https://127.0.0.1:8443"), ("c8y.ca-file", "/etc/edge-setup/sec-tenant-ca.pem"),
                           ("c8y.credentials-file", "/etc/edge-setup/sec-credentials"),
                           ("c8y.request-timeout", "5"), ("device.id", "edge-sec-01")):
            machine.succeed(f"edge-setup config set {key} {shlex.quote(value)}")
        machine.wait_for_open_port(8443)
        out = machine.succeed("edge-setup remote-access list 2>&1", timeout=120)
        assert "has no remote access endpoints" in out, out
        body()
    finally:
        # [x]: the pattern does not match the shell that runs pkill
        machine.succeed("pkill -f '[/]root/sec-tenant/serve'; pkill -f '[o]penssl s_server -accept 127.0.0.1:8443'; true")
        restore_files(machine, "/etc/edge-setup/sec-tenant-ca.pem", "/etc/edge-setup/sec-credentials", TENANT)


def test(machine):
    site_env_keep_gives_no_proxy_and_no_ca(machine)
    with_tenant(machine, lambda: remote_access_lock_free_while_blocked(machine))
    fake_x_files(machine)
    unstartable_session_is_a_failure(machine)
    as_10_vnc_left(machine)


HER = "/tmp/her"
# admin's own CA, certificate and "tenant" (s_server -www) on 9443, and her "proxy" on 3128:
# an s_server that ends after its first connection, so whether it still runs tells whether
# anyone connected to it.
HER_SETUP = "set -e\n" + CERTS + r"""mkdir -p /tmp/her && cd /tmp/her
certs 'her CA'
setsid -f openssl s_server -accept 127.0.0.1:9443 -cert srv.pem -key srv.key -www -quiet >tenant.log 2>&1 </dev/null
setsid -f openssl s_server -accept 127.0.0.1:3128 -cert srv.pem -key srv.key -naccept 1 -quiet >proxy.log 2>&1 </dev/null
"""
SITE_ENV = "/etc/sudoers.d/00-site-env"


def site_env_keep_gives_no_proxy_and_no_ca(machine):
    """Issue 26, finding 1: a site keeps `https_proxy SSL_CERT_FILE SSL_CERT_DIR` for sudo;
    admin (in vncusers) sets them to her proxy and her CA, and the tenant's address leads to
    her server (as her proxy would, terminating TLS). With the rule as installed, sudo
    passes none of them; without its `Defaults!` line they reach the privileged part, which
    uses neither: her proxy sees no connection, her CA is not trusted (TLS fails with an
    unknown issuer before any credentials are sent)."""
    machine.succeed(as_user("admin", HER_SETUP))
    machine.wait_for_open_port(9443)
    machine.wait_for_open_port(3128)
    save_files(machine)
    machine.succeed(f"cp -a {SUDOERS} /root/edge-setup-vnc.orig")
    try:
        machine.succeed(f"printf 'Defaults env_keep += \"https_proxy SSL_CERT_FILE SSL_CERT_DIR\"\\n' >{SITE_ENV} && "
                        f"chmod 0440 {SITE_ENV} && visudo -c")
        machine.succeed("install -m 0600 /dev/null /etc/edge-setup/sec-credentials && "
                        "printf 't100/admin\\nVm-Tenant#1\\n' >/etc/edge-setup/sec-credentials")
        for key, value in (("c8y.url", "https://127.0.0.1:9443"), ("c8y.credentials-file", "/etc/edge-setup/sec-credentials"),
                           ("c8y.request-timeout", "5"), ("device.id", "edge-sec-01")):
            machine.succeed(f"edge-setup config set {key} {shlex.quote(value)}")
        hostile = f"env https_proxy=http://127.0.0.1:3128 SSL_CERT_FILE={HER}/ca.pem SSL_CERT_DIR={HER}"
        command = f"{hostile} {SYSTEM_PART}"

        # (a) the rule as installed: sudo passes neither variable
        env = environ_seen(machine, "admin", command)
        leaked = [v for v in env if v.split("=", 1)[0] in ("https_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")]
        assert not leaked, f"the rule's !env_keep did not apply: {leaked}"
        check_her_run(machine, command)

        # (b) without the rule's Defaults! line, the site's env_keep reaches edge-setup
        machine.succeed(f"grep -vxF {shlex.quote(DEFAULTS)} /root/edge-setup-vnc.orig >/root/edge-setup-vnc.bare && "
                        f"install -m 0440 -o root -g root /root/edge-setup-vnc.bare {SUDOERS} && visudo -c")
        env = environ_seen(machine, "admin", command)
        assert f"SSL_CERT_FILE={HER}/ca.pem" in env and "https_proxy=http://127.0.0.1:3128" in env, env
        check_her_run(machine, command)
    finally:
        machine.succeed(f"pkill -u admin -x openssl; rm -rf {HER} {SITE_ENV} /root/edge-setup-vnc.bare; "
                        f"cp -a /root/edge-setup-vnc.orig {SUDOERS} && rm /root/edge-setup-vnc.orig && visudo -c")
        restore_files(machine, "/etc/edge-setup/sec-credentials")


def check_her_run(machine, command: str) -> None:
    out = machine.succeed(f"runuser -u admin -- {command} 2>&1", timeout=300)
    machine.log(f"    her run: {' '.join(out.split())[-300:]}")
    assert "the tenant's endpoint for admin was not updated" in out, out
    assert "UnknownIssuer" in out, f"her CA was trusted, or TLS was not tried:\n{out}"
    assert "t100" not in out, f"the credentials file's user was shown to admin:\n{out}"
    machine.succeed("pgrep -u admin -f 'accept 127.0.0.1:3128'")  # her proxy saw no connection


def remote_access_lock_free_while_blocked(machine):
    """Issue 26, finding 2: root's `remote-access sync` whose output nobody reads holds the
    remote access lock only for its requests: while it is blocked on its output, the lock
    is free and operator's `vnc-user` updates its endpoint at once, then says what is done
    here (nothing: the same password) and what is not (the static tenant drops the POST)."""
    machine.succeed("rm -f /var/lib/edge-setup/remote-access.json")
    script = ("{ head -c 65536 /dev/zero; edge-setup remote-access sync --user admin 2>&1; } | sleep 600")
    machine.succeed(f"setsid -f sh -c {shlex.quote(script)} </dev/null >/dev/null 2>&1")
    pid = machine.wait_until_succeeds("pgrep -x edge-setup", timeout=60).split()[0]
    machine.wait_until_succeeds(blocked_on_pipe(pid), timeout=120)
    # it did its work (the record is saved after the dropped POST) and let go of the lock
    machine.succeed("test -s /var/lib/edge-setup/remote-access.json")
    machine.succeed("flock -n /var/lib/edge-setup/.remote-access.lock true")
    started = time.monotonic()
    out = vnc_user_as(machine, "operator", *USERS["operator"])
    took = time.monotonic() - started
    machine.log(f"    operator's vnc-user while root's sync is blocked: {took:.1f}s")
    assert took < 60, f"operator waited {took:.1f}s: the lock was held"
    # the same password as before: nothing changed here, and the tenant is not up to date
    assert "Done here: nothing changed for operator's VNC session on :2. Not done: the tenant's endpoint" in out, out
    assert "Finish it with: sudo edge-setup remote-access sync --user operator" in out, out
    machine.succeed(blocked_on_pipe(pid))
    machine.succeed(f"kill {pid}; pkill -f '[s]leep 600'; true")
    machine.wait_until_fails(f"test -d /proc/{pid}", timeout=30)
    machine.wait_for_open_port(5902)


LEFT_SOCKETS = ("perl -MIO::Socket::UNIX -e 'for my $n (3..99) { IO::Socket::UNIX->new(Type => SOCK_STREAM(), "
                "Local => \"/tmp/.X11-unix/X$n\", Listen => 1) or die \"X$n: $!\" }'")


def fake_x_files(machine):
    """/tmp/.X3-lock .. /tmp/.X99-lock of mallory (not in vncusers), and sockets she left in
    /tmp/.X11-unix for the same displays: carol still gets :3 (before, the sockets took all
    99 displays), her session starts, and the lock and socket of :3 are gone."""
    machine.succeed("useradd -m -s /bin/bash mallory")
    machine.succeed(as_user("mallory", "for n in $(seq 3 99); do printf '12345678\\n' >/tmp/.X$n-lock; done; "
                                       ": >/tmp/.X0003-lock"))
    machine.succeed("test \"$(find /tmp -maxdepth 1 -name '.X*-lock' -user mallory | wc -l)\" = 98")
    machine.succeed(as_user("mallory", LEFT_SOCKETS), timeout=300)
    machine.succeed("test \"$(find /tmp/.X11-unix -type s -user mallory | wc -l)\" = 97")
    machine.fail("ss -xl | grep -q 'X11-unix/X3 '")  # no process holds them
    machine.succeed("useradd -m -s /bin/bash carol && usermod -aG vncusers carol")
    try:
        out = vnc_user_as(machine, "carol", "carol123", "")
        assert display_of(machine, "carol") == 3, machine.succeed("cat /etc/tigervnc/vncserver.users")
        assert "5903" in out, out
        # Debian's tigervncserver refuses a display whose lock file exists at all, and the
        # X server (as carol) cannot bind a socket path mallory's file holds; carol cannot
        # remove either from the sticky /tmp: the privileged part removes both, as no
        # running X server holds display 3, and the session starts.
        assert "removed /tmp/.X3-lock: no running X server holds display :3" in out, out
        assert "removed /tmp/.X11-unix/X3: no running X server holds display :3" in out, out
        machine.wait_for_unit("tigervncserver@:3.service", timeout=180)
        machine.wait_for_open_port(5903, timeout=120)
        machine.succeed("test -f /tmp/.X4-lock && test \"$(stat -c %U /tmp/.X4-lock)\" = mallory")
        machine.succeed("test -S /tmp/.X11-unix/X4 && test \"$(stat -c %U /tmp/.X11-unix/X4)\" = mallory")
    finally:
        machine.succeed("edge-setup vnc-user --user carol --remove 2>&1", timeout=300)
        machine.succeed("find /tmp -maxdepth 1 -user mallory -delete; find /tmp/.X11-unix -user mallory -delete")
        machine.wait_until_fails("pgrep -u carol", timeout=60)
        machine.succeed("userdel -r carol 2>&1; userdel -r mallory 2>&1; ! id carol && ! id mallory")
    machine.fail("grep -q carol /etc/tigervnc/vncserver.users")
    machine.wait_for_closed_port(5903, timeout=60)


def unstartable_session_is_a_failure(machine):
    """A directory mallory made at /tmp/.X11-unix/X3 (she may, the directory is 1777) keeps
    any X server off display 3: dave's `vnc-user` says his session did not start, names
    the unit's journal, and never "done" or "VNC is enabled"; once it is gone, the same
    command starts the session."""
    machine.succeed("useradd -m -s /bin/bash mallory && useradd -m -s /bin/bash dave && usermod -aG vncusers dave")
    machine.succeed(as_user("mallory", "mkdir /tmp/.X11-unix/X3"))
    inner = "printf '%s\\n%s\\n' dave1234 '' | edge-setup vnc-user --password-stdin"
    try:
        out = machine.fail(f"{as_user('dave', inner)} 2>&1", timeout=300)
        machine.log(f"    dave's run: {' '.join(out.split())[-400:]}")
        assert "/tmp/.X11-unix/X3 is a directory" in out, out
        assert "journalctl -u tigervncserver@:3.service" in out, out
        assert "VNC is enabled" not in out and "tigervncserver@:3.service ... done" not in out, out
        machine.succeed("rmdir /tmp/.X11-unix/X3")
        out = machine.succeed(f"{as_user('dave', inner)} 2>&1", timeout=300)
        assert "5903" in out, out
        machine.wait_for_open_port(5903, timeout=120)
    finally:
        machine.succeed("edge-setup vnc-user --user dave --remove 2>&1; rmdir /tmp/.X11-unix/X3 2>/dev/null; true",
                        timeout=300)
        machine.wait_until_fails("pgrep -u dave", timeout=60)
        machine.succeed("userdel -r dave 2>&1; userdel -r mallory 2>&1; ! id dave && ! id mallory")
    machine.wait_for_closed_port(5903, timeout=60)
