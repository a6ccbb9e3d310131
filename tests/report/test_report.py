"""The report: every section from a tiny model, the reproduction table's verdicts, the CLI
(identical twice apart from the timestamp, bad inputs in one line) and a real browser."""

import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from airinterp.analysis.inputs import AnalysisInputs
from airinterp.analysis.reproduce import direction_verdict, level_verdict, reproduction_table, summary_table
from airinterp.analysis.run import sample_puzzles
from airinterp.analysis.suite import analyse
from airinterp.report.build import build_report
from tests.helpers import assert_clean_error, invoke, make_model, snapshot

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "tools"))  # the browser harness is a dev tool, not part of the package
from browser import check_page, layout_issues, why_no_browser  # noqa: E402

SECTIONS = ["Checkpoints", "Summary", "Reproduction table", "Decoded rollouts (Figs 2-5)", "Content changes and freeze (Figs 6-7)",
            "Roles of the two states", "Convergence: layer lens, commit points, fixed points",
            "Causal locality of writes", "Trajectories and dimensionality", "Probes and their causal test",
            "Patching across sub-steps", "Attention locality (Figs 8-9)", "Attention example and persistence (Figs 10-13)",
            "Where the paper&#x27;s figures are"]  # fmt: skip
VERDICTS = {"same direction", "differs", "inconclusive", "matches", "not comparable", "paper inconclusive", "by construction"}


def _inputs(tiny_data, variant: str, seed: int = 0) -> AnalysisInputs:
    model = make_model(seed=seed, variant=variant)
    return AnalysisInputs(model=model, ds=tiny_data, indices=sample_puzzles(tiny_data.n_examples, 6, 0),
                          checkpoint=Path(f"tiny_{variant}"), data=Path("tiny_data"), seed=0, n_act=3)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_analyses(tiny_data):
    return [analyse(_inputs(tiny_data, "Lx_H"), batch_size=4), analyse(_inputs(tiny_data, "Lx_Hx", seed=1), batch_size=4)]


def test_the_builder_writes_every_section_for_a_tiny_model(tiny_analyses, tmp_path):
    path = build_report(tiny_analyses, tmp_path / "r.html", built="now")
    page = path.read_text()
    for s in SECTIONS:
        assert f">{s}</h2>" in page, s
    # one plotly.js, no external script or stylesheet, every figure a fixed div id
    assert page.count("<script type='text/javascript'>") == 1 and "cdn" not in page.lower().split("</script>", 1)[1]
    assert not re.search(r"<(script|link)[^>]+(src|href)=['\"]https?:", page)
    n = page.count("Plotly.newPlot")
    assert n == len(set(re.findall(r"id=\"(fig\d+)\"", page))) and n >= 2 * 12  # two columns of every figure
    for name in ("tiny_Lx_H", "tiny_Lx_Hx"):
        assert f"<h4>{name}</h4>" in page
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_reproduction_table_rows_and_verdicts(tiny_analyses):
    a, sym = tiny_analyses
    t = reproduction_table(a, [sym])
    assert set(t.verdict) <= VERDICTS
    assert {"accuracy", "decoded rollouts", "content changes", "freeze", "attention"} <= set(t.section)
    # a 4x4, d=32 model is not the paper's setting: every level row says so, naming both settings
    levels = t[t.quantity.str.contains("per puzzle, |exact accuracy, ")]
    assert len(levels) == 6 and (levels.verdict == "not comparable").all()
    assert levels.why.str.contains("4x4 sudoku, d=32").all() and levels.why.str.contains("9x9 Sudoku-Extreme, d=512").all()
    gap = t[t.quantity.str.startswith("asymmetric minus symmetric")].iloc[0]
    assert gap.verdict != "not comparable" and gap.checkpoint == "tiny_Lx_H vs tiny_Lx_Hx"
    # Sudoku attention: the paper's 4 layers x 5 columns, here 2 layers only
    att = t[t.section == "attention"]
    assert len(att) == 20 and (att[att.quantity.str.startswith(("layer 2", "layer 3"))].verdict == "not comparable").all()
    # without a symmetric checkpoint the gap cannot be formed
    alone = reproduction_table(a)
    assert alone[alone.quantity.str.startswith("asymmetric")].verdict.item() == "not comparable"
    s = summary_table(tiny_analyses)
    assert list(s.checkpoint) == ["tiny_Lx_H", "tiny_Lx_Hx"] and s["freeze zL: input-independent"].dtype == bool


