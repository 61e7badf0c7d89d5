"""lib.attacks.canaries: planted canaries with a strong signal found at TPR@0.1% while the population is near chance,
pure noise at chance (binomial interval), the leave-one-out chain end to end, what the pooled non-member count
resolves, plant()'s seeding, relabelling and errors, and the most vulnerable examples with and without holdout."""
import numpy as np
import pytest

from lib.attacks import canaries as K
from lib.attacks import lira as L
from lib.claims import metrics as M


def _population(n, m, seed, shift=0.0, n_classes=10, fraction=0.01):
    """Labels, keep [m, n], canaries, and member scores [m, n]: N(0, 1), plus `shift` sd for a canary when IN."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    can = K.plant(y, n_classes, fraction, seed=seed)
    keep = L.keep_matrix(m, n, seed)
    scores = rng.normal(size=(m, n)) + shift * (keep & can.mask(n))
    return y, keep, can, scores


def _within_chance(row, tag, n_sd=4.0):
    """|TPR − chance| within n_sd sd: binomial over the members plus the spread of the threshold's own FPR
    (the (k+1)-th highest of N⁻ non-members, variance ≈ p(1 − p)/N⁻)."""
    p = row[f"{tag}_chance"]
    sd = np.sqrt(p * (1 - p) / row["n_members"] + p * (1 - p) / row["n_nonmembers"])
    return abs(row[tag] - p) <= n_sd * sd, (row[tag], p, sd)


def test_strong_canaries_are_found_at_0_1pct_fpr_while_the_population_is_near_chance():
    _, keep, can, s = _population(32000, 64, seed=0, shift=5.0)      # 320 canaries × 32 OUT targets = 10 240 N⁻
    t = K.canary_metrics(s, keep, can, (0.001, 0.01))
    c, p = t.loc["canaries"], t.loc["population"]
    assert c.n_examples == 320 and c.n_targets == 64 and c.n_members + c.n_nonmembers == 320 * 64
    assert c.low_fpr == 0.001 and c.tpr_at_0_1pct_status == ""
    assert c.tpr_at_0_1pct > 0.9                                   # analytic Φ(5 − Φ⁻¹(0.999)) = 0.97
    assert p.tpr_at_0_1pct < 0.03 and p.auc < 0.52                 # 1% of examples: ≈ 0.01·0.97 + 0.001
    assert t.loc["others", "tpr_at_0_1pct"] < 0.003 and abs(t.loc["others", "auc"] - 0.5) < 0.005


def test_pure_noise_canaries_sit_at_chance_within_a_binomial_interval():
    _, keep, can, s = _population(32000, 64, seed=1, shift=0.0)
    t = K.canary_metrics(s, keep, can.positions, (0.001, 0.01))
    for subset in ("canaries", "population"):
        row = t.loc[subset]
        for tag in ("tpr_at_0_1pct", "tpr_at_1pct"):
            ok, why = _within_chance(row, tag)
            assert ok, (subset, tag, why)
        assert abs(row.auc - 0.5) < 4 * M.auc_se_hanley(0.5, int(row.n_members), int(row.n_nonmembers))


def test_leave_one_out_lira_finds_canaries_at_the_lowest_resolvable_fpr():
    """The whole chain: per-model scores with the canaries' shifted when IN → LiRA leave-one-out (flat layout) →
    canary_metrics; 40 canaries × 8 OUT targets = 320 N⁻ resolve 5% of the ladder's grid, not 1%."""
    grid = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    _, keep, can, s = _population(4000, 16, seed=2, shift=5.0)
    scores, truth, who = L.leave_one_out(s, keep, L.LiRA(online=True, fix_variance=True))
    assert np.array_equal(truth.reshape(16, -1), keep)
    t = K.canary_metrics(scores, keep, can.mask(4000), grid)
    c, p = t.loc["canaries"], t.loc["population"]
    assert c.n_nonmembers == 320 and c.low_fpr == 0.05 and c.min_resolvable_fpr == pytest.approx(10 / 320)
    assert np.isnan(c.tpr_at_1pct) and c.tpr_at_5pct > 0.9
    assert p.low_fpr == 0.001 and p.tpr_at_5pct < 0.08


def test_resolvable_fpr_reporting_drops_what_the_pooled_count_cannot_resolve():
    _, keep, can, s = _population(2000, 16, seed=3, shift=5.0)          # 20 canaries × 8 = 160 N⁻
    t = K.canary_metrics(s, keep, can, (0.001, 0.01, 0.05, 0.1))
    c = t.loc["canaries"]
    assert c.n_nonmembers == 160
    for tag in ("tpr_at_0_1pct", "tpr_at_1pct", "tpr_at_5pct"):        # 0.16, 1.6, 8 false positives allowed
        assert np.isnan(c[tag]) and c[f"{tag}_status"].startswith("not resolvable")
    assert c.tpr_at_10pct_status == "" and c.tpr_at_10pct > 0.9 and c.low_fpr == 0.1
    assert t.loc["population", "low_fpr"] == 0.001                       # 16 000 N⁻: all resolve
    none = K.canary_metrics(s, keep, can, (0.001, 0.01)).loc["canaries"]
    assert np.isnan(none.low_fpr) and none.min_resolvable_fpr == pytest.approx(10 / 160)
    assert K.low_fpr((0.01, 0.001), 10_000) == 0.001 and K.low_fpr((0.01, 0.001), 9_999) == 0.01


