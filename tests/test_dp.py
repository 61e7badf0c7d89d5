"""DP-SGD (lib.core.dp): per-example gradients of the SNN's [T·B, ...] layers, the accountant round trip, clipping and
the update, agreement with Opacus's own pipeline on an ANN, determinism, and a planted memorisation that DP hides."""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer

from lib.core import dp, models
from lib.core.models import Net, SNNConfig

pytestmark = [pytest.mark.usefixtures("one_thread"),
              # Opacus's hooks on a model whose input needs no gradient; RDP at large ε: both expected here
              pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
              pytest.mark.filterwarnings("ignore:Optimal order is the largest alpha")]

T = 3
SHAPES = {"fcnet": (8,), "convnet": (1, 8, 8)}


def tiny(arch, kind, *, encoding="direct", n_classes=3, seed=0, scale=1.0, dtype=torch.float32):
    torch.manual_seed(seed)
    net = Net(arch, kind, SHAPES[arch], n_classes, hidden=16, channels=(4, 4),
              snn=SNNConfig(steps=T, encoding=encoding)).to(dtype)
    with torch.no_grad():   # larger weights: every SNN layer spikes, so every layer has a gradient
        for p in net.parameters():
            p.mul_(scale)
    return net


def loop_grads(net, x, y):
    """The reference: one forward and backward pass per example (its own loss)."""
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    per = [torch.autograd.grad(F.cross_entropy(net(x[i:i + 1]), y[i:i + 1]), [dict(net.named_parameters())[n]
                                                                              for n in names])
           for i in range(len(x))]
    return {n: torch.stack([g[j] for g in per]) for j, n in enumerate(names)}


@pytest.mark.parametrize("arch,kind,encoding", [("fcnet", "ann", "direct"), ("convnet", "ann", "direct"),
                                                ("fcnet", "snn", "direct"), ("convnet", "snn", "direct"),
                                                ("fcnet", "snn", "regular_rate"), ("convnet", "snn", "regular_rate")])
def test_per_sample_grads_equal_a_loop_over_examples(arch, kind, encoding):
    """Each example's gradient equals its own backward pass. regular_rate is a deterministic non-static encoder, so
    there the first layer too sees T·B rows. Summing the wrong rows (reshape [B, T] instead of [T, B]) fails this."""
    net = tiny(arch, kind, encoding=encoding, scale=3.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, *SHAPES[arch], generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 3, (6,), generator=g)
    ours, out = dp.per_sample_grads(net, x, y)
    ref = loop_grads(net, x, y)
    assert ours.keys() == ref.keys()
    torch.testing.assert_close(out, net(x).detach())
    for name, r in ref.items():
        assert ours[name].shape == (6, *dict(net.named_parameters())[name].shape)
        # the examples differ (a per-batch sum copied to every row, or rows of one example, would not)
        assert float((r - r.mean(0)).abs().max()) > 1e-3 * float(r.abs().max()) > 0, name
        torch.testing.assert_close(ours[name], r, rtol=1e-5, atol=1e-5 * float(r.abs().max()), msg=name)


def test_opacus_hooks_take_the_snn_rows_for_samples():
    """Why per_sample_grads exists (1): Opacus's hook-based GradSampleModule gives T·B 'samples' for an SNN layer."""
    net = tiny("fcnet", "snn", scale=3.0)
    x, y = torch.rand(5, 8), torch.randint(0, 3, (5,))
    gsm = GradSampleModule(net, loss_reduction="sum")
    try:
        F.cross_entropy(gsm(x), y, reduction="sum").backward()
        assert net.ops[1].weight.grad_sample.shape[0] == T * 5
    finally:
        gsm._close()
    assert dp.per_sample_grads(net, x, y)[0]["ops.1.weight"].shape[0] == 5


def test_opacus_conv_grad_sampler_is_wrong_on_channels_last():
    """Why per_sample_grads exists (2): Net's ConvNet runs channels-last, and Opacus 1.6's conv grad sampler
    (opacus.utils.tensor_utils.unfold2d: as_strided with contiguous strides) gets the second conv wrong then,
    even for the ANN. If this starts failing, Opacus was fixed."""
    net = tiny("convnet", "ann")
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(5, 1, 8, 8, generator=g), torch.randint(0, 3, (5,), generator=g)
    ref = loop_grads(net, x, y)["ops.1.weight"]
    gsm = GradSampleModule(net)
    try:
        F.cross_entropy(gsm(x), y).backward()
        assert not torch.allclose(net.ops[1].weight.grad_sample, ref, atol=1e-3 * float(ref.abs().max()))
    finally:
        gsm._close()
    torch.testing.assert_close(dp.per_sample_grads(net, x, y)[0]["ops.1.weight"], ref)


def test_weight_quantized_models_are_refused():
    net = Net("fcnet", "snn", (8,), 3, hidden=16, weight_bits=4, snn=SNNConfig(steps=T))
    with pytest.raises(ValueError, match="weight_bits"):
        dp.fit_dp(net, torch.rand(8, 8), torch.zeros(8, dtype=torch.long), epochs=1, batch_size=4, lr=0.1,
                  max_grad_norm=1.0, noise_multiplier=1.0, seed=0)


