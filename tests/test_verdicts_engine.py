"""The mended verdict engine (issue 21): planted cases with known answers, one per item of the issue, and
property-based tests (Hypothesis) of the engine's invariants. Each planted case names the item it pins; the ones
marked "old engine" failed on lib/claims/verdicts.py before the mend (see the issue's closing note)."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from lib.claims import metrics as M
from lib.claims import verdicts as V


def _rows(values_a, values_b, metric="auc", se=None, **extra):
    rows = []
    for s, (a, b) in enumerate(zip(values_a, values_b)):
        for cfg, v in (("a", a), ("b", b)):
            r = {"cfg": cfg, "seed": s, metric: v, **extra}
            if se is not None:
                r[f"{metric}_se"] = se
            rows.append(r)
    return pd.DataFrame(rows)


def _claim(expect, metric="auc", margin=None, centre=0.0, n=1):
    comps = [V.Comparison(f"c{i}", {"cfg": "a"}, {"cfg": "b"}, expect, margin, centre) for i in range(n)]
    return V.Claim("X", "A", "a vs b", metric, tuple(comps))


def _verdict(df, claim, examples=None):
    return V.compare_claim(df, claim, examples).verdict.iloc[0]


# ----------------------------------------------------------------------------- planted cases, one per item

def test_item1_equivalence_inside_the_margin_is_never_contradicted():
    """C1 of the committed run (old engine: "contradicted"): d = −0.0139, margin 0.02, se 0.004 over 4 targets. The
    difference is precisely inside the margin: the mirror of TOST cannot reject |d| ≤ margin."""
    d = -0.0139 + np.array([-0.0085, 0.0085, -0.0045, 0.0045])   # se over targets ≈ 0.004
    df = _rows(0.10 + d, np.full(4, 0.10), metric="tpr", se=1e-6)
    t = V.compare_claim(df, _claim("equivalent", "tpr", margin=0.02))
    assert t["se"].iloc[0] == pytest.approx(0.004, abs=0.0003)
    assert t.verdict.iloc[0] == "not resolved: interval wider than the equivalence margin"   # old engine: contradicted
    # and a difference well beyond the margin, precisely measured, is contradicted
    far = _rows(0.10 + d - 0.05, np.full(4, 0.10), metric="tpr", se=1e-6)
    assert _verdict(far, _claim("equivalent", "tpr", margin=0.02)) == V.CONTRADICTED


def test_item2_a_larger_floor_never_turns_not_resolved_into_supported():
    """n = 2, d = 0.05, seed SE 0.020 (old engine: floor 0.020 → p = 0.24, floor 0.021 → p = 0.017, "supported")."""
    d = np.array([0.03, 0.07])                        # mean 0.05, sd/√2 = 0.02
    ps = []
    for floor in (0.020, 0.021, 0.03, 0.2):
        se = floor * np.sqrt(2) / np.sqrt(2)          # per-row SE so that √(SE_a² + SE_b²)/√n = floor
        df = _rows(0.5 + d, [0.5, 0.5], se=se)
        t = V.compare_claim(df, _claim("higher"))
        ps.append(float(t["p"].iloc[0]))
        assert t.verdict.iloc[0] != V.SUPPORTED
    assert ps == sorted(ps)                           # p never falls as the floor rises


def _examples_accuracy(correct: dict, ids: dict):
    rows = [{"id": ids[k], "measure": "eval", "example": i, "correct": int(c)}
            for k, cs in correct.items() for i, c in enumerate(cs)]
    return V.Examples(pd.DataFrame(rows), {"test_acc": V.Outcome("eval", "accuracy", scale=100.0)})


def test_item3_same_examples_are_compared_paired():
    """D6: worst case 19 vs PGD 27 correct on the same 100 images, nested (every image the worst case gets right,
    PGD gets right too). Independent floor: 6.1 points, "not resolved"; McNemar's paired SE: 2.7 points, and the
    non-inferiority within 2 points is contradicted."""
    pgd = np.zeros(100, bool)
    pgd[:27] = True
    worst = np.zeros(100, bool)
    worst[:19] = True
    df = pd.DataFrame([{"cfg": "a", "seed": 0, "test_acc": 19.0, "n_eval": 100, "examples": "w"},
                       {"cfg": "b", "seed": 0, "test_acc": 27.0, "n_eval": 100, "examples": "p"}])
    cl = _claim("above", "test_acc", margin=-2.0)
    ex = _examples_accuracy({"a": worst, "b": pgd}, {"a": "w", "b": "p"})
    t = V.compare_claim(df, cl, ex)
    assert t["test-set floor"].iloc[0] == "paired examples"
    # McNemar's Wald variance with ½ added to each discordant count: 2.9 points (2.7 without the ½)
    assert t["se test set"].iloc[0] == pytest.approx(100 * np.sqrt((9 / 100 - 0.08 ** 2) / 100))
    assert t.verdict.iloc[0] == V.CONTRADICTED and t["noise covers"].iloc[0] == V.ONE_SEED
    # without the per-example outcomes the floor is the independent one (6.1 points) and nothing is resolved
    t0 = V.compare_claim(df, cl)
    assert t0["test-set floor"].iloc[0] == "independent" and t0["se test set"].iloc[0] > 5.9
    assert t0.verdict.iloc[0].startswith("not resolved")


def test_item3_paired_auc_uses_delong_on_the_same_examples():
    """Two attacks that score the same members/non-members almost alike: the paired DeLong SE is far below the
    independent Hanley floor, and a small consistent gain is resolved."""
    rng = np.random.default_rng(0)
    n = 400
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    base = rng.normal(size=2 * n) + 0.6 * y
    sa, sb = base + 0.1 * y + rng.normal(0, 0.05, 2 * n), base
    rows, ex = [], []
    for cfg, s in (("a", sa), ("b", sb)):
        auc = M.delong_components(y, s)[0]
        rows.append({"cfg": cfg, "seed": 0, "auc": auc, "auc_se_hanley": M.auc_se_hanley(auc, n, n), "examples": cfg})
        ex += [{"id": cfg, "measure": "svm", "example": i, "member": y[i], "score": s[i]} for i in range(2 * n)]
    exs = V.Examples(pd.DataFrame(ex), {"auc": V.Outcome("svm", "auc")})
    df = pd.DataFrame(rows)
    paired = V.paired(df, "auc", {"cfg": "a"}, {"cfg": "b"}, examples=exs)
    indep = V.paired(df, "auc", {"cfg": "a"}, {"cfg": "b"})
    assert paired["se_floor"] < indep["se_floor"] / 3
    assert paired["se_floor"] ** 2 == pytest.approx(M.delong_paired_var(y, sa, sb))
    assert _verdict(df, _claim("higher"), exs) == V.SUPPORTED
    assert _verdict(df, _claim("higher")).startswith("not resolved")


def test_item4_one_training_seed_says_so():
    pgd = np.r_[np.ones(60, bool), np.zeros(40, bool)]
    clean = np.r_[np.ones(90, bool), np.zeros(10, bool)]
    df = pd.DataFrame([{"cfg": "a", "seed": 0, "test_acc": 90.0, "examples": "c"},
                       {"cfg": "b", "seed": 0, "test_acc": 60.0, "examples": "p"}])
    ex = _examples_accuracy({"a": clean, "b": pgd}, {"a": "c", "b": "p"})
    s, d = V.evaluate(df, [_claim("higher", "test_acc")], ex)
    assert s.loc["X", "our verdict"] == f"{V.SUPPORTED}; {V.ONE_SEED}"
    assert d["pairs"].iloc[0] == 1


def test_item4_one_seed_accuracy_needs_the_exact_mcnemar_test_too():
    """5 discordant images, all one way: Wald z ≈ 2.3 (p ≈ 0.02), exact McNemar p = 2·0.5⁵ = 0.0625 → not resolved."""
    a = np.r_[np.ones(55, bool), np.zeros(45, bool)]
    b = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    df = pd.DataFrame([{"cfg": "a", "seed": 0, "test_acc": 55.0, "examples": "a"},
                       {"cfg": "b", "seed": 0, "test_acc": 50.0, "examples": "b"}])
    ex = _examples_accuracy({"a": a, "b": b}, {"a": "a", "b": "b"})
    t = V.compare_claim(df, _claim("higher", "test_acc"), ex)
    assert t["p"].iloc[0] == pytest.approx(0.0625)
    assert t.verdict.iloc[0].startswith("not resolved")


def test_item7_primary_cell_decides_and_secondary_cells_are_one_family():
    rng = np.random.default_rng(2)
    rows = []
    for s in range(6):
        for cell, gap in (("p", 0.10), *((f"s{i}", 0.0) for i in range(6))):
            rows += [{"cell": cell, "cfg": "a", "seed": s, "auc": 0.6 + gap + rng.normal(0, 0.01), "auc_se": 0.001},
                     {"cell": cell, "cfg": "b", "seed": s, "auc": 0.6 + rng.normal(0, 0.01), "auc_se": 0.001}]
    comps = [V.Comparison("primary", {"cell": "p", "cfg": "a"}, {"cell": "p", "cfg": "b"}, "higher")]
    comps += [V.Comparison(f"secondary {i}", {"cell": f"s{i}", "cfg": "a"}, {"cell": f"s{i}", "cfg": "b"}, "higher",
                           family="secondary") for i in range(6)]
    s, d = V.evaluate(pd.DataFrame(rows), [V.Claim("L", "A", "", "auc", tuple(comps))])
    assert s.loc["L", "our verdict"] == V.SUPPORTED and "of 6 secondary comparisons" in s.loc["L", "secondary"]
    sec = d[d.family == "secondary"]
    assert (sec["p (Holm)"] >= sec["p"]).all() and d.loc[d.family == "primary", "p (Holm)"].iloc[0] == \
        d.loc[d.family == "primary", "p"].iloc[0]          # the primary family has one member: no adjustment


def test_item9_structural_claims_and_planned_comparisons():
    df = _rows([-77.0, -77.2], [0.0, 0.0], metric="pool_zero_pct", se=0.5)
    cl = V.Claim("D5b", "D", "", "pool_zero_pct", (V.Comparison("magnitude", {"cfg": "a"}, {"cfg": "b"}, "equivalent",
                                                                 10.0, centre=-37.88),),
                 structural="max pooling passes the gradient to one input per window")
    v = V.evaluate(df, [cl])[0].loc["D5b", "our verdict"]
    assert v.startswith("structural (max pooling") and "magnitude: contradicted" in v
    # zero noise, zero effect: say what it is
    zero = _rows([0.0, 0.0], [0.0, 0.0], metric="input_zero_pct")
    cl0 = V.Claim("D5", "D", "", "input_zero_pct", _claim("lower").comparisons, equal_text="no zeros in either")
    assert V.evaluate(zero, [cl0])[0].loc["D5", "our verdict"] == "not resolved: no zeros in either"
    # a claim whose comparisons partly lack data is never plain "supported"
    big = _rows([0.9, 0.91, 0.92], [0.5, 0.51, 0.5], se=0.001)
    cl2 = V.Claim("P", "A", "", "auc", (V.Comparison("here", {"cfg": "a"}, {"cfg": "b"}, "higher"),
                                        V.Comparison("absent", {"cfg": "zz"}, {"cfg": "b"}, "higher")))
    assert V.evaluate(big, [cl2])[0].loc["P", "our verdict"] == "supported on 1 of 2 planned comparisons"


def test_item11_scoped_claims_carry_their_scope():
    df = _rows([10.0] * 3, [10.0] * 3, metric="step_alloc_mb")
    cl = V.Claim("B7", "B", "", "step_alloc_mb", _claim("lower", "step_alloc_mb").comparisons,
                 scope="CPU allocator, dense tensors")
    v = V.evaluate(df, [cl])[0].loc["B7", "our verdict"]
    assert v == f"scoped (CPU allocator, dense tensors): {V.CONTRADICTED}"


def test_one_alpha_the_verdict_reads_off_the_95_interval():
    """Supported ⇔ the 95% interval excludes 0 on the claim's side (lower/higher), lies inside ±margin
    (equivalent) or above the margin (above)."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(2, 6))
        a = rng.normal(0.6, 0.05, n)
        b = a - rng.normal(rng.normal(0, 0.05), 0.03, n)
        df = _rows(a, b, se=float(rng.uniform(0.001, 0.03)))
        for expect, margin in (("higher", None), ("lower", None), ("equivalent", 0.04), ("above", -0.02)):
            t = V.compare_claim(df, _claim(expect, margin=margin))
            lo, hi, v = t.ci_low.iloc[0], t.ci_high.iloc[0], t.verdict.iloc[0]
            inside = {"higher": lo > 0, "lower": hi < 0, "equivalent": -margin < lo and hi < margin if margin else 0,
                      "above": lo > (margin or 0)}[expect]
            assert (v == V.SUPPORTED) == bool(inside), (expect, lo, hi, v)