def test_scores_in_leave_one_out_layout_and_shape_errors():
    _, keep, can, s = _population(500, 8, seed=4, shift=5.0, fraction=0.1)
    a = K.canary_metrics(s, keep, can, (0.1,))
    b = K.canary_metrics(s.ravel(), keep, can, (0.1,))
    sub = K.canary_metrics(s[[1, 3]], keep, can, (0.1,), targets=[1, 3])
    assert a.equals(b) and sub.loc["canaries", "n_targets"] == 2
    assert sub.loc["canaries", "n_members"] == int((keep[[1, 3]] & can.mask(500)).sum())
    with pytest.raises(ValueError, match="member_scores"):
        K.canary_metrics(s[:, :-1], keep, can)
    with pytest.raises(ValueError, match="targets"):
        K.canary_metrics(s[:2], keep, can, targets=[0, 8])
    with pytest.raises(ValueError, match="canary_pos"):
        K.canary_metrics(s, keep, [500])


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_plant_relabels_every_canary_to_another_class_uniformly(n_classes):
    y = np.random.default_rng(5).integers(0, n_classes, 6000)
    can = K.plant(y, n_classes, fraction=0.5, seed=7)
    assert len(can) == 3000 and (np.diff(can.positions) > 0).all()
    assert (can.labels != can.original).all() and (can.original == y[can.positions]).all()
    assert can.labels.min() >= 0 and can.labels.max() < n_classes
    offsets = np.bincount((can.labels - can.original) % n_classes, minlength=n_classes)
    assert offsets[0] == 0
    expected = 3000 / (n_classes - 1)                                   # uniform over the other classes
    assert np.all(np.abs(offsets[1:] - expected) < 5 * np.sqrt(expected)), offsets
    y2 = can.apply(y)
    assert y2 is not y and np.array_equal(y, np.random.default_rng(5).integers(0, n_classes, 6000))
    changed = np.flatnonzero(y2 != y)
    assert np.array_equal(changed, can.positions) and np.array_equal(y2[changed], can.labels)


def test_plant_is_seeded_nested_in_n_and_about_one_percent():
    y = np.random.default_rng(6).integers(0, 10, 5000)
    a, b, c = K.plant(y, 10, seed=1), K.plant(y, 10, seed=1), K.plant(y, 10, seed=2)
    assert len(a) == 50 and np.array_equal(a.positions, b.positions) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.positions, c.positions)
    small, big = K.plant(y, 10, seed=1, n=20), K.plant(y, 10, seed=1, n=200)
    assert np.isin(small.positions, big.positions).all()
    assert np.array_equal(small.labels, big.labels[np.isin(big.positions, small.positions)])
    with pytest.raises(ValueError):
        a.positions[0] = 1                                              # read-only


def test_plant_errors_name_the_argument():
    y = np.arange(100) % 10
    for bad in (0.0, -0.1, 0.51, 1.0):
        with pytest.raises(ValueError, match="fraction"):
            K.plant(y, 10, fraction=bad)
    for bad in (0, 51, 1000):
        with pytest.raises(ValueError, match="^n must"):
            K.plant(y, 10, n=bad)
    with pytest.raises(ValueError, match="n_classes"):
        K.plant(np.zeros(100, int), 1)
    with pytest.raises(ValueError, match="^y must"):
        K.plant(y, 5)                                                   # labels ≥ n_classes
    can = K.plant(y, 10, seed=0)
    with pytest.raises(ValueError, match="^y is not the population"):
        can.apply((y + 1) % 10)


def test_most_vulnerable_finds_the_planted_examples_and_their_leakage():
    _, keep, can, s = _population(5000, 32, seed=8, shift=3.0)
    r = K.most_vulnerable(s, keep, 0.01, fprs=(0.01, 0.05, 0.1))
    assert len(r["positions"]) == 50 and np.isin(r["positions"], can.positions).mean() >= 0.9
    assert np.array_equal(r["rank_targets"], np.arange(0, 32, 2)) and np.array_equal(r["eval_targets"],
                                                                                     np.arange(1, 32, 2))
    top, pop = r["metrics"].loc["most_vulnerable"], r["metrics"].loc["population"]
    assert top.low_fpr == 0.05 and top.tpr_at_5pct > 0.8 and pop.tpr_at_5pct < 0.08
    v = r["vulnerability"]
    assert v.shape == (5000,) and np.nanmean(v[can.positions]) > 2 and abs(np.nanmean(np.delete(v, can.positions))) < 0.1


def test_most_vulnerable_holdout_removes_the_selection_bias_of_pure_noise():
    _, keep, _, s = _population(5000, 32, seed=9, shift=0.0)
    honest = K.most_vulnerable(s, keep, 0.01, fprs=(0.05,))["metrics"].loc["most_vulnerable"]
    ok, why = _within_chance(honest, "tpr_at_5pct")
    assert ok, why
    biased = K.most_vulnerable(s, keep, 0.01, fprs=(0.05,), holdout=False)["metrics"].loc["most_vulnerable"]
    assert biased.tpr_at_5pct > 0.2                                     # winner's curse: ≈ 0.36 at d' ≈ 1.3
    with pytest.raises(ValueError, match="top_fraction"):
        K.most_vulnerable(s, keep, 0.0)
    with pytest.raises(ValueError, match="holdout"):
        K.most_vulnerable(s[:1], keep, 0.01, targets=[0])
