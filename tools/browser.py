"""Load an HTML report in headless Chromium: console errors, requests, rendered plotly figures,
screenshots (of the whole page or of each section).

Needs Playwright (``pip install playwright``, in the ``test`` extra) and a Chromium on the system
(Debian: ``apt-get install chromium``); Playwright drives that binary and downloads no browser.
"""

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


def _launch(pw):
    reason = why_no_browser()
    if reason is not None:
        raise RuntimeError(reason)
    return pw.chromium.launch(executable_path=find_chromium(), args=ARGS)


def check_page(path: Path, screenshot: Path | None = None, timeout_ms: int = 120_000) -> PageCheck:
    """Open ``path`` (file://), collect console errors and outside requests, count the plotly
    figures and those that drew; optionally save a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    url = path.resolve().as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = _launch(pw)
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


def layout_issues(path: Path, width: int, timeout_ms: int = 120_000) -> list[str]:
    """What does not fit a ``width``-pixel window: the page scrolling sideways (a wide figure may
    scroll inside its own row, the page may not), a figure title cut at its figure's edge, a
    colour bar without a title. Empty when everything fits."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            return page.evaluate(
                """(width) => { const out = [];
                  const sw = document.scrollingElement.scrollWidth;
                  if (sw > width + 1) out.push(`the page scrolls sideways: ${sw} px in a ${width} px window`);
                  for (const div of document.querySelectorAll('div.plotly-graph-div')) {
                    const svg = div.querySelector('svg.main-svg'); if (!svg) continue;
                    const box = svg.getBoundingClientRect();
                    for (const t of div.querySelectorAll('.gtitle')) {
                      const b = t.getBoundingClientRect();
                      if (b.right > box.right + 1 || b.left < box.left - 1)
                        out.push(`${div.id}: title cut: ${t.textContent.slice(0, 60)}`);
                    }
                    for (const cb of div.querySelectorAll('.colorbar')) {
                      const title = cb.querySelector('.cbtitle');
                      if (!title || !title.textContent.trim()) out.push(`${div.id}: a colour bar without a title`);
                    }
                  }
                  return out; }""",
                width,
            )
        finally:
            browser.close()


def screenshot_page(path: Path, out: Path, width: int, timeout_ms: int = 120_000) -> Path:
    """A full-page screenshot of ``path`` in a ``width``-pixel window."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            page.screenshot(path=str(out), full_page=True, timeout=timeout_ms)
        finally:
            browser.close()
    return out


def screenshot_sections(path: Path, out_dir: Path, prefix: str, sections: "dict[str, str]", scale: float = 0.6,
                        timeout_ms: int = 120_000) -> list[Path]:  # fmt: skip
    """One PNG per section of a report (from its ``<h2>`` to the next), at ``scale`` of the CSS
    size; ``sections``: heading text -> file stem. Returns the files written."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, device_scale_factor=scale)
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            boxes = page.evaluate(
                """() => { const hs = [...document.querySelectorAll('h2')];
                          return hs.map((h, i) => { const next = hs[i + 1];
                            const top = h.getBoundingClientRect().top + window.scrollY;
                            const end = next ? next.getBoundingClientRect().top + window.scrollY : document.body.scrollHeight;
                            return [h.textContent, top, end - top]; }); }"""
            )
            for text, top, height in boxes:
                if text not in sections:
                    continue
                f = out_dir / f"{prefix}_{sections[text]}.png"
                page.screenshot(path=str(f), full_page=True, clip={"x": 0, "y": top, "width": 1400, "height": height})
                written.append(f)
        finally:
            browser.close()
    return written
