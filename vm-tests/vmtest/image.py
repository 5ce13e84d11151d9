"""The guest image: what goes into it, and its cache.

The image is built by ../image/build.sh and cached in ``$EDGE_SETUP_VM_CACHE``
(default /var/cache/edge-setup-vm) under ``images/<key>/``, where the key is a hash of the
recipe: the package lists below, the suite, and the content of every file in ../image/.
Changing any of them builds a new image; older images are removed after a successful build.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import hosttools

# Installed in the image (on top of debootstrap --variant=minbase).
BASE_PACKAGES = [
    "systemd-sysv", "udev", "dbus", "linux-image-amd64", "kmod", "iproute2", "procps",
    "sudo", "ca-certificates", "fdisk", "e2fsprogs",
]

# Packages that edge-setup installs on the appliance. Their .debs, with every dependency
# (and recommended package) missing from the image, are put in the guest's offline
# repository /var/local/edge-repo, the guest's only apt source. Add to this list when
# edge-setup installs something new.
OFFLINE_REPO_PACKAGES = [
    "tigervnc-standalone-server", "tigervnc-tools", "tigervnc-common",
    "fluxbox", "xterm", "firefox-esr", "xauth", "dbus-x11", "x11-xserver-utils",
    "x11-utils", "xfonts-base", "sudo", "firewalld", "cloud-guest-utils", "network-manager",
]

SUITE = "bookworm"
MIRROR = os.environ.get("EDGE_SETUP_VM_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get(
    "EDGE_SETUP_VM_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
DISK_FREE_MB = 3072

RECIPE_DIR = Path(__file__).resolve().parent.parent / "image"


def cache_dir() -> Path:
    return Path(os.environ.get("EDGE_SETUP_VM_CACHE", "/var/cache/edge-setup-vm"))


@dataclass(frozen=True)
class Image:
    dir: Path

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs.img"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    def manifest(self) -> dict[str, str]:
        lines = (self.dir / "manifest").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


def recipe_key() -> str:
    """Hash of everything that decides the image's content."""
    h = hashlib.sha256()
    h.update(repr((SUITE, BASE_PACKAGES, OFFLINE_REPO_PACKAGES, DISK_FREE_MB)).encode())
    for path in sorted(RECIPE_DIR.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(RECIPE_DIR)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def get_image(rebuild: bool = False) -> Image:
    """Returns the cached image for the current recipe, building it first if needed."""
    images = cache_dir() / "images"
    images.mkdir(parents=True, exist_ok=True)
    key = recipe_key()
    image = Image(images / key)
    with open(images / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; others wait and reuse it
        if rebuild and image.dir.exists():
            shutil.rmtree(image.dir)
        if not (image.dir / "manifest").exists():
            _build(image)
            for old in images.iterdir():
                if old.is_dir() and old.name != key:
                    print(f"[image] removing old image {old}", flush=True)
                    shutil.rmtree(old, ignore_errors=True)
    return image


def _build(image: Image) -> None:
    hosttools.ensure(hosttools.IMAGE_TOOLS)
    tmp = image.dir.with_name(image.dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for stale in image.dir.parent.glob("build.*"):
        shutil.rmtree(stale, ignore_errors=True)
    print(f"[image] building {image.dir} (this takes several minutes)", flush=True)
    started = time.monotonic()
    env = dict(
        os.environ,
        OUT=str(tmp),
        BASE_PACKAGES=",".join(BASE_PACKAGES),
        REPO_PACKAGES=" ".join(OFFLINE_REPO_PACKAGES),
        SUITE=SUITE, MIRROR=MIRROR, SECURITY_MIRROR=SECURITY_MIRROR,
        DISK_FREE_MB=str(DISK_FREE_MB),
        GUEST_FILES=str(RECIPE_DIR / "guest"),
    )
    r = subprocess.run(["bash", str(RECIPE_DIR / "build.sh")], env=env)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"image build failed (exit {r.returncode})")
    # The image is shared by all runs; overlays must never write to it.
    (tmp / "rootfs.img").chmod(0o444)
    tmp.rename(image.dir)
    print(f"[image] built in {time.monotonic() - started:.0f}s", flush=True)
