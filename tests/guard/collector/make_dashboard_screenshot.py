"""Take docs/dashboard.png: a collector with a day of demo data, shot by headless Chromium.

Run from the repository root: .venv/bin/python -m tests.guard.collector.make_dashboard_screenshot
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.servers import run_collector

from ._helpers import seed_demo


def main(out: Path = Path("docs/dashboard.png")) -> int:
    with tempfile.TemporaryDirectory() as tmp, run_collector(
        f"sqlite:///{tmp}/demo.db", env={"TZ": "Asia/Shanghai"}
    ) as url:
        seed_demo(url, url.enroll_token)
        profile = Path(tmp) / "chromium"
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={out.resolve()}",
             "--hide-scrollbars", "--window-size=1400,1000", f"{url}/?token={url.admin_token}"],
            check=True, capture_output=True, timeout=120,
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
