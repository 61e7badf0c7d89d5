"""Attack metrics (ROC, AUC with uncertainty, TPR at low FPR) and seed-level summaries.

Conventions: `y_true` is 1 for members (IN) and 0 for non-members (OUT); a higher score means
"more likely a member". Every function takes numpy arrays (or anything `np.asarray` accepts).

    AUC          = P(s_IN > s_OUT) + ½ P(s_IN = s_OUT)                   (sklearn roc_auc_score)
    TPR @ FPR α  = the TPR of the randomised threshold with FPR exactly α: the ROC's points are the tie blocks
                   of the scores; inside the block whose FPR range holds α, TPR is interpolated linearly (a
                   threshold at the block's score, its examples called IN with the probability that gives FPR α).
                   With distinct scores this is the step value max{TPR_k : FPR_k ≤ α}. A block of tied
                   non-members that straddles α makes the number depend on how ties are broken: it is flagged.
    SE_Hanley    = sqrt( [A(1-A) + (n⁺-1)(Q1-A²) + (n⁻-1)(Q2-A²)] / (n⁺ n⁻) ),
                   Q1 = A/(2-A),  Q2 = 2A²/(1+A)                            (Hanley & McNeil 1982)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve


def _check_binary(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate (y_true, scores): 1-D, same length, finite scores, labels in {0, 1}, both present."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"y_true ({len(y)}) and scores ({len(s)}) must have the same length")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must contain only 0 (OUT) and 1 (IN)")
    if not (np.any(y == 1) and np.any(y == 0)):
        raise ValueError("y_true must contain both members (1) and non-members (0)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or inf)")
    return y.astype(np.int64), s


def roc_curve_table(y_true, scores) -> pd.DataFrame:
    """The ROC curve as a tidy table with columns fpr, tpr, threshold (sklearn `roc_curve`,
    drop_intermediate=True: collinear points are dropped, the curve is unchanged). The first row
    has threshold = inf (nothing predicted IN)."""
    y, s = _check_binary(y_true, scores)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})


def roc_blocks(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ROC with one point per tie block of the scores, top score first: (fpr, tpr, fp, tp), each of length
    blocks + 1 and starting at (0, 0); fp / tp are the cumulative counts of non-members / members scored at or above
    each block. Consecutive points bound one block."""
    y, s = _check_binary(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last = np.r_[ss[1:] != ss[:-1], True]                 # the last example of each tie block
    tp = np.r_[0, np.cumsum(ys)[last]]
    fp = np.r_[0, np.cumsum(1 - ys)[last]]
    return fp / fp[-1], tp / tp[-1], fp, tp


def tpr_at_fpr_detail(y_true, scores, fpr_target: float) -> dict:
    """TPR at FPR `fpr_target` with ties resolved as a randomised threshold (see the module docstring), and where it
    came from: {"tpr", "tie_fpr_low", "tie_fpr_high", "tied_nonmembers", "tie_covers"}. `tie_covers` is True when a
    block of ≥ 2 tied non-members spans the target strictly inside its FPR range [tie_fpr_low, tie_fpr_high]: no
    deterministic threshold has FPR near the target, and the value is an interpolation across that tie."""
    if not 0.0 <= float(fpr_target) <= 1.0:
        raise ValueError(f"fpr_target must be in [0, 1], got {fpr_target}")
    return _detail(roc_blocks(y_true, scores), float(fpr_target))


def _detail(blocks, a: float) -> dict:
    fpr, tpr, fp, _ = blocks
    j = int(np.searchsorted(fpr, a, side="right") - 1)    # last point with FPR ≤ α (tpr is non-decreasing)
    out = {"tpr": float(tpr[j]), "tie_fpr_low": float(fpr[j]), "tie_fpr_high": float(fpr[j]), "tied_nonmembers": 0,
           "tie_covers": False}
    if j + 1 < len(fpr) and fpr[j] < a < fpr[j + 1]:
        w = (a - fpr[j]) / (fpr[j + 1] - fpr[j])
        tied = int(fp[j + 1] - fp[j])
        out.update(tpr=float(tpr[j] + w * (tpr[j + 1] - tpr[j])), tie_fpr_high=float(fpr[j + 1]),
                   tied_nonmembers=tied, tie_covers=tied >= 2)
    return out


def tpr_at_fpr(y_true, scores, fpr_target: float) -> float:
    """TPR at FPR `fpr_target`, ties resolved as a randomised threshold (linear interpolation inside the tie block
    that holds the target; `tpr_at_fpr_detail` says whether such a block of tied non-members covers it). With
    distinct scores this is the step value: the TPR of the lowest threshold whose FPR ≤ fpr_target (LiRA's
    `tpr[np.where(fpr < α)[0][-1]]` with ≤), so it never overstates what an attacker can reach. With n⁻
    non-members the smallest non-zero FPR is 1/n⁻."""
    return tpr_at_fpr_detail(y_true, scores, fpr_target)["tpr"]


def bootstrap_aucs(y_true, scores, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """AUCs of `n_boot` stratified bootstrap resamples (IN and OUT resampled separately, each to its
    own size, so every resample has both classes).

    A resample is a vector of multiplicities w (IN) and v (OUT), multinomial(n, 1/n). Then exactly

        AUC_b = Σ_i w_i · ( #{j: OUT_j < IN_i}_v + ½ #{j: OUT_j = IN_i}_v ) / (n⁺ n⁻),

    where #{…}_v counts OUT examples with multiplicity v. Sorting OUT once and taking cumulative
    sums of v makes each resample O(n) instead of a fresh sort.
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    y, s = _check_binary(y_true, scores)
    pos, neg = s[y == 1], np.sort(s[y == 0])
    n_pos, n_neg = len(pos), len(neg)
    n_less = np.searchsorted(neg, pos, side="left")    # OUT strictly below each IN score
    n_leq = np.searchsorted(neg, pos, side="right")    # OUT at or below each IN score
    rng = np.random.default_rng(seed)
    out = np.empty(int(n_boot))
    chunk = max(1, 2_000_000 // max(n_pos, n_neg))     # bound memory at a few tens of MB
    for start in range(0, int(n_boot), chunk):
        b = min(chunk, int(n_boot) - start)
        w = rng.multinomial(n_pos, np.full(n_pos, 1.0 / n_pos), size=b)
        v = rng.multinomial(n_neg, np.full(n_neg, 1.0 / n_neg), size=b)
        cv = np.concatenate([np.zeros((b, 1)), np.cumsum(v, axis=1)], axis=1)
        h = 0.5 * (cv[:, n_less] + cv[:, n_leq])
        out[start:start + b] = (w * h).sum(axis=1) / (n_pos * n_neg)
    return out


def auc_ci(y_true, scores, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the AUC over the attack test set (stratified resampling,
    see `bootstrap_aucs`): the (1-level)/2 and (1+level)/2 quantiles of the bootstrap AUCs."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    aucs = bootstrap_aucs(y_true, scores, n_boot=n_boot, seed=seed)
    low, high = np.quantile(aucs, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def auc_se_hanley(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from n_pos members and n_neg non-members:
    SE² = [A(1-A) + (n⁺-1)(Q1-A²) + (n⁻-1)(Q2-A²)] / (n⁺ n⁻), Q1 = A/(2-A), Q2 = 2A²/(1+A)."""
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"auc must be in [0, 1], got {auc}")
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"n_pos and n_neg must be >= 1, got {n_pos} and {n_neg}")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def _check_values(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per seed), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return v


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1, the usual 'mean ± std over seeds').
    With a single value the std is undefined and returned as nan."""
    v = _check_values(values, "values")
    if len(v) == 0:
        raise ValueError("values must not be empty")
    std = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    return float(v.mean()), std


def paired_comparison(a, b, *, level: float = 0.95) -> dict:
    """Compare two configurations evaluated on the same seeds: d_i = a_i - b_i.

    mean_diff = mean(d); CI = mean(d) ± t_{(1+level)/2, n-1} · sd(d)/√n; p_value from the paired
    t-test (scipy.stats.ttest_rel, two-sided); exceeds_noise = the CI excludes 0.
    n < 2 gives a nan interval and p-value (no spread to compare against) and exceeds_noise=False.
    If all differences are equal (sd ≈ 0) the seeds carry no spread to test against: the interval collapses to
    mean_diff, p is NaN and exceeds_noise False (no shortcut to p = 0; lib.claims.verdicts adds the test
    set's own noise floor, which is what can decide such a case).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a, b = _check_values(a, "a"), _check_values(b, "b")
    if len(a) != len(b):
        raise ValueError(f"a ({len(a)}) and b ({len(b)}) must be paired: same length, same seed order")
    n = len(a)
    if n == 0:
        raise ValueError("a and b must not be empty")
    d = a - b
    mean = float(d.mean())
    nan = float("nan")
    if n < 2:
        return {"mean_diff": mean, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": n, "exceeds_noise": False}
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        # Constant differences (up to float rounding): ttest_rel is 0/0 or x/0 here, and three seeds that each
        # differ by one test example are not proof of anything.
        return {"mean_diff": mean, "ci_low": mean, "ci_high": mean, "p_value": nan, "n": n, "exceeds_noise": False}
    else:
        half = stats.t.ppf((1 + level) / 2, n - 1) * sd / np.sqrt(n)
        low, high = mean - half, mean + half
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"mean_diff": mean, "ci_low": float(low), "ci_high": float(high), "p_value": p, "n": n,
            "exceeds_noise": bool(low > 0 or high < 0)}


# ----------------------------------------------------------------------------- what a non-member count can resolve

# A TPR at FPR α is read off the operating point with at most α·N⁻ false positives. With fewer than this many
# allowed false positives the number is decided by one or two non-members and is reported as not resolvable.
MIN_FALSE_POSITIVES = 10


def tpr_resolvable(fpr: float, n_neg: int) -> bool:
    """True when N⁻ non-members allow at least MIN_FALSE_POSITIVES false positives at FPR `fpr`."""
    return float(fpr) * int(n_neg) >= MIN_FALSE_POSITIVES - 1e-9


def chance_tpr(fpr: float, n_neg: int) -> float:
    """Expected TPR of a random score at the operating point TPR@FPR≤`fpr` picks with N⁻ non-members: that point
    admits k = ⌊fpr·N⁻⌋ false positives, and a random member ranks above the (k+1)-th highest non-member with
    probability (k + 1)/(N⁻ + 1). (Iris, N⁻ = 15, FPR 1%: k = 0, chance 1/16 = 0.0625, not 0.01.)"""
    k = int(np.floor(float(fpr) * int(n_neg) + 1e-9))
    return (k + 1) / (int(n_neg) + 1)


def low_fpr_row(tprs: dict, n_neg: int) -> dict:
    """Result columns of TPRs at low FPR {α: TPR or tpr_at_fpr_detail(...)}: tpr_at_<α in %>pct (NaN where N⁻
    cannot resolve α, or where a block of tied non-members covers α), then each one's _status, _chance,
    _below_chance (a resolvable TPR below the chance TPR of its operating point: the attack ranks members *below*
    non-members there) and, for a tie, _interp (the interpolated value, shown but not judged); then min_fpr = 1/N⁻
    (α = 0.01 → tpr_at_1pct, 0.001 → tpr_at_0_1pct)."""
    tags = {f: f"tpr_at_{100 * f:g}pct".replace(".", "_") for f in tprs}
    row = {}
    for f, t in tprs.items():
        det = t if isinstance(t, dict) else {"tpr": float(t), "tie_covers": False}
        status = tpr_status(f, n_neg) or (tie_status(det) if det["tie_covers"] else "")
        tag = tags[f]
        row[tag] = float("nan") if status else float(det["tpr"])
        row[f"{tag}_status"] = status
        row[f"{tag}_chance"] = chance_tpr(f, n_neg)
        row[f"{tag}_below_chance"] = bool(not status and det["tpr"] < chance_tpr(f, n_neg))
        row[f"{tag}_interp"] = float(det["tpr"])
    row["min_fpr"] = 1.0 / int(n_neg)
    return row


def tie_status(detail: dict) -> str:
    """The status text of a TPR whose target FPR lies inside a block of tied non-members (tpr_at_fpr_detail)."""
    return (f"not resolvable: {detail['tied_nonmembers']} tied non-members span FPR "
            f"{detail['tie_fpr_low']:.3g}–{detail['tie_fpr_high']:.3g}")


def tpr_status(fpr: float, n_neg: int) -> str:
    """'' when resolvable, else 'not resolvable (N⁻ = n; needs ≥ m)'."""
    if tpr_resolvable(fpr, n_neg):
        return ""
    need = int(np.ceil(MIN_FALSE_POSITIVES / float(fpr)))
    return f"not resolvable (N⁻ = {int(n_neg)}; needs ≥ {need})"


# ----------------------------------------------------------------------------- the same examples, two scorers

def _midranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong_components(y_true, scores) -> tuple[float, np.ndarray, np.ndarray]:
    """DeLong et al. (1988) structural components of the AUC: (AUC, V10 per member, V01 per non-member), with
    V10_i = P(s_OUT < s_i) + ½ P(=) over the non-members and V01_j = P(s_IN > s_j) + ½ P(=) over the members
    (midranks, Sun & Xu 2014). AUC = mean V10 = mean V01."""
    y, s = _check_binary(y_true, scores)
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    r_all = _midranks(np.r_[pos, neg])
    v10 = (r_all[:m] - _midranks(pos)) / n
    v01 = 1.0 - (r_all[m:] - _midranks(neg)) / m
    return float(v10.mean()), v10, v01


def delong_var(y_true, scores) -> float:
    """DeLong variance of one AUC: var(V10)/m + var(V01)/n (ddof = 1)."""
    _, v10, v01 = delong_components(y_true, scores)
    return float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01)) if min(len(v10), len(v01)) > 1 \
        else float("nan")


