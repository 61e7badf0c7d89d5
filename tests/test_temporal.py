"""Notebook 05's library code: spike counts, the trace-feature attack, the RSS meter, GPU n/a, transfer units,
sweep points, the paired verdicts and the 05_temporal_dynamics config validation. Fast (tiny synthetic data)."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib.core import config as C
from lib.core import data as D
from lib.attacks import efficiency as E
from lib.attacks import temporal as TD
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
    with E.Meter("cpu", interval=0.005) as m:
        block = np.ones(200 * 1024 ** 2 // 8)     # 200 MB, touched
        block[::512] += 1
        import time
        time.sleep(0.05)
        del block
    r = m.result()
    assert r["rss_increase_mb"] > 150
    assert r["rss_samples"] >= 3 and r["wall_seconds"] > 0


def test_train_step_measures_memory_and_leaves_no_gradients():
    net = Net("fcnet", "snn", (6,), 3, hidden=64, snn=SNNConfig(steps=5, encoding="poisson_burst"))
    r = E.train_step(net, torch.randn(32, 6), torch.randint(0, 3, (32,)))
    assert r["step_batch"] == 32 and r["step_seconds"] > 0 and r["step_rss_increase_mb"] >= 0
    assert all(p.grad is None for p in net.parameters()) and not net.training


def test_gpu_is_not_available_here():
    r = E.gpu_status("cpu")
    assert r == {"gpu": "n/a", "nvml": False}
    with E.Meter("cpu") as m:
        pass
    assert m.result()["gpu_peak_mem_mb"] == "n/a" and m.result()["gpu_mean_power_w"] == "n/a"


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


def test_attack_with_trace_features(tmp_path, params):
    t = _tensors()
    store = _store_with(tmp_path, params, t)
    runner = TD.Runner(store, tmp_path / "ck")
    recs = [runner.get(C.unit(params, "iris", "snn", role, 0, encoding="rate", epochs=2)) for role in ("target", "shadow")]
    row = TD.attack(recs[0], recs[1], dict(params["attack"], n_boot=50), 0, runner)
    assert 0 <= row["auc"] <= 1 and 0 <= row["trace_auc"] <= 1 and "loss_auc" in row


def test_sweep_points_reuse_the_default_unit(params):
    sec = C.section(params, "05_temporal_dynamics")
    sec["sweep"] = {"datasets": ["iris"], "poisson_burst": {"lam": [2, 4]}}
    pts = TD.sweep_points(params, sec)
    assert [p[2] for p in pts] == [2.0, 4.0] and isinstance(pts[0][2], float)
    default = TD.unit(params, sec, "iris", "poisson_burst", "target", 0)
    swept = TD.unit(params, sec, "iris", "poisson_burst", "target", 0, encoding_kwargs=pts[0][3])
    assert default == swept


def test_paired_verdicts():
    df = pd.DataFrame({"seed": [0, 1, 2, 0, 1, 2], "encoding": ["a"] * 3 + ["b"] * 3,
                       "auc": [0.50, 0.51, 0.52, 0.60, 0.62, 0.61]})
    r = TD.paired(df, "auc", {"encoding": "a"}, {"encoding": "b"})
    assert r["pairs"] == 3 and r["a − b"] == pytest.approx(-0.1)
    assert TD.verdict(r, "lower") == "supported" and TD.verdict(r, "higher") == "contradicted"
    assert TD.verdict(r, "", margin=0.0) == "supported"
    assert TD.verdict(r, "above", margin=-0.2) == "supported" and TD.verdict(r, "above", margin=-0.05) == "contradicted"
    assert TD.claim_verdict(pd.Series(["supported", "same direction, within noise"])).startswith("partly")
    assert TD.claim_verdict(["supported", "contradicted"]).startswith("mixed")
    assert TD.claim_verdict(["same direction, 1 seed (no interval)", "no data"]).startswith("not testable")
    assert TD.claim_verdict(["not resolved: interval straddles the margin"]).startswith("not resolved")


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
