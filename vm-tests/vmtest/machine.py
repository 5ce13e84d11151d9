"""A QEMU guest booted from the cached image, and the steps scenarios run on it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import hosttools, vnc
from .backdoor import Backdoor, ChannelError, ChannelTimeout, GuestRestarted
from .image import DEFAULT_DISTRO, Image, cache_dir, get_image

DEFAULT_TIMEOUT = 300
# Under TCG: the emulated CPU and the emulation's threads (see README, Boot). qemu64, not
# max: glibc then takes its SSE2 routines, not AVX2 ones that TCG emulates slowly
# (`edge-setup vnc` in bookworm's VM: 184 s against 239 s).
TCG_CPU = os.environ.get("EDGE_SETUP_VM_CPU", "qemu64")
TCG_THREAD = os.environ.get("EDGE_SETUP_VM_TCG_THREAD", "multi")
BOOT_TIMEOUT = 600          # under TCG a boot takes about a minute; leave room on slow CI
_HARNESS_DIR = str(Path(__file__).resolve().parent)


class StepFailed(AssertionError):
    """A scenario step failed. The message says which step and why."""


class CommandFailed(StepFailed):
    def __init__(self, step: str, command: str, status: int | None, output: str):
        self.command, self.status, self.output = command, status, output
        what = "timed out" if status in (124, 137) else f"exited with status {status}"
        if step == "fail":
            what = "succeeded (exit status 0) but was expected to fail"
        super().__init__(f"{step}: `{command}` {what}\n{_indent_output(output)}")


def _indent_output(output: str, limit: int = 60) -> str:
    lines = output.rstrip("\n").splitlines()
    if not lines:
        return "  (no output)"
    if len(lines) > limit:
        lines = [f"... ({len(lines) - limit} earlier lines in commands.log)"] + lines[-limit:]
    return "\n".join("  | " + line for line in lines)


def scenario_location() -> str:
    """file:line of the innermost caller outside the harness (the scenario line)."""
    frame = sys._getframe(1)
    while frame is not None:
        if not frame.f_code.co_filename.startswith(_HARNESS_DIR):
            return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


# What a kernel prints when it crashes (an oops may be followed by a panic, or by nothing).
CRASH = re.compile(r"Kernel panic - not syncing|\bOops: |\bBUG: |general protection fault")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _probe_accel(image: Image) -> str:
    """'kvm' when a KVM guest really runs here, else 'tcg'. Cached per host boot."""
    forced = os.environ.get("EDGE_SETUP_VM_ACCEL")
    if forced:
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    host_boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    record = cache_dir() / "accel-probe"
    try:
        boot, accel = record.read_text().split()
        if boot == host_boot:
            return accel
    except (OSError, ValueError):
        pass
    # A kernel without its root file system panics within a couple of seconds under a
    # working KVM; where nested virtualisation is broken it prints nothing at all.
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults",
           "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", str(image.kernel),
           "-append", "console=ttyS0 root=/dev/nonexistent panic=1"]
    accel = "tcg"
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=10).stdout
        if b"Kernel panic" in out or b"VFS:" in out:
            accel = "kvm"
    except subprocess.TimeoutExpired:
        pass
    record.write_text(f"{host_boot} {accel}\n")
    print(f"[host] KVM probe: using {accel}", flush=True)
    return accel


class Guest:
    """What every kind of test machine offers scenarios: commands, waits, files, VNC. A
    subclass boots it (start, stop, is_running) and carries commands and files (_run,
    _xchg, forward)."""

    kind = "?"
    # The files of its state directory that go into a scenario's artifacts: the console's
    # log first (its tail is shown when a step fails), then how it was started.
    logs: tuple[str, ...] = ()

    def __init__(self, name: str, distro: str, log: Callable[[str], None] | None,
                 image: Image | None = None):
        self.name = name
        self._image = image
        self.process: subprocess.Popen | None = None
        self.backdoor: Backdoor | None = None
        # The Debian release the machine runs (its image): bullseye, bookworm or trixie.
        self.distro = distro
        self.log = log or (lambda text: print(text, flush=True))
        self.transcript: Callable[[str], None] | None = None  # full command outputs
        self.forwards: dict[int, int] = {}     # guest port -> host port
        self.state_dir: Path | None = None
        self.kept = False
        self.clones: list[Guest] = []
        # The running scenario's artifacts directory (vm-tests/out/<release>/<kind>/<scenario>),
        # set by the runner: relative screenshot paths land there.
        self.out_dir: Path = Path.cwd()

    @property
    def image(self) -> Image:
        if self._image is None:
            self._image = get_image(self.distro)
        return self._image

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _check_running(self, step: str) -> None:
        if not self.is_running():
            self.start()

    def _tail(self, lines: int = 25) -> str:
        """The last lines of the console's log, and how the machine's process ended."""
        try:
            text = (self.state_dir / self.logs[0]).read_text(errors="replace")
        except (OSError, TypeError, IndexError):
            return ""
        tail = text.replace("\r", "").splitlines()[-lines:]
        result = f"last lines of {self.logs[0]}:\n" + "\n".join("  | " + l for l in tail)
        if self.process is not None and self.process.poll() is not None:
            result += f"\n{self._ended()}"
        return result

    def _ended(self) -> str:
        return f"its process exited with status {self.process.returncode}"

    def _run(self, command: str, timeout: float, step: str) -> tuple[int, bytes]:
        """Runs `command` through the control shell."""
        try:
            return self.backdoor.run(command, timeout)
        except GuestRestarted as e:
            self._restarted(e)
            raise StepFailed(f"{step}: `{command}`: {e} while the command ran\n"
                             f"{self._tail()}") from None
        except ChannelTimeout as e:
            raise StepFailed(f"{step}: `{command}`: {e}") from None
        except ChannelError as e:
            raise StepFailed(f"{step}: `{command}`: {e}\n{self._tail()}") from None

    def _restarted(self, e: GuestRestarted) -> None:
        """The control shell restarted while a command ran (the guest rebooted)."""

    def shutdown(self, timeout: float = 180) -> None:
        """Powers the machine off cleanly (systemctl poweroff) and waits for its process to
        exit; the next step (or start()) boots the same disk again."""
        if not self.is_running():
            return
        self.backdoor.send_only("systemctl poweroff")
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"shutdown: {self.name} did not power off within {timeout:.0f}s\n"
                             f"{self._tail()}") from None
        finally:
            self.backdoor.close()
        self.log(f"  {scenario_location()} shutdown: powered off")

    def release_shell(self) -> None:
        """Closes this process's connection to the machine's control shell (a VM's QEMU
        socket serves one client at a time: `vm-tests/run --attach` can then have it). The
        next step connects again."""
        if self.backdoor:
            self.backdoor.close()

    def collect(self, dest: Path, journal: bool) -> None:
        """Copies the machine's logs (and, if asked, its journal and failed units) to `dest`."""
        dest.mkdir(parents=True, exist_ok=True)
        for name in self.logs:
            if self.state_dir and (self.state_dir / name).exists():
                shutil.copy(self.state_dir / name, dest / name)
        if journal and self.is_running():
            for fname, cmd in (("journal.txt", "journalctl -b --no-pager"),
                               ("failed-units.txt", "systemctl --failed --no-pager")):
                try:
                    _, out = self.backdoor.run(cmd, 120)
                    (dest / fname).write_bytes(out)
                except ChannelError as e:
                    (dest / fname).write_text(f"could not collect: {e}\n")

    # -- commands -----------------------------------------------------------------------
    def execute(self, command: str, timeout: float = DEFAULT_TIMEOUT, *,
                _step: str = "execute", _quiet: bool = False) -> tuple[int, str]:
        """Runs `command` with bash as root in the guest (stdin /dev/null).
        Returns (exit status, stdout and stderr interleaved). Status 124 means the guest
        killed the command after `timeout` seconds."""
        status, raw = self.execute_bytes(command, timeout, _step=_step, _quiet=_quiet)
        return status, raw.decode(errors="replace")

    def execute_bytes(self, command: str, timeout: float = DEFAULT_TIMEOUT, *,
                      _step: str = "execute", _quiet: bool = False) -> tuple[int, bytes]:
        self._check_running(_step)
        where = scenario_location()
        started = time.monotonic()
        status, output = self._run(command, timeout, _step)
        took = time.monotonic() - started
        if not _quiet:
            self.log(f"  {where} {_step}: {command} -> {status} ({took:.1f}s)")
        if self.transcript:
            self.transcript(f"$ {command}    # {where} {_step}: exit {status}, {took:.1f}s\n"
                            + output.decode(errors="replace"))
        return status, output

    def succeed(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Runs `command`; returns its output, raises CommandFailed on a non-zero status."""
        status, output = self.execute(command, timeout, _step="succeed")
        if status != 0:
            raise CommandFailed("succeed", command, status, output)
        return output

    def fail(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Runs `command`; returns its output, raises CommandFailed if it exits with 0."""
        status, output = self.execute(command, timeout, _step="fail")
        if status == 0:
            raise CommandFailed("fail", command, status, output)
        return output

    def wait_until_succeeds(self, command: str, timeout: float = DEFAULT_TIMEOUT,
                            interval: float = 1) -> str:
        """Repeats `command` until it exits with 0; returns that output."""
        return self._wait(command, timeout, interval, want_success=True)

    def wait_until_fails(self, command: str, timeout: float = DEFAULT_TIMEOUT,
                         interval: float = 1) -> str:
        return self._wait(command, timeout, interval, want_success=False)

    def _wait(self, command: str, timeout: float, interval: float, want_success: bool) -> str:
        step = "wait_until_succeeds" if want_success else "wait_until_fails"
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            left = max(1.0, deadline - time.monotonic())
            status, output = self.execute(command, min(left, DEFAULT_TIMEOUT),
                                          _step=step, _quiet=True)
            if (status == 0) == want_success:
                self.log(f"  {scenario_location()} {step}: {command} -> {status} "
                         f"({time.monotonic() - started:.1f}s, {tries} tries)")
                return output
            if time.monotonic() + interval > deadline:
                raise CommandFailed(f"{step} (gave up after {timeout:.0f}s, {tries} tries)",
                                    command, status, output)
            time.sleep(interval)

    def wait_for_unit(self, unit: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Waits until the systemd unit is active; fails at once if it failed."""
        deadline = time.monotonic() + timeout
        q = shlex.quote(unit)
        while True:
            out = self.execute(f"systemctl show -p ActiveState -p LoadState {q}", 60,
                               _quiet=True)[1]
            props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            state = props.get("ActiveState", "?")
            if state == "active":
                self.log(f"  {scenario_location()} wait_for_unit: {unit} is active")
                return
            if state == "failed" or time.monotonic() > deadline:
                status = self.execute(f"systemctl status --no-pager -l {q}; "
                                      f"journalctl -b --no-pager -n 50 -u {q}", 60, _quiet=True)[1]
                if state == "failed":
                    why = "failed"
                elif props.get("LoadState") == "not-found":
                    why = f"does not exist (waited {timeout:.0f}s)"
                else:
                    why = f"is {state!r} after {timeout:.0f}s"
                raise StepFailed(f"wait_for_unit: {unit} {why}\n{_indent_output(status)}")
            time.sleep(1)

    def wait_for_open_port(self, port: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Waits until something in the guest listens on TCP `port` (any address)."""
        self.wait_until_succeeds(f"ss -Htln 'sport = :{int(port)}' | grep -q .", timeout)

    def wait_for_closed_port(self, port: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.wait_until_fails(f"ss -Htln 'sport = :{int(port)}' | grep -q .", timeout)

    # -- files ------------------------------------------------------------------------
    def copy_in(self, host_path: str | os.PathLike, guest_path: str, mode: str | None = None) -> None:
        """Copies a host file or directory to `guest_path` (parent directories are made;
        the copy is owned by root; file modes are kept unless `mode`, e.g. "0755", is given)."""
        self._check_running("copy_in")
        src = Path(host_path)
        if not src.exists():
            raise StepFailed(f"copy_in: {src} does not exist on the host")
        started = time.monotonic()
        name = f"in-{time.monotonic_ns()}"
        staged = self.state_dir / "xchg" / name
        if src.is_dir():
            shutil.copytree(src, staged, symlinks=True)
        else:
            shutil.copy2(src, staged)
        try:
            x = self._xchg()
            g = shlex.quote(guest_path)
            cmd = (f"mkdir -p \"$(dirname {g})\" && rm -rf {g} && "
                   f"cp -R --preserve=mode,timestamps {x}/{name} {g} && chown -R root:root {g}")
            if mode:
                cmd += f" && chmod {shlex.quote(mode)} {g}"
            status, output = self.execute(cmd, 600, _step="copy_in", _quiet=True)
            if status != 0:
                raise CommandFailed("copy_in", cmd, status, output)
            self.log(f"  {scenario_location()} copy_in: {src} -> {guest_path} "
                     f"({time.monotonic() - started:.1f}s)")
        finally:
            shutil.rmtree(staged, ignore_errors=True) if staged.is_dir() else staged.unlink(missing_ok=True)

    def copy_out(self, guest_path: str, host_path: str | os.PathLike) -> Path:
        """Copies a guest file or directory to `host_path` on the host."""
        self._check_running("copy_out")
        name = f"out-{time.monotonic_ns()}"
        x = self._xchg()
        cmd = f"cp -R {shlex.quote(guest_path)} {x}/{name}"
        status, output = self.execute(cmd, 600, _step="copy_out", _quiet=True)
        if status != 0:
            raise CommandFailed("copy_out", cmd, status, output)
        dest = Path(host_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not (self.state_dir / "xchg" / name).is_dir():
            dest = dest / Path(guest_path).name
        shutil.move(self.state_dir / "xchg" / name, dest)
        return dest

    # -- VNC ----------------------------------------------------------------------------
    def vncdo(self, guest_port: int, password: str | None, *args: str,
              timeout: float = 120) -> tuple[int, str]:
        """Runs vncdotool's `vncdo` against guest TCP `guest_port` (forwarded to the host);
        returns (exit status, output). Status 3 is vncdo's answer to a bad password."""
        host_port = self.forward(guest_port)
        status, output = vnc.vncdo("127.0.0.1", host_port, password, list(args), timeout)
        self.log(f"  {scenario_location()} vncdo :{guest_port} {' '.join(args)} -> {status}")
        if self.transcript:
            self.transcript(f"[host] vncdo :{guest_port} {' '.join(args)}: exit {status}\n{output}")
        return status, output

    def screenshot(self, guest_port: int, password: str | None, path: str | os.PathLike) -> Path:
        """Captures the VNC server on guest `guest_port` to a PNG at `path` on the host
        (a relative path is taken in the scenario's artifacts directory)."""
        path = (self.out_dir / path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        status, output = self.vncdo(guest_port, password, "capture", str(path))
        if status != 0 or not path.exists():
            raise StepFailed(f"screenshot of guest port {guest_port} failed (vncdo exit "
                             f"{status})\n{_indent_output(output)}")
        return path



class Machine(Guest):
    """One QEMU guest. Steps start the machine if it is not running yet."""

    kind = "vm"
    logs = ("serial.log", "qemu.cmdline")

    def __init__(self, name: str = "machine", *, memory_mb: int = 2048, cpus: int = 1,
                 distro: str = DEFAULT_DISTRO, image: Image | None = None,
                 log: Callable[[str], None] | None = None, backing: Path | None = None):
        super().__init__(name, distro, log, image)
        self.memory_mb = memory_mb
        self.cpus = cpus
        # Raw disk images on the host attached as further virtio disks (/dev/vdb, ...):
        # add to it before the machine starts.
        self.extra_disks: list[Path] = []
        self.accel: str | None = None
        self.boot_seconds: float | None = None
        self._xchg_mounted = False
        # The disk this machine starts from instead of the image: another machine's
        # (clone()) or a snapshot of one (snapshot()).
        self.backing = backing
        self.disk: Path | None = None     # the overlay QEMU writes to
        # The serial console's lines of each kernel crash while booting (the boot was tried again).
        self.crashes: list[list[str]] = []
        self.tcg_thread = TCG_THREAD
        # Added to the kernel's command line at the next boot.
        self.kernel_args = ""

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Boots the machine (once; later calls do nothing while it runs) and waits for
        its control shell. After shutdown() it boots the same disks again."""
        if self.is_running():
            return
        hosttools.ensure(hosttools.QEMU_TOOLS)
        image = self.image
        if self.process is None:
            self.accel = _probe_accel(image)
            runs = cache_dir() / "run"
            runs.mkdir(parents=True, exist_ok=True)
            _remove_stale_runs(runs)
            self.state_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=runs))
            (self.state_dir / "xchg").mkdir()
            sock_dir = self.state_dir
            if len(str(self.state_dir / "shell.sock")) > 100:   # Unix socket paths are short
                sock_dir = Path(tempfile.mkdtemp(prefix="vmt-"))
            self.shell_socket = sock_dir / "shell.sock"
            self.qmp_socket = sock_dir / "qmp.sock"
            base, fmt = (self.backing, "qcow2") if self.backing else (image.vm_rootfs, "raw")
            self.disk = self.state_dir / "disk.qcow2"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base),
                            "-F", fmt, str(self.disk)], check=True)
        else:
            self.log(f"[{self.name}] booting again after a shutdown")
        self.log(f"[{self.name}] booting ({self.accel}, {self.cpus} vCPUs, "
                 f"{self.memory_mb} MiB, state in {self.state_dir})")
        (self.state_dir / "owner.pid").write_text(f"{os.getpid()}\n")
        self._boot(True, lambda: self.backdoor.wait_ready(BOOT_TIMEOUT))

    def _qemu_cmd(self) -> list[str]:
        """QEMU's command line as the machine is now: its forwards, disks, kernel arguments
        and TCG threads."""
        sd, image = self.state_dir, self.image
        overlay = self.disk
        fwd = "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for g, h in self.forwards.items())
        accel = ["-accel", "kvm", "-cpu", "host"] if self.accel == "kvm" else \
            ["-accel", f"tcg,thread={self.tcg_thread}", "-cpu", TCG_CPU]
        cmd = [
            "qemu-system-x86_64", "-name", f"edge-setup-vm-{self.name}", "-machine", "pc",
            *accel, "-smp", str(self.cpus), "-m", str(self.memory_mb),
            "-nodefaults", "-display", "none",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", f"root=/dev/vda rw console=ttyS0 {self.kernel_args}".rstrip(),
            "-drive", f"file={overlay},format=qcow2,if=virtio,cache=unsafe,discard=unmap",
            *[a for d in self.extra_disks for a in ("-drive", f"file={d},format=raw,if=virtio")],
            "-netdev", f"user,id=net0,restrict=on{fwd}",
            "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=shell,path={self.shell_socket},server=on,wait=off",
            "-device", "virtconsole,chardev=shell",
            "-chardev", f"file,id=serial0,path={sd / 'serial.log'},append=on",
            "-serial", "chardev:serial0",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
            "-virtfs", f"local,path={sd / 'xchg'},mount_tag=xchg,security_model=none,id=xchg",
            "-device", "virtio-rng-pci",
        ]
        return cmd

    def _launch(self) -> None:
        for sock in (self.shell_socket, self.qmp_socket):
            sock.unlink(missing_ok=True)
        self._xchg_mounted = False
        cmd = self._qemu_cmd()
        (self.state_dir / "qemu.cmdline").write_text(shlex.join(cmd) + "\n")
        self._boot_from = self._serial_size()
        with open(self.state_dir / "qemu.log", "ab") as qemu_log:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT,
                start_new_session=True)   # Ctrl-C of the harness reaches QEMU via stop()
        (self.state_dir / "qemu.pid").write_text(f"{self.process.pid}\n")
        self.backdoor = Backdoor(str(self.shell_socket), alive=self._booting_well,
                                 noise=self._console_noise)
        self.backdoor.connect()

    def _boot(self, launch: bool, wait: Callable[[], object]) -> None:
        """Launches QEMU (unless not `launch`: a reboot of the running one) and waits for
        the control shell. A kernel panic or oops on the serial console fails the boot at
        once; such a boot is tried once more, on the same disk, and the output says so."""
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                if launch:
                    self._launch()
                wait()
                break
            except ChannelError as e:
                crash = self._crash_lines()
                if not crash:
                    raise StepFailed(f"{self.name} did not boot: {e}\n{self._tail()}") from None
                report = "\n".join("  | " + line for line in crash)
                self.crashes.append(crash)
                if attempt == 2:
                    self._kill_qemu()
                    raise StepFailed(f"{self.name}: the kernel crashed while booting, twice; the "
                                     f"second time:\n{report}") from None
                how = ""
                if self.accel == "tcg" and self.tcg_thread == "multi":
                    # A crash in code the kernel patches at run time (text_poke under several
                    # emulation threads) cannot recur with one thread for all vCPUs.
                    self.tcg_thread = "single"
                    how = " with one emulation thread (-accel tcg,thread=single) from now on"
                self.log(f"!!! [{self.name}] the kernel crashed while booting "
                         f"({time.monotonic() - started:.0f}s); booting once more{how}. "
                         f"The serial console said:\n{report}")
                self._kill_qemu()
                launch = True
                wait = lambda: self.backdoor.wait_ready(BOOT_TIMEOUT)   # noqa: E731
        self.boot_seconds = time.monotonic() - started
        self.log(f"[{self.name}] control shell ready after {self.boot_seconds:.1f}s")

    def _kill_qemu(self) -> None:
        if self.backdoor:
            self.backdoor.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _serial_size(self) -> int:
        try:
            return (self.state_dir / "serial.log").stat().st_size
        except OSError:
            return 0

    def _crash_lines(self) -> list[str]:
        """The serial console's lines from a kernel panic or oops in this boot, with the
        lines before them; empty when there was none."""
        try:
            with open(self.state_dir / "serial.log", "rb") as f:
                f.seek(min(self._boot_from, self._serial_size()))
                text = f.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return []
        lines = text.splitlines()
        hit = next((i for i, line in enumerate(lines) if CRASH.search(line)), None)
        return [] if hit is None else lines[max(0, hit - 5):hit + 20]

    def _booting_well(self) -> bool:
        """What the control channel asks while it waits: QEMU runs, and the kernel has not
        crashed in this boot (then the guest never answers; waiting would take minutes)."""
        return self.is_running() and (self.backdoor is None or self.backdoor.boot_id_seen
                                      or not self._crash_lines())

    def _restarted(self, e: GuestRestarted) -> None:
        self._xchg_mounted = self._xchg_mounted and e.same_boot

    def _xchg(self) -> str:
        """Mounts the host's exchange directory (virtio 9p) in the guest; returns its path."""
        guest_dir = "/run/vmt/xchg"
        if not self._xchg_mounted:
            self.execute(f"mountpoint -q {guest_dir} || {{ mkdir -p {guest_dir} && mount -t 9p "
                         f"-o trans=virtio,version=9p2000.L,msize=1048576 xchg {guest_dir}; }}",
                         60, _quiet=True)
            self._xchg_mounted = True
        return guest_dir

    def _console_noise(self, line: bytes) -> None:
        if self.transcript:
            self.transcript("hvc0: " + line.decode(errors="replace"))

    def _ended(self) -> str:
        qemu = (self.state_dir / "qemu.log").read_text(errors="replace").strip()
        return (f"QEMU exited with status {self.process.returncode}:\n"
                + "\n".join("  | " + l for l in qemu.splitlines()[-15:]))

    def _qmp(self, command: str, **arguments) -> object:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(self.qmp_socket))
            f = s.makefile("rwb")
            f.readline()  # greeting
            for cmd, args in (("qmp_capabilities", {}), (command, arguments)):
                f.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "event" not in reply:
                        break
                if "error" in reply:
                    raise StepFailed(f"QMP {cmd}: {reply['error']}")
            return reply.get("return")

    def forward(self, guest_port: int) -> int:
        """Forwards a free port on the host's 127.0.0.1 to `guest_port` (TCP) and returns
        it. Works before and after start(); asking twice returns the same port."""
        if guest_port in self.forwards:
            return self.forwards[guest_port]
        for _ in range(5):
            host_port = free_port()
            if self.is_running():
                out = self._qmp("human-monitor-command", **{
                    "command-line": f"hostfwd_add net0 tcp:127.0.0.1:{host_port}-:{guest_port}"})
                if out:              # HMP prints nothing on success
                    self.log(f"[{self.name}] hostfwd_add: {str(out).strip()}")
                    continue
            self.forwards[guest_port] = host_port
            self.log(f"[{self.name}] forward 127.0.0.1:{host_port} -> guest port {guest_port}")
            return host_port
        raise StepFailed(f"could not forward a host port to guest port {guest_port}")

    # -- power ------------------------------------------------------------------------
    def reboot(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Reboots the guest (systemctl reboot) and waits for its shell to come back."""
        self._check_running("reboot")
        old_boot = self.backdoor.boot_id
        started = time.monotonic()
        self._boot_from = self._serial_size()
        self.backdoor.boot_id_seen = False
        self.backdoor.send_only("systemctl reboot")
        self._xchg_mounted = False
        try:
            self._boot(False, lambda: self.backdoor.wait_ready(timeout, other_than=old_boot))
        except StepFailed as e:
            raise StepFailed(f"reboot: the guest did not come back: {e}") from None
        self.log(f"  {scenario_location()} reboot: back after {time.monotonic() - started:.1f}s")

    def clone(self, name: str) -> "Machine":
        """A new machine whose disk starts as this one's, as a clone of a golden image
        would: a copy-on-write overlay on this machine's disk, which stays powered off
        (and is not changed) while clones exist. Its steps log to this machine's
        scenario; the runner stops it, with its logs in the artifacts, when the
        scenario ends."""
        if self.is_running() or self.state_dir is None:
            raise StepFailed(f"clone: {self.name} must have booted and be shut down first")
        m = Machine(f"{self.name}-{name}", memory_mb=self.memory_mb, cpus=self.cpus,
                    distro=self.distro, image=self.image, log=self.log, backing=self.disk)
        m.transcript, m.out_dir = self.transcript, self.out_dir
        self.clones.append(m)
        return m

    def snapshot(self, dest: Path) -> Path:
        """Freezes the disk as it is now into `dest` while the machine runs on: the guest's
        writes are synced, then QEMU goes on writing to a new overlay on top of the old one
        (QMP blockdev-snapshot-sync), which is `dest` from then on (a hard link: it outlives
        this machine). A machine made with `backing=dest` boots what a power cut would have
        left, with nothing unwritten (ext4 replays its journal)."""
        self._check_running("snapshot")
        self.succeed("sync")
        blocks = self._qmp("query-block")
        device = next(b["device"] for b in blocks if b.get("inserted", {}).get("file") == str(self.disk))
        new = self.disk.with_name(f"disk-{len(list(self.state_dir.glob('disk*.qcow2')))}.qcow2")
        self._qmp("blockdev-snapshot-sync", **{"device": device, "snapshot-file": str(new),
                                               "format": "qcow2"})
        frozen, self.disk = self.disk, new
        os.link(frozen, dest)
        self.log(f"  snapshot: the disk as it is now is {dest}")
        return dest

    def stop(self) -> None:
        """Ends QEMU at once (no clean shutdown) and removes the machine's state."""
        for clone in self.clones:
            clone.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.backdoor:
            self.backdoor.close()
        if self.state_dir and not self.kept:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            if self.shell_socket.parent != self.state_dir:
                shutil.rmtree(self.shell_socket.parent, ignore_errors=True)

    def keep(self) -> str:
        """Leaves the machine running after the harness exits; returns how to reach it."""
        self.kept = True
        self.release_shell()
        (self.state_dir / "kept").touch()
        fw = ", ".join(f"127.0.0.1:{h} -> guest {g}" for g, h in self.forwards.items()) or "none"
        run = Path(__file__).resolve().parent.parent / "run"
        return (f"machine {self.name} is still running (QEMU pid {self.process.pid})\n"
                f"  root shell:  {run} --attach {self.shell_socket}\n"
                f"               (or: socat - UNIX-CONNECT:{self.shell_socket})\n"
                f"  serial log:  {self.state_dir / 'serial.log'}\n"
                f"  forwards:    {fw}\n"
                f"  stop it:     kill {self.process.pid}; rm -rf {self.state_dir}")

def _alive(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process still runs."""
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _remove_stale_runs(runs: Path) -> None:
    """Cleans up after runs that were killed: ends their QEMU (unless the machine was
    kept with --keep) and removes their state directories."""
    for d in runs.iterdir():
        if d.name.startswith("ct-"):
            continue                     # a container's (vmtest.container cleans those up)
        if not (d / "qemu.pid").exists():
            # a running harness's snapshots, or a machine being set up now
            if _alive(d / "owner.pid") is None and time.time() - d.stat().st_mtime > 3600:
                shutil.rmtree(d, ignore_errors=True)
            continue
        qemu = _alive(d / "qemu.pid")
        if _alive(d / "owner.pid") is not None:
            continue                     # a running harness's machine, up or shut down
        if qemu is not None:
            if (d / "kept").exists():
                continue                 # a kept machine
            try:
                cmdline = Path(f"/proc/{qemu}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if b"edge-setup-vm-" in cmdline:   # not a recycled pid of something else
                os.kill(qemu, 15)
                time.sleep(1)
        shutil.rmtree(d, ignore_errors=True)
