"""Parity of lib.attacks.lira with the published implementations it follows (issue 21).

References, transcribed below in numpy from their published code (only what the numbers depend on):

* tensorflow/privacy, ``tensorflow_privacy/privacy/privacy_tests/membership_inference_attack/advanced_mia.py``
  (last changed 3f6d0ac, 2022-10-03): ``replace_nan_with_column_mean``, ``compute_score_lira``,
  ``convert_logit_to_prob``, ``calculate_statistic(option="logit", small_value=1e-45)``.
* google-research/google-research ``mi_lira_2021`` (Carlini et al., "Membership Inference Attacks From First
  Principles", S&P 2022): ``score.py`` ``load_one`` (the logit scaling) and ``plot.py`` ``generate_ours`` /
  ``generate_ours_offline`` / ``do_plot``. Read from verbatim copies (header "Copyright 2021 Google LLC") in
  SnP23Submission/paper186@d1770a9 and taehyeok-jang/ppml@345c324, whose function bodies agree; the
  google-research snapshot is too large to fetch here.
* privacytrustlab/ml_privacy_meter ``modules/mia/attacks/rmia.py`` at e384af8 (2025-04-26; file last changed
  7f27a48, 2025-02-14): ``get_out_ref_signals`` and ``run_rmia``; ``modules/mia/attack.py`` ``MIA.run_mia`` calls
  ``run_rmia`` without ``num_reference_models`` (so its default, half the references).

What matches what (member score: higher = member; both references return "lower = member", so ours = −theirs):

    score        scores_from_logits ≡ score.py / calculate_statistic("logit") up to rounding (float64 logits:
                 1e-12; float32 logits: their exp runs in float32, 1e-5 for |score| ≲ 40); beyond a margin of
                 ≈ 103.6 = −log 1e-45 theirs saturates, ours stays exact.
    online       LiRA(online=True, variant="authors")  ≡ compute_score_lira("both", median) ≡ generate_ours
                 LiRA(online=True, variant="paper")    ≡ compute_score_lira("both", mean)
    offline      LiRA(online=False, variant="authors") ≡ compute_score_lira("out", median) ≡ generate_ours_offline
                 LiRA(online=False, variant="paper", offline_sides=2) ≡ compute_score_lira("out", mean)
    fixed var.   LiRA(fix_variance=True, variant="authors") ≡ generate_ours(fix_variance=True) (σ_in = σ_out = std
                 of all IN scores) and generate_ours_offline(fix_variance=True) (std of all OUT scores).
                 tensorflow_privacy's fix_variance (std of the residuals score − per-example centre) is none of ours.
    truncation   generate_ours keeps the first min-count IN and OUT shadows of every example (model order); ours
                 uses all, unless masked with balanced_references (then equal).
    paper        the paper variant's one-sided offline test (log Φ) is in neither code base.
"""
import functools

import numpy as np
import pytest
import scipy.stats

from lib.attacks import lira as L

N, A, C = 50, 2, 10


# --------------------------------------------------------------- tensorflow_privacy advanced_mia.py, transcribed

def _tfp_replace_nan_with_column_mean(a):
    """replace_nan_with_column_mean."""
    mean = np.nanmean(a, axis=0)
    for i in range(a.shape[1]):
        np.nan_to_num(a[:, i], copy=False, nan=mean[i])


