"""Figure builders: tidy DataFrames in, plotly figures out (no tensor maths here).

Colours follow the paper's renderers (AIR_SPEC 4.a): Sudoku digits on white, undecided (PAD,
BLANK) grey; Maze PAD grey (undecided), wall black, open white, S green, G red, path blue.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from airinterp.tasks.rules import TokenRoles  # plain data; the report imports no task code

GREY, WHITE = "#c8c8c8", "#ffffff"
STATE_COLOURS = {"zL": "#ff7f0e", "zH": "#1f77b4"}


def _discrete_scale(colours: dict[int, str], vmax: int) -> list:
    """A colourscale mapping integer z = 0..vmax to fixed colours (steps, not gradients)."""
    scale = []
    for v in range(vmax + 1):
        c = colours.get(v, WHITE)
        scale += [[v / (vmax + 1), c], [(v + 1) / (vmax + 1), c]]
    return scale


WRONG = "#d62728"


def _grid_trace(roles: "TokenRoles", grid: np.ndarray, side: int, token_names: dict[int, str],
                io: "tuple[np.ndarray, np.ndarray] | None" = None, cell_px: float = 30) -> go.Heatmap:  # fmt: skip
    """One decoded grid: digits on white, undecided grey (a task with digits), the puzzle's givens
    in bold and digits that differ from the solution in red (a given cell decoded to another digit
    too) when ``io`` = (inputs, labels) is given; else each token in its role's colour (the Maze
    renderer's)."""
    g = np.asarray(grid).reshape(side, side)
    if roles.first_digit is not None:
        colour = np.where(np.isin(g, roles.undecided), 0, 1)
        text = np.where(g >= roles.first_digit, (g - roles.first_digit + 1).astype(str), "").astype(object)
        if io is not None:
            inputs, labels = (np.asarray(a).reshape(side, side) for a in io)
            given = inputs >= roles.first_digit
            wrong = (g >= roles.first_digit) & (g != labels)  # a given cell decoded to another digit too
            text = np.where(given, "<b>" + text + "</b>", text)
            text = np.where(wrong, f"<span style='color:{WRONG}'>" + text + "</span>", text)
        scale = _discrete_scale({0: GREY, 1: WHITE}, 1)
        zmax = 1
    else:
        colour, text = g, np.full(g.shape, "")
        zmax = max(roles.names)
        scale = _discrete_scale(roles.colours, zmax)
    hover = np.vectorize(lambda v: token_names.get(int(v), str(v)))(g)
    return go.Heatmap(z=colour, text=text, texttemplate="%{text}", textfont={"size": int(min(18, max(7, 0.45 * cell_px)))},
                      customdata=hover, zmin=-0.5,
                      zmax=zmax + 0.5, colorscale=scale, showscale=False, xgap=1, ygap=1,
                      hovertemplate="row %{y}, col %{x}: %{customdata}<extra></extra>")  # fmt: skip


def _grids(tokens: pd.DataFrame, puzzle: int) -> tuple[dict, int, list[str]]:
    """The puzzle's grids by (state, sub-step), the number of sub-steps, and the states shown (zH
    first; TRM single-z has only zL)."""
    t = tokens[tokens.puzzle == puzzle]
    grids = {(s, k): g.sort_values("cell").token.to_numpy() for (s, k), g in t.groupby(["state", "substep"], observed=True)}
    states = [s for s in ("zH", "zL") if any(key[0] == s for key in grids)]
    return grids, int(t.substep.max()) + 1, states


def decode_grids(tokens: pd.DataFrame, roles: "TokenRoles", side: int, token_names: dict[int, str], puzzle: int,
                 updates: Sequence[str], start: int = 0, width: int = 820,
                 io: "tuple[np.ndarray, np.ndarray] | None" = None) -> go.Figure:  # fmt: skip
    """zH and zL of one puzzle side by side, a slider over the sub-steps (Figs 2-5), showing
    sub-step ``start`` first.

    ``tokens``: the decode table (puzzle, substep, state, cell, token); ``updates[k]`` names
    sub-step k's update."""
    grids, K, states = _grids(tokens, puzzle)
    start = min(max(start, 0), K - 1)
    fig = make_subplots(rows=1, cols=len(states), subplot_titles=states, horizontal_spacing=0.06)
    for col, s in enumerate(states, start=1):
        for k in range(K):
            tr = _grid_trace(roles, grids[(s, k)], side, token_names, io, cell_px=0.4 * width / side)
            tr.visible = k == start
            fig.add_trace(tr, row=1, col=col)
    steps = []
    for k in range(K):
        vis = [False] * (len(states) * K)
        for col in range(len(states)):
            vis[col * K + k] = True
        steps.append({"method": "update", "label": f"{k}", "args": [{"visible": vis},
                      {"title.text": f"puzzle {puzzle}: after sub-step {k} ({updates[k]})"}]})  # fmt: skip
    fig.update_layout(
        title=f"puzzle {puzzle}: after sub-step {start} ({updates[start]})",
        sliders=[{"steps": steps, "active": start, "currentvalue": {"prefix": "sub-step "}}],
        height=round(width * 0.57), width=width, margin={"t": 60, "b": 80}, plot_bgcolor="#808080",
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor="x")
    fig.update_xaxes(showticklabels=False)
    if len(states) == 2:
        fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return fig


