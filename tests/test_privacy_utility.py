"""Stage 09 (lib.stages.privacy_utility): its section's checks, the canaries reaching the training labels and the
unit keys, the DP and regularised settings reaching their units, and the claims at matched utility on planted
leakage tables (a defence below both baseline curves at its accuracy is supported, one above them contradicted)."""
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from lib.core import config
from lib.claims import verdicts as V
from lib.stages import ladder as LD, privacy_utility as PU
from lib.stages import privacy_utility_params as PP


def _params(scale="smoke"):
    p = yaml.safe_load(open("params.yaml"))
    p["scale"] = scale
    return p


@pytest.mark.parametrize("key,edit", [
    ("09_privacy_utility.settings.ann_dp_1.epsilon", lambda s: s["settings"]["ann_dp_1"].__setitem__("epsilon", -1)),
    ("09_privacy_utility.settings.snn.claim", lambda s: s["settings"]["snn"].pop("claim")),
    ("09_privacy_utility.settings.ann.epsilon", lambda s: s["settings"]["ann"].__setitem__("epsilon", 4)),
    ("09_privacy_utility.settings.ann.role", lambda s: s["settings"]["ann"].__setitem__("role", "baseline")),
    ("09_privacy_utility.canaries", lambda s: s.__setitem__("canaries", {"fraction": 0.9, "seed": 0})),
    ("09_privacy_utility.primary.attack", lambda s: s["primary"].__setitem__("attack", "RMIA") or
     s.__setitem__("attacks", ["loss"])),
    ("09_privacy_utility.settings.snn.ptq", lambda s: s["settings"]["snn"].__setitem__("ptq", {"method": "obc",
                                                                                              "bits": 2})),
    ("09_privacy_utility.settings.ann_ptq2.ptq", lambda s: s["settings"]["ann_ptq2"].__setitem__(
        "ptq", {"method": "obc", "bits": 3})),
    ("09_privacy_utility.settings.ann.lr", lambda s: s["settings"]["ann"].__setitem__("lr", 0.1)),
    ("09_privacy_utility.settings.ann_dp_4.max_grad_norm", lambda s: s["settings"]["ann_dp_4"].__setitem__(
        "max_grad_norm", 0)),
    ("09_privacy_utility.dp_tuning", lambda s: s["dp_tuning"].__setitem__("max_grad_norm", [])),
    ("09_privacy_utility.dp_tuning.lr", lambda s: s["dp_tuning"]["lr"].pop("snn")),
])
def test_an_invalid_entry_names_its_key(key, edit):
    p = _params("paper")
    edit(p[PP.SECTION])
    with pytest.raises(config.ConfigError, match=re.escape(f"`{key}`")):
        PP.Params.from_params(p, "paper")


def test_canaries_relabel_exactly_their_training_examples_and_enter_the_unit_keys():
    params = _params("smoke")
    sec = PU.Params.from_params(params)
    import torch
    from dataclasses import dataclass

    @dataclass
    class T:
        y_train: torch.Tensor
        y_test: torch.Tensor
        n_classes: int = 3

    y = torch.arange(120) % 3
    base = lambda name: T(y.clone(), torch.arange(30) % 3)   # noqa: E731
    pops = PU.populations(sec, base)
    p = pops["iris"]
    can = p.canaries
    assert len(can) == round(0.05 * len(p.population.index)) and (can.labels != can.original).all()
    loaded = PU.canary_loader(base, pops)("iris").y_train
    changed = np.flatnonzero((loaded != y).numpy())
    assert sorted(changed) == sorted(p.population.index[can.positions])           # only the canaries' labels
    assert (p.population.y[can.positions] == can.labels).all()                     # the attacks score those labels
    st = {s.id: s for s in sec.settings}
    dp_u = PU.units(params, sec, st["ann_dp_4"], p)[0]
    assert dp_u["dp"] == {"epsilon": 4.0, "delta": sec.dp.delta, "max_grad_norm": sec.dp.max_grad_norm}
    assert dp_u["lr"] == params["train"]["lr"]["ann"]            # no tuned values at smoke: the defaults
    assert PU.units(params, sec, st["ann_e10"], p)[0]["epochs"] == 2
    ref = PU.units(params, sec, st["ann"], p)[0]
    assert ref["population"]["canaries"]["n"] == len(can) and "dp" not in ref
    # 08's unit of the same model has no canaries: never the same checkpoint
    lsec = LD.Params.from_params(params)
    l08 = LD.units(params, lsec, LD.Setting("ann", "ann", ("iris",), "ANN", {"lr": ref["lr"]}), p.population)[0]
    from lib.core.train import unit_key
    assert unit_key(l08) != unit_key(ref)