def test_verdict_rules(tiny_analyses):
    assert direction_verdict(1, 0.1, 0.3) == "same direction"
    assert direction_verdict(-1, 0.1, 0.3) == "differs"
    assert direction_verdict(1, -0.1, 0.3) == "inconclusive"
    assert direction_verdict(-1, -0.3, -0.1) == "same direction"
    assert direction_verdict(1, float("nan"), float("nan")) == "inconclusive"
    a = tiny_analyses[0]
    mc = {**a.config["model_config"], "seq_len": 81, "hidden_size": 512, "L_layers": 4}
    paper_size = replace(a, side=9, config={**a.config, "n_act": 16, "model_config": mc})
    assert level_verdict(paper_size, (60.0, 2.0), 59.0, 55.0, 63.0)[0] == "matches"
    assert level_verdict(paper_size, (60.0, 2.0), 40.0, 35.0, 45.0)[0] == "differs"
    small = replace(paper_size, config={**paper_size.config, "n_act": 8})
    verdict, why = level_verdict(small, (60.0, 2.0), 60.0, 55.0, 65.0)
    assert verdict == "not comparable" and "8 ACT steps" in why


def _strip(page: str) -> str:
    return re.sub(r"<p class='built'>built [^<]*</p>", "", page)


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    args = ("report", "--task", "sudoku", "--n-puzzles", "4", "--seed", "3", "--batch-size", "4")
    first = invoke(*args, "--compare", ROOT / "checkpoints/sudoku6_Lx_Hx", "-o", out / "a.html", "--tables", out / "tables")
    assert first.exit_code == 0, first.output
    return out / "a.html", first.output, args


def test_report_command_prints_its_path_and_tables(cli_report):
    path, output, args = cli_report
    assert f"wrote {path}" in output and "reproduction table:" in output
    import pandas as pd

    from airinterp.analysis.reproduce import COLUMNS

    tables = path.parent / "tables"
    assert sorted(p.name for p in tables.iterdir()) == ["changes_summary.csv", "reproduction.csv", "roles_summary.csv", "summary.csv"]
    assert list(pd.read_csv(tables / "reproduction.csv").columns) == COLUMNS
    assert set(pd.read_csv(tables / "roles_summary.csv").checkpoint) == {"sudoku6_Lx_H", "sudoku6_Lx_Hx"}
    assert "checkpoints/sudoku6_Lx_H<" in path.read_text() and str(ROOT) not in path.read_text()  # paths relative to the repository


def test_a_tiny_report_is_reproducible(tiny_analyses, tiny_data, tmp_path):
    """CI's reproducibility check (the CLI's is slow): the tiny model analysed afresh gives the
    same report and reproduction table, byte for byte apart from the timestamp."""
    again = analyse(_inputs(tiny_data, "Lx_H"), batch_size=4)
    a = build_report([tiny_analyses[0]], tmp_path / "a.html", built="one").read_text()
    b = build_report([again], tmp_path / "b.html", built="two").read_text()
    assert "built one" in a and "built two" in b
    assert _strip(a) == _strip(b)
    assert reproduction_table(tiny_analyses[0], []).equals(reproduction_table(again, []))


@pytest.mark.slow  # a second 2-checkpoint report (~140 s on 2 cores): with pytest -m slow, to keep CI under 20 minutes
def test_report_command_is_reproducible(cli_report):
    path, output, args = cli_report
    again = invoke(*args, "--compare", ROOT / "checkpoints/sudoku6_Lx_Hx", "-o", path.with_name("b.html"))
    assert again.exit_code == 0, again.output
    a, b = path.read_text(), path.with_name("b.html").read_text()
    assert "<p class='built'>built " in a and _strip(a) == _strip(b)
    assert "checkpoints/sudoku6_Lx_H<" in a and str(ROOT) not in a  # paths relative to the repository


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--compare", "nowhere"], ["--compare nowhere", "no such checkpoint"]),
        (["--compare", ROOT / "checkpoints/maze10_Lx_H"], ["--compare", "maze model", "about sudoku"]),
        (["--compare", ROOT / "checkpoints/sudoku6_Lx_H"], ["given twice"]),
        (["--n-puzzles", "1"], ["'--n-puzzles'"]),
        (["--n-puzzles", "501"], ["--n-puzzles 501", "500 distinct puzzles"]),
        (["-o", "report.txt"], ["report.txt", ".html"]),
        (["--task", "chess"], ["--task 'chess'"]),
        (["--device", "gpu"], ["--device 'gpu'"]),
        (["--compare", ROOT / "checkpoints/sudoku6_Lx_Hx", "--compare", ROOT / "checkpoints/sudoku6_Lx_Hx/model.safetensors"], ["given twice"]),
    ],
)
def test_report_bad_inputs_fail_in_one_line_before_any_work(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)

    def no_work(*a, **k):
        raise AssertionError("an analysis ran before the inputs were checked")

    monkeypatch.setattr("airinterp.analysis.suite.analyse", no_work)
    before = snapshot(tmp_path)
    res = invoke("report", "--task", "sudoku", *args) if "--task" not in args else invoke("report", *args)
    assert_clean_error(res, *needles)
    assert snapshot(tmp_path) == before