def _tfp_compute_score_lira(stat_target, stat_in, stat_out, option="both", fix_variance=False,
                            median_or_mean="median"):
    """compute_score_lira: stat_in[i] / stat_out[i] are [m_i, k] arrays; lower score = member."""
    func_avg = functools.partial(np.nanmedian if median_or_mean == "median" else np.nanmean, axis=0)
    if option in ["in", "both"]:
        avg_in = np.array(list(map(func_avg, stat_in)))
        _tfp_replace_nan_with_column_mean(avg_in)
    if option in ["out", "both"]:
        avg_out = np.array(list(map(func_avg, stat_out)))
        _tfp_replace_nan_with_column_mean(avg_out)
    if fix_variance:   # std of the residuals from each example's centre, over all examples
        if option in ["in", "both"]:
            std_in = np.nanstd(np.concatenate([s - m[np.newaxis] for s, m in zip(stat_in, avg_in)]))
        if option in ["out", "both"]:
            std_out = np.nanstd(np.concatenate([s - m[np.newaxis] for s, m in zip(stat_out, avg_out)]))
    else:
        func_std = functools.partial(np.nanstd, axis=0)
        if option in ["in", "both"]:
            std_in = np.array(list(map(func_std, stat_in)))
            _tfp_replace_nan_with_column_mean(std_in)
        if option in ["out", "both"]:
            std_out = np.array(list(map(func_std, stat_out)))
            _tfp_replace_nan_with_column_mean(std_out)
    stat_target = np.array(stat_target)
    if option in ["in", "both"]:
        log_pr_in = scipy.stats.norm.logpdf(stat_target, avg_in, std_in + 1e-30)
    if option in ["out", "both"]:
        log_pr_out = scipy.stats.norm.logpdf(stat_target, avg_out, std_out + 1e-30)
    if option == "both":
        return -(log_pr_in - log_pr_out).mean(axis=1)
    if option == "in":
        return -log_pr_in.mean(axis=1)
    return log_pr_out.mean(axis=1)


def _tfp_calculate_statistic_logit(logit, labels, small_value=1e-45):
    """convert_logit_to_prob, then calculate_statistic(option="logit"): log(p / (1 − p)) via the probabilities."""
    prob = logit - np.max(logit, axis=1, keepdims=True)
    prob = np.array(np.exp(prob), dtype=np.float64)
    pred = prob / np.sum(prob, axis=1, keepdims=True)
    n = labels.size
    p_true = pred[range(n), labels]
    pred[range(n), labels] = 0
    p_other = pred.sum(axis=1)
    return np.log(p_true + small_value) - np.log(p_other + small_value)


# --------------------------------------------------------------- google-research mi_lira_2021, transcribed

def _carlini_score(opredictions, labels):
    """score.py load_one: opredictions [N, 1, A, C] (inference.py's layout) → scores [N, A]."""
    predictions = opredictions - np.max(opredictions, axis=3, keepdims=True)
    predictions = np.array(np.exp(predictions), dtype=np.float64)     # exp in the logits' dtype, then float64
    predictions = predictions / np.sum(predictions, axis=3, keepdims=True)
    count = predictions.shape[0]
    y_true = predictions[np.arange(count), :, :, labels[:count]]
    predictions[np.arange(count), :, :, labels[:count]] = 0
    y_wrong = np.sum(predictions, axis=3)
    return np.log(y_true.mean(1) + 1e-45) - np.log(y_wrong.mean(1) + 1e-45)


def _carlini_generate_ours(keep, scores, check_keep, check_scores, in_size=100000, out_size=100000,
                           fix_variance=False):
    """plot.py generate_ours: keep [M, N], scores [M, N, A]; prediction: lower = member."""
    dat_in, dat_out = [], []
    for j in range(scores.shape[1]):
        dat_in.append(scores[keep[:, j], j, :])
        dat_out.append(scores[~keep[:, j], j, :])
    in_size = min(min(map(len, dat_in)), in_size)
    out_size = min(min(map(len, dat_out)), out_size)
    dat_in = np.array([x[:in_size] for x in dat_in])
    dat_out = np.array([x[:out_size] for x in dat_out])
    mean_in = np.median(dat_in, 1)
    mean_out = np.median(dat_out, 1)
    if fix_variance:
        std_in = np.std(dat_in)
        std_out = np.std(dat_in)
    else:
        std_in = np.std(dat_in, 1)
        std_out = np.std(dat_out, 1)
    prediction, answers = [], []
    for ans, sc in zip(check_keep, check_scores):
        pr_in = -scipy.stats.norm.logpdf(sc, mean_in, std_in + 1e-30)
        pr_out = -scipy.stats.norm.logpdf(sc, mean_out, std_out + 1e-30)
        score = pr_in - pr_out
        prediction.extend(score.mean(1))
        answers.extend(ans)
    return np.array(prediction), np.array(answers)