# ----------------------------------------------------------------------------- properties (Hypothesis)

finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
pos = st.floats(1e-4, 0.5, allow_nan=False, allow_infinity=False)
expects = st.sampled_from([("lower", None), ("higher", None), ("equivalent", 0.05), ("above", -0.03),
                           ("below", 0.03)])
STRENGTH = {V.SUPPORTED: 2, V.CONTRADICTED: 2}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _strength(v: str) -> int:
    return STRENGTH.get(v, 0)


@SETTINGS
@given(st.lists(finite, min_size=1, max_size=6), pos, expects)
def test_identical_tables_are_never_supported_as_different(values, se, ex):
    expect, margin = ex
    df = _rows(values, values, se=se)
    v = _verdict(df, _claim(expect, margin=margin))
    if expect in ("lower", "higher"):
        assert v != V.SUPPORTED


@SETTINGS
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), pos)
def test_swapping_a_and_b_flips_lower_and_higher(pairs, se):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    t1 = V.compare_claim(_rows(a, b, se=se), _claim("lower"))
    t2 = V.compare_claim(_rows(b, a, se=se), _claim("higher"))
    assert t1.verdict.iloc[0] == t2.verdict.iloc[0]
    assert t1["p"].iloc[0] == pytest.approx(t2["p"].iloc[0], abs=1e-12, nan_ok=True)


