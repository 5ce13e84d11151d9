"""Hardening of the privileged part of `vnc-user` (`--system-part`, through the sudoers
rule): a caller's PATH does not choose the programs it runs, without Debian's secure_path
and without the rule's own `Defaults!` line too; a site's `env_keep` of `https_proxy` and
`SSL_CERT_FILE` hands it neither a proxy nor a CA (issue 26, finding 1); a run whose output
nobody reads does not block another user's run, under the display lock nor under the remote
access lock (finding 2); a FIFO in a user's VNC directory is refused at once; fake
`/tmp/.XN-lock` files and left-over `/tmp/.X11-unix/XN` sockets of a user outside vncusers
do not take displays, and a session that cannot start is reported as failed (finding 4).
Runs after 10_vnc on the shared machine and leaves it as it found it."""

import shlex
import time

from vmtest.edge import USERS, display_of, vnc_dir, vnc_user_as
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: its pipe checks read the release's kernel (wchan, the kernel stack).
KINDS = ("vm",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

EXE = "/usr/bin/edge-setup"
SUDOERS = "/etc/sudoers.d/edge-setup-vnc"
DEFAULTS = f'Defaults!{EXE} env_reset, !env_keep, !env_check, secure_path="/usr/sbin:/usr/bin:/sbin:/bin"'
SYSTEM_PART = f"sudo -n {EXE} vnc-user --system-part"


def as_user(user: str, script: str) -> str:
    return f"runuser -u {user} -- sh -c {shlex.quote(script)}"


def no_pwned(machine) -> None:
    machine.succeed("! ls -l /tmp/pwned-* 2>/dev/null")


def blocked_on_pipe(pid: str) -> str:
    """Succeeds while the process waits in pipe_write: wchan names it from Linux 5.16;
    Debian 11's 5.10 says 0 there (found on the bullseye guest), its kernel stack names it."""
    return f"grep -q pipe_write /proc/{pid}/wchan /proc/{pid}/stack"


def start_blocked(machine, user: str, command: str) -> tuple[str, str]:
    """Runs `command` (a sudo of the privileged part) as `user` in the background with its
    output into a pipe that is already full and that nobody reads; returns the pids of
    edge-setup, blocked on its first write, and of its sudo. setsid: no controlling
    terminal, so sudo runs it without a pty (Debian's use_pty) and it writes straight into
    the pipe."""
    script = f"{{ head -c 65536 /dev/zero; {command} 2>&1; }} | sleep 600"
    machine.succeed(f"setsid -f {as_user(user, script)} </dev/null >/dev/null 2>&1")
    pid = machine.wait_until_succeeds("pgrep -x edge-setup", timeout=60).split()[0]
    machine.wait_until_succeeds(blocked_on_pipe(pid), timeout=60)
    time.sleep(2)
    state = machine.succeed(f"ps -o stat=,args= -p {pid}")
    machine.log(f"    blocked run: {' '.join(state.split())}")
    machine.succeed(blocked_on_pipe(pid))
    sudo = machine.succeed(f"ps -o ppid= -p {pid}").strip()
    assert machine.succeed(f"ps -o comm= -p {sudo}").strip() == "sudo"
    return pid, sudo


def end_blocked(machine, user: str, pid: str, sudo: str) -> None:
    # By pid: `pkill -f` would also match the guest's `timeout ... bash -c` of the step.
    # The reader goes last: on a closed pipe edge-setup would get EPIPE and carry on.
    machine.succeed(f"kill {pid} {sudo}")
    machine.wait_until_fails(f"test -d /proc/{pid} || test -d /proc/{sudo}", timeout=30)
    machine.succeed(f"pkill -u {user} -x sleep")


def environ_seen(machine, command: str) -> list[str]:
    """The environment the privileged part gets from sudo: read while it is blocked
    (before it runs anything), then ended."""
    pid, sudo = start_blocked(machine, "admin", command)
    env = machine.succeed(f"tr '\\0' '\\n' </proc/{pid}/environ").splitlines()
    end_blocked(machine, "admin", pid, sudo)
    return env


def path_seen(machine, command: str) -> str:
    """The PATH the privileged part gets from sudo."""
    return next(v for v in environ_seen(machine, command) if v.startswith("PATH="))


# A tenant on the guest's loopback that answers GETs from files: `openssl s_server -HTTP`
# (openssl comes with ca-certificates), with a CA and a certificate for 127.0.0.1 made
# there. The device is registered (4711) and has no endpoints; a POST ends the connection
# unanswered (s_server stops on it; the loop starts it again).
TENANT = "/root/sec-tenant"
TENANT_SETUP = r"""set -e
d=/root/sec-tenant
mkdir -p $d/www/identity/externalIds/c8y_Serial $d/www/service/remoteaccess/devices/4711
cd $d
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj '/CN=sec CA' \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req $ec -keyout tenant.key -out tenant.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
openssl x509 -req -in tenant.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tenant.pem -days 2 \
  -extfile ext 2>/dev/null
ok='HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n'
printf "$ok"'{"externalId":"edge-sec-01","type":"c8y_Serial","managedObject":{"id":"4711"}}' \
  >www/identity/externalIds/c8y_Serial/edge-sec-01
printf "$ok"'[]' >www/service/remoteaccess/devices/4711/configurations
printf '#!/bin/sh\ncd %s/www\nwhile :; do openssl s_server -accept 127.0.0.1:8443 -cert ../tenant.pem -key ../tenant.key -HTTP -quiet; sleep 0.2; done\n' $d >serve
chmod 755 serve
setsid -f ./serve >log 2>&1 </dev/null
"""
# What the scenario changes on the shared machine besides the tenant, restored at the end.
SAVED = ("/etc/edge-setup/edge-setup.toml", "/usr/edge/properties/edge-agent/device-id",
         "/var/lib/edge-setup/remote-access.json")


def save_files(machine) -> None:
    """Keeps a copy of each file of SAVED that exists (the files alone: a copy of their
    directories would put its modes on the system's when put back)."""
    machine.succeed("mkdir -p -m 0700 /root/saved && " + " && ".join(
        f"{{ ! [ -e {f} ] || cp -a {f} /root/saved/{n}; }}" for n, f in enumerate(SAVED)))


def restore_files(machine, *extra: str) -> None:
    """Puts SAVED back as save_files found it, and removes `extra`."""
    machine.succeed(" && ".join(
        f"rm -f {f} && {{ ! [ -e /root/saved/{n} ] || cp -a /root/saved/{n} {f}; }}" for n, f in enumerate(SAVED))
        + f" && rm -rf /root/saved {' '.join(extra)}")


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
                           ("c8y.request-timeout", "15"), ("device.id", "edge-sec-01")):
            machine.succeed(f"edge-setup config set {key} {shlex.quote(value)}")
        machine.wait_for_open_port(8443)
        out = machine.succeed("edge-setup remote-access list 2>&1", timeout=120)
        assert "has no remote access endpoints" in out, out
        body()
    finally:
        # [x]: the pattern does not match the shell that runs pkill
        machine.succeed(f"pkill -f '[/]root/sec-tenant/serve'; pkill -f '[o]penssl s_server -accept 127.0.0.1:8443'; true")
        restore_files(machine, "/etc/edge-setup/sec-tenant-ca.pem", "/etc/edge-setup/sec-credentials", TENANT)


