"""A systemd container booted from the same image as the VMs, for what needs no kernel of its own.

The release's image (`rootfs.img`) is loop-mounted read-only under an overlay of the
container's own and booted with `systemd-nspawn --boot`: the release's systemd, packages
and units run at native speed on the host's kernel. The container's network namespace has
one veth link, `host0` (10.0.2.15/24, as QEMU's user network gives a VM), whose peer is in a
second namespace of its own, "the LAN" (10.0.2.2, as QEMU's gateway). Nothing is added to the
host's namespace: `forward()` relays a port on the host's 127.0.0.1 to the container's address
from the LAN namespace, so a client's connection crosses the container's NIC and its firewall
as a VM's does.

Commands go through the same control shell as in a VM (image/guest/vmt-backdoor, a service
of the container's systemd), over two FIFOs bound into the container instead of a console.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from . import hosttools
from .backdoor import Backdoor, ChannelError
from .image import DEFAULT_DISTRO, Image, cache_dir
from .machine import BOOT_TIMEOUT, Guest, StepFailed, _alive

CONTAINER_TOOLS = {"systemd-nspawn": "systemd-container", "ip": "iproute2"}
GUEST_ADDRESS = "10.0.2.15"
LAN_ADDRESS = "10.0.2.2"
_CLONE_NEWNET = 0x40000000

# Files the harness puts into a container's overlay before it boots: its network on host0,
# no root file system to mount from /etc/fstab, the control shell on FIFOs, and no 9p
# module loader (the exchange directory is a bind mount).
_NETWORK = f"""# vm-tests: the container's link to its LAN namespace (vmtest/container.py)
[Match]
Name=host0

[Network]
Address={GUEST_ADDRESS}/24
Gateway={LAN_ADDRESS}
# IPv4 only, as the VMs' user network is used: nothing on the LAN sends IPv6 router
# advertisements, and waiting for them kept the link "configuring", so network-online.target
# (which the first boot's unit waits for) came 13.6 s after the boot instead of 0.3 s.
LinkLocalAddressing=no
IPv6AcceptRA=no
"""
_BACKDOOR_DROPIN = """[Service]
Environment=VMT_IN=/run/vmt/ctl/in VMT_OUT=/run/vmt/ctl/out
"""


def _run(*cmd: str) -> str:
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise StepFailed(f"`{' '.join(cmd)}` exited with status {r.returncode}:\n{r.stdout[-2000:]}")
    return r.stdout


class _Fifos:
    """The host's ends of the control shell's two FIFOs, shaped like the socket Backdoor
    reads and writes. Opened read-write, so neither end sees EOF while the shell restarts."""

    def __init__(self, to_guest: Path, from_guest: Path):
        self.wr = os.open(to_guest, os.O_RDWR)
        self.rd = os.open(from_guest, os.O_RDWR)

    def fileno(self) -> int:
        return self.rd

    def recv(self, n: int) -> bytes:
        return os.read(self.rd, n)

    def sendall(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.wr, data):]

    def close(self) -> None:
        os.close(self.rd)
        os.close(self.wr)


class _FifoBackdoor(Backdoor):
    def __init__(self, ctl: Path, alive: Callable[[], bool], noise: Callable[[bytes], None]):
        super().__init__(str(ctl), alive=alive, noise=noise)
        self.ctl = ctl

    def connect(self, timeout: float = 30) -> None:
        self.sock = _Fifos(self.ctl / "in", self.ctl / "out")


def _setns_net(path: str) -> None:
    """Moves the calling thread (only it) into the network namespace at `path`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


class _Relay:
    """Listens on 127.0.0.1:`host_port` of the host; each connection is carried to
    GUEST_ADDRESS:`guest_port` from the LAN namespace `lan`, by a thread of its own that
    enters that namespace (setns acts on one thread)."""

    def __init__(self, lan: str, guest_port: int):
        self.lan, self.guest_port = lan, guest_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.host_port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name=f"relay-{guest_port}").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return                      # closed
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        try:
            _setns_net(self.lan)
            server = socket.create_connection((GUEST_ADDRESS, self.guest_port), timeout=10)
        except OSError:
            client.close()                  # as a VM's forward does: the client sees EOF
            return
        server.settimeout(None)
        ends = {client: server, server: client}
        try:
            while True:
                ready, _, _ = select.select(list(ends), [], [])
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    ends[s].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.listener.close()


