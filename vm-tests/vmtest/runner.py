"""Finds the scenarios, runs them on machines, reports."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from . import hosttools
from .backdoor import Backdoor, ChannelError
from .image import DEFAULT_DISTRO, DISTROS, cache_dir, get_image, is_built
from .container import CONTAINER_TOOLS, Container
from .machine import CRASH, Guest, Machine, StepFailed

VM_TESTS = Path(__file__).resolve().parent.parent
SCENARIOS = VM_TESTS / "scenarios"
OUT = VM_TESTS / "out"


# Where a scenario runs: a systemd container on the host's kernel, at native speed, or a
# QEMU VM with a kernel, boot loader and disks of its own (TCG here: minutes per install).
KINDS = ("container", "vm")


@dataclass
class Result:
    name: str
    distro: str
    kind: str
    passed: bool
    seconds: float
    artifacts: Path
    skipped: bool = False


def distros_of(module: ModuleType) -> tuple[str, ...]:
    """The releases a scenario runs on: its DISTROS, else the default release only."""
    return tuple(getattr(module, "DISTROS", (DEFAULT_DISTRO,)))


def kinds_of(module: ModuleType) -> tuple[str, ...]:
    """Where a scenario runs: its KINDS, "container" and/or "vm"."""
    return tuple(module.KINDS)


def discover() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.py") if not p.name.startswith("_"))


def scenario_path(name: str) -> Path:
    """A scenario is a name from scenarios/ or the path of a .py file."""
    return Path(name).resolve() if name.endswith(".py") else SCENARIOS / f"{name}.py"


def scenario_name(name: str) -> str:
    return Path(name).stem


def load(name: str) -> ModuleType:
    path = scenario_path(name)
    spec = importlib.util.spec_from_file_location(f"scenario_{scenario_name(name)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "test", None)):
        raise SystemExit(f"{path} defines no test(machine) function")
    kinds = getattr(module, "KINDS", None)
    if not kinds or not isinstance(kinds, tuple) or not set(kinds) <= set(KINDS):
        raise SystemExit(f"{path} must say where it runs: KINDS = (\"container\",), (\"vm\",) "
                         "or both (see vm-tests/README.md, Containers and VMs)")
    if getattr(module, "FROM", None) and "container" in kinds:
        raise SystemExit(f"{path}: FROM (a snapshot of a VM's disk) needs KINDS = (\"vm\",)")
    return module


def describe_failure(error: BaseException, scenario_file: Path) -> str:
    """The scenario line(s) where the failure happened, then the error."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve() == scenario_file.resolve()]
    shown = scenario_file.resolve()
    if shown.is_relative_to(VM_TESTS.parent):
        shown = shown.relative_to(VM_TESTS.parent)
    lines = [f"  at {shown}:{f.lineno}: {f.line}" for f in frames]
    if isinstance(error, StepFailed):
        message = str(error)
    else:
        message = "".join(traceback.format_exception_only(type(error), error)).rstrip()
        if not frames or not isinstance(error, AssertionError):
            message = "".join(traceback.format_exception(error)).rstrip()
    return "\n".join(lines + ["  " + l for l in message.splitlines()])


def needs_own_machine(module: ModuleType) -> bool:
    """FRESH_MACHINE, or a size other than the shared machines'."""
    return bool(getattr(module, "FRESH_MACHINE", False)) or \
        getattr(module, "MEMORY_MB", 2048) != 2048 or getattr(module, "CPUS", 1) != 1


def needs(module: ModuleType) -> tuple[str, ...]:
    """The scenarios whose end state this one starts from (`NEEDS = ("10_vnc",)`): run before
    it on its machine, in name order, when it is named without them."""
    return tuple(getattr(module, "NEEDS", ()))