def decode_strip(tokens: pd.DataFrame, roles: "TokenRoles", side: int, token_names: dict[int, str], puzzle: int,
                 updates: Sequence[str], substeps: Sequence[int], panel: int = 115,
                 io: "tuple[np.ndarray, np.ndarray] | None" = None) -> go.Figure:  # fmt: skip
    """Small multiples of one puzzle: zH above zL after each of ``substeps`` (the paper's
    four-panel figures show two sub-steps per update type)."""
    grids, K, states = _grids(tokens, puzzle)
    substeps = [k for k in substeps if 0 <= k < K]
    n = len(substeps)
    fig = make_subplots(rows=len(states), cols=n, horizontal_spacing=0.01, vertical_spacing=0.06,
                        row_titles=states, subplot_titles=[f"{k}: {updates[k].split('.', 2)[-1]}" for k in substeps])  # fmt: skip
    for i, s in enumerate(states, start=1):
        for j, k in enumerate(substeps, start=1):
            fig.add_trace(_grid_trace(roles, grids[(s, k)], side, token_names, io, cell_px=panel / side), row=i, col=j)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    for k in range(1, len(states) * n + 1):
        fig.layout[f"yaxis{k if k > 1 else ''}"].scaleanchor = f"x{k if k > 1 else ''}"
    fig.update_annotations(font_size=10)
    fig.update_layout(title=f"puzzle {puzzle}: sub-steps {substeps[0]}..{substeps[-1]} (ACT step {updates[substeps[0]].split('.')[1]})",
                      height=len(states) * panel + 110, width=n * panel + 90, margin={"t": 70, "l": 20, "r": 40, "b": 20},
                      plot_bgcolor="#808080")  # fmt: skip
    return fig


def substep_lines(substeps: pd.DataFrame, columns: Sequence[str], title: str) -> go.Figure:
    """Per-sub-step means of each state (``substeps``: the decode command's substeps table),
    one panel per column, markers where the state was written."""
    fig = make_subplots(rows=len(columns), cols=1, shared_xaxes=True, subplot_titles=list(columns), vertical_spacing=0.08)
    for i, col in enumerate(columns, start=1):
        for s, g in substeps.groupby("state", sort=False):
            err = g.get(col + "_sem")
            fig.add_trace(go.Scatter(x=g.substep, y=g[col], name=s, legendgroup=s, showlegend=i == 1,
                                     line={"color": STATE_COLOURS.get(s)}, mode="lines+markers",
                                     error_y=None if err is None else {"type": "data", "array": err, "visible": True}),
                          row=i, col=1)  # fmt: skip
    fig.update_xaxes(title_text="sub-step (flat update index)", row=len(columns), col=1)
    fig.update_layout(title=title, height=260 * len(columns) + 80, width=820)
    return fig


def freeze_comparison(summary: pd.DataFrame, metrics: Sequence[str], title: str) -> go.Figure:
    """Normal vs frozen means of ``metrics`` (Figs 6-7; top), each bar with its own 95 % interval
    (Clopper-Pearson for rates, bootstrap otherwise) and, below, the paired difference
    frozen - normal with its 95 % bootstrap CI against a zero line (the difference's CI is drawn
    on the difference, never on a bar)."""
    rows = summary.set_index("metric").loc[list(metrics)]
    fig = make_subplots(rows=2, cols=len(metrics), row_heights=[0.62, 0.38], vertical_spacing=0.16,
                        subplot_titles=[*metrics, *["frozen - normal (paired, 95 % CI)"] * len(metrics)])  # fmt: skip
    for i, (m, r) in enumerate(rows.iterrows(), start=1):
        lo, hi, d = r["delta_ci_low"], r["delta_ci_high"], r["delta_mean"]
        means = np.array([r["base_mean"], r["treated_mean"]], float)
        arm = None
        if "base_ci_low" in r.index:  # each arm's own interval (exact for rates, bootstrap otherwise)
            lows = np.array([r["base_ci_low"], r["treated_ci_low"]], float)
            highs = np.array([r["base_ci_high"], r["treated_ci_high"]], float)
            arm = {"type": "data", "symmetric": False, "array": highs - means, "arrayminus": means - lows, "color": "#333"}
        fig.add_trace(go.Bar(x=["normal", "frozen"], y=means, marker_color=["#7f7f7f", "#1f77b4"], error_y=arm,
                             showlegend=False, hovertemplate=f"{m}: %{{y:.4g}}<extra></extra>"), row=1, col=i)  # fmt: skip
        fig.add_trace(go.Scatter(x=["frozen - normal"], y=[d], mode="markers", marker={"color": "#d62728", "size": 9}, showlegend=False,
                                 error_y={"type": "data", "symmetric": False, "array": [hi - d], "arrayminus": [d - lo], "visible": True},
                                 hovertemplate=f"delta {d:.4g} [{lo:.4g}, {hi:.4g}], p={r['p_sign_flip']:.3g}<extra></extra>"),
                      row=2, col=i)  # fmt: skip
        fig.add_hline(y=0, line={"color": "#444", "width": 1, "dash": "dot"}, row=2, col=i)
        fig.layout.annotations[i - 1].text = f"{m}<br>delta {d:+.3g} [{lo:+.3g}, {hi:+.3g}]"
    fig.update_layout(title=title, height=560, width=max(420, 300 * len(metrics)))
    return fig


def paired_points(puzzles: pd.DataFrame, metric: str, title: str) -> go.Figure:
    """Every puzzle's normal and frozen value of ``metric`` joined by a line (the paired design)."""
    fig = go.Figure()
    a, b = puzzles[metric + "_normal"].to_numpy(float), puzzles[metric + "_frozen"].to_numpy(float)
    xs, ys = [], []
    for u, v in zip(a, b, strict=True):
        xs += ["normal", "frozen", None]
        ys += [u, v, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", line={"width": 0.5, "color": "rgba(31,119,180,0.3)"},
                             marker={"size": 4}, showlegend=False, hoverinfo="skip"))  # fmt: skip
    fig.update_layout(title=title, yaxis_title=metric, height=420, width=420)
    return fig


