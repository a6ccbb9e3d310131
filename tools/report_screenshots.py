"""Screenshots of the committed reports' sections (reports/screenshots/), for notes and README.

    python tools/report_screenshots.py            # every reports/*.html
"""

import sys
from pathlib import Path

from browser import screenshot_sections  # tools/browser.py, beside this script

SECTIONS = {
    "Decoded rollouts (Figs 2-5)": "decode",  # the reproduction table: reports/<report>_reproduction.csv (--tables)
    "Content changes and freeze (Figs 6-7)": "freeze", "Roles of the two states": "roles",
    "Patching across sub-steps": "patching",
    "Attention locality (Figs 8-9)": "attention", "Attention example and persistence (Figs 10-13)": "example",
}  # fmt: skip

root = Path(__file__).parents[1]
for report in sorted((root / "reports").glob("*.html")) if len(sys.argv) < 2 else map(Path, sys.argv[1:]):
    for f in screenshot_sections(report, root / "reports" / "screenshots", report.stem, SECTIONS, scale=0.45):
        print(f"{f.relative_to(root)} ({f.stat().st_size / 1024:.0f} KiB)")
