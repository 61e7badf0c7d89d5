"""lib.claims.registry: papers A's and B's claims as data, judged by lib.claims.verdicts on planted results; paper A's
comparisons are those its claims had before they moved out of lib.stages.membership (tests/paper_a_claims_golden.json,
written by the code of commit 5f90922)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.claims import registry as CL
from lib.claims import verdicts as V
from lib.claims.metrics import auc_se_hanley

MARGINS = {"auc": 0.03, "test_acc": 2.0}


def _results(pb_auc_shift, n_seeds=4, n_test=2000):
    rng = np.random.default_rng(0)
    rows = []
    for ds in ("mnist", "iris"):
        for seed in range(n_seeds):
            for enc, shift, acc in (("regular_rate", 0.0, 90.0), ("poisson_burst", pb_auc_shift, 89.5),
                                    ("delayed_burst", 0.0, 70.0)):
                auc = 0.7 + shift + rng.normal(0, 0.003)
                rows.append({"dataset": ds, "encoding": enc, "seed": seed, "auc": auc, "test_acc": acc + rng.normal(0, .2),
                             "auc_se_hanley": auc_se_hanley(auc, n_test, n_test), "n_eval": 20000})
    return pd.DataFrame(rows)


def test_planted_poisson_burst_gain_is_found_and_its_absence_is_not():
    cl = CL.paper_b(["mnist", "iris"], ["regular_rate", "poisson_burst", "delayed_burst"], "regular_rate", MARGINS,
                    trace=False)
    ids = [c.id for c in cl]
    assert ids == ["B1", "B2", "B3", "B4", "B6", "B7", "B8", "B9", "B10", "B11"]
    s, d = V.evaluate({"results": _results(-0.05)}, cl)
    assert s.loc["B1", "our verdict"] == "supported"
    assert s.loc["B2", "our verdict"] == "supported"          # 0.5 points below, within the 2-point margin
    assert s.loc["B4", "our verdict"] == "supported"          # Delayed-Burst 20 points lower
    assert s.loc["B6", "our verdict"].startswith("not testable here")
    assert s.loc["B9", "our verdict"] == "not tested at this scale"   # no transfer table given
    s, _ = V.evaluate({"results": _results(0.0)}, cl)
    assert s.loc["B1", "our verdict"].startswith("not resolved")


def test_sweep_points_become_comparisons():
    cl = CL.paper_b(["iris"], ["regular_rate", "poisson_burst"], "regular_rate", MARGINS,
                    sweep=[("iris", "poisson_burst", "tau", 2.0), ("iris", "delayed_burst", "lam", 1.0)])
    b11 = next(c for c in cl if c.id == "B11")
    assert [c.label for c in b11.comparisons] == ["iris: PB tau=2 vs regular_rate"] and b11.table == "sweep"


# ----------------------------------------------------------------------------- paper A

GOLDEN_A = json.loads((Path(__file__).parent / "paper_a_claims_golden.json").read_text())
BUILDERS_A = {"quantization": CL.paper_a_quantization, "threshold_accuracy": CL.paper_a_threshold_accuracy,
              "surrogates": CL.paper_a_surrogates}


def _paper_a(builder, args, kwargs, margins):
    """The golden file's call: positional args, then margins, then keywords (kinds as a tuple, as notebooks pass it)."""
    kw = {k: tuple(v) if k == "kinds" else v for k, v in kwargs.items()}
    return BUILDERS_A[builder](*args, margins, **kw)


@pytest.mark.parametrize("grid", sorted(GOLDEN_A["grids"]))
def test_paper_a_claims_are_the_comparisons_they_were(grid):
    """Every claim id, wording, metric and comparison (label, filters a and b, expectation, margin) as before the move,
    in the same order: the verdict tables of 02–04 do not change."""
    g = GOLDEN_A["grids"][grid]
    got = _paper_a(g["builder"], g["args"], g["kwargs"], GOLDEN_A["margins"])
    assert [c.id for c in got] == [c["id"] for c in g["claims"]]
    for c, want in zip(got, g["claims"]):
        assert (c.paper, c.text, c.metric, c.pair_on, c.table, c.note) == ("A", want["text"], want["metric"], ("seed",),
                                                                           "results", ""), c.id
        assert c.source.startswith("paper A §V-") and c.shown_in[:2] in ("02", "03", "04"), c.id
        comps = [[x.label, x.a, x.b, x.expect, x.margin] for x in c.comparisons]
        # json text, so that 1 and 1.0 or True and 1 would differ
        assert json.dumps(comps, ensure_ascii=False) == json.dumps(want["comparisons"], ensure_ascii=False), c.id


def test_paper_a_similar_needs_a_margin_and_takes_it_from_the_metric():
    with pytest.raises(ValueError, match=r"SNN: bit widths alike.*`auc`.*params\.yaml → verdicts\.margins"):
        CL.paper_a_quantization("weight", ["iris"], [8, 2], {"test_acc": 2.0})
    with pytest.raises(ValueError, match=r"θ barely matters.*`test_acc`"):
        CL.paper_a_threshold_accuracy(["iris"], [8, 2], {"auc": 0.03})
    alike = next(c for c in CL.paper_a_quantization("weight", ["iris"], [8, 4, 2], {"auc": 0.05})
                 if c.id == "SNN: bit widths alike")
    assert {(c.expect, c.margin) for c in alike.comparisons} == {("equivalent", 0.05)}
    assert CL.paper_a_surrogates(["iris"], ["atan", "triangular"], None)    # no equivalence claims: no margin needed
    assert CL.comparison("x", {}, {}, "lower", "auc") == V.Comparison("x", {}, {}, "lower")


def test_planted_paper_a_results_are_judged():
    """Weight quantization planted to lower the AUC of every quantized model by 0.1 with SNN bit widths alike."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in range(4):
        for kind, base in (("ann", 0.75), ("snn", 0.65)):
            for method, shift in (("full precision", 0.0), ("w=8", -0.1), ("w=2", -0.1)):
                auc = base + shift + rng.normal(0, 0.002)
                rows.append({"dataset": "iris", "kind": kind, "method": method, "seed": seed, "auc": auc,
                             "auc_se_hanley": auc_se_hanley(auc, 5000, 5000), "test_acc": 90.0, "n_eval": 20000})
    cl = CL.paper_a_quantization("weight", ["iris"], [8, 2], {"auc": 0.03, "test_acc": 2.0})
    s, d = V.evaluate(pd.DataFrame(rows), cl)
    assert list(s.columns) == ["paper", "paper says", "metric", "comparisons", "our verdict", "verdict class",
                              "secondary", "shown in"]
    assert s.loc["ANN: quantized < FP", "our verdict"] == s.loc["SNN: quantized < FP", "our verdict"] == "supported"
    assert s.loc["SNN: bit widths alike", "our verdict"] == "supported"
    assert s.loc["SNN < ANN", "our verdict"] == "supported"
    assert s.loc["ANN: 2-bit costs accuracy", "our verdict"].startswith("not resolved")   # identical accuracies
