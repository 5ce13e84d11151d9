"""The web console page (issue 30) in a real browser: Cockpit 287 from bookworm's archive
(cockpit-ws, cockpit-system from the offline repository), the packages edge-setup and
edge-setup-cockpit, and headless chromium on the host (Debian's, through chromedriver and
Selenium) at 1024x768 through a forward of port 9090. admin (a sudoer) logs in through
Cockpit's login form, turns on administrative access with her password, and opens "Edge
appliance" from the shell's menu: she enables remote connectivity for a tenant URL (the
plan, Apply: the agent's file says enabled=true and the URL, the page shows the device
ID); a wrong URL shows edge-setup's error under the field and changes nothing; she enables
VNC for herself with a password (the plan, Apply: her session runs and a real VNC client
logs in with that password; the users' list shows her display and port); the health card lists
the checks, and its Fix repairs her password file's mode; at a phone's width the page is one
column and its VNC users' list readable. She logs out; operator, an ordinary member of vncusers,
logs in: the remote connectivity controls are disabled, the VNC form has no user field, and
the password she sets there starts her session, which the VNC client opens with it (and
not with admin's). Every screen is a PNG in the artifacts; the steps' times are printed."""

import contextlib
import itertools
import shlex
import time

from vmtest import edge_setup_cockpit_deb
from vmtest.edge import display_of, install_package
from vmtest.web import Browser

# Where it runs: Cockpit, PAM logins, sudo, systemd units and TigerVNC sessions; nothing of a
# kernel of its own.
KINDS = ("container",)
# Bookworm's image alone has Cockpit in its offline repository (vmtest/image.py).
DISTROS = ("bookworm",)
# Its own machine: admin becomes a sudoer, both users get login passwords and admin a VNC
# password of the page's, and Cockpit serves on 9090; on the shared machine all of that
# would have to be undone for 20_menu and the others after it, which use 10_vnc's passwords.
# What sharing would save is 10_vnc's `edge-setup vnc`, about 25 s in a container.
FRESH_MACHINE = True

LOGIN = {"admin": "Adm1n-Login", "operator": "0perator-Login"}    # the accounts' passwords
VNC = {"admin": "webadm12", "operator": "webops34"}               # set on the page
AGENT = "/usr/edge/properties/edge-agent/remote-connectivity.properties"
TENANT = "https://tenant.example.com"
FRAME = "iframe[name='cockpit1:localhost/edge-setup']"
_shots = itertools.count(1)


def shot(b: Browser, name: str, of: str | None = None) -> None:
    """A screenshot NN-name.png in the artifacts, numbered in the order taken; `of`: scrolled
    to that element of the current document first."""
    b.screenshot(f"{next(_shots):02d}-{name}.png", of)


class Steps:
    """Each step's wall time, printed at the end."""

    def __init__(self, machine):
        self.machine, self.times = machine, []

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.machine.log(f"  -- {name}")
        started = time.monotonic()
        yield
        self.times.append((name, time.monotonic() - started))

    def report(self) -> None:
        self.machine.log("  step times:")
        for name, took in self.times:
            self.machine.log(f"    {took:6.1f}s  {name}")
        self.machine.log(f"    {sum(t for _, t in self.times):6.1f}s  in all")


def test(machine):
    step = Steps(machine)
    with step("the packages, users, edge-setup vnc and Cockpit on the guest"):
        appliance(machine)
    port = machine.forward(9090)
    with step("headless chromium on the host"):
        browser = Browser(machine, 1024, 768)
    with browser as b:
        with step("admin logs in and turns on administrative access"):
            log_in(b, port, "admin")
            shot(b, "shell-limited-access")
            open_page(b)
            # before administrative access the page is the limited one
            b.wait("#remote-limited")
            assert b.js("return document.getElementById('remote-save').disabled") is True
            shot(b, "page-limited-access")
            administrative_access(b, "admin")
            b.frame(FRAME)
            b.wait("#remote-limited", "hidden")
            b.wait("#remote-save", "enabled")
            shot(b, "page-administrative-access")

        with step("remote connectivity: enable for a tenant URL"):
            remote_connectivity(machine, b)

        with step("remote connectivity: a wrong URL"):
            wrong_url(machine, b)

        with step("VNC for admin, set by the administrator"):
            vnc_for_admin(machine, b)

        with step("health: the checks, and Fix"):
            # what the run left: admin's session is up
            health(b, "health", r"ok\s+vnc\.session \(admin\)")
            fix(machine, b)

        with step("the phone's width"):
            phone(b)

        with step("operator logs in: limited, her own VNC password"):
            log_out(b)
            log_in(b, port, "operator")
            open_page(b)
            operator(machine, b)
    step.report()