def patch_curve(summary: pd.DataFrame, metric: str = "exact", title: str = "") -> go.Figure:
    """Top: patched and clean ``metric`` against the ACT step of the patch, one line per state/site,
    each patched point with its own 95 % interval (Clopper-Pearson for exact accuracy).
    Bottom: the paired difference patched - clean with its 95 % bootstrap CI (the CI is the
    difference's, drawn on the difference). The x-axis marks the patched steps only."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4], vertical_spacing=0.1,
                        subplot_titles=[metric, "patched - clean (paired, 95 % CI)"])  # fmt: skip
    summary = summary.assign(series=summary["state"].fillna(summary["site"].str.replace(r"^act\.\d+\.", "", regex=True)))
    for name, g in summary.groupby("series", sort=False):
        colour = STATE_COLOURS.get(name)
        y = g[f"{metric}_patched"]
        own = None
        if f"{metric}_patched_ci_low" in g:  # the patched arm's own interval
            own = {"type": "data", "symmetric": False, "array": g[f"{metric}_patched_ci_high"] - y,
                   "arrayminus": y - g[f"{metric}_patched_ci_low"], "thickness": 1}  # fmt: skip
        fig.add_trace(go.Scatter(x=g.act, y=y, name=f"{name} patched", mode="lines+markers", error_y=own,
                                 line={"color": colour}, legendgroup=name), row=1, col=1)  # fmt: skip
        d = g[f"{metric}_delta"]
        fig.add_trace(go.Scatter(x=g.act, y=d, name=f"{name}: patched - clean", mode="markers", marker={"color": colour},
                                 legendgroup=name, showlegend=False,
                                 error_y={"type": "data", "symmetric": False, "array": g[f"{metric}_delta_ci_high"] - d,
                                          "arrayminus": d - g[f"{metric}_delta_ci_low"]}), row=2, col=1)  # fmt: skip
    clean = summary.groupby("act")[f"{metric}_clean"].mean()
    fig.add_trace(go.Scatter(x=clean.index, y=clean.values, name="clean", mode="lines", line={"dash": "dash", "color": "#7f7f7f"}),
                  row=1, col=1)  # fmt: skip
    fig.add_hline(y=0, line={"color": "#444", "width": 1, "dash": "dot"}, row=2, col=1)
    acts = sorted(int(a) for a in summary.act.unique())
    fig.update_xaxes(tickmode="array", tickvals=acts, row=2, col=1, title_text="ACT step patched (the state carried into it)")
    fig.update_xaxes(tickmode="array", tickvals=acts, row=1, col=1)
    fig.update_layout(title=title, height=560, width=760)
    return fig


def persistence_lines(persistence: pd.DataFrame, title: str = "") -> go.Figure:
    """Top-k overlap of one query's attended cells between consecutive shown ACT steps, one line
    per update (an airinterp extension of Figs 11 and 13)."""
    fig = go.Figure()
    colours = {"L": STATE_COLOURS["zL"], "H": STATE_COLOURS["zH"]}
    for u, g in persistence.groupby("update", sort=False):
        fig.add_trace(go.Scatter(x=[f"{a}->{b}" for a, b in zip(g.from_step, g.to_step, strict=True)], y=g.overlap,
                                 name=str(u), mode="lines+markers", line={"color": colours.get(str(u)[0])}))  # fmt: skip
    k = int(persistence.top_k.iloc[0]) if len(persistence) else 0
    fig.update_layout(title=title or f"top-{k} overlap between consecutive steps", yaxis={"range": [0, 1.05], "title": "overlap"},
                      xaxis_title="ACT steps", height=330, width=520)  # fmt: skip
    return fig


CONTRASTS = {"nbr_mass": "delta_nbr (L - H)", "entropy": "delta_ent (H - L)", "viol_mass": "delta_viol (L - H)",
             "density_n4": "N4 density (L - H)", "density_n8": "N8 density (L - H)", "density_5x5": "5x5 density (L - H)"}


def attention_contrasts(summary: pd.DataFrame, metrics: Sequence[str], method: str = "head_mean", title: str = "") -> go.Figure:
    """L - H contrasts per layer and query class with their CIs (Figs 8-9); symmetric y-axes
    so negative contrasts show (A16)."""
    s = summary[summary.method == method]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[CONTRASTS.get(m, m) for m in metrics])
    colours = ["#d62728", "#7f7f7f"]
    for i, m in enumerate(metrics, start=1):
        g = s[s.metric == m]
        for ci, (cls, gc) in enumerate(g.groupby("class", sort=False)):
            err_hi = (gc.ci_high - gc.delta_mean) if "ci_high" in gc else None
            err_lo = (gc.delta_mean - gc.ci_low) if "ci_low" in gc else None
            fig.add_trace(go.Bar(x=[f"layer {v}" for v in gc.layer], y=gc.delta_mean, name=cls, legendgroup=cls,
                                 showlegend=i == 1, marker_color=colours[ci % 2],
                                 error_y={"type": "data", "symmetric": False, "array": err_hi, "arrayminus": err_lo}),
                          row=1, col=i)  # fmt: skip
        top = float(np.nanmax(np.abs(np.r_[g.get("ci_high", g.delta_mean), g.get("ci_low", g.delta_mean), g.delta_mean]))) if len(g) else 1
        fig.update_yaxes(range=[-1.1 * top, 1.1 * top], tickformat=".2~r", row=1, col=i)  # 0.0005, not 500µ
    fig.update_layout(title=title, barmode="group", height=430, width=max(480, 340 * len(metrics)))
    return fig


def head_heatmap(heads: pd.DataFrame, metric: str, cls: str, title: str = "") -> go.Figure:
    """Per (layer, head) mean contrast of ``metric`` for one query class."""
    g = heads[(heads.metric == metric) & (heads["class"] == cls)]
    z = g.pivot(index="layer", columns="head", values="delta_mean")
    vals = np.abs(z.to_numpy(float))
    top = float(np.nanmax(vals)) if np.isfinite(vals).any() else 1.0
    fig = go.Figure(go.Heatmap(z=z.to_numpy(), x=[f"head {h}" for h in z.columns], y=[f"layer {v}" for v in z.index],
                               colorscale="RdBu", zmid=0, zmin=-top, zmax=top,
                               colorbar={"title": {"text": CONTRASTS.get(metric, metric).replace(" (", "<br>("), "side": "right"},
                                         "tickformat": ".2~r"},
                               hovertemplate="%{y}, %{x}: %{z:.4f}<extra></extra>"))  # fmt: skip
    fig.update_layout(title=title or f"{CONTRASTS.get(metric, metric)}, {cls}", height=360, width=620)
    return fig


def attention_maps(rows: pd.DataFrame, roles: "TokenRoles", side: int, query: int, steps: Sequence[int], updates: Sequence[str],
                   marks: dict, inputs: np.ndarray, box: tuple[int, int] | None = None, window: int = 5,
                   title: str = "") -> go.Figure:  # fmt: skip
    """Raw attention of one query over the grid, one row per update (L above H), one column per
    ACT step, one colour scale for every panel (Figs 10-13). ``rows``: (step, update, cell,
    attention); ``marks[step]``: the V/E cells (bool [cell]) drawn as red crosses; the query is
    outlined; Sudoku boxes (``box`` = rows, cols) drawn; Maze panels show a (2 window + 1)^2 window
    around the query with walls shaded and S/G boxed."""
    qr, qc = divmod(query, side)
    if roles.wall is not None:  # a maze: a window around the query
        r0, r1 = max(0, qr - window), min(side, qr + window + 1)
        c0, c1 = max(0, qc - window), min(side, qc + window + 1)
    else:
        r0, r1, c0, c1 = 0, side, 0, side
    n = len(steps)
    fig = make_subplots(rows=len(updates), cols=n, horizontal_spacing=0.02, vertical_spacing=0.08,
                        subplot_titles=[f"{u}, ACT step {a}" for u in updates for a in steps])  # fmt: skip
    shown = rows[rows["step"].isin(list(steps)) & rows.cell.map(lambda c: r0 <= c // side < r1 and c0 <= c % side < c1)]
    vmax = float(shown.attention.max()) if len(shown) else 1.0
    grid_in = np.asarray(inputs).reshape(side, side)
    for i, u in enumerate(updates, start=1):
        for j, a in enumerate(steps, start=1):
            g = rows[(rows["step"] == a) & (rows["update"] == u)].sort_values("cell")
            z = g.attention.to_numpy().reshape(side, side)[r0:r1, c0:c1]
            fig.add_trace(go.Heatmap(z=z, x=np.arange(c0, c1), y=np.arange(r0, r1), zmin=0, zmax=vmax, colorscale="Viridis",
                                     showscale=(i == 1 and j == n), colorbar={"title": "attention"},
                                     hovertemplate="row %{y}, col %{x}: %{z:.4f}<extra></extra>"), row=i, col=j)  # fmt: skip
            m = np.asarray(marks.get(a, np.zeros(side * side, bool))).reshape(side, side)
            rr, cc = np.nonzero(m[r0:r1, c0:c1])
            fig.add_trace(go.Scatter(x=cc + c0, y=rr + r0, mode="markers", marker={"symbol": "x", "color": "red", "size": 9},
                                     name="violated / error", showlegend=(i == 1 and j == 1), hoverinfo="skip"), row=i, col=j)  # fmt: skip
            fig.add_shape(type="rect", x0=qc - 0.5, x1=qc + 0.5, y0=qr - 0.5, y1=qr + 0.5, line={"color": "white", "width": 3}, row=i, col=j)
            if box is not None:
                for k in range(0, side + 1, box[1]):
                    fig.add_shape(type="line", x0=k - 0.5, x1=k - 0.5, y0=-0.5, y1=side - 0.5, line={"color": "white", "width": 1.5}, row=i, col=j)
                for k in range(0, side + 1, box[0]):
                    fig.add_shape(type="line", x0=-0.5, x1=side - 0.5, y0=k - 0.5, y1=k - 0.5, line={"color": "white", "width": 1.5}, row=i, col=j)
            if roles.wall is not None:
                wr, wc = np.nonzero(grid_in[r0:r1, c0:c1] == roles.wall)
                fig.add_trace(go.Scatter(x=wc + c0, y=wr + r0, mode="markers", marker={"symbol": "square", "color": "rgba(0,0,0,0.35)", "size": 14},
                                         name="wall", showlegend=(i == 1 and j == 1), hoverinfo="skip"), row=i, col=j)  # fmt: skip
                for token in (roles.start, roles.goal):
                    colour = roles.colours[token]
                    for rr_, cc_ in zip(*np.nonzero(grid_in == token), strict=True):
                        if r0 <= rr_ < r1 and c0 <= cc_ < c1:
                            fig.add_shape(type="rect", x0=cc_ - 0.5, x1=cc_ + 0.5, y0=rr_ - 0.5, y1=rr_ + 0.5,
                                          line={"color": colour, "width": 3}, row=i, col=j)  # fmt: skip
    # legend entries for the outlines drawn as shapes, each a marker on a cell it describes (an empty
    # trace would reset the scaled axes of its panel)
    outlines = [("query cell (white outline)", "#999999", qr, qc)]
    if roles.wall is not None:
        for label, token in (("start (outlined)", roles.start), ("goal (outlined)", roles.goal)):
            at = [(r_, c_) for r_, c_ in zip(*np.nonzero(grid_in == token), strict=True) if r0 <= r_ < r1 and c0 <= c_ < c1]
            if at:
                outlines.append((label, roles.colours[token], *at[0]))
    for label, colour, r_, c_ in outlines:
        fig.add_trace(go.Scatter(x=[c_], y=[r_], mode="markers", name=label, hoverinfo="skip",
                                 marker={"symbol": "square-open", "size": 12, "color": colour, "line": {"width": 2}}),
                      row=1, col=1)  # fmt: skip
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    for k in range(1, len(updates) * n + 1):
        fig.layout[f"yaxis{k if k > 1 else ''}"].scaleanchor = f"x{k if k > 1 else ''}"
    fig.update_layout(title=title, height=300 * len(updates) + 140, width=max(520, 260 * n + 120), plot_bgcolor="white",
                      legend={"orientation": "h", "y": -0.04, "x": 0})  # fmt: skip
    return fig


SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def sweep_panels(table: pd.DataFrame, panels: Sequence[tuple[str, str, str, int | None, str, str]], title: str = "",
                 columns: int = 3) -> go.Figure:  # fmt: skip
    """Quantities along training: one panel per ``(section, quantity, state, layer, class, label)``,
    one line per series, the training step on a log axis, each point with its CI as error bars."""
    rows_n = -(-len(panels) // columns)
    fig = make_subplots(rows=rows_n, cols=columns, subplot_titles=[p[5] for p in panels], horizontal_spacing=0.07,
                        vertical_spacing=0.5 / max(rows_n, 1))  # fmt: skip
    series = list(dict.fromkeys(table.series))
    for k, (section, quantity, state, layer, cls, _) in enumerate(panels):
        sel = (table.section == section) & (table.quantity == quantity) & (table.state == state) & (table["class"] == cls)
        sel &= table.layer.isna() if layer is None else (table.layer == layer)
        for j, name in enumerate(series):
            d = table[sel & (table.series == name)].sort_values("step")
            if d.empty:
                continue
            fig.add_trace(go.Scatter(
                x=d.step, y=d["mean"], mode="lines+markers", name=name, legendgroup=name, showlegend=k == 0,
                line={"color": SERIES_COLOURS[j % len(SERIES_COLOURS)]},
                error_y={"type": "data", "symmetric": False, "array": d.ci_high - d["mean"], "arrayminus": d["mean"] - d.ci_low},
            ), row=k // columns + 1, col=k % columns + 1)  # fmt: skip
    fig.update_xaxes(type="log", title_text="training step")
    fig.update_layout(title=title, height=300 * rows_n, width=420 * columns, margin={"t": 80})
    return fig


def _trained_line(fig: go.Figure, x: float, rows: int) -> None:
    """A dashed vertical line where the trained rollout length ends (on every row)."""
    for r in range(1, rows + 1):
        fig.add_vline(x=x, line={"dash": "dash", "color": "#555", "width": 1}, row=r, col=1,  # type: ignore[arg-type]
                      annotation_text="trained length" if r == 1 else None, annotation_position="top left")  # fmt: skip


def lens_heatmap(summary: pd.DataFrame, metric: str, title: str, trained_substeps: int) -> go.Figure:
    """The layer lens (convergence panel): ``metric`` (accuracy or entropy of the non-given cells)
    after every block of every update, one panel per state (the updates that write it), x the
    sub-step, y the block; dashed: the end of the trained length."""
    states = [s for s in ("zL", "zH") if (summary.state == s).any()]
    fig = make_subplots(rows=len(states), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[f"{s}: updates that write it" for s in states])  # fmt: skip
    acc = metric == "accuracy"
    top = 1.0 if acc else float(np.nanmax(summary[metric].to_numpy(float))) if len(summary) else 1.0
    for i, s in enumerate(states, start=1):
        z = summary[summary.state == s].pivot(index="layer", columns="substep", values=metric)
        fig.add_trace(go.Heatmap(z=z.to_numpy(float), x=z.columns.to_numpy(), y=[f"block {v}" for v in z.index],
                                 colorscale="Viridis" if acc else "Magma", zmin=0, zmax=top, showscale=i == 1,
                                 colorbar={"title": {"text": "accuracy<br>(non-given)" if acc else "entropy<br>(nats)", "side": "right"},
                                           "tickformat": ".2~r"},
                                 hovertemplate=f"sub-step %{{x}}, %{{y}}: %{{z:.3f}}<extra>{s}</extra>"), row=i, col=1)  # fmt: skip
    _trained_line(fig, trained_substeps - 0.5, len(states))
    fig.update_xaxes(title_text="sub-step (flat update index)", row=len(states), col=1)
    fig.update_layout(title=title, height=200 * len(states) + 160, width=820)
    return fig


def residual_lines(summary: pd.DataFrame, title: str, trained_act: int) -> go.Figure:
    """Fixed-point residuals (convergence panel): top, ||f(z) - z|| / ||z|| of every update per
    state; bottom, each carried state's change over an ACT step; log scale, 95 % CIs, dashed: the
    end of the trained length. Puzzles right (solid) and wrong (dotted) at the trained length
    apart when the sample has both, else all of them."""
    groups = [g for g in ("right", "wrong") if (summary.puzzles == g).any()]
    groups = groups if len(groups) == 2 else ["all"]
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.16, subplot_titles=[
        "per update: ||f(z) - z|| / ||z|| of the state it writes", "per ACT step: carried state's relative change"])  # fmt: skip
    upd = summary[summary.kind == "update"]
    n_updates = int(upd.groupby("act").substep.nunique().max()) if len(upd) else 1
    for row, kind, xcol in ((1, "update", "substep"), (2, "act", "act")):
        for group in groups:
            part = summary[(summary.kind == kind) & (summary.puzzles == group)]
            for s, g in part.groupby("state", sort=False):
                name = s if group == "all" else f"{s}, {group} (n={int(g.n.iloc[0])})"
                fig.add_trace(go.Scatter(x=g[xcol], y=g.residual, name=name, legendgroup=name, showlegend=row == 1,
                                         mode="lines+markers", marker={"size": 4},
                                         line={"color": STATE_COLOURS.get(s), "dash": "dot" if group == "wrong" else "solid"},
                                         error_y={"type": "data", "symmetric": False, "array": g.ci_high - g.residual,
                                                  "arrayminus": g.residual - g.ci_low, "visible": True, "thickness": 1}),
                              row=row, col=1)  # fmt: skip
    fig.add_vline(x=trained_act * n_updates - 0.5, line={"dash": "dash", "color": "#555", "width": 1}, row=1, col=1,  # type: ignore[arg-type]
                  annotation_text="trained length", annotation_position="top left")
    fig.add_vline(x=trained_act - 0.5, line={"dash": "dash", "color": "#555", "width": 1}, row=2, col=1)  # type: ignore[arg-type]
    fig.update_yaxes(type="log", title_text="relative change")
    fig.update_xaxes(title_text="sub-step (flat update index)", row=1, col=1)
    fig.update_xaxes(title_text="ACT step", row=2, col=1)
    fig.update_layout(title=title, height=640, width=820)
    return fig


def commit_curves(summary: pd.DataFrame, title: str) -> go.Figure:
    """Commit points (convergence panel): the share of non-given cells whose state has committed
    to the answer (decodes it from there on) by the end of each sub-step, per state, 95 % CIs."""
    fig = go.Figure()
    g0 = summary[summary.metric == "committed"]
    for s, g in g0.groupby("state", sort=False):
        fig.add_trace(go.Scatter(x=g.substep, y=g["mean"], name=s, mode="lines+markers", line={"color": STATE_COLOURS.get(s)},
                                 marker={"size": 4},
                                 error_y={"type": "data", "symmetric": False, "array": g.ci_high - g["mean"],
                                          "arrayminus": g["mean"] - g.ci_low, "visible": True, "thickness": 1}))  # fmt: skip
    fig.update_layout(title=title, height=380, width=820, xaxis_title="sub-step (flat update index)",
                      yaxis={"title": "share of non-given cells committed", "range": [0, 1.02]})  # fmt: skip
    return fig


CLASS_COLOURS = {"self": "#2ca02c", "peers": "#d62728", "N4": "#d62728", "N8 diagonal": "#9467bd", "elsewhere": "#7f7f7f"}


def write_locality_lines(summary: pd.DataFrame, title: str) -> go.Figure:
    """Write locality: one panel per perturbed update, the mean relative change per cell of each
    geometry class around the perturbed cell at the following updates (log scale, 95 % CIs)."""
    targets = list(dict.fromkeys(summary.target))
    cols = 3 if len(targets) > 3 else len(targets)
    rows = -(-len(targets) // cols)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.04, vertical_spacing=min(0.2, 0.6 / rows),
                        subplot_titles=[f"after {t} ({summary[summary.target == t].state.iloc[0]})" for t in targets])  # fmt: skip
    for i, t in enumerate(targets):
        r, c = divmod(i, cols)
        for cls, g in summary[summary.target == t].groupby("class", sort=False):
            fig.add_trace(go.Scatter(x=g.offset, y=g.change, name=cls, legendgroup=cls, showlegend=i == 0, mode="lines+markers",
                                     line={"color": CLASS_COLOURS.get(cls)}, text=g.reader,
                                     hovertemplate="%{text}: %{y:.3g}<extra>" + cls + "</extra>",
                                     error_y={"type": "data", "symmetric": False, "array": g.change_ci_high - g.change,
                                              "arrayminus": g.change - g.change_ci_low, "visible": True, "thickness": 1}),
                          row=r + 1, col=c + 1)  # fmt: skip
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="relative change per cell", col=1)
    fig.update_xaxes(title_text="updates later")
    fig.update_layout(title=title, height=260 * rows + 140, width=820)
    return fig


def locality_bars(locality: pd.DataFrame, title: str) -> go.Figure:
    """The locality index (log neighbour / elsewhere change) of the update that reads each
    perturbation, coloured by its stage, 95 % CIs; 0: no preference for the neighbours."""
    colours = {"L": STATE_COLOURS["zL"], "H": STATE_COLOURS["zH"]}
    fig = go.Figure(go.Bar(x=[f"{t} -> {r.split('.')[-1]}" for t, r in zip(locality.target, locality.reader, strict=True)],
                           y=locality.locality, marker_color=[colours.get(s, GREY) for s in locality.reader_stage],
                           error_y={"type": "data", "symmetric": False, "array": locality.ci_high - locality.locality,
                                    "arrayminus": locality.locality - locality.ci_low, "visible": True},
                           hovertext=[f"read by a {s}-update" for s in locality.reader_stage]))  # fmt: skip
    fig.add_hline(y=0, line={"color": "#555", "width": 1})
    fig.update_layout(title=title, height=380, width=620, xaxis_title="perturbed update -> reading update (orange: L, blue: H)",
                      yaxis_title="log(neighbour / elsewhere change)")  # fmt: skip
    return fig


def participation_lines(summary: pd.DataFrame, title: str) -> go.Figure:
    """Participation ratio of the state each update writes, per sub-step: pooled over puzzles and
    cells (solid) and the mean per puzzle with its 95 % CI (dotted); the untrained control in grey."""
    fig = go.Figure()
    for (model, state), g in summary.groupby(["model", "state"], sort=False):
        colour = STATE_COLOURS.get(state, GREY) if model == "trained" else GREY
        dash = "solid" if state == "zH" else "dash"
        fig.add_trace(go.Scatter(x=g.substep, y=g.pr_pooled, name=f"{state} {model}, pooled", mode="lines",
                                 line={"color": colour, "dash": dash}, text=g["update"],
                                 hovertemplate="%{text}: PR %{y:.2f}<extra>" + f"{state} {model}, pooled</extra>"))  # fmt: skip
        fig.add_trace(go.Scatter(x=g.substep, y=g.pr_per_puzzle, name=f"{state} {model}, per puzzle", mode="markers",
                                 marker={"color": colour, "size": 4, "symbol": "circle" if state == "zH" else "diamond"},
                                 text=g["update"], hovertemplate="%{text}: PR %{y:.2f}<extra>" + f"{state} {model}, per puzzle</extra>",
                                 error_y={"type": "data", "symmetric": False, "array": g.ci_high - g.pr_per_puzzle,
                                          "arrayminus": g.pr_per_puzzle - g.ci_low, "visible": True, "thickness": 1}))  # fmt: skip
    fig.update_layout(title=title, height=400, width=820, xaxis_title="sub-step (the update writing the state)",
                      yaxis_title="participation ratio (1 .. d_model)")  # fmt: skip
    return fig


def trajectory_plot(trajectories: pd.DataFrame, title: str, n_puzzles: int = 5) -> go.Figure:
    """Both states on the shared basis (PC1 vs PC2): the mean over puzzles per sub-step (thick,
    the first sub-step marked) and the first ``n_puzzles`` puzzles' own trajectories (thin)."""
    fig = go.Figure()
    t = trajectories[trajectories.model == "trained"] if "model" in trajectories else trajectories
    for state, g in t.groupby("state", sort=False):
        colour = STATE_COLOURS.get(state, GREY)
        for i, (p, gp) in enumerate(g.groupby("puzzle", sort=True)):
            if i >= n_puzzles:
                break
            fig.add_trace(go.Scatter(x=gp.pc1, y=gp.pc2, mode="lines", line={"color": colour, "width": 0.6}, opacity=0.35,
                                     name=f"{state}, one puzzle", legendgroup=f"{state} one", showlegend=i == 0,
                                     text="act " + gp.act.astype(str) + " " + gp["update"],
                                     hovertemplate=f"puzzle {p}" + " %{text}<extra></extra>"))  # fmt: skip
        m = g.groupby("substep", sort=True).agg(pc1=("pc1", "mean"), pc2=("pc2", "mean"), act=("act", "first"),
                                                update=("update", "first")).reset_index()  # fmt: skip
        fig.add_trace(go.Scatter(x=m.pc1, y=m.pc2, mode="lines+markers", line={"color": colour, "width": 2.5},
                                 marker={"size": [10] + [4] * (len(m) - 1), "color": colour}, name=f"{state}, mean over puzzles",
                                 text="act " + m.act.astype(str) + " " + m["update"],
                                 hovertemplate="%{text}<extra>" + f"{state} mean</extra>"))  # fmt: skip
    fig.update_layout(title=title, height=460, width=620, xaxis_title="PC1 of the shared basis",
                      yaxis_title="PC2 of the shared basis")  # fmt: skip
    return fig


