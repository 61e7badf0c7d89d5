"""LiRA, the likelihood-ratio membership attack (Carlini et al., S&P 2022), as paper C uses it (notebook 06), for any
model that gives logits: a reusable attack of lib (papers A and B and the claims table use it too).

Notation: M shadow models, N candidate examples, A augmented queries per example.

    keep            [M, N] bool, keep[m, n] = example n is IN (a member of) model m's training set.
                    keep_matrix() draws it as the authors' code does: argsort of a uniform [M, N] matrix along
                    the models, so every example is IN exactly ⌊pkeep·M⌋ models.
    score           per example and query: s = log p_y − log Σ_{y'≠y} p_y'  (the "stable logit scaling"),
                    computed in float64 as z_y − logsumexp_{y'≠y} z_y' from the logits z (no 1e-45 clamp needed).
    online LiRA     per example, Gaussians N(μ_in, σ_in²) and N(μ_out, σ_out²) of the shadow scores with the
                    example IN / OUT; member score = mean over queries of log N(s; μ_in, σ_in) − log N(s; μ_out, σ_out).
    offline LiRA    OUT Gaussian only. Paper: one-sided, member score = mean over queries of log Φ((s − μ_out)/σ_out)
                    (members score high). Authors' code: two-sided, −log N(s; μ_out, σ_out) (far from OUT either way).
    fixed variance  one global σ instead of per-example σ. Paper: σ_in = std of all IN scores, σ_out = std of all OUT
                    scores. Authors' code (QuTongxi/Quant-MIA, plot.py): σ_in = σ_out = std of all IN scores
                    (online) and std of all OUT scores (offline).
    centre          paper: the mean; authors' code: the median.

`variant="paper"` or `"authors"` picks those three choices at once; each can also be set alone. Per-example
statistics use every shadow with the example IN (or OUT), not a truncated common count as the authors' code does.

A higher member score means "more likely a member" (lib.claims.metrics conventions). TPR at FPR α is resolvable
only when the non-member count N⁻ allows at least metrics.MIN_FALSE_POSITIVES false positives (α·N⁻ ≥ 10); pooling
the targets of a keep matrix (leave_one_out) multiplies N⁻ by the number of targets.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

from ..claims import metrics as M
from ..core.vocab import LIRA_VARIANTS, same_names

VARIANTS = {"paper": {"center": "mean", "fixed_from": "each", "offline_sides": 1},
            "authors": {"center": "median", "fixed_from": "in", "offline_sides": 2}}
same_names(VARIANTS, LIRA_VARIANTS, "lib.attacks.lira.VARIANTS")
FPRS = (0.001, 0.01)


def keep_matrix(n_models: int, n_examples: int, seed: int, pkeep: float = 0.5) -> np.ndarray:
    """[M, N] bool: each example IN exactly ⌊pkeep·M⌋ of the M models (argsort of a uniform matrix, as the authors)."""
    if int(n_models) < 2 or int(n_examples) < 1:
        raise ValueError(f"keep_matrix needs n_models ≥ 2 and n_examples ≥ 1, got {n_models}, {n_examples}")
    if not 0.0 < float(pkeep) < 1.0:
        raise ValueError(f"pkeep must be in (0, 1), got {pkeep}")
    u = np.random.default_rng(seed).uniform(size=(int(n_models), int(n_examples)))
    order = u.argsort(0).argsort(0)          # rank of each model's draw within an example's column
    return order < int(pkeep * n_models)


def scores_from_logits(logits, labels) -> np.ndarray:
    """LiRA's score log p_y − log Σ_{y'≠y} p_y' from logits [N, C] or [N, A, C] and labels [N] → float64 [N, A]
    (A = 1 for 2-D logits). Exact in float64: z_y − logsumexp over the other classes (no probabilities formed)."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 2:
        z = z[:, None, :]
    if z.ndim != 3:
        raise ValueError(f"logits must be [N, C] or [N, A, C], got shape {z.shape}")
    y = np.asarray(labels).astype(np.int64)
    if y.shape != (z.shape[0],) or y.min() < 0 or y.max() >= z.shape[2]:
        raise ValueError(f"labels must be [N] = [{z.shape[0]}] class indices < {z.shape[2]}")
    zy = np.take_along_axis(z, y[:, None, None].repeat(z.shape[1], 1), axis=2)[..., 0]
    others = z.copy()
    np.put_along_axis(others, y[:, None, None].repeat(z.shape[1], 1), -np.inf, axis=2)
    return zy - logsumexp(others, axis=2)