BROWSER = why_no_browser()
COMMITTED = sorted((ROOT / "reports").glob("*.html"))


@pytest.mark.skipif(BROWSER is not None, reason=f"no browser test: {BROWSER}")
@pytest.mark.parametrize("which", ["fresh", *[p.name for p in COMMITTED]])
def test_reports_render_in_headless_chromium(which, cli_report, tmp_path):
    page = cli_report[0] if which == "fresh" else ROOT / "reports" / which
    shot = tmp_path / (Path(which).stem + ".png")
    check = check_page(page, shot)
    assert check.errors == [] and check.requests == []
    assert check.figures >= 20 and check.rendered == check.figures, check
    assert shot.stat().st_size > 10_000


@pytest.mark.skipif(BROWSER is not None, reason=f"no browser test: {BROWSER}")
@pytest.mark.parametrize("width", [1280, 1920])
def test_a_two_column_report_fits_laptop_and_desktop_windows(width, cli_report):
    """At 1280 and 1920 px: the page never scrolls sideways (wide tables and rows scroll inside
    their box), no figure title is cut at its figure's edge, every colour bar has a title."""
    assert layout_issues(cli_report[0], width) == []


def test_committed_reports_exist_and_are_small():
    names = {p.name for p in COMMITTED}
    assert {"sudoku6_Lx_H_vs_Lx_Hx.html", "maze10_Lx_H_vs_Lx_Hx.html"} <= names
    for p in COMMITTED:
        text = p.read_text()
        assert p.stat().st_size < 4.5 * 2**20, p  # 6.1 and 7.1 MiB before the cartesian bundle
        assert "<p class='built'>" in text and CARTESIAN_HEADER in text[:400], p


CARTESIAN_HEADER = "plotly.js (cartesian - minified) v"


def test_reports_inline_the_cartesian_bundle_only_when_it_can_draw_every_figure(cli_report, monkeypatch):
    """The fresh report uses only cartesian trace types (so it inlines the 1.5 MB bundle); a 3-D
    trace or a plotly.py that writes for another plotly.js version falls back to the full bundle."""
    import plotly.graph_objects as go
    import plotly.offline

    from airinterp.report.html import CARTESIAN_BUNDLE, Document, cartesian_bundle, plotlyjs_for

    assert (CARTESIAN_BUNDLE.parent / "LICENSE-plotly.js.txt").read_text().startswith("MIT License")
    version, _ = cartesian_bundle()
    same = version == plotly.offline.get_plotlyjs_version()  # constraints.txt pins the plotly that matches vendor/
    assert (CARTESIAN_HEADER in cli_report[0].read_text()[:400]) == same
    assert plotlyjs_for({"scatter", "bar", "heatmap"})[0] == ("cartesian" if same else "full")
    doc = Document("t")
    doc.figure(go.Figure(go.Scatter(y=[1, 2])))
    doc.figure(go.Figure(go.Scatter3d(x=[1], y=[2], z=[3])))
    assert doc.trace_types == {"scatter", "scatter3d"} and plotlyjs_for(doc.trace_types)[0] == "full"
    assert CARTESIAN_HEADER not in doc.render()[:400]
    monkeypatch.setattr(plotly.offline, "get_plotlyjs_version", lambda: "0.0.1")
    assert plotlyjs_for({"scatter"})[0] == "full"


