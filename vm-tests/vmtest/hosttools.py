"""Host tools the harness needs, installed with apt-get when missing (CI runs as root)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

# command -> Debian package that provides it
QEMU_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils"}
IMAGE_TOOLS = {
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "dpkg-scanpackages": "dpkg-dev",
}

_updated = False
# Scenarios run in parallel (vm-tests/run -j): one apt-get at a time.
_lock = threading.RLock()


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def apt_install(packages: list[str]) -> None:
    with _lock:
        _apt_install(packages)


def _apt_install(packages: list[str]) -> None:
    global _updated
    if os.geteuid() != 0:
        raise SystemExit(f"missing host packages {packages}: run as root or install them")
    print(f"[host] installing {' '.join(packages)} with apt-get", flush=True)
    if not _updated:
        r = _apt_get("update")
        if r.returncode != 0:
            raise SystemExit(f"apt-get update failed:\n{r.stdout}")
        _updated = True
    r = _apt_get("install", "--no-install-recommends", *packages)
    if r.returncode != 0 and "qemu-utils" in packages:
        # Some machine images carry a backported qemu-utils that Breaks the stable
        # qemu-system-x86: take both from the stable suite.
        pkgs = [p + "/bookworm" if p == "qemu-utils" else p for p in packages]
        r = _apt_get("install", "--no-install-recommends", "--allow-downgrades", *pkgs)
    if r.returncode != 0:
        raise SystemExit(f"apt-get install {' '.join(packages)} failed:\n{r.stdout[-4000:]}")


def venv(path: Path, requirements: Path) -> Path:
    """A virtual environment at `path` with `requirements` installed from PyPI, made
    again only when the file's content changed. The caller serializes calls."""
    marker = path / ".installed"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text() == wanted:
        return path
    print(f"[host] installing {requirements.name} into {path}", flush=True)
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    if subprocess.run([python, "-c", "import ensurepip, venv"], capture_output=True).returncode:
        apt_install(["python3-venv"])
    subprocess.run([python, "-m", "venv", "--clear", str(path)], check=True)
    r = subprocess.run([str(path / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        "-r", str(requirements)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"pip install -r {requirements} failed:\n{r.stdout[-3000:]}")
    marker.write_text(wanted)
    return path


def ensure(tools: dict[str, str]) -> None:
    with _lock:
        _ensure(tools)


def _ensure(tools: dict[str, str]) -> None:
    missing = sorted({pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None})
    if "qemu-system-x86" in missing or "qemu-utils" in missing:
        # Both come from the same source package and must have the same version.
        missing = sorted(set(missing) | {"qemu-system-x86", "qemu-utils"})
    if missing:
        apt_install(missing)
