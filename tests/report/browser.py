"""Load an HTML report in headless Chromium (Playwright driving Debian's /usr/bin/chromium):
console errors, failed requests, rendered plotly figures, a full-page screenshot."""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

#: flags that keep Chromium off the (closed) network and working as root in a container
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip


def find_chromium() -> str | None:
    for name in (os.environ.get("AIRINTERP_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def why_no_browser() -> str | None:
    """None when a browser test can run, else the reason it cannot."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if find_chromium() is None:
        return "no Chromium found (Debian: apt-get install chromium; or set AIRINTERP_CHROMIUM); scripts/test.sh installs it where it runs as root"
    return None


@dataclass
class PageCheck:
    figures: int  # plotly figure divs in the page
    rendered: int  # of those, the ones that drew an SVG or canvas
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # anything fetched that is not the file itself


def check_page(path: Path, screenshot: Path | None = None, timeout_ms: int = 120_000) -> PageCheck:
    from playwright.sync_api import sync_playwright

    url = path.resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url) if r.url != url else None)
            page.goto(url, wait_until="load", timeout=timeout_ms)
            counts = page.evaluate(
                """() => { const divs = [...document.querySelectorAll('div.plotly-graph-div')];
                          return [divs.length, divs.filter(d => d.querySelector('svg.main-svg, canvas')).length]; }"""
            )
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True, timeout=timeout_ms)
        finally:
            browser.close()
    return PageCheck(figures=counts[0], rendered=counts[1], errors=errors, requests=requests)