def basin_curves(summary: pd.DataFrame, title: str) -> go.Figure:
    """Perturbation basins: the share of puzzles whose answer is unchanged after noise of growing
    size on each state (log x), with Clopper-Pearson intervals."""
    fig = go.Figure()
    for state, g in summary.groupby("state", sort=False):
        fig.add_trace(go.Scatter(x=g.scale, y=g.unchanged, name=state, mode="lines+markers", line={"color": STATE_COLOURS.get(state, GREY)},
                                 customdata=np.stack([g.cells_changed, g.exact, g.exact_clean], axis=1),
                                 hovertemplate="noise %{x:g} x norm: unchanged %{y:.3f}, cells changed %{customdata[0]:.3f}, "
                                               "exact %{customdata[1]:.3f} (clean %{customdata[2]:.3f})<extra>" + state + "</extra>",
                                 error_y={"type": "data", "symmetric": False, "array": g.unchanged_ci_high - g.unchanged,
                                          "arrayminus": g.unchanged - g.unchanged_ci_low, "visible": True, "thickness": 1}))  # fmt: skip
    fig.update_xaxes(type="log", title_text="noise size / the cell's norm", exponentformat="power")
    fig.update_yaxes(range=[-0.02, 1.02], title_text="puzzles with the answer unchanged")
    fig.update_layout(title=title, height=380, width=620)
    return fig


