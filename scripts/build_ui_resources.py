"""Builds the agent's UI resources: tray icons (PNG, drawn with QPainter) and translations (.qm).

Run it after changing a user-facing string or the icon drawing, then commit what it wrote:

    .venv/bin/python scripts/build_ui_resources.py            # icons, lupdate, lrelease
    .venv/bin/python scripts/build_ui_resources.py --check    # exit 1: a zh_CN string untranslated

`pyside6-lupdate` (shipped with PySide6-Essentials) refreshes the `.ts` sources from the tr() calls
in ui/, keeping the translations already made; `pyside6-lrelease` compiles them to `.qm`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "resources" / "translations"
ICONS = ROOT / "resources" / "icons"
LANGUAGES = ("zh_CN", "en")


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    raise SystemExit(f"{name} not found next to {sys.executable}; install PySide6-Essentials")


def build_icons() -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtGui import QGuiApplication

    from ui.icons import SIZES, STATES, draw_state_icon, icon_path

    _app = QGuiApplication.instance() or QGuiApplication([])
    ICONS.mkdir(parents=True, exist_ok=True)
    written = []
    for state in STATES:
        for size in SIZES:
            path = Path(icon_path(state, size))
            if not draw_state_icon(state, size).save(str(path), "PNG"):
                raise SystemExit(f"cannot write {path}")
            written.append(path)
    del _app
    return written


def ts_path(lang: str) -> Path:
    return TRANSLATIONS / f"teller_guard_{lang}.ts"


def update_ts() -> None:
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "ui").glob("*.py"))
    for lang in LANGUAGES:
        subprocess.run(
            [_tool("pyside6-lupdate"), "-no-obsolete", "-locations", "none",
             "-source-language", "en", "-target-language", lang, *sources,
             "-ts", str(ts_path(lang).relative_to(ROOT))],
            cwd=ROOT, check=True)


def release() -> None:
    for lang in LANGUAGES:
        ts = ts_path(lang)
        subprocess.run([_tool("pyside6-lrelease"), "-silent", str(ts), "-qm",
                        str(ts.with_suffix(".qm"))], cwd=ROOT, check=True)


def untranslated(lang: str = "zh_CN") -> list[str]:
    """Source strings of `lang`'s .ts without a finished translation."""
    missing = []
    for message in ET.parse(ts_path(lang)).getroot().iter("message"):
        source = message.findtext("source") or ""
        tr = message.find("translation")
        if tr is None or tr.get("type") in ("unfinished", "obsolete", "vanished") or not tr.text:
            missing.append(source)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report untranslated zh_CN strings (exit 1 if any)")
    args = parser.parse_args()
    if not args.check:
        print(f"icons: {len(build_icons())} PNG files in {ICONS.relative_to(ROOT)}")
        update_ts()
        release()
    missing = untranslated()
    for source in missing:
        print(f"untranslated (zh_CN): {source!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
