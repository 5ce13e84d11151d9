"""Trixie (TigerVNC 1.15) with users enabled while the appliance ran an older TigerVNC, whose
files are in ~/.vnc (issue 16):
- carol's session is started before she runs `vnc-user` again: trixie's tigervncsession
  says "~/.vnc is deprecated" and the server exits with status 1, so the session does not
  come up (found by this scenario; NOTES expected the wrapper to migrate ~/.vnc); `vnc-user`
  with a new password keeps her display, and the session starts and takes the new password;
- dave runs `vnc-user` before any session started: edge-setup writes ~/.config/tigervnc and
  deletes the ~/.vnc/passwd no server reads any more;
- eve runs Debian 13's wrapper once (`tigervncserver -list`), whose own migration moves
  ~/.vnc to ~/.config/tigervnc and leaves a link (it needs an existing ~/.config): her session comes up on the old password
  as it is, and `vnc-user` then writes the one file through the migrated layout.
- frank's files are still in ~/.vnc when root runs `edge-setup vnc` again (as after a
  release upgrade): it moves them as frank, keeps his password, and his session comes up
  (found by this scenario: without it every session stayed down until its user acted).
Each way one password file is left, and it holds the password that opens the session."""

import shlex

from vmtest.edge import vnc_user_as

# Where it runs: users' files and TigerVNC's wrapper: nothing of a kernel of its own.
KINDS = ("container",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

DISTROS = ("trixie",)

USERS = {"carol": (3, "oldpass1", "newpass1"), "dave": (4, "oldpass2", "newpass2"),
         "eve": (5, "oldpass3", "newpass3"), "frank": (6, "oldpass4", None)}


def old_layout(machine, user: str, display: int, password: str) -> None:
    """What an edge-setup run under TigerVNC 1.12 left: ~/.vnc, and both mapping files."""
    machine.succeed(f"useradd -m -s /bin/bash {user} && usermod -aG vncusers {user}")
    inner = (f"mkdir -m 700 ~/.vnc && printf '%s\\n' {shlex.quote(password)} | tigervncpasswd -f "
             "> ~/.vnc/passwd && chmod 600 ~/.vnc/passwd && "
             "printf 'session=edge-setup\\ngeometry=1280x800\\nlocalhost=no\\n' > ~/.vnc/config")
    machine.succeed(f"runuser -u {user} -- sh -c {shlex.quote(inner)}")
    machine.succeed(f"echo {user}:{display} >> /opt/c8y/utilities/vnc-display-mapping && "
                    f"echo :{display}={user} >> /etc/tigervnc/vncserver.users")


def one_password_file(machine, user: str) -> None:
    """The user has one password file, where TigerVNC 1.15 reads it."""
    found = machine.succeed(f"find ~{user} -name passwd -type f | sort").split()
    assert found == [f"/home/{user}/.config/tigervnc/passwd"], found


def session_does_not_come_up(machine, display: int) -> str:
    unit = f"tigervncserver@:{display}.service"
    machine.succeed(f"systemctl enable --now {unit}")
    machine.wait_until_fails(f"systemctl is-active -q {unit}", timeout=60)
    return unit


def session_takes(machine, user: str, display: int, password: str, shot: str,
                  refused: str | None = None) -> None:
    """The user's session is up and `password` opens it (a screenshot); `refused` does not."""
    machine.wait_for_unit(f"tigervncserver@:{display}.service", timeout=180)
    machine.wait_for_open_port(5900 + display, timeout=120)
    machine.screenshot(5900 + display, password, f"{user}-{shot}.png")
    if refused is not None:
        status, output = machine.vncdo(5900 + display, refused, "capture",
                                       str(machine.out_dir / f"{user}-refused.png"))
        assert status == 3, f"{user}'s old password still opens :{display} (exit {status}):\n{output}"


def test(machine):
    for user, (display, old, _) in USERS.items():
        old_layout(machine, user, display, old)

    # carol: her session started on the old layout does not come up; vnc-user repairs it
    display, old, new = USERS["carol"]
    unit = session_does_not_come_up(machine, display)
    machine.log("    " + machine.succeed(f"journalctl -b -u {unit} --no-pager | tail -n 4").replace("\n", "\n    "))
    out = vnc_user_as(machine, "carol", new)
    assert f"590{display}" in out, out
    one_password_file(machine, "carol")
    session_takes(machine, "carol", display, new, "new-password")

    # dave: vnc-user before any session, on the untouched old layout
    display, old, new = USERS["dave"]
    out = vnc_user_as(machine, "dave", new)
    assert "left from TigerVNC before 1.14" in out, out
    machine.succeed("test -d ~dave/.vnc && test ! -L ~dave/.vnc")
    one_password_file(machine, "dave")
    session_takes(machine, "dave", display, new, "new-password", refused=old)

    # eve: the wrapper's own migration first, then vnc-user
    display, old, new = USERS["eve"]
    # The wrapper moves ~/.vnc into ~/.config and fails ("Could not migrate") when the
    # user has no ~/.config yet (found by this scenario); most users have one.
    machine.succeed("runuser -u eve -- mkdir -m 700 /home/eve/.config")
    machine.succeed("runuser -u eve -- env HOME=/home/eve tigervncserver -list")
    machine.succeed("test -L ~eve/.vnc && test -d ~eve/.config/tigervnc && test ! -L ~eve/.config/tigervnc")
    one_password_file(machine, "eve")
    machine.succeed(f"systemctl enable --now tigervncserver@:{display}.service")
    session_takes(machine, "eve", display, old, "migrated")
    out = vnc_user_as(machine, "eve", new)
    assert f"590{display}" in out, out
    assert "left from TigerVNC before 1.14" not in out, out
    one_password_file(machine, "eve")
    machine.succeed("test -L ~eve/.vnc")
    session_takes(machine, "eve", display, new, "new-password", refused=old)

    # frank: `edge-setup vnc` moves the files of a user still on the old layout
    display, old, _ = USERS["frank"]
    session_does_not_come_up(machine, display)
    out = machine.succeed("edge-setup vnc 2>&1", timeout=600)
    assert "frank's VNC files are in /home/frank/.vnc" in out, out
    assert "carol's" not in out and "eve's" not in out, out
    one_password_file(machine, "frank")
    session_takes(machine, "frank", display, old, "moved")
    out = machine.succeed("edge-setup vnc 2>&1", timeout=600)
    assert "Nothing to change" in out, out
