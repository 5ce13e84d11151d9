"""Images built offline boot complete (issue 29). An appliance image is built on the host, in
a writable tree of the release's guest image (no VNC packages; its only package source the
harness's offline repository), with the package installed and `edge-setup --root TREE`:
`vnc` does in the tree what can be done offline (the VNC packages installed by the image's
own apt in a chroot, from the image's package source on bookworm and from `--offline DIR`,
a directory on the build host, on trixie; the group vncusers), `vnc-user` enables each
user's session in the image (`systemctl --root`) and leaves its start to the first boot
(`first_boot_commands`, /var/lib/edge-setup/first-boot.pending); the agent's URL, an
answers file for the site, a second `vnc` that changes nothing, `image prepare`. The tree
becomes a raw ext4 disk (`mkfs.ext4 -d`, without the package source: a clone can install
nothing), and two containers boot that disk at once, with no cloud-init data. On each clone
the first boot succeeds, TigerVNC and the group are there, both users' sessions run and
take their own passwords from a real VNC client and refuse the other user's, the clone has a
machine ID and a device ID of its own, nothing is left pending, and the site's answers set
the agent's URL. The host steps' times and each first boot's (from the journal) are printed."""

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vmtest import edge_setup_deb
from vmtest.edge import USERS
from vmtest.image import cache_dir
from vmtest.release_root import image_tree, make_rootfs

# Where it runs: the image is built on the host; its clones need units, sessions and a VNC
# client, no kernel of their own (95_first_boot boots clones of a disk in VMs).
KINDS = ("container",)
# bookworm: the packages from the image's own package source; trixie: from `--offline DIR`.
DISTROS = ("bookworm", "trixie")
# Its machine never boots: the clones boot the disk built here (machine.from_rootfs).
FRESH_MACHINE = True

UNIT = "edge-setup-firstboot.service"
PENDING = "var/lib/edge-setup/first-boot.pending"
AGENT = "usr/edge/properties/edge-agent/remote-connectivity.properties"
# The image's package source (vmtest/image.py): every .deb the VNC package set needs.
REPO = "var/local/edge-repo"
# The site's answers, applied by each clone's first boot; the guests have no name server.
SITE_URL = "https://site.example.com"
ANSWERS = f'[agent]\nurl = "{SITE_URL}"\nforce = true\n'
# Package managers and what `vnc` must not leave to the target when it can do it in the image.
OFFLINE_WORK = re.compile(r"\b(apt-get|apt|dpkg|dnf|yum|rpm|groupadd)\b")
# systemd's catalog: a unit's job started ("Starting ...") and done ("Finished ..." for a oneshot).
UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"


def host(machine, *cmd) -> str:
    """A command on the host; raises with its output when it fails."""
    r = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if machine.transcript:
        machine.transcript(f"[host] $ {shlex.join(str(c) for c in cmd)}: exit {r.returncode}\n{r.stdout}")
    assert r.returncode == 0, f"`{shlex.join(str(c) for c in cmd)}` exited with {r.returncode}:\n{r.stdout}"
    return r.stdout


def edge_setup(machine, exe: Path, tree: Path, tag: str, *args: str, stdin: str = "") -> str:
    """`edge-setup --root TREE ARGS` on the host; stdout and stderr saved as the artifact
    TAG.txt (and in commands.log). Returns stdout; raises when it exits with a status other than 0."""
    cmd = [str(exe), "--root", str(tree), *args]
    started = time.monotonic()
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - started
    record = f"$ {shlex.join(cmd)}\nexit {r.returncode}, {took:.1f}s\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"
    (machine.out_dir / f"{tag}.txt").write_text(record)
    if machine.transcript:
        machine.transcript(f"[host] {record}")
    machine.log(f"  [host] edge-setup --root TREE {' '.join(args)} -> {r.returncode} ({took:.1f}s)")
    assert r.returncode == 0, f"edge-setup --root TREE {' '.join(args)} exited with {r.returncode}:\n{r.stderr}\n{r.stdout}"
    return r.stdout


def edge_setup_json(machine, exe: Path, tree: Path, tag: str, *args: str, stdin: str = "") -> dict:
    return json.loads(edge_setup(machine, exe, tree, tag, "--json", *args, stdin=stdin))


def shown(out: dict) -> str:
    """What an assertion on a run's JSON shows of it (the whole output is its artifact)."""
    keys = ("changed", "result", "target_commands", "first_boot_commands", "notes", "warnings", "error")
    return json.dumps({k: out[k] for k in keys if k in out}, indent=1)


def dpkg_status(tree: Path, package: str) -> str | None:
    """The package's Status in the tree's dpkg database (None: not there)."""
    for stanza in (tree / "var/lib/dpkg/status").read_text().split("\n\n"):
        lines = stanza.strip().splitlines()
        if f"Package: {package}" in lines:
            return next((line[len("Status: "):] for line in lines if line.startswith("Status: ")), None)
    return None