def _candidates_mean(accuracy: pd.DataFrame) -> pd.DataFrame:
    """The candidate_<v> rows of a probe table averaged into one ``candidates`` row per sub-step."""
    acc = accuracy.copy()
    acc["target"] = acc.target.where(~acc.target.str.startswith("candidate_"), "candidates")
    cols = [c for c in ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "control", "majority") if c in acc]
    return acc.groupby(["substep", "act", "update", "state", "target"], sort=False, as_index=False)[cols].mean()


def probe_lines(accuracy: pd.DataFrame, title: str) -> go.Figure:
    """Probe accuracy per sub-step (the state each update writes, coloured), one panel per target
    (Sudoku's candidate probes averaged over digits); dotted: the permuted-label control; grey
    dashes: always the majority label. Cross-validated by puzzle, 95 % bootstrap CIs."""
    acc = _candidates_mean(accuracy)
    targets = list(dict.fromkeys(acc.target))
    fig = make_subplots(rows=1, cols=len(targets), shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=targets)
    for i, t in enumerate(targets):
        g = acc[acc.target == t]
        for state, gs in g.groupby("state", sort=False):
            colour = STATE_COLOURS.get(state, GREY)
            fig.add_trace(go.Scatter(x=gs.substep, y=gs.accuracy, mode="markers", name=f"probe on {state}", legendgroup=state,
                                     showlegend=i == 0, marker={"color": colour, "size": 6}, text="act " + gs.act.astype(str) + " " + gs["update"],
                                     hovertemplate="%{text}: %{y:.3f}<extra>" + f"{t}, {state}</extra>",
                                     error_y={"type": "data", "symmetric": False, "array": gs.accuracy_ci_high - gs.accuracy,
                                              "arrayminus": gs.accuracy - gs.accuracy_ci_low, "visible": True, "thickness": 1}),
                          row=1, col=i + 1)  # fmt: skip
            fig.add_trace(go.Scatter(x=gs.substep, y=gs.control, mode="markers", name=f"control (permuted labels), {state}",
                                     legendgroup=f"{state} control", showlegend=i == 0,
                                     marker={"color": colour, "size": 5, "symbol": "x-thin", "line": {"width": 1, "color": colour}},
                                     hovertemplate="control %{y:.3f}<extra></extra>"), row=1, col=i + 1)  # fmt: skip
        m = g.groupby("substep", as_index=False).majority.mean()
        fig.add_trace(go.Scatter(x=m.substep, y=m.majority, mode="lines", line={"color": "#888", "dash": "dash", "width": 1},
                                 name="majority label", legendgroup="majority", showlegend=i == 0,
                                 hovertemplate="majority %{y:.3f}<extra></extra>"), row=1, col=i + 1)  # fmt: skip
    fig.update_xaxes(title_text="sub-step")
    fig.update_yaxes(title_text="probe accuracy (held-out puzzles)", col=1)
    fig.update_layout(title=title, height=400, width=max(620, 300 * len(targets)))
    return fig


