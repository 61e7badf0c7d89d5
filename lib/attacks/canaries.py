"""Canaries for the leave-one-out membership machinery: privacy measured on the most vulnerable examples, not on the
population average (Aerni, Zhang & Tramèr, "Evaluations of Machine Learning Privacy Defenses are Misleading",
CCS 2024; code ethz-spylab/misleading-privacy-evals, src/data.py and src/experiments/approx_worst_case.py).

Why: TPR at low FPR averaged over a population is dominated by the many examples an attack cannot tell apart and
says little about the few a model memorizes. Aerni et al. plant a small set of *canaries* that stand in for the
most vulnerable examples, let each be IN about half of the models like any example, run LiRA leave-one-out and read
TPR at FPR 0.1% on the canaries only, pooled over the targets.

    plant           ~1% of the population's positions (`fraction`, or `n`), drawn UNIFORMLY (not stratified), as
                    the authors' data.py: the first n of a seeded permutation of all positions, so a larger n only
                    adds canaries (the set is nested in n for one seed). Each gets a label drawn uniformly from the
                    OTHER classes: r ~ U{0..C−2}, label = r if r < y else r + 1 (the authors' rule), again drawn for
                    every position in permutation order, so a canary keeps its label when n grows. Mislabelled
                    examples are the authors' canary for undefended models and most defences (LABEL_NOISE); their
                    other kinds (blank images for DP-SGD, OOD images, duplicates) are not here.
    membership      the population's keep matrix as it is (lib.attacks.lira.keep_matrix): the canaries vary IN /
                    OUT like every example. Differs from the authors, whose non-canaries are IN every model and
                    only the canaries vary: here the same models also give the population's numbers, at the cost
                    of training each model on half the population.
    canary_metrics  from leave-one-out member scores [T, N] (T targets) and keep [M, N]: the (score, IN) pairs of
                    the canary positions pooled over the targets (T·n_canary pairs, about half non-members), through
                    lib.attacks.lira.evaluate (AUC, TPR at each FPR, NaN + status where the pooled non-member count
                    N⁻ cannot resolve it: lib.claims.metrics.tpr_resolvable, ≥ 10 false positives allowed), plus
                    the lowest requested FPR that N⁻ resolves (`low_fpr`; NaN when none) and the lowest any FPR
                    could be (10/N⁻). The same for the whole population and for the non-canaries, for comparison.
    vulnerability   per example, the separation of its member scores IN vs OUT across the targets,
                    d' = (mean_IN − mean_OUT) / √((var_IN + var_OUT)/2) (ddof 1; NaN with < 2 IN or < 2 OUT).
                    The authors rank by the per-example TPR at FPR 0.1% over their targets (approx_worst_case.py,
                    with ~20k models): that needs ≥ 10⁴ OUT targets per example. With tens of models we use its
                    equal-variance Gaussian value Φ(d' − Φ⁻¹(1 − α)), which is monotone in d' at every α, so the
                    ranking is by d'.
    most_vulnerable the top `top_fraction` of the population by vulnerability, and TPR at low FPR pooled over the
                    targets on those examples only (the authors' top-500 ROC). Ranking and measuring on the same
                    targets selects the examples whose noise happened to separate them (winner's curse: pure noise
                    scores give TPR far above chance), so by default (`holdout=True`) the vulnerability is estimated
                    on every other target (targets[0::2]) and the TPR measured on the rest (targets[1::2]). The
                    authors rank and measure on the same targets, which their ~20k models make harmless; that is
                    `holdout=False` here.

Member scores follow lib.claims.metrics: higher = more likely a member. They may be given as [T, N] (row t = target
targets[t]) or as leave_one_out's flat layout (length T·N, target-major); NaN scores are dropped and counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..claims import metrics as M
from . import lira as L

FPRS = L.FPRS            # (0.001, 0.01): the authors' TPR at 0.1% FPR first
FRACTION = 0.01          # ~1% of the population, as the authors' 500 canaries of CIFAR-10's 50 000


@dataclass(frozen=True, eq=False)
class Canaries:
    """A planted canary set: population positions (sorted), their original labels and their canary labels (each ≠
    the original), and the class count. Arrays are read-only."""
    positions: np.ndarray
    original: np.ndarray
    labels: np.ndarray
    n_classes: int

    def __len__(self) -> int:
        return len(self.positions)

    def apply(self, y) -> np.ndarray:
        """A copy of the population labels y [N] with the canaries relabelled. y must be the population the set
        was planted in (its labels at the positions are the recorded originals)."""
        y = np.asarray(y)
        if y.ndim != 1 or (len(self) and int(self.positions.max()) >= len(y)):
            raise ValueError(f"y must be the population's labels [N] with N > {int(self.positions.max())}, "
                             f"got shape {y.shape}")
        if not np.array_equal(y[self.positions], self.original):
            raise ValueError("y is not the population these canaries were planted in (its labels at the canary "
                             "positions differ from the recorded originals)")
        out = y.copy()
        out[self.positions] = self.labels.astype(y.dtype)
        return out

    def mask(self, n_examples: int) -> np.ndarray:
        """[N] bool: True at the canary positions."""
        m = np.zeros(int(n_examples), bool)
        m[self.positions] = True
        return m


def plant(y, n_classes: int, fraction: float = FRACTION, seed: int = 0, n: int | None = None) -> Canaries:
    """Choose canaries among the population's positions (uniformly: a seeded permutation's first n) and give each
    a label drawn uniformly from the other classes. n (when given) overrides fraction; else n = max(1,
    round(fraction·N)), capped at ⌊N/2⌋. At most half the population may be canaries."""
    y = np.asarray(y)
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be ≥ 2 (a canary needs another class), got {n_classes}")
    if y.ndim != 1 or len(y) < 2 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 \
            or y.max() >= int(n_classes):
        raise ValueError(f"y must be a 1-D array of ≥ 2 of class indices in [0, {int(n_classes)}), "
                         f"got shape {y.shape}, dtype {y.dtype}")
    N = len(y)
    if n is None:
        if not 0.0 < float(fraction) <= 0.5:
            raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
        n = min(max(1, int(round(float(fraction) * N))), N // 2)
    elif not 1 <= int(n) <= N // 2:
        raise ValueError(f"n must be in [1, {N // 2}] (at most half of the {N} examples), got {n}")
    n = int(n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    shift = rng.integers(0, int(n_classes) - 1, size=N)     # one draw per position of the permutation
    pos, r = order[:n], shift[:n]
    orig = y[pos]
    new = np.where(r < orig, r, r + 1)
    keep = np.argsort(pos)
    arrays = [a[keep].astype(np.int64) for a in (pos, orig, new)]
    for a in arrays:
        a.setflags(write=False)
    return Canaries(*arrays, n_classes=int(n_classes))


# ----------------------------------------------------------------------------- pooled over the targets

def _targets_scores(member_scores, keep, targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores [T, N] float64, truth [T, N] bool, target indices [T]) with the shapes checked."""
    k = np.asarray(keep, bool)
    if k.ndim != 2:
        raise ValueError(f"keep must be [M, N], got shape {k.shape}")
    t = np.arange(len(k)) if targets is None else np.asarray(targets, np.int64).ravel()
    if len(t) == 0 or t.min() < 0 or t.max() >= len(k) or len(np.unique(t)) != len(t):
        raise ValueError(f"targets must be distinct model indices in [0, {len(k)}), got {t.tolist()}")
    s = np.asarray(member_scores, np.float64)
    if s.ndim == 1 and s.size == len(t) * k.shape[1]:
        s = s.reshape(len(t), k.shape[1])                    # leave_one_out's layout: target-major
    if s.shape != (len(t), k.shape[1]):
        raise ValueError(f"member_scores must be [T, N] = [{len(t)}, {k.shape[1]}] (or leave_one_out's flat "
                         f"T·N), got shape {np.shape(member_scores)}")
    return s, k[t], t


