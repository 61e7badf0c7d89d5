"""Privacy at matched utility (lib.claims.matched) on planted tables: the baseline curve is read at the defence's
accuracy (interpolated, never extrapolated), and the verdict follows the planted leakages through the shared verdict
rules — supported, contradicted, not bracketed, and never stronger with more noise."""
import numpy as np
import pandas as pd
import pytest

from lib.claims import matched as MU
from lib.claims import verdicts as V

DP = pd.DataFrame({"setting": ["dp eps1", "dp eps8", "dp noiseless"], "test_acc": [50.0, 70.0, 90.0],
                   "leak": [0.10, 0.30, 0.50], "leak_se": [0.01, 0.02, 0.03]})
WD = pd.DataFrame({"setting": ["wd 1e-2", "wd 1e-4"], "test_acc": [60.0, 92.0], "leak": [0.15, 0.55],
                   "leak_se": [0.01, 0.01]})


def test_the_curve_is_interpolated_between_the_bracketing_points_and_never_extrapolated():
    c = MU.curve(DP)
    at = MU.at_accuracy(c, 80.0)
    assert at["status"] == "bracketed" and at["leak"] == pytest.approx(0.40) and at["se"] == pytest.approx(0.025)
    assert (at["acc_lo"], at["acc_hi"]) == (70.0, 90.0) and at["slope"] == pytest.approx(0.01)
    assert MU.at_accuracy(c, 50.0)["leak"] == pytest.approx(0.10)           # a curve point itself
    out = MU.at_accuracy(c, 95.0)
    assert np.isnan(out["leak"]) and out["status"].startswith("not bracketed")
    with pytest.raises(ValueError, match="two points"):
        MU.curve(DP.iloc[:1])
    with pytest.raises(ValueError, match="leak_se"):
        MU.curve(DP.drop(columns="leak_se"))


def _defences(**se):
    return pd.DataFrame({"setting": ["snn", "quantized", "too accurate"], "test_acc": [80.0, 60.0, 95.0],
                         "leak": [0.20, 0.35, 0.10],
                         "leak_se": [se.get("snn", 0.01), se.get("quantized", 0.01), 0.01]})


def test_verdicts_follow_the_planted_leakage_at_matched_accuracy():
    summary, details, info = MU.judge(_defences(), {"DP-SGD": DP})
    v = summary["our verdict"]
    assert v["snn at matched utility"].startswith(V.SUPPORTED)              # 0.20 vs DP's 0.40 at 80%
    assert v["quantized at matched utility"].startswith(V.CONTRADICTED)     # 0.35 vs DP's 0.20 at 60%
    assert v["too accurate at matched utility"].startswith("not tested")    # 95% is beyond the DP curve
    row = info[(info.defence == "snn")].iloc[0]
    assert row.baseline_leak == pytest.approx(0.40) and row.status == "bracketed"
    assert len(details) == 2 and list(details.verdict) == ["supported", "contradicted"]


def test_every_baseline_that_brackets_the_accuracy_is_a_comparison():
    summary, details, _ = MU.judge(_defences(), {"DP-SGD": DP, "weight decay": WD})
    snn = details[details.comparison.str.startswith("snn vs")]
    assert len(snn) == 2                                                      # DP and weight decay both bracket 80%
    assert summary.loc["snn at matched utility", "comparisons"] == 2


def test_more_noise_never_makes_the_verdict_stronger():
    order = {"supported": 2, "not resolved": 1}
    last = None
    for se in (0.01, 0.05, 0.1, 0.3):
        v = MU.judge(_defences(snn=se), {"DP-SGD": DP})[0]["our verdict"]["snn at matched utility"]
        strength = next((s for k, s in order.items() if v.startswith(k)), 0)
        assert last is None or strength <= last, (se, v)
        last = strength
    assert last < 2                                                           # the noisiest no longer supports it