def delong_paired_var(y_true, scores_a, scores_b) -> float:
    """DeLong's variance of AUC_a − AUC_b for two scorers of the SAME members and non-members (paired):
    var(V10_a − V10_b)/m + var(V01_a − V01_b)/n. Correlated scorers (the same examples are easy for both) give a
    much smaller variance than the sum of the two AUCs' variances."""
    _, a10, a01 = delong_components(y_true, scores_a)
    _, b10, b01 = delong_components(y_true, scores_b)
    if min(len(a10), len(a01)) < 2:
        return float("nan")
    return float(np.var(a10 - b10, ddof=1) / len(a10) + np.var(a01 - b01, ddof=1) / len(a01))


def paired_accuracy_var(correct_a, correct_b=None) -> float:
    """Variance of the accuracy difference p_a − p_b (as fractions) on the SAME N examples, McNemar's Wald variance
    [(n10 + n01)/N − ((n10 − n01)/N)²]/N with ½ added to each discordant count (Agresti & Min 2005), so that zero
    or few discordant examples do not read as zero noise. Without b: p̃(1 − p̃)/N, p̃ = (k + 1)/(N + 2)."""
    a = np.asarray(correct_a, bool)
    n = len(a)
    if not n:
        return float("nan")
    if correct_b is None:
        p = (a.sum() + 1) / (n + 2)
        return float(p * (1 - p) / n)
    b = np.asarray(correct_b, bool)
    n10, n01 = (a & ~b).sum() + 0.5, (~a & b).sum() + 0.5
    return float(((n10 + n01) / n - ((n10 - n01) / n) ** 2) / n)


