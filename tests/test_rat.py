"""Regularized adversarial training (lib.attacks.rat, the defended SNN of paper D's D1): the Parseval retraction
against SNN-RAT's formula and its fixed point, the adversary's bookkeeping (space, BN statistics, seed), and the
behaviour that makes it a defence: on a toy task with a robust and a non-robust feature (Tsipras et al. 2019),
adversarial training through lib.core.sew.fit buys robust accuracy that standard training does not have."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lib.attacks import adversarial as A
from lib.attacks import rat as R
from lib.core import sew as S


def _reference_retraction(w: torch.Tensor, beta: float) -> torch.Tensor:
    """SNN-RAT's orthogonal_retraction on one weight, written out with einsum (rows = output units)."""
    m = w.reshape(w.shape[0], -1).double()
    gram = torch.einsum("ik,jk->ij", m, m)
    return ((1 + beta) * m - beta * torch.einsum("ij,jk->ik", gram, m)).reshape(w.shape)


def test_parseval_retraction_is_snn_rat_formula_on_conv_and_linear():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    R.parseval_retraction(net, 0.3)
    for name in ("0.weight", "3.weight"):
        want = _reference_retraction(before[name], 0.3).float()
        assert torch.allclose(net.state_dict()[name], want, atol=1e-6), name
        assert not torch.allclose(net.state_dict()[name], before[name])
    for name in ("0.bias", "1.weight", "1.bias", "3.bias"):              # biases and BN are left alone
        assert torch.equal(net.state_dict()[name], before[name])
    R.parseval_retraction(net, 0.0)                                       # β = 0: a no-op
    assert torch.allclose(net.state_dict()["3.weight"], _reference_retraction(before["3.weight"], 0.3).float(),
                          atol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        R.parseval_retraction(net, -0.1)


def test_repeated_retraction_makes_rows_orthonormal():
    """σ ← (1 + β)σ − βσ³ per singular value: its fixed point is σ = 1 (Parseval-tight rows)."""
    torch.manual_seed(1)
    lin = nn.Linear(16, 6, bias=False)
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(16, 6))
        lin.weight.copy_((q.t() * torch.linspace(0.5, 1.4, 6)[:, None]))
    errors = [R.orthogonality_error(lin)]
    for _ in range(60):
        R.parseval_retraction(lin, 0.1)
        errors.append(R.orthogonality_error(lin))
    assert errors[0] > 1.0 and errors[-1] < 1e-3
    assert all(b <= a + 1e-9 for a, b in zip(errors, errors[1:]))       # never moves away


def test_recipe_checks_its_values():
    with pytest.raises(ValueError, match="eps_255"):
        R.RAT(eps_255=0, step_255=1, iters=1, random_start=True, beta=0.0)
    with pytest.raises(ValueError):
        R.RAT(eps_255=2, step_255=2, iters=0, random_start=True, beta=0.0)


def _tiny_sew(seed=0):
    torch.manual_seed(seed)
    return S.build("sew", "resnet18", num_classes=3, width=2, blocks=[1, 1, 1, 1], T=2, K=8, encode=True)


def test_adversary_attacks_the_spikes_keeps_bn_statistics_and_is_seeded(monkeypatch):
    model = _tiny_sew().train()
    x = torch.rand(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 0])
    rat = R.RAT(eps_255=8, step_255=10, iters=1, random_start=True, beta=0.0)
    seen = {}
    real_pgd = A.pgd

    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    stats = [m.running_mean.clone() for m in bn]

    def spy(m, inputs, yy, eps, step, iters, **kw):
        seen.update(shape=tuple(inputs.shape), eps=eps, step=step, iters=iters, **kw)
        out = real_pgd(m, inputs, yy, eps, step, iters, **kw)
        seen["delta"] = float((out - inputs).abs().max())
        seen["unchanged"] = all(torch.equal(b.running_mean, s0) for b, s0 in zip(bn, stats))
        return out

    monkeypatch.setattr(A, "pgd", spy)
    with torch.no_grad():
        rat.adversarial_logits(model, x, y, seed=3)
    assert seen["shape"] == (2, 4, 3, 32, 32) and seen["batch_dim"] == 1      # the encoded spikes [T, B, C, H, W]
    assert seen["bn_mode"] == "eval" and seen["seed"] == 3 and seen["random_start"] is True
    assert seen["eps"] == pytest.approx(8 / 255) and seen["step"] == pytest.approx(10 / 255)
    assert 0 < seen["delta"] <= 8 / 255 + 1e-6
    assert seen["unchanged"]                                  # crafting (BN eval) leaves the running statistics alone
    assert model.training and all(m.training for m in bn)     # the training forward runs in train mode
    assert not all(torch.equal(b.running_mean, s0) for b, s0 in zip(bn, stats))   # ... and updates them once
    advs = []
    monkeypatch.setattr(A, "pgd", lambda *a, **kw: advs.append(real_pgd(*a, **kw)) or advs[-1])
    for seed in (5, 5, 6):                                    # the random start is the seed's
        rat.adversarial_logits(_tiny_sew(), x, y, seed=seed)
    assert torch.equal(advs[0], advs[1]) and not torch.equal(advs[0], advs[2])


def test_fit_with_a_defence_is_deterministic_and_differs_from_undefended():
    x = torch.rand(12, 3, 32, 32)
    y = torch.arange(12) % 3
    rat = R.RAT(eps_255=4, step_255=5, iters=1, random_start=True, beta=0.01)
    runs = [S.fit(_tiny_sew(), x, y, epochs=1, batch_size=4, seed=7, device="cpu", defence=d)["state_dict"]
            for d in (rat, rat, None)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def _toy(n: int, seed: int):
    """Tsipras et al.'s toy on 4×4 images: pixel 0 is a robust but noisy feature (shift ±0.15, noise 0.1); the other
    15 pixels each carry a small, nearly noise-free shift ±0.1 — together perfectly predictive, and all flipped by
    ε = 0.15; the robust pixel (shift ±0.35, noise 0.25) keeps ~80% of its accuracy at that ε."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    s = (2 * y - 1).float()
    x = torch.full((n, 16), 0.5) + 0.1 * s[:, None] + 0.01 * torch.randn(n, 16, generator=g)
    x[:, 0] = 0.5 + 0.35 * s + 0.25 * torch.randn(n, generator=g)
    return x.clamp(0, 1).view(n, 1, 4, 4), y


def test_adversarial_training_buys_robust_accuracy_on_a_toy_task():
    x, y = _toy(1024, 0)
    xt, yt = _toy(1024, 1)
    eps = 0.15
    accs = {}
    for name, defence in (("standard", None),
                          ("rat", R.RAT(eps_255=eps * 255, step_255=1.25 * eps * 255, iters=1, random_start=True,
                                        beta=0.0))):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        S.fit(model, x, y, epochs=100, batch_size=64, lr=5e-2, weight_decay=0.0, flip=False, seed=0, device="cpu",
              defence=defence)
        model.eval()
        robust = A.robust_accuracy(model, xt, yt, lambda m, xb, yb: A.pgd(m, xb, yb, eps, eps / 4, 20),
                                   256)["accuracy"] / 100
        with torch.no_grad():
            clean = (model(xt).argmax(1) == yt).float().mean().item()
        accs[name] = (clean, robust)
    (c_std, r_std), (c_rat, r_rat) = accs["standard"], accs["rat"]
    assert c_std > 0.97 and r_std < 0.3            # standard training leans on the brittle features
    assert r_rat > 0.7 and r_rat > r_std + 0.4     # adversarial training moves to the robust one
    assert c_rat < c_std                            # and pays for it in clean accuracy (the trade-off)