def _leak(defence_auc, defence_acc=80.0):
    rows = []
    for sid, role, kind, acc, auc in (("ann", "reference", "ann", 95.0, 0.70), ("dp1", "dp", "ann", 60.0, 0.52),
                                      ("dp8", "dp", "ann", 85.0, 0.60), ("wd", "regularised", "ann", 75.0, 0.58),
                                      ("snn", "defence", "snn", defence_acc, defence_auc)):
        rows.append(dict(dataset="iris", setting=sid, label=sid, role=role, kind=kind, claim="A: SNN < ANN" if
                         role == "defence" else "", epsilon=np.nan, attack="LiRA online", test_acc=acc,
                         test_acc_se=0.5, gap=0.0, auc=auc, auc_se=0.005, canary_fpr=np.nan, canary_tpr=np.nan,
                         canary_tpr_se=np.nan, canary_in=np.nan, canary_out=np.nan))
    return pd.DataFrame(rows)


def _judge(leak, sec):
    table, claims = PU.claims(leak, sec)
    return V.evaluate({"matched": table}, claims)[0]["our verdict"].iloc[0]


def test_defence_below_both_curves_is_supported_above_is_contradicted_outside_is_not_tested():
    from dataclasses import replace
    sec = PU.Params.from_params(_params("smoke"))
    sec = replace(sec, attacks=("LiRA online",), settings=tuple(
        [PP.Setting("ann", "ann", "reference", "ann"), PP.Setting("snn", "snn", "defence", "snn", claim="A: SNN < ANN"),
         PP.Setting("dp1", "ann", "dp", "dp1", epsilon=1.0), PP.Setting("dp8", "ann", "dp", "dp8", epsilon=8.0),
         PP.Setting("wd", "ann", "regularised", "wd")]), datasets=("iris",))
    cv = PU.curves(_leak(0.50), "iris", "LiRA online")   # DP-SGD: its ε grid only (tuned: not the reference's recipe)
    assert list(cv["DP-SGD (ANN)"].setting) == ["dp1", "dp8"] and set(cv["regularised ANN"].setting) == {"wd", "ann"}
    # at 80%: the DP curve reads 0.52 + (0.60 − 0.52)·20/25 = 0.584, the regularised one 0.58 + 0.12·5/20 = 0.61
    assert _judge(_leak(0.50), sec).startswith(V.SUPPORTED)
    assert _judge(_leak(0.66), sec).startswith(V.CONTRADICTED)
    assert _judge(_leak(0.59), sec).startswith("mixed") or _judge(_leak(0.59), sec).startswith("partly")
    assert _judge(_leak(0.50, defence_acc=99.0), sec).startswith("not tested")   # beyond every curve


# ----------------------------------------------------------------------------- DP-SGD tuning, paper C's PTQ


def _pops(sec):
    import torch
    from dataclasses import dataclass

    @dataclass
    class T:
        y_train: torch.Tensor
        y_test: torch.Tensor
        n_classes: int = 2

    return PU.populations(sec, lambda name: T(torch.arange(200) % 2, torch.arange(40) % 2))


