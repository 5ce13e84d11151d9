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


def passwd_files(machine, user: str) -> list[str]:
    return machine.succeed(f"find ~{user} -name passwd -type f | sort").split()


def test(machine):
    for user, (display, old, _) in USERS.items():
        old_layout(machine, user, display, old)

    # carol: her session started on the old layout does not come up; vnc-user repairs it
    display, old, new = USERS["carol"]
    unit = f"tigervncserver@:{display}.service"
    machine.succeed(f"systemctl enable --now {unit}")
    machine.wait_until_fails(f"systemctl is-active -q {unit}", timeout=60)
    machine.log("    " + machine.succeed(f"journalctl -b -u {unit} --no-pager | tail -n 4").replace("\n", "\n    "))
    out = vnc_user_as(machine, "carol", new)
    assert f"590{display}" in out, out
    assert passwd_files(machine, "carol") == ["/home/carol/.config/tigervnc/passwd"]
    machine.wait_for_unit(unit, timeout=180)
    machine.wait_for_open_port(5900 + display, timeout=120)
    machine.screenshot(5900 + display, new, "carol-new-password.png")

    # dave: vnc-user before any session, on the untouched old layout
    display, old, new = USERS["dave"]
    out = vnc_user_as(machine, "dave", new)
    assert "left from TigerVNC before 1.14" in out, out
    machine.succeed("test -d ~dave/.vnc && test ! -L ~dave/.vnc")
    assert passwd_files(machine, "dave") == ["/home/dave/.config/tigervnc/passwd"]
    machine.wait_for_unit(f"tigervncserver@:{display}.service", timeout=180)
    machine.wait_for_open_port(5900 + display, timeout=120)
    machine.screenshot(5900 + display, new, "dave-new-password.png")
    status, output = machine.vncdo(5900 + display, old, "capture", str(machine.out_dir / "refused.png"))
    assert status == 3, f"dave's old password still opens :{display} (exit {status}):\n{output}"

    # eve: the wrapper's own migration first, then vnc-user
    display, old, new = USERS["eve"]
    unit = f"tigervncserver@:{display}.service"
    # The wrapper moves ~/.vnc into ~/.config and fails ("Could not migrate") when the
    # user has no ~/.config yet (found by this scenario); most users have one.
    machine.succeed("runuser -u eve -- mkdir -m 700 /home/eve/.config")
    machine.succeed("runuser -u eve -- env HOME=/home/eve tigervncserver -list")
    machine.succeed("test -L ~eve/.vnc && test -d ~eve/.config/tigervnc && test ! -L ~eve/.config/tigervnc")
    assert passwd_files(machine, "eve") == ["/home/eve/.config/tigervnc/passwd"]
    machine.succeed(f"systemctl enable --now {unit}")
    machine.wait_for_unit(unit, timeout=180)
    machine.wait_for_open_port(5900 + display, timeout=120)
    machine.screenshot(5900 + display, old, "eve-migrated.png")
    out = vnc_user_as(machine, "eve", new)
    assert f"590{display}" in out, out
    assert "left from TigerVNC before 1.14" not in out, out
    assert passwd_files(machine, "eve") == ["/home/eve/.config/tigervnc/passwd"]
    machine.succeed("test -L ~eve/.vnc")
    machine.wait_for_unit(unit, timeout=180)
    machine.wait_for_open_port(5900 + display, timeout=120)
    machine.screenshot(5900 + display, new, "eve-new-password.png")
    status, output = machine.vncdo(5900 + display, old, "capture", str(machine.out_dir / "eve-refused.png"))
    assert status == 3, f"eve's old password still opens :{display} (exit {status}):\n{output}"

    # frank: `edge-setup vnc` moves the files of a user still on the old layout
    display, old, _ = USERS["frank"]
    unit = f"tigervncserver@:{display}.service"
    machine.execute(f"systemctl enable --now {unit}")
    machine.wait_until_fails(f"systemctl is-active -q {unit}", timeout=60)
    out = machine.succeed("edge-setup vnc 2>&1", timeout=600)
    assert "frank's VNC files are in /home/frank/.vnc" in out, out
    assert "carol's" not in out and "eve's" not in out, out
    assert passwd_files(machine, "frank") == ["/home/frank/.config/tigervnc/passwd"]
    machine.wait_for_unit(unit, timeout=180)
    machine.wait_for_open_port(5900 + display, timeout=120)
    machine.screenshot(5900 + display, old, "frank-moved.png")
    out = machine.succeed("edge-setup vnc 2>&1", timeout=600)
    assert "Nothing to change" in out, out
