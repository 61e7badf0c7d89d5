"""lib.attacks.mia: the shadow-model SVM attack (single and per-class), the loss threshold, the loss helper."""
import numpy as np
import pytest
import torch

from lib.attacks.mia import AttackResult, loss_threshold_attack, per_example_loss, shadow_attack

C = 5  # classes


def outputs(n, margin, seed):
    """Fake [n, C] logits: standard normal noise plus `margin` on the true class (members of an
    overfit model get a larger margin). Returns (logits, labels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    z = rng.normal(size=(n, C))
    z[np.arange(n), y] += margin
    return z, y


def pools(margin_in, margin_out, n_in=1000, n_out=1000):
    """Shadow and target outputs from independent draws (different seeds)."""
    (s_in, ys_in), (s_out, ys_out) = outputs(n_in, margin_in, 0), outputs(n_out, margin_out, 1)
    (t_in, yt_in), (t_out, yt_out) = outputs(n_in, margin_in, 2), outputs(n_out, margin_out, 3)
    labels = dict(shadow_in_labels=ys_in, shadow_out_labels=ys_out, target_in_labels=yt_in, target_out_labels=yt_out)
    return (s_in, s_out, t_in, t_out), labels


def test_separable_members_are_detected():
    arrays, _ = pools(margin_in=4.0, margin_out=1.0)
    res = shadow_attack(*arrays, n_boot=200)
    assert isinstance(res, AttackResult) and res.mode == "single"
    assert res.auc > 0.75
    assert res.auc_ci[0] < res.auc < res.auc_ci[1]
    assert 0 <= res.tpr_at_0_1pct <= res.tpr_at_1pct <= 1
    assert res.per_class_auc == {}


def test_same_distribution_gives_chance_auc():
    arrays, _ = pools(margin_in=2.0, margin_out=2.0)   # 1000 vs 1000: SE of the AUC ≈ 0.013
    res = shadow_attack(*arrays, n_boot=0)
    assert 0.4 < res.auc < 0.6
    assert np.isnan(res.auc_ci[0]) and np.isnan(res.auc_ci[1])  # n_boot=0 skips the bootstrap


def test_per_class_mode_reports_every_class():
    arrays, labels = pools(margin_in=4.0, margin_out=1.0)
    res = shadow_attack(*arrays, **labels, mode="per_class", n_boot=0)
    assert res.mode == "per_class"
    assert sorted(res.per_class_auc) == list(range(C))
    assert all(v > 0.7 for v in res.per_class_auc.values())
    assert res.auc > 0.75 and res.fallback_classes == []
    frame = res.per_class_frame()
    assert list(frame["class"]) == list(range(C)) and not frame.fallback.any()


def test_per_class_mode_needs_labels():
    arrays, labels = pools(margin_in=4.0, margin_out=1.0, n_in=50, n_out=50)
    with pytest.raises(ValueError, match="per_class.*shadow_in_labels"):
        shadow_attack(*arrays, mode="per_class")
    partial = {k: v for k, v in labels.items() if k != "target_out_labels"}
    with pytest.raises(ValueError, match="target_out_labels"):
        shadow_attack(*arrays, **partial, mode="per_class")


def test_per_class_mode_falls_back_for_a_tiny_class():
    arrays, labels = pools(margin_in=4.0, margin_out=1.0, n_in=400, n_out=400)
    s_in, s_out, t_in, t_out = arrays
    # Keep a single shadow-out example of class 0: too few for its own SVM.
    first_zero = np.flatnonzero(labels["shadow_out_labels"] == 0)[0]
    keep = (labels["shadow_out_labels"] != 0) | (np.arange(len(s_out)) == first_zero)
    labels["shadow_out_labels"] = labels["shadow_out_labels"][keep]
    res = shadow_attack(s_in, s_out[keep], t_in, t_out, **labels, mode="per_class", n_boot=0)
    assert res.fallback_classes == [0]
    assert sorted(res.per_class_auc) == list(range(C))
    assert np.isfinite(res.per_class_auc[0]) and res.per_class_auc[0] > 0.7   # scored by the pooled SVM
    assert np.all(np.isfinite(res.scores))
    assert res.to_row()["n_fallback_classes"] == 1


def test_undersampling_balances_and_max_train_caps():
    (s_in, ys_in), (s_out, ys_out) = outputs(700, 3.0, 0), outputs(300, 1.0, 1)
    (t_in, yt_in), (t_out, yt_out) = outputs(500, 3.0, 2), outputs(120, 1.0, 3)
    res = shadow_attack(s_in, s_out, t_in, t_out, max_train=201, n_boot=0)
    assert res.n_test_in == res.n_test_out == 120
    assert res.n_train_in == res.n_train_out == 100              # 201 // 2, balanced
    assert len(res.scores) == 240 and res.membership.sum() == 120
    uncapped = shadow_attack(s_in, s_out, t_in, t_out, max_train=10_000, n_boot=0)
    assert uncapped.n_train_in == uncapped.n_train_out == 300    # minority side of the shadow set
    labels = dict(shadow_in_labels=ys_in, shadow_out_labels=ys_out, target_in_labels=yt_in, target_out_labels=yt_out)
    per_class = shadow_attack(s_in, s_out, t_in, t_out, **labels, mode="per_class", max_train=100, n_boot=0)
    assert per_class.n_train_in == per_class.n_train_out and per_class.n_train_in + per_class.n_train_out <= 100
    assert per_class.n_test_in == per_class.n_test_out
    frame = per_class.scores_frame()                           # balanced within every class
    counts = frame.groupby(["label", "membership"]).size().unstack()
    assert (counts[0] == counts[1]).all()


def test_scores_frame_points_back_to_target_rows():
    (s_in, ys_in), (s_out, ys_out) = outputs(300, 3.0, 0), outputs(300, 1.0, 1)
    (t_in, yt_in), (t_out, yt_out) = outputs(250, 3.0, 2), outputs(100, 1.0, 3)
    res = shadow_attack(s_in, s_out, t_in, t_out, target_in_labels=yt_in, target_out_labels=yt_out, n_boot=0)
    frame = res.scores_frame()
    assert list(frame.columns) == ["pool", "index", "label", "membership", "score"]
    assert ((frame.pool == "in") == (frame.membership == 1)).all()
    for pool, labels, n in [("in", yt_in, 250), ("out", yt_out, 100)]:
        rows = frame[frame.pool == pool]
        assert rows["index"].is_unique and rows["index"].between(0, n - 1).all()
        np.testing.assert_array_equal(rows["label"].to_numpy(), labels[rows["index"].to_numpy()])
    assert frame["label"].notna().all()
    assert shadow_attack(s_in, s_out, t_in, t_out, n_boot=0).scores_frame()["label"].isna().all()
    row = res.to_row()
    assert all(np.isscalar(v) for v in row.values()) and row["n_test_in"] == 100


def test_same_seed_same_scores():
    arrays, labels = pools(margin_in=3.0, margin_out=1.0, n_in=400, n_out=250)
    for mode, kw in [("single", {}), ("per_class", labels)]:
        a = shadow_attack(*arrays, **kw, mode=mode, seed=3, n_boot=100)
        b = shadow_attack(*arrays, **kw, mode=mode, seed=3, n_boot=100)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.index, b.index)
        assert a.auc_ci == b.auc_ci
    c = shadow_attack(*arrays, seed=4, n_boot=0)
    assert not np.array_equal(a.index, c.index)              # another seed, another undersample


def test_standardize_makes_the_attack_blind_to_feature_units():
    arrays, _ = pools(margin_in=3.0, margin_out=1.0, n_in=300, n_out=300)
    scale = np.array([1000.0, 1, 1, 1, 1])                    # one column in other units
    scaled = [a * scale for a in arrays]
    base = shadow_attack(*arrays, n_boot=0)
    np.testing.assert_allclose(shadow_attack(*scaled, n_boot=0).scores, base.scores, rtol=1e-6, atol=1e-6)
    raw = shadow_attack(*scaled, standardize=False, n_boot=0)
    assert not np.allclose(raw.scores, base.scores, atol=1e-3)


def test_shadow_attack_validates_inputs():
    arrays, _ = pools(margin_in=3.0, margin_out=1.0, n_in=20, n_out=20)
    s_in, s_out, t_in, t_out = arrays
    with pytest.raises(ValueError, match="mode"):
        shadow_attack(*arrays, mode="shadow")
    with pytest.raises(ValueError, match="same number of columns"):
        shadow_attack(s_in, s_out, t_in[:, :3], t_out)
    with pytest.raises(ValueError, match="shadow_out must be a 2-D"):
        shadow_attack(s_in, s_out[:, 0], t_in, t_out)
    with pytest.raises(ValueError, match="target_in must not be empty"):
        shadow_attack(s_in, s_out, t_in[:0], t_out)
    with pytest.raises(ValueError, match="target_out contains NaN"):
        shadow_attack(s_in, s_out, t_in, np.where(t_out > 2, np.nan, t_out))
    with pytest.raises(ValueError, match="max_train"):
        shadow_attack(*arrays, max_train=3)
    with pytest.raises(ValueError, match="target_in_labels"):
        shadow_attack(*arrays, target_in_labels=np.zeros(3, int))


def test_loss_threshold_attack():
    rng = np.random.default_rng(0)
    loss_in, loss_out = rng.exponential(0.2, 800), rng.exponential(1.0, 300)   # members fit better
    res = loss_threshold_attack(loss_in, loss_out, n_boot=100)
    assert res.mode == "loss_threshold" and res.auc > 0.7
    assert res.n_test_in == res.n_test_out == 300 and res.n_train_in == res.n_train_out == 0
    frame = res.scores_frame()
    for pool, losses in [("in", loss_in), ("out", loss_out)]:   # score = -loss: higher means member
        rows = frame[frame.pool == pool]
        np.testing.assert_allclose(rows.score, -losses[rows["index"]])
    assert loss_threshold_attack(loss_out, loss_in, n_boot=0).auc < 0.3   # swapped roles: below chance
    with pytest.raises(ValueError, match="target_out_loss"):
        loss_threshold_attack(loss_in, loss_out.reshape(-1, 1))


def test_per_example_loss_matches_torch_cross_entropy():
    z, y = outputs(64, 2.0, 0)
    want = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y), reduction="none").numpy()
    got = per_example_loss(z, y)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(per_example_loss(torch.tensor(z, dtype=torch.float32), torch.tensor(y)), want, rtol=1e-5)
    np.testing.assert_allclose(per_example_loss(z * 0 + 1e4, y), np.log(C))   # stable at large logits
    with pytest.raises(ValueError, match="labels must be in"):
        per_example_loss(z, np.full(64, C))
