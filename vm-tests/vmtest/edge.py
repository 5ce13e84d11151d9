"""Steps the edge-setup scenarios share: the binary, VNC users, and checks of screenshots."""

from __future__ import annotations

import shlex
import struct
import subprocess
import time
from pathlib import Path

from . import edge_setup_deb, hosttools, vnc

# The users of the shared machine and their (full, view-only) passwords.
USERS = {"admin": ("secret12", "viewonl1"), "operator": ("opsecr34", "opview56")}


def install_package(machine, deb: Path | None = None) -> str:
    """Installs the package under test (or `deb`) as an operator would, with
    `apt-get install ./edge-setup_*.deb` (its dependencies are in the image);
    returns apt's output, the maintainer scripts' included."""
    deb = deb or edge_setup_deb()
    guest = f"/root/{deb.name}"
    machine.copy_in(deb, guest)
    return machine.succeed(f"DEBIAN_FRONTEND=noninteractive apt-get install -y {guest} 2>&1", timeout=600)


def vnc_dir(machine, user: str) -> str:
    """Where the user's TigerVNC files are on the machine's release: ~/.config/tigervnc from
    TigerVNC 1.14 (trixie's 1.15), ~/.vnc before (bullseye's 1.11, bookworm's 1.12)."""
    return f"~{user}/.config/tigervnc" if machine.distro == "trixie" else f"~{user}/.vnc"


def vnc_user_as(machine, user: str, password: str, view_only: str = "", *extra: str) -> str:
    """`edge-setup vnc-user --password-stdin` run by `user` as themselves (no sudo typed):
    the privileged part goes through the sudoers rule for the vncusers group."""
    args = " ".join(shlex.quote(a) for a in ("vnc-user", "--password-stdin", *extra))
    inner = f"printf '%s\\n%s\\n' {shlex.quote(password)} {shlex.quote(view_only)} | edge-setup {args}"
    return machine.succeed(f"runuser -u {user} -- sh -c {shlex.quote(inner)} 2>&1", timeout=600)


def display_of(machine, user: str) -> int:
    """The user's display in /etc/tigervnc/vncserver.users (`:N=user`)."""
    for line in machine.succeed("cat /etc/tigervnc/vncserver.users").splitlines():
        line = line.strip()
        if line.startswith(":") and line.split("=", 1)[1:] == [user]:
            return int(line[1:].split("=", 1)[0])
    raise AssertionError(f"{user} has no display in /etc/tigervnc/vncserver.users")


def _venv_python() -> str:
    return str(vnc.vncdo_path().parent / "python")


def distinct_colours(png: Path) -> int:
    """How many colours the PNG has (Pillow, from the vncdotool venv)."""
    code = ("import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); "
            "print(len(im.getcolors(1 << 24)))")
    return int(subprocess.run([_venv_python(), "-c", code, str(png)], check=True,
                              capture_output=True, text=True).stdout)


# A drawn desktop (fluxbox's toolbar, the note's anti-aliased text) has 400 colours or so;
# a bare X screen has 1, the background with only vncconfig's window about 120.
DRAWN = 200


def assert_not_blank(png: Path, at_least: int = DRAWN) -> int:
    n = distinct_colours(png)
    assert n >= at_least, f"{png} has only {n} distinct colours: the desktop looks blank"
    return n