def _positions(canary_pos, n_examples: int) -> np.ndarray:
    """Canary positions from a Canaries, a bool mask [N] or indices."""
    p = canary_pos.positions if isinstance(canary_pos, Canaries) else np.asarray(canary_pos)
    if p.dtype == bool:
        if p.shape != (n_examples,):
            raise ValueError(f"canary_pos as a mask must be [N] = [{n_examples}], got shape {p.shape}")
        p = np.flatnonzero(p)
    p = np.unique(p.astype(np.int64).ravel())
    if len(p) == 0 or p.min() < 0 or p.max() >= n_examples:
        raise ValueError(f"canary_pos must be non-empty positions in [0, {n_examples})")
    return p


def low_fpr(fprs, n_nonmembers: int) -> float:
    """The lowest of `fprs` that n non-members resolve (lib.claims.metrics.tpr_resolvable); NaN when none."""
    ok = [float(f) for f in fprs if M.tpr_resolvable(f, n_nonmembers)]
    return min(ok) if ok else float("nan")


def _row(subset: str, s, y, g, fprs, n_examples: int, n_boot: int, seed: int) -> dict:
    sc, tr, gr = s.ravel(), y.ravel(), g.ravel()
    row = {"subset": subset, "n_examples": int(n_examples), "n_targets": int(s.shape[0])}
    if n_boot:
        row.update(L.metrics_row(sc, tr, fprs, groups=gr, n_boot=n_boot, seed=seed))
    else:
        row.update(L.evaluate(sc, tr, fprs))
    n_neg = row["n_nonmembers"]
    row["low_fpr"] = low_fpr(fprs, n_neg)
    row["min_resolvable_fpr"] = M.MIN_FALSE_POSITIVES / n_neg
    return row


