"""lib.stages.membership and the attack on real trained models: an overfit FCNet is attacked successfully, a model
whose IN and OUT come from the same unseen distribution is not; Net's quantized membranes take at most 2^b
values; the model cache trains a configuration once; comparisons and verdicts."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from lib.core import config
from lib.claims import registry as CL
from lib.stages import membership
from lib.claims import verdicts as V
from lib.core import data as D
from lib.attacks.mia import shadow_attack
from lib.core.models import Net, SNNConfig
from lib.core.train import ModelStore


W, A, S = "03_weight_quantization", "02_activation_quantization", "04_surrogate_gradients"


def _sec(name, **values):
    """A section's Params written by hand (lists as params.yaml writes them)."""
    return membership.Params(name=name, **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# ----------------------------------------------------------------------------- real models, real attack

def _breast_cancer():
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    x = StandardScaler().fit(x).transform(x)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _overfit_ann(x, y, seed, epochs=300):
    """FCNet ANN trained full-batch on a tiny set until it memorises it."""
    torch.manual_seed(seed)
    net = Net("fcnet", "ann", (x.shape[1],), 2, hidden=256)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def _out(net, x):
    return net(x).numpy()


def test_attack_detects_members_of_an_overfit_model():
    """20 Breast Cancer examples per model, 300 full-batch epochs, labels partly randomised so that
    memorisation (not the task) separates members: AUC > 0.75."""
    x, y = _breast_cancer()
    rng = np.random.default_rng(1)
    y = y.clone()
    flip = torch.tensor(rng.random(len(y)) < 0.3)
    y[flip] = 1 - y[flip]                          # hard labels make members stand out when memorised
    t_in, s_in = slice(0, 20), slice(20, 40)
    t_out, s_out = slice(100, 300), slice(300, 500)
    target, shadow = _overfit_ann(x[t_in], y[t_in], 0), _overfit_ann(x[s_in], y[s_in], 1)
    res = shadow_attack(_out(shadow, x[s_in]), _out(shadow, x[s_out]), _out(target, x[t_in]), _out(target, x[t_out]),
                        n_boot=100, seed=0)
    assert res.auc > 0.75, res.auc


def test_attack_is_at_chance_when_in_and_out_are_both_unseen():
    """IN and OUT drawn from the same distribution, none of them seen by the (trained) models: 0.4 < AUC < 0.6."""
    x, y = _breast_cancer()
    target, shadow = _overfit_ann(x[:40], y[:40], 0, epochs=100), _overfit_ann(x[40:80], y[40:80], 1, epochs=100)
    # "members" and "non-members" alike are unseen examples
    res = shadow_attack(_out(shadow, x[80:230]), _out(shadow, x[230:380]), _out(target, x[380:475]),
                        _out(target, x[475:569]), n_boot=0, seed=0)
    assert 0.4 < res.auc < 0.6, res.auc


# ----------------------------------------------------------------------------- quantized membranes

@pytest.mark.parametrize("bits", [2, 4])
def test_net_lif_membranes_take_at_most_2_to_the_b_values(bits):
    torch.manual_seed(0)
    net = Net("fcnet", "snn", (6,), 3, hidden=50, act_bits=bits, act_threshold=0.75, snn=SNNConfig(steps=6))
    seen = []
    hooks = [lif.register_forward_hook(lambda m, i, o: seen.append(o[1].detach())) for lif in net.lifs]
    with torch.no_grad():
        net(torch.randn(32, 6) * 2)
    for h in hooks:
        h.remove()
    assert len(seen) == len(net.lifs) == 2
    for mem in seen:
        assert mem.unique().numel() <= 2 ** bits
        assert torch.isin(mem, net.lifs[0].state_quant.levels.to(mem.dtype)).all()   # state_quant was applied


# ----------------------------------------------------------------------------- the cache

def _tiny_params(tmp_path):
    params = config.load("params.yaml", "smoke")
    params["scales"]["smoke"]["tabular"]["epochs"] = 1
    params["00_data"]["splits_dir"] = str(tmp_path / "splits")
    return params


def _iris_store(tmp_path, params, loader_calls):
    t = D.load("iris", tabular_test_fraction=0.2, tabular_split_seed=0)

    def loader(name):
        loader_calls.append(name)
        return t

    split = D.make_split(t.y_train, t.y_test, seed=0, n_in=None, n_out=None)
    D.save_split(split, D.split_path(params["00_data"]["splits_dir"], "iris", 0))
    return ModelStore(tmp_path / "ckpt", data_loader=loader, splits_dir=params["00_data"]["splits_dir"], progress=False)


def test_same_configuration_is_trained_once(tmp_path):
    params = _tiny_params(tmp_path)
    calls = []
    store = _iris_store(tmp_path, params, calls)
    u = config.unit(params, "iris", "ann", "target", 0, weight_bits=4)
    a = store.get_or_train(u)
    b = store.get_or_train(config.unit(params, "iris", "ann", "target", 0, weight_bits=4))
    assert store.trained == 1 and a["key"] == b["key"]
    # a second store reading the first one's folder does not train it again
    other = ModelStore(tmp_path / "ckpt2", read_dirs=[tmp_path / "ckpt"], data_loader=store.data_loader,
                       splits_dir=params["00_data"]["splits_dir"], progress=False)
    other.get_or_train(u)
    assert other.trained == 0
    # a different configuration is a different unit
    store.get_or_train(config.unit(params, "iris", "ann", "target", 0, weight_bits=2))
    assert store.trained == 2


def test_run_gives_one_row_per_setting_and_seed(tmp_path):
    params = _tiny_params(tmp_path)
    params["attack"]["n_boot"] = 50
    store = _iris_store(tmp_path, params, [])
    settings = membership.weight_quant_settings(_sec(W, datasets=["iris"], kinds=["ann"], bits=[4]))
    results, examples, roc = membership.run(store, params, settings, progress=False)
    assert list(results.method) == ["full precision", "w=4"] and store.trained == 4   # target + shadow each
    for col in ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_1pct", "tpr_at_0_1pct", "loss_auc", "train_acc",
                "test_acc", "mode", "data_source", "scale", "examples"):
        assert col in results.columns
    assert (results.auc_ci_low <= results.auc).all() and (results.auc <= results.auc_ci_high).all()
    assert set(examples.measure) == {"eval", "svm", "loss"} and {"fpr", "tpr"} <= set(roc.columns)
    # the per-example outcomes reproduce the reported AUC and test accuracy
    from sklearn.metrics import roc_auc_score
    ex = examples[examples.id == results.examples.iloc[1]]
    s = ex[ex.measure == "svm"]
    assert roc_auc_score(s.member, s.score) == pytest.approx(results.auc.iloc[1])
    assert 100 * ex[ex.measure == "eval"].correct.mean() == pytest.approx(results.test_acc.iloc[1])
    # both configurations are scored on the same examples (dataset-wide ids), so they pair one to one
    other = examples[(examples.id == results.examples.iloc[0]) & (examples.measure == "svm")]
    assert sorted(other.example) == sorted(s.example)
    # the engine uses them: the paired floor of FP vs w=4 comes from the examples, not from two independent SEs
    cmp = membership.comparison_table(results, [("fp vs w4", {"method": "full precision"}, {"method": "w=4"},
                                                 "higher")], "auc", examples=membership.examples_of(examples, params))
    assert cmp["test-set floor"].iloc[0] == "paired examples"


