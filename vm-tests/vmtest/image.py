"""The guest images, one per Debian release: what goes into them, and their cache.

An image is built by ../image/build.sh and cached in ``$EDGE_SETUP_VM_CACHE``
(default /var/cache/edge-setup-vm) under ``images/<key>/``, where the key is a hash of the
recipe: the package lists below, the suite, and the content of every file in ../image/.
Changing any of them builds a new image; older images of the same release are removed
after a successful build.
"""

from __future__ import annotations

import fcntl
import functools
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
# What `edge-setup vnc` installs on Debian (src/vnc/package_set.rs; sudo is in the image already).
VNC_PACKAGES = [
    "tigervnc-standalone-server", "tigervnc-tools", "tigervnc-common",
    "fluxbox", "xterm", "firefox-esr", "xauth", "dbus-x11", "x11-xserver-utils",
    "x11-utils", "xfonts-base",
]
OFFLINE_REPO_PACKAGES = VNC_PACKAGES + ["sudo", "firewalld", "cloud-guest-utils", "network-manager"]



# cloud-init and an SSH server for the golden-image scenario (95_first_boot), which
# prepares a machine as a golden image and boots clones of it with cloud-init seeds, and
# python3-apt for the fleet scenario (96_fleet), whose role installs the package with
# Ansible's apt module on two clones. Installed in the image, not from the offline
# repository in the scenario: under TCG that install took 182 s of CI's time, at every
# run. They run on bookworm only, so the other releases' images do not carry them; on the
# other bookworm scenarios' machines cloud-init finds no data source and stays disabled.
# python3-cffi-backend is named for debootstrap, whose resolver knows no virtual packages:
# it provides the python3-cffi-backend-api-* that python3-cryptography needs.
FIRST_BOOT_PACKAGES = ["cloud-init", "openssh-server", "python3-apt", "python3-cffi-backend"]


def base_packages(suite: str) -> list[str]:
    """What `suite`'s image has installed (debootstrap --include)."""
    return BASE_PACKAGES + FIRST_BOOT_PACKAGES if suite == "bookworm" else BASE_PACKAGES


# Cockpit, the web console, for the web console scenario (19_web_console): Debian 12's
# Cockpit 287 from the release's archive, as an appliance installs it for the page
# edge-setup-cockpit (which depends on cockpit-system); cockpit-ws serves it on 9090.
# Bookworm's only: the scenario runs there alone.
COCKPIT_PACKAGES = ["cockpit-ws", "cockpit-system", "cockpit-bridge"]


def repo_packages(suite: str) -> list[str]:
    """The offline repository's packages for `suite`, as edge-setup asks for them there:
    bullseye's TigerVNC 1.11 has tigervncpasswd in tigervnc-common, no tigervnc-tools;
    bookworm's also has Cockpit."""
    if suite == "bullseye":
        return [p for p in OFFLINE_REPO_PACKAGES if p != "tigervnc-tools"]
    if suite == "bookworm":
        return OFFLINE_REPO_PACKAGES + COCKPIT_PACKAGES
    return OFFLINE_REPO_PACKAGES