@dataclass(frozen=True)
class LiRA:
    """One LiRA configuration: online or offline, per-example or fixed variance, and the variant's choices."""
    online: bool = True
    fix_variance: bool = False
    variant: str = "paper"
    center: str | None = None         # "mean" | "median" (None: the variant's)
    offline_sides: int | None = None  # 1 | 2 (None: the variant's)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"LiRA variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.center not in (None, "mean", "median"):
            raise ValueError(f"LiRA center must be 'mean' or 'median', got {self.center!r}")
        if self.offline_sides not in (None, 1, 2):
            raise ValueError(f"LiRA offline_sides must be 1 or 2, got {self.offline_sides!r}")

    @property
    def name(self) -> str:
        return (f"{'online' if self.online else 'offline'}{', fixed variance' if self.fix_variance else ''}"
                f" ({self.variant})")

    def _choice(self, key):
        own = {"center": self.center, "offline_sides": self.offline_sides}.get(key)
        return VARIANTS[self.variant][key] if own is None else own

    def member_scores(self, shadow_scores, keep, target_scores) -> np.ndarray:
        """Member score [N] of each example of a target from the shadows' scores [M, N, A] (keep [M, N]) and the
        target's scores [N, A]. Examples without an IN (online) or OUT shadow score get NaN."""
        s = np.asarray(shadow_scores, dtype=np.float64)
        s = s[..., None] if s.ndim == 2 else s
        k = np.asarray(keep, dtype=bool)
        t = np.asarray(target_scores, dtype=np.float64)
        t = t[:, None] if t.ndim == 1 else t
        if s.shape[:2] != k.shape or t.shape != s.shape[1:]:
            raise ValueError(f"shapes: shadow scores {s.shape}, keep {k.shape}, target scores {t.shape} "
                             "must be [M, N, A], [M, N], [N, A]")
        mu_out, sd_out = self._stats(s, ~k)
        if self.fix_variance:
            sd_out = np.full_like(sd_out, self._global_sd(s, k if self._choice("fixed_from") == "in" and self.online
                                                          else ~k))
        if not self.online:
            z = (t - mu_out) / (sd_out + 1e-30)
            per_query = stats.norm.logcdf(z) if self._choice("offline_sides") == 1 else \
                -stats.norm.logpdf(t, mu_out, sd_out + 1e-30)
            return per_query.mean(1)
        mu_in, sd_in = self._stats(s, k)
        if self.fix_variance:
            sd_in = np.full_like(sd_in, self._global_sd(s, k))
        llr = stats.norm.logpdf(t, mu_in, sd_in + 1e-30) - stats.norm.logpdf(t, mu_out, sd_out + 1e-30)
        return llr.mean(1)

    def _stats(self, s, mask):
        """Per-example, per-query centre and std of the shadow scores where mask [M, N] holds."""
        x = np.where(mask[..., None], s, np.nan)
        with warnings.catch_warnings():   # an example with no such shadow gets NaN by design: no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmedian(x, 0) if self._choice("center") == "median" else np.nanmean(x, 0)
            sd = np.nanstd(x, 0)
        return centre, sd

    @staticmethod
    def _global_sd(s, mask) -> float:
        return float(np.nanstd(s[mask]))   # NaN = a shadow score left out (balanced_references)


