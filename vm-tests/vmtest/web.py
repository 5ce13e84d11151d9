"""A real browser on the host for the web console scenario: Debian's headless `chromium`,
driven through Debian's `chromedriver` (both installed with apt-get when missing) by
Selenium, from a virtual environment the harness makes once (pinned in
requirements-web.txt). The harness stays standard library only: Selenium runs in a child
process of the venv's Python (web_agent.py), which this module sends one request at a
time; the waits for elements are the child's, polling the page."""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import hosttools
from .image import cache_dir
from .machine import StepFailed, scenario_location

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-web.txt"
AGENT = Path(__file__).resolve().parent / "web_agent.py"
# The absolute paths the agent starts: Debian's packages, never a downloaded driver.
TOOLS = {"/usr/bin/chromium": "chromium", "/usr/bin/chromedriver": "chromium-driver"}
_venv_lock = threading.Lock()


def venv_dir() -> Path:
    return cache_dir() / "web-venv"


def python() -> Path:
    with _venv_lock:
        return hosttools.venv(venv_dir(), REQUIREMENTS) / "bin" / "python"


class Browser:
    """One headless chromium with a profile of its own (no cookies, no local storage from
    before), its window `width` x `height`. Each step is logged through the machine's log
    like a guest command; a failed step raises StepFailed with what the page showed, and
    leaves a screenshot `failed-N.png` in the artifacts."""

    def __init__(self, machine, width: int = 1024, height: int = 768):
        hosttools.ensure(TOOLS)
        self.machine = machine
        self.out = machine.out_dir
        self.failures = 0
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-", dir=cache_dir() / "run")
        self._stderr = open(self.out / "browser.log", "ab")
        self.process = subprocess.Popen([str(python()), str(AGENT)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._stderr,
                                        env=dict(os.environ, SE_OFFLINE="true", PYTHONUNBUFFERED="1"))
        info = self._call("start", {"width": width, "height": height, "profile": self._profile.name,
                                    "log": str(self.out / "chromedriver.log")}, timeout=120)
        machine.log(f"  browser: chromium {info['browser']}, chromedriver {info['driver']}, "
                    f"viewport {info['viewport'][0]}x{info['viewport'][1]}")

    def _call(self, op: str, args: dict, timeout: float = 60, quiet: bool = False, secret: bool = False):
        where = scenario_location()
        started = time.monotonic()
        line = json.dumps({"op": op, **args}) + "\n"
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            raise StepFailed(f"browser {op}: the browser's process ended "
                             f"(see {self.out / 'browser.log'})") from None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout + 30)
        answer = self.process.stdout.readline() if ready else b""
        took = time.monotonic() - started
        shown = [("***" if k == "text" and secret else str(v)) for k, v in args.items() if k != "timeout"]
        what = f"browser {op} {' '.join(shown)}".rstrip()
        if not answer:
            raise StepFailed(f"{what}: no answer after {took:.0f}s (see {self.out / 'browser.log'})")
        result = json.loads(answer)
        if not quiet:
            self.machine.log(f"  {where} {what} ({took:.1f}s)")
        if self.machine.transcript:
            self.machine.transcript(f"[host] {what}: {json.dumps(result)[:2000]}\n")
        if "error" in result:
            self.failures += 1
            shot = self.out / f"failed-{self.failures}.png"
            try:
                self._call("screenshot", {"path": str(shot)}, quiet=True)
                self.save_console()
            except StepFailed:
                pass
            raise StepFailed(f"{what}: {result['error']}\n  screenshot: {shot}, the pages' console: "
                             f"{self.out / 'browser-console.log'}")
        return result["value"]

    def save_console(self) -> None:
        """Adds the pages' console messages since the last time to browser-console.log."""
        lines = self._call("console", {}, quiet=True)
        with open(self.out / "browser-console.log", "a") as f:
            f.writelines(line + "\n" for line in lines)

    # -- navigation ------------------------------------------------------------------
    def open(self, url: str) -> str:
        return self._call("open", {"url": url})

    def frame(self, css: str, timeout: float = 30) -> None:
        """Into the iframe `css` of the current document."""
        self._call("frame", {"css": css, "timeout": timeout}, timeout)

    def top(self) -> None:
        self._call("top", {})

    # -- waits and actions -----------------------------------------------------------
    def wait(self, css: str, until: str = "visible", text: str | None = None, timeout: float = 30) -> dict:
        """Until the first element `css` is `until` (present, absent, visible, hidden,
        enabled, disabled, checked, unchecked, text: contains `text`, match: the regex
        `text`, value: its value is `text`); returns its state (text, value, enabled,
        checked)."""
        args = {"css": css, "until": until, "timeout": timeout}
        if text is not None:
            args["text"] = text
        return self._call("wait", args, timeout)

    def text(self, css: str, timeout: float = 30) -> str:
        return self.wait(css, timeout=timeout)["text"]

    def click(self, css: str, timeout: float = 30) -> None:
        self._call("click", {"css": css, "timeout": timeout}, timeout)

    def type(self, css: str, text: str, secret: bool = False, timeout: float = 30) -> None:
        """Clears the field and types `text` (not logged when `secret`)."""
        self._call("type", {"css": css, "text": text, "timeout": timeout}, timeout, secret=secret)

    def js(self, script: str, *args):
        return self._call("js", {"script": script, "args": list(args)}, quiet=True)

    def viewport(self, width: int | None = None, height: int | None = None, mobile: bool = False) -> list:
        """A phone's viewport (`mobile`), or the window's own again without a size."""
        return self._call("viewport", {"width": width, "height": height, "mobile": mobile})

    def screenshot(self, name: str, of: str | None = None) -> Path:
        """The viewport as PNG `name` in the scenario's artifacts; `of`: the current
        document scrolled to that element first (its top at the viewport's)."""
        if of:
            self.js("document.querySelector(arguments[0]).scrollIntoView({block: 'start'})", of)
        path = self.out / name
        self._call("screenshot", {"path": str(path)})
        return path

    def clear_cookies(self) -> None:
        self._call("cookies_clear", {})

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.save_console()
            except StepFailed:
                pass
            try:
                self._call("quit", {}, timeout=30, quiet=True)
            except StepFailed:
                pass
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._stderr.close()
        self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
