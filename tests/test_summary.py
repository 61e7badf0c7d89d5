"""lib.stages.summary (notebook 99): collecting the stages' claims tables (their verdict class read, never parsed
from the text), the clearest evidence, the reading, what moved."""
import json

import pandas as pd
import pytest

from lib.claims import verdicts as V
from lib.stages import summary as SU


def _stage(root, name, claims, comps, detail="claims_detail.csv", scale="quick"):
    d = root / name
    d.mkdir(parents=True)
    pd.DataFrame(claims).to_csv(d / "claims.csv", index=False)
    pd.DataFrame(comps).to_csv(d / detail, index=False)
    (d / "metrics.json").write_text(json.dumps({"scale": scale}))


def test_collect_and_evidence(tmp_path):
    _stage(tmp_path, "s1", [dict(claim="X1", paper="X", **{"paper says": "a > b", "our verdict": V.SUPPORTED,
                                                          "verdict class": "supported", "comparisons": 2, "shown in": "s1"})],
           [dict(claim="X1", comparison="weak", a=1.0, b=0.9, **{"a − b": 0.1, "ci_low": -0.1, "ci_high": 0.3,
                                                                 "p (Holm)": 0.4}),
            dict(claim="X1", comparison="clear", a=2.0, b=1.0, **{"a − b": 1.0, "ci_low": 0.5, "ci_high": 1.5,
                                                                  "p (Holm)": 0.001})])
    _stage(tmp_path, "s2", [dict(claim="Y1", paper="Y", **{"paper says": "≈", "our verdict": "not tested at this scale",
                                                          "verdict class": "not tested", "comparisons": 0, "shown in": "s2"})],
           [dict(claim="Y1", comparison="none", a=None, b=None, **{"a − b": None, "ci_low": None, "ci_high": None,
                                                                   "p (Holm)": None})],
           scale="smoke")
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
    # a claims table written before verdicts carried their class: rerun the stage, the text is not parsed
    _stage(tmp_path, "s4", [dict(claim="Z1", paper="Z", **{"our verdict": V.SUPPORTED})], [dict(claim="Z1")])
    with pytest.raises(ValueError, match="verdict class"):
        SU.collect(tmp_path, ["s4"])


def test_paper_numbers_come_from_the_transcribed_tables():
    from lib.claims import published as paper
    nums = paper.claim_numbers()
    d = paper.paper_d()
    t2 = d[(d.table == 2) & (d.dataset == "cifar10") & (d.model == "SEW-ResNet18")].iloc[0]
    assert f"{t2.pgd:.2f}" in nums["D1"] and "22.71" in nums["D1"]         # SNN-RAT WRN-16's PGD, Table 2
    assert "0.02" in nums["D1a"]                                             # vanilla VGG-11's PGD, Table 1
    assert "-8.61" in nums["D3"] and "+1.98" in nums["D4"]
    c = paper.paper_c()
    fp = c[(c.method == "full precision") & (c.metric == "tpr_at_0_1pct")].value.iloc[0]
    assert f"{fp:g}" in nums["C5"]
    assert set(nums) <= ({f"B{i}" for i in range(1, 12)} | {f"C{i}" for i in range(1, 12)}
                         | {f"D{i}" for i in range(1, 7)} | {"D1a", "D5b"})


def test_paper_a_numbers_are_keyed_by_stage_and_match_table_ii():
    from lib.claims import published as paper
    t2 = paper.table_ii().set_index(["dataset", "method", "kind"])
    snn_ann = paper.claim_number("03_weight_quantization", "SNN < ANN")
    assert f"SNN {t2.loc[('cifar10', 'full precision', 'snn'), 'auc']:.3f} vs ANN " \
           f"{t2.loc[('cifar10', 'full precision', 'ann'), 'auc']:.3f}" in snn_ann
    assert paper.claim_number("02_activation_quantization", "SNN < ANN") == "—"   # 02's claims: figures only
    # 08's ladder claims are found by the claim before " · <attack> · <metric>"
    assert paper.claim_number("08_attack_ladder", "A: SNN < ANN · RMIA · AUC").endswith(snn_ann.split(": ", 1)[1])
    assert "6.5%" in paper.claim_number("05_temporal_dynamics", "B1")
    assert "0.644" in paper.claim_number("04_surrogate_gradients", "STE: vulnerable on CIFAR-10")