class Container(Guest):
    """One systemd-nspawn container of a release. Steps start it if it is not running."""

    kind = "container"
    logs = ("console.log", "nspawn.cmdline")

    def __init__(self, name: str = "container", *, distro: str = DEFAULT_DISTRO,
                 image: Image | None = None, log: Callable[[str], None] | None = None,
                 base: Path | None = None, rootfs: Path | None = None):
        super().__init__(name, distro, log, image)
        # The overlay of a shut-down container this one starts from (clone()), as a layer
        # between the image and its own.
        self.base = base
        # The raw ext4 root file system it boots, read-only: the release's image unless
        # given (from_rootfs(): an image a scenario made).
        self.rootfs = rootfs
        self.boot_seconds: float | None = None
        self._relays: dict[int, _Relay] = {}
        self._netns: tuple[str, str] | None = None     # (container's, LAN's) names

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Boots the container (once; later calls do nothing while it runs) and waits for
        its control shell. After shutdown() it boots the same overlay again."""
        if self.is_running():
            return
        hosttools.ensure(CONTAINER_TOOLS)
        if self.state_dir is None:
            self._prepare()
        else:
            self._mount()
        if self.process is not None:
            self.log(f"[{self.name}] booting again after a shutdown")
        sd = self.state_dir
        cmd = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--quiet",
               "-D", str(sd / "root"), "--machine", f"vmt-{self._tag()}",
               f"--network-namespace-path=/run/netns/{self._netns[0]}",
               # the network is the container's own: networkd and firewalld configure it
               "--capability=CAP_NET_ADMIN",
               "--resolv-conf=off", "--timezone=off", "--link-journal=no",
               f"--bind={sd / 'xchg'}:/run/vmt/xchg", f"--bind={sd / 'ctl'}:/run/vmt/ctl"]
        (sd / "nspawn.cmdline").write_text(" ".join(cmd) + "\n")
        self.log(f"[{self.name}] booting a container (state in {sd})")
        started = time.monotonic()
        # Trixie's systemd needs the unified cgroup hierarchy; the host may mount both.
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        # In a cgroup of its own: nspawn roots the container's cgroup namespace at its own
        # cgroup, and two containers in one (--keep-unit, all in the harness's) shared every
        # unit's cgroup (tigervncserver@:1 of two releases at once: "Failed to kill control
        # group ... Input/output error", a stop timeout that did not hold).
        cgroup = (sd / "cgroup").read_text().strip()
        cmd = ["sh", "-c", 'echo $$ >"$0/cgroup.procs" && exec "$@"', cgroup, *cmd]
        with open(sd / "console.log", "ab") as console:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console,
                                            stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        (sd / "nspawn.pid").write_text(f"{self.process.pid}\n")
        self.backdoor = _FifoBackdoor(sd / "ctl", alive=self.is_running, noise=self._console_noise)
        try:
            self.backdoor.connect()
            self.backdoor.wait_ready(BOOT_TIMEOUT)
        except ChannelError as e:
            raise StepFailed(f"{self.name} did not boot: {e}\n{self._tail()}") from None
        self.boot_seconds = time.monotonic() - started
        self.log(f"[{self.name}] control shell ready after {self.boot_seconds:.1f}s")

    def _prepare(self) -> None:
        """The state directory, the overlay on the image with the harness's files, the
        FIFOs and the two network namespaces."""
        runs = cache_dir() / "run"
        runs.mkdir(parents=True, exist_ok=True)
        remove_stale_containers(runs)
        self.state_dir = sd = Path(tempfile.mkdtemp(prefix=f"ct-{self.name}-", dir=runs))
        (sd / "owner.pid").write_text(f"{os.getpid()}\n")
        for d in ("lower", "upper", "work", "root", "xchg", "ctl"):
            (sd / d).mkdir()
        self._mount()
        root = sd / "root"
        (root / "etc/systemd/network/10-vmt-container.network").write_text(_NETWORK)
        (root / "etc/fstab").write_text("# vm-tests: a container mounts nothing from fstab\n")
        (root / "etc/systemd/system/vmt-9p.service").unlink()
        os.symlink("/dev/null", root / "etc/systemd/system/vmt-9p.service")
        dropin = root / "etc/systemd/system/vmt-backdoor.service.d"
        dropin.mkdir(exist_ok=True)
        (dropin / "container.conf").write_text(_BACKDOOR_DROPIN)
        for fifo in ("in", "out"):
            os.mkfifo(sd / "ctl" / fifo, 0o600)
        tag = self._tag()
        cgroup = _own_cgroup() / f"vmt-{tag}"
        cgroup.mkdir()
        (sd / "cgroup").write_text(f"{cgroup}\n")
        self._netns = ct, lan = (f"vmt-ct-{tag}", f"vmt-lan-{tag}")
        (sd / "netns").write_text(f"{ct} {lan}\n")
        _run("ip", "netns", "add", ct)
        _run("ip", "netns", "add", lan)
        _run("ip", "-n", lan, "link", "add", "lan0", "type", "veth", "peer", "name", "host0",
             "netns", ct)
        _run("ip", "-n", lan, "addr", "add", f"{LAN_ADDRESS}/24", "dev", "lan0")
        _run("ip", "-n", lan, "link", "set", "lan0", "up")
        _run("ip", "-n", lan, "link", "set", "lo", "up")

    def _tag(self) -> str:
        """A short name of this container's own for its namespaces and machine name (a host
        name: mkdtemp's underscores are not allowed there)."""
        return self.state_dir.name[-8:].replace("_", "x")

    def _mount(self) -> None:
        """The image read-only, and the overlay on it (on the base's layer, for a clone)."""
        sd = self.state_dir
        if not os.path.ismount(sd / "lower"):
            _run("mount", "-o", "loop,ro,noload", str(self.rootfs or self.image.rootfs), str(sd / "lower"))
        if os.path.ismount(sd / "root"):
            return
        lowers = f"{self.base}:{sd / 'lower'}" if self.base else str(sd / "lower")
        _run("mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lowers},upperdir={sd / 'upper'},workdir={sd / 'work'}", str(sd / "root"))

    def _console_noise(self, line: bytes) -> None:
        if self.transcript:
            self.transcript("ctl: " + line.decode(errors="replace"))

    def _ended(self) -> str:
        return f"systemd-nspawn exited with status {self.process.returncode}"

    def _xchg(self) -> str:
        return "/run/vmt/xchg"         # bound in by systemd-nspawn

    def forward(self, guest_port: int) -> int:
        """A free port on the host's 127.0.0.1 carried to `guest_port` on the container's
        NIC from its LAN; before or after start(); asking twice returns the same port."""
        if guest_port not in self.forwards:
            if self._netns is None:
                self._prepare()
            relay = _Relay(f"/run/netns/{self._netns[1]}", guest_port)
            self._relays[guest_port] = relay
            self.forwards[guest_port] = relay.host_port
            self.log(f"[{self.name}] forward 127.0.0.1:{relay.host_port} -> container port {guest_port}")
        return self.forwards[guest_port]

    # -- power ------------------------------------------------------------------------
    def reboot(self, timeout: float = BOOT_TIMEOUT) -> None:
        raise StepFailed("reboot: a container shares the host's kernel; a scenario that "
                         "reboots runs in a VM (KINDS = (\"vm\",))")

    def clone(self, name: str) -> "Container":
        """A new container that starts from this one's files, as a clone of a golden image
        would: this one's overlay (which must be shut down, and stays unchanged while
        clones exist) is a layer under the clone's own. Its steps log to this container's
        scenario; the runner stops it, with its logs in the artifacts, when the scenario ends."""
        if self.is_running() or self.state_dir is None:
            raise StepFailed(f"clone: {self.name} must have booted and be shut down first")
        if os.path.ismount(self.state_dir / "root"):
            # its layer is read by the clones now; it is mounted again if it boots again
            _run("umount", str(self.state_dir / "root"))
        return self._scenario_machine(name, base=self.state_dir / "upper", rootfs=self.rootfs)

    def from_rootfs(self, name: str, rootfs: Path) -> "Container":
        """A new container of this one's release that boots `rootfs`, a raw ext4 root file
        system on the host (read-only, under an overlay of its own), instead of the
        release's image: an appliance made from an image the scenario built. As with
        clone(), its steps log to this container's scenario and the runner stops it, with
        its logs in the artifacts, when the scenario ends; `rootfs` must stay until then
        (removing the file is fine: the loop device holds it)."""
        return self._scenario_machine(name, base=None, rootfs=rootfs)

    def _scenario_machine(self, name: str, base: Path | None, rootfs: Path | None) -> "Container":
        c = Container(f"{self.name}-{name}", distro=self.distro, image=self.image, log=self.log,
                      base=base, rootfs=rootfs)
        c.transcript, c.out_dir = self.transcript, self.out_dir
        self.clones.append(c)
        return c

    def snapshot(self, dest: Path) -> Path:
        raise StepFailed("snapshot: FROM snapshots are a VM's disk; containers install at "
                         "native speed and need none")

    def stop(self) -> None:
        """Ends the container at once and removes its overlay, namespaces and state."""
        for clone in self.clones:
            clone.stop()
        for relay in self._relays.values():
            relay.close()
        if self.backdoor:
            self.backdoor.close()
        if self.process is not None and self.process.poll() is None:
            _end(self.process.pid)
            self.process.wait()
        if self.state_dir and not self.kept:
            _remove_state(self.state_dir)

    def keep(self) -> str:
        self.kept = True
        self.release_shell()
        (self.state_dir / "kept").touch()
        fw = ", ".join(f"127.0.0.1:{h} -> container {g}" for g, h in self.forwards.items()) or "none"
        return (f"container {self.name} is still running (systemd-nspawn pid {self.process.pid})\n"
                f"  root shell:  nsenter --target {_leader(self.process.pid)} --all bash\n"
                f"  console log: {self.state_dir / 'console.log'}\n"
                f"  forwards:    {fw} (they end with this run)\n"
                f"  stop it:     kill {self.process.pid}, then run vm-tests/run again (it cleans up)")


