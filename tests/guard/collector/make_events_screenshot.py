"""Take docs/screenshots/events-page.png: the events page of a collector with a day of demo data,
signed in and shot by headless Chromium.

Run from the repository root: .venv/bin/python -m tests.guard.collector.make_events_screenshot
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.servers import run_collector

from ._cdp import Chromium
from ._helpers import seed_demo


def main(out: Path = Path("docs/screenshots/events-page.png")) -> int:
    with tempfile.TemporaryDirectory() as tmp, run_collector(
        f"sqlite:///{tmp}/demo.db", env={"TZ": "Asia/Shanghai"}
    ) as url:
        seed_demo(url, url.enroll_token)
        with Chromium(Path(tmp) / "profile", width=1400, height=900) as page:
            page.goto(f"{url}/events")
            page.js_then_load(f"document.querySelector('input[name=token]').value = "
                              f"{url.admin_token!r}; document.querySelector('form').submit()")
            page.goto(f"{url}/events?outcome=justified")
            page.screenshot(out.resolve())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
