"""Takes the README screenshots of the print prompt and the two USB warnings (in Chinese), from the
real running channels.

    .venv/bin/python tests/ui/x11/make_print_usb_screenshots.py [--out docs/screenshots]

Needs root (a private cupsd, a loop mount, a new login), as CI has. It starts Xvfb with a tray,
a private cupsd with a cups-pdf queue under Teller Guard's CUPS policy, a real collector serving
the policy, the real machine service (`teller-guard service`) and the real agent (`python -m
ui.app`, TELLER_GUARD_LANG=zh_CN) for the session of an ordinary login the script makes,
connected to the service's socket. Then:

print-prompt.png: that teller prints a PDF with customer data with `lp`; the service holds the
job and asks the teller's agent; its dialog is grabbed with `import`.
usb-mounted.png: an ext4 loop image is mounted at a mount point the policy names
(``usb.mount_points``: udev does not run here); the service keeps it read-only and the agent
asks for a justification.
usb-copied.png: after the justification (the first reason, picked with xdotool's keys) the
service makes it writable; `cp` of a spreadsheet with customer data onto it gives the agent's
warning toast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from harness import AgentProcess, XServer, wait_until, xserver  # noqa: E402

ID = "11010519491231002X"
CARD = "6222021234567890128"
MOBILE = "13812345678"
DIALOG = "柜面隐私卫士"  # the prompts' window title
TOAST = "Teller Guard notice"  # the toast's window name
MARGIN = 24


class TellerAgent(AgentProcess):
    """The real agent for the teller's session beside the machine service. It runs as root
    naming the teller (USER), which the service accepts from a privileged peer only: this
    machine's Python lives under /root, which an ordinary login cannot read."""

    def __init__(self, server: XServer, data_dir: Path, user: str, socket_path: Path) -> None:
        from guard.credentials import PinStore, hash_secret

        # the teller's PIN is set, as after the first run: no PIN set-up dialog on screen
        data_dir.mkdir(parents=True, exist_ok=True)
        PinStore(user, data_dir, use_keyring=False).set(hash_secret("135790"))
        super().__init__(server, data_dir, None, extra_env={
            "TELLER_GUARD_SOCKET": str(socket_path), "HOME": pwd.getpwnam(user).pw_dir,
            "USER": user, "LOGNAME": user})


def _window(xs: XServer, name: str, timeout: float, seen: list[str]) -> str:
    """The id of a visible window called `name` that is not among `seen` (shown before)."""
    found = wait_until(lambda: [w for w in xs.visible_windows(name) if w not in seen],
                       timeout=timeout, what=f"a new window {name!r}")
    assert isinstance(found, list)
    return str(found[-1])


def _frame(xs: XServer, window: str) -> tuple[int, int, int, int]:
    """(x, y, width, height) on the screen of the top-level window holding `window` (the
    window xdotool finds by name can be one of Qt's inner windows)."""
    from Xlib import display as xdisplay

    d = xdisplay.Display(xs.display)
    try:
        root = d.screen().root
        w = d.create_resource_object("window", int(window))
        while (parent := w.query_tree().parent) != root:
            w = parent
        geo = w.get_geometry()
        return int(geo.x), int(geo.y), int(geo.width), int(geo.height)
    finally:
        d.close()


