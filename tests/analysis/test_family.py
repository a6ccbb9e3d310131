"""The analyses on AIR's siblings: HRM (two stacks of different depth) and TRM run every analysis of the
suite; TRM's mlp_t blocks have no attention, and the attention analyses say so in one line."""

from pathlib import Path

import pytest

from airinterp.analysis.attention import run_attention
from airinterp.analysis.inputs import AnalysisInputs
from airinterp.analysis.run import sample_puzzles
from airinterp.analysis.suite import analyse
from tests.helpers import make_model


def _inputs(model, data) -> AnalysisInputs:
    return AnalysisInputs(model=model, ds=data, indices=sample_puzzles(data.n_examples, 4, 0), checkpoint=Path("tiny"),
                          data=Path("tiny_data"), seed=0, n_act=2)  # fmt: skip


@pytest.mark.parametrize("family", [dict(family="hrm", L_layers=2, H_layers=1), dict(family="trm", H_cycles=2, L_cycles=3, puzzle_emb_len=3)])
def test_the_suite_runs_on_hrm_and_trm(tiny_data, family):
    a = analyse(_inputs(make_model(**family), tiny_data), batch_size=2)
    assert len(a.changes) == 2 * 4 and set(a.freeze) == {"zH", "zL"} and a.patch is not None
    assert a.attention.summary.layer.nunique() == min(a.config["model_config"]["L_layers"], a.config["model_config"]["H_layers"] or 99)


def test_attention_analyses_refuse_mlp_t_blocks_in_one_line(tiny_data):
    model = make_model(family="trm", mlp_t=True, pos_encodings="none")
    with pytest.raises(ValueError, match="no attention"):
        run_attention(model, tiny_data, sample_puzzles(tiny_data.n_examples, 2, 0), steps=[1])


def test_the_reproduction_table_names_each_family(tiny_data):
    """An HRM checkpoint is judged against the paper's HRM baseline row, never against an AIR variant's
    numbers; TRM (not in the paper) gets no accuracy row; an AIR Lx_H beside them keeps its own."""
    from airinterp.analysis.reproduce import paper_key, reproduction_table

    hrm = analyse(_inputs(make_model(family="hrm", H_layers=2), tiny_data), batch_size=2, name="hrm")
    trm = analyse(_inputs(make_model(family="trm", H_cycles=2, L_cycles=3), tiny_data), batch_size=2, name="trm")
    air = analyse(_inputs(make_model(), tiny_data), batch_size=2, name="air")
    assert (paper_key(hrm), paper_key(trm), paper_key(air)) == ("HRM", "TRM", "Lx_H")
    t = reproduction_table(hrm, [trm, air])
    acc = t[t.section == "accuracy"]
    assert set(acc[acc.quantity == "exact accuracy, HRM (%)"].checkpoint) == {"hrm"}
    assert acc[acc.quantity == "exact accuracy, HRM (%)"].paper.iloc[0] == "55.0"
    assert set(acc[acc.quantity == "exact accuracy, Lx_H (%)"].checkpoint) == {"air"}
    assert "trm" not in set(acc.checkpoint)


def test_a_report_with_an_mlp_t_model_says_attention_does_not_apply(tiny_data, tmp_path):
    from airinterp.analysis.reproduce import reproduction_table
    from airinterp.report.build import build_report

    air = analyse(_inputs(make_model(), tiny_data), batch_size=2, name="air")
    mlp_t = analyse(_inputs(make_model(family="trm", mlp_t=True, pos_encodings="none"), tiny_data), batch_size=2, name="trm_mlp_t")
    assert mlp_t.attention.summary.empty and mlp_t.example is None and any("do not apply" in n for n in mlp_t.notes)
    path = build_report([air, mlp_t], tmp_path / "r.html", built="now", repro=reproduction_table(air, [mlp_t]))
    assert "do not apply" in path.read_text() or "no example" in path.read_text()


def test_the_suite_runs_on_trm_single_z_with_its_one_state(tiny_data, tmp_path):
    """TRM single-z has one state (zL, written by every update): the suite decodes it, counts its
    content changes and patches it; the freeze design (freeze one state, measure the other) and the
    zL/zH rows say they do not apply; attention contrasts its L-calls (which see x~) with its
    H-calls (which do not); a report with an AIR model beside it builds."""
    from airinterp.analysis.decode import decode_rollouts
    from airinterp.analysis.freeze import Freeze, run_freeze
    from airinterp.analysis.reproduce import reproduction_table, summary_table
    from airinterp.report.build import build_report

    model = make_model(family="trm_singlez", H_cycles=2, L_cycles=3, puzzle_emb_len=3)
    assert model.config.states == ("zL",) and all(u.state == "zL" for u in model.schedule)
    a = analyse(_inputs(model, tiny_data), batch_size=2, name="single_z")
    assert set(a.changes.state) == {"zL"} and a.changes.disagreement.isna().all() and a.freeze == {}
    assert set(a.patch.summary.state) == {"zL"} and "zH_content_changes_delta" not in a.patch.summary
    assert not a.attention.summary.empty and any("freeze does not apply" in n for n in a.notes)
    idx = sample_puzzles(tiny_data.n_examples, 2, 0)
    r = decode_rollouts(model, tiny_data, idx, n_act=2)
    assert r.states == ("zL",) and r.zH is None and r.zL.shape[1] == 2 * 8
    with pytest.raises(ValueError, match="one state"):
        r.state("zH")
    with pytest.raises(ValueError, match="single-z has one state"):
        run_freeze(model, tiny_data, idx, Freeze("zL"), n_act=1)
    air = analyse(_inputs(make_model(), tiny_data), batch_size=2, name="air")
    assert "TRM single-z has one state" in " ".join(reproduction_table(a).why)
    assert "TRM single-z has one state" not in " ".join(reproduction_table(a, [air]).why)  # the Lx_H beside it has the rows
    assert summary_table([air, a]).shape[0] == 2
    html = build_report([air, a], tmp_path / "r.html", built="now", repro=reproduction_table(air, [a])).read_text()
    assert "does not apply (one state)" in html and "TRM single-z" in html
