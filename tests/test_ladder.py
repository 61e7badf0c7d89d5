"""The leakage regime and the attack ladder (lib.stages.ladder), the balanced LiRA references it needs
(lib.attacks.lira.balanced_references) and the ladder's claims (lib.claims.registry.ladder)."""
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import FakeTensors
from sklearn.metrics import roc_auc_score

from lib.claims import registry as CL, verdicts as V
from lib.stages import ladder as LD
from lib.attacks import lira as L
from lib.core import config
from lib.core.train import unit_key

_SMALL = {"regime": "leakage", "seed": 3, "members": {"image": 20, "tabular": None},
          "models": {"image": 4, "tabular": 6}, "population_test": {"image": 30, "tabular": None},
          "epochs": {"image": 1, "tabular": 2}, "batch_size": {"image": 8, "tabular": 8},
          "lira": {"variant": "paper", "fix_variance": True}, "rmia": {"offline_a": 0.3, "gamma": 1.0},
          "as_published": {"settings": [], "datasets": []}}
ROOT = Path(__file__).resolve().parents[1]


def _sec(**over) -> LD.Params:
    """params.yaml's 08_attack_ladder (paper grid) with the small values above and `over` (a Params)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())["08_attack_ladder"]
    base = {k: v for k, v in raw.items() if k != "by_scale"}
    return LD.Params.from_section({**base, **_SMALL, **over}, "paper")


SEC = _sec()
ATTACK = {"mode": "single", "max_train": 2000, "standardize": True, "n_boot": 0}


def _data(n_train=120, n_test=60, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_train + n_test) % classes
    x = torch.rand(n_train + n_test, 1, 4, 4, generator=g)
    return FakeTensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes=classes)


# ----------------------------------------------------------------------------- balanced references

def test_balanced_references_use_the_same_count_for_every_example():
    keep = L.keep_matrix(9, 200, seed=1)
    for m in range(9):
        rest = np.arange(9) != m
        use = L.balanced_references(keep[rest])
        k = keep[rest]
        assert set((use & k).sum(0)) == {int(k.sum(0).min())}       # the same IN count everywhere
        assert set((use & ~k).sum(0)) == {int((~k).sum(0).min())}   # the same OUT count everywhere


def _no_signal_scores(M=4, N=4000, seed=0):
    """LiRA scores with a per-example difficulty and model noise, and NO membership signal at all."""
    rng = np.random.default_rng(seed)
    keep = L.keep_matrix(M, N, seed)
    s = rng.normal(0, 2, N)[None, :, None] + rng.normal(0, 1, (M, N, 1))
    return s, keep


def _loo_auc(s, keep, balanced):
    preds, truth = [], []
    for m in range(len(keep)):
        rest = np.arange(len(keep)) != m
        refs = np.where(L.balanced_references(keep[rest])[..., None], s[rest], np.nan) if balanced else s[rest]
        preds.append(L.LiRA(online=True, fix_variance=True).member_scores(refs, keep[rest], s[m]))
        truth.append(keep[m])
    return roc_auc_score(np.concatenate(truth), np.concatenate(preds))


def test_leave_one_out_with_few_models_is_biased_without_balanced_references():
    # members of a target have one IN reference fewer than its non-members: without balancing, online LiRA calls
    # members "OUT" even when nothing is memorized; with the same count for every example it is at chance
    s, keep = _no_signal_scores()
    assert _loo_auc(s, keep, balanced=False) < 0.45
    assert abs(_loo_auc(s, keep, balanced=True) - 0.5) < 0.03


# ----------------------------------------------------------------------------- the regime's population

def test_population_is_stratified_seeded_and_every_example_in_half_the_models():
    d = _data()
    p = LD.population(d, SEC, "mnist")
    assert len(p.index) == 40 and len(set(p.index)) == 40
    assert np.ptp(np.bincount(p.y)) <= 1                    # stratified: classes as in the training part
    assert (p.keep.sum(0) == 2).all()                      # IN exactly M/2 = 2 of 4 models
    assert len(p.test_index) == 30
    q = LD.population(d, SEC, "mnist")
    assert np.array_equal(p.index, q.index) and np.array_equal(p.keep, q.keep)
    tab = LD.population(d, SEC, "iris")                     # null members: the whole training part
    assert len(tab.index) == 120 and len(tab.test_index) == 60 and tab.n_models == 6


def test_too_many_members_is_an_error_naming_the_key():
    with pytest.raises(config.ConfigError, match="08_attack_ladder.members.image"):
        LD.population(_data(), _sec(members={"image": 500, "tabular": None}), "mnist")


def test_splits_partition_the_population_and_the_as_published_shadow_lies_inside_the_target():
    d = _data()
    p = LD.population(d, SEC, "mnist")
    for m in range(p.n_models):
        sp = LD.split(p, m)
        a, b = set(sp["pools"]["target_in"]), set(sp["pools"]["target_out"])
        assert not a & b and a | b == set(p.index.tolist())
        assert sp["pools"]["eval"] == p.test_index.tolist()
        ap = LD.split(p, m, (0.8, 0.2))
        assert set(ap["pools"]["target_in"]) <= a and set(ap["pools"]["target_out"]) <= b
        assert len(ap["pools"]["target_in"]) == round(0.8 * len(a))


def test_units_pair_settings_on_members_and_differ_per_model():
    params = config.load("params.yaml", "smoke")
    d = _data()
    p = LD.population(d, SEC, "mnist")
    sets = {s.id: s for s in LD.settings(params, LD.Params.from_params(params))}
    ua = LD.units(params, SEC, sets["ann"], p)
    us = LD.units(params, SEC, sets["snn"], p)
    assert len({unit_key(u) for u in ua + us}) == 8
    for m in range(4):   # model m of both settings: the same split file, init seed and member count
        assert ua[m]["seed"] == us[m]["seed"] == m and ua[m]["init_seed"] == us[m]["init_seed"]
        assert ua[m]["n_in"] == int(p.keep[m].sum())
    assert ua[0]["lr"] == params["train"]["lr"]["ann"] and us[0]["lr"] == params["train"]["lr"]["snn"]
    ap = LD.units(params, SEC, sets["ann"], p, (0.8, 0.2))
    assert [u["seed"] for u in ap] == [4, 5, 6, 7]
    assert all(u["init_seed"] != v["init_seed"] for u, v in zip(ap, ua))


# ----------------------------------------------------------------------------- attacks on planted outputs

def _outputs(p, signal, seed=0, classes=3):
    """Fake logits: members of model m get their label's logit raised by `signal` (memorization)."""
    rng = np.random.default_rng(seed)
    M, N = p.keep.shape
    z = rng.normal(0, 1, (M, N, classes)).astype(np.float32)
    z[np.arange(M)[:, None], np.arange(N)[None, :], p.y[None, :]] += 1.0 + signal * p.keep
    zt = rng.normal(0, 1, (M, len(p.test_index), classes)).astype(np.float32)
    zt[:, np.arange(len(p.test_index)), p.y_test] += 1.0
    acc = np.full(M, 90.0)
    return LD.Outputs(z, zt, acc, acc - 10 * signal, [f"k{m}" for m in range(M)])