def mcnemar_p(correct_a, correct_b) -> float:
    """Exact two-sided McNemar p-value (binomial on the discordant pairs) of two scorers on the same examples."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    if n10 + n01 == 0:
        return 1.0
    return float(stats.binomtest(n10, n10 + n01, 0.5).pvalue)


def _stratified(rng: np.random.Generator, idx_pos: np.ndarray, idx_neg: np.ndarray) -> np.ndarray:
    return np.r_[rng.choice(idx_pos, len(idx_pos)), rng.choice(idx_neg, len(idx_neg))]


def _sorted_blocks(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, labels in that order, last-of-tie-block mask) of `roc_blocks`' sort, for resampling with counts."""
    order = np.argsort(-s, kind="mergesort")
    ss = s[order]
    return order, y[order], np.r_[ss[1:] != ss[:-1], True]


def bootstrap_tpr(y_true, scores, fprs, *, n_boot: int = 200, seed: int = 0, groups=None, log10: bool = False,
                  scores_b=None) -> np.ndarray:
    """Bootstrap draws [n_boot, len(fprs)] of TPR at each FPR (tie-aware, `tpr_at_fpr`): members and non-members
    are resampled separately (so the threshold, estimated from the non-members, moves too), within each group
    after resampling the groups themselves (`groups`: e.g. the target of each pooled prediction). With `scores_b`
    (a second scorer of the same examples) the draws are of TPR_a − TPR_b on the same resampled examples (paired).
    `log10`: of log10 TPR, floored at half a member (0.5/N⁺)."""
    y, s = _check_binary(y_true, scores)
    sb = None if scores_b is None else _check_binary(y_true, scores_b)[1]
    fprs = [float(f) for f in np.atleast_1d(fprs)]
    rng = np.random.default_rng(seed)
    g = np.zeros(len(y), int) if groups is None else pd.factorize(np.asarray(groups))[0]
    by = [(np.where((g == k) & (y == 1))[0], np.where((g == k) & (y == 0))[0]) for k in range(g.max() + 1)]
    floor = 0.5 / max(int(y.sum()), 1)
    # Each scorer sorted once: a resample is a vector of multiplicities over the examples, and its ROC the cumulative
    # counts at the ends of the tie blocks (a block the resample does not hold repeats the point before it, which
    # moves no `_detail` value); the same numbers as `roc_blocks` of the resampled arrays, without a sort each time.
    sorted_by = {id(sc): _sorted_blocks(y, sc) for sc in (s, sb) if sc is not None}

    def val(sc, idx):
        order, ys, last = sorted_by[id(sc)]
        c = np.bincount(idx, minlength=len(y))[order]
        tp = np.r_[0, np.cumsum(c * ys)[last]]
        fp = np.r_[0, np.cumsum(c * (1 - ys))[last]]
        blocks = (fp / fp[-1], tp / tp[-1], fp, tp)
        t = np.array([_detail(blocks, f)["tpr"] for f in fprs])
        return np.log10(np.maximum(t, floor)) if log10 else t

    out = np.full((int(n_boot), len(fprs)), np.nan)
    for b in range(int(n_boot)):
        picks = rng.integers(0, len(by), len(by)) if groups is not None else np.arange(len(by))
        parts = [_stratified(rng, *by[k]) for k in picks if len(by[k][0]) and len(by[k][1])]
        idx = np.concatenate(parts)
        if y[idx].min() == y[idx].max():
            continue
        out[b] = val(s, idx) - (val(sb, idx) if sb is not None else 0.0)
    return out


def bootstrap_tpr_se(y_true, scores, fprs, **kw) -> np.ndarray:
    """Bootstrap standard error of TPR at each FPR (see `bootstrap_tpr`; members, non-members, and groups)."""
    return np.nanstd(bootstrap_tpr(y_true, scores, fprs, **kw), axis=0, ddof=1)
