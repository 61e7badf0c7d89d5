"""lib.attacks.lira: keep matrix, the stable score, online/offline LiRA on planted Gaussians (TPR against its
analytic value), chance on identical IN/OUT laws, a memorising model found, resolvability of TPR at low FPR."""
import numpy as np
import pytest
import torch
from scipy import stats

from lib.attacks import lira as L


def test_keep_matrix_puts_every_example_in_exactly_half_the_models():
    k = L.keep_matrix(16, 500, seed=3)
    assert k.shape == (16, 500) and k.dtype == bool
    assert (k.sum(0) == 8).all()
    assert np.array_equal(k, L.keep_matrix(16, 500, seed=3)) and not np.array_equal(k, L.keep_matrix(16, 500, seed=4))
    assert 0.4 < k.sum(1).mean() / 500 < 0.6
    with pytest.raises(ValueError, match="pkeep"):
        L.keep_matrix(4, 10, 0, pkeep=1.0)


def test_score_is_the_log_odds_of_the_true_class_and_stays_finite():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 2, 10))
    y = rng.integers(0, 10, 50)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    py = p[np.arange(50), :, y]
    naive = np.log(py) - np.log(1 - py)
    np.testing.assert_allclose(L.scores_from_logits(z, y), naive, rtol=1e-9, atol=1e-9)
    big = np.array([[800.0, 0.0, -5.0], [0.0, 900.0, 0.0]])       # exp overflows float64
    s = L.scores_from_logits(big, [0, 0])
    assert np.isfinite(s).all() and s[0, 0] == pytest.approx(800.0 - np.log(1 + np.exp(-5.0)), rel=1e-12)
    assert s[1, 0] == pytest.approx(-900.0, abs=1e-9)
    assert L.scores_from_logits(z[:, 0], y).shape == (50, 1)


def _planted(n=20000, m=200, shift=1.0, seed=0):
    """Shadow scores: IN ~ N(shift, 1), OUT ~ N(0, 1) for every example; target: first half members."""
    rng = np.random.default_rng(seed)
    keep = L.keep_matrix(m, n, seed)
    shadow = rng.normal(size=(m, n)) + shift * keep
    member = np.arange(n) < n // 2
    target = rng.normal(size=n) + shift * member
    return shadow, keep, target, member


@pytest.mark.parametrize("attack", [L.LiRA(online=True), L.LiRA(online=True, fix_variance=True),
                                    L.LiRA(online=False), L.LiRA(online=True, variant="authors")])
def test_planted_gaussians_give_the_analytic_tpr(attack):
    shadow, keep, target, member = _planted()
    r = L.evaluate(attack.member_scores(shadow, keep, target), member)
    # equal variances: every variant's score is monotone in s, so TPR at FPR α = 1 − Φ(Φ⁻¹(1 − α) − shift)
    for f, key in ((0.01, "tpr_at_1pct"), (0.001, "tpr_at_0_1pct")):
        analytic = 1 - stats.norm.cdf(stats.norm.ppf(1 - f) - 1.0)
        assert abs(r[key] - analytic) < 0.25 * analytic + 0.01, (key, r[key], analytic)
    assert r["auc"] == pytest.approx(stats.norm.cdf(1.0 / np.sqrt(2)), abs=0.015)
    assert r["tpr_at_0_1pct_status"] == "" and r["min_fpr"] == pytest.approx(1 / 10000)


def test_identical_in_and_out_laws_give_chance():
    shadow, keep, target, member = _planted(shift=0.0, seed=1)
    for attack in (L.LiRA(), L.LiRA(online=False), L.LiRA(online=False, variant="authors")):
        r = L.evaluate(attack.member_scores(shadow, keep, target), member)
        assert abs(r["auc"] - 0.5) < 0.02
        assert r["tpr_at_1pct"] < 0.02 and r["tpr_at_1pct_chance"] == pytest.approx(0.01, abs=1e-3)


def test_offline_sidedness_and_centre_are_the_variants_choices():
    rng = np.random.default_rng(2)
    shadow = rng.normal(size=(9, 4))
    keep = np.zeros((9, 4), bool)
    shadow[0] += 50.0                                             # one outlying OUT shadow: moves the mean, not the median
    t = np.zeros(4)
    paper = L.LiRA(online=False).member_scores(shadow, keep, t)
    authors = L.LiRA(online=False, variant="authors").member_scores(shadow, keep, t)
    mean_centred = L.LiRA(online=False, variant="authors", center="mean").member_scores(shadow, keep, t)
    assert not np.allclose(authors, mean_centred)
    sd = shadow.std(0)
    np.testing.assert_allclose(paper, stats.norm.logcdf((t - shadow.mean(0)) / sd), rtol=1e-9)
    np.testing.assert_allclose(authors, -stats.norm.logpdf(t, np.median(shadow, 0), sd), rtol=1e-9)
    # two-sided: a score far *below* the OUT law also looks like a member; one-sided: it does not
    low = np.full(4, -100.0)
    assert (L.LiRA(online=False, variant="authors").member_scores(shadow, keep, low) > authors).all()
    assert (L.LiRA(online=False).member_scores(shadow, keep, low) < paper).all()


