"""Parity of lib.attacks.adversarial's FGSM / PGD with torchattacks 3.5.1 (issue 21), on CPU.

What differs between the two, and when the outputs agree bit for bit (almost always; the exception is PGD's
projection on real-valued pixels near 0):

* Loss reduction. torchattacks differentiates ``nn.CrossEntropyLoss()`` (mean over the batch); ours differentiates
  the *sum* of per-example losses (``loss_fn`` returns [B], `_input_grad` sums). A per-example loss
  ``cross_entropy / B`` (``mean_ce`` below) makes the two reductions agree, and then FGSM and PGD are bit-identical.
  With our default sum the gradient is B times torchattacks' gradient; both attacks only use its sign, so the
  outputs still agree: exactly so when B is a power of two (scaling by 2^-k is exact in floating point, so
  g_sum == B * g_mean bit for bit), and for other B wherever no gradient entry is within rounding error of zero
  (exact zeros, e.g. from max-pooling or dead ReLUs, stay exact zeros under both reductions).
* Box. torchattacks always clamps to [0, 1]; ours clamps to ``clamp`` (default (0, 1), which is what paper D
  uses, on images and on {0, 1} spike tensors alike), so the defaults match.
* PGD projection. torchattacks computes ``x + clamp(adv - x, -eps, eps)`` and then clamps to [0, 1]; ours clamps
  ``adv`` directly to [max(x - eps, 0), min(x + eps, 1)]. On the ball's faces both give fl(x ± eps). Inside the
  ball they agree iff ``x + fl(adv - x) == adv``, which holds whenever ``adv - x`` is exact (Sterbenz: adv and x
  within a factor 2 of each other) - in particular always for spike inputs x in {0, 1} - but not always for
  real-valued pixels near 0, where torchattacks' iterate can be an ulp or two off (test_projection_...).
  Exact agreement of whole PGD runs on real-valued images is therefore a property of the inputs used here,
  not a theorem; on spikes it is one, given bit-identical gradients.
* Random start. torchattacks draws ``empty_like(x).uniform_(-eps, eps)`` from the global generator; ours draws
  ``torch.rand`` from a private ``torch.Generator().manual_seed(seed)`` and uses ``(2u - 1) * eps``. On CPU,
  ``torch.manual_seed(seed)`` before the torchattacks call gives the same u and the same noise bit for bit (checked
  below), so random starts are tested too. (On CUDA torchattacks would draw from the CUDA generator instead.)
* Model state. torchattacks puts the whole model in eval() (or train() with ``set_model_training_mode``) and
  lets BatchNorm running statistics drift when crafting in train mode - and, given an eval() model, leaves it
  in train() afterwards; ours switches only BatchNorm modules (``bn_mode``) and restores their modes and buffers.
  ours also resets spikingjelly neuron state before each forward; the models here are stateless or reset
  themselves (SpikingClassifier), so torchattacks sees the same function.
"""
import pytest
import torch
from torch import nn

from lib.attacks.adversarial import _input_grad, cross_entropy, fgsm, pgd

import torchattacks  # noqa: E402  a pinned test dependency (requirements-nodeps.txt): missing = a failure, not a skip

torch.set_num_threads(2)

EPS, STEP, ITERS = 6 / 255, 0.01, 7   # paper D's settings (params.yaml grad_obf.attack)
DTYPES = (torch.float32, torch.float64)


def mean_ce(logits, y):
    """Per-example cross-entropy / B: its sum is nn.CrossEntropyLoss()'s mean, torchattacks' loss."""
    return cross_entropy(logits, y) / y.numel()


def conv_net(dtype, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, 5)).to(dtype).eval()