def appliance(machine) -> None:
    install_package(machine)
    deb = edge_setup_cockpit_deb()
    machine.copy_in(deb, f"/root/{deb.name}")
    # Cockpit from the offline repository, as an appliance installs it for the page
    machine.succeed("DEBIAN_FRONTEND=noninteractive apt-get install -y cockpit-ws cockpit-system "
                    f"/root/{deb.name} 2>&1", timeout=600)
    for pkg in ("cockpit-ws", "cockpit-system", "cockpit-bridge", "edge-setup-cockpit"):
        machine.succeed(f"dpkg-query -W -f '${{Status}}' {pkg} | grep -qx 'install ok installed'")
    machine.succeed("test -f /usr/share/cockpit/edge-setup/manifest.json")
    # admin may sudo (Cockpit's administrative access asks sudo, with her password)
    machine.succeed("useradd -m -s /bin/bash -G sudo admin")
    # Debian has a system group named operator: the user then gets the default group.
    machine.succeed("useradd -m -s /bin/bash $(getent group operator >/dev/null && echo -N) operator")
    machine.succeed("chpasswd <<'EOF'\n" + "".join(f"{u}:{p}\n" for u, p in LOGIN.items()) + "EOF")
    machine.succeed("edge-setup config set vnc.listen lan")
    machine.succeed("edge-setup vnc 2>&1", timeout=1800)
    machine.succeed("usermod -aG vncusers operator")
    # `remote-connectivity enable` refuses without a name server. The LAN has none at
    # 10.0.2.3: unreachable from the guest, a lookup of the tenant fails at once (the page's
    # status, enable and check each look it up) instead of after the resolver's time-outs,
    # which made the scenario 114 s instead of 43.
    machine.succeed("printf 'nameserver 10.0.2.3\\n' >/etc/resolv.conf && "
                    "ip route add unreachable 10.0.2.3/32")
    machine.succeed("systemctl enable --now cockpit.socket")
    machine.wait_for_open_port(9090)


def log_in(b: Browser, port: int, user: str) -> None:
    """Cockpit's login form, as the user; the shell is there with its menu."""
    b.open(f"https://127.0.0.1:{port}/")
    b.wait("#login-user-input")
    b.type("#login-user-input", user)
    b.type("#login-password-input", LOGIN[user], secret=True)
    shot(b, f"login-{user}")
    b.click("#login-button")
    b.wait("#host-apps a[href='/edge-setup']", timeout=60)


def open_page(b: Browser) -> None:
    """"Edge appliance" from the shell's menu; into its frame once the page has asked
    edge-setup its version (the cards are shown)."""
    b.top()
    b.click("#host-apps a[href='/edge-setup']")
    b.frame(FRAME)
    b.wait("#cards", timeout=60)


def administrative_access(b: Browser, user: str) -> None:
    """Cockpit's "Limited access" button, then its dialog with the user's password."""
    b.top()
    b.click("#super-user-indicator button")
    b.wait("#switch-to-admin-access-password")
    shot(b, "administrative-access-dialog")
    b.type("#switch-to-admin-access-password", LOGIN[user] + "\n", secret=True)
    b.wait("#switch-to-admin-access-password", "absent", timeout=60)
    b.wait("#super-user-indicator", "text", "Administrative access")