def test_long_titles_are_broken_into_lines_that_fit():
    import plotly.graph_objects as go

    from airinterp.report.html import TITLE_CHAR_PX, fit_title

    long = "Lx_H: puzzle 313, query (row 5, col 2), layer 0, head 3, ACT step 2 and some more words here"
    fig = go.Figure(layout={"title": long, "width": 520, "height": 400, "margin": {"t": 60}})
    fit_title(fig)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) >= 2 and " ".join(lines) == long and all(len(s) * TITLE_CHAR_PX <= 520 - 40 for s in lines)
    assert fig.layout.margin.t >= 40 + 22 * len(lines) and fig.layout.height > 400
    short = go.Figure(layout={"title": "short", "width": 520})
    fit_title(short)
    assert short.layout.title.text == "short"
    marked = go.Figure(layout={"title": "<b>" + long + "</b>", "width": 300})
    fit_title(marked)
    assert marked.layout.title.text == "<b>" + long + "</b>"  # markup is left as its author laid it out


@pytest.mark.skipif(BROWSER is not None, reason=f"no browser test: {BROWSER}")
def test_every_trace_type_of_the_cartesian_bundle_renders(tmp_path):
    """One figure per trace type the bundle is said to hold, in one page on the bundle: all draw."""
    import plotly.graph_objects as go

    from airinterp.report.html import CARTESIAN_TRACES, Document

    z = [[1, 2], [3, 4]]
    make = {"bar": lambda: go.Bar(y=[1, 2]), "box": lambda: go.Box(y=[1, 2, 3]), "contour": lambda: go.Contour(z=z),
            "heatmap": lambda: go.Heatmap(z=z), "histogram": lambda: go.Histogram(x=[1, 1, 2]),
            "histogram2d": lambda: go.Histogram2d(x=[1, 2], y=[1, 2]),
            "histogram2dcontour": lambda: go.Histogram2dContour(x=[1, 2, 2], y=[1, 2, 1]),
            "image": lambda: go.Image(z=[[[255, 0, 0], [0, 255, 0]]]), "pie": lambda: go.Pie(values=[1, 2]),
            "scatter": lambda: go.Scatter(y=[1, 2]), "scatterternary": lambda: go.Scatterternary(a=[1], b=[2], c=[3]),
            "violin": lambda: go.Violin(y=[1, 2, 3])}  # fmt: skip
    assert set(make) == CARTESIAN_TRACES
    doc = Document("every cartesian trace")
    for name in sorted(make):
        doc.figure(go.Figure(make[name]()))
    page = doc.write(tmp_path / "traces.html")
    assert CARTESIAN_HEADER in page.read_text()[:400]
    check = check_page(page)
    assert check.errors == [] and check.requests == []
    assert check.figures == len(make) and check.rendered == check.figures, check


def _with(a, frozen: str, lo: float, hi: float, attention: dict | None = None):
    """``a`` with the paired delta of its ``frozen``-freeze content changes set to [lo, hi], and
    head-mean attention CIs set per (layer, class, metric)."""
    summary = a.freeze[frozen].summary.copy()
    row = summary.metric == "content_changes"
    summary.loc[row, ["delta_mean", "delta_ci_low", "delta_ci_high"]] = [(lo + hi) / 2, lo, hi]
    freeze = {**a.freeze, frozen: replace(a.freeze[frozen], summary=summary)}
    att = a.attention.summary.copy()
    for (layer, cls, metric), (lo_, hi_) in (attention or {}).items():
        m = (att.method == "head_mean") & (att.layer == layer) & (att["class"] == cls) & (att.metric == metric)
        assert m.sum() == 1
        att.loc[m, ["delta_mean", "ci_low", "ci_high", "n_puzzles"]] = [(lo_ + hi_) / 2, lo_, hi_, 5]
    return replace(a, freeze=freeze, attention=replace(a.attention, summary=att))


def _verdict(t, quantity: str) -> str:
    return t[t.quantity == quantity].verdict.item()


