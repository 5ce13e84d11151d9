"""Host side of the guest's root shell on the virtio console (see ../image/guest/vmt-backdoor).

QEMU exposes the guest's /dev/hvc0 as a Unix socket. The host sends one line per command,
"@@VMT-RUN <id> <timeout> <base64 command>", and reads back "@@VMT-OUT <id> <base64 output>"
and "@@VMT-END <id> <status>". Each boot of the guest announces "@@VMT-READY <boot id>".
Commands and outputs are base64 encoded, so any bytes pass; the ids keep a late answer to an
abandoned command from being taken for the answer to a newer one.
"""

from __future__ import annotations

import base64
import itertools
import os
import select
import socket
import time
from typing import Callable


class ChannelError(Exception):
    """The control channel broke: the machine stopped, or the guest restarted mid-command."""


class GuestRestarted(ChannelError):
    def __init__(self, boot_id: str, same_boot: bool):
        super().__init__("the guest's control shell restarted" if same_boot
                         else "the guest rebooted")
        self.boot_id = boot_id
        self.same_boot = same_boot


class ChannelTimeout(ChannelError):
    pass


class Backdoor:
    def __init__(self, path: str, alive: Callable[[], bool] = lambda: True,
                 noise: Callable[[bytes], None] | None = None):
        self.path = path
        self.alive = alive          # is the QEMU process still there?
        self.noise = noise          # receives lines that are not part of the protocol
        self.sock: socket.socket | None = None
        self.buf = b""
        self.boot_id: str | None = None
        self.boot_id_seen = False   # a READY line came since the last boot began
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}x{int(time.time()) % 100000:x}x"

    # -- connection -------------------------------------------------------------------
    def connect(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                self.sock = s
                return
            except OSError:
                s.close()
                if not self.alive():
                    raise ChannelError("QEMU exited before its console socket opened")
                if time.monotonic() > deadline:
                    raise ChannelError(f"cannot connect to {self.path}")
                time.sleep(0.05)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _fill(self, deadline: float) -> bool:
        """Reads more bytes into the buffer; False when the deadline passed first."""
        while True:
            if self.sock is None:
                self.connect()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], min(remaining, 1.0))
            if not ready:
                if not self.alive():
                    raise ChannelError("the machine stopped")
                continue
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if data:
                self.buf += data
                return True
            # QEMU dropped the connection: reconnect while it still runs.
            self.close()
            if not self.alive():
                raise ChannelError("the machine stopped")
            time.sleep(0.2)

    def _line(self, deadline: float) -> bytes | None:
        while b"\n" not in self.buf:
            if not self._fill(deadline):
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def _send(self, data: bytes) -> None:
        if self.sock is None:
            self.connect()
        self.sock.sendall(data)

    # -- protocol ---------------------------------------------------------------------
    def _handle_noise(self, line: bytes) -> None:
        if self.noise and line.strip():
            self.noise(line)

    def wait_ready(self, timeout: float, other_than: str | None = None) -> str:
        """Waits for the guest shell to announce a boot (a boot other than `other_than`)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(deadline)
            if line is None:
                raise ChannelTimeout(f"the guest shell did not come up within {timeout:.0f}s")
            if line.startswith(b"@@VMT-READY "):
                boot = line.split()[1].decode()
                if boot != other_than:
                    self.boot_id = boot
                    self.boot_id_seen = True
                    return boot
            elif not line.startswith(b"@@VMT-"):
                self._handle_noise(line)

    def run(self, command: str, timeout: float) -> tuple[int, bytes]:
        """Runs `command` with bash in the guest; returns (exit status, stdout+stderr).

        The guest kills the command after `timeout` seconds (status 124, or 137 if it had to
        use SIGKILL); the host gives up 30 s later if the guest does not answer at all.
        """
        cid = f"{self._prefix}{next(self._ids)}"
        encoded = base64.b64encode(command.encode()).decode()
        limit = max(1, int(timeout + 0.999))
        self._send(f"@@VMT-RUN {cid} {limit} {encoded}\n".encode())
        deadline = time.monotonic() + limit + 30
        output: bytes | None = None
        while True:
            line = self._line(deadline)
            if line is None:
                raise ChannelTimeout(f"no answer from the guest within {limit + 30}s")
            if line.startswith(b"@@VMT-OUT "):
                parts = line.split(b" ", 2)
                if parts[1].decode() == cid:
                    output = base64.b64decode(parts[2] if len(parts) > 2 else b"")
            elif line.startswith(b"@@VMT-END "):
                parts = line.split()
                if parts[1].decode() == cid:
                    return int(parts[2]), output or b""
            elif line.startswith(b"@@VMT-READY "):
                boot = line.split()[1].decode()
                same = boot == self.boot_id
                self.boot_id = boot
                raise GuestRestarted(boot, same)
            else:
                self._handle_noise(line)

    def send_only(self, command: str, timeout: float = 60) -> None:
        """Starts a command without waiting for its answer (for reboot and poweroff)."""
        cid = f"{self._prefix}{next(self._ids)}"
        encoded = base64.b64encode(command.encode()).decode()
        self._send(f"@@VMT-RUN {cid} {int(timeout)} {encoded}\n".encode())