def planned(b: Browser, name: str, field_error: str | None = None) -> str:
    """The plan dialog a Save, Set password or Fix opened: its lines (a screenshot of it).
    A refusal under the form's field (`field_error`) instead fails the step with its text."""
    wanted = "#plan:not([hidden])" + (f", {field_error}:not([hidden])" if field_error else "")
    state = b.wait(wanted, timeout=60)
    if b.js("return document.getElementById('plan').hidden"):
        raise AssertionError(f"no plan: the page says {state['text']!r}")
    if b.js("return document.getElementById('plan-apply').hidden"):
        # the same dialog, without Apply: an error or nothing to change
        shot(b, name)
        raise AssertionError(f"no plan: the dialog says {b.text('#plan-title')!r}: {b.text('#plan-intro')!r}")
    shot(b, name)
    return b.text("#plan-lines")


def apply(b: Browser, timeout: float = 180) -> None:
    """Apply in the plan dialog; until the dialog closes (or shows the run's error)."""
    b.click("#plan-apply")
    b.wait("#plan[hidden], #plan-error:not([hidden])", "present", timeout=timeout)
    error = b.js("const e = document.getElementById('plan-error'); return e.hidden ? null : e.textContent")
    assert error is None, f"Apply failed: {error}"


def agent_file(machine) -> str:
    return machine.succeed(f"sha256sum {AGENT} && cat {AGENT}")


def remote_connectivity(machine, b: Browser) -> None:
    if not b.wait("#remote-enabled", "present")["checked"]:
        b.click("label[for='remote-enabled']")
        b.wait("#remote-enabled", "checked")
    b.type("#remote-url", TENANT)
    b.click("#remote-save")
    lines = planned(b, "plan-remote-connectivity", "#remote-url-error")
    assert AGENT in lines, f"the plan does not write the agent's file:\n{lines}"
    apply(b)
    machine.succeed(f"grep -qx enabled=true {AGENT} && grep -qx {shlex.quote('url=' + TENANT)} {AGENT}")
    device_id = machine.succeed("cat /usr/edge/properties/edge-agent/device-id").strip()
    assert device_id, "no device ID after remote-connectivity enable"
    b.wait("#device-id", "text", device_id)
    b.wait("#remote-url", "value", TENANT)
    shot(b, "remote-connectivity-enabled", of="#remote")


def wrong_url(machine, b: Browser) -> None:
    before = agent_file(machine)
    b.type("#remote-url", "ftp://bad.example.com")
    b.click("#remote-save")
    error = b.wait("#remote-url-error", "match", r"\S")["text"]
    machine.log(f"    under the field: {error}")
    assert b.js("return document.getElementById('plan').hidden") is True, "a plan for a wrong URL"
    shot(b, "wrong-url", of="#remote")
    assert agent_file(machine) == before, "a wrong URL changed the agent's file"


def set_vnc_password(machine, b: Browser, user: str) -> int:
    """The VNC form sent: its plan, Apply, then the user's session serves and a real VNC
    client opens it with the password typed. Returns the user's display."""
    b.click("#vnc-apply")
    lines = planned(b, f"plan-vnc-{user}", "#vnc-error")
    machine.log("    plan: " + " | ".join(lines.splitlines()))
    apply(b)
    n = display_of(machine, user)
    machine.wait_for_unit(f"tigervncserver@:{n}.service", timeout=120)
    machine.wait_for_open_port(5900 + n, timeout=120)
    machine.screenshot(5900 + n, VNC[user], f"{user}-vnc.png")
    return n


def vnc_for_admin(machine, b: Browser) -> None:
    b.type("#vnc-user", "admin")
    b.type("#vnc-password", VNC["admin"], secret=True)
    n = set_vnc_password(machine, b, "admin")
    b.wait("#vnc-rows", "match", rf"admin\s*display :{n}, port {5900 + n}\s*running")
    shot(b, "vnc-admin", of="#vnc")
    # the page's refresh after Apply: the URL field shows the saved URL again, without the
    # wrong one's error
    b.wait("#remote-url", "value", TENANT)
    b.wait("#remote-url-error", "hidden")