def balanced_references(keep, k_in: int | None = None, k_out: int | None = None) -> np.ndarray:
    """[M, N] bool: which shadows to use per example: the first k_in with the example IN and the first k_out with it
    OUT (model order); default k = the smallest count over the examples (the authors' "common count").

    Why: in leave-one-out on a keep matrix where every example is IN exactly K of the M models, a target's members
    have K − 1 IN and M − K OUT shadows and its non-members K IN and M − K − 1 OUT. With few models the IN mean of a
    member is then the noisier one and online LiRA's likelihood ratio leans towards "non-member" for members even
    when nothing is memorized (M = 4: AUC ≈ 0.4 on untrained models). Using the same number of IN and OUT shadows
    for every example removes that dependence on the target's own membership. Mask the unused scores with NaN."""
    k = np.asarray(keep, bool)
    k_in = int(k.sum(0).min()) if k_in is None else int(k_in)
    k_out = int((~k).sum(0).min()) if k_out is None else int(k_out)
    return (k & (np.cumsum(k, 0) <= k_in)) | (~k & (np.cumsum(~k, 0) <= k_out))


def evaluate(member_scores, is_member, fprs=FPRS) -> dict:
    """AUC, TPR at each FPR (NaN + status where N⁻ cannot resolve it), the chance TPR and the smallest FPR
    1/N⁻, for member scores [n] and truth [n] (NaN scores are dropped and counted)."""
    sc = np.asarray(member_scores, dtype=np.float64)
    y = np.asarray(is_member).astype(np.int64)
    ok = np.isfinite(sc)
    sc, y = sc[ok], y[ok]
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    out = {"auc": float(roc_auc_score(y, sc)), "n_members": n_pos, "n_nonmembers": n_neg,
           "n_dropped": int((~ok).sum())}
    out.update(M.low_fpr_row({f: M.tpr_at_fpr_detail(y, sc, f) for f in fprs}, n_neg))
    return out