def test(machine):
    path_not_trusted(machine)
    site_env_keep_gives_no_proxy_and_no_ca(machine)
    full_pipe_blocks_no_one(machine)
    with_tenant(machine, lambda: remote_access_lock_free_while_blocked(machine))
    fifo_refused(machine)
    fake_x_locks(machine)
    unstartable_session_is_a_failure(machine)
    # As 10_vnc left it: admin on :1, operator on :2.
    assert display_of(machine, "admin") == 1 and display_of(machine, "operator") == 2
    for n in (1, 2):
        machine.wait_for_unit(f"tigervncserver@:{n}.service")
        machine.wait_for_open_port(5900 + n)


def path_not_trusted(machine):
    """A PATH that reaches the privileged part does not choose its systemctl."""
    lines = machine.succeed(f"cat {SUDOERS}").splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("%vncusers "))
    assert DEFAULTS in lines[:rule], f"{SUDOERS} has no `{DEFAULTS}` before its rule:\n" + "\n".join(lines)
    machine.succeed("visudo -c")
    machine.succeed("grep -Eq '^Defaults[[:space:]]+secure_path=' /etc/sudoers")
    machine.succeed(f"cp -a /etc/sudoers /root/sudoers.orig && cp -a {SUDOERS} /root/edge-setup-vnc.orig")
    sums = machine.succeed(f"sha256sum /etc/sudoers {SUDOERS}")

    machine.succeed(as_user("admin", "mkdir -p /tmp/evil && printf '#!/bin/sh\\ntouch /tmp/pwned-$(id -u)\\nexit 0\\n' "
                                     ">/tmp/evil/systemctl && chmod 755 /tmp/evil/systemctl"))
    # The plant works: with this PATH, a shell finds it.
    found = machine.succeed("runuser -u admin -- env PATH=/tmp/evil:$PATH sh -c 'command -v systemctl'")
    assert found.strip() == "/tmp/evil/systemctl", found
    evil = f"env PATH=/tmp/evil:$PATH {SYSTEM_PART}"
    run = f"runuser -u admin -- {evil} --restart 2>&1"
    try:
        # (a) Debian's `Defaults secure_path` commented out: only the rule's Defaults! line is left.
        machine.succeed("sed -Ei 's/^(Defaults[[:space:]]+secure_path=)/#\\1/' /etc/sudoers && visudo -c")
        listed = machine.succeed("runuser -u admin -- sudo -n -l")
        general = listed.split("Command-specific")[0]
        assert "secure_path" not in general and "secure_path" in listed, f"sudo -l for admin:\n{listed}"
        path = path_seen(machine, evil)
        assert path == "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"the rule's secure_path did not apply: {path}"
        out = machine.succeed(run, timeout=300)
        assert '"display":1' in out and "Restarting tigervncserver@:1.service" in out, out
        no_pwned(machine)
        machine.wait_for_unit("tigervncserver@:1.service", timeout=180)
        machine.wait_for_open_port(5901, timeout=120)

        # (b) also without the Defaults! line: sudo keeps the caller's PATH (env_reset keeps it
        # when no secure_path is set), so only edge-setup's absolute paths stand in the way.
        machine.succeed(f"grep -vxF {shlex.quote(DEFAULTS)} /root/edge-setup-vnc.orig >/root/edge-setup-vnc.bare && "
                        f"install -m 0440 -o root -g root /root/edge-setup-vnc.bare {SUDOERS} && visudo -c")
        machine.fail(f"grep -q Defaults {SUDOERS}")
        listed = machine.succeed("runuser -u admin -- sudo -n -l")
        assert "secure_path" not in listed, f"sudo -l for admin still names a secure_path:\n{listed}"
        path = path_seen(machine, evil)
        assert path.startswith("PATH=/tmp/evil:"), f"the caller's PATH does not reach edge-setup: {path}"
        out = machine.succeed(run, timeout=300)
        assert '"display":1' in out and "Restarting tigervncserver@:1.service" in out, out
        no_pwned(machine)
        machine.wait_for_unit("tigervncserver@:1.service", timeout=180)
        machine.wait_for_open_port(5901, timeout=120)
    finally:
        machine.succeed(f"cp -a /root/sudoers.orig /etc/sudoers && cp -a /root/edge-setup-vnc.orig {SUDOERS} && "
                        "visudo -c && rm -rf /tmp/evil /root/sudoers.orig /root/edge-setup-vnc.*")
    assert machine.succeed(f"sha256sum /etc/sudoers {SUDOERS}") == sums


