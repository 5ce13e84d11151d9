"""The harness against a kernel that crashes while booting: the boot fails at once with the
serial console's lines (it does not wait 600 s for a control shell that never comes), is
tried once more, with one emulation thread, and a second crash fails the step; the same
machine then boots as usual."""

import time

from vmtest.machine import StepFailed

# Where it runs: a kernel of its own.
KINDS = ("vm",)
FRESH_MACHINE = True


def test(machine):
    # init exits at once: "Kernel panic - not syncing: Attempted to kill init!", at every boot
    machine.kernel_args = "init=/bin/false"
    started = time.monotonic()
    try:
        machine.start()
    except StepFailed as e:
        error = str(e)
    else:
        raise AssertionError("a machine whose init exits at once booted")
    took = time.monotonic() - started
    machine.log(f"    two crashed boots reported in {took:.0f}s")
    assert took < 180, f"the crashed boots took {took:.0f}s to report: the console was not watched"
    assert "the kernel crashed while booting, twice" in error, error
    assert "Attempted to kill init" in error, error
    assert len(machine.crashes) == 2, machine.crashes
    if machine.accel == "tcg":
        assert machine.tcg_thread == "single", machine.tcg_thread

    machine.kernel_args = ""
    machine.start()
    assert machine.succeed("cat /proc/cmdline").split()[-1] == "console=ttyS0"