def _leader(nspawn_pid: int) -> int | None:
    """The container's PID 1, as the host sees it: nspawn's child."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
        return int(children[0])
    except (OSError, IndexError, ValueError):
        return None


def _end(pid: int) -> None:
    """SIGTERM to systemd-nspawn (the container powers off), SIGKILL after 10 s."""
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _remove_state(sd: Path) -> None:
    """Unmounts the overlay and the image, deletes the namespaces and the directory."""
    for m in (sd / "root", sd / "lower"):
        if os.path.ismount(m):
            if subprocess.run(["umount", str(m)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(m)], capture_output=True)
    try:
        for ns in (sd / "netns").read_text().split():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    except OSError:
        pass
    try:
        cgroup = Path((sd / "cgroup").read_text().strip())
    except OSError:
        cgroup = None
    if cgroup is not None:
        for d, _, _ in sorted(os.walk(cgroup), reverse=True):   # the deepest first
            with contextlib.suppress(OSError):                   # one still busy: the rest go
                os.rmdir(d)
    shutil.rmtree(sd, ignore_errors=True)


def _own_cgroup() -> Path:
    """This process's cgroup in the unified hierarchy (/sys/fs/cgroup, or
    /sys/fs/cgroup/unified on a host that mounts both)."""
    mount = next((line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                  if line.split()[2] == "cgroup2"), None)
    path = next((line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
                 if line.startswith("0::")), None)
    if mount is None or path is None:
        raise StepFailed("containers need the unified cgroup hierarchy (cgroup2), which this "
                         "host does not mount")
    return Path(mount) / path.lstrip("/")


def remove_stale_containers(runs: Path) -> None:
    """Cleans up after runs that were killed: ends their containers (unless kept with
    --keep) and removes their overlays, namespaces and state."""
    for d in runs.glob("ct-*"):
        if _alive(d / "owner.pid") is not None or (d / "kept").exists() and _alive(d / "nspawn.pid"):
            continue
        pid = _alive(d / "nspawn.pid")
        if pid is not None:
            try:
                if b"systemd-nspawn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    _end(pid)
            except OSError:
                pass
        _remove_state(d)