HER = "/tmp/her"
# admin's own CA, certificate and "tenant" (s_server -www) on 9443, and her "proxy" on 3128:
# an s_server that ends after its first connection, so whether it still runs tells whether
# anyone connected to it.
HER_SETUP = r"""set -e
mkdir -p /tmp/her && cd /tmp/her
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj '/CN=her CA' \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req $ec -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null
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
                           ("c8y.request-timeout", "15"), ("device.id", "edge-sec-01")):
            machine.succeed(f"edge-setup config set {key} {shlex.quote(value)}")
        hostile = f"env https_proxy=http://127.0.0.1:3128 SSL_CERT_FILE={HER}/ca.pem SSL_CERT_DIR={HER}"
        command = f"{hostile} {SYSTEM_PART}"

        # (a) the rule as installed: sudo passes neither variable
        env = environ_seen(machine, command)
        leaked = [v for v in env if v.split("=", 1)[0] in ("https_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")]
        assert not leaked, f"the rule's !env_keep did not apply: {leaked}"
        check_her_run(machine, command)

        # (b) without the rule's Defaults! line, the site's env_keep reaches edge-setup
        machine.succeed(f"grep -vxF {shlex.quote(DEFAULTS)} /root/edge-setup-vnc.orig >/root/edge-setup-vnc.bare && "
                        f"install -m 0440 -o root -g root /root/edge-setup-vnc.bare {SUDOERS} && visudo -c")
        env = environ_seen(machine, command)
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
    password, view_only = USERS["operator"]
    inner = f"printf '%s\\n%s\\n' {password} {view_only} | edge-setup vnc-user --password-stdin"
    started = time.monotonic()
    out = machine.succeed(f"{as_user('operator', inner)} 2>&1", timeout=300)
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


def full_pipe_blocks_no_one(machine):
    """admin's privileged part blocked on a full pipe: operator's run goes through."""
    pid, sudo = start_blocked(machine, "admin", f"{SYSTEM_PART} --remove")
    password, view_only = USERS["operator"]
    inner = f"printf '%s\\n%s\\n' {password} {view_only} | edge-setup vnc-user --password-stdin"
    started = time.monotonic()
    out = machine.succeed(f"{as_user('operator', inner)} 2>&1", timeout=60)
    took = time.monotonic() - started
    machine.log(f"    operator's vnc-user while admin's run is blocked: {took:.1f}s")
    assert "5902" in out, out
    machine.succeed(blocked_on_pipe(pid))  # still blocked all along
    end_blocked(machine, "admin", pid, sudo)
    # The blocked run had changed nothing.
    assert display_of(machine, "admin") == 1
    machine.succeed("systemctl is-active tigervncserver@:1.service && systemctl is-enabled tigervncserver@:1.service")
    machine.wait_for_open_port(5901)


def fifo_refused(machine):
    """A FIFO for the user's VNC settings file: root's run refuses it at once, the lock
    stays free."""
    d = vnc_dir(machine, "admin")
    machine.succeed(as_user("admin", f"mv {d}/config {d}/config.aside && mkfifo {d}/config"))
    before = machine.succeed(f"sha256sum {d}/passwd /etc/tigervnc/vncserver.users")
    password, view_only = USERS["admin"]
    started = time.monotonic()
    out = machine.fail(f"printf '%s\\n%s\\n' {password} {view_only} | "
                       f"timeout 30 edge-setup vnc-user --user admin --password-stdin 2>&1", timeout=60)
    took = time.monotonic() - started
    machine.log(f"    refused in {took:.1f}s: {' '.join(out.split())[:200]}")
    assert "FIFO" in out, f"the refusal does not name the FIFO:\n{out}"
    assert took < 20, f"the FIFO was refused only after {took:.1f}s"
    assert machine.succeed(f"sha256sum {d}/passwd /etc/tigervnc/vncserver.users") == before
    out = vnc_user_as(machine, "operator", *USERS["operator"])
    assert "5902" in out, out

    machine.succeed(f"rm {d}/config && mv {d}/config.aside {d}/config && chown admin: {d}/config")
    out = vnc_user_as(machine, "admin", *USERS["admin"])
    assert "5901" in out, out


# mallory leaves a socket at /tmp/.X11-unix/XN as a process of hers that has ended would
# (openssl s_server bound there, then killed: the file stays), for N = 3..99.
LEFT_SOCKETS = r"""for n in $(seq 3 99); do
  openssl s_server -unix /tmp/.X11-unix/X$n -nocert -quiet </dev/null >/dev/null 2>&1 & p=$!
  i=0; while [ ! -S /tmp/.X11-unix/X$n ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  kill $p; wait $p 2>/dev/null || true
done"""


def fake_x_locks(machine):
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