@pytest.mark.parametrize("epsilon", [1.0, 4.0])
def test_noise_multiplier_gives_back_its_epsilon(epsilon):
    q, steps, delta = 0.05, 200, 1e-5
    sigma = dp.noise_multiplier(epsilon, delta, q, steps)
    spent = dp.spent_epsilon(sigma, q, steps, delta)
    assert 0.99 * epsilon <= spent <= epsilon
    assert dp.spent_epsilon(1.5 * sigma, q, steps, delta) < spent < dp.spent_epsilon(0.7 * sigma, q, steps, delta)
    assert dp.noise_multiplier(epsilon / 2, delta, q, steps) > sigma


def test_no_epsilon_means_no_noise():
    assert dp.noise_multiplier(None, 1e-5, 0.1, 10) == 0.0 == dp.noise_multiplier(math.inf, 1e-5, 0.1, 10)
    assert dp.spent_epsilon(0.0, 0.1, 10, 1e-5) == math.inf


def _flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("kind", ["ann", "snn"])
def test_clipped_update_is_lr_times_mean_of_clipped_grads(kind):
    """Noise 0, a tiny bound C: every per-example gradient is clipped to norm ≤ C, and the SGD update is
    lr · Σ_i clipped g_i / expected batch size."""
    net = tiny("fcnet", kind, scale=3.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(6, 8, generator=g, dtype=torch.float64) * 2, torch.randint(0, 3, (6,), generator=g)
    C, lr, expected = 1e-3, 0.5, 8
    ref = loop_grads(net, x, y)
    flat = torch.cat([r.flatten(1) for r in ref.values()], 1)             # [B, all parameters], parameter order
    norms = flat.norm(dim=1)
    clipped = flat * (C / (norms + 1e-6)).clamp(max=1.0)[:, None]
    assert bool((norms > 10 * C).all())                                     # the bound bites for every example
    assert bool((clipped.norm(dim=1) <= C * (1 + 1e-9)).all())
    before = _flat(net)
    opt = dp.dp_optimizer(net, lr=lr, noise_multiplier=0.0, max_grad_norm=C, expected_batch_size=expected)
    dp.dp_step(net, opt, x, y)
    torch.testing.assert_close(before - _flat(net), lr * clipped.sum(0) / expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("arch", ["fcnet", "convnet"])
def test_step_equals_opacus_pipeline_on_an_ann(arch, monkeypatch):
    """Same seed, same noise: our step (per_sample_grads + DPOptimizer) equals Opacus's GradSampleModule +
    DPOptimizer on an ANN, where Opacus's hooks are right (the ConvNet in the contiguous memory format: see above)."""
    monkeypatch.setattr(models, "_channels_last", lambda t: t)
    ours, theirs = tiny(arch, "ann"), tiny(arch, "ann").to(memory_format=torch.contiguous_format)
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(7, *SHAPES[arch], generator=g), torch.randint(0, 3, (7,), generator=g)
    kw = dict(noise_multiplier=0.7, max_grad_norm=0.5, expected_batch_size=6)
    opt = dp.dp_optimizer(ours, lr=0.3, generator=torch.Generator().manual_seed(9), **kw)
    dp.dp_step(ours, opt, x, y)
    gsm = GradSampleModule(theirs)
    try:
        ref = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.3), generator=torch.Generator().manual_seed(9), **kw)
        F.cross_entropy(gsm(x), y).backward()
        ref.step()
    finally:
        gsm._close()
    assert not torch.allclose(_flat(ours), _flat(tiny(arch, "ann")), atol=1e-3)   # it moved
    torch.testing.assert_close(_flat(ours), _flat(theirs), rtol=1e-5, atol=1e-6)


def test_empty_poisson_batch_steps_with_noise_only():
    for sigma, moves in ((0.0, False), (1.0, True)):
        net = tiny("fcnet", "ann")
        before = _flat(net)
        opt = dp.dp_optimizer(net, lr=0.1, noise_multiplier=sigma, max_grad_norm=1.0, expected_batch_size=4,
                              generator=torch.Generator().manual_seed(0))
        assert dp.dp_step(net, opt, torch.rand(0, 8), torch.zeros(0, dtype=torch.long)) == (0.0, 0)
        assert (not torch.equal(before, _flat(net))) == moves


def _fit(net, seed, **kw):
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(24, *SHAPES[net.arch], generator=g), torch.randint(0, 3, (24,), generator=g)
    return dp.fit_dp(net, x, y, **{**dict(epochs=2, batch_size=6, lr=0.2, max_grad_norm=1.0, noise_multiplier=1.0,
                                          seed=seed, delta=1e-3), **kw})


