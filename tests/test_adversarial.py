"""lib.attacks.adversarial: FGSM/PGD against analytic gradients and invariants, BN modes while crafting, the
Square Attack (box, effect, forward-only), the gradient-sparsity probe on pooling layers, robust_accuracy."""
import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.attacks.adversarial import (cross_entropy, fgsm, gradient_sparsity, margin_loss, pgd, robust_accuracy,
                                     square_attack)

torch.set_num_threads(2)


def linear_model(d=20, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d, 2).eval()


def conv_net(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 8, 3, padding=1)] + ([nn.BatchNorm2d(8)] if bn else []) + [
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 3)]
    return nn.Sequential(*layers).eval()


def images(n=16, seed=1, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


def in_ball_and_box(adv, x, eps, lo=0.0, hi=1.0):
    return (adv - x).abs().max().item() <= eps + 1e-6 and adv.min().item() >= lo and adv.max().item() <= hi


# ----------------------------------------------------------------------------- FGSM on a linear model

def test_fgsm_linear_model_matches_analytic_direction_and_first_order_gain():
    model, eps = linear_model(), 0.1
    x, y = torch.randn(32, 20), torch.randint(0, 2, (32,))
    adv = fgsm(model, x, y, eps, clamp=None)
    W = model.weight.detach()
    expected = eps * (W[1 - y] - W[y]).sign()      # ∇_x CE ∝ W_wrong − W_true with a positive factor
    torch.testing.assert_close(adv - x, expected, rtol=0, atol=1e-6)
    # logit margin is linear in x: its increase is exactly ε‖W_wrong − W_true‖₁ (first order is exact) ...
    gain = margin_loss(model(adv), y) - margin_loss(model(x), y)
    torch.testing.assert_close(gain, eps * (W[1 - y] - W[y]).abs().sum(1), rtol=1e-5, atol=1e-5)
    # ... and with the linear loss itself, the loss increase equals the first-order prediction ε‖∇_x loss‖₁
    adv_m = fgsm(model, x, y, eps, loss_fn=margin_loss, clamp=None)
    xg = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(margin_loss(model(xg), y).sum(), xg)[0]
    torch.testing.assert_close(margin_loss(model(adv_m), y) - margin_loss(model(x), y),
                               eps * grad.abs().sum(1), rtol=1e-5, atol=1e-5)


def test_fgsm_does_not_touch_parameter_grads_and_respects_box():
    model = conv_net()
    x, y = images()
    adv = fgsm(model, x, y, 0.2)
    assert in_ball_and_box(adv, x, 0.2)
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------- PGD

def test_pgd_stays_in_ball_and_box_and_beats_fgsm():
    model = conv_net()
    x, y = images(64)
    eps = 8 / 255
    adv = pgd(model, x, y, eps, step=2 / 255, iters=10, restarts=2)
    assert in_ball_and_box(adv, x, eps)
    with torch.no_grad():                          # also checks that the attacks re-enable grad themselves
        l_pgd = cross_entropy(model(adv), y).mean()
        l_fgsm = cross_entropy(model(fgsm(model, x, y, eps)), y).mean()
        l_clean = cross_entropy(model(x), y).mean()
    assert l_pgd >= l_fgsm > l_clean


def test_pgd_box_holds_for_inputs_at_the_box_edges():
    model = conv_net()
    x, y = images()
    x = (x > 0.5).float()                          # spike-like input: every entry on the box boundary
    adv = pgd(model, x, y, 6 / 255, step=0.01, iters=7)
    assert in_ball_and_box(adv, x, 6 / 255)


def test_pgd_restarts_never_lower_loss_and_seed_is_deterministic():
    model = conv_net(seed=3)
    x, y = images(32)
    kw = dict(eps=0.05, step=0.01, iters=3)
    one = pgd(model, x, y, **kw, restarts=1, seed=7)
    many = pgd(model, x, y, **kw, restarts=4, seed=7)
    with torch.no_grad():
        assert (cross_entropy(model(many), y) >= cross_entropy(model(one), y) - 1e-6).all()
    torch.testing.assert_close(pgd(model, x, y, **kw, restarts=4, seed=7), many, rtol=0, atol=0)
    assert not torch.equal(pgd(model, x, y, **kw, restarts=1, seed=8), one)


# ----------------------------------------------------------------------------- BN mode while crafting

@pytest.mark.parametrize("attack", [lambda m, x, y, **k: fgsm(m, x, y, 0.05, **k),
                                    lambda m, x, y, **k: pgd(m, x, y, 0.05, 0.01, 2, **k)])
def test_bn_train_mode_while_crafting_then_restored(attack):
    model = conv_net(bn=True)
    bn = model[1]
    bn.running_mean.fill_(0.3)
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    seen = []
    bn.register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    x, y = images()
    attack(model, x, y, bn_mode="train")
    assert seen and all(seen)
    assert not bn.training and not model.training
    for k, v in bn.state_dict().items():           # running statistics untouched by the crafting passes
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    seen.clear()
    attack(model, x, y, bn_mode="eval")
    assert seen and not any(seen)


# ----------------------------------------------------------------------------- Square Attack

@functools.cache
def _trained(steps):
    return _train(steps)


def trained_net(steps=40):
    """Fresh copy of the cached trained net (tests add hooks / change modes)."""
    model, x, y = _trained(steps)
    return copy.deepcopy(model), x, y


def _train(steps):
    """Conv net trained a few steps on a separable 3-class task (class = brightest image third)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 8, 8, generator=g) * 0.5
    y = torch.randint(0, 3, (256,), generator=g)
    for c in range(3):
        x[y == c, :, :, 3 * c:3 * c + 2] += 0.4
    model = conv_net(seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad()
    return model.eval(), x[:64], y[:64]


def test_square_attack_lowers_accuracy_within_ball_using_forward_calls_only():
    model, x, y = trained_net()
    calls = []

    def spy(m, inp):
        calls.append((torch.is_grad_enabled(), inp[0].requires_grad))
    model.register_forward_pre_hook(spy)
    model.register_full_backward_hook(lambda *a: pytest.fail("backward called"))
    adv = square_attack(model, x, y, eps=0.3, queries=200, seed=0)
    assert 0 < len(calls) <= 200 and not any(g or r for g, r in calls)   # query budget, no grad
    assert in_ball_and_box(adv, x, 0.3)
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
        robust = (model(adv).argmax(1) == y).float().mean().item()
    assert clean >= 0.9 and robust <= clean - 0.4
    torch.testing.assert_close(square_attack(model, x, y, eps=0.3, queries=200, seed=0), adv, rtol=0, atol=0)


def test_square_attack_time_stacked_input():
    """[T, B, C, H, W] input with the batch at dim 1: shape kept, ball/box respected, stripes init per (t, c)."""
    torch.manual_seed(0)
    T, B = 3, 8
    body = conv_net(seed=1)

    class TimeMean(nn.Module):
        def forward(self, s):
            return body(s.flatten(0, 1)).view(T, s.shape[1], -1).mean(0)
    x = (torch.rand(T, B, 1, 8, 8) > 0.5).float()
    y = torch.randint(0, 3, (B,))
    adv = square_attack(TimeMean(), x, y, eps=0.2, queries=20, batch_dim=1)
    assert adv.shape == x.shape and in_ball_and_box(adv, x, 0.2)


# ----------------------------------------------------------------------------- robust_accuracy

def test_robust_accuracy_batches_and_restores_modes():
    model, x, y = trained_net()
    model.train()
    res = robust_accuracy(model, x, y, pgd, batch_size=24, eps=0.3, step=0.05, iters=5)
    assert res["n"] == 64 and model.training
    model.eval()
    with torch.no_grad():
        clean = 100.0 * (model(x).argmax(1) == y).float().mean().item()
    assert res["clean_accuracy"] == pytest.approx(clean)
    assert res["accuracy"] < res["clean_accuracy"]
    assert robust_accuracy(model, x, y, None, batch_size=64)["accuracy"] == pytest.approx(clean)


# ----------------------------------------------------------------------------- gradient sparsity

@pytest.mark.parametrize("pool, zero_pct", [(nn.MaxPool2d(2, 2), 75.0), (nn.AvgPool2d(2, 2), 0.0)])
def test_pooling_gradient_sparsity(pool, zero_pct):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), pool, nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 5, (16,))
    df = gradient_sparsity(model, x, y).set_index("name")
    assert list(df.index) == ["0", "1", "input"]
    assert df.loc["1", "type"] == type(pool).__name__
    assert df.loc["1", "grad_input_zero_pct"] == pytest.approx(zero_pct, abs=1.0)
    assert df.loc["1", "grad_output_zero_pct"] == pytest.approx(0.0, abs=1.0)
    assert df.loc["1", "grad_input_norm"] > 0
    assert not any(m._backward_hooks for m in model.modules())      # hooks removed


def test_linear_model_input_gradient_is_dense():
    model = linear_model()
    x, y = torch.randn(8, 20), torch.randint(0, 2, (8,))
    df = gradient_sparsity(model, x, y, module_types=(nn.Linear,)).set_index("name")
    assert df.loc["input", "grad_input_zero_pct"] == 0.0
    assert df.loc["input", "grad_input_norm"] > 0
    assert df.loc["", "grad_input_zero_pct"] == 0.0


def test_spiking_neurons_are_hooked():
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")
    torch.manual_seed(0)
    T, B = 4, 8

    class SNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(20, 32), nn.Linear(32, 2)
            self.sn = neuron.IFNode(surrogate_function=surrogate.ATan(), step_mode="m")

        def forward(self, s):                      # s: [T, B, 20] spikes
            return self.fc2(self.sn(self.fc1(s))).mean(0)
    model = SNN()
    x = (torch.rand(T, B, 20) > 0.5).float()
    df = gradient_sparsity(model, x, torch.randint(0, 2, (B,))).set_index("name")
    assert df.loc["sn", "type"] == "IFNode"
    assert 0.0 <= df.loc["sn", "grad_input_zero_pct"] < 100.0 and df.loc["sn", "grad_input_norm"] > 0