@pytest.mark.parametrize("signal, lo, hi", [(3.0, 0.75, 1.01), (0.0, 0.35, 0.65)])
def test_every_rung_finds_memorization_and_none_finds_what_is_not_there(signal, lo, hi):
    sec = _sec(members={"image": 100, "tabular": None}, models={"image": 6, "tabular": 6})
    d = _data(n_train=600)
    p = LD.population(d, sec, "mnist")
    ents = LD.attack(_outputs(p, signal), p, sec, ATTACK)
    assert {e["attack"] for e in ents} == set(LD.LADDER)
    per, pooled, roc, ex = LD.tables(ents, {"dataset": "mnist", "setting": "x", "label": "x", "kind": "ann"},
                                     _outputs(p, signal), LD.low_fpr(80), p.y_test)
    for atk, g in per.groupby("attack"):
        assert lo < g.auc.mean() < hi, (atk, g.auc.mean())
    assert (pooled.n_nonmembers > per.groupby("attack").n_nonmembers.max().min()).all()   # pooled: M × N⁻
    assert set(roc.attack) == set(LD.LADDER)
    # every per-target row's outcomes reproduce its AUC, on population positions shared by every setting
    from sklearn.metrics import roc_auc_score
    for r in per.itertuples():
        e = ex[(ex.id == r.examples) & (ex.measure == "attack")]
        assert roc_auc_score(e.member, e.score) == pytest.approx(r.auc) and e.example.between(0, len(p.index) - 1).all()
        assert len(ex[(ex.id == r.examples) & (ex.measure == "eval")]) == len(p.y_test)   # correctness per test example


