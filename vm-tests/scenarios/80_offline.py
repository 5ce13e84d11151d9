"""Scenario 8, offline install: `edge-setup vnc bundle DIR` on the host (Debian 12 with a
network, like the guest) downloads every package with its dependencies; on a fresh guest
with no package source at all (its offline repository, source list and apt lists removed),
`edge-setup vnc --offline DIR` installs from those files, and a user's session starts."""

import subprocess
import tempfile
from pathlib import Path

from vmtest import edge_setup_binary
from vmtest.edge import install_package, wait_for_desktop

FRESH_MACHINE = True


def test(machine):
    with tempfile.TemporaryDirectory(prefix="vmt-bundle-") as tmp:
        bundle = Path(tmp) / "bundle"
        # The host's package lists must be current for `apt-get download`.
        subprocess.run(["apt-get", "-q", "update"], check=True, capture_output=True)
        r = subprocess.run([str(edge_setup_binary()), "vnc", "bundle", str(bundle)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        (machine.out_dir / "bundle.txt").write_text(r.stdout)
        assert r.returncode == 0, f"edge-setup vnc bundle failed on the host:\n{r.stdout}"
        debs = sorted(bundle.glob("*.deb"))
        print(f"    bundle: {len(debs)} packages, "
              f"{sum(d.stat().st_size for d in debs) // (1024 * 1024)} MiB")
        install_package(machine)
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
