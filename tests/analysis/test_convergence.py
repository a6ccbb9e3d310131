"""The convergence panel against the cache and hand-made values: lens, commit points, residuals."""

import numpy as np
import pytest
import torch

from airinterp.analysis.convergence import (
    Convergence,
    ConvergenceRecorder,
    commit_points,
    relative_change,
    run_convergence,
)
from airinterp.analysis.run import Hooks, PuzzleBatch, rollout, sample_puzzles
from airinterp.model import select
from airinterp.model.schedule import SubStep
from airinterp.tasks.rules import rules_for
from tests.helpers import make_model, make_tokens

N_ACT = 5  # two steps past the tiny model's halt_max_steps of 3


def _batch(model, tokens, labels) -> PuzzleBatch:
    return PuzzleBatch(np.arange(len(tokens)), tokens, labels, torch.zeros(len(tokens), dtype=torch.long))


def _record(model, tokens, labels, interventions=()):
    rules = rules_for("sudoku", 16)
    rec = ConvergenceRecorder(model, rules, N_ACT)
    rollout(model, _batch(model, tokens, labels), n_act=N_ACT, recorders=[rec], interventions=interventions)
    return rec.result(), rules


@pytest.mark.parametrize("overrides", [{}, {"variant": "L2x_H2x_input_token_prepend"}, {"family": "hrm", "H_layers": 3}],
                         ids=["Lx_H", "prepend", "hrm"])  # fmt: skip
@torch.no_grad()
def test_lens_and_commit_points_equal_the_cache(overrides):
    model = make_model(**overrides)
    tokens = make_tokens(batch=3)
    labels = make_tokens(batch=3, seed=1).numpy()
    tokens[:, :4] = torch.from_numpy(labels[:, :4])  # four givens per puzzle: the first row
    tokens[:, 4:] = 1  # the rest blank (Sudoku's BLANK)
    res, rules = _record(model, tokens, labels)
    _, cache = model.run_with_cache(tokens, n_act=N_ACT, names_filter=select(site=["hook_resid_post", "hook_out", "hook_zH", "hook_zL", "hook_zH_init", "hook_zL_init", "hook_state_in"]))
    free = ~np.asarray(rules.given_mask(tokens.numpy()), bool)
    assert (free.sum(1) == 12).all() and (res.free == free).all()
    n, L = model.config.n_updates, res.n_layers
    timeline: dict[str, list] = {"zL": [], "zH": []}
    for k in range(N_ACT * n):
        s = SubStep.at(model.schedule, k)
        layers = len(model.stack(s.update.stage))
        assert res.layers[k] == layers and res.state_of[k] == s.update.state
        for layer in range(L):
            if layer >= layers:  # HRM: the L stack has 2 blocks, the H stack 3
                assert np.isnan(res.accuracy[:, k, layer]).all()
                continue
            logits = model.unembed(cache[f"{s.name}.blocks.{layer}.hook_resid_post"]).float()
            tok = logits.argmax(-1).numpy()
            p = logits.softmax(-1)
            ent = -(p * p.log()).sum(-1).numpy()
            np.testing.assert_allclose(res.accuracy[:, k, layer], ((tok == labels) & free).sum(1) / 12, atol=1e-6)
            np.testing.assert_allclose(res.entropy[:, k, layer], (ent * free).sum(1) / 12, rtol=1e-4, atol=1e-6)
            timeline[s.update.state].append((k * L + layer, tok))
        out = cache[f"{s.name}.hook_out"]
        assert (model.decode(out).numpy() == tok).all()  # the lens at the last block is the update's decode
        rel = ((out - cache[f"{s.name}.hook_state_in"]).flatten(1).norm(dim=1) / cache[f"{s.name}.hook_state_in"].flatten(1).norm(dim=1))
        np.testing.assert_allclose(res.residual[:, k], rel.numpy(), rtol=1e-5)
    for i, st in enumerate(("zL", "zH")):
        prev = cache[f"hook_{st}_init"]
        for a in range(N_ACT):
            cur = cache[f"act.{a}.hook_{st}"]
            np.testing.assert_allclose(res.step_change[:, a, i], relative_change(cur, prev).numpy(), rtol=1e-5)
            prev = cur
    # the answer at the trained length (3 ACT steps) is the output of a 3-step rollout; commit points are the oracle's
    with torch.inference_mode():
        out3 = model(tokens, n_act=3).argmax(-1).numpy()
        out5 = model(tokens, n_act=N_ACT).argmax(-1).numpy()
    assert (res.answer == out3).all() and (res.final_answer == out5).all()
    end = 3 * n * L
    for st in ("zL", "zH"):
        pos = np.array([t for t, _ in timeline[st] if t < end])
        toks = np.stack([tok for t, tok in timeline[st] if t < end], axis=1)  # [puzzle, T, cell]
        want = commit_points(toks, res.answer)
        want = np.where(want >= 0, pos[np.clip(want, 0, len(pos) - 1)], -1)
        assert (res.commit[st] == want).all(), st
    assert (res.commit["zH"] >= 0).all()  # zH ends on the answer: it always commits


def test_commit_points_oracle_by_hand():
    answer = np.array([[1, 2, 3]])
    tokens = np.array([[[0, 2, 3], [1, 2, 0], [1, 2, 3], [1, 2, 3]]])  # [puzzle, T=4, cell]
    assert commit_points(tokens, answer).tolist() == [[1, 0, 2]]
    tokens[0, -1, 2] = 9  # the last token is not the answer: never
    assert commit_points(tokens, answer).tolist() == [[1, 0, -1]]


