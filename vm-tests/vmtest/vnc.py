"""vncdotool, a real VNC client, from a virtual environment the harness makes once."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from . import hosttools
from .image import cache_dir

# vncdotool 1.4 exits with status 3 on a bad password (1.2 exits with 0).
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-vnc.txt"


def venv_dir() -> Path:
    return cache_dir() / "venv"


_venv_lock = threading.Lock()   # scenarios run in parallel (vm-tests/run -j)


def vncdo_path() -> Path:
    with _venv_lock:
        return _vncdo_path()


def _vncdo_path() -> Path:
    return hosttools.venv(venv_dir(), REQUIREMENTS) / "bin" / "vncdo"


def vncdo(host: str, port: int, password: str | None, args: list[str],
          timeout: float = 120) -> tuple[int, str]:
    """Runs `vncdo -s HOST::PORT [-p PASSWORD] ARGS...`; returns (exit status, output)."""
    cmd = [str(vncdo_path()), "-s", f"{host}::{port}"]
    if password is not None:
        cmd += ["-p", password]
    try:
        r = subprocess.run(cmd + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout,
                           env=dict(os.environ, PYTHONWARNINGS="ignore"))
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out + f"\nvncdo timed out after {timeout:.0f}s"
    return r.returncode, r.stdout
