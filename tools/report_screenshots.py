"""Screenshots of the committed reports' sections (reports/screenshots/), for notes and README;
with --widths, whole pages at laptop and desktop widths plus what does not fit them.

    python tools/report_screenshots.py                                  # every reports/*.html
    python tools/report_screenshots.py --widths 1280,1920 out/report/sudoku6_Lx_H.html   # -> out/screenshots/
"""

import sys
from pathlib import Path

from browser import (  # tools/browser.py, beside this script
    layout_issues,
    screenshot_page,
    screenshot_sections,
)

root = Path(__file__).parents[1]
if len(sys.argv) > 2 and sys.argv[1] == "--widths":
    for report in map(Path, sys.argv[3:]):
        for width in map(int, sys.argv[2].split(",")):
            shot = screenshot_page(report, root / "out" / "screenshots" / f"{report.stem}_{width}.png", width)
            issues = layout_issues(report, width)
            print(f"{shot} ({shot.stat().st_size / 1024:.0f} KiB): " + ("; ".join(issues) if issues else "everything fits"))
    sys.exit(0)

SECTIONS = {
    "Decoded rollouts (Figs 2-5)": "decode",  # the reproduction table: reports/<report>_reproduction.csv (--tables)
    "Content changes and freeze (Figs 6-7)": "freeze", "Roles of the two states": "roles",
    "Convergence: layer lens, commit points, fixed points": "convergence",
    "Causal locality of writes": "write_locality", "Trajectories and dimensionality": "geometry",
    "Probes and their causal test": "probes",
    "Patching across sub-steps": "patching",
    "Attention locality (Figs 8-9)": "attention", "Attention example and persistence (Figs 10-13)": "example",
}  # fmt: skip

for report in sorted((root / "reports").glob("*.html")) if len(sys.argv) < 2 else map(Path, sys.argv[1:]):
    for f in screenshot_sections(report, root / "reports" / "screenshots", report.stem, SECTIONS, scale=0.45):
        print(f"{f.relative_to(root)} ({f.stat().st_size / 1024:.0f} KiB)")
