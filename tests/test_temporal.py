"""Notebook 05's library code: spike counts, the trace-feature attack, the RSS meter and the allocator count, GPU through a fake NVML, transfer units,
sweep points, the section's Params (05_temporal_dynamics validation) and the notebook's tables (checked against the
committed run's files). Fast (tiny synthetic data)."""
import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib.core import config as C
from lib.core import data as D
from lib.core import efficiency as E
from lib.stages import temporal as TD
from lib.core.models import Net, SNNConfig
from lib.core.train import ModelStore, predict


def _tensors(n_train=120, n_test=80, n_feat=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_tr, x_te = torch.randn(n_train, n_feat, generator=g), torch.randn(n_test, n_feat, generator=g)
    return D.Tensors("iris", x_tr, (x_tr[:, 0] > 0).long(), x_te, (x_te[:, 0] > 0).long(), 2, "tabular",
                     "synthetic", (-3.0, 3.0))


@pytest.fixture
def params():
    p = C.load("params.yaml", "smoke")
    p = copy.deepcopy(p)
    return p


def test_spike_counts_match_a_hand_count():
    torch.manual_seed(0)
    net = Net("fcnet", "snn", (6,), 3, hidden=20, snn=SNNConfig(steps=6, encoding="rate"), intensity_range=(-1, 1))
    with torch.no_grad():
        for op in net.ops:
            op.weight.mul_(4)   # enough drive for every layer to spike
    x = torch.randn(10, 6)
    counts = E.spike_counts(net, x, seed=5, batch_size=4)
    # by hand: the same generator draws the encoder's spikes, then each layer's spikes are summed
    gen = torch.Generator().manual_seed(5)
    expect_in, expect = 0.0, [0.0, 0.0]
    with torch.no_grad():
        for i in range(0, 10, 4):
            xb = x[i:i + 4]
            s = net.encoder(xb, 6, gen)
            expect_in += float(s.sum())
            h = s
            for k, (op, lif) in enumerate(zip(net.ops, net.lifs)):
                h, _ = lif(op(h.flatten(0, 1)).unflatten(0, (6, len(xb))))
                expect[k] += float(h.sum())
    assert counts["input"] == pytest.approx(expect_in / 10)
    assert [counts["lif1"], counts["lif2"]] == pytest.approx([e / 10 for e in expect])
    assert counts["lif1"] > 0 and counts["input"] > 0
    assert not net.record_spikes


def test_direct_input_has_no_input_spikes():
    net = Net("fcnet", "snn", (4,), 2, hidden=8, snn=SNNConfig(steps=3))
    c = E.spike_counts(net, torch.randn(5, 4))
    assert np.isnan(c["input"]) and set(c) == {"input", "lif1", "lif2"}


def test_trace_features_shape_and_order():
    tr = np.arange(3 * 4 * 2).reshape(3, 4, 2).astype(float)    # [T=3, N=4, C=2]
    f = TD.trace_features(tr)
    assert f.shape == (4, 6)
    np.testing.assert_array_equal(f[1], np.concatenate([tr[0, 1], tr[1, 1], tr[2, 1]]))


def test_rss_meter_sees_a_deliberate_allocation():
    import time
    with E.Meter("cpu", interval=0.005) as m:
        block = np.ones(200 * 1024 ** 2 // 8)     # 200 MB, touched
        block[::512] += 1
        time.sleep(0.05)
        del block
    r = m.result()
    assert 150 < r["rss_increase_mb"] < 400          # sees the 200 MB, and not ten times more
    assert r["rss_samples"] >= 3 and 0.05 <= r["wall_seconds"] < 5   # at least the sleep it timed


def _step_net():
    torch.manual_seed(0)
    return Net("fcnet", "snn", (6,), 3, hidden=64, snn=SNNConfig(steps=5, encoding="poisson_burst"))


def test_train_step_memory_is_repeatable_and_scales_with_the_batch():
    net = _step_net()
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    r1 = E.train_step(net, x[:32], y[:32])
    r2 = E.train_step(net, x[:32], y[:32])
    big = E.train_step(net, x, y)
    assert r1["step_batch"] == 32 and big["step_batch"] == 64
    # the allocator count is exactly repeatable (RSS is not: it moved tens of MB between identical runs)
    assert r1["step_alloc_mb"] == r2["step_alloc_mb"] and r1["step_activation_mb"] == r2["step_activation_mb"]
    # it counts the parameters and gradients, and the activations saved for backward grow with the batch
    param_mb = sum(p.numel() * p.element_size() for p in net.parameters()) / 2 ** 20
    assert r1["step_alloc_mb"] > 2 * param_mb
    assert big["step_activation_mb"] == pytest.approx(2 * r1["step_activation_mb"], rel=0.15)
    assert big["step_alloc_mb"] > r1["step_alloc_mb"]
    assert all(p.grad is None for p in net.parameters()) and not net.training


def test_allocated_peak_counts_a_known_activation():
    lin = torch.nn.Linear(1000, 1000, bias=False)
    x = torch.randn(256, 1000)

    def step():
        (lin(x).relu() ** 2).sum().backward()

    r = E.allocated_peak(lin, step)
    weight_mb = 1000 * 1000 * 4 / 2 ** 20             # weight + its gradient are in the total
    act_mb = 256 * 1000 * 4 / 2 ** 20                 # one [256, 1000] float32 activation
    assert r["total_mb"] >= 2 * weight_mb + act_mb
    assert r["total_mb"] < 2 * weight_mb + 8 * act_mb


def test_gpu_status_and_power_through_a_fake_nvml(monkeypatch):
    import sys
    import types
    assert E.gpu_status("cpu") == {"gpu": "n/a", "nvml": False}        # the CPU never has NVML
    fake = types.ModuleType("pynvml")
    fake.nvmlInit = lambda: None
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"handle{i}"
    fake.nvmlDeviceGetPowerUsage = lambda h: 150_000                   # mW
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda dev=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda dev=None: 3 * 1024 ** 2)
    assert E.gpu_status("cuda:0") == {"gpu": "Fake GPU", "nvml": True}
    with E.Meter("cuda:0", interval=0.005) as m:
        pass
    r = m.result()
    assert r["gpu_mean_power_w"] == pytest.approx(150.0) and r["gpu_peak_mem_mb"] == pytest.approx(3.0)
    monkeypatch.setitem(sys.modules, "pynvml", None)                   # a GPU without pynvml: no power reading
    assert E.gpu_status("cuda:0") == {"gpu": "Fake GPU", "nvml": False}
    with E.Meter("cuda:0") as m:
        pass
    assert m.result()["gpu_mean_power_w"] == "n/a"


def _store_with(tmp_path, params, t):
    split = D.make_split(t.y_train.numpy(), t.y_test.numpy(), seed=0, n_in=None, n_out=None)
    D.save_split(split, D.split_path(tmp_path / "splits", "iris", 0))
    return ModelStore(tmp_path / "ck", data_loader=lambda name: t, splits_dir=tmp_path / "splits", progress=False)


def test_transfer_unit_keeps_frozen_weights_and_traces_end_in_stored_outputs(tmp_path, params):
    t = _tensors()
    store = _store_with(tmp_path, params, t)
    runner = TD.Runner(store, tmp_path / "ck", spike_samples=16)
    src = runner.get(C.unit(params, "iris", "snn", "target", 0, encoding="poisson_burst", epochs=2))
    ft_unit = C.unit(params, "iris", "snn", "target", 0, encoding="poisson_burst", epochs=2,
                     init_from={"dataset": "iris", "key": src["key"]}, frozen=[0])
    ft = runner.get(ft_unit)
    assert torch.equal(ft["state_dict"]["ops.0.weight"], src["state_dict"]["ops.0.weight"])
    assert not torch.equal(ft["state_dict"]["ops.1.weight"], src["state_dict"]["ops.1.weight"])
    # efficiency was measured for both runs and the trace of a stochastic encoder reproduces the stored outputs
    e = runner.efficiency(ft)
    assert e["measured"] and e["rss_peak_mb"] > 0 and e["spikes_input"] > 0 and e["step_seconds"] > 0
    assert e["step_alloc_mb"] > 0 and "MemTracker" in e["step_alloc_method"]
    tr = runner.traces(ft)
    assert tr["in"].shape == (params["scales"]["smoke"]["steps"], len(ft["pools"]["in"]["labels"]), 2)
    np.testing.assert_allclose(tr["in"][-1], ft["pools"]["in"]["outputs"], atol=1e-5)
    cached = tmp_path / "ck" / "traces" / f"{ft['key']}.npz"
    assert cached.is_file()
    # the trace kept from the training run's evaluation pass equals one recomputed from the stored weights
    cached.unlink()
    again = runner.traces(ft)
    np.testing.assert_allclose(again["in"], tr["in"], atol=1e-6)
    np.testing.assert_allclose(again["out"], tr["out"], atol=1e-6)
    assert "traces" not in torch.load(store.find(ft_unit), weights_only=False)   # never in the checkpoint
    n_trained = store.trained
    runner.get(ft_unit)
    assert store.trained == n_trained          # cached: never trained twice


def _planted_record(rng, n=150, T=5, C=3, early_signal=0.0):
    """A record whose member traces carry `early_signal` at step 1 only; the final step (what paper A's attack sees)
    has the same law for members and non-members."""
    def pool(shift):
        tr = rng.normal(size=(T, n, C))
        tr[1, :, 0] += shift
        return {"outputs": tr[-1].astype(np.float32), "labels": rng.integers(0, C, n), "loss": rng.random(n)}, tr
    (pin, tin), (pout, tout) = pool(early_signal), pool(0.0)
    return {"pools": {"in": pin, "out": pout}, "_traces": {"in": tin, "out": tout}}


class _TraceRunner:
    def traces(self, rec):
        return rec["_traces"]


def test_trace_attack_finds_a_member_signal_the_final_step_hides(params):
    rng = np.random.default_rng(0)
    target, shadow = _planted_record(rng, early_signal=2.0), _planted_record(rng, early_signal=2.0)
    row, _ = TD.attack(target, shadow, dict(params["attack"], n_boot=50), 0, _TraceRunner())
    assert row["trace_auc"] > 0.8                                    # the whole trace sees the planted step
    assert abs(row["auc"] - 0.5) < 0.1                               # the final step carries nothing
    assert abs(row["loss_auc"] - 0.5) < 0.12
    null, _ = TD.attack(*(_planted_record(rng) for _ in range(2)), dict(params["attack"], n_boot=50), 0, _TraceRunner())
    assert abs(null["trace_auc"] - 0.5) < 0.1                        # no signal planted: chance


def test_sweep_points_reuse_the_default_unit(params):
    sec = dataclasses.replace(TD.Params.from_params(params), sweep={"datasets": ["iris"], "poisson_burst": {"lam": [2, 4]}})
    pts = TD.sweep_points(params, sec)
    assert [p[2] for p in pts] == [2.0, 4.0] and isinstance(pts[0][2], float)
    default = TD.unit(params, sec, "iris", "poisson_burst", "target", 0)
    swept = TD.unit(params, sec, "iris", "poisson_burst", "target", 0, encoding_kwargs=pts[0][3])
    assert default == swept
    # the section as config.section gives it (what tests/test_unit_keys.py passes) makes the same unit
    assert TD.unit(params, C.section(params, "05_temporal_dynamics"), "iris", "poisson_burst", "target", 0) == default


@pytest.mark.parametrize("scale", C.SCALES)
def test_params_is_the_section_at_the_active_scale(scale):
    p = C.load("params.yaml", scale)
    sec, got = C.section(p, TD.SECTION), TD.Params.from_params(p)
    for k in (*TD.Params.OWN_KEYS, *C.FAMILY_KEYS, *C.DIR_KEYS, "curve_eval_size"):
        want = sec.get(k)
        assert getattr(got, k) == (tuple(want) if isinstance(want, list) else want), k
    assert got.replaced == sec["replaced"] and got.encoders == p["encoders"]
    assert C.STAGE_SCHEMAS[TD.SECTION] == "lib.stages.temporal_params:Params.from_params"
    assert C._stage_schema(C.STAGE_SCHEMAS[TD.SECTION]).__self__ is TD.Params   # the stage re-exports its schema
    for ds in got.datasets:   # what the stage trains with: the resolver reads the Params as it read the dict
        assert C.effective(p, got.per_family, ds) == C.effective(p, TD.SECTION, ds)


@pytest.mark.parametrize("key,value", [
    ("05_temporal_dynamics.baseline", "morse"), ("05_temporal_dynamics.by_scale.quick.encodings", ["rate", "morse"]),
    ("05_temporal_dynamics.trace_attack", 1), ("05_temporal_dynamics.transfer", {"source": "mnist", "target": "iris",
                                                                                 "frozen": [0]}),
    ("05_temporal_dynamics.efficiency", {"spike_samples": 0, "rss_interval": 0.01}),
    ("05_temporal_dynamics.by_scale.smoke.sweep.datasets", {"datasets": ["svhn"]}),
    ("05_temporal_dynamics.encodings", ["direct", "rate"]),   # the active (paper) grid lacks the baseline
])
def test_each_invalid_value_names_its_key(key, value):
    p = {**yaml.safe_load(open("params.yaml")), "scale": "paper"}
    *path, last = key.split(".")
    if last == "datasets" and path[-1] == "sweep":
        *path, last = path
    node = p
    for part in path:
        node = node[part]
    node[last] = value
    with pytest.raises(C.ConfigError, match=f"`{key}`"):
        C.validate(p)


# ----------------------------------------------------------------------------- the notebook's tables

RES = Path("results/05_temporal_dynamics")


def _roundtrip(df, tmp_path, **kw):
    df.to_csv(tmp_path / "t.csv", **kw)
    return pd.read_csv(tmp_path / "t.csv")


def test_summaries_reproduce_the_committed_tables(tmp_path):
    """summary.csv and efficiency_summary.csv of the committed run, recomputed from its results.csv and
    efficiency.csv as the notebook does (metrics.json: tests/test_headline_metrics.py)."""
    results, eff = pd.read_csv(RES / "results.csv"), pd.read_csv(RES / "efficiency.csv")
    summ = _roundtrip(TD.grid_summary(results), tmp_path, index=False)
    pd.testing.assert_frame_equal(summ, pd.read_csv(RES / "summary.csv"))
    esumm = _roundtrip(TD.efficiency_summary(eff), tmp_path, index=False)
    pd.testing.assert_frame_equal(esumm, pd.read_csv(RES / "efficiency_summary.csv"))
    table = TD.grid_table(summ)
    assert table.loc[("mnist", "regular_rate"), "seeds"] == 2 and " ± " in table.loc[("mnist", "regular_rate"), "auc"]
    assert list(TD.trace_table(summ).columns)[-1] == "trace − final"
    alloc = TD.alloc_table(eff)
    assert (alloc.models.groupby(level=0).sum() == eff.groupby("dataset").size()).all()


def test_tables_of_transfer_and_sweep_format_mean_and_std():
    transfer = pd.DataFrame({"encoding": ["rate", "rate", "burst"], "source_test_acc": [90.0, 92.0, 80.0],
                             "scratch_test_acc": [70.0, 72.0, 60.0], "transfer_test_acc": [69.0, 70.0, 55.0],
                             "drop": [1.0, 2.0, 5.0]})
    t = TD.transfer_table(transfer)
    assert t.loc["rate", "drop"] == "1.50 ± 0.71" and t.loc["burst", "drop"] == "5.00" and t.loc["rate", "seeds"] == 2
    sweep = pd.DataFrame({"dataset": "iris", "encoding": "poisson_burst", "constant": "tau", "value": [2.0, 2.0],
                          "test_acc": [80.0, 82.0], "auc": [0.5, 0.6]})
    assert TD.sweep_table(sweep).auc.iloc[0] == "0.5500 ± 0.0707"


def test_reading_names_models_near_chance():
    res = pd.DataFrame({"dataset": "iris", "encoding": ["rate", "burst"], "test_acc": [95.0, 38.0],
                        "train_acc": [99.0, 40.0], "auc_ci_low": 0.4, "auc_ci_high": 0.6, "n_members": 50,
                        "epochs": 10, "seed": 0, "data_source": "sklearn", "scale": "smoke"})
    claims = pd.DataFrame({"our verdict": ["not resolved (0/2)", "supported: 2/2", "not resolved"],
                           "verdict class": ["not resolved", "supported", "not resolved"]})
    text = TD.reading(res, claims, {"iris": 3}, "cpu", {"gpu": "n/a", "nvml": False})
    assert "Near chance: burst" in text and "chance 33%" in text and "not resolved × 2, supported × 1" in text
    assert "not testable here" in text


def test_encoder_tables_are_exact():
    p = C.load("params.yaml", "smoke")
    consts, exp = TD.encoder_tables(p, ["direct", "regular_rate", "poisson_burst"], 10)
    assert list(consts.index) == ["regular_rate", "poisson_burst"] and list(exp.columns) == ["p = 0.1", "p = 0.5", "p = 1.0"]
    assert exp.loc["regular_rate", "p = 0.5"] == pytest.approx(5.0)   # ⌊T·p⌋ spikes


def test_efficiency_row_keeps_the_column_order():
    meas = {"step_rss_increase_mb": 1.0, "step_seconds": 0.1, "step_alloc_mb": 2.0, "step_activation_mb": 1.5,
            "step_batch": 8, "spikes": {"input": float("nan"), "lif1": 3.0, "lif2": 1.0}}
    r = E.row(meas, "cpu")
    assert list(r)[:3] == ["wall_seconds", "rss_peak_mb", "rss_increase_mb"] and np.isnan(r["wall_seconds"])
    assert r["gpu_peak_mem_mb"] == "n/a" and r["device"] == "cpu" and r["spikes_total"] == 4.0
    assert list(r)[-4:] == ["spikes_input", "spikes_lif1", "spikes_lif2", "spikes_total"]


def test_config_rejects_bad_temporal_values():
    p = yaml.safe_load(open("params.yaml"))
    bad = copy.deepcopy(p)
    bad["05_temporal_dynamics"]["encodings"] = ["rate", "morse"]
    with pytest.raises(C.ConfigError, match="05_temporal_dynamics.encodings"):
        C.validate(bad)
    bad = copy.deepcopy(p)
    bad["encoders"]["poisson_burst"]["tau"] = 0
    with pytest.raises(C.ConfigError, match="encoders.poisson_burst"):
        C.validate(bad)
    bad = copy.deepcopy(p)
    bad["05_temporal_dynamics"]["by_scale"]["quick"]["sweep"] = {"datasets": ["iris"], "delayed_burst": {"p_min": [2.0]}}
    with pytest.raises(C.ConfigError, match="p_min"):
        C.validate(bad)
