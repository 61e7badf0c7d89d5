"""Notebook 06's judgement and reading (lib.stages.ptq_privacy_tables) on small planted tables: which TPR the
claims are judged on, C11's spread test and verdict, C5's 'not testable' note, the claims table, Table I, the
BN-leak table, Fig. 3's table and the reading."""
import numpy as np
import pandas as pd
import pytest
from conftest import PTQ_PRIVACY_SEC

from lib.claims import verdicts as V
from lib.stages import ptq_privacy as PP, ptq_privacy_tables as PT

FP = PP.FULL_PRECISION


def test_judged_tpr_needs_ten_false_positives_per_target():
    per = pd.DataFrame({"method": [FP, FP, "rtn"], "n_nonmembers": [20000, 20000, 10]})
    assert PT.judged_tpr(per) == ("tpr_at_0_1pct", 20000)
    assert PT.judged_tpr(per.assign(n_nonmembers=[2500, 2500, 10])) == ("tpr_at_1pct", 2500)   # 0.1% · 2500 < 10


@pytest.mark.parametrize("wins,losses,verdict", [
    ([True, True], [False, False], "supported"), ([False, False], [True, True], "contradicted"),
    ([True, False], [False, True], "mixed"), ([True, False], [False, False], "partly supported"),
    ([False, False], [False, True], "partly contradicted"), ([False, False], [False, False], "not resolved")])
def test_spread_verdict_ladder(wins, losses, verdict):
    assert PT.spread_verdict(wins, losses) == verdict


def _runs(sd: dict, n_runs=5, targets=4, seed=0):
    """1.58-bit per-target rows (LiRA online) whose TPR varies over calibration runs with sd[method]."""
    rng = np.random.default_rng(seed)
    rows = [{"method": m, "bits": 1.58, "attack": "LiRA online", "target": t, "run": r,
             "tpr_at_1pct": 0.1 + 0.02 * t + rng.normal(0, s)}
            for m, s in sd.items() for t in range(targets) for r in range(n_runs)]
    rows += [{**r, "attack": "LiRA offline"} for r in rows] + [{**rows[0], "method": "rtn", "tpr_at_1pct": 9.0}]
    return pd.DataFrame(rows)


def test_c11_judges_the_within_target_spread():
    wide = _runs({"brecq": 0.05, "adaround": 0.002, "obc": 0.002})
    note = PT.c11_note(wide, "tpr_at_1pct", 5)
    assert note.startswith("supported (Levene on within-target deviations over 5 calibration runs")
    assert "vs adaround" in note and "vs obc" in note
    assert PT.c11_note(_runs({"brecq": 0.002, "adaround": 0.05, "obc": 0.05}), "tpr_at_1pct", 5).startswith(
        "contradicted")
    assert PT.c11_note(_runs({"brecq": 0.01, "adaround": 0.01}), "tpr_at_1pct", 5).startswith("not resolved")
    # the targets' own differences (0.02 apart) are not spread over runs: equal run noise is not resolved
    assert PT.c11_note(wide, "tpr_at_1pct", 2) == ""                       # fewer than 3 runs: not testable
    assert PT.c11_note(_runs({"adaround": 0.01, "obc": 0.05}), "tpr_at_1pct", 5) == ""   # no BRECQ


def _plain(fp_tpr, q_tpr):
    rows = [{"method": FP, "bits": 32, "attack": a, "tpr_at_0_1pct": fp_tpr, "tpr_at_1pct": fp_tpr, "test_acc": 80.0}
            for a in ("LiRA online", "LiRA offline")]
    rows += [{"method": m, "bits": 1.58, "attack": a, "tpr_at_0_1pct": q_tpr * f, "tpr_at_1pct": q_tpr * f,
              "test_acc": acc} for m, acc, f in (("rtn", 75.0, 3), ("brecq", 70.0, 1), ("obc", 66.0, 0.5),
                                                 ("adaround", 72.0, 2)) for a in ("LiRA online", "LiRA offline")]
    return pd.DataFrame(rows)


def test_c5_is_not_testable_when_a_tenfold_drop_is_below_chance():
    plain = _plain(0.05, 0.01)
    cl = pd.DataFrame({"method": [FP, FP], "tpr_at_1pct": [0.05, 0.05]})
    note = PT.c5_note(cl, plain, "tpr_at_1pct")                              # 0.05 / 10 < 1% FPR
    assert note.startswith("not testable on tpr_at_1pct") and "brecq LiRA online: ×5.0" in note
    assert "rtn" not in note.split("divided by 1.58-bit's:")[1]
    assert PT.c5_note(cl.assign(tpr_at_1pct=0.5), plain, "tpr_at_1pct") == ""          # 0.05 ≥ 0.01: testable
    assert PT.c5_note(cl.assign(tpr_at_1pct=np.nan), plain, "tpr_at_1pct") == ""       # no full precision: no note