def _table(s, y, t, subsets: dict, fprs, n_boot: int, seed: int) -> pd.DataFrame:
    g = np.broadcast_to(np.asarray(t)[:, None], s.shape)
    rows = [_row(name, s[:, p], y[:, p], g[:, p], fprs, len(p), n_boot, seed) for name, p in subsets.items()
            if len(p)]
    return pd.DataFrame(rows).set_index("subset")


def canary_metrics(member_scores, keep, canary_pos, fprs=FPRS, *, targets=None, n_boot: int = 0,
                   seed: int = 0) -> pd.DataFrame:
    """Membership metrics pooled over the targets, one row per subset: "canaries" (the canary positions only),
    "population" (every position) and "others" (the non-canaries). Columns: subset counts (n_examples, n_targets),
    lib.attacks.lira.evaluate's (auc, n_members, n_nonmembers, n_dropped, tpr_at_<α>pct with _status, _chance,
    _below_chance, _interp, min_fpr = 1/N⁻), low_fpr (the lowest requested FPR the pooled N⁻ resolves; NaN when
    none) and min_resolvable_fpr = 10/N⁻. With n_boot > 0: lira.metrics_row's bootstrap SEs (targets resampled).

    member_scores [T, N] (or leave_one_out's flat T·N) of the targets `targets` (default: every model of keep
    [M, N]); canary_pos: a Canaries, a bool mask [N] or positions."""
    s, y, t = _targets_scores(member_scores, keep, targets)
    n = s.shape[1]
    pos = _positions(canary_pos, n)
    others = np.setdiff1d(np.arange(n), pos)
    return _table(s, y, t, {"canaries": pos, "population": np.arange(n), "others": others}, fprs, n_boot, seed)


# ----------------------------------------------------------------------------- the most vulnerable examples

def vulnerability(member_scores, keep, *, targets=None) -> np.ndarray:
    """[N] per-example separation d' of the member scores with the example IN vs OUT across the targets (see the
    module docstring); NaN where an example has < 2 IN or < 2 OUT targets (or no spread and no difference)."""
    s, y, _ = _targets_scores(member_scores, keep, targets)
    ok = np.isfinite(s)
    inn, out = y & ok, ~y & ok
    n_in, n_out = inn.sum(0), out.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_in = np.where(inn, s, 0).sum(0) / n_in
        mu_out = np.where(out, s, 0).sum(0) / n_out
        v_in = np.where(inn, (s - mu_in) ** 2, 0).sum(0) / (n_in - 1)
        v_out = np.where(out, (s - mu_out) ** 2, 0).sum(0) / (n_out - 1)
        d = (mu_in - mu_out) / np.sqrt((v_in + v_out) / 2)
    d[(n_in < 2) | (n_out < 2)] = np.nan
    return d


def most_vulnerable(member_scores, keep, top_fraction: float, *, targets=None, fprs=FPRS, holdout: bool = True,
                    n_boot: int = 0, seed: int = 0) -> dict:
    """The top `top_fraction` of the population by vulnerability and their membership metrics pooled over the
    targets. holdout=True: vulnerability from targets[0::2], metrics on targets[1::2] (no selection bias);
    False: both on every target (the authors' way; optimistic with few targets).

    Returns {"vulnerability": [N] (NaN examples never selected), "positions": the top examples (sorted),
    "rank_targets", "eval_targets": model indices, "metrics": canary_metrics-like table with rows
    "most_vulnerable" and "population" (on the evaluation targets)}."""
    if not 0.0 < float(top_fraction) <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    s, y, t = _targets_scores(member_scores, keep, targets)
    if holdout and len(t) < 2:
        raise ValueError(f"holdout needs ≥ 2 targets (rank on half, measure on the other), got {len(t)}")
    rank = np.arange(0, len(t), 2) if holdout else np.arange(len(t))
    ev = np.arange(1, len(t), 2) if holdout else np.arange(len(t))
    v = vulnerability(s[rank], y[rank])
    n = s.shape[1]
    k = max(1, int(round(float(top_fraction) * n)))
    order = np.argsort(-np.where(np.isfinite(v), v, -np.inf), kind="mergesort")
    top = np.sort(order[:min(k, int(np.isfinite(v).sum()))])
    if not len(top):
        raise ValueError("no example has ≥ 2 IN and ≥ 2 OUT scores on the ranking targets: cannot rank")
    table = _table(s[ev], y[ev], t[ev], {"most_vulnerable": top, "population": np.arange(n)}, fprs, n_boot, seed)
    return {"vulnerability": v, "positions": top, "rank_targets": t[rank], "eval_targets": t[ev], "metrics": table}


__all__ = ["FPRS", "FRACTION", "Canaries", "canary_metrics", "low_fpr", "most_vulnerable", "plant", "vulnerability"]