def with_needs(chosen: list[str], modules: dict[str, ModuleType]) -> list[str]:
    """`chosen` with the scenarios they need, transitively, in name order."""
    wanted = set(chosen)
    todo = list(chosen)
    while todo:
        for n in needs(modules[todo.pop()]):
            if n not in wanted:
                wanted.add(n)
                todo.append(n)
    return sorted(wanted, key=scenario_name)


def check_needs(name: str, modules: dict[str, ModuleType]) -> None:
    """A needed scenario exists and runs wherever the scenario does, on the same machine."""
    module = modules[name]
    for n in needs(module):
        if n not in modules:
            raise SystemExit(f"{scenario_path(name)}: NEEDS names {n}, which is no scenario")
        other = modules[n]
        if not (set(distros_of(module)) <= set(distros_of(other))
                and set(kinds_of(module)) <= set(kinds_of(other))
                and machine_group(module) == machine_group(other)
                and not needs_own_machine(module) and not needs_own_machine(other)):
            raise SystemExit(f"{scenario_path(name)}: NEEDS {n}, which must run on every release "
                             "and kind it runs on, on the same machine")


def starts_from(module: ModuleType) -> str | None:
    """The scenario whose end state this one's machine starts from (`FROM = "NAME"`): a
    snapshot of the release's machine right after NAME passed, taken only when NAME runs
    in the same run (else the machine starts from the image, and the scenario must cope)."""
    name = getattr(module, "FROM", None)
    return scenario_name(name) if name else None


