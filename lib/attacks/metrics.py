"""Attack metrics (ROC, AUC with uncertainty, TPR at low FPR) and seed-level summaries.

Conventions: `y_true` is 1 for members (IN) and 0 for non-members (OUT); a higher score means
"more likely a member". Every function takes numpy arrays (or anything `np.asarray` accepts).

    AUC          = P(s_IN > s_OUT) + ½ P(s_IN = s_OUT)                   (sklearn roc_auc_score)
    TPR @ FPR α  = max { TPR_k : FPR_k ≤ α }  over the ROC operating points (step, no interpolation)
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


def tpr_at_fpr(y_true, scores, fpr_target: float) -> float:
    """TPR at the lowest threshold (largest TPR) whose FPR ≤ fpr_target.

    Step, not interpolation: the value is the TPR of an operating point an attacker can actually
    use, so it never overstates the attack (this is LiRA's `tpr[np.where(fpr < α)[0][-1]]` with ≤).
    All operating points are used (drop_intermediate=False). With n⁻ non-members the smallest
    non-zero FPR is 1/n⁻, so for α < 1/n⁻ this is the TPR at FPR = 0.
    """
    if not 0.0 <= float(fpr_target) <= 1.0:
        raise ValueError(f"fpr_target must be in [0, 1], got {fpr_target}")
    y, s = _check_binary(y_true, scores)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    # fpr is non-decreasing and starts at 0, so the selection is never empty.
    return float(tpr[fpr <= fpr_target].max())


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
    mean_diff, p is NaN and exceeds_noise False (no shortcut to p = 0; lib.attacks.verdicts adds the test
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
    """Result columns of TPRs at low FPR {α: TPR}: tpr_at_<α in %>pct (NaN where N⁻ cannot resolve α), then each
    one's _status and _chance, then min_fpr = 1/N⁻ (α = 0.01 → tpr_at_1pct, 0.001 → tpr_at_0_1pct)."""
    tags = {f: f"tpr_at_{100 * f:g}pct".replace(".", "_") for f in tprs}
    row = {tags[f]: float(t) if tpr_resolvable(f, n_neg) else float("nan") for f, t in tprs.items()}
    row.update({f"{tags[f]}_status": tpr_status(f, n_neg) for f in tprs})
    row.update({f"{tags[f]}_chance": chance_tpr(f, n_neg) for f in tprs})
    row["min_fpr"] = 1.0 / int(n_neg)
    return row


def tpr_status(fpr: float, n_neg: int) -> str:
    """'' when resolvable, else 'not resolvable (N⁻ = n; needs ≥ m)'."""
    if tpr_resolvable(fpr, n_neg):
        return ""
    need = int(np.ceil(MIN_FALSE_POSITIVES / float(fpr)))
    return f"not resolvable (N⁻ = {int(n_neg)}; needs ≥ {need})"