def test_verdicts_follow_the_papers_signs(tiny_analyses):
    """Sudoku: freeze zH lowers zL's changes; layer-0 delta_nbr (query included) > 0 for control
    queries; layer-0 delta_viol < 0 for violation-adjacent ones; freeze zL has no direction."""
    a = tiny_analyses[0]
    att_up = {(0, "control", "nbr_mass_incl_self"): (0.01, 0.02), (0, "violation-adjacent", "viol_mass_incl_self"): (0.01, 0.02)}
    att_down = {k: (-hi, -lo) for k, (lo, hi) in att_up.items()}
    down = reproduction_table(_with(a, "zH", -5.0, -1.0, att_up))
    up = reproduction_table(_with(a, "zH", 1.0, 5.0, att_down))
    q = "freeze zH: change in zL content changes"
    assert _verdict(down, q) == "same direction" and _verdict(up, q) == "differs"
    assert _verdict(reproduction_table(_with(a, "zH", -1.0, 5.0)), q) == "inconclusive"
    assert _verdict(down, "layer 0, control: delta_nbr") == "same direction"
    assert _verdict(up, "layer 0, control: delta_nbr") == "differs"
    assert _verdict(down, "layer 0, violation-adjacent: delta_viol") == "differs"
    assert _verdict(up, "layer 0, violation-adjacent: delta_viol") == "same direction"
    zl = reproduction_table(_with(a, "zL", 1.0, 5.0))  # the paper's 275.07 +- 28.5 -> 550.8 +- 615.3: Welch p 0.37
    row = zl[zl.quantity == "freeze zL: change in zH content changes"].iloc[0]
    assert row.verdict == "paper inconclusive" and "ours would read 'same direction'" in row.why and "Welch p = 0.37" in row.why


def test_the_default_models_rows_need_an_lx_h_checkpoint(tiny_analyses):
    a, sym = tiny_analyses
    t = reproduction_table(sym)  # an Lx_Hx primary and no Lx_H: the paper's Lx_H numbers do not apply
    rest = t[t.section.isin(["content changes", "freeze", "attention"])]
    assert len(rest) and (rest.verdict == "not comparable").all() and rest.why.str.contains("are for Lx_H").all()
    t = reproduction_table(sym, [a])  # with Lx_H among --compare, its rows are used
    assert set(t[t.section == "freeze"].checkpoint) == {"tiny_Lx_H"}


def test_patch_batch_size_leaves_no_lone_puzzle():
    from airinterp.analysis.suite import patch_batch_size

    for n in range(2, 80):
        for b in (1, 2, 3, 4, 16, 64):
            bs = patch_batch_size(n, b)
            assert bs >= 2 and n % bs != 1, (n, b, bs)


def test_resolution_rules_on_synthetic_numbers():
    """The paper-direction rule (Welch on the paper's mean +- sd over 5 + 5 seeds), the size band and
    Holm's adjustment, on numbers worked by hand."""
    from airinterp.analysis.reproduce import holm, paper_difference_p, size_band

    assert paper_difference_p(71.0, 6.3, 69.4, 2.5) > 0.5  # the paper's Maze Lx_H - Lx_Hx gap: t about 0.5
    assert paper_difference_p(60.0, 2.0, 52.1, 1.6) < 1e-3  # its Sudoku gap is established
    assert np.isnan(paper_difference_p(55.0, float("nan"), 60.0, 2.0))  # HRM: no spread reported
    assert size_band(0.0048, 0.1375) == (pytest.approx(0.0349, abs=1e-4), "< 10 % of the paper's size")
    assert size_band(0.1, 0.1)[1] == "50-200 % of the paper's size" and size_band(-1.0, 2.0)[1] == "opposite sign"
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03, np.nan])), [0.03, 0.06, 0.06, np.nan])


def test_the_table_shows_size_holm_definitions_and_by_construction_rows(tiny_analyses):
    a, sym = tiny_analyses
    t = reproduction_table(a, [sym])
    direction = t[(t.kind == "direction") & t.verdict.isin(["same direction", "differs", "inconclusive"])]
    assert len(direction) and direction.p_holm.notna().all() and (direction.p_holm >= direction.p - 1e-12).all()
    assert set(direction.verdict_holm) <= {"same direction", "differs", "inconclusive"}
    assert (direction.definition != "").all()
    row = t[t.quantity == "output exact accuracy with zH frozen (%)"].iloc[0]
    assert row.verdict == "by construction" and row.kind == "by construction" and np.isnan(row.p_holm)
    nbr = t[t.quantity == "layer 0, violation-adjacent: delta_nbr"].iloc[0]  # the tiny sample has no control queries
    assert "query cell included" in nbr.definition and nbr.sensitivity.startswith("query excluded:")
    viol = t[t.quantity == "layer 0, violation-adjacent: delta_viol"].iloc[0]
    assert "query cell included" in viol.definition and "after H0, A9" in viol.definition


