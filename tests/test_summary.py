"""lib.report.summary (notebook 99): verdict classes, collecting the stages' claims tables, the clearest evidence."""
import json

import pandas as pd
import pytest

from lib.attacks import verdicts as V
from lib.report import summary as SU


@pytest.mark.parametrize("text, cls", [
    (V.SUPPORTED, "supported"), ("contradicted; 1/1 point the opposite way", "contradicted"),
    ("partly supported (5/6 beyond noise, none contradicted)", "partly supported"),
    ("partly contradicted (1/2 beyond noise, none supported)", "partly contradicted"),
    ("mixed (1/3 supported, 1/3 contradicted)", "mixed"), ("not resolved: within noise", "not resolved"),
    ("not tested at this scale", "not tested"), ("not testable here: needs several calibration runs", "not tested"),
])
def test_verdict_classes(text, cls):
    assert SU.verdict_class(text) == cls


def _stage(root, name, claims, comps, detail="claims_comparisons.csv", scale="quick"):
    d = root / name
    d.mkdir(parents=True)
    pd.DataFrame(claims).to_csv(d / "claims.csv", index=False)
    pd.DataFrame(comps).to_csv(d / detail, index=False)
    (d / "metrics.json").write_text(json.dumps({"scale": scale}))


def test_collect_and_evidence(tmp_path):
    _stage(tmp_path, "s1", [dict(claim="X1", paper="X", **{"paper says": "a > b", "our verdict": V.SUPPORTED,
                                                          "comparisons": 2, "shown in": "s1"})],
           [dict(claim="X1", comparison="weak", a=1.0, b=0.9, **{"a − b": 0.1, "ci_low": -0.1, "ci_high": 0.3,
                                                                 "p (Holm)": 0.4}),
            dict(claim="X1", comparison="clear", a=2.0, b=1.0, **{"a − b": 1.0, "ci_low": 0.5, "ci_high": 1.5,
                                                                  "p (Holm)": 0.001})])
    _stage(tmp_path, "s2", [dict(claim="Y1", paper="Y", **{"paper says": "≈", "our verdict": "not tested at this scale",
                                                          "comparisons": 0, "shown in": "s2"})],
           [dict(claim="Y1", comparison="none", a=None, b=None, **{"a − b": None, "ci_low": None, "ci_high": None,
                                                                   "p (Holm)": None})],
           detail="claims_detail.csv", scale="smoke")
    claims, comps = SU.collect(tmp_path, ["s1", "s2"])
    assert list(claims.stage) == ["s1", "s2"] and list(claims.scale) == ["quick", "smoke"]
    assert list(claims["verdict class"]) == ["supported", "not tested"]
    ev = SU.evidence(comps).set_index("claim")
    assert ev.loc["X1", "clearest comparison"] == "clear" and ev.loc["X1", "comparisons with data"] == 2
    assert ev.loc["Y1", "comparisons with data"] == 0 and ev.loc["Y1", "clearest comparison"] == ""
    c = SU.counts(claims)
    assert c.loc["X", "supported"] == 1 and c.loc["Y", "not tested"] == 1
    with pytest.raises(FileNotFoundError, match="s3"):
        SU.collect(tmp_path, ["s1", "s3"])


def test_paper_numbers_come_from_the_transcribed_tables():
    from lib.report import paper
    nums = paper.claim_numbers()
    d = paper.paper_d()
    t2 = d[(d.table == 2) & (d.dataset == "cifar10") & (d.model == "SEW-ResNet18")].iloc[0]
    assert f"{t2.pgd:.2f}" in nums["D1"] and "0.02" in nums["D1"]          # vanilla VGG-11's PGD, Table 1
    assert "-8.61" in nums["D3"] and "+1.98" in nums["D4"]
    c = paper.paper_c()
    fp = c[(c.method == "full precision") & (c.metric == "tpr_at_0_1pct")].value.iloc[0]
    assert f"{fp:g}" in nums["C5"]
    assert set(nums) <= {f"C{i}" for i in range(1, 12)} | {f"D{i}" for i in range(1, 7)} | {"D5b"}