@SETTINGS
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), pos, st.floats(1.0, 20.0), expects)
def test_more_noise_never_strengthens_a_verdict(pairs, se, factor, ex):
    """Raising the test-set noise (same differences) never lowers p nor makes supported/contradicted appear."""
    expect, margin = ex
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    t1 = V.compare_claim(_rows(a, b, se=se), _claim(expect, margin=margin))
    t2 = V.compare_claim(_rows(a, b, se=se * factor), _claim(expect, margin=margin))
    p1, p2 = t1["p"].iloc[0], t2["p"].iloc[0]
    if np.isfinite(p1):
        assert p2 >= p1 - 1e-12
    assert _strength(t2.verdict.iloc[0]) <= _strength(t1.verdict.iloc[0])


@SETTINGS
@given(st.lists(st.tuples(finite, finite), min_size=2, max_size=6), pos, st.floats(1.0, 10.0), expects)
def test_more_seed_spread_never_strengthens_a_verdict(pairs, se, factor, ex):
    """Scaling every pair's deviation from the mean difference up (same mean) never lowers p."""
    expect, margin = ex
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    d = a - b
    a2 = b + d.mean() + factor * (d - d.mean())
    t1 = V.compare_claim(_rows(a, b, se=se), _claim(expect, margin=margin))
    t2 = V.compare_claim(_rows(a2, b, se=se), _claim(expect, margin=margin))
    p1, p2 = t1["p"].iloc[0], t2["p"].iloc[0]
    if np.isfinite(p1):
        assert p2 >= p1 - 1e-9
    assert _strength(t2.verdict.iloc[0]) <= _strength(t1.verdict.iloc[0])


