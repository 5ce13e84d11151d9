#!/usr/bin/env python3
"""Builds the .deb with dpkg-deb and the .rpm with rpmbuild from what Cargo.toml's
[package.metadata.deb] and [package.metadata.generate-rpm] say (cargo-deb's and
cargo-generate-rpm's keys). Debian's dpkg-deb and RPM's rpmbuild instead of those cargo
subcommands: compiling them took minutes on every new CI machine. The Cockpit page's
package, edge-setup-cockpit, is described in the same shape by cockpit/package.toml, with
edge-setup's version ({version} in its dependencies).

    packaging/build.py deb|rpm BINARY OUTPUT
    packaging/build.py cockpit-deb|cockpit-rpm - OUTPUT

The files are taken from the checkout (run from its top); the binary from BINARY. Every
file's time is SOURCE_DATE_EPOCH if set, else the last commit's, so a package built twice
from one commit holds the same files with the same times."""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib
from pathlib import Path


def fail(message: str) -> None:
    print(f"packaging/build.py: {message}", file=sys.stderr)
    sys.exit(1)


def epoch() -> int:
    if "SOURCE_DATE_EPOCH" in os.environ:
        return int(os.environ["SOURCE_DATE_EPOCH"])
    out = subprocess.run(["git", "log", "-1", "--format=%ct"], capture_output=True, text=True)
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else 0


def expand(source: str, dest: str, binary: str) -> list[tuple[Path, str]]:
    """(file on the host, absolute path in the package) for one asset; a dest ending in /
    is a directory, a source may be a glob. The release binary comes from BINARY."""
    if source == "target/release/edge-setup":
        sources = [binary]
    else:
        sources = sorted(glob.glob(source))
    if not sources:
        fail(f"{source} matches no file (run `cargo xtask assets target/assets` first)")
    dest = "/" + dest.lstrip("/")
    if len(sources) > 1 and not dest.endswith("/"):
        fail(f"{source} matches several files but {dest} is not a directory")
    return [(Path(s), dest + Path(s).name if dest.endswith("/") else dest) for s in sources]


def stage(files: list[tuple[Path, str, int]], root: Path, mtime: int) -> None:
    for src, dest, mode in files:
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        os.chmod(target, mode)
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def deb(cargo: dict, binary: str, output: Path) -> None:
    package, meta = cargo["package"], cargo["package"]["metadata"]["deb"]
    files = [(s, d, int(mode, 8)) for source, dest, mode in meta["assets"]
             for s, d in expand(source, dest, binary)]
    licence, skip = meta["license-file"]
    text = Path(licence).read_text().splitlines(keepends=True)[int(skip):]
    mtime = epoch()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "root"
        copyright_file = Path(work) / "copyright"
        copyright_file.write_text("".join(text))
        files.append((copyright_file, f"/usr/share/doc/{package['name']}/copyright", 0o644))
        stage(files, root, mtime)
        control = root / "DEBIAN"
        control.mkdir()
        size = sum((root / d.lstrip("/")).stat().st_size for _, d, _ in files)
        long = "\n".join(" " + line for line in textwrap.wrap(meta["extended-description"], 79))
        fields = {
            "Package": package["name"],
            "Version": f"{package['version']}-{meta.get('revision', '1')}",
            "Architecture": meta.get("architecture", "amd64"),
            "Section": meta["section"],
            "Priority": meta["priority"],
            "Maintainer": meta["maintainer"],
            "Installed-Size": str((size + 1023) // 1024),
            "Depends": meta["depends"],
            "Description": f"{package['description']}\n{long}",
        }
        (control / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
        sums = "".join(f"{hashlib.md5((root / d.lstrip('/')).read_bytes()).hexdigest()}  "
                       f"{d.lstrip('/')}\n" for _, d, _ in sorted(files, key=lambda f: f[1]))
        (control / "md5sums").write_text(sums)
        for script in ("preinst", "postinst", "prerm", "postrm") if "maintainer-scripts" in meta else ():
            src = Path(meta["maintainer-scripts"]) / script
            if src.exists():
                shutil.copyfile(src, control / script)
                os.chmod(control / script, 0o755)
        for path in control.iterdir():
            os.utime(path, (mtime, mtime))
        output.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(output)],
                       check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "SOURCE_DATE_EPOCH": str(mtime)})


