"""Hardening of the privileged part of `vnc-user` (`--system-part`, through the sudoers
rule) where the release's kernel shows it: a caller's PATH does not choose the programs it
runs, without Debian's secure_path and without the rule's own `Defaults!` line too (read
from the blocked process's environment); a run whose output nobody reads does not block
another user's run (the kernel's wchan or stack says where it waits); a FIFO in a user's
VNC directory is refused at once. What a hostile user does without needing the kernel
(issue 26: a site's env_keep, the remote access lock, planted X files) is 16_hostile_user,
in a container. Runs after 10_vnc on the shared machine and leaves it as it found it."""

import shlex
import time

from vmtest.edge import (DEFAULTS, as_10_vnc_left, SUDOERS, SYSTEM_PART, USERS, as_user, blocked_on_pipe, display_of, end_blocked,
                         environ_seen, start_blocked, vnc_dir, vnc_user_as)
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: its pipe checks read the release's kernel (wchan, the kernel stack).
KINDS = ("vm",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

def no_pwned(machine) -> None:
    machine.succeed("! ls -l /tmp/pwned-* 2>/dev/null")


def path_seen(machine, command: str) -> str:
    """The PATH the privileged part gets from sudo."""
    return next(v for v in environ_seen(machine, "admin", command) if v.startswith("PATH="))


def test(machine):
    path_not_trusted(machine)
    full_pipe_blocks_no_one(machine)
    fifo_refused(machine)
    as_10_vnc_left(machine)


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
# (perl, from perl-base, binds them and exits: the files stay), for N = 3..99.