def leave_one_out(scores, keep, attack: LiRA, targets=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every model of a keep matrix (or the indices `targets`) attacked with the others as shadows; the predictions
    pooled. scores [M, N, A] (or [M, N]), keep [M, N]. Returns (member scores, truth, target index), each of length
    len(targets)·N: the pooled attack has len(targets)·N·(1 − pkeep) non-members."""
    s = np.asarray(scores, dtype=np.float64)
    k = np.asarray(keep, dtype=bool)
    targets = range(len(k)) if targets is None else targets
    preds, truth, who = [], [], []
    for m in targets:
        rest = np.arange(len(k)) != m
        preds.append(attack.member_scores(s[rest], k[rest], s[m]))
        truth.append(k[m])
        who.append(np.full(k.shape[1], m))
    return np.concatenate(preds), np.concatenate(truth), np.concatenate(who)


def roc_loglog(member_scores, is_member, n_points: int = 200) -> pd.DataFrame:
    """The ROC curve for a log-log plot: the operating points (fpr > 0) thinned to ≤ n_points, log-spaced in FPR."""
    sc = np.asarray(member_scores, dtype=np.float64)
    ok = np.isfinite(sc)
    t = M.roc_curve_table(np.asarray(is_member).astype(int)[ok], sc[ok])
    t = t[t.fpr > 0]
    if len(t) > n_points:
        grid = np.geomspace(t.fpr.min(), 1.0, n_points)
        idx = np.unique(np.searchsorted(t.fpr.to_numpy(), grid, side="right") - 1)
        t = t.iloc[np.clip(idx, 0, len(t) - 1)]
    return t.reset_index(drop=True)


def rmia_member_scores(target_x, ref_x, ref_keep_x, target_z, ref_z, *, offline_a: float = 0.3,
                       gamma: float = 1.0, max_refs: int | None = None, ref_use=None) -> np.ndarray:
    """Offline RMIA (Zarifzadeh et al., ICML 2024) as privacytrustlab/ml_privacy_meter computes it: a port of
    modules/mia/attacks/rmia.py, `get_out_ref_signals` and `run_rmia` (commit e384af8, 2025-04-26), with the same
    operations in the same order, so the scores are the same numbers (tests/test_parity_lira.py).

    Signals are the softmax probability of the label (averaged over queries, rmia_signal): target_x [N] and
    ref_x [R, N] on the candidates (ref_keep_x [R, N]: candidate n IN reference r), target_z [P] and ref_z [R, P] on a
    population of non-members (never in any model). k = max_refs is ml_privacy_meter's num_reference_models; None
    means its run_rmia default max(R // 2, 1). The reference signal of candidate x, P_out(x):

      k > 1   the k LARGEST of x's OUT reference signals, averaged: the IN signals are set to 0, each row sorted in
              descending order, the first k columns kept and averaged over k. So with more than k OUT references the
              k largest are used (not the first k in model order); with fewer than k, the missing ones count as 0
              (a RuntimeWarning says for how many candidates). Every reference is OUT on z: z takes its own k largest.
      k = 1   EVERY reference, averaged: OUT signals as they are, an IN signal p_in replaced by (p_in + a − 1)/a, the
              P_out that the offline approximation P_in = a·P_out + 1 − a gives back ((p_in − 0.7)/0.3 when a = 0,
              as theirs; it can be negative); on z the mean of all R reference signals.

    Then Pr(x) = (1+a)/2 · P_out(x) + (1−a)/2 (a = offline_a), likewise Pr(z), and Score(x) = the share of the
    population z with (p(x|θ)/Pr(x)) / (p(z|θ)/Pr(z)) > γ, the ratio formed by division as theirs (ml_privacy_meter
    fixes γ = 1). No NaN for candidates without an OUT reference (the old version's): theirs gives them a number.

    Where this differs from ml_privacy_meter's own runs: they train models in complementary pairs (models/utils.py
    split_dataset_for_training) and the older pipeline (attacks.py get_rmia_out_signals) takes the first k pairs
    other than the target's, so every example is OUT of exactly k references, the sort only extracts them and k = 1
    means one reference. In leave-one-out on a keep matrix a target's members have one OUT reference more (one IN
    fewer) than its non-members, so both rules above depend on the target's membership: simulated models with no
    membership signal at all (keep_matrix, k = the smallest OUT count, pooled over the M targets) gave AUC 0.59 at
    M = 4 (k = 1) and 0.486 at M = 10 (k = 4), against 0.500 for the first k OUT references in model order
    (tests/test_parity_lira.py, test_rmia_reference_choice_leans_on_the_targets_membership_in_leave_one_out).

    `ref_use` [R, N] bool (None: every reference) restricts each candidate to the references marked True (an unused
    reference is never among the k largest, nor in the k = 1 mean). This repository's leave-one-out callers pass
    `balanced_references(keep, k_in=0)`: every candidate has the same number of OUT references and no IN reference,
    whatever the target's membership, as ml_privacy_meter's paired models have (and as the RMIA paper's offline
    attack uses). With k = that count the k-largest rule keeps all k (their mean) and the k = 1 rule the one OUT
    signal; the no-signal AUC is then 0.5 (same test; also with the balanced IN references kept)."""
    tx, tz = np.asarray(target_x, np.float64), np.asarray(target_z, np.float64)
    rx, rz = np.asarray(ref_x, np.float64), np.asarray(ref_z, np.float64)
    keep = np.asarray(ref_keep_x, bool)
    if rx.ndim != 2 or keep.shape != rx.shape or tx.shape != rx.shape[1:] or rz.ndim != 2 \
            or rz.shape[0] != rx.shape[0] or tz.shape != rz.shape[1:]:
        raise ValueError(f"shapes: target_x {tx.shape}, ref_x {rx.shape}, ref_keep_x {keep.shape}, target_z "
                         f"{tz.shape}, ref_z {rz.shape} must be [N], [R, N], [R, N], [P], [R, P]")
    k = max(rx.shape[0] // 2, 1) if max_refs is None else int(max_refs)
    if k < 1:
        raise ValueError(f"max_refs must be ≥ 1 (or None), got {max_refs}")
    a = float(offline_a)
    use = None if ref_use is None else np.asarray(ref_use, bool)
    if use is not None and use.shape != keep.shape:
        raise ValueError(f"ref_use {use.shape} must have the shape of ref_keep_x {keep.shape}")
    n_out = ((~keep) & (use if use is not None else True)).sum(0)
    if k > 1 and (n_out < k).any():
        warnings.warn(f"RMIA: {int((n_out < k).sum())} of {keep.shape[1]} candidates have fewer than "
                      f"{k} OUT references; as ml_privacy_meter, the missing ones count as 0", RuntimeWarning,
                      stacklevel=2)

    def pr(sig, member, used=None):   # get_out_ref_signals, its mean over the references, the offline Pr(·); [N, R]
        out = sig * ~member
        if k > 1:
            if used is not None:      # unused references are never among the k largest; missing ones count as 0
                out = np.where(used & ~member, sig, -np.inf)
                out = -np.sort(-out, axis=1)[:, :k]
                out = np.where(np.isfinite(out), out, 0.0)
            else:
                out = -np.sort(-out, axis=1)[:, :k]
        elif a != 0:
            out += ((sig + a - 1) / a) * member
        else:
            out += ((sig - 0.7) / 0.3) * member
        mean = np.mean(out, axis=1) if used is None or k > 1 else (out * used).sum(1) / used.sum(1)
        return (1 + a) / 2 * mean + (1 - a) / 2

    # A ratio over a near-zero reference ratio overflows to inf, which compares > gamma as its limit does: the
    # comparison is exact, so the overflow warning is silenced with the division ones (values unchanged).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio_x = tx / pr(np.ascontiguousarray(rx.T), np.ascontiguousarray(keep.T),
                          None if use is None else np.ascontiguousarray(use.T))   # C order as theirs: same sums
        ratio_z = tz / pr(np.ascontiguousarray(rz.T), np.zeros(rz.T.shape, bool))
        step = max(1, 2 ** 22 // max(len(ratio_z), 1))   # rows of the [N, P] comparison at a time
        return np.concatenate([np.average(ratio_x[i:i + step, None] / ratio_z > gamma, axis=1)
                               for i in range(0, len(ratio_x), step)]) if len(ratio_x) else np.zeros(0)


def rmia_signal(logits: np.ndarray, y) -> np.ndarray:
    """RMIA's signal: the softmax probability of the label, averaged over the queries. logits [..., N, A, C]."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    idx = np.broadcast_to(np.asarray(y)[:, None, None], p.shape[:-1] + (1,))
    return np.take_along_axis(p, idx, -1)[..., 0].mean(-1)


def metrics_row(scores: np.ndarray, truth: np.ndarray, fprs, *, groups=None, n_boot: int = 200,
                seed: int = 0) -> dict:
    """evaluate() plus each TPR's standard error by a stratified bootstrap (members and non-members resampled, so
    the threshold estimated from the non-members moves too; the binomial SE over the members alone understates it
    about twofold), within resampled `groups` (the target of each pooled prediction) when given; and log10 TPR
    (floored at half a member, 0.5/N⁺) with the bootstrap SE of the log. NaN scores are dropped."""
    row = evaluate(scores, truth, fprs)
    sc, y = np.asarray(scores, np.float64), np.asarray(truth).astype(np.int64)
    ok = np.isfinite(sc)
    g = None if groups is None else np.asarray(groups)[ok]
    draws = M.bootstrap_tpr(y[ok], sc[ok], list(fprs), n_boot=n_boot, seed=seed, groups=g)
    floor = 0.5 / max(row["n_members"], 1)
    for j, f in enumerate(fprs):
        col = f"tpr_at_{100 * f:g}pct".replace(".", "_")
        t = row[col]
        d = draws[:, j]
        row[f"{col}_se"] = float(np.nanstd(d, ddof=1)) if np.isfinite(t) else np.nan
        lt = max(t, floor) if np.isfinite(t) else np.nan
        row[f"log10_{col}"] = float(np.log10(lt)) if np.isfinite(lt) else np.nan
        row[f"log10_{col}_se"] = float(np.nanstd(np.log10(np.maximum(d, floor)), ddof=1)) if np.isfinite(t) else np.nan
    return row


__all__ = ["FPRS", "VARIANTS", "LiRA", "balanced_references", "evaluate", "keep_matrix", "leave_one_out", "rmia_member_scores",
           "roc_loglog", "scores_from_logits", "metrics_row", "rmia_signal"]