def rpm(cargo: dict, binary: str, output: Path) -> None:
    package, meta = cargo["package"], cargo["package"]["metadata"]["generate-rpm"]
    files = []
    for asset in meta["assets"]:
        for s, d in expand(asset["source"], asset["dest"], binary):
            files.append((s, d, int(asset["mode"], 8), asset.get("doc", False)))
    mtime = epoch()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        root = work / "root"
        stage([(s, d, m) for s, d, m, _ in files], root, mtime)
        requires = "".join(f"Requires: {name}\n" if version == "*" else f"Requires: {name} {version}\n"
                           for name, version in meta.get("requires", {}).items())
        listed = "".join(f"{'%doc ' if doc else ''}%attr({mode:o},root,root) {dest}\n"
                         for _, dest, mode, doc in files)
        scripts = ""
        for section, key in (("%post", "post_install_script"), ("%postun", "post_uninstall_script")):
            if key in meta:
                scripts += f"{section}\n{Path(meta[key]).read_text()}\n"
        description = "\n".join(textwrap.wrap(cargo["package"]["metadata"]["deb"]["extended-description"], 79))
        spec = work / "package.spec"
        spec.write_text(
            f"Name: {package['name']}\nVersion: {package['version']}\nRelease: {meta['release']}\n"
            f"Summary: {meta['summary']}\nLicense: {meta['license']}\n{requires}"
            f"%description\n{description}\n\n"
            f"%install\ncp -a {root}/. %{{buildroot}}/\n\n{scripts}"
            f"%files\n{listed}")
        defines = {
            "_topdir": str(work / "rpmbuild"),
            # gzip: the payload the RPM of CentOS 7 and Rocky Linux 8 reads
            "_binary_payload": "w9.gzdio",
            # the binary is stripped already; no debuginfo package, no build-id links
            "__os_install_post": "%{nil}",
            "debug_package": "%{nil}",
            "_build_id_links": "none",
            "source_date_epoch_from_changelog": "0",
            "use_source_date_epoch_as_buildtime": "1",
            "clamp_mtime_to_source_date_epoch": "1",
        }
        target = "noarch" if meta.get("architecture") == "noarch" else "x86_64-linux"
        command = ["rpmbuild", "-bb", "--quiet", "--target", target, str(spec)]
        for name, value in defines.items():
            command[1:1] = ["--define", f"{name} {value}"]
        subprocess.run(command, check=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(mtime)})
        built = list((work / "rpmbuild" / "RPMS").rglob("*.rpm"))
        if len(built) != 1:
            fail(f"rpmbuild made {len(built)} packages, not one: {built}")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(built[0], output)


def cockpit(cargo: dict) -> dict:
    """cockpit/package.toml with edge-setup's version, in its dependencies too."""
    page = tomllib.loads(Path("cockpit/package.toml").read_text())
    version = cargo["package"]["version"]
    page["package"]["version"] = version
    meta = page["package"]["metadata"]
    meta["deb"]["depends"] = meta["deb"]["depends"].format(version=version)
    requires = meta["generate-rpm"]["requires"]
    for name in requires:
        requires[name] = requires[name].format(version=version)
    return page


def main() -> None:
    kinds = ("deb", "rpm", "cockpit-deb", "cockpit-rpm")
    if len(sys.argv) != 4 or sys.argv[1] not in kinds:
        fail("usage: packaging/build.py deb|rpm BINARY OUTPUT, or cockpit-deb|cockpit-rpm - OUTPUT")
    kind, binary, output = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    cargo = tomllib.loads(Path("Cargo.toml").read_text())
    if kind.startswith("cockpit-"):
        cargo, kind = cockpit(cargo), kind.removeprefix("cockpit-")
    (deb if kind == "deb" else rpm)(cargo, binary, output)


if __name__ == "__main__":
    main()