def left_on_host(tree: Path) -> list[str]:
    """What a build step left behind on the host: mounts below the tree (mountinfo's fifth
    field) and processes whose root is the tree (a service a package's script started)."""
    left = [f"mount {line.split()[4]}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(f"{tree}/")]
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "root") == str(tree):
                left.append(f"process {proc.name}: "
                            + (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass                # gone, or a kernel thread
    return left


def text_of(path: Path) -> str:
    return path.read_text() if path.exists() else f"({path} does not exist)"


def build_image(machine, tree: Path, work: Path, times: dict[str, float]) -> None:
    """The package, the users and edge-setup's image mode in the tree; each part's time into `times`."""
    started = time.monotonic()
    # The release's own dpkg in a chroot; the package's postinst only refreshes a sudoers
    # rule that exists (none yet) and starts nothing.
    deb = edge_setup_deb()
    shutil.copy(deb, tree / "tmp" / deb.name)
    host(machine, "chroot", tree, "dpkg", "-i", f"/tmp/{deb.name}")
    (tree / "tmp" / deb.name).unlink()
    for user in USERS:
        # Debian has a system group "operator": that user gets the default group, as in 10_vnc
        exists = re.search(rf"^{user}:", (tree / "etc/group").read_text(), re.M)
        host(machine, "useradd", "--root", tree, "-m", "-s", "/bin/bash", *(["-N"] if exists else []), user)
    # The host runs the package's own binary: the one each clone's first boot runs.
    exe = work / "edge-setup"
    shutil.copy2(tree / "usr/bin/edge-setup", exe)
    times["package and users"] = time.monotonic() - started

    started = time.monotonic()
    edge_setup(machine, exe, tree, "config", "config", "set", "vnc.listen", "lan")
    # bookworm: the image's own source (the offline repository) through its apt in a chroot;
    # trixie: that repository as a directory on the build host, as a bundle is.
    offline = ("--offline", str(tree / REPO)) if machine.distro == "trixie" else ()
    vnc = edge_setup_json(machine, exe, tree, "vnc", "vnc", *offline)
    times["edge-setup vnc"] = time.monotonic() - started
    assert vnc["changed"], shown(vnc)
    left = [c for c in vnc.get("target_commands", []) if OFFLINE_WORK.search(c)]
    assert not left, f"`vnc` left to the target what it can do in the image (its output: vnc.txt): {left}"
    status = dpkg_status(tree, "tigervnc-standalone-server")
    assert status == "install ok installed", f"the tree's dpkg status has tigervnc-standalone-server as {status!r}"
    assert re.search(r"^vncusers:", (tree / "etc/group").read_text(), re.M), "no group vncusers in the tree's /etc/group"
    # apt ran in the tree with /proc, /sys and /dev in a mount namespace of its own
    assert not left_on_host(tree), f"`vnc` left on the host: {left_on_host(tree)}"

    started = time.monotonic()
    for n, (user, (password, _)) in enumerate(USERS.items(), 1):
        out = edge_setup_json(machine, exe, tree, f"vnc-user-{user}", "vnc-user", "--user", user,
                              "--password-stdin", stdin=f"{password}\n\n")
        assert out["result"]["display"] == n, shown(out)
        unit = f"tigervncserver@:{n}.service"
        link = tree / "etc/systemd/system/multi-user.target.wants" / unit
        assert link.is_symlink(), f"{unit} is not enabled in the image (no {link}):\n{shown(out)}"
        start = f"systemctl start {unit}"
        assert start in out.get("first_boot_commands", []), f"no `{start}` for the first boot:\n{shown(out)}"
    pending = text_of(tree / PENDING)
    for n in (1, 2):
        assert f"tigervncserver@:{n}.service" in pending, f"/{PENDING} does not start :{n}:\n{pending}"

    edge_setup(machine, exe, tree, "agent", "remote-connectivity", "enable",
               "--url", "https://image.example.com", "--force")   # the build host has no DNS for it
    assert "url=https://image.example.com" in (tree / AGENT).read_text().splitlines()
    answers = tree / "etc/edge-setup/answers.d/10-site.toml"
    answers.parent.mkdir(mode=0o755, exist_ok=True)
    answers.touch(mode=0o600)
    answers.write_text(ANSWERS)
    os.chmod(answers, 0o600)

    again = edge_setup_json(machine, exe, tree, "vnc-again", "vnc", *offline)
    assert not again["changed"], f"a second `vnc` changed something (vnc-again.txt):\n{shown(again)}"
    prepared = edge_setup_json(machine, exe, tree, "prepare", "image", "prepare")
    starts = [f"systemctl start tigervncserver@:{n}.service" for n in (1, 2)]
    assert prepared["result"]["first_boot_steps"] == starts, shown(prepared)
    pending = text_of(tree / PENDING)
    for n in (1, 2):
        assert f"tigervncserver@:{n}.service" in pending, f"`image prepare` dropped the first boot's steps:\n{pending}"
    assert not left_on_host(tree), f"the build left on the host: {left_on_host(tree)}"
    times["edge-setup users, agent, prepare"] = time.monotonic() - started

    # No package source in the image: whatever a clone's first boot does, it installs nothing.
    shutil.rmtree(tree / REPO)
    for f in (tree / "etc/apt/sources.list.d").iterdir():
        f.unlink()
    for f in (tree / "var/lib/apt/lists").glob("*_Packages"):
        f.unlink()


def first_boot_seconds(clone) -> float:
    """The first boot's own time in the clone's journal: its unit's start to its end."""
    out = clone.succeed(f"journalctl -b -u {UNIT} -o json --no-pager")
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    start = next((int(e["__REALTIME_TIMESTAMP"]) for e in entries if e.get("MESSAGE_ID") == UNIT_STARTING), None)
    end = next((int(e["__REALTIME_TIMESTAMP"]) for e in entries if e.get("MESSAGE_ID") == UNIT_STARTED), None)
    assert start and end, f"no start and end of {UNIT} in the journal:\n{out[-3000:]}"
    return (end - start) / 1e6


def test(machine):
    distro = machine.distro
    times: dict[str, float] = {}
    parent = cache_dir() / "roots"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"image-{distro}-", dir=parent))
    try:
        started = time.monotonic()
        with image_tree(distro) as tree:
            times["tree (overlay)"] = time.monotonic() - started
            build_image(machine, tree, work, times)
            started = time.monotonic()
            disk = work / "rootfs.img"
            size_mb = make_rootfs(tree, disk)
            disk.chmod(0o444)
            times[f"disk (mkfs.ext4 -d, {size_mb} MB)"] = time.monotonic() - started

        clones = [machine.from_rootfs(f"clone{i}", disk) for i in (1, 2)]
        for clone in clones:
            clone.forward(5901)
            clone.forward(5902)
        # Both at once: each clone's first boot needs nothing of the other's.
        booted = time.monotonic()

        def boot(clone) -> float:
            clone.start()
            clone.wait_for_unit(UNIT, timeout=900)
            return time.monotonic() - booted
        with ThreadPoolExecutor(2) as pool:
            for clone, seconds in zip(clones, pool.map(boot, clones)):
                times[f"boot to first boot done, {short_name(clone)}"] = seconds

        identities = [appliance(clone) for clone in clones]
        machine_ids, device_ids = zip(*identities)
        assert len(set(machine_ids)) == 2, f"the clones share a machine ID: {machine_ids}"
        assert len(set(device_ids)) == 2, f"the clones share a device ID: {device_ids}"
    finally:
        for name, seconds in times.items():
            machine.log(f"    18_offline_image on {distro}: {name}: {seconds:.1f} s")
        # the clones' loop devices keep the disk until the runner stops them
        shutil.rmtree(work, ignore_errors=True)