@SETTINGS
@given(st.lists(st.floats(-0.049, 0.049), min_size=1, max_size=6), pos)
def test_a_difference_inside_the_margin_is_never_contradicted_for_equivalence(ds, se):
    d = np.array(ds)
    v = _verdict(_rows(0.5 + d, np.full(len(d), 0.5), se=se), _claim("equivalent", margin=0.05))
    if abs(d.mean()) < 0.05:
        assert v != V.CONTRADICTED


@SETTINGS
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), pos, st.floats(0.01, 1000.0), expects)
def test_rescaling_the_unit_leaves_the_verdict(pairs, se, k, ex):
    expect, margin = ex
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    assume(np.array_equal(a == b, k * a == k * b) and np.all(np.isfinite(k * a)))   # float rounding, not the rule
    t1 = V.compare_claim(_rows(a, b, se=se), _claim(expect, margin=margin))
    t2 = V.compare_claim(_rows(k * a, k * b, se=k * se), _claim(expect, margin=None if margin is None else k * margin))
    kind = lambda v: v.split(" = ")[0]     # noqa: E731  ("a = b = <value> in every pair" names the value)
    assert kind(t1.verdict.iloc[0]) == kind(t2.verdict.iloc[0])


@SETTINGS
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value(ps):
    p = np.array(ps, float)
    h = V.holm(p)
    ok = ~np.isnan(p)
    assert np.all(np.isnan(h[~ok]))
    assert np.all(h[ok] >= p[ok] - 1e-15) and np.all(h[ok] <= 1.0)


