"""The browser's end of vmtest.web: run by the web venv's Python (Selenium is there, not in
the harness), it starts Debian's headless chromium through Debian's chromedriver and
carries out one request per line of standard input, a JSON object {"op": ..., ...},
answering each with one line {"value": ...} or {"error": "..."} on standard output.
Selenium's and chromedriver's own messages go to standard error (the harness's log file).

Waits happen here, polling the page every 0.1 s, so that a step takes as long as the
page does and no longer."""

from __future__ import annotations

import base64
import json
import re
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def start(width: int, height: int, profile: str, log: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", f"--window-size={width},{height}", f"--user-data-dir={profile}",
                # Cockpit's own certificate, made at its first start
                "--ignore-certificate-errors",
                # root on a host without a display or GPU; /dev/shm may be small
                "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                # nothing to fetch: the host reaches only package registries
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-features=Translate,MediaRouter,OptimizationHints",
                "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(arg)
    options.page_load_strategy = "normal"
    # the pages' console messages, for a failure's report (op_console)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The path given: Selenium Manager (which would download a driver) is skipped.
    service = Service(executable_path=CHROMEDRIVER, log_output=log)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    return driver


class Agent:
    def __init__(self):
        self.driver: webdriver.Chrome | None = None

    # -- element states ----------------------------------------------------------------
    def _find(self, css: str):
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    def _state(self, css: str) -> dict:
        """What a wait looks at: present, visible, enabled, text and value of the first match."""
        el = self._find(css)
        if el is None:
            return {"present": False, "visible": False}
        return {"present": True, "visible": el.is_displayed(), "enabled": el.is_enabled(),
                "text": el.text, "value": el.get_attribute("value"), "checked": el.is_selected()}

    @staticmethod
    def _holds(state: dict, until: str, text: str | None) -> bool:
        if until == "present":
            return state["present"]
        if until == "absent":
            return not state["present"]
        if until == "hidden":
            return not state["visible"]
        # a switch's input is drawn as its toggle (opacity 0): checked whether shown or not
        if until in ("checked", "unchecked"):
            return state["present"] and state["checked"] == (until == "checked")
        if not state["visible"]:
            return False
        if until == "visible":
            return True
        if until == "enabled":
            return state["enabled"]
        if until == "disabled":
            return not state["enabled"]
        if until == "text":
            return text in state["text"]
        if until == "match":
            return re.search(text, state["text"]) is not None
        if until == "value":
            return state["value"] == text
        raise ValueError(f"unknown condition {until!r}")

    def wait(self, css: str, until: str = "visible", text: str | None = None, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self._state(css)
                if self._holds(state, until, text):
                    return state
            except StaleElementReferenceException:
                state = {"stale": True}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{css} not {until}{' ' + repr(text) if text is not None else ''} "
                                   f"after {timeout:.0f}s; it is {json.dumps(state)}")
            time.sleep(0.1)

    # -- the requests ------------------------------------------------------------------
    def op_start(self, width: int, height: int, profile: str, log: str):
        self.driver = start(width, height, profile, log)
        # --window-size is the window's outer size: headless chromium keeps room for its
        # (invisible) toolbars; the page is to get width x height
        inner = "return [window.innerWidth, window.innerHeight, window.outerWidth, window.outerHeight]"
        w, h, ow, oh = self.driver.execute_script(inner)
        if (w, h) != (width, height):
            self.driver.set_window_size(width + ow - w, height + oh - h)
        caps = self.driver.capabilities
        size = self.driver.execute_script(inner)[:2]
        return {"browser": caps.get("browserVersion"),
                "driver": caps.get("chrome", {}).get("chromedriverVersion", "").split(" ")[0],
                "viewport": size}

    def op_open(self, url: str):
        self.driver.switch_to.default_content()
        self.driver.get(url)
        return self.driver.current_url

    def op_top(self):
        self.driver.switch_to.default_content()

    def op_frame(self, css: str, timeout: float = 30):
        """Into the iframe `css` of the current document, once it is there."""
        self.wait(css, "present", timeout=timeout)
        self.driver.switch_to.frame(self._find(css))

    def op_wait(self, css: str, until: str = "visible", text: str | None = None, timeout: float = 30):
        return self.wait(css, until, text, timeout)

    def op_click(self, css: str, timeout: float = 30):
        self.wait(css, "enabled", timeout=timeout)
        el = self._find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()

    def op_type(self, css: str, text: str, timeout: float = 30):
        self.wait(css, "enabled", timeout=timeout)
        el = self._find(css)
        el.clear()
        el.send_keys(text)

    def op_js(self, script: str, args: list | None = None):
        return self.driver.execute_script(script, *(args or []))

    def op_viewport(self, width: int | None = None, height: int | None = None, mobile: bool = False):
        """The page's viewport as a phone's (`mobile`: touch, its meta viewport) or, without
        a size, the window's own again."""
        if width is None:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        else:
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        return self.driver.execute_script("return [window.innerWidth, window.innerHeight]")

    def op_screenshot(self, path: str):
        """The viewport as a PNG at `path` (the top document's, whatever frame is current)."""
        data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def op_console(self):
        """The console's messages since the last call (every frame's), as lines."""
        return [f"{e.get('level')} {e.get('message')}" for e in self.driver.get_log("browser")]

    def op_cookies_clear(self):
        self.driver.delete_all_cookies()

    def op_quit(self):
        if self.driver:
            self.driver.quit()
            self.driver = None


def main() -> None:
    agent = Agent()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            value = getattr(agent, f"op_{op}")(**request)
            answer = {"value": value}
        except (WebDriverException, TimeoutError, ValueError, AttributeError, OSError) as e:
            message = getattr(e, "msg", None) or str(e)
            try:
                where = agent.driver.current_url if agent.driver else "no browser"
            except WebDriverException:
                where = "?"
            answer = {"error": f"{type(e).__name__}: {message.strip()} (at {where})"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if op == "quit":
            break
    agent.op_quit()


if __name__ == "__main__":
    main()