def png_size(png: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (bytes 16-24)."""
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    return width, height


def ocr(png: Path, box: tuple[int, int, int, int] | None = None) -> str:
    """The text tesseract reads in the PNG (the region `box` = left, top, right, bottom),
    scaled up 3x first (the menu's font is small), as it is and inverted (tesseract reads
    dark text on a light ground best; the menu's colours come from the fluxbox style)."""
    hosttools.ensure({"tesseract": "tesseract-ocr"})
    code = ("import sys; from PIL import Image, ImageOps; im = Image.open(sys.argv[1]).convert('L'); "
            "box = eval(sys.argv[3]); im = im.crop(box) if box else im; "
            "im = im.resize((im.width * 3, im.height * 3), Image.LANCZOS); "
            "im = ImageOps.invert(im) if sys.argv[4] == '1' else im; im.save(sys.argv[2])")
    texts = []
    for invert in ("0", "1"):
        big = png.with_name(f"{png.stem}-ocr{invert}.png")
        subprocess.run([_venv_python(), "-c", code, str(png), str(big), repr(box), invert], check=True)
        texts.append(subprocess.run(["tesseract", str(big), "-", "--psm", "6"], check=True,
                                    capture_output=True, text=True).stdout)
    return "\n".join(texts)


def wait_for_desktop(machine, port: int, password: str, name: str, timeout: float = 240,
                     at_least: int = DRAWN) -> Path:
    """Screenshots of the display at guest `port` until the desktop is drawn (fluxbox's
    toolbar and the note give it at least `at_least` colours, see DRAWN). Under TCG fluxbox takes a while after the port
    opens. Returns the last screenshot (in the artifacts directory as `name`)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        shot = machine.screenshot(port, password, name)
        n = distinct_colours(shot)
        if n >= at_least:
            machine.log(f"    :{port - 5900} desktop drawn: {n} colours in {shot.name}")
            return shot
        if time.monotonic() > deadline:
            raise AssertionError(f"{shot} has only {n} distinct colours after {timeout:.0f}s: "
                                 "the desktop was not drawn")
        time.sleep(5)


def reference_machine(machine) -> None:
    """A reference machine for a golden image: the package, `edge-setup vnc` (listening on
    the LAN) and admin enabled with USERS' password; installs only what is missing (after
    90_upgrade, the package)."""
    if machine.execute("dpkg-query -W edge-setup")[0] != 0:
        install_package(machine)
    machine.succeed("getent passwd admin || useradd -m -s /bin/bash admin")
    machine.succeed("edge-setup config set vnc.listen lan")
    machine.succeed("edge-setup vnc 2>&1", timeout=1800)
    password, _ = USERS["admin"]
    machine.succeed(f"printf '%s\\n' {password} | edge-setup vnc-user --user admin --password-stdin 2>&1",
                    timeout=600)


# -- a user of the appliance as the security scenarios play her (15_security, 16_hostile_user)

EXE = "/usr/bin/edge-setup"
SUDOERS = "/etc/sudoers.d/edge-setup-vnc"
# The rule's Defaults! line as `edge-setup vnc` writes it.
DEFAULTS = f'Defaults!{EXE} env_reset, !env_keep, !env_check, secure_path="/usr/sbin:/usr/bin:/sbin:/bin"'
SYSTEM_PART = f"sudo -n {EXE} vnc-user --system-part"


def as_user(user: str, script: str) -> str:
    return f"runuser -u {user} -- sh -c {shlex.quote(script)}"


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


def environ_seen(machine, user: str, command: str) -> list[str]:
    """The environment the privileged part, run by `user`, gets from sudo: read while it is
    blocked (before it runs anything), then ended."""
    pid, sudo = start_blocked(machine, user, command)
    env = machine.succeed(f"tr '\\0' '\\n' </proc/{pid}/environ").splitlines()
    end_blocked(machine, user, pid, sudo)
    return env


def as_10_vnc_left(machine) -> None:
    """The shared machine as 10_vnc left it, for a scenario that must leave it so: admin on
    :1, operator on :2, both sessions up."""
    assert display_of(machine, "admin") == 1 and display_of(machine, "operator") == 2
    for n in (1, 2):
        machine.wait_for_unit(f"tigervncserver@:{n}.service")
        machine.wait_for_open_port(5900 + n)


# -- a tenant on the guest's loopback (16_hostile_user, 17_check)

# A CA ($1 names it) and a certificate for 127.0.0.1 it signed (srv.pem, srv.key), made by
# openssl (it comes with ca-certificates) in the current directory. Every extension comes
# from an -extfile: on bullseye a CA made with `req -x509 -addext` was not trusted by
# rustls (UnknownIssuer), likely because OpenSSL 1.1.1 also adds the config's v3_ca
# extensions, so that one came twice; made this way it is trusted on all three releases.
CERTS = r"""certs() {
  ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >caext
  openssl req -new $ec -keyout ca.key -out ca.csr -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in ca.csr -signkey ca.key -out ca.pem -days 2 -extfile caext 2>/dev/null
  openssl req -new $ec -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
    -extfile ext 2>/dev/null
}
"""

# What a scenario that configures a tenant changes on the shared machine, restored at its end.
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