@SETTINGS
@given(st.integers(20, 200), st.integers(0, 10_000))
def test_paired_accuracy_se_is_mcnemars_and_never_above_the_independent_floor_for_nested_outcomes(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.6
    b = a & (rng.random(n) < 0.7)          # nested: b right ⇒ a right
    n10, n01 = (a & ~b).sum() + 0.5, (~a & b).sum() + 0.5
    want = ((n10 + n01) / n - ((n10 - n01) / n) ** 2) / n
    assert M.paired_accuracy_var(a, b) == pytest.approx(want)
    if (a != b).sum() >= 3:    # nested outcomes: the paired variance is below the independent one
        assert M.paired_accuracy_var(a, b) <= M.paired_accuracy_var(a) + M.paired_accuracy_var(b)


def test_item6_tpr_noise_includes_the_threshold_estimated_from_the_non_members():
    """The spread of TPR at 1% FPR over fresh data sets (Monte Carlo truth) is about twice the binomial SE over the
    members alone, because the threshold is itself estimated from 1% of the non-members; the bootstrap over members
    and non-members recovers it."""
    rng = np.random.default_rng(0)
    n, fpr = 2000, 0.01
    y = np.r_[np.ones(n, int), np.zeros(n, int)]
    draws = [M.tpr_at_fpr(y, rng.normal(size=2 * n) + 1.0 * y, fpr) for _ in range(300)]
    truth = float(np.std(draws, ddof=1))
    s = rng.normal(size=2 * n) + 1.0 * y
    t = M.tpr_at_fpr(y, s, fpr)
    binomial = np.sqrt(t * (1 - t) / n)
    boot = float(M.bootstrap_tpr_se(y, s, [fpr], n_boot=300, seed=1)[0])
    assert truth > 1.5 * binomial                       # the old floor understated the noise
    assert 0.7 * truth < boot < 1.4 * truth             # the bootstrap does not
