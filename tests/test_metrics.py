"""lib.claims.metrics: TPR at low FPR, ROC table, AUC uncertainty, and seed-paired comparisons."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from lib.claims import metrics as M

from lib.claims.metrics import (auc_ci, auc_se_hanley, bootstrap_aucs, mean_std, paired_comparison, roc_curve_table,
                         tpr_at_fpr)

# Hand-built ranking (scores descending): IN IN OUT IN OUT OUT IN OUT, 4 IN and 4 OUT.
# Thresholds walk the list top-down: (FPR, TPR) = (0,.25) (0,.5) (.25,.5) (.25,.75) (.5,.75) (.75,.75) (.75,1) (1,1).
HAND_Y = np.array([1, 1, 0, 1, 0, 0, 1, 0])
HAND_S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])


def normal_scores(n, shift, seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    return y, rng.normal(size=2 * n) + shift * y


@pytest.mark.parametrize("fpr, tpr", [(0.0, 0.5), (0.2, 0.5), (0.25, 0.75), (0.5, 0.75), (0.74, 0.75),
                                      (0.75, 1.0), (1.0, 1.0)])
def test_tpr_at_fpr_hand_example(fpr, tpr):
    assert tpr_at_fpr(HAND_Y, HAND_S, fpr) == tpr


def test_tpr_at_fpr_perfect_separation():
    y = np.r_[np.ones(500, int), np.zeros(500, int)]
    s = np.r_[np.linspace(2, 3, 500), np.linspace(0, 1, 500)]
    assert tpr_at_fpr(y, s, 0.001) == 1.0
    assert tpr_at_fpr(y, -s, 0.001) == 0.0     # reversed orientation: nothing caught at low FPR


def test_tpr_at_fpr_ties_are_a_randomised_threshold_and_flagged():
    """Issue 21, item 5. All scores tied: the only deterministic operating points are (0,0) and (1,1). The old step
    read TPR 0 at FPR 0.5 (below chance); a randomised threshold inside the tie reaches (0.5, 0.5), and the tie of
    non-members that covers the target is flagged as not resolvable."""
    y = np.array([1, 0, 1, 0])
    assert tpr_at_fpr(y, np.zeros(4), 0.5) == 0.5
    assert tpr_at_fpr(y, np.zeros(4), 1.0) == 1.0
    det = M.tpr_at_fpr_detail(y, np.zeros(4), 0.5)
    assert det["tie_covers"] and det["tied_nonmembers"] == 2 and (det["tie_fpr_low"], det["tie_fpr_high"]) == (0, 1)


def test_tied_top_block_is_not_resolvable_and_not_a_zero():
    """The Breast Cancer SNN loss attack of the committed run: members and non-members tied at the top score (loss
    0) up to FPR 0.34, continuous below. The old step gave TPR@10% = 0.000 (below chance) for an attack with AUC
    0.52; now TPR@10% is an interpolation inside the tie, marked not resolvable, never a number to judge."""
    rng = np.random.default_rng(0)
    n = 120                                                     # N⁻ = 120 resolves 10% (12 false positives)
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    s = rng.normal(size=2 * n)
    s[np.r_[np.arange(42), n + np.arange(40)]] = 10.0           # 42 members and 40 non-members tied at the top
    old_step = float(np.max(roc_curve(y, s, drop_intermediate=False)[1][roc_curve(y, s, drop_intermediate=False)[0]
                                                                          <= 0.1]))
    assert old_step == 0.0                                      # the artefact
    det = M.tpr_at_fpr_detail(y, s, 0.1)
    assert det["tie_covers"] and det["tie_fpr_high"] == pytest.approx(40 / n)
    assert det["tpr"] == pytest.approx(0.1 / (40 / n) * 42 / n)   # linear inside the block
    row = M.low_fpr_row({0.1: det}, n)
    assert np.isnan(row["tpr_at_10pct"]) and row["tpr_at_10pct_status"].startswith("not resolvable: 40 tied")
    assert row["tpr_at_10pct_interp"] == pytest.approx(det["tpr"])


def test_distinct_scores_interpolation_equals_the_step():
    """Without ties the randomised threshold is the step value at every FPR (only members can share a block)."""
    y, s = normal_scores(200, 0.7, seed=5)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    for a in (0.001, 0.01, 0.05, 0.1, 0.33):
        assert tpr_at_fpr(y, s, a) == float(tpr[fpr <= a].max())


def test_below_chance_is_flagged():
    y = np.r_[np.ones(100, int), np.zeros(100, int)]
    s = np.r_[np.zeros(100), np.linspace(1, 2, 100)]            # every non-member above every member
    row = M.low_fpr_row({0.1: M.tpr_at_fpr_detail(y, s, 0.1)}, 100)
    assert row["tpr_at_10pct"] == 0.0 and row["tpr_at_10pct_below_chance"]


def test_tpr_at_fpr_rejects_bad_input():
    with pytest.raises(ValueError, match="fpr_target"):
        tpr_at_fpr(HAND_Y, HAND_S, 1.5)
    with pytest.raises(ValueError, match="both"):
        tpr_at_fpr(np.ones(4, int), np.arange(4.0), 0.1)
    with pytest.raises(ValueError, match="same length"):
        tpr_at_fpr(HAND_Y, HAND_S[:-1], 0.1)
    with pytest.raises(ValueError, match="finite"):
        tpr_at_fpr(HAND_Y, np.r_[HAND_S[:-1], np.nan], 0.1)


def test_roc_curve_table():
    table = roc_curve_table(HAND_Y, HAND_S)
    assert list(table.columns) == ["fpr", "tpr", "threshold"]
    assert (table.fpr.iloc[0], table.tpr.iloc[0]) == (0.0, 0.0)
    assert (table.fpr.iloc[-1], table.tpr.iloc[-1]) == (1.0, 1.0)
    assert np.all(np.diff(table.fpr) >= 0) and np.all(np.diff(table.tpr) >= 0)
    assert np.trapezoid(table.tpr, table.fpr) == pytest.approx(roc_auc_score(HAND_Y, HAND_S))


def test_bootstrap_aucs_are_exact_aucs_of_resamples():
    # Redraw the same multinomial multiplicities and score each resample with sklearn's weighted AUC.
    y, s = normal_scores(40, 1.0, seed=3)
    s = np.round(s, 1)                                  # force ties
    got = bootstrap_aucs(y, s, n_boot=20, seed=7)
    rng = np.random.default_rng(7)
    w = rng.multinomial(40, np.full(40, 1 / 40), size=20)
    v = rng.multinomial(40, np.full(40, 1 / 40), size=20)
    pos, neg = s[y == 1], np.sort(s[y == 0])
    want = [roc_auc_score(np.r_[np.ones(40), np.zeros(40)], np.r_[pos, neg], sample_weight=np.r_[wi, vi])
            for wi, vi in zip(w, v)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_auc_ci_contains_auc_and_narrows_with_more_data():
    y, s = normal_scores(100, 1.0, seed=0)
    low, high = auc_ci(y, s, n_boot=1000)
    assert low < roc_auc_score(y, s) < high
    y_big, s_big = normal_scores(3000, 1.0, seed=1)
    low_big, high_big = auc_ci(y_big, s_big, n_boot=1000)
    assert low_big < roc_auc_score(y_big, s_big) < high_big
    assert (high_big - low_big) < 0.5 * (high - low)    # width ∝ 1/√n: 30× the data, ~5.5× narrower
    # The bootstrap spread agrees with Hanley-McNeil at this size.
    se_boot = bootstrap_aucs(y_big, s_big, n_boot=1000).std()
    assert se_boot == pytest.approx(auc_se_hanley(roc_auc_score(y_big, s_big), 3000, 3000), rel=0.2)


def test_auc_ci_is_seeded_and_checks_level():
    y, s = normal_scores(50, 0.5, seed=0)
    assert auc_ci(y, s, n_boot=200, seed=4) == auc_ci(y, s, n_boot=200, seed=4)
    assert auc_ci(y, s, n_boot=200, seed=4) != auc_ci(y, s, n_boot=200, seed=5)
    with pytest.raises(ValueError, match="level"):
        auc_ci(y, s, level=95)
    with pytest.raises(ValueError, match="n_boot"):
        auc_ci(y, s, n_boot=0)


def test_auc_se_hanley_known_values():
    # A = 0.5, n+ = n- = 10: Q1 = Q2 = 1/3, SE² = (0.25 + 9/12 + 9/12) / 100.
    assert auc_se_hanley(0.5, 10, 10) == pytest.approx(np.sqrt(0.0175))
    # Hanley & McNeil (1982) worked example: A = 0.893, 58 abnormal, 51 normal -> SE ≈ 0.031.
    assert auc_se_hanley(0.893, 58, 51) == pytest.approx(0.0312, abs=5e-4)
    assert auc_se_hanley(1.0, 10, 10) == 0.0
    with pytest.raises(ValueError, match="auc"):
        auc_se_hanley(1.2, 10, 10)
    with pytest.raises(ValueError, match="n_pos"):
        auc_se_hanley(0.7, 0, 10)


def test_paired_comparison_detects_a_consistent_difference():
    rng = np.random.default_rng(0)
    b = 0.70 + 0.02 * rng.normal(size=5)
    a = b + 0.05 + 0.005 * rng.normal(size=5)          # same seeds, consistently 0.05 higher
    out = paired_comparison(a, b)
    d = a - b
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert out["n"] == 5
    assert out["mean_diff"] == pytest.approx(d.mean())
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert out["exceeds_noise"] is True and out["p_value"] < 0.001


def test_paired_comparison_ignores_zero_mean_noise():
    rng = np.random.default_rng(1)
    a, b = 0.7 + 0.02 * rng.normal(size=8), 0.7 + 0.02 * rng.normal(size=8)
    out = paired_comparison(a, b)
    assert out["ci_low"] < 0 < out["ci_high"]
    assert out["exceeds_noise"] is False and out["p_value"] > 0.05


def test_paired_comparison_edge_cases():
    one = paired_comparison([0.8], [0.7])
    assert one["mean_diff"] == pytest.approx(0.1) and one["n"] == 1
    assert np.isnan(one["ci_low"]) and np.isnan(one["ci_high"]) and np.isnan(one["p_value"])
    assert one["exceeds_noise"] is False
    const = paired_comparison([0.8, 0.9, 0.7], [0.7, 0.8, 0.6])   # identical differences
    # no shortcut to p = 0: three seeds one example apart carry no spread to test against
    assert const["exceeds_noise"] is False and np.isnan(const["p_value"])
    assert const["ci_low"] == pytest.approx(0.1) == const["ci_high"]
    with pytest.raises(ValueError, match="paired"):
        paired_comparison([0.1, 0.2], [0.1])


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)       # ddof=1
    mean, std = mean_std([5.0])
    assert mean == 5.0 and np.isnan(std)
    with pytest.raises(ValueError, match="values"):
        mean_std([])


@pytest.mark.parametrize("groups,paired,log10", [(False, False, False), (True, False, True), (True, True, False)])
def test_bootstrap_tpr_equals_the_roc_of_each_resample(groups, paired, log10):
    """bootstrap_tpr sorts each scorer once and reads a resample's ROC off its multiplicities: exactly the values
    of `roc_blocks` on the resampled arrays (the same rng draws, ties included), resample by resample."""
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + 0.7 * y, 1)          # many ties
    sb = np.round(rng.normal(size=n) + 0.3 * y, 2)
    g = rng.integers(0, 6, n) if groups else None
    fprs = [0.01, 0.05, 0.2]
    got = M.bootstrap_tpr(y, s, fprs, n_boot=40, seed=7, groups=g, log10=log10, scores_b=sb if paired else None)
    # the reference: the same draws, a fresh tie-aware ROC of every resample
    r = np.random.default_rng(7)
    gg = np.zeros(n, int) if g is None else pd.factorize(g)[0]
    by = [(np.where((gg == k) & (y == 1))[0], np.where((gg == k) & (y == 0))[0]) for k in range(gg.max() + 1)]
    floor = 0.5 / y.sum()

    def tprs(sc, idx):
        t = np.array([M.tpr_at_fpr(y[idx], sc[idx], f) for f in fprs])
        return np.log10(np.maximum(t, floor)) if log10 else t

    for b in range(40):
        picks = r.integers(0, len(by), len(by)) if g is not None else np.arange(len(by))
        idx = np.concatenate([np.r_[r.choice(by[k][0], len(by[k][0])), r.choice(by[k][1], len(by[k][1]))]
                              for k in picks if len(by[k][0]) and len(by[k][1])])
        want = tprs(s, idx) - (tprs(sb, idx) if paired else 0.0)
        np.testing.assert_array_equal(got[b], want)