def test_claims_table_adds_accuracy_over_chance():
    per = pd.DataFrame({"method": [FP, "obc"], "bn_source": [np.nan, "members"], "test_acc": [80.0, 12.0],
                        "n_eval": [1000, 1000]})
    t = PT.claims_table(per, 10)
    assert list(t.bn_source) == ["", "members"] and list(t.acc_over_chance) == [70.0, 2.0]
    assert np.allclose(t.acc_over_chance_se, V.accuracy_se(per.test_acc, per.n_eval)) and t.acc_over_chance_se.iloc[0] > 1
    assert "acc_over_chance" not in per                                      # the per-target table is left as is


def test_table_one_and_the_bn_leak_table():
    per = pd.DataFrame([{"method": m, "bits": b, "attack": "LiRA online", "test_acc": acc, "target": t}
                        for m, b, acc in (("obc", 1.58, 60.0), ("obc", 1, 10.0)) for t, acc in ((0, acc), (1, acc + 2))])
    published = pd.DataFrame({"where": ["Table I", "Table I", "Fig. 3"], "bits": [1.58, 1, 2],
                              "method": ["obc", "obc", "obc"], "value": [55.123, 1.0, 0.3]})
    t1 = PT.table_one(per, published, "CIFAR-10")
    assert t1.loc["ours 1.58-bit (CIFAR-10)", "obc"] == "61.00 ± 1.41"
    assert t1.loc["paper C 1.58-bit (CIFAR-100)", "obc"] == "55.12" and len(t1) == 4
    leak = pd.DataFrame({"method": "obc", "bits": 2, "last_bits": 2, "attack": "LiRA online",
                         "bn_source": ["members", "train"], "test_acc": [50.0, 52.0], "auc": 0.6, "tpr_at_1pct": 0.1})
    assert PT.bn_leak_table(leak.iloc[:1], "tpr_at_1pct") is None
    assert PT.bn_leak_table(leak, "tpr_at_1pct")[("test_acc", "train")].iloc[0] == 52.0


def test_tpr_table_and_the_reading():
    plain = _plain(0.05, 0.01).assign(auc=0.6, n_nonmembers=5000, last_bits=lambda d: d.bits, bn_source="")
    models = pd.DataFrame({"members": [50, 52], "test_acc": [60.0, 62.0], "gap": [30.0, 28.0]})
    verdicts = pd.DataFrame({"claim": ["C1", "C5"], "our verdict": ["supported", "not resolved: within noise"],
                             "verdict class": ["supported", "not resolved"]})
    tab = PT.tpr_table(plain, pd.DataFrame(columns=["dataset", "metric", "method", "bits", "attack", "value"]))
    assert tab.loc[("brecq", 1.58, "LiRA online"), ["test_acc", "tpr_at_1pct"]].tolist() == [70.0, 0.01]   # tpr_table.csv
    P = PP.Params.from_section(PTQ_PRIVACY_SEC)
    text = PT.reading(P, models, plain, plain, verdicts, "tpr_at_1pct", "synthetic", "smoke")
    assert "**below chance**" in text                                        # 0.05 / 10 < 1%
    assert "BRECQ loses 10.0 accuracy points and divides TPR@0.1% by 5.0" in text
    assert "Spearman ρ between accuracy lost and the TPR@0.1% reduction factor is 1.00" in text and text.endswith("Verdicts at scale smoke: supported × 1, not resolved × 1.")


def test_c11_class_reaches_the_claim():
    """C11's verdict is made here, not by the engine: its class travels with its note (nothing re-parses text)."""
    wide = _runs({"brecq": 0.05, "adaround": 0.002, "obc": 0.002})
    cls, note = PT.c11_judgement(wide, "tpr_at_1pct", 5)
    assert cls == "supported" and note.startswith("supported")
    assert PT.c11_judgement(wide, "tpr_at_1pct", 2) == ("not tested", "")
    import lib.claims.registry as CL
    claims = CL.paper_c(["adaround", "brecq"], [4, 1.58], [], "tpr_at_1pct", {"auc": 0.02, "tpr_at_1pct": 0.01,
                        "tpr_at_0_1pct": 0.005, "test_acc": 1.0}, variance_note=note, variance_class=cls)
    c11 = next(c for c in claims if c.id == "C11")
    assert c11.note == note and c11.note_class == "supported"