def health(b: Browser, name: str, row: str) -> None:
    """The health card: its counts line, and its rows with `row` (a regex) among them."""
    counts = b.wait("#health-counts", "match", r"^\d+ ok, \d+ warnings, \d+ failed, \d+ skipped$",
                    timeout=60)["text"]
    b.wait("#health-rows", "match", row, timeout=60)
    shot(b, name, of="#health")
    b.machine.log(f"    health: {counts}")


def fix(machine, b: Browser) -> None:
    """Something check --fix repairs (admin's password file readable by all), found by
    Check again, repaired by Fix: its plan, Apply."""
    passwd = "/home/admin/.vnc/passwd"
    machine.succeed(f"chmod 0644 {passwd}")
    b.click("#health-refresh")
    b.wait("#health-rows", "text", "vnc.password-file (admin)", timeout=60)
    b.wait("#health-fix", timeout=60)
    b.click("#health-fix")
    lines = planned(b, "plan-fix")
    assert passwd in lines, f"the fix's plan does not name {passwd}:\n{lines}"
    apply(b)
    machine.succeed(f"test \"$(stat -c '%a %U' {passwd})\" = '600 admin'")
    b.wait("#health-fix", "hidden", timeout=60)


def columns(b: Browser) -> int:
    """How many columns the page's cards are in (distinct left edges)."""
    return b.js("return new Set([...document.querySelectorAll('#cards > section')]"
                ".map(s => Math.round(s.getBoundingClientRect().left))).size")


def phone(b: Browser) -> None:
    wide = columns(b)
    b.top()
    size = b.viewport(390, 844, mobile=True)
    b.frame(FRAME)
    b.wait("#cards")
    narrow = columns(b)
    shot(b, "phone", of="#page")
    shot(b, "phone-vnc", of="#vnc")
    b.machine.log(f"    columns: {wide} at 1024x768, {narrow} at {size[0]}x{size[1]}")
    assert wide == 2, f"{wide} columns in the frame of a 1024x768 window"
    assert narrow == 1, f"{narrow} columns at a phone's width"
    # the VNC users' rows wrap their cells: each user's name and display/port on one line
    lines = b.js("return [...document.querySelectorAll('#vnc-rows .pf-v6-c-data-list__item')]"
                 ".flatMap(li => [...li.querySelectorAll('.pf-v6-c-data-list__cell')].slice(0, 2))"
                 ".map(cell => { const r = document.createRange(); r.selectNodeContents(cell);"
                 " const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));"
                 " return [cell.textContent, tops.size] })")
    assert lines and all(n == 1 for _, n in lines), \
        f"the VNC users' cells wrap at a phone's width ([text, lines]): {lines}"
    b.top()
    b.viewport()
    b.frame(FRAME)


def log_out(b: Browser) -> None:
    b.top()
    b.click("#toggle-menu")      # "Session" (Cockpit 287)
    b.click("#logout")
    b.wait("#login-user-input")


def operator(machine, b: Browser) -> None:
    b.wait("#remote-limited")
    disabled = b.js("return ['remote-enabled', 'remote-url', 'remote-save']"
                    ".map(id => document.getElementById(id).disabled)")
    assert disabled == [True, True, True], f"operator's remote connectivity controls: disabled {disabled}"
    b.wait("#vnc-user-group", "hidden")
    b.wait("#vnc-form-title", "text", "Your VNC password")
    shot(b, "operator")
    machine.fail("grep -q '=operator$' /etc/tigervnc/vncserver.users")     # no display yet
    b.type("#vnc-password", VNC["operator"], secret=True)
    n = set_vnc_password(machine, b, "operator")
    # admin's password does not open it (one wrong password: TigerVNC blocks after 5)
    status, output = machine.vncdo(5900 + n, VNC["admin"], "capture", str(machine.out_dir / "refused.png"))
    assert status == 3, f"admin's VNC password opened operator's display (exit {status}):\n{output}"
    b.wait("#vnc-rows", "match", rf"operator\s*display :{n}, port {5900 + n}\s*running")
    shot(b, "operator-vnc", of="#vnc")
    health(b, "operator-health", r"ok\s+vnc\.session \(operator\)")