def test_reading_counts_each_ladder_claim_once_and_grids_its_cells():
    """Issue 21 item 7: a ladder claim is one claim (its primary cell); its cells are shown, not counted."""
    t = pd.DataFrame({"paper": ["A", "A", "A"], "stage": ["03_weight_quantization", "03_weight_quantization",
                                                        "08_attack_ladder"],
                      "claim": ["SNN < ANN", "X", "A: SNN < ANN"], "scale": ["quick"] * 3,
                      "verdict class": ["supported", "not resolved", "contradicted"]})
    comps = pd.DataFrame([
        {"stage": "08_attack_ladder", "claim": "A: SNN < ANN", "comparison": f"iris: snn vs ann · {atk} · AUC",
         "metric": "auc", "family": fam, "verdict": v, "leans opposite": False, "pairs": 8}
        for atk, fam, v in (("loss", "secondary", "contradicted"), ("LiRA online", "primary", "contradicted"),
                            ("RMIA", "secondary", "supported"))])
    r = SU.reading(t, comps)["A"]
    assert r["holds"] == ["SNN < ANN (03)"] and r["open"] == ["X (03)"] and r["fails"] == ["A: SNN < ANN (08)"]
    assert r["ladder"] == {"A: SNN < ANN": {"AUC": [("loss", "contradicted"), ("LiRA online", "contradicted"),
                                                    ("RMIA", "supported")]}}
    assert SU.counts(t.assign(**{"verdict class": t["verdict class"]})).loc["A"].sum() == 3   # claims, not cells
    grid = SU.ladder_grid(comps)
    assert grid.loc[("A: SNN < ANN", "AUC"), "LiRA online"].endswith("[primary]")
    md = SU.reading_text(SU.reading(t, comps), {"A: SNN < ANN": {"attack": "LiRA online", "metric": "auc"}})
    assert "**Paper A** (3 claims of stages 03; and stage 08; scale quick)" in md
    assert "* holds (1): SNN < ANN (03)" in md and "loss **contradicted**; LiRA online **contradicted**" in md


def test_what_moved_matches_old_ladder_cells_to_the_primary_cell():
    before = pd.DataFrame({"paper": ["A", "A", "C"], "stage": ["08_attack_ladder", "08_attack_ladder",
                                                               "06_post_training_quantization"],
                           "claim": ["A: SNN < ANN · LiRA online · AUC", "A: SNN < ANN · loss · AUC", "C1"],
                           "our verdict": ["supported", "contradicted", "contradicted"],
                           "verdict class": ["supported", "contradicted", "contradicted"]})
    after = pd.DataFrame({"paper": ["A", "C"], "stage": ["08_attack_ladder", "06_post_training_quantization"],
                          "claim": ["A: SNN < ANN", "C1"], "our verdict": ["not resolved: within noise",
                                                                            "not resolved: interval wider than the "
                                                                            "equivalence margin"],
                          "verdict class": ["not resolved", "not resolved"]})
    comps = pd.DataFrame([{"stage": "06_post_training_quantization", "claim": "C1", "expected": "|a − b| < 0.02",
                           "metric": "tpr_at_1pct", "pairs": 4, "se test set": 0.004,
                           "test-set floor": "paired examples"}])
    m = SU.what_moved(before, after, comps, {"A: SNN < ANN": {"attack": "LiRA online", "metric": "auc"}})
    assert list(m.claim) == ["A: SNN < ANN", "C1"] and m["class changed"].tolist() == [True, True]
    assert m.iloc[0].before.startswith("supported") and "LiRA online · AUC" in m.iloc[0].before
    assert m.iloc[1]["mends that touch it (issue 21 items)"] == "1, 2, 3, 5, 6, 10"
    assert list(m["class after"]) == ["not resolved", "not resolved"]
    text = SU.moved_text(m, before, after)
    assert "supported → not resolved × 1" in text and "contradicted → not resolved × 1" in text
    assert "Stage 08 before: 2 ladder cells" in text and "now 1 claims" in text