class Snapshots:
    """The snapshots a run takes (release, scenario) and waits for, in a directory of the
    run's own under the cache's run/ (removed at the end, or with a killed run's machines)."""

    def __init__(self, wanted: set[tuple[str, str]]):
        self.wanted = wanted
        self.paths: dict[tuple[str, str], Path | None] = {}
        self.ready = {key: threading.Event() for key in wanted}
        self.dir: Path | None = None
        self.on_put: Callable[[], None] = lambda: None

    def path_for(self, key: tuple[str, str]) -> Path:
        if self.dir is None:
            runs = cache_dir() / "run"
            runs.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix="snapshots-", dir=runs))
            (self.dir / "owner.pid").write_text(f"{os.getpid()}\n")
        return self.dir / f"{key[0]}-{key[1]}.qcow2"

    def put(self, key: tuple[str, str], path: Path | None) -> None:
        """Records the snapshot (None: it will not be taken) and wakes who waits for it."""
        if key in self.ready and not self.ready[key].is_set():
            self.paths[key] = path
            self.ready[key].set()
            self.on_put()

    def is_ready(self, key: tuple[str, str]) -> bool:
        return self.ready[key].is_set()

    def get(self, key: tuple[str, str]) -> Path | None:
        self.ready[key].wait()
        return self.paths.get(key)

    def remove(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def machine_group(module: ModuleType) -> str:
    """The machine a scenario shares with the others that name it (`MACHINE`, default
    "shared"): they run in name order on one machine of the release."""
    return getattr(module, "MACHINE", "shared")


class Output:
    """Where a scenario's lines go. With one job they are printed as they come; with
    several, kept and printed as one block when the scenario ends, so that scenarios
    running at the same time do not interleave."""
    lock = threading.Lock()

    def __init__(self, live: bool):
        self.live = live
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        if self.live:
            with Output.lock:
                print(text, flush=True)
        else:
            self.lines.append(text)

    def flush(self) -> None:
        if self.lines:
            with Output.lock:
                print("\n".join(self.lines), flush=True)
            self.lines = []


class Runner:
    """Runs a unit's scenarios in order: those of a machine group on one machine of the release."""

    def __init__(self, keep: bool, verbose: bool, distro: str = DEFAULT_DISTRO, live: bool = True,
                 snapshots: Snapshots | None = None, kind: str = "vm"):
        self.kind = kind
        # snapshots are of VMs' disks: a container unit neither takes nor waits for them
        self.snapshots = snapshots if snapshots is not None and kind == "vm" else Snapshots(set())
        self.keep = keep
        self.verbose = verbose
        self.distro = distro
        self.live = live
        # the machine of each group (MACHINE) that has one running or shut down
        self.groups: dict[str, Guest] = {}
        self.machines: list[Guest] = []

    def new_machine(self, name: str, module: ModuleType) -> Guest:
        if self.kind == "container":
            m = Container(f"{self.distro}-{name}", distro=self.distro)
            self.machines.append(m)
            return m
        backing = None
        key = (self.distro, starts_from(module))
        if key in self.snapshots.wanted:
            backing = self.snapshots.get(key)
            if backing is None:
                raise StepFailed(f"{key[1]} did not pass on {self.distro}, so there is no "
                                 f"snapshot of its machine to start from")
        m = Machine(f"{self.distro}-{name}", memory_mb=getattr(module, "MEMORY_MB", 2048),
                    cpus=getattr(module, "CPUS", 1), distro=self.distro, backing=backing)
        self.machines.append(m)
        return m

    def machine_for(self, name: str, module: ModuleType) -> Guest:
        if needs_own_machine(module):
            return self.new_machine(name, module)
        group = machine_group(module)
        # one that a scenario shut down stays: its next step boots the same disk, or the
        # scenario clones it (a golden image)
        if group not in self.groups:
            self.groups[group] = self.new_machine(group, module)
        return self.groups[group]

    def run_one(self, arg: str, named: bool = False) -> Result:
        module = load(arg)
        name = scenario_name(arg)
        out = Output(self.live)
        where = f"{self.distro} ({self.kind})"
        artifacts = OUT / self.distro / self.kind / name
        skip = getattr(module, "SKIP", None)
        if skip and not named:      # a scenario named on the command line runs anyway
            out(f"=== {name} on {where}\nSKIP {name}: {skip}")
            out.flush()
            return Result(name, self.distro, self.kind, True, 0.0, artifacts, skipped=True)
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)
        try:
            machine = self.machine_for(name, module)
        except StepFailed as e:
            out(f"=== {name} on {where}\nFAIL {name} on {where}: not run: {e}")
            out.flush()
            return Result(name, self.distro, self.kind, False, 0.0, artifacts)
        log = open(artifacts / "commands.log", "w")

        def transcript(text: str) -> None:
            log.write(text if text.endswith("\n") else text + "\n")
            log.flush()
            if self.verbose:
                out("    " + text.rstrip("\n").replace("\n", "\n    "))

        machine.transcript = transcript
        machine.log = out
        machine.out_dir = artifacts
        header = f"=== {name} on {where}" + \
            (f" (machine {machine.name})" if machine.name != f"{self.distro}-{name}" else "")
        if not self.live:
            with Output.lock:
                print(header.replace("===", "...", 1) + ": started", flush=True)
        out(header)
        started = time.monotonic()
        error: BaseException | None = None
        try:
            module.test(machine)
        except (Exception, SystemExit) as e:     # noqa: BLE001 - every failure is reported
            error = e
        seconds = time.monotonic() - started
        # clones (golden images) belong to the scenario that made them
        for clone in machine.clones:
            clone.collect(artifacts / clone.name, journal=error is not None)
            clone.stop()
        machine.clones.clear()
        machine.transcript = None
        if error is not None:
            report = describe_failure(error, scenario_path(arg))
            (artifacts / "failure.txt").write_text(
                report + "\n\n" + "".join(traceback.format_exception(error)))
            out(f"FAIL {name} on {where} ({seconds:.1f}s)\n{report}")
        machine.collect(artifacts, journal=error is not None)
        log.close()
        if error is not None:
            out(f"  artifacts: {artifacts}")
            if self.keep and machine.is_running():
                out(machine.keep())
            else:
                machine.stop()
        else:
            out(f"PASS {name} on {where} ({seconds:.1f}s)")
            key = (self.distro, name)
            if key in self.snapshots.wanted and machine.is_running():
                try:
                    self.snapshots.put(key, machine.snapshot(self.snapshots.path_for(key)))
                except (StepFailed, OSError) as e:
                    out(f"  no snapshot after {name}: {e}")
            if machine not in self.groups.values():
                machine.stop()
        machine.log = print
        out.flush()
        return Result(name, self.distro, self.kind, error is None, seconds, artifacts)

    def not_run(self, arg: str, why: str) -> Result:
        """A failed result for a scenario that did not run, and why."""
        name = scenario_name(arg)
        out = Output(self.live)
        where = f"{self.distro} ({self.kind})"
        out(f"=== {name} on {where}\nFAIL {name} on {where}: not run: {why}")
        out.flush()
        return Result(name, self.distro, self.kind, False, 0.0, OUT / self.distro / self.kind / name)

    def stop_all(self) -> None:
        for m in self.machines:
            if not m.kept:
                m.stop()