def ablation_bars(causal: pd.DataFrame, title: str, metric: str = "output_nongiven") -> go.Figure:
    """The causal test: the change of ``metric`` (default the output's non-given accuracy at the
    trained length) when the probe's directions (coloured by the state) or a random subspace of
    the same rank (grey) are ablated at each update, one panel per target; 95 % bootstrap CIs."""
    c = causal[causal["rank"] > 0] if "rank" in causal else causal
    targets = list(dict.fromkeys(c.target))
    fig = make_subplots(rows=1, cols=max(1, len(targets)), shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=targets or None)
    for i, t in enumerate(targets):
        g = c[c.target == t]
        for arm, ga in g.groupby("arm", sort=False):
            d = ga[f"{metric}_delta"]
            colours = [STATE_COLOURS.get(s, GREY) if arm == "probe" else GREY for s in ga.state]
            fig.add_trace(go.Bar(x="act " + ga.act.astype(str) + " " + ga["update"], y=d, name=f"{arm} directions", legendgroup=arm,
                                 showlegend=i == 0, marker_color=colours, offsetgroup=arm,
                                 customdata=np.stack([ga["rank"], ga[f"{metric}_clean"], ga[f"{metric}_ablated"]], axis=1),
                                 hovertemplate="%{x}: %{y:+.4f} (rank %{customdata[0]}; %{customdata[1]:.3f} -> %{customdata[2]:.3f})"
                                               "<extra>" + f"{t}, {arm}</extra>",
                                 error_y={"type": "data", "symmetric": False, "array": ga[f"{metric}_delta_ci_high"] - d,
                                          "arrayminus": d - ga[f"{metric}_delta_ci_low"], "visible": True}), row=1, col=i + 1)  # fmt: skip
    fig.add_hline(y=0, line={"color": "#555", "width": 1})
    fig.update_yaxes(title_text=f"ablated - clean, {metric.replace('_', ' ')}", col=1)
    fig.update_layout(title=title, height=400, width=max(620, 300 * max(1, len(targets))), barmode="group")
    return fig


