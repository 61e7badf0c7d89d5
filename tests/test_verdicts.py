"""lib.claims.verdicts: one rule for every paper. Each test below failed on the code before the module existed
(membership.compare / temporal.verdict): a zero-width interval from one-example accuracy steps read as
"supported", "similar" claims read as confirmed whenever an interval held 0, no multiplicity adjustment, and a
TPR reported as a number where the non-member count could not resolve it."""
import numpy as np
import pandas as pd
import pytest

from lib.claims import metrics as M
from lib.claims import verdicts as V
from lib.attacks.mia import shadow_attack


def _rows(values_a, values_b, metric="auc", **extra):
    rows = []
    for s, (a, b) in enumerate(zip(values_a, values_b)):
        rows.append({"cfg": "a", "seed": s, metric: a, **extra})
        rows.append({"cfg": "b", "seed": s, metric: b, **extra})
    return pd.DataFrame(rows)


def _claim(expect, metric="auc", margin=None, n=1):
    comps = [V.Comparison(f"c{i}", {"cfg": "a"}, {"cfg": "b"}, expect, margin) for i in range(n)]
    return V.Claim("X", "A", "a vs b", metric, tuple(comps))


def test_one_example_accuracy_steps_are_not_support():
    """Iris: 30 test examples. Three seeds each one example (3.33 points) apart: sd = 0. The old rule called this
    'supported' (zero-width interval, p = 0); the binomial test-set floor does not."""
    df = _rows([96.67, 93.33, 100.0], [93.33, 90.0, 96.67], metric="test_acc", n_eval=30)
    t = V.compare_claim(df, _claim("higher", "test_acc"))
    assert t["noise"].iloc[0] == "test set" and t["se test set"].iloc[0] > 2.0
    assert t.verdict.iloc[0].startswith("not resolved")
    # a large, consistent difference on a big test set is still found
    big = _rows([95.0, 95.2, 94.9], [90.0, 90.1, 89.8], metric="test_acc", n_eval=10000)
    assert V.compare_claim(big, _claim("higher", "test_acc")).verdict.iloc[0] == V.SUPPORTED