def test_outputs_put_the_member_and_non_member_pools_back_in_population_order():
    p = LD.population(_data(), SEC, "mnist")
    full = np.random.default_rng(0).normal(size=(p.n_models, len(p.index), 3)).astype(np.float32)
    recs = [{"pools": {"in": {"outputs": full[m][p.keep[m]]}, "out": {"outputs": full[m][~p.keep[m]]},
                       "eval": {"outputs": np.zeros((30, 3))}}, "train_acc": 1.0, "test_acc": 0.5, "key": str(m)}
            for m in range(p.n_models)]
    out = LD.outputs(recs, p)
    assert np.array_equal(out.logits, full) and out.train_acc.tolist() == [100.0] * 4


def test_low_fpr_is_the_smallest_resolvable():
    assert LD.low_fpr(1000) == 0.01 and LD.low_fpr(500) == 0.02 and LD.low_fpr(60) == 0.2
    assert LD.low_fpr(20) == max(LD.FPR_GRID)   # none resolvable: the TPR is reported as NaN


# ----------------------------------------------------------------------------- claims and switches

def _per(diff, n=8, datasets=("mnist", "iris")):
    rng = np.random.default_rng(1)
    rows = []
    for ds in datasets:
        for t in range(n):
            for st, shift in (("ann", 0.0), ("snn", diff), ("ann_snn_lr", 0.0)):
                for atk in LD.LADDER:
                    a = 0.7 + shift + rng.normal(0, 0.005)
                    rows.append({"dataset": ds, "setting": st, "attack": atk, "target": t, "auc": a,
                                 "auc_se_hanley": 0.01, "tpr_low": 0.1 + shift, "tpr_low_se": 0.005,
                                 "test_acc": 80.0, "n_eval": 1000})
    return pd.DataFrame(rows)


PRIMARY = {cid: {"attack": "LiRA online", "metric": "auc", "reason": "test"} for cid in CL.LADDER_CLAIMS}


@pytest.mark.parametrize("diff, verdict", [(-0.1, V.SUPPORTED), (0.1, V.CONTRADICTED), (0.0, "not resolved")])
def test_ladder_claims_on_planted_tables(diff, verdict):
    cl = CL.ladder({"ann": ("mnist", "iris"), "snn": ("mnist", "iris", "fmnist"), "ann_snn_lr": ("mnist",)}, LD.LADDER,
                   PRIMARY, {"mnist": 0.05, "iris": 0.2})
    assert [c.id for c in cl] == ["A: SNN < ANN", "A: SNN < ANN at the SNN's lr"]   # one claim each, not one per cell
    n_cells = len(LD.LADDER) * 2
    assert [len(c.comparisons) for c in cl] == [2 * n_cells, n_cells]               # × the common datasets
    prim = [c for c in cl[0].comparisons if c.family == "primary"]
    assert len(prim) == 2 and {c.metric for c in prim} == {"auc"} and all("LiRA online" in c.label for c in prim)
    assert any(c.label.endswith("TPR at 20% FPR") for c in cl[0].comparisons)      # the FPR is named
    summ, det = V.evaluate(_per(diff), cl)
    assert all(v.startswith(verdict) for v in summ["our verdict"]), summ["our verdict"].tolist()
    grid = LD.verdict_grid(det)
    assert grid.shape == (4, len(LD.LADDER))          # (2 claims × 2 metrics) × rungs
    assert grid.loc[("A: SNN < ANN", "AUC"), "LiRA online"].endswith("[primary]")


