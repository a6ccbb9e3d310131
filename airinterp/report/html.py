"""A self-contained HTML document: headings, paragraphs, tables and rows of plotly figures.

plotly.js is inlined once in the head (no CDN, no network): the official *cartesian* bundle shipped
in ``vendor/`` (1.5 MB: the trace types of :data:`CARTESIAN_TRACES`) when every figure uses only those
and plotly.py bundles the same plotly.js version, else the full plotly.js that plotly.py bundles
(4.6 MB). Each figure is a div with a fixed id (``fig0``, ``fig1`` ...), so the same content gives the
same bytes. The file is written to a
hidden temporary name and renamed, so a reader never sees half a report.
"""

import html
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from airinterp.io import atomic_write_text

#: the plotly.js cartesian bundle (npm ``plotly.js-cartesian-dist-min``, MIT licence beside it)
CARTESIAN_BUNDLE = Path(__file__).parent / "vendor" / "plotly-cartesian.min.js"
#: the trace types that bundle registers (its README; a test renders each in Chromium)
CARTESIAN_TRACES = frozenset({"bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
                              "image", "pie", "scatter", "scatterternary", "violin"})  # fmt: skip


@cache
def cartesian_bundle() -> tuple[str, str]:
    """(version, source) of the shipped cartesian bundle; its header names the version."""
    text = CARTESIAN_BUNDLE.read_text(encoding="utf-8")
    m = re.search(r"plotly\.js \(cartesian - minified\) v(\S+)", text[:300])
    if m is None:
        raise RuntimeError(f"{CARTESIAN_BUNDLE}: no 'plotly.js (cartesian - minified) vX' header")
    return m.group(1), text


def plotlyjs_for(trace_types: "set[str]") -> tuple[str, str]:
    """(which, source): the cartesian bundle when it can draw ``trace_types`` and is the plotly.js
    version plotly.py writes figures for, else plotly.py's full bundle."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    version, source = cartesian_bundle()
    if trace_types <= CARTESIAN_TRACES and version == get_plotlyjs_version():
        return "cartesian", source
    return "full", get_plotlyjs()


STYLE = """
body{font-family:sans-serif;margin:2em;line-height:1.4}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em} h3{margin-top:1.4em}
p.note{color:#444;max-width:70em}
table.tbl{border-collapse:collapse;font-size:.85em;margin:.6em 0}
table.tbl th,table.tbl td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
table.tbl th{background:#f3f3f3}
td.v-same-direction,td.v-matches{background:#e3f4e3} td.v-differs{background:#f8dede}
td.v-inconclusive{background:#fbf3d5} td.v-not-comparable{background:#eeeeee}
div.row{display:flex;flex-wrap:wrap;gap:1.2em;overflow-x:auto;align-items:flex-start}
div.col{flex:0 0 auto} div.col>h4{margin:.2em 0}
nav ul{columns:2;max-width:60em}
div.tblwrap{overflow-x:auto;max-width:100%}
"""


class Document:
    """Build with :meth:`heading`, :meth:`para`, :meth:`table`, :meth:`figures`; :meth:`write`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.n_figures = 0
        self.trace_types: set[str] = set()

    def heading(self, text: str, level: int = 2) -> None:
        anchor = None
        if level == 2:
            anchor = f"s{len(self.toc)}"
            self.toc.append((anchor, text))
        ident = f" id='{anchor}'" if anchor else ""
        self.parts.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")

    def para(self, text: str, cls: str = "note") -> None:
        self.parts.append(f"<p class='{cls}'>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, caption: str | None = None, digits: int = 4, verdict_column: str | None = None) -> None:
        """A table of ``df`` (index dropped); floats to ``digits`` significant digits; cells of
        ``verdict_column`` get a class per verdict (coloured)."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
        body = []
        for row in df.itertuples(index=False):
            cells = []
            for col, v in zip(df.columns, row, strict=True):
                text = _cell(v, digits)
                cls = f" class='v-{str(v).replace(' ', '-')}'" if col == verdict_column else ""
                cells.append(f"<td{cls}>{html.escape(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f"<div class='tblwrap'><table class='tbl'>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
                          "</table></div>")  # a wide table scrolls inside its box, never the page

    def figure(self, fig: go.Figure) -> None:
        self.parts.append(self._fig(fig))

    def figures(self, figs: Sequence[go.Figure | None], labels: Sequence[str] | None = None, empty: str = "") -> None:
        """One row of figures side by side (one column per checkpoint); None: ``empty`` text."""
        cols = []
        for i, fig in enumerate(figs):
            label = f"<h4>{html.escape(labels[i])}</h4>" if labels else ""
            inner = self._fig(fig) if fig is not None else f"<p class='note'>{html.escape(empty)}</p>"
            cols.append(f"<div class='col'>{label}{inner}</div>")
        self.parts.append("<div class='row'>" + "".join(cols) + "</div>")

    def _fig(self, fig: go.Figure) -> str:
        self.trace_types |= {trace.type for trace in fig.data}
        fit_title(fig)
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{self.n_figures}",
                          config={"displaylogo": False})  # fmt: skip
        self.n_figures += 1
        return div

    def render(self, built: str | None = None) -> str:
        nav = ""
        if len(self.toc) > 2:
            items = "".join(f"<li><a href='#{a}'>{html.escape(t)}</a></li>" for a, t in self.toc)
            nav = f"<nav><ul>{items}</ul></nav>"
        stamp = f"<p class='built'>built {html.escape(built)}</p>" if built else ""
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(self.title) + "</title>"
            "<script type='text/javascript'>" + plotlyjs_for(self.trace_types)[1] + "</script><style>" + STYLE + "</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{stamp}{nav}" + "\n".join(self.parts) + "</body></html>"
        )  # fmt: skip

    def write(self, path: "str | Path", built: str | None = None) -> Path:
        return atomic_write_text(path, self.render(built))


#: pixels per character of a plotly title (17 px font, a generous average so a line never runs out)
TITLE_CHAR_PX = 8.5


def fit_title(fig: go.Figure) -> None:
    """Break a title that is wider than its figure into lines (at spaces) and make room above the
    plot for them: a plotly title never wraps by itself and is cut at the figure's edge."""
    import textwrap

    text = fig.layout.title.text
    if not text or "<" in text:  # markup (a <br>, a span): the author laid it out
        return
    width = fig.layout.width or 700
    lines = textwrap.wrap(text, max(24, int((width - 40) / TITLE_CHAR_PX)), break_on_hyphens=False)
    if len(lines) < 2:
        return
    top = fig.layout.margin.t if fig.layout.margin.t is not None else 100
    fig.update_layout(title={"text": "<br>".join(lines)}, margin={"t": max(top, 40 + 22 * len(lines))})
    if fig.layout.height is not None:
        fig.update_layout(height=fig.layout.height + max(0, 40 + 22 * len(lines) - top))


def _cell(v, digits: int) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:  # nan
            return ""
        return f"{v:.{digits}g}"
    return str(v)