def test_tuning_splits_the_population_in_halves_and_its_units_carry_the_grid_and_never_the_targets_keys(tmp_path):
    from dataclasses import replace
    from lib.core.train import unit_key
    params = _params("quick")
    sec = replace(PU.Params.from_params(params), checkpoints_dir=str(tmp_path))
    pops = _pops(sec)
    p = pops["breast_cancer"]
    sp = PU.tuning_split(p, sec.dp_tuning.seed)
    tin, tout = set(sp["pools"]["target_in"]), set(sp["pools"]["target_out"])
    assert not tin & tout and tin | tout == set(p.population.index.tolist()) and abs(len(tin) - len(tout)) <= 1
    assert sp["pools"]["eval"] == p.population.test_index.tolist()   # present, never scored by `tuning`
    jobs = PU.tuning_plan(params, sec, pops)
    st = {s.id: s for s in sec.settings}
    dp = sec.of_role("dp")
    assert len(jobs) == sum(len(sec.dp_tuning.lr[s.kind]) * len(sec.dp_tuning.max_grad_norm) for s in dp)
    assert (tmp_path / "splits" / "breast_cancer" / f"seed{sp['seed']}.json").is_file()
    grid = {(j["setting"].id, j["unit"]["lr"], j["unit"]["dp"]["max_grad_norm"]) for j in jobs}
    assert len(grid) == len(jobs) and all(j["unit"]["dp"]["epsilon"] == j["setting"].epsilon for j in jobs)
    targets = {unit_key(u) for s in dp for u in PU.units(params, sec, s, p)}
    assert not targets & {unit_key(j["unit"]) for j in jobs}
    # the values params.yaml gives a DP setting reach its target units
    u = PU.units(params, sec, st["ann_dp_4"], p)[0]
    assert (u["lr"], u["dp"]["max_grad_norm"]) == (st["ann_dp_4"].lr, st["ann_dp_4"].max_grad_norm)
    # a PTQ defence trains nothing of its own: its units are the reference ANN's
    assert PU.units(params, sec, st["ann_ptq2"], p) == PU.units(params, sec, st["ann"], p)


class _FakeStore:
    """get_or_train -> a record whose held-out pool is right on the examples listed in `right`."""

    def __init__(self, right_by_lr):
        self.right = right_by_lr

    def get_or_train(self, u):
        from lib.core import data as D
        sp = D.load_split(D.split_path(self.dir, u["dataset"], u["seed"]))
        ex = np.asarray(sp["pools"]["target_out"])
        labels = np.zeros(len(ex), int)
        out = np.zeros((len(ex), 2))
        out[np.arange(len(ex)), np.where(np.isin(ex, self.right[(u["lr"], u["dp"]["max_grad_norm"])]), 0, 1)] = 1
        return {"pools": {"out": {"outputs": out, "labels": labels, "example": ex}}, "train_acc": 1.0}