def batch(kind, dtype, n=8, seed=1):
    """Images in [0, 1], or {0, 1} spikes (what paper D attacks), [n, 3, 8, 8], and labels in 0..4."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=g, dtype=dtype)
    if kind == "spikes":
        x = (x > 0.5).to(dtype)
    return x, torch.randint(0, 5, (n,), generator=g)


def ta_pgd(model, x, y, eps=EPS, alpha=STEP, steps=ITERS, seed=None):
    """torchattacks PGD; seed None: no random start, else global seed `seed` for its uniform start."""
    atk = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=seed is not None)
    if seed is not None:
        torch.manual_seed(seed)
    return atk(x, y)


KINDS = pytest.mark.parametrize("kind", ["images", "spikes"])
DTYPE = pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])


# ----------------------------------------------------------------------------- FGSM

@DTYPE
@KINDS
def test_fgsm_is_bit_identical_to_torchattacks_with_the_same_reduction(kind, dtype):
    model, (x, y) = conv_net(dtype), batch(kind, dtype)
    theirs = torchattacks.FGSM(model, eps=EPS)(x, y)
    assert not torch.equal(theirs, x)
    assert torch.equal(fgsm(model, x, y, EPS, loss_fn=mean_ce), theirs)
    # our default (sum over the batch, B = 8 a power of two): same signs, same output
    assert torch.equal(fgsm(model, x, y, EPS), theirs)
    # not vacuous: another ε, or another box, gives another output
    assert not torch.equal(fgsm(model, x, y, 5 / 255, loss_fn=mean_ce), theirs)
    assert not torch.equal(fgsm(model, x, y, EPS, loss_fn=mean_ce, clamp=None), theirs)


# ----------------------------------------------------------------------------- PGD

@DTYPE
@KINDS
def test_pgd_without_random_start_is_bit_identical_to_torchattacks(kind, dtype):
    model, (x, y) = conv_net(dtype), batch(kind, dtype)
    for iters in (3, ITERS):   # 3 steps of 0.01 leave many pixels strictly inside the 6/255-ball
        theirs = ta_pgd(model, x, y, steps=iters)
        ours = pgd(model, x, y, EPS, STEP, iters, random_start=False, loss_fn=mean_ce)
        assert torch.equal(ours, theirs)
        assert torch.equal(pgd(model, x, y, EPS, STEP, iters, random_start=False), theirs)   # default sum
        if kind == "images":   # the projection's interior branch is exercised, not only the ball's faces
            assert (((ours - x).abs() < EPS - 1e-3) & (ours > 0) & (ours < 1)).any()
    # not vacuous: another ε, step or number of steps gives another output
    for eps, step, iters in ((5 / 255, STEP, ITERS), (EPS, 0.005, ITERS), (EPS, STEP, 1)):
        assert not torch.equal(pgd(model, x, y, eps, step, iters, random_start=False, loss_fn=mean_ce), theirs)


@DTYPE
@KINDS
def test_pgd_random_start_seeded_alike_matches_torchattacks(kind, dtype):
    model, (x, y) = conv_net(dtype), batch(kind, dtype)
    # the random starts (0 steps) are bit-identical: same uniform draws, same noise, same clamp
    start = ta_pgd(model, x, y, steps=0, seed=3)
    assert not torch.equal(start, x)
    assert torch.equal(pgd(model, x, y, EPS, STEP, 0, seed=3), start)
    assert not torch.equal(pgd(model, x, y, EPS, STEP, 0, seed=4), start)
    theirs = ta_pgd(model, x, y, seed=3)
    ours = pgd(model, x, y, EPS, STEP, ITERS, seed=3, loss_fn=mean_ce)
    if kind == "spikes":
        # x in {0, 1}: adv - x is exact, so the two projections coincide and so does every iterate
        assert torch.equal(ours, theirs)
    else:
        # pixels near 0 can come out an ulp or so apart (see the projection test; f64 with seed 3 has two such)
        assert (ours - theirs).abs().max().item() <= torch.finfo(dtype).eps
    assert torch.equal(pgd(model, x, y, EPS, STEP, ITERS, seed=3), ours)   # default sum, B = 8
    assert not torch.equal(pgd(model, x, y, EPS, STEP, ITERS, seed=4, loss_fn=mean_ce), theirs)


def test_projection_differs_by_one_ulp_inside_the_ball_near_zero():
    """The one arithmetic difference: torchattacks re-derives the iterate as x + fl(adv - x). With a linear model
    whose input gradient is negative everywhere, PGD takes two plain steps down (no face of the ball or box is
    hit); ours returns fl(fl(x - step) - step), torchattacks x + fl(that - x), which is off by the rounding error
    of the subtraction wherever it rounds (x in [0.02, 0.034] and the iterate in [0, 0.014] are not within a
    factor 2 of each other; in float64 here that is most entries, by 1 or 2 ulps)."""
    dtype = torch.float64
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2, bias=False)).to(dtype).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0] = 1.0   # z0 - z1 = Σx, label 0: the loss falls as Σx grows, so ∇x loss < 0
    x = 0.02 + 0.014 * torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=dtype)
    y = torch.zeros(4, dtype=torch.long)
    theirs = ta_pgd(model, x, y, steps=2)
    ours = pgd(model, x, y, EPS, STEP, 2, random_start=False, loss_fn=mean_ce)
    assert torch.equal(ours, (x - STEP) - STEP)
    assert torch.equal(theirs, x + (((x - STEP) - STEP) - x))
    assert not torch.equal(ours, theirs)
    # the gap is the rounding error of fl(adv - x): at most half an ulp of the displacement |adv - x| ≈ 0.02,
    # i.e. at most 2 ulps of the iterate (≈ 0.007)
    gap, disp = (ours - theirs).abs(), (ours - x).abs()
    assert (gap <= (torch.nextafter(disp, torch.ones_like(disp)) - disp) / 2).all()
    assert (gap <= 2 * (torch.nextafter(ours, torch.ones_like(ours)) - ours)).all()
    # one step from x has no such error (fl(x - step) - x is exact here), so FGSM-like single steps agree
    assert torch.equal(pgd(model, x, y, EPS, STEP, 1, random_start=False), ta_pgd(model, x, y, steps=1))


# ----------------------------------------------------------------------------- reductions

@pytest.mark.parametrize("n", [8, 6])
def test_sum_and_mean_reductions_give_the_same_gradient_signs(n):
    model, (x, y) = conv_net(torch.float32), batch("images", torch.float32, n=n)
    g_sum = _input_grad(model, x, y, cross_entropy)   # ours: d Σ_i loss_i / dx
    xr = x.clone().requires_grad_(True)
    g_mean = torch.autograd.grad(nn.CrossEntropyLoss()(model(xr), y), xr)[0]   # torchattacks' gradient
    assert torch.equal(_input_grad(model, x, y, mean_ce), g_mean)
    assert not torch.equal(g_sum, g_mean)
    if n & (n - 1) == 0:
        assert torch.equal(g_sum, g_mean * n)   # scaling by a power of two is exact
    assert torch.equal(g_sum.sign(), g_mean.sign())
    assert torch.equal(fgsm(model, x, y, EPS), torchattacks.FGSM(model, eps=EPS)(x, y))
    assert torch.equal(pgd(model, x, y, EPS, STEP, ITERS, random_start=False), ta_pgd(model, x, y))


# ----------------------------------------------------------------------------- paper D, as grad_obf calls it

def test_paper_d_attacks_on_a_sew_snn_match_torchattacks_in_bn_train_mode():
    """grad_obf.attack_fn's FGSM and PGD (default sum reduction, bn_mode "train", ε = 6/255, step 0.01, 7 steps,
    random start) on phase-coded spikes [T, B, C, H, W] of a tiny SEW-ResNet vs torchattacks with the whole model
    in train mode (BatchNorm on batch statistics): bit-identical. B = 4, a power of two."""
    from lib.stages import grad_obf as G
    from lib.core import sew as S

    def snn():
        torch.manual_seed(0)
        enc = S.build("sew", width=2, blocks=(1, 1, 1, 1), T=3, K=8, encode=True)
        return S.SpikingClassifier(enc.net, enc.T).eval()

    def ta(attack, model):
        attack.set_model_training_mode(model_training=True, batchnorm_training=True)
        return attack(spikes, y)

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    spikes, y = S.phase_encode(x, 8, 3), torch.tensor([0, 1, 2, 3])
    spec = dict(eps_255=6, step=STEP, iters=ITERS, random_start=True, bn_mode="train", seed=5)

    model = snn()
    ours = G.attack_fn(dict(spec, attack="fgsm"))(model, spikes, y, batch_dim=1)
    theirs = ta(torchattacks.FGSM(model, eps=EPS), model)
    assert not torch.equal(ours, spikes)
    assert torch.equal(ours, theirs)

    model = snn()
    buffers = [b.clone() for b in model.buffers()]
    ours = G.attack_fn(dict(spec, attack="pgd"))(model, spikes, y, batch_dim=1)
    assert not model.training and all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    torch.manual_seed(5)
    theirs = ta(torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=ITERS, random_start=True), model)
    assert torch.equal(ours, theirs)
    # torchattacks' side effects: BN running statistics drifted, and the eval() model is left in train()
    assert model.training and not all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    model.eval()
    # not vacuous: another seed for the random start gives another output
    assert not torch.equal(G.attack_fn(dict(spec, attack="pgd", seed=6))(model, spikes, y, batch_dim=1), theirs)