def test_identity_update_has_zero_residual():
    z = torch.randn(2, 5, 4)
    assert relative_change(z, z).tolist() == [0.0, 0.0]
    assert relative_change(2 * z, z).numpy() == pytest.approx([1.0, 1.0])
    assert relative_change(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0.0
    assert relative_change(torch.ones(1, 3), torch.zeros(1, 3)).item() == float("inf")
    # through the recorder: every H-update made the identity (it returns the state it read)
    model = make_model()
    tokens = make_tokens(batch=2)
    seen = {}

    def keep(x, hook):
        seen[hook.name.rsplit(".", 1)[0]] = x.clone()

    def identity(x, hook):
        return seen[hook.name.rsplit(".", 1)[0]]

    iv = Hooks([(select(site="hook_state_in", stage="H"), keep), (select(site="hook_out", stage="H"), identity)])
    res, _ = _record(model, tokens, make_tokens(batch=2, seed=1).numpy(), interventions=[iv])
    h = [k for k, st in enumerate(res.state_of) if st == "zH"]
    lo = [k for k, st in enumerate(res.state_of) if st == "zL"]
    assert (res.residual[:, h] == 0).all() and (res.residual[:, lo] > 0).all()
    # zH never changes from its initial value, so its carried change per ACT step is 0 too
    assert (res.step_change[:, :, 1] == 0).all()


def _hand_made(answer, final, labels, free) -> Convergence:
    P, C = labels.shape
    K, L = 4, 2
    return Convergence(indices=np.arange(P), labels=labels, free=free, accuracy=np.zeros((P, K, L)), entropy=np.zeros((P, K, L)),
                       residual=np.zeros((P, K)), step_change=np.zeros((P, 2, 2)),
                       commit={"zL": np.full((P, C), -1), "zH": np.tile([0, 3, 5, 7], (P, C // 4))},
                       answer=answer, final_answer=final, updates=["act.0.L0_0", "act.0.H0", "act.1.L0_0", "act.1.H0"],
                       state_of=["zL", "zH", "zL", "zH"], layers=[2, 2, 2, 2], states=["zL", "zH"], trained_act=1, n_act=2)  # fmt: skip


def test_escape_and_commit_summaries_by_hand():
    labels = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]])
    free = np.array([[True] * 4] * 3)
    answer = np.array([[1, 2, 3, 4], [1, 2, 3, 0], [1, 2, 0, 0]])  # right, wrong, wrong
    final = np.array([[1, 2, 3, 0], [1, 2, 3, 4], [1, 2, 0, 0]])  # drifted, escaped, trapped
    res = _hand_made(answer, final, labels, free)
    esc = res.escape_summary().set_index("group")
    assert esc.loc["wrong at the trained length", "n"] == 2 and esc.loc["wrong at the trained length", "moved"] == 1
    assert esc.loc["right at the trained length", "moved"] == 1
    assert esc.loc["wrong at the trained length", "answer_changed"] == 1
    o = res.outcome_frame()
    assert o.cells_changed.tolist() == [1, 1, 0]
    cs = res.commit_summary(seed=0)
    # zH commit positions 0, 3, 5, 7 -> sub-steps 0, 1, 2, 3; the trained length is sub-steps 0..1
    by = cs[(cs.state == "zH") & (cs.metric == "committed")].set_index("substep")["mean"]
    assert by.tolist() == [0.25, 0.5]
    never = cs[(cs.metric == "never")].set_index("state")["mean"]
    assert never["zL"] == 1.0 and never["zH"] == 0.0
    sub = cs[cs.metric == "commit_substep"].set_index("state")
    assert sub.loc["zH", "mean"] == pytest.approx(1.5) and sub.loc["zH", "n"] == 3  # sub-steps 0, 1, 2, 3 in every puzzle
    assert np.isnan(sub.loc["zL", "mean"]) and sub.loc["zL", "n"] == 0  # no cell commits: no mean, not 0
    frame = res.commit_frame()
    assert len(frame) == 2 * 3 * 4 and set(frame.commit_layer[frame.state == "zH"]) == {0, 1}


def test_run_convergence_defaults_to_twice_the_trained_length(tiny_data):
    model = make_model()
    idx = sample_puzzles(tiny_data.n_examples, 4, seed=0)
    res = run_convergence(model, tiny_data, idx, rules_for("sudoku", 16), batch_size=3)
    assert res.n_act == 6 and res.trained_act == 3 and res.accuracy.shape == (4, 6 * model.config.n_updates, 2)
    df = res.frame()
    assert len(df) == 4 * 6 * model.config.n_updates * 2 and df.past_trained.sum() == len(df) // 2
    summary = res.lens_summary(seed=0)
    assert {"accuracy_ci_low", "entropy_ci_high"} <= set(summary.columns)
    rs = res.residual_summary(seed=0)
    assert set(rs.kind) == {"update", "act"} and len(rs[(rs.kind == "act") & (rs.puzzles == "all")]) == 6 * 2
    assert set(rs.puzzles) <= {"all", "right", "wrong"} and "all" in set(rs.puzzles)


def test_the_answer_length_can_be_the_analysed_one(tiny_data):
    """A report of a 2-step rollout runs 4 steps and takes the answer after 2, not after min(4, 3)."""
    model = make_model()
    idx = sample_puzzles(tiny_data.n_examples, 3, seed=0)
    res = run_convergence(model, tiny_data, idx, rules_for("sudoku", 16), n_act=4, answer_act=2, batch_size=3)
    with torch.inference_mode():
        out2 = model(torch.from_numpy(np.asarray(tiny_data.data["inputs"][idx], np.int64)), n_act=2).argmax(-1).numpy()
    assert res.trained_act == 2 and (res.answer == out2).all()