def _grab(xs: XServer, window: str, path: Path) -> None:
    """Screenshot the root window cropped to `window`'s top level and a margin around it."""
    x, y, w, h = _frame(xs, window)
    x, y, w, h = max(0, x - MARGIN), max(0, y - MARGIN), w + 2 * MARGIN, h + 2 * MARGIN
    xs.run("import", "-window", "root", "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(path))
    print(f"wrote {path}", flush=True)


def _press(xs: XServer, window: str, *keys: str) -> None:
    """Type `keys` into `window`: with no window manager the keyboard follows the pointer."""
    x, y, w, h = _frame(xs, window)
    xs.xdotool("mousemove", str(x + w // 2), str(y + h // 2))
    xs.key(*keys)


def _background(xs: XServer, rgb: int = 0x5B7FA6) -> None:
    """Paint the desktop one colour (what xsetroot -solid does), so the margin is not black."""
    from Xlib import display as xdisplay

    d = xdisplay.Display(xs.display)
    try:
        root = d.screen().root
        root.change_attributes(background_pixel=rgb)  # a 24-bit TrueColor visual: pixel = RGB
        root.clear_area()
        d.sync()
    finally:
        d.close()


def _spreadsheet(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.append(["姓名", "身份证号", "银行卡号", "手机"])
    sheet.append(["张三", ID, CARD, MOBILE])
    wb.save(path)


def take(out: Path, tmp: Path) -> None:
    from guard.platforms._linux.cups import CUPS_POLICY
    from tests.guard.watchers.real_service import RealService
    from tests.support.cups import private_cups, simple_pdf, test_user
    from tests.support.servers import run_collector
    from tests.support.volumes import ext4_volume

    os.chmod(tmp, 0o755)  # the teller's agent reaches the service's socket through it
    point = tmp / "mnt-ext4"  # where `ext4_volume` mounts the stick
    policy = tmp / "policy.toml"
    policy.write_text(
        'version = "screenshots"\n[prompts]\ntimeout_s = 120\n'
        '[print]\naction = "confirm"\n'
        f'[usb]\nmount_points = ["{point}"]\nread_only_until_justified = true\n',
        encoding="utf-8")
    with contextlib.ExitStack() as stack:
        xs = stack.enter_context(xserver())
        _background(xs)
        cups = stack.enter_context(private_cups(CUPS_POLICY))
        user = stack.enter_context(test_user())
        cups.add_pdf_queue("Office")
        collector = stack.enter_context(run_collector(
            f"sqlite:///{tmp}/collector.db", extra_args=["--policy", str(policy)]))
        service = RealService(tmp, collector, user, env=cups.env)
        stack.callback(service.stop)
        service.start_service()
        agent = TellerAgent(xs, tmp / "agent-data", user, service.sock).start()
        stack.callback(agent.stop)
        wait_until(lambda: "Office_tg_release" in cups.run(["lpstat", "-p"]).stdout,
                   timeout=60, what="the service to guard the queue")
        time.sleep(2.0)  # the agent's connection to the service is open by now

        # print: the teller prints a customer list
        pdf = simple_pdf(["Customer list", f"Zhang San  ID {ID}", f"Card {CARD}",
                          f"Mobile {MOBILE}"], pages=2)
        seen = xs.visible_windows(DIALOG)
        cups.run(["lp", "-d", "Office", "-t", "客户名单.pdf", "-"], user=user, input=pdf)
        dialog = _window(xs, DIALOG, 60, seen)
        time.sleep(1.0)
        _grab(xs, dialog, out / "print-prompt.png")
        _press(xs, dialog, "Escape")  # cancel: the job is cancelled
        wait_until(lambda: dialog not in xs.visible_windows(DIALOG), timeout=30,
                   what="the print prompt to close")

        # USB: a stick appears; the service keeps it read-only and asks
        _spreadsheet(tmp / "客户名单.xlsx")
        seen = xs.visible_windows(DIALOG)
        stack.enter_context(ext4_volume(tmp, size_mb=256))
        dialog = _window(xs, DIALOG, 60, seen)
        time.sleep(1.0)
        _grab(xs, dialog, out / "usb-mounted.png")
        _press(xs, dialog, "space")  # the first reason (it has the focus) ...
        xs.key("Return")  # ... and continue
        seen = xs.visible_windows(TOAST)
        wait_until(lambda: subprocess.run(["cp", str(tmp / "客户名单.xlsx"), str(point)],
                                          capture_output=True).returncode == 0,
                   timeout=60, interval=0.2, what="the stick to become writable")
        toast = _window(xs, TOAST, 60, seen)
        time.sleep(0.5)
        _grab(xs, toast, out / "usb-copied.png")
        for kind in ("USB_VOLUME_MOUNTED", "USB_FILE_WRITTEN", "PRINT_JOB_HELD"):
            wait_until(lambda kind=kind: service.events(kind), timeout=60,
                       what=f"the {kind} event at the collector")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: a private cupsd, a loop mount and a new login need it",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tg-shots-") as tmp:
        take(args.out.resolve(), Path(os.path.realpath(tmp)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    sys.exit(main())