# ----------------------------------------------------------------------------- settings, comparisons, verdicts

def test_settings_grids():
    act = membership.act_quant_settings(_sec(A, datasets=["iris"], kinds=["ann", "snn"], bits=[8, 2],
                                             thresholds=[0.5, 1.5]))
    # ANN: FP + bits × θ; SNN: FP + FP at each θ + bits × θ (no output-layer variant without the switch)
    assert len(act) == (1 + 2 * 2) + (1 + 2 + 2 * 2)
    assert act[1].overrides == {"act_bits": 8, "act_threshold": 0.5} and act[1].output_quant is None
    snn = [s for s in act if s.kind == "snn"]
    assert [(s.method, s.act_threshold) for s in snn[:3]] == [("full precision", None), ("full precision", 0.5),
                                                               ("full precision", 1.5)]
    assert snn[1].overrides == {"threshold": 0.5} and snn[3].output_quant is True
    var = membership.act_quant_settings(_sec(A, datasets=["iris"], kinds=["ann", "snn"], bits=[8, 2],
                                             thresholds=[0.5, 1.5], output_layer_variant=True))
    extra = var[len(act):]
    assert len(extra) == 2 * 2 and all(s.kind == "snn" and s.output_quant is False for s in extra)
    assert extra[0].overrides == {"act_bits": 8, "act_threshold": 0.5, "quant_output": False}
    params = config.load("params.yaml", "smoke")
    sur = membership.surrogate_settings(_sec(S, datasets=["iris"], surrogates=["fast_sigmoid", "atan"],
                                             spike_rate_escape_legacy=True, triangular_true=False), params)
    assert [s.method for s in sur] == ["fast_sigmoid", "atan", "spike_rate_escape_legacy"]
    assert sur[0].overrides == {}          # the default surrogate stays the same unit as 01_models' SNN
    wq = membership.weight_quant_settings(_sec(W, datasets=["mnist"], kinds=["snn"], bits=[4],
                                               epochs={"image": 2, "tabular": None}))
    assert wq[0].overrides == {"epochs": 2} and wq[1].overrides == {"epochs": 2, "weight_bits": 4}