def test_ladder_primary_is_checked_before_anything_runs():
    with pytest.raises(ValueError, match="08_attack_ladder.primary"):
        CL.check_ladder_primary({**PRIMARY, "A: SNN < ANN": {"attack": "LiRA", "metric": "auc", "reason": "x"}},
                                LD.LADDER)
    with pytest.raises(ValueError, match="one entry per ladder claim"):
        CL.check_ladder_primary({"A: SNN < ANN": PRIMARY["A: SNN < ANN"]}, LD.LADDER)


def test_switch_table_reports_published_minus_default_per_switch():
    rows = []
    for t in range(6):
        for st, auc in (("snn_tri", 0.6), ("snn_tri_true", 0.7)):
            for atk in LD.LADDER:
                rows.append({"dataset": "iris", "setting": st, "attack": atk, "target": t, "auc": auc + 0.001 * t,
                             "auc_se_hanley": 0.01, "tpr_low": 0.1, "tpr_low_se": 0.01, "test_acc": 90.0,
                             "n_eval": 30})
        for atk, auc in ((LD.AS_PUBLISHED, 0.8), ("SVM (paper A)", 0.6)):
            rows.append({"dataset": "iris", "setting": "ann", "attack": atk, "target": t, "auc": auc,
                         "auc_se_hanley": 0.01, "tpr_low": 0.2, "tpr_low_se": 0.01, "test_acc": 90.0, "n_eval": 30})
    sw = LD.switch_table(pd.DataFrame(rows))
    tri = sw[(sw.switch == "triangular surrogate") & (sw.metric == "auc")]
    assert len(tri) == len(LD.LADDER) and np.allclose(tri["published − default"], -0.1)
    split = sw[(sw.switch == "split_mode") & (sw.metric == "auc")]
    assert np.allclose(split["published − default"], 0.2) and (split.ci_low > 0).all()


# ----------------------------------------------------------------------------- the section as a frozen dataclass

def test_params_read_every_scale_and_name_the_key_of_a_bad_value():
    params = config.load(ROOT / "params.yaml", "quick")
    p = LD.Params.from_params(params)
    raw = config.section(params, "08_attack_ladder")
    assert p.scale == "quick" and p.members.of("image") == raw["members"]["image"] and p.regime == raw["regime"]
    assert [s.id for s in p.settings] == list(raw["settings"]) and p.primary == raw["primary"]
    assert p.as_published.settings == tuple(raw["as_published"]["settings"]) and p.lira.variant == raw["lira"]["variant"]
    assert p.keys["members"] == "08_attack_ladder.by_scale.quick.members" and p.key("seed") == "08_attack_ladder.seed"
    assert [s.columns() for s in LD.settings(params, p)][0]["lr"] == params["train"]["lr"]["ann"]
    with pytest.raises(FrozenInstanceError):
        p.seed = 1
    with pytest.raises(config.ConfigError, match="`08_attack_ladder.models.image` = 3"):
        _sec(models={"image": 3, "tabular": 8})
    with pytest.raises(config.ConfigError, match="`08_attack_ladder.as_published.settings`"):
        _sec(as_published={"settings": ["nope"], "datasets": []})
    with pytest.raises(config.ConfigError, match="unknown key `08_attack_ladder.colour`"):
        _sec(colour=1)


def test_units_and_checkpoint_keys_are_those_of_the_section_dict():
    """Reading the section's attributes builds the same units (hence checkpoint keys) as params.yaml's values."""
    params = config.load(ROOT / "params.yaml", "smoke")
    p = LD.Params.from_params(params)
    raw = config.section(params, "08_attack_ladder")
    pop = LD.population(_data(n_train=200, n_test=100), p, "mnist")
    st = LD.settings(params, p)[0]
    us = LD.units(params, p, st, pop)
    fam = "image"
    assert [u["epochs"] for u in us] == [raw["epochs"][fam]] * pop.n_models
    assert [u["batch_size"] for u in us] == [raw["batch_size"][fam]] * pop.n_models
    assert [u["init_seed"] for u in us] == [raw["seed"] * 1000 + m for m in range(pop.n_models)]
    assert us[0]["population"] == {"regime": raw["regime"], "size": 2 * raw["members"][fam],
                                   "models": raw["models"][fam], "seed": raw["seed"], "test": raw["population_test"][fam]}
