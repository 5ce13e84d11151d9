"""Scenario 8, offline install, on each release: `edge-setup vnc bundle DIR` runs on the
host in a root file system of the guest's release with Debian's archive as its source
(`vmtest.release_root`: the guest image under an overlay, the package under test unpacked),
as an operator runs it on a machine of the appliance's release with a network; it downloads
every package with its dependencies. On a fresh guest with no package source at all (its
offline repository, source list and apt lists removed), `edge-setup vnc --offline DIR`
installs from those files, a second run changes nothing, and a user's session starts."""

import subprocess
import time

from vmtest import edge_setup_deb
from vmtest.edge import install_package, wait_for_desktop
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15
from vmtest.release_root import release_root

# Where it runs: apt and dpkg from the bundle: the release's own tools at native speed.
KINDS = ("container",)

FRESH_MACHINE = True


def test(machine):
    deb = edge_setup_deb()
    started = time.monotonic()
    with release_root(machine.distro, deb) as root:
        r = subprocess.run(["chroot", str(root), "/usr/bin/edge-setup", "vnc", "bundle", "/srv/bundle"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        (machine.out_dir / "bundle.txt").write_text(r.stdout)
        assert r.returncode == 0, f"edge-setup vnc bundle failed on {machine.distro}:\n{r.stdout}"
        bundle = root / "srv/bundle"
        debs = sorted(bundle.glob("*.deb"))
        machine.log(f"    bundle on {machine.distro}: {len(debs)} packages, "
                    f"{sum(d.stat().st_size for d in debs) // (1024 * 1024)} MiB, "
                    f"{time.monotonic() - started:.0f}s with the root's apt-get update")
        install_package(machine, deb)
        machine.copy_in(bundle, "/srv/bundle")

    # No package source left in the guest.
    machine.succeed("rm -rf /etc/apt/sources.list /etc/apt/sources.list.d/* /var/lib/apt/lists/* "
                    "/var/local/edge-repo /var/cache/apt/archives/*.deb")
    machine.succeed("test -z \"$(apt-get indextargets)\"")
    machine.fail("apt-get install -s xterm")

    machine.succeed("edge-setup config set vnc.listen lan")
    out = machine.succeed("edge-setup vnc --offline /srv/bundle 2>&1", timeout=1800)
    (machine.out_dir / "vnc-offline.txt").write_text(out)
    for pkg in ("tigervnc-standalone-server", "fluxbox", "xterm", "firefox-esr", "xfonts-base"):
        machine.succeed(f"dpkg-query -W -f '${{Status}}' {pkg} | grep -qx 'install ok installed'")
    machine.succeed("dpkg --audit | grep -c . | grep -qx 0 || test -z \"$(dpkg --audit)\"")
    out = machine.succeed("edge-setup vnc --offline /srv/bundle 2>&1", timeout=600)
    assert "Nothing to change" in out, out

    machine.succeed("useradd -m -s /bin/bash admin")
    machine.succeed("printf 'secret12\\n\\n' | edge-setup vnc-user --user admin --password-stdin 2>&1",
                    timeout=300)
    machine.wait_for_unit("tigervncserver@:1.service", timeout=180)
    machine.wait_for_open_port(5901, timeout=120)
    wait_for_desktop(machine, 5901, "secret12", "admin-desktop.png")