@pytest.mark.parametrize("arch", ["fcnet", "convnet"])
def test_same_seed_same_weights(arch):
    """SNN with the stochastic rate encoder: Poisson draws, encoder and noise all follow the seed."""
    runs = {}
    for key, seed in (("a", 5), ("b", 5), ("c", 6)):
        net = tiny(arch, "snn", encoding="rate", scale=3.0)
        runs[key] = (_fit(net, seed), _flat(net))
    assert torch.equal(runs["a"][1], runs["b"][1]) and runs["a"][0] == runs["b"][0]
    assert not torch.allclose(runs["a"][1], runs["c"][1], atol=1e-3)
    res = runs["a"][0]
    assert res["steps"] == 2 * 4 and len(res["curve"]) == 2
    assert res["epsilon"] == pytest.approx(dp.spent_epsilon(1.0, 6 / 24, 8, 1e-3))


def test_physical_batches_give_the_same_step():
    """Per-example gradients in chunks of 2: DPOptimizer accumulates the clipped sums, one noisy step."""
    a, b = tiny("convnet", "snn", scale=3.0), tiny("convnet", "snn", scale=3.0)
    _fit(a, 7)
    _fit(b, 7, physical_batch_size=2)
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-5, atol=1e-6)


def _planted(seed, n=100, k=10, d=8):
    """Two Gaussian classes in d dimensions; k mislabelled training points and k mislabelled held-out copies."""
    g = torch.Generator().manual_seed(seed)

    def draw(m):
        y = torch.randint(0, 2, (m,), generator=g)
        return torch.randn(m, d, generator=g) + 1.5 * (2 * y[:, None] - 1) * torch.eye(d)[0], y

    x, y = draw(n)
    xc, yc = draw(2 * k)
    yc = 1 - yc   # mislabelled
    return torch.cat([x, xc[:k]]), torch.cat([y, yc[:k]]), (xc[:k], yc[:k]), (xc[k:], yc[k:])


@pytest.mark.parametrize("kind", ["ann", "snn"])
def test_dp_hides_memorised_mislabelled_points(kind):
    """Without DP the net memorises its mislabelled points (their loss ≪ that of held-out mislabelled copies);
    with ε = 1 the gap shrinks to a fraction, while the net still learns the classes."""
    x, y, members, held_out = _planted(seed=0)
    n, bs, epochs, delta = len(x), 20, 40, 1e-5
    gaps = {}
    for eps in (None, 1.0):
        torch.manual_seed(0)
        net = Net("fcnet", kind, (8,), 2, hidden=64, snn=SNNConfig(steps=T))
        sigma = dp.noise_multiplier(eps, delta, bs / n, epochs * round(n / bs))
        res = dp.fit_dp(net, x, y, epochs=epochs, batch_size=bs, lr=1e-2, optimizer="adam", seed=0, delta=delta,
                        max_grad_norm=1e3 if eps is None else 1.0, noise_multiplier=sigma)
        net.eval()
        with torch.no_grad():
            loss = {key: float(F.cross_entropy(net(a), b)) for key, (a, b) in (("in", members), ("out", held_out))}
            acc = float((net(x[:100]).argmax(1) == y[:100]).float().mean())
        gaps[eps] = loss["out"] - loss["in"]
        assert acc > 0.65
        assert res["epsilon"] == (math.inf if eps is None else pytest.approx(eps, rel=0.01))
    assert gaps[None] > 3.0
    assert gaps[1.0] < 0.25 * gaps[None]


# ----------------------------------------------------------------------------- a unit with `dp` (lib.core.units)

def test_a_dp_unit_trains_with_dp_sgd_through_the_model_store(tmp_path):
    """`dp` in a unit routes lib.core.train.fit to DP-SGD with the noise Opacus's accountant calibrates to the unit's
    (ε, δ) over all its steps; the unit is keyed apart from its non-private twin, whose key does not change."""
    from pathlib import Path

    from conftest import make_store
    from lib.core import config
    params = config.load(Path(__file__).resolve().parents[1] / "params.yaml", "smoke")
    store = make_store(tmp_path, params)
    plain = config.unit(params, "iris", "ann", "target", 0)
    assert "dp" not in plain
    dp = {"epsilon": 4.0, "delta": 1e-5, "max_grad_norm": 1.0}
    unit = config.unit(params, "iris", "ann", "target", 0, dp=dp)
    rec = store.get_or_train(unit)
    last = rec["curve"][-1]
    assert last["epsilon"] == pytest.approx(4.0, rel=0.02) and last["noise_multiplier"] > 0.5
    clip_only = store.get_or_train(config.unit(params, "iris", "ann", "target", 0, dp={**dp, "epsilon": None}))
    assert clip_only["curve"][-1]["noise_multiplier"] == 0 and math.isinf(clip_only["curve"][-1]["epsilon"])
    from lib.core.train import unit_key
    assert store.trained == 2 and unit_key(plain) != unit_key(unit)
    for bad, key in (({**dp, "epsilon": 0}, "dp.epsilon"), ({**dp, "delta": 1.5}, "dp.delta"),
                     ({"epsilon": 1.0}, "`dp`")):
        with pytest.raises(config.ConfigError, match=re.escape(key)):
            config.unit(params, "iris", "ann", "target", 0, dp=bad)
    with pytest.raises(config.ConfigError, match="weight_bits"):
        config.unit(params, "iris", "ann", "target", 0, dp=dp, weight_bits=2)