def _carlini_generate_ours_offline(keep, scores, check_keep, check_scores, in_size=100000, out_size=100000,
                                   fix_variance=False):
    """plot.py generate_ours_offline: two-sided (−log N(s; median OUT, σ_out) = member score)."""
    dat_out = []
    for j in range(scores.shape[1]):
        dat_out.append(scores[~keep[:, j], j, :])
    out_size = min(min(map(len, dat_out)), out_size)
    dat_out = np.array([x[:out_size] for x in dat_out])
    mean_out = np.median(dat_out, 1)
    std_out = np.std(dat_out) if fix_variance else np.std(dat_out, 1)
    prediction, answers = [], []
    for ans, sc in zip(check_keep, check_scores):
        score = scipy.stats.norm.logpdf(sc, mean_out, std_out + 1e-30)
        prediction.extend(score.mean(1))
        answers.extend(ans)
    return np.array(prediction), np.array(answers)


def _carlini_do_plot(fn, keep, scores, ntest=1):
    """plot.py do_plot's split: the last ntest models are the targets, the others the shadows."""
    return fn(keep[:-ntest], scores[:-ntest], keep[-ntest:], scores[-ntest:])


# --------------------------------------------------------------- fixtures

def _logits(keep, seed):
    """[M, N, A, C] float64 logits: per-example class logits shared by all models, a per-model and per-query
    perturbation, and the true class raised in the models that train on the example (so IN ≠ OUT)."""
    rng = np.random.default_rng(seed)
    m = keep.shape[0]
    y = rng.integers(0, C, N)
    base = rng.normal(0, 2, (1, N, 1, C))
    z = base + rng.normal(0, 1, (m, N, A, C))
    z += (1.5 * keep + rng.normal(0, 0.5, keep.shape))[..., None, None] * np.eye(C)[y][None, :, None, :]
    return z, y


@pytest.fixture(scope="module")
def equal():
    """8 shadows with every example IN exactly 4 (keep_matrix) and a 9th model, the target, with its own half."""
    keep = np.concatenate([L.keep_matrix(8, N, seed=0), L.keep_matrix(2, N, seed=1)[:1]])
    z, y = _logits(keep, seed=2)
    scores = np.stack([L.scores_from_logits(zm, y) for zm in z])          # [9, N, A]
    return keep, scores, z, y


@pytest.fixture(scope="module")
def loo():
    """keep_matrix(9): target = the last model, shadows = the other 8 (do_plot's split). The target's members are
    IN 3 shadows and OUT of 5, its non-members IN 4 and OUT of 4: unequal counts."""
    keep = L.keep_matrix(9, N, seed=3)
    z, y = _logits(keep, seed=4)
    scores = np.stack([L.scores_from_logits(zm, y) for zm in z])
    return keep, scores, z, y


def _split(keep, scores):
    return keep[:-1], scores[:-1], keep[-1], scores[-1]


def _tfp_lists(sk, ss):
    """compute_score_lira's inputs: per example the [m, A] IN and OUT shadow scores (all of them)."""
    return [ss[sk[:, j], j, :] for j in range(N)], [ss[~sk[:, j], j, :] for j in range(N)]


# --------------------------------------------------------------- the score (logit scaling)

@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_score_matches_the_probability_based_scalings(equal, dtype, atol):
    """Ours is z_y − logsumexp of the others in float64; theirs forms the probabilities. Same numbers up to rounding:
    float64 logits 1e-12; float32 logits (theirs exponentiates before the float64 cast, ~1e-7 relative per
    probability, growing with the margin): 1e-5 on this fixture (|score| < 40)."""
    _, _, z, y = equal
    zz = z.astype(dtype)
    ours = np.stack([L.scores_from_logits(zm.astype(np.float64), y) for zm in zz])
    carlini = np.stack([_carlini_score(zm[:, None], y) for zm in zz])
    tfp = np.stack([np.stack([_tfp_calculate_statistic_logit(zm[:, a], y) for a in range(A)], 1) for zm in zz])
    assert np.abs(ours).max() < 40
    np.testing.assert_allclose(carlini, ours, rtol=0, atol=atol)
    np.testing.assert_allclose(tfp, ours, rtol=0, atol=atol)


