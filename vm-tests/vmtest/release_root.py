"""A root file system of a guest's release on the host, with Debian's archive as its apt
source: for what must run on the guest's release with a network (`edge-setup vnc bundle`
for an appliance that has none). The guests never get a network; this runs on the host.

It is the release's guest image, read-only, under an overlay, with the package of
edge-setup under test unpacked into it; `chroot` runs commands in it.

`image_tree` is the same overlay alone (no network, nothing mounted inside): an image tree
to build an appliance image in on the host, and `make_rootfs` makes a raw ext4 disk of it
as image/build.sh makes the release's.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .image import MIRROR, cache_dir, get_image, security_mirror


def _sources(suite: str) -> str:
    """Debian's archive for the release, as the image build uses it."""
    text = (f"Types: deb\nURIs: {MIRROR}\nSuites: {suite} {suite}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    if security_mirror(suite):
        text += (f"\nTypes: deb\nURIs: {security_mirror(suite)}\nSuites: {suite}-security\n"
                 "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return text


def _run(*cmd: str) -> str:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with status {r.returncode}:\n{r.stdout[-3000:]}")
    return r.stdout


@contextmanager
def image_tree(suite: str) -> Iterator[Path]:
    """A writable root file system of the release's guest image on the host: the image the
    containers boot (rootfs.img), read-only, under an overlay of its own; yields its root.
    Everything written there is gone afterwards. Mounting it takes a hundredth of a second,
    where `cp -a` of bookworm's image (1.7 GB) took 7 s, and 21 s from a cold page cache."""
    image = get_image(suite)
    parent = cache_dir() / "roots"
    parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"{suite}-", dir=parent))
    lower, upper, work, root = (base / d for d in ("lower", "upper", "work", "root"))
    for d in (lower, upper, work, root):
        d.mkdir()
    mounted: list[Path] = []
    try:
        _run("mount", "-o", "loop,ro", str(image.rootfs), str(lower))
        mounted.append(lower)
        _run("mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={upper},workdir={work}", str(root))
        mounted.append(root)
        yield root
    finally:
        _unmount(mounted)
        shutil.rmtree(base, ignore_errors=True)


def _unmount(mounted: list[Path]) -> None:
    for m in reversed(mounted):
        if subprocess.run(["umount", str(m)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(m)], capture_output=True)


def make_rootfs(tree: Path, dest: Path, free_mb: int = 256) -> int:
    """A raw ext4 image of `tree` at `dest`, made as image/build.sh makes rootfs.img
    (`mkfs.ext4 -d`, label root, 1.2 times the tree's size) but with `free_mb` free: a
    container boots it read-only under an overlay of its own. Returns its size in MB."""
    used_mb = int(_run("du", "-sm", str(tree)).split()[0])
    size_mb = used_mb * 12 // 10 + free_mb
    _run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(dest), f"{size_mb}M")
    return size_mb


@contextmanager
def release_root(suite: str, deb: Path) -> Iterator[Path]:
    """Yields the root directory; everything written there is gone afterwards."""
    with image_tree(suite) as root:
        mounted: list[Path] = []
        try:
            for fs in ("proc", "sys", "dev", "dev/pts"):
                _run("mount", "--bind", f"/{fs}", str(root / fs))
                mounted.append(root / fs)
            # the host's name server, Debian's archive instead of the guest's offline repository
            (root / "etc/resolv.conf").unlink(missing_ok=True)
            shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
            for f in (root / "etc/apt/sources.list.d").iterdir():
                f.unlink()
            (root / "etc/apt/sources.list.d/debian.sources").write_text(_sources(suite))
            _run("chroot", str(root), "apt-get", "-q", "update")
            _run("dpkg-deb", "-x", str(deb), str(root))
            yield root
        finally:
            _unmount(mounted)