def short_name(clone) -> str:
    return clone.name.rsplit("-", 1)[-1]      # clone1, clone2


def appliance(clone) -> tuple[str, str]:
    """A clone after its first boot: complete, with an identity of its own (returned:
    the machine ID and the device ID)."""
    short = short_name(clone)
    result = clone.succeed(f"systemctl show -p Result --value {UNIT}").strip()
    assert result == "success", f"{clone.name}: the first boot's result is {result}"
    clone.log(f"    18_offline_image first boot on {short}: {first_boot_seconds(clone):.1f} s "
              "(unit start to end, journal)")
    clone.succeed("dpkg -s tigervnc-standalone-server | grep -qx 'Status: install ok installed'")
    clone.succeed("getent group vncusers")
    clone.fail("apt-get install -s firewalld 2>&1")    # no package source on the clone
    for n in (1, 2):
        clone.wait_for_unit(f"tigervncserver@:{n}.service", timeout=120)
        clone.wait_for_open_port(5900 + n, timeout=120)
    for n, (user, (password, _)) in enumerate(USERS.items(), 1):
        clone.screenshot(5900 + n, password, f"{short}-{user}.png")
        other = next(pw for u, (pw, _) in USERS.items() if u != user)
        code, output = clone.vncdo(5900 + n, other, "capture", str(clone.out_dir / f"{short}-{user}-refused.png"))
        assert code == 3, f"{clone.name}: another user's password opened {user}'s :{n} (exit {code}):\n{output}"

    machine_id = clone.succeed("cat /etc/machine-id").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id), f"{clone.name}: machine ID {machine_id!r}"
    device_id = clone.succeed("edge-setup device-id 2>/dev/null").strip()
    assert device_id and device_id == clone.succeed(
        "cat /usr/edge/properties/edge-agent/device-id").strip(), device_id
    code, out = clone.execute("edge-setup setup status --json 2>/dev/null")
    status = json.loads(out)
    assert code == 0 and status["result"]["first_boot"]["state"] == "done", out
    # every step the image left ran, once, in order, and left the record
    code, pending = clone.execute(f"cat /{PENDING}")
    assert code != 0, f"{clone.name}: /{PENDING} still holds steps:\n{pending}"
    done = json.loads(clone.succeed("cat /var/lib/edge-setup/first-boot.done"))
    assert done["steps"] == [f"systemctl start tigervncserver@:{n}.service" for n in (1, 2)], done
    clone.succeed(f"grep -qx 'url={SITE_URL}' /{AGENT}")
    return machine_id, device_id