def test_mends_read_the_class_for_scoped_and_structural():
    none = pd.DataFrame(columns=["stage", "claim"])
    assert 11 in SU.mends_touching("05_temporal_dynamics", "B7", "scoped (x): contradicted", "scoped", none)
    assert 9 in SU.mends_touching("07_gradient_sparsity", "D5b", "structural (x); …", "structural", none)
    assert SU.mends_touching("05_temporal_dynamics", "B1", "supported", "supported", none) == []


def test_switches_gather_the_published_choices_of_06_07_08(tmp_path):
    (tmp_path / "08_attack_ladder").mkdir()
    pd.DataFrame([{"switch": "split_mode", "as published": "p", "default here": "d", "dataset": "iris",
                   "setting": "ann", "attack": "SVM (paper A)", "metric": "auc", "as published value": 0.7,
                   "default value": 0.6, "published − default": 0.1, "ci_low": 0.05, "ci_high": 0.15, "pairs": 10,
                   "noise": "seeds"}]).to_csv(tmp_path / "08_attack_ladder" / "switches.csv", index=False)
    (tmp_path / "06_post_training_quantization").mkdir()
    rows = [{"method": "obc", "bits": 2.0, "bn_source": src, "target": t, "run": 0, "attack": "LiRA online",
             "tpr_at_1pct": 0.1 + (0.05 if src == "train" else 0) + 0.001 * t, "tpr_at_1pct_se": 0.001,
             "auc": 0.6, "test_acc": 50.0, "n_eval": 1000} for src in ("train", "members") for t in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "06_post_training_quantization" / "per_target.csv", index=False)
    (tmp_path / "07_gradient_sparsity").mkdir()
    pd.DataFrame([{"model": "SEW", "attack": "PGD", "check": "authors' protocol", "n_eval": 1000, "test_acc": 31.0,
                   "ci_low": 28.0, "ci_high": 34.0},
                  {"model": "SEW", "attack": "PGD-7, BN eval", "check": "BN mode", "n_eval": 500, "test_acc": 26.0,
                   "ci_low": 22.0, "ci_high": 30.0}]).to_csv(tmp_path / "07_gradient_sparsity" / "masking.csv",
                                                             index=False)
    sw = SU.switches(tmp_path, ["06_post_training_quantization", "07_gradient_sparsity", "08_attack_ladder"])
    assert list(sw.columns) == SU.SWITCH_COLUMNS and set(sw.paper) == {"A", "C", "D"}
    c = sw[(sw.paper == "C") & (sw.metric == "tpr_at_1pct")].iloc[0]
    assert c["published − default"] == pytest.approx(0.05) and c.pairs == 4
    d = sw[sw.paper == "D"].iloc[0]
    assert d["published − default"] == pytest.approx(5.0)
    assert SU.switches(tmp_path, ["08_attack_ladder"]).paper.tolist() == ["A"]   # only the stages asked for


def test_params_of_99_read_attributes_and_name_the_key():
    from pathlib import Path
    from lib.core import config
    params = config.load(Path(__file__).resolve().parents[1] / "params.yaml", "quick")
    p = SU.Params.from_params(params)
    assert p.stages == tuple(params["99_claims"]["stages"]) and p.before == params["99_claims"]["before"]
    bad = {**params, "99_claims": {**params["99_claims"], "stages": ["09_future"]}}
    with pytest.raises(config.ConfigError, match="`99_claims.stages`"):
        SU.Params.from_params(bad)
    with pytest.raises(config.ConfigError, match="`99_claims.before`"):
        SU.Params.from_params({**params, "99_claims": {**params["99_claims"], "before": "x.txt"}})
    with pytest.raises(config.ConfigError, match="unknown key `99_claims.colour`"):
        SU.Params.from_params({**params, "99_claims": {**params["99_claims"], "colour": 1}})