def _fake_results(diff, noise, seeds=5):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(seeds):
        base = 0.6 + rng.normal(0, 0.02)
        rows.append({"dataset": "d", "kind": "ann", "method": "full precision", "seed": s, "auc": base})
        rows.append({"dataset": "d", "kind": "ann", "method": "w=4", "seed": s,
                     "auc": base + diff + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_paired_verdicts():
    """Ad-hoc (label, a, b, expect) pairs go through lib.claims.verdicts ("similar" = equivalence within a margin)."""
    claim = [("d w=4 vs FP", dict(dataset="d", method="w=4"), dict(dataset="d", method="full precision"), "lower")]
    t = membership.comparison_table(_fake_results(-0.05, 0.005), claim)
    assert t.verdict.iloc[0] == "supported" and V.claim_verdict(t) == "supported"
    t = membership.comparison_table(_fake_results(+0.05, 0.005), claim)
    assert t.verdict.iloc[0] == "contradicted"
    t = membership.comparison_table(_fake_results(-0.001, 0.05), claim)
    assert "within noise" in t.verdict.iloc[0]
    t = membership.comparison_table(_fake_results(-0.05, 0.005, seeds=1), claim)
    assert V.claim_verdict(t).startswith("not testable")
    sim = [("d", dict(dataset="d", method="w=4"), dict(dataset="d", method="full precision"), "similar")]
    with pytest.raises(ValueError, match="margin"):
        membership.comparison_table(_fake_results(0.0, 0.01), sim)
    t = membership.comparison_table(_fake_results(0.0, 0.001, seeds=8), sim, margins={"auc": 0.03})
    assert V.claim_verdict(t) == "supported"
    t = membership.comparison_table(_fake_results(0.0, 0.05, seeds=2), sim, margins={"auc": 0.03})
    assert V.claim_verdict(t).startswith("not resolved")      # an interval holding 0 is not equivalence


def test_noise_floor_shrinks_with_the_test_set():
    assert membership.noise_floor(15, 15) > 0.15 > membership.noise_floor(1000, 1000)


def test_small_consistent_difference_within_test_set_noise_is_not_support():
    """Seeds that agree exactly (sd = 0) collapse the paired interval; the attack test set's own noise (Hanley SE)
    still bounds what counts as a difference."""
    df = _fake_results(0.0, 0.0)
    df.loc[df.method == "w=4", "auc"] -= 0.0044           # one swapped IN/OUT pair out of 15 x 15, every seed
    claim = [("d", dict(dataset="d", method="w=4"), dict(dataset="d", method="full precision"), "lower")]
    # no test-set SE known and identical differences: no noise to test against, no verdict
    assert membership.comparison_table(df, claim).verdict.iloc[0].startswith("not resolved")
    df["auc_se_hanley"] = membership.noise_floor(15, 15) / 1.96
    t = membership.comparison_table(df, claim)
    assert t.verdict.iloc[0] == "not resolved: same direction, within noise" and t["se test set"].iloc[0] > 0.05


# ----------------------------------------------------------------------------- §V-A confounds: output layer, θ

def test_quant_output_enters_the_unit_only_when_it_changes_the_model():
    p = config.load("params.yaml", "quick")
    from lib.core.train import unit_key
    q = dict(act_bits=4, act_threshold=0.5, epochs=25)
    default = config.unit(p, "breast_cancer", "snn", "target", 0, **q)
    assert "quant_output" not in default
    assert config.unit(p, "breast_cancer", "snn", "target", 0, quant_output=True, **q) == default
    var = config.unit(p, "breast_cancer", "snn", "target", 0, quant_output=False, **q)
    assert var == {**default, "quant_output": False} and unit_key(var) != unit_key(default)
    fp = config.unit(p, "breast_cancer", "snn", "target", 0)
    assert config.unit(p, "breast_cancer", "snn", "target", 0, quant_output=False) == fp   # nothing quantized
    assert "quant_output" not in fp
    with pytest.raises(config.ConfigError, match="`quant_output`"):
        config.unit(p, "breast_cancer", "ann", "target", 0, quant_output=False, **q)
    with pytest.raises(config.ConfigError, match="`quant_output`"):
        config.unit(p, "breast_cancer", "snn", "target", 0, quant_output="no", **q)


@pytest.mark.parametrize("scale,yaml_theta", [("smoke", None), ("quick", None), ("quick", 1)])
def test_fp_snn_at_the_default_threshold_is_the_full_precision_unit(scale, yaml_theta):
    """The FP SNN at θ = model.snn.threshold is the full-precision unit itself (same checkpoint key), also when
    params.yaml writes the threshold as an integer (json "1" and "1.0" hash differently)."""
    from lib.core.train import unit_key
    p = config.load("params.yaml", scale)
    if yaml_theta is not None:
        p["model"]["snn"]["threshold"] = yaml_theta
    theta = p["model"]["snn"]["threshold"]
    sec = dataclasses.replace(membership.Params.from_params(p, A), thresholds=(0.5, float(theta), 1.5))
    for params in ((p, None) if yaml_theta is None else (p,)):
        settings = membership.act_quant_settings(sec, params)
        for ds in sec.datasets:
            fp = [s for s in settings if s.dataset == ds and s.kind == "snn" and s.act_bits is None]
            assert [s.act_threshold for s in fp] == [None, 0.5, float(theta), 1.5]
            unit = {s.act_threshold: config.unit(p, ds, "snn", "target", 0, **s.overrides) for s in fp}
            assert unit_key(unit[float(theta)]) == unit_key(unit[None])    # reused: same unit, same checkpoint
            assert unit[0.5] == {**unit[None], "threshold": 0.5} and unit[1.5]["threshold"] == 1.5


def _settings_frame(settings, seeds=(0, 1, 2)):
    rng = np.random.default_rng(0)
    return pd.DataFrame([{**s.columns(), "seed": seed, "auc": rng.uniform(0.4, 0.8), "test_acc": rng.uniform(50, 90)}
                         for s in settings for seed in seeds])


def test_claim_filters_pick_the_right_rows():
    """With FP SNNs at every θ and the output-unquantized variant in the results, the paper's comparisons still
    use the single FP model and the output-quantized SNNs; same-θ comparisons pick one row per seed on each side;
    the variant's claims use only output_quant False rows."""
    from lib.claims import verdicts as V
    sec = _sec(A, datasets=["mnist"], kinds=["ann", "snn"], bits=[8, 2], thresholds=[0.5, 1.0, 1.5],
               output_layer_variant=True)
    df = _settings_frame(membership.act_quant_settings(sec)).replace({"dataset": {"mnist": "d"}})
    margins = {"auc": 0.03, "test_acc": 2.0}
    claims = (CL.paper_a_quantization("act", ["d"], [8, 2], margins, ("ann", "snn"), thresholds=[0.5, 1.0, 1.5],
                                      output_variant=True)
              + CL.paper_a_threshold_accuracy(["d"], [8, 2], margins, output_variant=True))
    ids = [c.id for c in claims]
    for want in ("SNN: quantized < FP at the same θ", "SNN (output unquantized): quantized < FP at the same θ",
                 "SNN (output unquantized): bit widths alike", "SNN (output unquantized) < ANN",
                 "SNN (output unquantized): higher θ, higher accuracy (4/8-bit)"):
        assert want in ids
    for c in claims:
        assert c.paper == "A" and c.comparisons, c.id
        labels = [p.label for p in c.comparisons]
        assert len(labels) == len(set(labels)), c.id
        for p in c.comparisons:
            label, a, b = p.label, p.a, p.b
            for f in (a, b):
                rows = V._select(df, f)
                assert len(rows) and set(rows.seed) == {0, 1, 2}, (c.id, label, f)
                if f["method"] == "full precision":
                    # the single FP model, or the FP SNN at exactly one θ
                    assert rows.act_threshold.nunique(dropna=False) == 1 and rows.act_bits.isna().all()
                if f["kind"] == "snn" and f["method"] != "full precision":
                    assert rows.output_quant.nunique() == 1     # never a mix of the two SNN variants
                    assert rows.output_quant.iloc[0] is (not c.id.startswith("SNN (output unquantized)"))
            if "same θ" in c.id:
                assert all(len(V._select(df, f)) == 3 for f in (a, b))   # one row per seed
    same = next(c for c in claims if c.id == "SNN: quantized < FP at the same θ")
    assert len(same.comparisons) == 2 * 3 and same.comparisons[0].b == dict(dataset="d", kind="snn",
                                                                            method="full precision", act_threshold=0.5)
    # without the switch (and without thresholds) the claim list is the paper's
    plain = CL.paper_a_quantization("act", ["d"], [8, 2], margins, ("ann", "snn"))
    assert not any("output unquantized" in c.id or "same θ" in c.id for c in plain)


def test_distinct_outputs_of_reads_each_comparisons_filters():
    """One row per (claim, comparison): medians of distinct_outputs / distinct_scores over the rows each side's
    filter picks (NaN where a side has no rows or no such column, and on the b side of a one-sample comparison)."""
    df = pd.DataFrame([{"dataset": "d", "kind": "snn", "method": m, "seed": s, "distinct_outputs": n + s,
                        "distinct_scores": 2 * n} for m, n in (("a=2", 4), ("a=8", 40)) for s in range(3)])
    claims = [V.Claim("c1", "A", "", "auc", (V.Comparison("2 vs 8", {"method": "a=2"}, {"method": "a=8"}, "lower"),
                                             V.Comparison("2 vs ?", {"method": "a=2"}, {"method": "a=4"}, "lower"))),
              V.Claim("c2", "A", "", "auc", (V.Comparison("one sample", {"method": "a=8"}, None, "below", 1.0),))]
    t = membership.distinct_outputs_of(df, claims)
    assert list(t.columns) == ["claim", "comparison", "distinct_outputs a", "distinct_scores a",
                               "distinct_outputs b", "distinct_scores b"]
    assert t[["claim", "comparison"]].values.tolist() == [["c1", "2 vs 8"], ["c1", "2 vs ?"], ["c2", "one sample"]]
    assert t.iloc[0, 2:].tolist() == [5.0, 8.0, 41.0, 80.0]
    assert t.iloc[1, 2:4].tolist() == [5.0, 8.0] and t.iloc[1, 4:].isna().all()
    assert t.iloc[2, 2:4].tolist() == [41.0, 80.0] and t.iloc[2, 4:].isna().all()


def _params_02(tmp_path, edit):
    import yaml
    params = yaml.safe_load(open("params.yaml"))
    edit(params["02_activation_quantization"])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("key,edit", [
    ("02_activation_quantization.output_layer_variant", lambda s: s.__setitem__("output_layer_variant", "yes")),
    ("02_activation_quantization.by_scale.quick.output_layer_variant",
     lambda s: s["by_scale"]["quick"].__setitem__("output_layer_variant", 1)),
    ("02_activation_quantization.output_layer_variant", lambda s: s.pop("output_layer_variant")),
])
def test_output_layer_variant_switch_is_validated(tmp_path, key, edit):
    with pytest.raises(config.ConfigError, match=f"`{key}`"):
        config.load(_params_02(tmp_path, edit))
    assert membership.Params.from_params(config.load("params.yaml"), A).output_layer_variant in (True, False)


def test_sections_take_their_own_values_into_units():
    """A 02-04 section's per-family values enter its units (and its seeds), but a section that sets none keeps
    01_models' units. (Moved here from test_config.py with the sections' Params.)"""
    p = config.load("params.yaml", "quick")
    sec = _sec(W, datasets=["mnist", "iris"], kinds=["ann"], bits=[4], members={"image": [300, 200]},
               batch_size={"image": 64}, seeds={"tabular": 1})
    us = membership.units_of(p, membership.weight_quant_settings(sec))
    mn = [u for u in us if u["dataset"] == "mnist"]
    assert {(u["n_in"], u["n_out"], u["batch_size"]) for u in mn} == {(300, 200, 64)} and len(mn) == 2 * 2 * 2
    ir = [u for u in us if u["dataset"] == "iris"]
    assert len(ir) == 2 * 2 and ir[0] == config.unit(p, "iris", "ann", "target", 0)


@pytest.mark.parametrize("name", [A, W, S])
def test_params_is_the_section_at_the_active_scale(name):
    """Params.from_params = config.section(...) read as attributes (lists as tuples); the schema is registered."""
    p = config.load("params.yaml", "quick")
    sec, got = config.section(p, name), membership.Params.from_params(p, name)
    for k in (*membership.OWN_KEYS[name], *config.FAMILY_KEYS, *config.DIR_KEYS, "curve_eval_size"):
        want = sec.get(k)
        assert getattr(got, k) == (tuple(want) if isinstance(want, list) else want), k
    assert got.replaced == sec["replaced"] and got.scale == "quick"
    assert config.STAGE_SCHEMAS[name].startswith("lib.stages.membership_params:")
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.datasets = ("iris",)


@pytest.mark.parametrize("key,value", [
    ("02_activation_quantization.bits", [8, 1]), ("02_activation_quantization.thresholds", [0.5, -1]),
    ("03_weight_quantization.kinds", ["cnn"]), ("04_surrogate_gradients.surrogates", ["sigmoidal"]),
    ("04_surrogate_gradients.triangular_true", "yes"), ("03_weight_quantization.by_scale.quick.bits", [8, 17]),
    ("04_surrogate_gradients.by_scale.smoke.datasets", ["svhn"]), ("03_weight_quantization.bits", 8),
])
def test_each_invalid_value_names_its_key(tmp_path, key, value):
    import yaml
    params = yaml.safe_load(open("params.yaml"))
    *path, last = key.split(".")
    node = params
    for part in path:
        node = node.setdefault(part, {}) if node.get(part) is not None else node.setdefault(part, {}) or {}
    node[last] = value
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(params))
    with pytest.raises(config.ConfigError, match=f"`{key}`"):
        config.load(f)


def test_examples_file_is_byte_reproducible(tmp_path):
    """Per-example outcomes written twice (a second apart) give the same bytes: no time stamp in the gzip header, so a
    rerun leaves the committed file as it was."""
    import time
    import pandas as pd
    from lib.stages.membership import write_examples
    frame = pd.DataFrame({"example": [3, 1, 2], "score": [0.123456789, -1.5, 2.0]})
    path = tmp_path / "examples.csv.gz"
    write_examples(frame, path)
    first = path.read_bytes()
    time.sleep(1.1)
    write_examples(frame, path)
    assert path.read_bytes() == first
    assert pd.read_csv(path).score.tolist() == [0.1234568, -1.5, 2.0]
