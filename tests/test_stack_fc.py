"""The stacked FCNet ensemble (lib.core.stack_fc) is K Nets trained one by one (lib.core.train.fit), batched.

Equality: float64 throughout. Stacking is exact for copies and every elementwise step (LIF recurrence, ReLU, Adam);
the linear layers are not bit-identical: a stack's torch.baddbmm/bmm and a Net's nn.Linear (addmm/mm) may sum a
dot product in different orders (different kernels and blocking), and the backward's reductions (the direct
encoding's sum over T) run over another memory layout. Measured here: forwards equal to 0-3e-16, weights after two
epochs within 2e-15 (bit-equal for some settings, not all). TOL = 1e-10 leaves room for that and still catches any
real difference (a wrong batch, a wrong draw, a wrong gradient moves weights by ≥ 1e-6). A spike flip (a membrane
within 1e-15 of θ) would break it; in float64 that has probability ~1e-7 per run.
"""
from pathlib import Path

import pytest
import torch

from lib.core import config, data as D
from lib.core import stack_fc as S
from lib.core.train import build, fit

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-10
N_FEATURES, N_CLASSES, N_MEMBERS, N_EVAL = 30, 2, 40, 24


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def params():
    return config.load(ROOT / "params.yaml", "smoke")


def _data() -> D.Tensors:
    """Breast-Cancer-shaped synthetic data in [0, 1] (so rate coding fires), float64, learnable labels."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, N_FEATURES, generator=g, dtype=torch.float64)
    y = (x[:, :3].sum(1) > 1.5).long()
    return D.Tensors("breast_cancer", x[:150], y[:150], x[150:], y[150:], N_CLASSES, "tabular", "synthetic", (0.0, 1.0))


def _split(seed: int, n_members: int = N_MEMBERS) -> dict:
    perm = torch.randperm(150, generator=torch.Generator().manual_seed(100 + seed)).tolist()
    pools = {"target_in": perm[:n_members], "target_out": perm[40:60], "shadow_in": perm[60:60 + n_members],
             "shadow_out": perm[100:120], "eval": list(range(N_EVAL))}
    return {"pools": pools, "source": {**{k: "train" for k in pools}, "eval": "test"}}


def _units(params, kind, seeds=(0, 1, 2), roles=("target", "shadow", "target"), **kw):
    over = {"epochs": 2, **({"steps": 5} if kind == "snn" else {}), **kw}
    return [config.unit(params, "breast_cancer", kind, r, s, **over) for s, r in zip(seeds, roles)]


def _nets(units, data):
    nets = []
    for u in units:
        torch.manual_seed(S.init_seed(u))   # as ModelStore._train builds a model
        nets.append(build(u, data).double())
    return nets


SNN_SETTINGS = [dict(encoding="direct", readout="last"), dict(encoding="rate", readout="mean"),
                dict(encoding="poisson_burst", readout="last")]


def test_stack_unstack_round_trip_is_exact(params):
    data = _data()
    for kind in ("ann", "snn"):
        nets = _nets(_units(params, kind), data)
        back = S.stack(nets).unstack()
        assert len(back) == 3
        for a, b in zip(nets, back):
            assert type(b) is type(a) and b.kind == kind
            sa, sb = a.state_dict(), b.state_dict()
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("setting", [None] + SNN_SETTINGS, ids=["ann"] + [s["encoding"] for s in SNN_SETTINGS])
def test_stacked_forward_equals_each_nets_forward(params, setting):
    data = _data()
    kind = "ann" if setting is None else "snn"
    nets = _nets(_units(params, kind, **(setting or {})), data)
    st = S.stack(nets)
    x = torch.stack([data.x_train[k * 16:(k + 1) * 16] for k in range(3)])   # each model its own batch
    gens = [torch.Generator().manual_seed(7 + k) for k in range(3)]
    got = st(x, gens)
    assert got.shape == (3, 16, N_CLASSES)
    for k, net in enumerate(nets):
        gen = torch.Generator().manual_seed(7 + k)
        want = net(x[k], gen) if kind == "snn" else net(x[k])
        assert (got[k] - want).abs().max() < TOL
        # each model's generator has drawn exactly what the model draws alone (nothing for direct coding)
        assert torch.equal(gens[k].get_state(), gen.get_state())
    if kind == "snn":
        tr = st.trace(x, [torch.Generator().manual_seed(7 + k) for k in range(3)])
        assert tr.shape == (5, 3, 16, N_CLASSES)


@pytest.mark.parametrize("setting", [None] + SNN_SETTINGS[:2], ids=["ann", "snn-direct", "snn-rate"])
def test_stacked_training_equals_one_by_one_fit(params, setting):
    data = _data()
    kind = "ann" if setting is None else "snn"
    units = _units(params, kind, **(setting or {}))
    splits = [_split(u["seed"]) for u in units]
    alone = _nets(units, data)
    curves_alone = [fit(m, u, data, s, dev=torch.device("cpu"), progress=False)
                    for m, u, s in zip(alone, units, splits)]
    stacked = _nets(units, data)
    before = [p.detach().clone() for p in stacked[0].parameters()]
    curves = S.fit_units(stacked, units, data, splits)
    assert not all(torch.equal(a, p) for a, p in zip(before, stacked[0].parameters()))   # trained in place
    for a, b, ca, cb in zip(alone, stacked, curves_alone, curves):
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            assert (pa - pb).abs().max() < TOL, name
        assert [c["epoch"] for c in cb] == [1, 2]
        for ea, eb in zip(ca, cb):
            assert ea["train_acc"] == eb["train_acc"] and ea["test_acc"] == eb["test_acc"]
            assert abs(ea["loss"] - eb["loss"]) < TOL
    # the three models differ (own seeds, own batches): the stack did not train one model three times
    assert (stacked[0].ops[0].weight - stacked[2].ops[0].weight).abs().max() > 1e-3


def test_one_adam_over_stacked_parameters_is_k_adams():
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3)]
    grads = [[torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3)] for _ in range(5)]
    alone = [p.clone().requires_grad_() for p in ps]
    opts = [torch.optim.Adam([p], lr=1e-2, weight_decay=1e-3) for p in alone]
    st = torch.stack(ps).requires_grad_()
    opt = torch.optim.Adam([st], lr=1e-2, weight_decay=1e-3)
    for step in grads:
        for p, o, gr in zip(alone, opts, step):
            p.grad = gr.clone()
            o.step()
        st.grad = torch.stack(step)
        opt.step()
    assert all(torch.equal(st[k], alone[k]) for k in range(3))   # elementwise: bit for bit


@pytest.mark.parametrize("override, key", [(dict(act_bits=4), "act_bits"), (dict(weight_bits=8), "weight_bits"),
                                           (dict(dp={"epsilon": 1.0, "delta": 1e-5, "max_grad_norm": 1.0}), "dp"),
                                           (dict(arch="convnet"), "arch"), (dict(frozen=[0]), "frozen")])
def test_unsupported_unit_keys_raise(params, override, key):
    units = _units(params, "snn")
    units[1] = {**units[1], **override}
    with pytest.raises(ValueError, match=f"`{key}`"):
        S.check_units(units)


def test_mixed_recipes_and_unequal_pools_raise(params):
    data = _data()
    units = _units(params, "ann")
    with pytest.raises(ValueError, match="`lr`"):
        S.check_units([units[0], {**units[1], "lr": 0.5}])
    splits = [_split(0), _split(1, n_members=39), _split(2)]
    with pytest.raises(ValueError, match="member-pool"):
        S.fit_units(_nets(units, data), units, data, splits)
    with pytest.raises(ValueError, match="augmentation"):
        S.fit_units(_nets(units, data), units, D.Tensors(**{**vars(data), "augment": True}), splits)
    quantized = _units(params, "ann", act_bits=4)
    with pytest.raises(ValueError, match="act_bits"):
        S.stack(_nets(quantized, data))


def test_scoring_in_slices_draws_and_scores_as_predict(params, monkeypatch):
    """predict_stacked draws each eval batch's encoding whole (as predict) and runs it in slices: same outputs."""
    from lib.core.train import predict
    data = _data()
    nets = _nets(_units(params, "snn", encoding="rate"), data)
    st = S.stack(nets)
    x = data.x_test[:20]
    monkeypatch.setattr(S, "STACK_ROWS", 3 * 4)   # slices of 4 examples
    got = S.predict_stacked(st, torch.stack([x] * 3), [5, 6, 7], batch_size=8)
    for k, net in enumerate(nets):
        assert (got[k] - predict(net, x, seed=5 + k, batch_size=8)).abs().max() < TOL


def test_fused_adam_option_trains_to_the_same_weights_within_rounding(params):
    data = _data()
    units = _units(params, "ann")
    splits = [_split(u["seed"]) for u in units]
    plain, fused = _nets(units, data), _nets(units, data)
    S.fit_units(plain, units, data, splits)
    S.fit_units(fused, units, data, splits, fused_adam=True)
    for a, b in zip(plain, fused):
        assert all((pa - pb).abs().max() < TOL for pa, pb in zip(a.parameters(), b.parameters()))