def variant_panels(table: pd.DataFrame, variants: pd.DataFrame, panels: Sequence[tuple[str, str, str, int | None, str, str]],
                   title: str = "", columns: int = 3) -> go.Figure:  # fmt: skip
    """Quantities across seeds and variants: one panel per ``(section, quantity, state, layer,
    class, label)``; per variant (x) each checkpoint as a dot with its puzzle-level CI and the
    mean +- sd over the variant's checkpoints as a bar."""
    rows_n = -(-len(panels) // columns)
    fig = make_subplots(rows=rows_n, cols=columns, subplot_titles=[p[5] for p in panels], horizontal_spacing=0.07,
                        vertical_spacing=0.5 / max(rows_n, 1))  # fmt: skip
    names = list(dict.fromkeys(table.variant))

    def pick(df: pd.DataFrame, section, quantity, state, layer, cls) -> pd.DataFrame:
        sel = (df.section == section) & (df.quantity == quantity) & (df.state == state) & (df["class"] == cls)
        sel &= df.layer.isna() if layer is None else (df.layer == layer)
        return df[sel]

    for k, (section, quantity, state, layer, cls, _) in enumerate(panels):
        r, c = k // columns + 1, k % columns + 1
        v = pick(variants, section, quantity, state, layer, cls)
        fig.add_trace(go.Bar(x=v.variant, y=v["mean"], marker_color="#d9d9d9", name="mean +- sd over checkpoints", legendgroup="mean",
                             showlegend=k == 0, error_y={"type": "data", "array": v.sd.fillna(0), "visible": True},
                             customdata=v.n_checkpoints, hovertemplate="%{x}: %{y:.4g} (%{customdata} checkpoints)<extra></extra>"),
                      row=r, col=c)  # fmt: skip
        d = pick(table, section, quantity, state, layer, cls)
        fig.add_trace(go.Scatter(x=d.variant, y=d["mean"], mode="markers", marker={"color": "#333", "size": 6}, name="one checkpoint",
                                 legendgroup="one", showlegend=k == 0, text=d.series,
                                 hovertemplate="%{text}: %{y:.4g}<extra></extra>",
                                 error_y={"type": "data", "symmetric": False, "array": d.ci_high - d["mean"],
                                          "arrayminus": d["mean"] - d.ci_low, "thickness": 1}), row=r, col=c)  # fmt: skip
    fig.update_xaxes(categoryorder="array", categoryarray=names)
    fig.update_layout(title=title, height=300 * rows_n, width=420 * columns, margin={"t": 80})
    return fig
