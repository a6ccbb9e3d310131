"""Puzzle-level statistics, on TransformerLens's utilities (``transformer_lens.utilities.statistics``).

Every interval resamples puzzles (the unit the experiment sampled), with a generator derived from
the run's seed and the quantity's label, so a table is reproducible cell by cell and adding a
metric does not move the others' intervals.
"""

import math

import numpy as np
import torch
from transformer_lens.utilities.statistics import (
    bootstrap_ci,
    derive_generator,
    sign_flip_permutation_pvalue,
    success_rate_ci,
)

from airinterp.errors import InputError

N_RESAMPLES = 2000


def mean_ci(values: np.ndarray, seed: int, *labels: object, confidence: float = 0.95) -> dict:
    """mean, sd (ddof 1), sem and the percentile-bootstrap CI of the mean over puzzles."""
    x = np.array(values, np.float64)  # a copy: torch wants writable memory
    n = len(x)
    out = {"n": n, "mean": float(x.mean()) if n else math.nan}
    out["sd"] = float(x.std(ddof=1)) if n > 1 else math.nan
    out["sem"] = out["sd"] / math.sqrt(n) if n > 1 else math.nan
    if n >= 2:
        lo, hi = bootstrap_ci(torch.from_numpy(x), confidence=confidence, n_resamples=N_RESAMPLES,
                              generator=derive_generator(seed, "mean", *labels))  # fmt: skip
        out["ci_low"], out["ci_high"] = float(lo), float(hi)
    else:
        out["ci_low"] = out["ci_high"] = math.nan
    return out


def paired(base: np.ndarray, treated: np.ndarray, seed: int, *labels: object, rate: bool = False) -> dict:
    """Paired comparison on the same puzzles: the means, the mean of ``treated - base`` with its
    bootstrap CI, the sign-flip permutation p-value that the mean difference is zero, and each
    arm's own interval (:func:`arm_ci`; ``rate``: the values are successes, e.g. exact accuracy)."""
    a, b = np.array(base, np.float64), np.array(treated, np.float64)
    if a.shape != b.shape:
        raise InputError(f"paired: {a.shape} vs {b.shape} values; the design pairs each puzzle with itself")
    d = b - a
    ci = mean_ci(d, seed, "delta", *labels)
    p = math.nan
    if len(d) >= 2:
        p = float(sign_flip_permutation_pvalue(torch.from_numpy(d), n_permutations=N_RESAMPLES,
                                               generator=derive_generator(seed, "sign-flip", *labels)))  # fmt: skip
    (alo, ahi), (blo, bhi) = arm_ci(a, seed, rate, "base", *labels), arm_ci(b, seed, rate, "treated", *labels)
    return {
        "n": len(d), "base_mean": float(a.mean()) if len(a) else math.nan,
        "treated_mean": float(b.mean()) if len(b) else math.nan,
        "delta_mean": ci["mean"], "delta_ci_low": ci["ci_low"], "delta_ci_high": ci["ci_high"], "p_sign_flip": p,
        "base_ci_low": alo, "base_ci_high": ahi, "treated_ci_low": blo, "treated_ci_high": bhi,
    }  # fmt: skip


def arm_ci(values: np.ndarray, seed: int, rate: bool, *labels: object) -> tuple[float, float]:
    """One arm's own 95 % interval: exact (Clopper-Pearson) for a ``rate`` (0/1 successes, e.g.
    exact accuracy), else the percentile bootstrap of the mean over puzzles; both stay inside the
    values' range (no negative accuracy). The metric decides, never the values, so both arms of
    one comparison get the same kind of interval."""
    x = np.asarray(values, np.float64)
    if rate:
        return rate_ci(x)
    ci = mean_ci(x, seed, "arm", *labels)
    return ci["ci_low"], ci["ci_high"]


def rate_ci(successes: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a success rate, e.g. exact accuracy."""
    s = [bool(v) for v in np.asarray(successes).reshape(-1)]
    if not s:
        return math.nan, math.nan
    ci = success_rate_ci(s, confidence=confidence)
    return float(ci.ci_low), float(ci.ci_high)
