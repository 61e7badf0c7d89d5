"""lib.attacks.claims: paper B's claims as data, judged by lib.attacks.verdicts on planted results."""
import numpy as np
import pandas as pd

from lib.attacks import claims as CL
from lib.attacks import verdicts as V
from lib.attacks.metrics import auc_se_hanley

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