def test_score_saturates_in_theirs_beyond_the_small_value_and_not_in_ours():
    """With a margin above −log 1e-45 ≈ 103.6 the other classes' probability falls below their small value (or
    underflows), so theirs reads ≈ 103.6 whatever the margin; ours is exact."""
    z = np.array([[50.0, 0.0, 0.0], [200.0, 0.0, 0.0], [1000.0, 0.0, 0.0]])
    y = np.zeros(3, int)
    ours = L.scores_from_logits(z, y)[:, 0]
    tfp = _tfp_calculate_statistic_logit(z.copy(), y)
    np.testing.assert_allclose(ours, [50 - np.log(2), 200 - np.log(2), 1000 - np.log(2)], rtol=1e-12)
    assert tfp[0] == pytest.approx(ours[0], abs=1e-9)
    np.testing.assert_allclose(tfp[1:], -np.log(1e-45), rtol=1e-6)


# --------------------------------------------------------------- LiRA vs tensorflow_privacy compute_score_lira

@pytest.mark.parametrize("fixture", ["equal", "loo"])
@pytest.mark.parametrize("online, tfp_kw, ours", [
    (True, {"option": "both", "median_or_mean": "median"}, L.LiRA(online=True, variant="authors")),
    (True, {"option": "both", "median_or_mean": "mean"}, L.LiRA(online=True, variant="paper")),
    (True, {"option": "both", "median_or_mean": "mean"}, L.LiRA(online=True, variant="authors", center="mean")),
    (False, {"option": "out", "median_or_mean": "median"}, L.LiRA(online=False, variant="authors")),
    (False, {"option": "out", "median_or_mean": "mean"}, L.LiRA(online=False, variant="paper", offline_sides=2)),
])
def test_lira_matches_tensorflow_privacy(fixture, online, tfp_kw, ours, request):
    """Per-example variance: same formula (all IN/OUT shadows of each example, ddof 0, +1e-30), so rtol 1e-9."""
    sk, ss, _, ts = _split(*request.getfixturevalue(fixture)[:2])
    stat_in, stat_out = _tfp_lists(sk, ss)
    theirs = _tfp_compute_score_lira(ts, stat_in, stat_out, fix_variance=False, **tfp_kw)
    np.testing.assert_allclose(ours.member_scores(ss, sk, ts), -theirs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("online", [True, False])
def test_tensorflow_privacy_fixed_variance_is_none_of_ours(equal, online):
    """tensorflow_privacy's fix_variance pools the residuals (score − the example's centre), ours (both variants)
    the raw scores, which adds the spread of the per-example centres: a larger σ and different numbers. Pinned
    here so that a change to either side shows."""
    sk, ss, _, ts = _split(*equal[:2])
    stat_in, stat_out = _tfp_lists(sk, ss)
    for variant, centre in (("paper", "mean"), ("authors", "median")):
        theirs = -_tfp_compute_score_lira(ts, stat_in, stat_out, option="both" if online else "out",
                                          fix_variance=True, median_or_mean=centre)
        ours = L.LiRA(online=online, fix_variance=True, variant=variant, offline_sides=2).member_scores(ss, sk, ts)
        assert not np.allclose(ours, theirs, rtol=1e-3)
    resid = np.concatenate([s - s.mean(0) for s in stat_in]).std()
    assert resid < ss[sk].std()


# --------------------------------------------------------------- LiRA vs mi_lira_2021 plot.py

@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_matches_the_authors_code_when_counts_are_equal(equal, fix_variance):
    """Every shadow example IN exactly 4 of 8: generate_ours truncates nothing, so the numbers agree (rtol 1e-9)."""
    keep, scores = equal[:2]
    sk, ss, _, ts = _split(keep, scores)
    pred, ans = _carlini_do_plot(functools.partial(_carlini_generate_ours, fix_variance=fix_variance), keep, scores)
    assert np.array_equal(ans, keep[-1])
    ours = L.LiRA(online=True, fix_variance=fix_variance, variant="authors").member_scores(ss, sk, ts)
    np.testing.assert_allclose(ours, -pred, rtol=1e-9, atol=1e-12)
    pred_off, _ = _carlini_do_plot(functools.partial(_carlini_generate_ours_offline, fix_variance=fix_variance),
                                   keep, scores)
    ours_off = L.LiRA(online=False, fix_variance=fix_variance, variant="authors").member_scores(ss, sk, ts)
    np.testing.assert_allclose(ours_off, -pred_off, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fix_variance", [False, True])
def test_lira_matches_the_authors_truncation_only_with_balanced_references(loo, fix_variance):
    """Unequal counts (leave-one-out): the authors keep the first min-count IN and OUT shadows of each example.
    Masking ours with balanced_references (the same first-k rule) gives their numbers; all shadows do not."""
    keep, scores = loo[:2]
    sk, ss, _, ts = _split(keep, scores)
    assert sk.sum(0).min() < sk.sum(0).max()
    use = L.balanced_references(sk)
    masked = np.where(use[..., None], ss, np.nan)
    for gen, online in ((_carlini_generate_ours, True), (_carlini_generate_ours_offline, False)):
        pred, _ = _carlini_do_plot(functools.partial(gen, fix_variance=fix_variance), keep, scores)
        atk = L.LiRA(online=online, fix_variance=fix_variance, variant="authors")
        np.testing.assert_allclose(atk.member_scores(masked, sk, ts), -pred, rtol=1e-9, atol=1e-12)
        assert not np.allclose(atk.member_scores(ss, sk, ts), -pred, rtol=1e-3)


def test_the_paper_variant_is_not_the_authors_code(equal):
    """The check can fail: on the same fixture the paper variant (mean centre; offline one-sided log Φ) gives other
    numbers than generate_ours / generate_ours_offline, and other rankings offline."""
    keep, scores = equal[:2]
    sk, ss, _, ts = _split(keep, scores)
    pred, _ = _carlini_do_plot(_carlini_generate_ours, keep, scores)
    pred_off, _ = _carlini_do_plot(_carlini_generate_ours_offline, keep, scores)
    paper_on = L.LiRA(online=True).member_scores(ss, sk, ts)
    paper_off = L.LiRA(online=False).member_scores(ss, sk, ts)
    assert not np.allclose(paper_on, -pred, rtol=1e-3)
    assert not np.allclose(paper_off, -pred_off, rtol=1e-3)
    assert scipy.stats.spearmanr(paper_off, -pred_off)[0] < 0.99
    # and the one-sided score is the paper's definition: log Pr[Z < s], Z ~ N(μ_out, σ_out), averaged over queries
    out = np.where(~sk[..., None], ss, np.nan)
    mu, sd = np.nanmean(out, 0), np.nanstd(out, 0)
    np.testing.assert_allclose(paper_off, scipy.stats.norm.logcdf(ts, mu, sd).mean(1), rtol=1e-9)


# --------------------------------------------------------------- RMIA vs ml_privacy_meter, transcribed

def _mlpm_get_out_ref_signals(ref_signals, ref_memberships, num_reference_models=None, offline_a=0.3):
    """modules/mia/attacks/rmia.py get_out_ref_signals; signals [num_samples, num_models]."""
    non_members = ~ref_memberships
    out_signals = ref_signals * non_members
    if num_reference_models is None:
        num_reference_models = ref_signals.shape[1]
    if num_reference_models > 1:
        out_signals = -np.sort(-out_signals, axis=1)[:, :num_reference_models]
    else:
        if offline_a != 0:
            out_signals += ((ref_signals + offline_a - 1) / offline_a) * ref_memberships
        else:
            out_signals += ((ref_signals - 0.7) / 0.3) * ref_memberships
    return out_signals


def _mlpm_run_rmia(target_signals, ref_signals, ref_memberships, z_target_signals, z_ref_signals, offline_a,
                   num_reference_models=None, gamma=1.0):
    """modules/mia/attacks/rmia.py run_rmia (theirs compares with 1.0; `gamma` is our extension)."""
    if num_reference_models is None:
        num_reference_models = max(ref_signals.shape[1] // 2, 1)
    out_signals = _mlpm_get_out_ref_signals(ref_signals, ref_memberships, num_reference_models, offline_a)
    mean_out_x = np.mean(out_signals, axis=1)
    mean_x = (1 + offline_a) / 2 * mean_out_x + (1 - offline_a) / 2
    prob_ratio_x = target_signals.ravel() / mean_x
    population_memberships = np.zeros_like(z_ref_signals).astype(bool)
    z_out_signals = _mlpm_get_out_ref_signals(z_ref_signals, population_memberships, num_reference_models, offline_a)
    mean_out_z = np.mean(z_out_signals, axis=1)
    mean_z = (1 + offline_a) / 2 * mean_out_z + (1 - offline_a) / 2
    prob_ratio_z = z_target_signals.ravel() / mean_z
    ratios = prob_ratio_x[:, np.newaxis] / prob_ratio_z
    return np.average(ratios > gamma, axis=1)


def _first_k(tx, rx, keep, tz, rz, a, k):
    """Our old rule (before issue 21): the first k OUT references in model order, the first k on z."""
    out = ~keep & (np.cumsum(~keep, 0) <= k)
    px = (1 + a) / 2 * (rx * out).sum(0) / out.sum(0) + (1 - a) / 2
    pz = (1 + a) / 2 * rz[:k].mean(0) + (1 - a) / 2
    return np.mean((tx / px)[:, None] / (tz / pz) > 1.0, axis=1)


@pytest.fixture(scope="module")
def rmia_fixture():
    """9 models on 60 candidates (keep_matrix, each IN 4) and a population of 40: the signals are rmia_signal of
    random logits with a membership effect; target = model 0, references = models 1..8, all the ml_privacy_meter
    layout [num_samples, num_models] as MIA.run_mia slices it."""
    rng = np.random.default_rng(5)
    n, p, m = 60, 40, 9
    keep = L.keep_matrix(m, n, seed=6)
    y, yz = rng.integers(0, C, n), rng.integers(0, C, p)
    zx = rng.normal(0, 1.5, (1, n, 1, C)) + rng.normal(0, 1, (m, n, 1, C))
    zx += 2.0 * keep[..., None, None] * np.eye(C)[y][None, :, None, :]
    zz = rng.normal(0, 1.5, (1, p, 1, C)) + rng.normal(0, 1, (m, p, 1, C))
    all_signals = np.stack([L.rmia_signal(zm, y) for zm in zx], 1)          # [n, m]
    population_signals = np.stack([L.rmia_signal(zm, yz) for zm in zz], 1)   # [p, m]
    refs = np.arange(1, m)
    return (all_signals[:, 0], all_signals[:, refs], keep.T[:, refs], population_signals[:, 0],
            population_signals[:, refs], keep[0])


@pytest.mark.parametrize("k", [1, 2, 3, 4, None])
@pytest.mark.parametrize("a", [0.0, 0.3, 0.7, 1.0])
def test_rmia_matches_ml_privacy_meter(rmia_fixture, k, a):
    """Same numbers (exactly) as run_rmia: k = 1 (every reference, IN ones converted), k > 1 (the k largest OUT;
    k = 4 ≤ every candidate's OUT count here) and None (their default R // 2 = 4)."""
    tx, rx_nr, keep_nr, tz, rz_pr, _ = rmia_fixture
    theirs = _mlpm_run_rmia(tx, rx_nr, keep_nr, tz, rz_pr, a, k)
    ours = L.rmia_member_scores(tx, rx_nr.T, keep_nr.T, tz, rz_pr.T, offline_a=a, max_refs=k)
    np.testing.assert_array_equal(ours, theirs)


def test_rmia_pads_with_zeros_as_ml_privacy_meter_and_says_so(rmia_fixture):
    """k above a candidate's OUT count: theirs averages the zeros of its IN references; so do we, with a warning."""
    tx, rx_nr, keep_nr, tz, rz_pr, _ = rmia_fixture
    assert ((~keep_nr).sum(1) < 5).any()
    with pytest.warns(RuntimeWarning, match="fewer than 5 OUT"):
        ours = L.rmia_member_scores(tx, rx_nr.T, keep_nr.T, tz, rz_pr.T, max_refs=5)
    np.testing.assert_array_equal(ours, _mlpm_run_rmia(tx, rx_nr, keep_nr, tz, rz_pr, 0.3, 5))


def test_rmia_gamma_generalises_their_threshold(rmia_fixture):
    tx, rx_nr, keep_nr, tz, rz_pr, _ = rmia_fixture
    for gamma in (0.5, 2.0):
        ours = L.rmia_member_scores(tx, rx_nr.T, keep_nr.T, tz, rz_pr.T, max_refs=2, gamma=gamma)
        np.testing.assert_array_equal(ours, _mlpm_run_rmia(tx, rx_nr, keep_nr, tz, rz_pr, 0.3, 2, gamma=gamma))


def test_rmia_top_k_is_not_the_first_k(rmia_fixture):
    """The check can fail: the old rule (first k OUT references in model order) gives other scores on the same
    fixture, in the ladder's leave-one-out choice k = the smallest OUT count (4: the target's members have 5)."""
    tx, rx_nr, keep_nr, tz, rz_pr, member = rmia_fixture
    k = int((~keep_nr).sum(1).min())
    assert k == 4 and (~keep_nr).sum(1)[member].min() == 5
    ours = L.rmia_member_scores(tx, rx_nr.T, keep_nr.T, tz, rz_pr.T, max_refs=k)
    old = _first_k(tx, rx_nr.T, keep_nr.T, tz, rz_pr.T, 0.3, k)
    assert not np.array_equal(ours, old)
    np.testing.assert_array_equal(ours, _mlpm_run_rmia(tx, rx_nr, keep_nr, tz, rz_pr, 0.3, k))


def _null_leave_one_out(n_models, n=2000, p=500, seed=0):
    """Leave-one-out RMIA on models with no membership signal (IN and OUT outputs identical in law), pooled over
    the targets, with the ladder's k = the smallest OUT count. Returns (pooled ml_privacy_meter scores, first-k
    scores, truth)."""
    rng = np.random.default_rng(seed)
    keep = L.keep_matrix(n_models, n, seed=seed + 1)
    y, yz = rng.integers(0, C, n), rng.integers(0, C, p)
    zx = rng.normal(0, 2, (1, n, 1, C)) + rng.normal(0, 0.5, (n_models, n, 1, C)) + 3 * np.eye(C)[y][None, :, None]
    zz = rng.normal(0, 2, (1, p, 1, C)) + rng.normal(0, 0.5, (n_models, p, 1, C)) + 3 * np.eye(C)[yz][None, :, None]
    sx, sz = L.rmia_signal(zx, y), L.rmia_signal(zz, yz)
    new, old, bal = [], [], []
    for m in range(n_models):
        rest = np.arange(n_models) != m
        k = int((~keep[rest]).sum(0).min())
        new.append(L.rmia_member_scores(sx[m], sx[rest], keep[rest], sz[m], sz[rest], max_refs=k))
        old.append(_first_k(sx[m], sx[rest], keep[rest], sz[m], sz[rest], 0.3, k))
        bal.append([L.rmia_member_scores(sx[m], sx[rest], keep[rest], sz[m], sz[rest], max_refs=k,
                                         ref_use=L.balanced_references(keep[rest], k_in=k_in)) for k_in in (None, 0)])
    return np.concatenate(new), np.concatenate(old), keep.reshape(-1), [np.concatenate(b) for b in zip(*bal)]


@pytest.mark.parametrize("n_models, lo, hi", [(4, 0.56, 0.62), (10, 0.47, 0.495)])
def test_rmia_reference_choice_leans_on_the_targets_membership_in_leave_one_out(n_models, lo, hi):
    """What the lira docstring states: with no membership signal, ml_privacy_meter's choice is off chance in
    leave-one-out (members have one OUT reference more than non-members): k = 1 (M = 4) pooled AUC 0.588 (0.593–0.598 on
    seeds 1–3), k = 4 (M = 10) 0.486 (0.485–0.487); the first k OUT in model order stays at 0.500 (± 0.01)."""
    new, old, truth, bal = _null_leave_one_out(n_models)
    assert lo < L.evaluate(new, truth)["auc"] < hi
    assert abs(L.evaluate(old, truth)["auc"] - 0.5) < 0.01
    # balanced references: the same IN/OUT counts for every candidate (and OUT references only, what the ladder and
    # stage 06 pass) → chance
    for b in bal:
        assert abs(L.evaluate(b, truth)["auc"] - 0.5) < 0.01