def test_tuning_reads_held_out_accuracy_without_canaries_picks_the_best_and_flags_params_that_are_not(tmp_path):
    from dataclasses import replace
    params = _params("quick")
    sec = replace(PU.Params.from_params(params), checkpoints_dir=str(tmp_path))
    sec = replace(sec, settings=tuple(s for s in sec.settings if s.id in ("ann", "ann_dp_4")))
    pops = _pops(sec)
    p = pops["breast_cancer"]
    jobs = PU.tuning_plan(params, sec, pops)
    sp = PU.tuning_split(p, sec.dp_tuning.seed)
    held = np.asarray(sp["pools"]["target_out"])
    can = p.population.index[p.canaries.positions]
    clean = held[~np.isin(held, can)]
    best = (1e-2, 0.1)
    right = {(j["unit"]["lr"], j["unit"]["dp"]["max_grad_norm"]): clean[: len(clean) // 2] for j in jobs}
    right[best] = np.concatenate([clean, can])            # right on every clean example (and the canaries)
    store = _FakeStore(right)
    store.dir = PU.splits_dir(sec)
    t = PU.tuning(params, sec, store, pops, jobs)
    b = t[t.best].iloc[0]
    assert (b.lr, b.max_grad_norm, b.val_acc, b.n_val) == (1e-2, 0.1, 100.0, len(clean))   # canaries left out
    assert t.best.sum() == 1 and t.in_params.sum() == 1
    off = PU.tuning_mismatch(t)                           # params.yaml's point (1e-3, 10) is worse: flagged
    assert list(off.setting) == ["ann_dp_4"] and off.lr_params.iloc[0] == 1e-3
    right[(1e-3, 10.0)] = right[best]                     # a tie with the best is not flagged
    assert PU.tuning_mismatch(PU.tuning(params, sec, store, pops, jobs)).empty


def test_post_training_quantized_record_has_the_paper_c_grid_and_is_re_evaluated(tmp_path):
    import torch
    from lib.core import data as D
    from lib.core import quant
    from lib.core.models import Net
    from lib.stages.privacy_utility import post_training_quantized
    torch.manual_seed(0)
    x = torch.randn(60, 4)
    y = (x[:, 0] > 0).long()
    data = D.Tensors("toy", x[:40], y[:40], x[40:], y[40:], 2, "tabular", "toy", (0.0, 1.0))
    split = {"seed": 0, "mode": "ladder", "n_in": 20, "n_out": 20, "dataset": "toy",
             "source": {"target_in": "train", "target_out": "train", "eval": "test"},
             "pools": {"target_in": list(range(20)), "target_out": list(range(20, 40)), "eval": list(range(20))}}
    D.save_split(split, D.split_path(tmp_path, "toy", 0))
    net = Net("fcnet", "ann", (4,), 2, hidden=16)
    captured = {}

    class S:
        splits_dir, dev, eval_batch_size = tmp_path, torch.device("cpu"), 64

        def data_loader(self, name):
            return data

        def load_model(self, rec):
            captured["fp"] = [m.weight.detach().clone() for m in net.ops]
            return net

    unit = {"dataset": "toy", "seed": 0, "role": "target", "kind": "ann"}
    rec = {"unit": unit, "key": "k", "train_acc": 0.0, "test_acc": 0.0, "pools": {}}
    q = post_training_quantized(S(), rec, {"method": "rtn", "bits": 2})
    assert q["key"] == "k" and q["unit"]["ptq"] == {"method": "rtn", "bits": 2}
    assert set(q["pools"]) == {"in", "out", "eval"} and len(q["pools"]["in"]["outputs"]) == 20
    # re-evaluated: the reported accuracies are the quantized model's own on its pools
    z = torch.from_numpy(q["pools"]["eval"]["outputs"])
    assert q["test_acc"] == pytest.approx(float((z.argmax(1) == y[40:]).float().mean()))
    with torch.no_grad():
        assert not torch.allclose(net(x[40:]), z, atol=1e-4)        # ... of the quantized weights, not the FP ones
    assert [m.weight.abs().sum() for m in net.ops] == [w.abs().sum() for w in captured["fp"]]   # model not changed


def test_an_unreachable_epsilon_is_a_config_error_naming_the_setting_before_training():
    from dataclasses import replace
    params = _params("quick")
    sec = PU.Params.from_params(params)
    pops = _pops(sec)
    st = replace({s.id: s for s in sec.settings}["ann_dp_4"], epsilon=0.01)
    jobs = [{"setting": st, "dataset": "breast_cancer", "units": PU.units(params, sec, st, pops["breast_cancer"])}]
    with pytest.raises(config.ConfigError, match=re.escape("`09_privacy_utility.settings.ann_dp_4.epsilon`")):
        PU.check_dp(sec, jobs)
    ok = [{**jobs[0], "setting": replace(st, epsilon=4.0)}]
    PU.check_dp(sec, ok)


def test_a_defence_less_accurate_than_every_dp_point_is_read_as_dominated_never_as_a_verdict():
    from dataclasses import replace
    sec = PU.Params.from_params(_params("smoke"))
    sec = replace(sec, settings=(PP.Setting("ann", "ann", "reference", "ann"),
                                 PP.Setting("snn", "snn", "defence", "snn", claim="A: SNN < ANN"),
                                 PP.Setting("dp1", "ann", "dp", "dp1", epsilon=1.0),
                                 PP.Setting("dp8", "ann", "dp", "dp8", epsilon=8.0)))
    lines = PU._dominated(_leak(0.53, defence_acc=50.0), "LiRA online", sec)   # dp1: 60%, AUC 0.52; wd: 75%, 0.58
    dp = [x for x in lines if "DP-SGD" in x]
    assert len(lines) == 2 and len(dp) == 1 and "dominated" in dp[0] and "dp1" in dp[0]
    assert "leaks more than the defence" in [x for x in lines if "regularised" in x][0]
    lines = PU._dominated(_leak(0.40, defence_acc=50.0), "LiRA online", sec)
    assert all("leaks more than the defence" in x for x in lines)
    assert PU._dominated(_leak(0.53, defence_acc=80.0), "LiRA online", sec) == []   # bracketed: the verdict decides
