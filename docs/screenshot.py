"""The README's picture of a report: its header, case DAG and rankings, as a PNG.

    python docs/screenshot.py demo-report.html docs/report-demo.png

Run by ``make docs-screenshot`` (after ``ledger demo --report``). Drives Debian's
Chromium through Playwright (``executable_path``; Playwright never downloads a browser
here); LEDGER_CHROMIUM names another binary.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(report: str, png: str, width: int = 1100, height: int = 1250) -> None:
    exe = os.environ.get("LEDGER_CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(Path(report).resolve().as_uri(), wait_until="load")
        page.screenshot(path=png, clip={"x": 0, "y": 0, "width": width, "height": height})
        browser.close()
    print(f"{png}: {Path(png).stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
