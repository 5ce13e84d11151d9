"""Finds the scenarios, runs them on machines, reports."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from . import hosttools
from .backdoor import Backdoor, ChannelError
from .image import DEFAULT_DISTRO, DISTROS, get_image
from .machine import Machine, StepFailed

VM_TESTS = Path(__file__).resolve().parent.parent
SCENARIOS = VM_TESTS / "scenarios"
OUT = VM_TESTS / "out"


@dataclass
class Result:
    name: str
    distro: str
    passed: bool
    seconds: float
    artifacts: Path
    skipped: bool = False


def distros_of(module: ModuleType) -> tuple[str, ...]:
    """The releases a scenario runs on: its DISTROS, else the default release only."""
    return tuple(getattr(module, "DISTROS", (DEFAULT_DISTRO,)))


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


class Runner:
    def __init__(self, keep: bool, verbose: bool, distro: str = DEFAULT_DISTRO):
        self.keep = keep
        self.verbose = verbose
        self.distro = distro
        self.shared: Machine | None = None
        self.machines: list[Machine] = []

    def new_machine(self, name: str, module: ModuleType) -> Machine:
        m = Machine(f"{self.distro}-{name}", memory_mb=getattr(module, "MEMORY_MB", 2048),
                    cpus=getattr(module, "CPUS", 2), distro=self.distro)
        self.machines.append(m)
        return m

    def machine_for(self, name: str, module: ModuleType) -> Machine:
        if getattr(module, "FRESH_MACHINE", False) or \
                getattr(module, "MEMORY_MB", 2048) != 2048 or getattr(module, "CPUS", 2) != 2:
            return self.new_machine(name, module)
        if self.shared is None or (self.shared.process is not None and not self.shared.is_running()):
            self.shared = self.new_machine("shared", module)
        return self.shared

    def run_one(self, arg: str, named: bool = False) -> Result:
        module = load(arg)
        name = scenario_name(arg)
        skip = getattr(module, "SKIP", None)
        if skip and not named:      # a scenario named on the command line runs anyway
            print(f"=== {name} on {self.distro}\nSKIP {name}: {skip}", flush=True)
            return Result(name, self.distro, True, 0.0, OUT / self.distro / name, skipped=True)
        artifacts = OUT / self.distro / name
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)
        machine = self.machine_for(name, module)
        log = open(artifacts / "commands.log", "w")

        def transcript(text: str) -> None:
            log.write(text if text.endswith("\n") else text + "\n")
            log.flush()
            if self.verbose:
                print("    " + text.rstrip("\n").replace("\n", "\n    "), flush=True)

        machine.transcript = transcript
        machine.out_dir = artifacts
        print(f"=== {name} on {self.distro}"
              + (f" (machine {machine.name})" if machine.name != f"{self.distro}-{name}" else ""),
              flush=True)
        started = time.monotonic()
        error: BaseException | None = None
        try:
            module.test(machine)
        except Exception as e:            # noqa: BLE001 - every failure is reported
            error = e
        seconds = time.monotonic() - started
        machine.transcript = None
        if error is not None:
            report = describe_failure(error, scenario_path(arg))
            (artifacts / "failure.txt").write_text(
                report + "\n\n" + "".join(traceback.format_exception(error)))
            print(f"FAIL {name} on {self.distro} ({seconds:.1f}s)\n{report}", flush=True)
        machine.collect(artifacts, journal=error is not None)
        log.close()
        if error is not None:
            print(f"  artifacts: {artifacts}", flush=True)
            if self.keep and machine.is_running():
                print(machine.keep(), flush=True)
            else:
                machine.stop()
            if machine is self.shared:
                self.shared = None       # the next scenario gets a fresh machine
        else:
            print(f"PASS {name} on {self.distro} ({seconds:.1f}s)", flush=True)
            if machine is not self.shared:
                machine.stop()
        return Result(name, self.distro, error is None, seconds, artifacts)

    def stop_all(self) -> None:
        for m in self.machines:
            if not m.kept:
                m.stop()


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
    parser.add_argument("--forward", type=int, action="append", default=[], metavar="PORT",
                        help="with --shell: forward a host port to this guest TCP port")
    parser.add_argument("--distro", action="append", choices=DISTROS, metavar="RELEASE",
                        help="run on this Debian release (" + ", ".join(DISTROS) + "; repeat for "
                             "several; default: $EDGE_SETUP_VM_DISTROS, else "
                             f"{DEFAULT_DISTRO}); each scenario runs on the releases its "
                             f"DISTROS names (default: {DEFAULT_DISTRO} only)")
    args = parser.parse_args(argv)

    os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin"
    if args.attach:
        return attach(args.attach)
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
    # Until the matrix fits CI's time budget (issue 16), a plain run is bookworm's only.
    distros = [d for d in DISTROS if d in (args.distro or env_distros or [DEFAULT_DISTRO])]

    # SIGTERM (e.g. a CI time limit) ends the run through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    modules = {name: load(name) for name in selected}
    plan = [(d, [n for n in selected if d in distros_of(modules[n]) or args.shell or args.build_image])
            for d in distros]
    plan = [(d, names) for d, names in plan if names]
    for distro, _ in plan:
        image = get_image(distro, rebuild=args.rebuild)
        manifest = image.manifest()
        print(f"[image] {distro}: {image.dir} (kernel {manifest.get('kernel')}, "
              f"{manifest.get('repo_debs')} debs in the offline repository)", flush=True)
    if args.build_image:
        return 0
    hosttools.ensure(hosttools.QEMU_TOOLS)
    if args.shell:
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

    results: list[Result] = []
    started = time.monotonic()
    for distro, names in plan:
        runner = Runner(keep=args.keep, verbose=args.verbose, distro=distro)
        try:
            for name in names:
                results.append(runner.run_one(name, named=bool(args.scenarios)))
        finally:
            runner.stop_all()
    print("\nscenario results:")
    for r in results:
        word = "SKIP" if r.skipped else "PASS" if r.passed else "FAIL"
        print(f"  {word}  {r.distro:<9} {r.name:<24} {r.seconds:7.1f}s")
    for distro, _ in plan:
        mine = [r for r in results if r.distro == distro]
        print(f"{distro}: {count(mine)}, {sum(r.seconds for r in mine):.1f}s")
    print(f"total {time.monotonic() - started:.1f}s")
    print(count(results))
    return 0 if all(r.passed for r in results) else 1


def count(results: list[Result]) -> str:
    """`N passed, N failed` (and skipped, when any)."""
    skipped = sum(r.skipped for r in results)
    passed = sum(r.passed and not r.skipped for r in results)
    failed = len(results) - passed - skipped
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
