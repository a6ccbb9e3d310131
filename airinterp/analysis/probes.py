"""Linear probes on zL and zH with their causal test (issue 25.3, not in the paper).

**What is probed.** At chosen sub-steps (``points``: every update of the ACT steps ``acts``) the
state the update writes (``act.{a}.{u}.hook_out``) is kept at the non-given cells (Sudoku blanks,
Maze open cells); a sample is one (puzzle, cell), its features the state's ``d_model`` vector there.
Targets per sample:

- ``solution``: the cell's label token (Sudoku digit, Maze path or open);
- ``undecided``: the model's proposal for the cell will still change: the answer state (zH;
  TRM single-z: zL) decodes to another token at some later update up to the trained length
  (the proposal at a sub-step is the answer state's latest decode, its initial value before
  its first write);
- ``candidate_<v>`` (Sudoku, one binary target per digit ``v``): ``v`` is allowed in the cell by
  the puzzle's constraints at that point: no peer (row, column, box) holds ``v`` in the givens
  and the proposal.

**Probe.** scikit-learn's ``LogisticRegression`` on standardised features, cross-validated with
``GroupKFold`` (folds grouped by puzzle: no puzzle is in the training and the test fold); accuracy
per puzzle (its cells' share predicted right), then the mean over puzzles with a bootstrap CI.
**Control**: the same probe on the target's labels permuted across samples (seeded), so
``selectivity = accuracy - control accuracy`` is what the state adds beyond the label
distribution; ``majority``: always predicting the training folds' most common label.

**Causal test** (at every update of the ACT steps ``ablate_acts``, default 1 and the last; the
candidate probes of all digits ablated together): the probe fitted on every sample; its
weight directions in the state's coordinates (rows of ``coef / scale``, an orthonormal basis ``Q``
of their span, rank ``r``) are mean-ablated from the state at the non-given cells,
``x <- x - ((x - mu) Q) Q^T`` (``mu`` the samples' mean), and the rollout runs on to the trained
length. Reported beside the probe accuracy: the same probe's accuracy on the ablated states (the
information it read is gone), a probe re-fitted on them (is it still linearly there in other
directions?), the ablated state's own decode accuracy through the LM head and the output's
non-given and exact accuracy at the trained length, each paired against the clean rollout
(bootstrap CI, sign-flip p); and the same for a seeded random ``r``-dimensional subspace. A
probe that decodes but whose ablation changes nothing downstream is reported as such.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from airinterp.analysis.run import Hook, Hooks, PuzzleBatch, puzzle_batches, rollout
from airinterp.analysis.stats import mean_ci, paired
from airinterp.errors import InputError
from airinterp.model.air import HookedAIR
from airinterp.model.hooks import Address, HookPoint, read_only, select
from airinterp.model.schedule import SubStep
from airinterp.tasks.dataset import PuzzleDataset
from airinterp.tasks.rules import TaskRules

N_FOLDS = 5
BASE_TARGETS = ("solution", "undecided")


def default_acts(n_act: int) -> list[int]:
    """0, 1, 2, 4, 8, ... and the last ACT step (every step of a rollout of at most 3)."""
    if n_act <= 3:
        return list(range(n_act))
    return sorted({0, *(2**k for k in range(n_act.bit_length()) if 2**k < n_act), n_act - 1})


def targets_for(rules: TaskRules) -> list[str]:
    """The targets a task offers: solution, undecided, and for Sudoku candidate_1 .. candidate_<side>."""
    out = list(BASE_TARGETS)
    if rules.name == "sudoku":
        out += [f"candidate_{v}" for v in range(1, rules.side + 1)]
    return out


def ablation_groups(rules: TaskRules, targets: Sequence[str]) -> dict[str, list[str]]:
    """What the causal test ablates together: ``solution`` and ``undecided`` alone, the candidate
    probes of every digit as one ``candidates`` subspace (the cell's candidate set)."""
    groups: dict[str, list[str]] = {}
    for t in targets:
        groups.setdefault("candidates" if t.startswith("candidate_") else t, []).append(t)
    return groups


def ablate(x: Tensor, basis: Tensor, mean: Tensor) -> Tensor:
    """``x - ((x - mean) Q) Q^T`` over the last axis: the component of ``x`` along the orthonormal
    columns of ``basis`` [d, r] set to the mean's; every other direction untouched."""
    q = basis.to(x.dtype)
    return x - ((x - mean.to(x.dtype)) @ q) @ q.T


def orthonormal_span(rows: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """[d, r] an orthonormal basis of the span of ``rows`` [k, d] (singular values above ``tol`` x
    the largest)."""
    u, s, vt = np.linalg.svd(np.atleast_2d(rows), full_matrices=False)
    keep = s > tol * (s.max() if s.size else 0)
    return vt[keep].T


def random_span(d: int, r: int, seed: int, *labels: int) -> np.ndarray:
    """[d, r] a seeded random orthonormal basis (the control subspace)."""
    g = np.random.default_rng([seed, *labels, 23]).standard_normal((d, r))
    q, _ = np.linalg.qr(g)
    return q


class ProbeRecorder:
    """Keeps the non-given cells of the probed updates' outputs and the answer state's decode at
    every update of the trained length (read-only)."""

    def __init__(self, model: HookedAIR, rules: TaskRules, points: Sequence[int]) -> None:
        c = model.config
        self.model, self.rules = model, rules
        self.points = sorted(set(points))
        self.schedule = model.schedule
        self.n_act = c.halt_max_steps
        self.K = self.n_act * len(self.schedule)
        self.answer_state = self.schedule[-1].state
        self.features: dict[int, list[np.ndarray]] = {k: [] for k in self.points}
        self.samples: list[pd.DataFrame] = []
        self.proposals: list[np.ndarray] = []  # per batch [B, K, C]: the answer state's decode current at k
        self.inputs: list[np.ndarray] = []  # per batch [B, cell]: the puzzles' inputs
        self._rows = 0

    def hooks(self, model: HookedAIR) -> list[Hook]:
        C = model.config.seq_len

        @read_only
        def on_out(x: Tensor, hook: HookPoint) -> None:
            addr = Address.parse(hook.name)  # type: ignore[arg-type]
            s = SubStep.of(self.schedule, addr.act, addr.update)  # type: ignore[arg-type]
            k = s.flat
            if k in self._want:
                self._feat[k] = x[:, -C:].float()[self._free_t].cpu().numpy()
            if s.update.state == self.answer_state:
                self._tok[:, k] = model.decode(x).cpu().numpy()

        @read_only
        def on_init(x: Tensor, hook: HookPoint) -> None:
            self._init = model.decode(x).cpu().numpy()

        return [(select(site="hook_out", scope="update"), on_out), (f"hook_{self.answer_state}_init", on_init)]

    def start_batch(self, batch: PuzzleBatch, n_act: int) -> None:
        if n_act != self.n_act:
            raise InputError(f"ProbeRecorder reads the trained length ({self.n_act} ACT steps); the rollout has {n_act}")
        given = np.asarray(self.rules.given_mask(batch.inputs.cpu().numpy()), bool)
        self._batch = batch
        self._free = ~given & (batch.labels >= 0)
        self._free_t = torch.from_numpy(self._free).to(batch.inputs.device)
        self._want = set(self.points)
        self._feat: dict[int, np.ndarray] = {}
        self._tok = np.full((len(batch), self.K, batch.labels.shape[1]), -1, np.int64)
        self._init = None

    def end_batch(self) -> None:
        b = self._batch
        # the proposal current at each sub-step: the answer state's latest write (its initial value before any)
        tok = self._tok.copy()
        cur = self._init
        for k in range(self.K):
            if (tok[:, k] < 0).all():
                tok[:, k] = cur
            else:
                cur = tok[:, k]
        p, cell = np.nonzero(self._free)
        self.samples.append(pd.DataFrame({"puzzle": b.indices[p], "row": self._rows + p, "cell": cell, "label": b.labels[p, cell]}))
        self._rows += len(b)
        for k in self.points:
            self.features[k].append(self._feat[k])
        self.proposals.append(tok)
        self.inputs.append(np.asarray(b.inputs.cpu().numpy()))

    def result(self) -> "ProbeData":
        if not self.samples:
            raise InputError("no batch was recorded")
        return ProbeData(samples=pd.concat(self.samples, ignore_index=True),
                         features={k: np.concatenate(v) for k, v in self.features.items()},
                         proposals=np.concatenate(self.proposals), inputs=np.concatenate(self.inputs))  # fmt: skip


@dataclass
class ProbeData:
    """Samples (one row per puzzle and non-given cell, in the features' row order), the probed
    features per point [sample, d], and the answer state's proposal per puzzle and sub-step."""

    samples: pd.DataFrame  # puzzle, row (into proposals / inputs), cell, label
    features: dict[int, np.ndarray]
    proposals: np.ndarray  # [puzzle row, K, cell]
    inputs: np.ndarray  # [puzzle row, cell]

    def targets(self, rules: TaskRules, k: int) -> dict[str, np.ndarray]:
        """Each target's labels per sample at point ``k``."""
        order = self.samples.row.to_numpy()
        cell = self.samples.cell.to_numpy()
        prop = self.proposals[:, k]  # [puzzle, cell]
        later = self.proposals[:, k:]
        changes = (later != prop[:, None]).any(1)  # [puzzle, cell]: the proposal moves after k
        out = {"solution": self.samples.label.to_numpy(), "undecided": changes[order, cell].astype(np.int64)}
        if rules.name == "sudoku":
            grid = np.where(rules.given_mask(self.inputs), self.inputs, prop)
            peers = rules.neighbourhood("peers").numpy()
            for v in range(1, rules.side + 1):
                has = grid == rules.first_digit + v - 1  # type: ignore[attr-defined]
                blocked = (peers[None] & has[:, None, :]).any(-1)  # [puzzle, cell]: a peer holds v
                out[f"candidate_{v}"] = (~blocked[order, cell]).astype(np.int64)
        return out


def _fit_predict(X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of the probe and of the majority baseline (folds grouped by puzzle)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = np.empty_like(y)
    base = np.empty_like(y)
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        vals, counts = np.unique(y[train], return_counts=True)
        base[test] = vals[np.argmax(counts)]
        if len(vals) == 1:
            pred[test] = vals[0]
            continue
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))
        pred[test] = pipe.fit(X[train], y[train]).predict(X[test])
    return pred, base


def fit_probe(X: np.ndarray, y: np.ndarray, seed: int = 0):
    """The probe fitted on every sample (a scikit-learn pipeline), or None for a constant target."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y)) < 2:
        return None
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed)).fit(X, y)


def probe_directions(pipe) -> tuple[np.ndarray, np.ndarray]:
    """[d, r] orthonormal basis of the probe's weight directions in the state's own coordinates,
    and the mean the ablation keeps (the samples' feature mean)."""
    scaler, lr = pipe[0], pipe[-1]
    w = lr.coef_ / scaler.scale_[None, :]
    if len(w) > 1:  # softmax: only the classes' differences decide, so a vector shared by every row
        w = w - w.mean(0, keepdims=True)  # (what the solver leaves of it) is no direction of the probe
    return orthonormal_span(w), scaler.mean_


def _per_puzzle(correct: np.ndarray, puzzles: np.ndarray) -> pd.Series:
    return pd.Series(correct.astype(float)).groupby(puzzles).mean()


@dataclass(frozen=True)
class Probes:
    """``accuracy``: one row per (point, target): probe, control (permuted labels) and majority
    accuracy (means over puzzles, bootstrap CIs), selectivity; ``puzzles``: per (puzzle, point,
    target) the three accuracies; ``causal``: per (point, target, arm probe|random) the ablation's
    effects (module docstring); ``causal_puzzles``: its per-puzzle values."""

    accuracy: pd.DataFrame
    puzzles: pd.DataFrame
    causal: pd.DataFrame
    causal_puzzles: pd.DataFrame
    ablate_acts: tuple[int, ...]

    def frame(self) -> pd.DataFrame:
        return self.puzzles


def _steps(name: str, value: object, T: int, empty_ok: bool) -> list[int]:
    given = value
    if isinstance(value, str):
        try:
            value = [int(a) for a in value.split(",")] if value.strip() else []
        except ValueError:
            raise InputError(f"{name} {given!r}: expected comma-separated ACT steps like 0,1,{T - 1}") from None
    try:
        steps = list(value)  # type: ignore[call-overload]
    except TypeError:
        raise InputError(f"{name} {given!r}: expected ACT steps of the trained rollout, 0..{T - 1}") from None
    if (not steps and not empty_ok) or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < T for a in steps):
        raise InputError(f"{name} {given!r}: expected ACT steps of the trained rollout, 0..{T - 1}")
    return sorted({int(a) for a in steps})


def check_probes(model: HookedAIR, rules: TaskRules, n_puzzles: int, *, acts: object, targets: object, ablate_acts: object,
                 folds: object) -> tuple[list[int], list[str], list[int]]:  # fmt: skip
    """The options of :func:`run_probes` checked before any rollout; returns the probed ACT steps,
    the targets and the ablated ACT steps."""
    T = model.config.halt_max_steps
    acts = _steps("acts", default_acts(T) if acts is None else acts, T, empty_ok=False)
    ablate_acts = _steps("ablate_acts", sorted({min(1, T - 1), T - 1}) if ablate_acts is None else ablate_acts, T, empty_ok=True)
    offered = targets_for(rules)
    targets = offered if targets is None else ([t.strip() for t in targets.split(",")] if isinstance(targets, str) else list(targets))  # type: ignore[union-attr]
    bad = [t for t in targets if t not in offered]
    if bad or not targets:
        raise InputError(f"targets {','.join(map(str, bad)) or targets!r}: expected some of {', '.join(offered)}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InputError(f"folds {folds!r}: expected a whole number >= 2")
    if n_puzzles < folds:
        raise InputError(f"folds {folds}: needs n_puzzles >= {folds} (folds are grouped by puzzle), got {n_puzzles}")
    return acts, targets, ablate_acts  # type: ignore[return-value]


def run_probes(
    model: HookedAIR,
    ds: PuzzleDataset,
    indices: np.ndarray,
    rules: TaskRules,
    *,
    acts: "Sequence[int] | str | None" = None,
    targets: "Sequence[str] | str | None" = None,
    ablate_acts: "Sequence[int] | str | None" = None,
    ablate_targets: "Sequence[str] | None" = None,
    folds: int = N_FOLDS,
    batch_size: int = 64,
    seed: int = 0,
    bars: "Callable[[str, int], Callable[[int], None] | None] | None" = None,
) -> Probes:
    """Probe every update's output of the ACT steps ``acts`` (default :func:`default_acts`) for
    ``targets`` (default all the task offers) and ablate the probes of every update of the ACT
    steps ``ablate_acts`` (default 1 and the last; ``()``: no causal test; ``ablate_targets``
    default: the same targets) in the model's rollout."""
    acts, targets, ablate_acts = check_probes(model, rules, len(indices), acts=acts, targets=targets, ablate_acts=ablate_acts,
                                              folds=folds)  # fmt: skip
    ablate_targets = list(targets if ablate_targets is None else ablate_targets)
    if bad := [t for t in ablate_targets if t not in targets_for(rules)]:
        raise InputError(f"ablate_targets {','.join(bad)!r}: expected some of {', '.join(targets_for(rules))}")

    def bar(label: str, total: int) -> Callable[[int], None]:
        tick = bars(label, total) if bars else None
        return tick or (lambda k: None)
    n = len(model.schedule)
    points = [a * n + u for a in acts for u in range(n)]
    abl_points = [a * n + u for a in ablate_acts for u in range(n)]
    rec = ProbeRecorder(model, rules, sorted(set(points) | set(abl_points)))
    batches = list(puzzle_batches(model, ds, indices, batch_size))
    clean_out = []
    tick = bar("probes: rollout", len(indices))
    for batch in batches:
        clean_out.append(rollout(model, batch, recorders=[rec]).logits.argmax(-1).cpu().numpy())
        tick(len(batch))
    data = rec.result()
    puzzles = data.samples.puzzle.to_numpy()
    # folds are grouped by puzzle: no more folds than puzzles with a non-given cell (at least 2 to cross-validate)
    folds = min(folds, len(np.unique(puzzles)))
    if folds < 2:
        empty = pd.DataFrame()
        return Probes(accuracy=empty, puzzles=empty, causal=empty, causal_puzzles=empty, ablate_acts=tuple(ablate_acts))
    rng = np.random.default_rng([seed, 29])
    perm = rng.permutation(len(puzzles))
    acc_rows, puz_rows = [], []
    tick = bar(f"probes: {len(points)} points x {len(targets)} targets", len(points))
    for k in points:
        s = SubStep.at(model.schedule, k)
        X = data.features[k]
        labels = data.targets(rules, k)
        for t in targets:
            y = labels[t]
            pred, base = _fit_predict(X, y, puzzles, folds, seed)
            ctrl, _ = _fit_predict(X, y[perm], puzzles, folds, seed)
            a, b, m = _per_puzzle(pred == y, puzzles), _per_puzzle(ctrl == y[perm], puzzles), _per_puzzle(base == y, puzzles)
            row = {"substep": k, "act": s.act, "update": s.update.name, "state": s.update.state, "target": t,
                   "positive_share": float(y.mean()) if t != "solution" else math.nan, "n_samples": len(y)}  # fmt: skip
            for name, v in (("accuracy", a), ("control", b), ("majority", m)):
                ci = mean_ci(v.to_numpy(), seed, "probe", name, k, t)
                row |= {name: ci["mean"], f"{name}_ci_low": ci["ci_low"], f"{name}_ci_high": ci["ci_high"]}
            sel = paired(b.to_numpy(), a.to_numpy(), seed, "selectivity", k, t)
            row |= {"selectivity": sel["delta_mean"], "selectivity_ci_low": sel["delta_ci_low"],
                    "selectivity_ci_high": sel["delta_ci_high"], "n": sel["n"]}  # fmt: skip
            acc_rows.append(row)
            puz_rows.append(pd.DataFrame({"puzzle": a.index, "substep": k, "state": s.update.state, "target": t,
                                          "accuracy": a.to_numpy(), "control": b.reindex(a.index).to_numpy(),
                                          "majority": m.reindex(a.index).to_numpy()}))  # fmt: skip
        tick(1)
    causal_rows, causal_puz = [], []
    if abl_points:
        n_groups = len(ablation_groups(rules, ablate_targets))
        tick = bar(f"probes: ablations ({len(abl_points) * n_groups * 2} rollouts)", len(abl_points) * n_groups)
        causal_rows, causal_puz = _causal(model, rules, batches, clean_out, data, abl_points, ablate_targets, seed, folds, tick)
    return Probes(accuracy=pd.DataFrame(acc_rows), puzzles=pd.concat(puz_rows, ignore_index=True) if puz_rows else pd.DataFrame(),
                  causal=pd.DataFrame(causal_rows), causal_puzzles=pd.concat(causal_puz, ignore_index=True) if causal_puz else pd.DataFrame(),
                  ablate_acts=tuple(ablate_acts))  # fmt: skip


def _causal(model, rules, batches, clean_out, data: ProbeData, abl_points, targets, seed, folds, tick):
    c = model.config
    C = c.seq_len
    puzzles = data.samples.puzzle.to_numpy()
    labels_all = np.concatenate([b.labels for b in batches])
    inputs_all = np.concatenate([b.inputs.cpu().numpy() for b in batches])
    free_all = ~np.asarray(rules.given_mask(inputs_all), bool) & (labels_all >= 0)
    n_free = np.maximum(1, free_all.sum(1))
    clean = np.concatenate(clean_out)
    clean_ng = ((clean == labels_all) & free_all).sum(1) / n_free
    clean_exact = ((clean == labels_all) | ~free_all).all(1).astype(float)
    index = np.concatenate([b.indices for b in batches])
    free_ts = [torch.from_numpy(~np.asarray(rules.given_mask(b.inputs.cpu().numpy()), bool) & (b.labels >= 0)).to(b.inputs.device)
               for b in batches]  # fmt: skip
    rows, puz = [], []
    groups = ablation_groups(rules, targets)
    for k in abl_points:
        s = SubStep.at(model.schedule, k)
        X = data.features[k]
        labels = data.targets(rules, k)
        for gi, (t, members) in enumerate(groups.items()):
            pipes = {m: fit_probe(X, labels[m], seed) for m in members}
            pipes = {m: p for m, p in pipes.items() if p is not None}
            if not pipes:
                rows.append({"substep": k, "act": s.act, "update": s.update.name, "state": s.update.state, "target": t, "arm": "probe",
                             "rank": 0, "note": "constant target: nothing to ablate"})  # fmt: skip
                tick(1)
                continue
            dirs = [probe_directions(p) for p in pipes.values()]
            q = orthonormal_span(np.concatenate([d.T for d, _ in dirs]))
            mu = X.mean(0)
            r = q.shape[1]
            # per sample, the members' mean: the probe's own accuracy before and after, a re-fitted probe after
            before = np.mean([p.predict(X) == labels[m] for m, p in pipes.items()], axis=0)
            acc = _per_puzzle(before, puzzles).reindex(index)
            for arm, basis in (("probe", q), ("random", random_span(X.shape[1], r, seed, k, gi))):
                Xa = X - ((X - mu) @ basis) @ basis.T
                same = np.mean([p.predict(Xa) == labels[m] for m, p in pipes.items()], axis=0)
                refit = np.mean([_fit_predict(Xa, labels[m], puzzles, folds, seed)[0] == labels[m] for m in pipes], axis=0)
                out_tok, dec_ng, dec_clean = [], [], []
                qt, mt = torch.from_numpy(basis).float(), torch.from_numpy(mu).float()
                for batch, free_t in zip(batches, free_ts, strict=True):
                    seen: dict[str, Tensor] = {}

                    def hit(x: Tensor, hook: HookPoint, free_t=free_t, seen=seen) -> Tensor:
                        seen["clean"] = model.unembed(x).argmax(-1)
                        x = x.clone()
                        cells = x[:, -C:]
                        new = ablate(cells.float(), qt.to(x.device), mt.to(x.device)).to(x.dtype)
                        x[:, -C:] = torch.where(free_t[..., None], new, cells)
                        seen["ablated"] = model.unembed(x).argmax(-1)
                        return x

                    out = rollout(model, batch, interventions=[Hooks([(f"{s.name}.hook_out", hit)])])
                    out_tok.append(out.logits.argmax(-1).cpu().numpy())
                    lab = torch.from_numpy(batch.labels).to(batch.inputs.device)
                    nf = free_t.sum(1).clamp_min(1)
                    dec_ng.append((((seen["ablated"] == lab) & free_t).sum(1) / nf).cpu().numpy())
                    dec_clean.append((((seen["clean"] == lab) & free_t).sum(1) / nf).cpu().numpy())
                tok = np.concatenate(out_tok)
                ng = ((tok == labels_all) & free_all).sum(1) / n_free
                exact = ((tok == labels_all) | ~free_all).all(1).astype(float)
                dng, dcl = np.concatenate(dec_ng), np.concatenate(dec_clean)
                same_p = _per_puzzle(same, puzzles).reindex(index)
                refit_p = _per_puzzle(refit, puzzles).reindex(index)
                row = {"substep": k, "act": s.act, "update": s.update.name, "state": s.update.state, "target": t, "arm": arm, "rank": r,
                       "note": ""}  # fmt: skip
                for name, base, treated, rate in (("probe_acc", acc, same_p, False), ("refit_acc", acc, refit_p, False),
                                                   ("decode_nongiven", dcl, dng, False), ("output_nongiven", clean_ng, ng, False),
                                                   ("output_exact", clean_exact, exact, True)):  # fmt: skip
                    b_, t_ = np.asarray(base, float), np.asarray(treated, float)
                    keep = np.isfinite(b_) & np.isfinite(t_)
                    p = paired(b_[keep], t_[keep], seed, "ablation", k, t, arm, name, rate=rate)
                    row |= {f"{name}_clean": p["base_mean"], f"{name}_ablated": p["treated_mean"], f"{name}_delta": p["delta_mean"],
                            f"{name}_delta_ci_low": p["delta_ci_low"], f"{name}_delta_ci_high": p["delta_ci_high"],
                            f"{name}_p": p["p_sign_flip"]}  # fmt: skip
                row["n"] = len(index)
                rows.append(row)
                puz.append(pd.DataFrame({"puzzle": index, "substep": k, "target": t, "arm": arm, "probe_acc_ablated": same_p.to_numpy(),
                                         "refit_acc_ablated": refit_p.to_numpy(), "decode_nongiven_clean": dcl,
                                         "decode_nongiven_ablated": dng, "output_nongiven_clean": clean_ng,
                                         "output_nongiven_ablated": ng, "output_exact_clean": clean_exact,
                                         "output_exact_ablated": exact}))  # fmt: skip
            tick(1)
    return rows, puz


def report_probes(model: HookedAIR, ds: PuzzleDataset, indices: np.ndarray, rules: TaskRules, *, seed: int, batch_size: int = 64,
                  bars: "Callable[[str, int], Callable[[int], None] | None] | None" = None) -> Probes:  # fmt: skip
    """The report's probes (fewer fits and rollouts than the CLI's default): the solution and
    'undecided' targets at ACT steps 0, 1, the middle and the last; the solution probes ablated
    at every update of the last ACT step."""
    T = model.config.halt_max_steps
    folds = min(N_FOLDS, len(indices))
    return run_probes(model, ds, indices, rules, acts=sorted({0, min(1, T - 1), T // 2, T - 1}), targets=list(BASE_TARGETS),
                      ablate_acts=[T - 1], ablate_targets=["solution"], folds=folds, batch_size=batch_size, seed=seed, bars=bars)  # fmt: skip