# The Debian releases the suite runs on, oldest first: TigerVNC 1.11, 1.12 and 1.15.
DISTROS = ("bullseye", "bookworm", "trixie")
DEFAULT_DISTRO = "bookworm"
MIRROR = os.environ.get("EDGE_SETUP_VM_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = os.environ.get(
    "EDGE_SETUP_VM_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
DISK_FREE_MB = 3072

RECIPE_DIR = Path(__file__).resolve().parent.parent / "image"


def vm_preinstalled(suite: str) -> list[str]:
    """The packages whose dependencies the VMs' root file system has installed, though not
    the packages themselves: the VNC package set's 230-odd libraries, icon themes and fonts
    (every one of them without a system service). Under TCG, unpacking and configuring them
    was 260-400 s of each release's VM smoke at every run, emulated work that proves nothing
    a container does not: the containers, booted from the image without them, install the
    whole set per release at native speed. The VMs still install the set itself with
    `edge-setup vnc` (TigerVNC, fluxbox, xterm, firefox-esr, ...: apt, dpkg, the offline
    repository) and then prove what needs their own kernel."""
    return [p for p in VNC_PACKAGES if p in repo_packages(suite)]


def security_mirror(suite: str) -> str:
    """The release's security archive, or "" for none: bullseye-security lists updates
    (firefox-esr 140.14) that its pool no longer serves (404 here), so bullseye's image
    takes the release's last point release only."""
    return "" if suite == "bullseye" else SECURITY_MIRROR


def cache_dir() -> Path:
    return Path(os.environ.get("EDGE_SETUP_VM_CACHE", "/var/cache/edge-setup-vm"))


@dataclass(frozen=True)
class Image:
    dir: Path

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs.img"

    @property
    def vm_rootfs(self) -> Path:
        """The VMs' root file system: `rootfs` with `vm_preinstalled`'s dependencies."""
        return self.dir / "rootfs-vm.img"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    def manifest(self) -> dict[str, str]:
        lines = (self.dir / "manifest").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


@functools.cache
def recipe_key(suite: str) -> str:
    """Hash of everything that decides the image's content."""
    h = hashlib.sha256()
    h.update(repr((suite, base_packages(suite), repo_packages(suite), vm_preinstalled(suite),
                   DISK_FREE_MB)).encode())
    for path in sorted(RECIPE_DIR.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(RECIPE_DIR)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def is_built(suite: str) -> bool:
    """Whether `suite`'s image for the current recipe is in the cache (a build is done)."""
    return (cache_dir() / "images" / recipe_key(suite) / "manifest").exists()


def get_image(suite: str = DEFAULT_DISTRO, rebuild: bool = False) -> Image:
    """Returns the cached image of `suite` for the current recipe, building it first if needed."""
    if suite not in DISTROS:
        raise SystemExit(f"unknown distribution {suite}: the suite knows {', '.join(DISTROS)}")
    images = cache_dir() / "images"
    images.mkdir(parents=True, exist_ok=True)
    key = recipe_key(suite)
    image = Image(images / key)
    # One build per release at a time (others wait and reuse it); releases build in parallel.
    with open(images / f".lock-{suite}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild and image.dir.exists():
            shutil.rmtree(image.dir)
        if not (image.dir / "manifest").exists():
            _build(image, suite)
            for old in images.iterdir():
                if old.name.startswith(".") or not old.is_dir():
                    continue
                # images from before the suite was recorded were all bookworm's
                recorded = (old / "suite").read_text().strip() if (old / "suite").exists() else "bookworm"
                if old.name != key and recorded == suite:
                    print(f"[image] removing old {suite} image {old}", flush=True)
                    shutil.rmtree(old, ignore_errors=True)
    return image


def _build(image: Image, suite: str) -> None:
    hosttools.ensure(hosttools.IMAGE_TOOLS)
    # build.sh works beside its output: a directory of this release's own, so that a
    # build of another release running now is not taken for a stale one
    work = image.dir.parent / f".build-{suite}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    tmp = work / image.dir.name
    print(f"[image] building the {suite} image {image.dir} (this takes several minutes)", flush=True)
    started = time.monotonic()
    env = dict(
        os.environ,
        OUT=str(tmp),
        BASE_PACKAGES=",".join(base_packages(suite)),
        REPO_PACKAGES=" ".join(repo_packages(suite)),
        VM_PREINSTALL_DEPENDENCIES_OF=" ".join(vm_preinstalled(suite)),
        SUITE=suite, MIRROR=MIRROR, SECURITY_MIRROR=security_mirror(suite),
        DISK_FREE_MB=str(DISK_FREE_MB),
        GUEST_FILES=str(RECIPE_DIR / "guest"),
    )
    # Lines prefixed with the release: other releases' builds and scenarios may print
    # at the same time (vm-tests/run -j).
    build = subprocess.Popen(["bash", str(RECIPE_DIR / "build.sh")], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace")
    for line in build.stdout:
        print(f"[image {suite}] {line.rstrip()}", flush=True)
    r = build.wait()
    if r != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(f"the {suite} image build failed (exit {r})")
    # The image is shared by all runs; overlays must never write to it.
    for rootfs in (tmp / "rootfs.img", tmp / "rootfs-vm.img"):
        rootfs.chmod(0o444)
    (tmp / "suite").write_text(suite + "\n")
    tmp.rename(image.dir)
    shutil.rmtree(work, ignore_errors=True)
    print(f"[image] built in {time.monotonic() - started:.0f}s", flush=True)