@dataclass
class Unit:
    """Scenarios of one release that run in order on one worker: those of a machine group
    together, each one that needs its own machine alone."""
    distro: str
    kind: str
    names: list[str]
    estimate: float
    shared: bool = False
    # the snapshots (release, scenario) it starts from: it is not started before they exist
    waits_for: frozenset = frozenset()
    # how many VMs it runs at once (a scenario's VMS: 95_first_boot boots two clones)
    vms: int = 0


def times_file() -> Path:
    return cache_dir() / "scenario-times.json"


def load_times() -> dict[str, float]:
    """Each scenario's time in its last passing run ("release/name": seconds)."""
    try:
        return {k: float(v) for k, v in json.loads(times_file().read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def make_units(plan: list[tuple[str, str, list[str]]], modules: dict[str, ModuleType],
               times: dict[str, float]) -> list[Unit]:
    """The units, longest first (by the last run's times; 180 s for a scenario not run
    before), so that the long ones do not end up last on one worker."""
    units = []
    for distro, kind, names in plan:
        def took(n: str) -> float:
            return times.get(f"{distro}/{kind}/{scenario_name(n)}", 180.0)
        groups: dict[str, list[str]] = {}
        for n in names:
            if not needs_own_machine(modules[n]):
                groups.setdefault(machine_group(modules[n]), []).append(n)
        def vms(group: list[str]) -> int:
            return max(getattr(modules[n], "VMS", 1) for n in group) if kind == "vm" else 0
        for group in groups.values():
            units.append(Unit(distro, kind, group, sum(map(took, group)), shared=True, vms=vms(group)))
        for n in names:
            if needs_own_machine(modules[n]):
                units.append(Unit(distro, kind, [n], took(n), vms=vms([n])))
    return sorted(units, key=lambda u: -u.estimate)


class Schedule:
    """Runs the units on `jobs` workers; each unit's scenarios in order on one of them. At
    most `vms` VMs run at a time: a TCG guest with one vCPU keeps one host core busy
    (two of them on two cores each ran as fast as one alone), containers fill the gaps. A
    unit that boots two VMs at once (VMS = 2) waits for two free slots: beside another VM
    its clones ran at two thirds of their speed (95_first_boot 684 s against 397-470 s)."""

    def __init__(self, units: list[Unit], jobs: int, keep: bool, verbose: bool, named: bool,
                 snapshots: Snapshots | None = None, vms: int = 1):
        self.snapshots = snapshots or Snapshots(set())
        self.snapshots.on_put = self._snapshot_taken
        self.queue = list(units)
        self.jobs = max(1, min(jobs, len(units)))
        self.vms, self.vms_running = vms, 0
        self.slots = threading.Condition()
        self.keep, self.verbose, self.named = keep, verbose, named
        self.lock = threading.Lock()
        self.results: list[Result] = []
        self.runners: list[Runner] = []
        self.image_errors: dict[str, str] = {}
        self.images_shown: set[str] = set()

    def _next(self) -> Unit | None:
        """The first unit in the queue that may start now: a VM unit while a VM slot is
        free, one that starts from a snapshot once the snapshot is taken (or known not to
        come). A unit whose release's image is built goes before one that would wait for its
        build (on a new machine a worker waited minutes for the other releases' images while
        the first release's VMs queued). Waits while none may start."""
        with self.slots:
            while self.queue:
                may = [i for i, unit in enumerate(self.queue)
                       if self._vms_free(unit)
                       and all(self.snapshots.is_ready(key) for key in unit.waits_for)]
                if may:
                    built = [i for i in may if is_built(self.queue[i].distro)]
                    unit = self.queue.pop((built or may)[0])
                    self.vms_running += unit.vms
                    return unit
                self.slots.wait()
            return None

    def _vms_free(self, unit: Unit) -> bool:
        """Whether the unit's VMs fit now (one that needs more than --vms runs alone)."""
        if unit.vms == 0:
            return True
        return self.vms_running + unit.vms <= self.vms or self.vms_running == 0

    def _snapshot_taken(self) -> None:
        with self.slots:
            self.slots.notify_all()

    def _done(self, unit: Unit) -> None:
        with self.slots:
            self.vms_running -= unit.vms
            self.slots.notify_all()

    def _image(self, distro: str) -> str | None:
        """Finds or builds the release's image; the error, if that failed."""
        try:
            image = get_image(distro)
        except SystemExit as e:
            with self.lock:
                self.image_errors[distro] = str(e)
            return str(e)
        with self.lock:
            if distro in self.images_shown:
                return None
            self.images_shown.add(distro)
        manifest = image.manifest()
        with Output.lock:
            print(f"[image] {distro}: {image.dir} (kernel {manifest.get('kernel')}, "
                  f"{manifest.get('repo_debs')} debs in the offline repository)", flush=True)
        return None

    def _work(self) -> None:
        while (unit := self._next()) is not None:
            try:
                self._run_unit(unit)
            finally:
                self._done(unit)

    def _run_unit(self, unit: Unit) -> None:
        error = self.image_errors.get(unit.distro) or self._image(unit.distro)
        if error:
            with self.lock:
                for n in unit.names:
                    self.results.append(Result(scenario_name(n), unit.distro, unit.kind, False,
                                               0.0, OUT / unit.distro / unit.kind / scenario_name(n)))
            with Output.lock:
                print(f"FAIL {', '.join(map(scenario_name, unit.names))} on {unit.distro}: "
                      f"no image: {error}", flush=True)
            return
        runner = Runner(keep=self.keep, verbose=self.verbose, distro=unit.distro,
                        live=self.jobs == 1, snapshots=self.snapshots, kind=unit.kind)
        with self.lock:
            self.runners.append(runner)
        try:
            failed = None
            for name in unit.names:
                if failed is not None:
                    # what follows on the shared machine builds on what failed
                    result = runner.not_run(name, f"{failed} failed before it on the shared machine")
                else:
                    result = runner.run_one(name, named=self.named)
                if unit.shared and not result.passed and failed is None:
                    failed = result.name
                with self.lock:
                    self.results.append(result)
        finally:
            # a snapshot this unit did not take will not come: its waiters fail
            for n in unit.names:
                if unit.kind == "vm":
                    self.snapshots.put((unit.distro, scenario_name(n)), None)
            runner.stop_all()

    def run(self) -> list[Result]:
        if self.jobs == 1:
            self._work()
            return self.results
        workers = [threading.Thread(target=self._work, name=f"worker-{i}", daemon=True)
                   for i in range(self.jobs)]
        for w in workers:
            w.start()
        for w in workers:
            while w.is_alive():
                w.join(1)            # wakes up for SIGTERM and Ctrl-C
        return self.results

    def stop_all(self) -> None:
        for runner in self.runners:
            runner.stop_all()


def attach(socket_path: str) -> int:
    """A line-by-line root shell on a kept machine."""
    door = Backdoor(socket_path)
    door.connect(5)
    print("root shell in the guest; one command per line, Ctrl-D ends", flush=True)
    while True:
        try:
            line = input("guest# ")
        except EOFError:
            print()
            return 0
        if not line.strip():
            continue
        try:
            status, out = door.run(line, 3600)
        except ChannelError as e:
            print(f"[{e}]")
            continue
        sys.stdout.write(out.decode(errors="replace"))
        print(f"[exit {status}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vm-tests/run", description="Run edge-setup's VM test scenarios.")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="names from vm-tests/scenarios/, or paths of .py files "
                             "(default: every scenario in vm-tests/scenarios/)")
    parser.add_argument("--keep", action="store_true",
                        help="leave a failed scenario's machine running and say how to reach it")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every command's output")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the guest image")
    parser.add_argument("--build-image", action="store_true",
                        help="only build (or find) the cached image and print where it is")
    parser.add_argument("--list", action="store_true", help="list the scenarios")
    parser.add_argument("--attach", metavar="SOCKET", help="open a root shell on a kept machine")
    parser.add_argument("--shell", action="store_true",
                        help="boot a machine, leave it running and say how to reach it")
    parser.add_argument("--boots", type=int, metavar="N",
                        help="boot a new VM of each release N times in a row (to its control shell, "
                             "then stop it) and count the kernel crashes; no scenario runs")
    parser.add_argument("--forward", type=int, action="append", default=[], metavar="PORT",
                        help="with --shell: forward a host port to this guest TCP port")
    parser.add_argument("--distro", action="append", choices=DISTROS, metavar="RELEASE",
                        help="run on this Debian release (" + ", ".join(DISTROS) + "; repeat for "
                             "several; default: $EDGE_SETUP_VM_DISTROS, else all of them); "
                             "each scenario runs on the releases its DISTROS names "
                             f"(default: {DEFAULT_DISTRO} only)")
    parser.add_argument("--kind", action="append", choices=KINDS,
                        help="run only the scenarios' runs in containers, or in VMs (repeatable; "
                             "default: both; each scenario runs where its KINDS says)")
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="machines running at the same time (containers and VMs; on 2 cores a "
                             "third slowed every guest more than it gained); default: "
                             "$EDGE_SETUP_VM_JOBS, else 2; a release's shared machine runs its "
                             "scenarios in order")
    parser.add_argument("--vms", type=int, metavar="N",
                        help="VMs among them at most (a TCG guest with one vCPU keeps one core "
                             "busy); default: $EDGE_SETUP_VM_VMS, else 2")
    args = parser.parse_args(argv)

    os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
    if args.attach:
        return attach(args.attach)
    # Every program the harness starts reads a /dev/null of its own, not the caller's
    # standard input nor one open file shared by all: a program that sets its standard input
    # non-blocking (ssh; apt-get in a fresh release root) would leave it so for the next,
    # which ansible-galaxy refuses ("Ansible requires blocking IO"). Nothing here is
    # interactive.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    own_stdin()
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    unknown = [n for n in args.scenarios
               if n not in names and not (n.endswith(".py") and Path(n).is_file())]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(names)}",
              file=sys.stderr)
        return 2
    selected = args.scenarios or names
    if os.geteuid() != 0:
        print("vm-tests/run needs root (debootstrap, chroot, apt-get)", file=sys.stderr)
        return 2

    env_distros = os.environ.get("EDGE_SETUP_VM_DISTROS", "").replace(",", " ").split()
    bad = [d for d in env_distros if d not in DISTROS]
    if bad:
        print(f"EDGE_SETUP_VM_DISTROS names unknown releases: {', '.join(bad)}", file=sys.stderr)
        return 2
    distros = [d for d in DISTROS if d in (args.distro or env_distros or DISTROS)]
    counts = {}
    for option, value, variable, default in (("--jobs", args.jobs, "EDGE_SETUP_VM_JOBS", "2"),
                                             ("--vms", args.vms, "EDGE_SETUP_VM_VMS", "2")):
        if value is None:
            try:
                value = int(os.environ.get(variable, default))
            except ValueError:
                print(f"{variable} must be a number", file=sys.stderr)
                return 2
        if value < 1:
            print(f"{option} (or {variable}) must be at least 1", file=sys.stderr)
            return 2
        counts[option] = value
    jobs, vms = counts["--jobs"], counts["--vms"]

    # SIGTERM (e.g. a CI time limit) ends the run through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    modules = {name: load(name) for name in dict.fromkeys(names + selected)}
    for name in selected:
        check_needs(name, modules)
    if args.shell or args.build_image:
        # The default release first: its units are the longest, so a run started beside
        # this build (scripts/test) needs its image first.
        for distro in (distros[:1] if args.shell else sorted(distros, key=lambda d: d != DEFAULT_DISTRO)):
            image = get_image(distro, rebuild=args.rebuild)
            print(f"[image] {distro}: {image.dir}", flush=True)
        if args.build_image:
            return 0
        hosttools.ensure(hosttools.QEMU_TOOLS)
        machine = Machine("interactive", distro=distros[0])
        for port in args.forward:
            machine.forward(port)
        try:
            machine.start()
        except StepFailed as e:
            print(e, file=sys.stderr)
            machine.stop()
            return 1
        print(machine.keep())
        return 0

    kinds = [k for k in KINDS if k in (args.kind or KINDS)]
    # Per release, the containers first: they take minutes where the VMs take tens of them,
    # and they prove most of the suite.
    if args.boots:
        return boot_check(distros, args.boots)

    plan = [(d, k, with_needs([n for n in selected
                               if d in distros_of(modules[n]) and k in kinds_of(modules[n])], modules))
            for d in distros for k in kinds]
    plan = [(d, k, names) for d, k, names in plan if names]
    if args.rebuild:
        for distro in dict.fromkeys(d for d, _, _ in plan):
            get_image(distro, rebuild=True)
    # Host tools once, before the workers start.
    if any(k == "vm" for _, k, _ in plan):
        hosttools.ensure(hosttools.QEMU_TOOLS)
    if any(k == "container" for _, k, _ in plan):
        hosttools.ensure(CONTAINER_TOOLS)
    hosttools.ensure(hosttools.IMAGE_TOOLS)
    times = load_times()
    units = make_units(plan, modules, times)
    if jobs == 1:               # one at a time: release by release, as the plan lists them
        order = [(d, k) for d, k, _ in plan]
        units.sort(key=lambda u: order.index((u.distro, u.kind)))
    # Snapshots of scenarios that run here in VMs, for the scenarios that start FROM them;
    # those start once their snapshot is taken, ahead of shorter units still queued.
    wanted = {(d, starts_from(modules[n])) for d, k, names in plan if k == "vm" for n in names
              if starts_from(modules[n]) in map(scenario_name, names)}
    snapshots = Snapshots(wanted)
    for unit in units:
        if unit.kind == "vm":
            unit.waits_for = frozenset(key for n in unit.names
                                       if (key := (unit.distro, starts_from(modules[n]))) in wanted)
    later = list(dict.fromkeys(u.distro for u in units if u.distro != units[0].distro)) if units else []
    if later:
        # The other releases' images build while the first scenarios run (on a new
        # machine that is minutes); a scenario that needs one waits for its build.
        threading.Thread(target=prefetch_images, args=(later,), name="images", daemon=True).start()
    schedule = Schedule(units, jobs, keep=args.keep, verbose=args.verbose,
                        named=bool(args.scenarios), snapshots=snapshots, vms=vms)
    print(f"[run] {sum(len(u.names) for u in units)} scenario runs on "
          f"{', '.join(dict.fromkeys(d for d, _, _ in plan))} ({', '.join(kinds)}), "
          f"{schedule.jobs} at a time", flush=True)
    started = time.monotonic()
    try:
        results = schedule.run()
    finally:
        schedule.stop_all()
        snapshots.remove()
    wall = time.monotonic() - started
    order = {d: i for i, d in enumerate(DISTROS)}
    results.sort(key=lambda r: (order[r.distro], KINDS.index(r.kind), r.name))
    print("\nscenario results:")
    for r in results:
        word = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
        print(f"  {word}  {r.distro:<9} {r.kind:<9} {r.name:<24} {r.seconds:7.1f}s")
    phases = []
    for distro, kind, _ in plan:
        mine = [r for r in results if r.distro == distro and r.kind == kind]
        seconds = sum(r.seconds for r in mine)
        print(f"{distro} ({kind}): {count(mine)}, {seconds:.1f}s of scenarios")
        phases.append(f"{'containers' if kind == 'container' else 'VMs'} {distro}: {seconds:.0f} s")
    print(f"total {wall:.1f}s ({sum(r.seconds for r in results):.1f}s of scenarios, "
          f"{schedule.jobs} at a time)")
    # The CI summary (.ci/run) lists these with its own phases.
    if os.environ.get("EDGE_SETUP_TIMES"):
        with open(os.environ["EDGE_SETUP_TIMES"], "a") as f:
            f.write("".join(f"{p}\n" for p in phases))
    times.update({f"{r.distro}/{r.kind}/{r.name}": round(r.seconds, 1)
                  for r in results if r.passed and not r.skipped})
    times_file().write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    print(count(results))
    return 0 if all(r.passed for r in results) else 1