def test_identical_differences_have_no_p_value_shortcut():
    out = M.paired_comparison([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
    assert np.isnan(out["p_value"]) and out["exceeds_noise"] is False
    df = _rows([0.6, 0.7, 0.8], [0.5, 0.6, 0.7], metric="wall_seconds")   # no test-set floor known
    assert V.compare_claim(df, _claim("higher", "wall_seconds")).verdict.iloc[0].startswith("not resolved")
    exact = _rows([10.0, 10.0, 10.0], [8.0, 8.0, 8.0], metric="step_alloc_mb")   # deterministic measure
    assert V.compare_claim(exact, _claim("higher", "step_alloc_mb")).verdict.iloc[0] == V.SUPPORTED
    assert V.compare_claim(exact, _claim("lower", "step_alloc_mb")).verdict.iloc[0] == V.CONTRADICTED
    same = _rows([10.0] * 3, [10.0] * 3, metric="step_alloc_mb")    # exactly the same bytes: no reduction at all
    assert V.compare_claim(same, _claim("lower", "step_alloc_mb")).verdict.iloc[0] == V.CONTRADICTED
    assert V.compare_claim(same, _claim("higher", "step_alloc_mb")).verdict.iloc[0] == V.CONTRADICTED


def test_auc_floor_applies_to_every_paper():
    """A 0.0044 AUC step on 15 × 15 examples, identical over seeds, is below the Hanley floor."""
    df = _rows([0.6044] * 3, [0.6] * 3, auc_se_hanley=M.auc_se_hanley(0.6, 15, 15))
    t = V.compare_claim(df, _claim("higher"))
    assert t.verdict.iloc[0] == "not resolved: same direction, within noise"


def test_similar_needs_equivalence_not_an_interval_that_holds_zero():
    rng = np.random.default_rng(1)
    a, b = 0.6 + rng.normal(0, 0.05, 2), 0.6 + rng.normal(0, 0.05, 2)   # 2 noisy seeds: the interval holds 0
    t = V.compare_claim(_rows(a, b), _claim("equivalent", margin=0.03))
    assert t.verdict.iloc[0] == "not resolved: interval wider than the equivalence margin"
    assert V.claim_verdict(t).startswith("not resolved: noise wider than the equivalence margin")
    tight = _rows(0.6 + rng.normal(0, 0.002, 8), 0.6 + rng.normal(0, 0.002, 8))
    assert V.compare_claim(tight, _claim("equivalent", margin=0.03)).verdict.iloc[0] == V.SUPPORTED
    far = _rows(0.7 + rng.normal(0, 0.002, 8), 0.6 + rng.normal(0, 0.002, 8))
    assert V.compare_claim(far, _claim("equivalent", margin=0.03)).verdict.iloc[0] == V.CONTRADICTED


def test_holm_within_a_claim():
    assert np.allclose(V.holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan], equal_nan=True)
    # five comparisons, each alone significant at 5% (p ≈ 0.04), together not
    rows = []
    for i in range(5):
        for s, d in enumerate([0.04, 0.1, 0.16, 0.2]):
            rows += [{"cfg": f"a{i}", "seed": s, "auc": 0.5 + d}, {"cfg": f"b{i}", "seed": s, "auc": 0.5}]
    df = pd.DataFrame(rows)
    raw = V.p_values(V.paired(df, "auc", {"cfg": "a0"}, {"cfg": "b0"}), V.Comparison("x", {}, {}, "higher"), "auc")[0]
    assert 0.001 < raw < 0.05
    claim = V.Claim("H", "A", "", "auc", tuple(V.Comparison(f"c{i}", {"cfg": f"a{i}"}, {"cfg": f"b{i}"}, "higher")
                                               for i in range(5)))
    t = V.compare_claim(df, claim)
    assert (t["p"] < 0.05).all() and not (t["p (Holm)"] < 0.05).all()


def test_claim_verdict_counts_opposite_directions():
    rows = []
    for s in range(4):
        rows += [{"cfg": "a", "seed": s, "auc": 0.70 + 0.001 * s}, {"cfg": "b", "seed": s, "auc": 0.60},
                 {"cfg": "c", "seed": s, "auc": 0.59 + 0.03 * (s % 2)}, {"cfg": "d", "seed": s, "auc": 0.60}]
    claim = V.Claim("O", "B", "", "auc", (V.Comparison("strong", {"cfg": "a"}, {"cfg": "b"}, "higher"),
                                          V.Comparison("weak", {"cfg": "c"}, {"cfg": "d"}, "lower")))
    summary, details = V.evaluate(pd.DataFrame(rows), [claim])
    v = summary.loc["O", "our verdict"]
    assert v.startswith("mixed") or v.startswith("partly")
    assert "1/2 point the opposite way" in v


def test_one_seed_and_no_data():
    df = _rows([0.7], [0.6])
    assert V.claim_verdict(V.compare_claim(df, _claim("higher"))) == "not testable: one seed per configuration"
    assert V.claim_verdict(V.compare_claim(df.iloc[0:0], _claim("higher"))) == "not tested at this scale"
    assert V.evaluate(df, [V.Claim("G", "B", "", "gpu_w", note="not testable here: no GPU")])[0].loc["G", "our verdict"] \
        == "not testable here: no GPU"


def test_comparison_needs_margin_exactly_when_it_uses_one():
    with pytest.raises(ValueError, match="margin"):
        V.Comparison("x", {}, {}, "equivalent")
    with pytest.raises(ValueError, match="margin"):
        V.Comparison("x", {}, {}, "lower", 0.1)
    with pytest.raises(ValueError, match="expect"):
        V.Comparison("x", {}, {}, "similar")


def test_non_inferiority_margin():
    rng = np.random.default_rng(3)
    # PB 0.5 points below Rate on a large test set: within a 2-point non-inferiority margin
    df = _rows(90 + rng.normal(0, 0.1, 4), 90.5 + rng.normal(0, 0.1, 4), metric="test_acc", n_eval=20000)
    assert V.compare_claim(df, _claim("above", "test_acc", margin=-2.0)).verdict.iloc[0] == V.SUPPORTED
    df = _rows(80 + rng.normal(0, 0.1, 4), 90 + rng.normal(0, 0.1, 4), metric="test_acc", n_eval=20000)
    assert V.compare_claim(df, _claim("above", "test_acc", margin=-2.0)).verdict.iloc[0] == V.CONTRADICTED


# ----------------------------------------------------------------------------- TPR at an FPR N⁻ cannot resolve

def test_chance_tpr_and_resolvability():
    assert M.chance_tpr(0.01, 15) == pytest.approx(1 / 16)
    assert M.chance_tpr(0.01, 1000) == pytest.approx(11 / 1001)
    assert not M.tpr_resolvable(0.01, 57) and M.tpr_resolvable(0.01, 1000) and not M.tpr_resolvable(0.001, 1000)
    assert M.tpr_status(0.01, 15).startswith("not resolvable (N⁻ = 15")


def test_chance_tpr_matches_a_random_scorer():
    rng = np.random.default_rng(0)
    n_neg, tprs = 15, []
    for _ in range(4000):
        y = np.r_[np.ones(15), np.zeros(n_neg)]
        tprs.append(M.tpr_at_fpr(y, rng.random(30), 0.01))
    assert np.mean(tprs) == pytest.approx(M.chance_tpr(0.01, n_neg), abs=0.01)


def test_attack_rows_never_report_an_unresolvable_tpr():
    rng = np.random.default_rng(0)
    f = lambda n, mu: rng.normal(mu, 1, (n, 3))   # noqa: E731
    res = shadow_attack(f(15, 1), f(15, 0), f(15, 1), f(15, 0), seed=0, n_boot=10)
    row = res.to_row()
    assert row["n_test_out"] == 15
    assert np.isnan(row["tpr_at_1pct"]) and np.isnan(row["tpr_at_0_1pct"])
    assert row["tpr_at_1pct_status"].startswith("not resolvable (N⁻ = 15")
    assert row["tpr_at_1pct_chance"] == pytest.approx(1 / 16)
    big = shadow_attack(f(1200, 1), f(1200, 0), f(1000, 1), f(1000, 0), seed=0, n_boot=10, max_train=600).to_row()
    assert not np.isnan(big["tpr_at_1pct"]) and big["tpr_at_1pct_status"] == "" and np.isnan(big["tpr_at_0_1pct"])


def test_one_sample_against_a_margin_with_its_own_floor():
    """Transfer (paper B, B9): the drop itself against 1 point; its test-set SE is a column `drop_se`."""
    df = pd.DataFrame({"encoding": "pb", "seed": range(3), "drop": [0.2, 0.1, 0.3], "drop_se": 0.05})
    c = V.Claim("B9", "B", "", "drop", (V.Comparison("pb", {"encoding": "pb"}, None, "below", 1.0),), table="transfer")
    summary, details = V.evaluate({"transfer": df}, [c])
    assert summary.loc["B9", "our verdict"] == V.SUPPORTED and details["noise"].iloc[0] == "seeds"
    df["drop_se"] = 3.0                                   # a tiny test set: the same drops prove nothing
    assert V.evaluate({"transfer": df}, [c])[0].loc["B9", "our verdict"].startswith("not resolved")
    assert V.evaluate({"results": df}, [c])[0].loc["B9", "our verdict"] == "not tested at this scale"


def _cells(verdicts, pairs=3, opposite=()):
    return pd.DataFrame({"verdict": list(verdicts), "family": "primary", "pairs": pairs,
                         "leans opposite": [i in opposite for i in range(len(verdicts))]})


@pytest.mark.parametrize("verdicts, pairs, text, cls", [
    ([V.SUPPORTED] * 2, 3, V.SUPPORTED, "supported"),
    ([V.CONTRADICTED], 3, V.CONTRADICTED, "contradicted"),
    ([V.SUPPORTED, "no data"], 3, "supported on 1 of 2 planned comparisons", "partly supported"),
    ([V.CONTRADICTED, "no data"], 3, "contradicted on 1 of 2 planned comparisons", "partly contradicted"),
    ([V.SUPPORTED, "not resolved: same direction, within noise"], 3,
     "partly supported (1/2 beyond noise, none contradicted)", "partly supported"),
    ([V.CONTRADICTED, "not resolved: no difference"], 3,
     "partly contradicted (1/2 beyond noise, none supported)", "partly contradicted"),
    ([V.SUPPORTED, V.CONTRADICTED], 3, "mixed (1/2 supported, 1/2 contradicted)", "mixed"),
    (["not resolved: interval wider than the equivalence margin"], 3,
     "not resolved: noise wider than the equivalence margin", "not resolved"),
    (["not resolved: a = b = 0 in every pair"] * 2, 3, "not resolved: a = b = 0 in every pair", "not resolved"),
    (["not resolved: same direction, within noise", "no data"], 3,
     "not resolved: within noise; 1 of 2 planned comparison(s) without data", "not resolved"),
    (["no data"], 3, "not tested at this scale", "not tested"),
    (["1 seed: no test", "no data"], 1, "not testable: one seed per configuration", "not tested"),
    ([V.SUPPORTED], 1, f"{V.SUPPORTED}; {V.ONE_SEED}", "supported"),
])
def test_every_verdict_carries_its_class(verdicts, pairs, text, cls):
    """The class is made with the text (issue 22): nothing downstream parses the verdict's wording."""
    assert V.tally(_cells(verdicts, pairs)) == (text, cls) and cls in V.CLASSES
    assert V.judge(_cells(verdicts, pairs)) == (text, cls)


def test_structural_scoped_and_noted_claims_carry_their_class():
    t = _cells([V.CONTRADICTED])
    s = V.Claim("S", "D", "", "auc", structural="max pooling")
    assert V.judge(t, claim=s) == ("structural (max pooling); the paper's magnitude: contradicted", "structural")
    sc = V.Claim("B7", "B", "", "mb", scope="CPU allocator")
    assert V.judge(t, claim=sc) == ("scoped (CPU allocator): contradicted", "scoped")
    assert V.judge(t, "not testable here: no GPU") == ("not testable here: no GPU", "not tested")
    noted = V.Claim("C11", "C", "", "tpr", note="supported (Levene …)", note_class="supported")
    s, _ = V.evaluate(pd.DataFrame(), [noted, V.Claim("G", "B", "", "gpu_w", note="not testable here: no GPU")])
    assert s.loc["C11", "verdict class"] == "supported" and s.loc["G", "verdict class"] == "not tested"
    with pytest.raises(ValueError, match="note_class"):
        V.Claim("X", "A", "", "auc", note="…", note_class="fine")


def test_the_paired_statistics_are_the_verdicts():
    """lib.claims.paired holds the statistics; lib.claims.verdicts re-exports the names other code imports."""
    from lib.claims import paired as P
    for name in ("ALPHA", "LEVEL", "Outcome", "Examples", "paired", "accuracy_se", "test_set_se", "_select"):
        assert getattr(V, name) is getattr(P, name)
