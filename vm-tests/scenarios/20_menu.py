"""Scenario 2, the desktop's right-click menu: through the VNC client, a right click on
admin's desktop opens fluxbox's root menu, and OCR (tesseract) of the captured region reads
its entries xterm and Firefox. Runs after 10_vnc on the shared machine."""

from vmtest.edge import USERS, ocr, wait_for_desktop
from vmtest.image import DISTROS  # runs on every release: TigerVNC 1.11, 1.12 and 1.15

# Where it runs: a desktop and its menu: nothing of a kernel of its own.
KINDS = ("container",)
# The state 10_vnc leaves (admin on :1, operator on :2), on the same machine.
NEEDS = ("10_vnc",)

X, Y = 200, 150            # an empty spot of the desktop (the toolbar is at the bottom)


def test(machine):
    machine.wait_for_open_port(5901)
    password = USERS["admin"][0]
    wait_for_desktop(machine, 5901, password, "desktop.png")
    status, output = machine.vncdo(5901, password, "move", str(X), str(Y), "click", "3",
                                   "pause", "2", "capture", str(machine.out_dir / "menu.png"))
    assert status == 0, f"vncdo right click failed (exit {status}):\n{output}"
    # fluxbox centres the menu's title on the pointer. The region around it, clear of the
    # note at the top right (it names xterm and Firefox too) and of other windows; the
    # same region before the click must not read as the menu.
    box = (0, Y - 20, X + 300, Y + 150)
    text = ocr(machine.out_dir / "menu.png", box)
    plain = ocr(machine.out_dir / "desktop.png", box).lower()
    assert "xterm" not in plain and "firefox" not in plain, f"the region reads as a menu before the click:\n{plain}"
    (machine.out_dir / "menu.txt").write_text(text)
    machine.log("    OCR of the menu: " + " | ".join(l for l in text.splitlines() if l.strip()))
    lower = text.lower()
    assert "xterm" in lower and "firefox" in lower, \
        f"the right-click menu does not show xterm and Firefox; OCR read:\n{text}"
    # Close the menu again (Escape) so later screenshots show the plain desktop.
    machine.vncdo(5901, password, "key", "esc")