def boot_check(distros: list[str], boots: int) -> int:
    """Boots a new VM of each release `boots` times, as the scenarios do, and counts the
    boots whose kernel crashed (each is tried once more by the harness, so a crash is
    counted even when the retry came up) and those that failed outright."""
    hosttools.ensure(hosttools.QEMU_TOOLS)
    failed_any = False
    for distro in distros:
        get_image(distro)
        crashed, failed, seconds = 0, 0, []
        for i in range(1, boots + 1):
            m = Machine(f"{distro}-boot{i}", distro=distro, log=lambda text: None)
            try:
                m.start()
                seconds.append(m.boot_seconds)
                word = "ok"
            except StepFailed as e:
                failed += 1
                word = "FAILED: " + str(e).splitlines()[0]
            finally:
                m.stop()
            crashed += bool(m.crashes)
            if m.crashes:
                said = next(line for line in m.crashes[0] if CRASH.search(line))
                word += f" (the kernel crashed first: {said.strip()[:100]})"
            print(f"[boots] {distro} {i}/{boots}: {word}", flush=True)
        mean = sum(seconds) / len(seconds) if seconds else 0.0
        print(f"[boots] {distro}: {boots} boots, {crashed} with a kernel crash, {failed} failed; "
              f"{mean:.0f}s to the control shell on average", flush=True)
        failed_any |= bool(crashed or failed)
    return 1 if failed_any else 0


def own_stdin() -> None:
    """subprocess's programs get a /dev/null of their own when the call names no stdin."""
    popen_init = subprocess.Popen.__init__

    def init(self, args, *rest, **kwargs):
        if not rest and kwargs.get("stdin") is None:
            kwargs["stdin"] = subprocess.DEVNULL
        popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = init


def prefetch_images(distros: list[str]) -> None:
    for distro in distros:
        try:
            get_image(distro)
        except SystemExit:
            pass            # the scenarios of the release report it when they build again


def count(results: list[Result]) -> str:
    """`N passed, N failed` (and skipped, when any)."""
    skipped = sum(r.skipped for r in results)
    passed = sum(r.passed and not r.skipped for r in results)
    failed = len(results) - passed - skipped
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
