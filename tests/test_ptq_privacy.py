"""Paper C's study plumbing (lib.stages.ptq_privacy) on a tiny synthetic data set: every model and every quantized
copy is a cache unit, quantized copies are attacked against the full-precision shadows, calibration stays inside the
target's members, and the tables pool targets the way the notebook says."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PTQ_PRIVACY_SEC, ptq_privacy_data as _data

from lib.claims import registry as CL, verdicts as V
from lib.core import ptq as Q
from lib.stages import ptq_privacy as PP, ptq_privacy_tables as PT

ROOT = Path(__file__).resolve().parents[1]


SEC = PTQ_PRIVACY_SEC
P = PP.Params.from_section(SEC)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    torch.manual_seed(0)
    s = PP.Study.open(P, _data(), tmp_path_factory.mktemp("ckpt"), device="cpu")
    n = s.train()
    return s, n


def test_pool_subsets_are_seeded_random_and_keep_is_balanced(study):
    s, _ = study
    assert len(s.pool.y) == SEC["pool"] and len(np.unique(s.pool.index)) == SEC["pool"]
    assert (s.pool.keep.sum(0) == 2).all()                       # each example IN exactly ⌊0.5·4⌋ models
    assert len(np.unique(s.pool.y_test.numpy())) > 1            # not the first (class-sorted) test images


def test_models_are_cache_units(study, tmp_path):
    s, n = study
    assert n == SEC["models"]
    again = PP.Study.open(copy.deepcopy(SEC), _data(), s.cache.dir.parent, device="cpu")
    assert again.train() == 0                                    # every model found in the cache
    for a, b in zip(s.recs, again.recs):
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    other = PP.Study.open({**copy.deepcopy(SEC), "seed": 4}, _data(), s.cache.dir.parent, device="cpu")
    assert PP.unit(other.sec, other.pool, 0) != PP.unit(s.sec, s.pool, 0)


def test_jobs_cover_the_grid(study):
    three = PP.ptq_jobs(PP.Params.from_section({**SEC, "ptq": {**SEC["ptq"], "runs": 3}}))
    # extra calibration draws only at runs_bits, for methods that calibrate, without decoupled/leak copies
    assert {(j["method"], j["bits"], j["last_bits"], j["bn_source"]) for j in three if j["run"] > 0} == \
        {("obc", 1.58, 1.58, "members")}
    assert sum(j["run"] > 0 for j in three) == 2 * 2      # 2 extra runs x 2 targets
    jobs = PP.ptq_jobs(P)
    per_target = [j for j in jobs if j["target"] == 0]
    # rtn: 2 bits + 1 decoupled; obc: 2 bits + 1 decoupled + 1 leaky BN
    assert len(per_target) == 3 + 4 and len(jobs) == 2 * len(per_target)
    assert {j["bn_source"] for j in jobs if j["method"] == "obc"} == {"members", "train"}
    assert {j["last_bits"] for j in jobs if j["bits"] == 1.58} == {1.58, 8}


def test_quantized_copies_are_cached_and_calibrate_on_members_only(study, monkeypatch):
    s, _ = study
    seen = []
    real = Q.quantize_model

    def spy(net, method, bits, calib_x, **kw):
        seen.append((calib_x, kw.get("bn_x")))
        return real(net, method, bits, calib_x, **kw)
    monkeypatch.setattr(Q, "quantize_model", spy)
    jobs = [j for j in PP.ptq_jobs(P) if j["target"] == 0]
    out = s.quantized(jobs)
    assert len(seen) == len(jobs)
    members = s.pool.x[s.pool.members(0)].flatten(1)
    nonmembers = s.pool.x[~s.pool.keep[0]].flatten(1)

    def rows_in(x, ref):
        return (torch.cdist(x.flatten(1), ref, compute_mode="donot_use_mm_for_euclid_dist") < 1e-6).any(1)
    for (cal, bn), job in zip(seen, jobs):
        assert rows_in(cal, members).all(), job
        if bn is not None and job["bn_source"] == "members":
            assert rows_in(bn, members).all() and not rows_in(bn, nonmembers).any()
    leaky = [bn for (cal, bn), j in zip(seen, jobs) if j["bn_source"] == "train"]
    assert leaky and any(rows_in(bn, nonmembers).any() for bn in leaky)
    assert out[0]["pool"].shape == (SEC["pool"], 2, 4) and out[0]["test"].shape == (SEC["n_test"], 2, 4)
    seen.clear()
    s.quantized(jobs)
    assert not seen                                              # all from the cache


def test_tables_pool_targets_and_rmia_runs(study):
    s, _ = study
    fp = s.fp_outputs()
    q = s.quantized(PP.ptq_jobs(P))
    entries = PT.lira_entries(s, fp, q)
    per, pooled = PT.attack_table(entries, P.lira.fprs)
    fp_rows = pooled[pooled.method == PP.FULL_PRECISION]
    # all four full-precision models are leave-one-out targets: pooled N⁻ = Σ non-members
    assert set(fp_rows.targets) == {4}
    assert int(fp_rows.n_nonmembers.iloc[0]) == int((~s.pool.keep).sum())
    qrows = pooled[(pooled.method == "rtn") & (pooled.bits == 2)]
    assert set(qrows.targets) == {2} and set(qrows.attack) == {"LiRA online", "LiRA offline"}
    assert {"tpr_at_1pct_se", "log10_tpr_at_1pct", "test_acc", "train_acc", "n_eval"} <= set(per.columns)
    _, rm = PT.attack_table(PT.rmia_entries(s, fp, q), P.lira.fprs)
    assert rm.attack.str.startswith("RMIA").all() and rm.auc.between(0, 1).all()
    _, bud = PT.attack_table(PT.budget_entries(s, fp), P.lira.fprs, keys=["attack", "budget"])
    assert set(bud.budget) == {1, 2}
    ad = PT.adaptive_entries(s, fp, s.quantized(PP.adaptive_jobs(P)))
    assert {e["shadows"] for e in ad} == {"quantized"} and {e["target"] for e in ad} == {0, 1}


def test_log10_tpr_is_floored_at_half_a_member():
    truth = np.r_[np.ones(50, bool), np.zeros(2000, bool)]
    scores = np.r_[np.zeros(50), np.linspace(1, 2, 2000)]     # every member below every non-member: TPR = 0
    row = PT.metrics_row(scores, truth, [0.01])
    assert row["tpr_at_1pct"] == 0 and row["log10_tpr_at_1pct"] == pytest.approx(np.log10(0.5 / 50))


def test_paper_c_claims_judge_a_planted_table():
    """C3 (2-bit lower TPR) supported and C1 (4-bit equivalent) supported on a table built to say so."""
    rows = []
    rng = np.random.default_rng(0)
    for t in range(6):
        for atk in ("LiRA online", "LiRA offline"):
            base = {"target": t, "attack": atk, "shadows": "fp", "n_eval": 10000, "n_members": 5000}
            rows.append({**base, "method": PP.FULL_PRECISION, "bits": 32, "last_bits": 32, "bn_source": "",
                         "tpr_at_1pct": 0.2 + rng.normal(0, 0.002), "test_acc": 80.0})
            for m in ("adaround", "brecq", "obc"):
                rows.append({**base, "method": m, "bits": 4, "last_bits": 4, "bn_source": "members" if m == "obc" else "",
                             "tpr_at_1pct": 0.2 + rng.normal(0, 0.002), "test_acc": 80.0})
                rows.append({**base, "method": m, "bits": 2, "last_bits": 2, "bn_source": "members" if m == "obc" else "",
                             "tpr_at_1pct": 0.1 + rng.normal(0, 0.002), "test_acc": 75.0})
    import pandas as pd
    df = pd.DataFrame(rows)
    df["tpr_at_1pct_se"] = np.sqrt(df.tpr_at_1pct * (1 - df.tpr_at_1pct) / df.n_members)
    claims = CL.paper_c(["adaround", "brecq", "obc"], [4, 2], [], "tpr_at_1pct", {"test_acc": 2.0, "tpr_at_1pct": 0.02})
    summary, _ = V.evaluate({"per_target": df}, [c for c in claims if c.id in ("C1", "C3")])
    verdicts = summary["our verdict"].astype(str)
    assert verdicts.str.startswith("supported").all(), summary


# ----------------------------------------------------------------------------- the section's Params

def test_params_at_every_scale_are_the_section_at_that_scale():
    import yaml
    from lib.core import config as C
    params = yaml.safe_load((ROOT / "params.yaml").read_text())   # this section only: Params checks it
    for scale in C.SCALES:
        P_ = PP.Params.from_params(params, scale)
        sec = C._at_scale(params[PP.SECTION], scale)
        sec.pop("replaced")
        assert P_.as_dict() == sec
        # the cache key of a model reads the same entries as before Params (committed checkpoints stay valid)
        pool = PP.Pool(None, None, np.arange(10), np.ones((2, 10), bool), None, None, "src", 10)
        old = {"section": PP.SECTION, "dataset": sec["dataset"], "data_source": "src", "arch": sec["arch"],
               "training": sec["training"], "seed": sec["seed"] * 1000 + 1,
               "members_sha": PP.unit_key(list(range(10)))}
        assert PP.unit(P_, pool, 1) == old and PP.unit_key(PP.unit(P_, pool, 1)) == PP.unit_key(old)


def test_params_are_frozen_and_checked_naming_the_key():
    import dataclasses
    from lib.core.config import ConfigError
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.models = 5
    with pytest.raises(ConfigError, match=r"`06_post_training_quantization\.targets`"):
        PP.Params.from_section({**SEC, "targets": 5})
    with pytest.raises(ConfigError, match=r"`06_post_training_quantization\.ptq\.bits` = \[3\]"):
        PP.Params.from_section({**SEC, "ptq": {**SEC["ptq"], "bits": [3]}})
    with pytest.raises(ConfigError, match=r"missing key `06_post_training_quantization\.seed`"):
        PP.Params.from_section({k: v for k, v in SEC.items() if k != "seed"})
    with pytest.raises(ConfigError, match=r"`06_post_training_quantization\.ptq\.calibration`"):
        PP.Params.from_section({**SEC, "ptq": {**SEC["ptq"], "calibration": 60}})   # > pkeep · pool = 48
    # the active scale's values are checked together, named after its by_scale entry; every scale's entries alone
    params = {"scale": "quick", PP.SECTION: {**SEC, "by_scale": {"quick": {"models": 3, "targets": 4}}}}
    with pytest.raises(ConfigError, match=r"`06_post_training_quantization\.by_scale\.quick\.targets`"):
        PP.Params.from_params(params)
    assert PP.Params.from_params(params, "smoke").models == SEC["models"]      # another scale: the section's own
    params[PP.SECTION]["by_scale"]["paper"] = {"models": 2}
    with pytest.raises(ConfigError, match=r"`06_post_training_quantization\.by_scale\.paper\.models`"):
        PP.Params.from_params(params, "smoke")


def test_notebook_tables_of_the_study(study):
    s, _ = study
    fp = s.fp_outputs()
    models = PT.models_table(s, fp, "synthetic")
    assert len(models) == SEC["models"] and (models.members.values == s.pool.keep.sum(1)).all()
    assert np.allclose(models.gap, models.train_acc - models.test_acc)
    assert "4 models trained now, 0 loaded" in PT.models_note(models, 4, "smoke", "synthetic")
    grid = PT.grid_values(PP.model(s.recs[0], s.arch), "minmax")
    assert (grid["distinct values per channel (max)"] <= grid["levels L"]).all()
    runs = PT.ptq_runs_table(s, s.quantized([j for j in PP.ptq_jobs(P) if j["target"] == 0]))
    assert list(runs.columns) == ["target", "run", "method", "bits", "last_bits", "bn_source", "seconds", "test_acc"]
    assert len(PP.adaptive_jobs(P)) == SEC["models"]                       # every model, rtn at 1.58 bits