def test_a_verdict_that_flips_with_the_head_aggregation_is_labelled(tiny_analyses):
    a = tiny_analyses[0]
    key = (0, "control", "nbr_mass_incl_self")
    att = a.attention.summary.copy()
    for method, (lo, hi) in (("head_mean", (0.01, 0.02)), ("best_head", (-0.02, -0.01))):
        m = att.method.str.startswith(method) & (att.layer == key[0]) & (att["class"] == key[1]) & (att.metric == key[2])
        assert m.sum() == 1
        att.loc[m, ["delta_mean", "ci_low", "ci_high", "n_puzzles"]] = [(lo + hi) / 2, lo, hi, 5]
    t = reproduction_table(replace(a, attention=replace(a.attention, summary=att)))
    row = t[t.quantity == "layer 0, control: delta_nbr"].iloc[0]
    assert row.verdict == "same direction" and row.aggregation.startswith("AGGREGATION-DEPENDENT: the best head per puzzle reads 'differs'")


def test_error_bars_belong_to_the_paired_difference(tiny_analyses):
    """Freeze and patch figures draw the paired difference's CI on the difference (a second row with a
    zero line); each bar or patched point carries its own arm's interval (Clopper-Pearson for exact
    accuracy, bootstrap for counts), inside the metric's range; the patch curve ticks at the patched
    ACT steps only."""
    import numpy as np

    from airinterp.report import figures

    a = tiny_analyses[0]
    summary = a.freeze["zH"].summary.set_index("metric")
    fig = figures.freeze_comparison(a.freeze["zH"].summary, ["content_changes", "output_exact"], "t")
    bars = [t for t in fig.data if t.type == "bar"]
    for bar, metric in zip(bars, ["content_changes", "output_exact"], strict=True):
        r = summary.loc[metric]
        lows = np.array(bar.y) - np.array(bar.error_y.arrayminus)
        highs = np.array(bar.y) + np.array(bar.error_y.array)
        assert np.allclose(lows, [r["base_ci_low"], r["treated_ci_low"]]) and np.allclose(highs, [r["base_ci_high"], r["treated_ci_high"]])
        assert (lows >= -1e-12).all() and (metric != "output_exact" or (highs <= 1 + 1e-12).all())
        assert not np.allclose(highs - lows, r["delta_ci_high"] - r["delta_ci_low"])  # not the difference's CI
    deltas = [t for t in fig.data if t.type == "scatter"]
    assert len(deltas) == 2 and all(t.error_y.visible for t in deltas)
    row = a.freeze["zH"].summary.set_index("metric").loc["output_exact"]
    assert deltas[1].y[0] == row["delta_mean"]  # the marker is the delta, not the frozen mean
    fig = figures.patch_curve(a.patch.summary, "exact", "t")
    acts = sorted(int(x) for x in a.patch.summary.act.unique())
    assert list(fig.layout.xaxis2.tickvals) == acts and list(fig.layout.xaxis.tickvals) == acts
    top = [t for t in fig.data if t.name and t.name.endswith("patched")]
    assert top and all(t.error_y.array is not None for t in top)
    for t in top:
        lows = np.array(t.y) - np.array(t.error_y.arrayminus)
        assert (lows >= -1e-12).all() and (np.array(t.y) + np.array(t.error_y.array) <= 1 + 1e-12).all()


def test_sudoku_grids_mark_givens_and_wrong_digits(tiny_analyses):
    """The decoded grids bold the puzzle's givens and colour digits that differ from the solution."""
    import numpy as np

    from airinterp.report import figures

    a = tiny_analyses[0]
    p = int(a.tokens.puzzle.iloc[0])
    inputs, labels = a.grid_io[p]
    fig = figures.decode_grids(a.tokens, a.roles, a.side, a.token_names, p, a.updates, io=a.grid_io[p])
    text = np.asarray(fig.data[0].text).reshape(-1)
    grid = a.tokens[(a.tokens.puzzle == p) & (a.tokens.substep == 0) & (a.tokens.state == "zH")].sort_values("cell").token.to_numpy()
    given = np.asarray(inputs) >= a.roles.first_digit
    assert given.any() and all("<b>" in str(t) for t in text[given]) and not any("<b>" in str(t) for t in text[~given])
    wrong = (grid >= a.roles.first_digit) & (grid != np.asarray(labels))
    assert all(figures.WRONG in str(t) for t in text[wrong]) and not any(figures.WRONG in str(t) for t in text[~wrong])