def _memorising_logits(n_models=10, n=200, seed=0):
    """Each model memorises random labels of its IN half (a small MLP, full-batch Adam); logits on all n examples."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    keep = L.keep_matrix(n_models, n, seed)
    logits = []
    for m in range(n_models):
        torch.manual_seed(100 + m)
        net = torch.nn.Sequential(torch.nn.Linear(16, 256), torch.nn.ReLU(), torch.nn.Linear(256, 4))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        idx = torch.from_numpy(np.flatnonzero(keep[m]))
        for _ in range(300):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            logits.append(net(x).numpy())
    return np.stack(logits), y.numpy(), keep


def test_a_memorising_model_is_found_far_above_chance():
    logits, y, keep = _memorising_logits()
    scores = np.stack([L.scores_from_logits(z, y) for z in logits])          # [M, N, 1]
    pred, truth, who = L.leave_one_out(scores, keep, L.LiRA())
    r = L.evaluate(pred, truth)
    assert r["n_nonmembers"] == 10 * 100 and r["tpr_at_1pct_status"] == ""   # pooled: 1000 non-members resolve 1%
    assert r["tpr_at_1pct"] > 0.3 and r["auc"] > 0.9
    assert np.isnan(r["tpr_at_0_1pct"]) and r["tpr_at_0_1pct_status"].startswith("not resolvable (N⁻ = 1000")
    single = L.evaluate(pred[who == 0], truth[who == 0])                     # one target: about 100 non-members
    assert np.isnan(single["tpr_at_1pct"]) and single["min_fpr"] == pytest.approx(1 / single["n_nonmembers"])
    assert single["n_nonmembers"] == int((~keep[0]).sum()) < 1000
    curve = L.roc_loglog(pred, truth, n_points=50)
    assert len(curve) <= 50 and (curve.fpr > 0).all() and curve.fpr.is_monotonic_increasing


def test_bad_shapes_and_names_are_rejected():
    with pytest.raises(ValueError, match="variant"):
        L.LiRA(variant="ours")
    with pytest.raises(ValueError, match="shapes"):
        L.LiRA().member_scores(np.zeros((4, 5, 1)), np.zeros((4, 6), bool), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="labels"):
        L.scores_from_logits(np.zeros((3, 4)), [0, 1, 4])


# ----------------------------------------------------------------------------- RMIA

def _rmia_reference(tx, rx, keep, tz, rz, a, gamma, k):
    """ml_privacy_meter's run_rmia rule written out per candidate (tests/test_parity_lira.py transcribes their code):
    k > 1: the k largest OUT reference signals, zeros standing in for missing ones, averaged over k (on z: its k
    largest); k = 1: every reference, an IN signal p replaced by (p + a − 1)/a (on z: the mean of all)."""
    def p_out(sig, member):
        if k > 1:
            outs = sorted((s for s, m in zip(sig, member) if not m), reverse=True) + [0.0] * k
            return np.mean(outs[:k])
        return np.mean([((s + a - 1) / a if a != 0 else (s - 0.7) / 0.3) if m else s for s, m in zip(sig, member)])
    scores = []
    ratio_z = np.array([tz[j] / ((1 + a) / 2 * p_out(rz[:, j], [False] * len(rz)) + (1 - a) / 2)
                        for j in range(len(tz))])
    for n in range(len(tx)):
        ratio_x = tx[n] / ((1 + a) / 2 * p_out(rx[:, n], keep[:, n]) + (1 - a) / 2)
        scores.append(np.mean(ratio_x / ratio_z > gamma))
    return np.array(scores)


def test_rmia_matches_the_literal_definition():
    rng = np.random.default_rng(0)
    R, N, P = 5, 40, 30
    rx, rz = rng.uniform(0.05, 1, (R, N)), rng.uniform(0.05, 1, (R, P))
    keep = rng.uniform(size=(R, N)) < 0.5
    keep[:, 0] = False    # every candidate has an OUT reference
    keep[0, 1:] = False
    tx, tz = rng.uniform(0.05, 1, N), rng.uniform(0.05, 1, P)
    for k, gamma, a in ((1, 1.0, 0.3), (1, 1.0, 0.0), (2, 1.5, 0.0), (5, 1.0, 0.7)):
        if k > (~keep).sum(0).min():      # fewer OUT references than k: counted as 0, with a warning
            with pytest.warns(RuntimeWarning, match="fewer than"):
                ours = L.rmia_member_scores(tx, rx, keep, tz, rz, offline_a=a, gamma=gamma, max_refs=k)
        else:
            ours = L.rmia_member_scores(tx, rx, keep, tz, rz, offline_a=a, gamma=gamma, max_refs=k)
        np.testing.assert_allclose(ours, _rmia_reference(tx, rx, keep, tz, rz, a, gamma, k))


def test_rmia_finds_planted_members_and_is_blind_without_signal():
    rng = np.random.default_rng(1)
    R, N, P = 4, 4000, 2000
    member = rng.uniform(size=N) < 0.5
    base = rng.uniform(0.2, 0.8, N)                       # per-example difficulty, shared by every model
    rx = np.clip(base + rng.normal(0, 0.02, (R, N)), 0.01, 1)   # references: all OUT
    tz_base = rng.uniform(0.2, 0.8, P)
    rz = np.clip(tz_base + rng.normal(0, 0.02, (R, P)), 0.01, 1)
    tz = np.clip(tz_base + rng.normal(0, 0.02, P), 0.01, 1)
    keep = np.zeros((R, N), bool)
    leaky = np.clip(base + 0.1 * member + rng.normal(0, 0.02, N), 0.01, 1)
    blind = np.clip(base + rng.normal(0, 0.02, N), 0.01, 1)
    auc_leaky = L.evaluate(L.rmia_member_scores(leaky, rx, keep, tz, rz, max_refs=2), member)["auc"]
    auc_blind = L.evaluate(L.rmia_member_scores(blind, rx, keep, tz, rz, max_refs=2), member)["auc"]
    auc_naive = L.evaluate(leaky, member)["auc"]   # the target's probability alone: no per-example calibration
    assert auc_leaky > 0.7 and auc_leaky > auc_naive + 0.05
    assert abs(auc_blind - 0.5) < 0.04
