"""DP-SGD (Abadi et al., CCS 2016) for the networks of Table I (lib.core.models.Net: ANN and SNN, ConvNet and FCNet).

One step on a Poisson batch B (each of the N examples drawn independently with probability q = batch_size / N):

    g_i   = ∇_w ℓ(f_w(x_i), y_i)                          per-example gradient, i ∈ B
    ḡ_i   = g_i · min(1, C / (‖g_i‖ + 1e-6))                clipped to the norm C = max_grad_norm (all layers at once)
    g̃     = ( Σ_i ḡ_i + N(0, σ² C² I) ) / (q·N)             noise σ = noise_multiplier on the SUM, divided by the
                                                            EXPECTED batch size q·N = batch_size (Opacus's convention)
    w     ← optimizer step with g̃                           (plain SGD, or Adam; both post-processing of g̃)

Opacus 1.6 does what it does well and is used for it: the noise multiplier for a target (ε, δ)
(`opacus.accountants.utils.get_noise_multiplier`), the ε spent (an accountant's history) and the clip / sum / noise /
scale / step above (`opacus.optimizers.DPOptimizer`, seeded through its `generator`). What Opacus cannot do here is
the per-example gradients g_i of the SNN:

  * Opacus's hook-based GradSampleModule takes the rows of every layer's input as the samples. The SNN runs each
    conv/linear layer ONCE on a [T·B, ...] batch (T steps of B examples, t-major: row r is step r // B of example
    r % B), so it would return T·B "samples" per layer (B for the first layer under the static direct encoding).
  * torch.func (functional_call + vmap + grad), and Opacus's grad_sample_mode="functorch" built on it, cannot go
    through the LIF layer: lib.core.neurons._LIFFunction (and snntorch's surrogate Functions) are autograd Functions
    written the old way (forward(ctx, ...), no setup_context / vmap rule), which functorch transforms refuse.
  * Opacus 1.6's conv grad sampler is wrong on channels-last activations (unfold2d: as_strided with contiguous
    strides), and the ConvNet runs channels-last: its second conv's per-example gradients come out wrong even for
    the ANN (tests/test_dp.py shows it).

`per_sample_grads` therefore computes them from one forward and one backward pass of the whole batch, the way
Opacus's grad samplers do (a layer's weight gradient is Σ_rows backprop_r ⊗ activation_r), but sums the rows of
each example: with R = k·B input rows of a layer (k = T, or 1 for an ANN and for the SNN's static first layer),
row r belongs to example r % B, and

    Linear:   g_i[W] = Σ_t δ_{t,i} a_{t,i}ᵀ          g_i[b] = Σ_t δ_{t,i}
    Conv2d:   g_i[W] = Σ_t Σ_l δ_{t,i,:,l} unfold(a)_{t,i,:,l}ᵀ,   g_i[b] = Σ_{t,l} δ_{t,i,:,l}

(δ = ∂(Σ_i ℓ_i)/∂(layer output), a = layer input). This is exact because no layer of Net mixes examples (no batch
norm): example i's rows influence ℓ_i only. tests/test_dp.py checks it against one backward pass per example.
Memory is B per-example copies of the weights (as in Opacus), never T·B; `physical_batch_size` splits a logical
batch into chunks whose clipped sums DPOptimizer accumulates before one noisy step (what Opacus's
BatchMemoryManager does).

Choices where the brief was silent: `epsilon=None` or inf means no noise (clipping only, a vacuous ε = inf);
an epoch is round(N / batch_size) Poisson steps (Opacus's DPDataLoader: 1/q steps); an empty Poisson batch still
takes a step (noise only), as in Opacus; "sgd" is plain SGD (momentum 0 unless given), unlike lib.core.train.fit's
momentum 0.9; weight-quantized layers (brevitas, `weight_bits`) are not supported. Randomness: the Poisson draws,
the stochastic encoders and the noise each come from their own torch.Generator, derived from `seed`
(numpy SeedSequence), so a run is reproducible and the three streams are independent.
"""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer
from torch import nn

from .progress import tqdm

if TYPE_CHECKING:
    from .models import Net

OPTIMIZERS = ("sgd", "adam")
SUPPORTED_LAYERS = (nn.Linear, nn.Conv2d)


# ----------------------------------------------------------------------------------------------- accounting
@functools.lru_cache(maxsize=256)   # a pure function of its arguments; Opacus's search takes ~0.5 s
def noise_multiplier(epsilon: float | None, delta: float, sample_rate: float, steps: int,
                     accountant: str = "rdp") -> float:
    """σ such that `steps` Poisson-sampled Gaussian steps at rate `sample_rate` spend at most (ε, δ) (Opacus's
    binary search, to 0.5% of ε). `epsilon=None` or inf → 0.0: clipping only, no noise (a vacuous ε)."""
    if epsilon is None or math.isinf(epsilon):
        return 0.0
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0 (or None for no noise), got {epsilon}")
    try:
        return float(get_noise_multiplier(target_epsilon=float(epsilon), target_delta=float(delta),
                                          sample_rate=float(sample_rate), steps=int(steps), accountant=accountant,
                                          epsilon_tolerance=0.005 * float(epsilon)))
    except ValueError as e:   # Opacus: "The privacy budget is too low." (σ beyond its search bound)
        raise ValueError(f"DP-SGD cannot reach epsilon={epsilon:g} at delta={delta:g} over {int(steps)} steps at "
                         f"sampling rate {float(sample_rate):.4g} (Opacus: {e}); raise epsilon, or train fewer "
                         "steps") from e


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Poisson steps per epoch of `fit_dp` on n examples at an expected batch of batch_size: round(n / batch_size),
    at least one (Opacus's DPDataLoader: 1/q steps)."""
    return max(1, round(n / batch_size))


def calibrate(epsilon: float | None, delta: float, n: int, batch_size: int, epochs: int) -> float:
    """The noise multiplier of a `fit_dp` run of `epochs` epochs on n examples at an expected batch of batch_size
    (sampling rate batch_size / n, epochs × steps_per_epoch steps) for (ε, δ): `noise_multiplier` on that schedule."""
    return noise_multiplier(epsilon, delta, batch_size / n, int(epochs) * steps_per_epoch(n, batch_size))


@functools.lru_cache(maxsize=256)
def spent_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                  accountant: str = "rdp") -> float:
    """ε spent at δ by `steps` steps of noise σ at sampling rate q (an Opacus accountant's history); inf for σ = 0
    (and 0.0 for no step)."""
    if int(steps) == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    acc = create_accountant(mechanism=accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=float(delta)))


# ----------------------------------------------------------------------------------------- per-example gradients
def check_supported(model: nn.Module) -> None:
    """Every trainable parameter must belong to a full-precision nn.Linear or nn.Conv2d (groups 1, zero padding)."""
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if type(m) not in SUPPORTED_LAYERS:
            raise ValueError(f"DP-SGD (lib.core.dp) supports full-precision nn.Linear / nn.Conv2d layers only; "
                             f"{name} is a {type(m).__name__}: weight-quantized models (`weight_bits`) are not "
                             "supported")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str)):
            raise ValueError(f"DP-SGD (lib.core.dp): {name} needs groups=1 and numeric zero padding")


def _layer_grads(m: nn.Module, a: torch.Tensor, g: torch.Tensor, B: int) -> dict[str, torch.Tensor]:
    """Per-example gradients [B, ...] of layer m from its input a and output gradient g, both with R = k·B rows,
    row r belonging to example r % B (the t-major [T·B, ...] layout of lib.core.models.Net)."""
    R = a.shape[0]
    if R % B:
        raise ValueError(f"a layer saw {R} rows for {B} examples: expected a multiple (the [T·B, ...] layout)")
    k = R // B
    if isinstance(m, nn.Linear):
        a = a.reshape(k, B, -1, m.in_features)
        g = g.reshape(k, B, -1, m.out_features)
        out = {"weight": torch.einsum("kbno,kbni->boi", g, a)}
        if m.bias is not None:
            out["bias"] = g.sum((0, 2))
        return out
    cols = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)  # [R, C·kh·kw, L]
    cols = cols.reshape(k, B, cols.shape[1], -1)
    g = g.reshape(k, B, m.out_channels, -1)
    out = {"weight": torch.einsum("kbol,kbpl->bop", g, cols).reshape(B, *m.weight.shape)}
    if m.bias is not None:
        out["bias"] = g.sum((0, 3))
    return out


def per_sample_grads(model: Net, x: torch.Tensor, y: torch.Tensor,
                     generator: torch.Generator | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-example gradients of the cross-entropy loss, {parameter name: [B, *shape]} for every trainable
    parameter, and the model's outputs [B, classes] (detached), from one forward/backward pass of the batch.
    The SNN is called as `model(x, generator)` (stochastic encoders draw from `generator`)."""
    check_supported(model)
    B = x.shape[0]
    seen: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    hooks = []
    for name, m in model.named_modules():
        if type(m) in SUPPORTED_LAYERS and any(p.requires_grad for p in m.parameters(recurse=False)):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: seen.append((name, mod, inp[0].detach(), out))))
    try:
        with torch.enable_grad():
            out = model(x, generator) if getattr(model, "kind", "ann") == "snn" else model(x)
            loss = F.cross_entropy(out, y, reduction="sum")
            if len({name for name, *_ in seen}) != len(seen):
                raise ValueError("a layer ran more than once in one forward pass: per-example gradients need one")
            backprops = torch.autograd.grad(loss, [o for *_, o in seen], allow_unused=True)
    finally:
        for h in hooks:
            h.remove()
    grads = {}
    for (name, m, a, o), g in zip(seen, backprops):
        g = torch.zeros_like(o) if g is None else g
        for pname, gs in _layer_grads(m, a, g.detach(), B).items():
            if getattr(m, pname).requires_grad:
                grads[f"{name}.{pname}" if name else pname] = gs
    missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in grads]
    if missing:
        raise ValueError(f"no per-example gradient for {missing}: their layers did not run in the forward pass")
    return grads, out.detach()


# ------------------------------------------------------------------------------------------------- DP-SGD
def dp_optimizer(model: nn.Module, *, optimizer: str = "sgd", lr: float, noise_multiplier: float,
                 max_grad_norm: float, expected_batch_size: int, generator: torch.Generator | None = None,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> DPOptimizer:
    """Opacus's DPOptimizer over the model's trainable parameters (mean reduction over `expected_batch_size`),
    its Gaussian noise drawn from `generator` (on the parameters' device)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return DPOptimizer(opt, noise_multiplier=float(noise_multiplier), max_grad_norm=float(max_grad_norm),
                       expected_batch_size=int(expected_batch_size), loss_reduction="mean", generator=generator)


def dp_step(model: Net, opt: DPOptimizer, xb: torch.Tensor, yb: torch.Tensor, *,
            generator: torch.Generator | None = None, physical_batch_size: int | None = None) -> tuple[float, int]:
    """One DP-SGD step on the (Poisson) batch xb, yb, possibly empty: per-example gradients in chunks of at most
    `physical_batch_size` examples, clipped and summed by `opt` chunk by chunk, then one noisy step.
    Returns (summed loss, number correct) over the batch, for the learning curve."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt.zero_grad(set_to_none=True)
    n = len(xb)
    if n == 0:
        for _, p in named:
            p.grad_sample = p.new_zeros((0, *p.shape))
        opt.step()
        return 0.0, 0
    chunk = n if physical_batch_size is None else int(physical_batch_size)
    loss_sum, correct = 0.0, 0
    for i in range(0, n, chunk):
        grads, out = per_sample_grads(model, xb[i:i + chunk], yb[i:i + chunk], generator)
        for name, p in named:
            p.grad_sample = grads[name]
        if i + chunk < n:   # accumulate this chunk's clipped sum; the noisy step comes with the last chunk
            opt.signal_skip_step(do_skip=True)
        opt.step()
        loss_sum += float(F.cross_entropy(out, yb[i:i + chunk], reduction="sum"))
        correct += int((out.argmax(1) == yb[i:i + chunk]).sum())
    for _, p in named:
        p.grad_sample = None
    return loss_sum, correct


def _generators(seed: int, dev: torch.device) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    """Independent streams for the Poisson draws (CPU), the encoder (CPU, as lib.core.train.fit) and the noise
    (on `dev`, where DPOptimizer draws it)."""
    s_sample, s_enc, s_noise = (int(s) for s in np.random.SeedSequence(int(seed)).generate_state(3))
    return (torch.Generator().manual_seed(s_sample), torch.Generator().manual_seed(s_enc),
            torch.Generator(device=dev).manual_seed(s_noise))


def fit_dp(model: Net, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
           max_grad_norm: float, noise_multiplier: float, seed: int, optimizer: str = "sgd",
           dev: torch.device | str = "cpu", delta: float = 1e-5, accountant: str = "rdp", momentum: float = 0.0,
           weight_decay: float = 0.0, physical_batch_size: int | None = None, progress: bool = False) -> dict:
    """Train `model` (in place) on x, y with DP-SGD: `epochs` × round(N / batch_size) steps on Poisson batches of
    rate q = batch_size / N. Returns {"curve": per epoch {epoch, loss, train_acc} over the examples drawn,
    "epsilon": ε spent at `delta` (inf without noise), "steps", "sample_rate", "noise_multiplier", "delta"}."""
    check_supported(model)
    dev = torch.device(dev)
    n = len(x)
    if not 0 < batch_size <= n:
        raise ValueError(f"batch_size must lie in [1, N = {n}], got {batch_size}")
    q = batch_size / n
    per_epoch = steps_per_epoch(n, batch_size)
    g_sample, g_enc, g_noise = _generators(seed, dev)
    model.to(dev).train()
    x, y = x.to(dev), y.to(dev)
    opt = dp_optimizer(model, optimizer=optimizer, lr=lr, noise_multiplier=noise_multiplier,
                       max_grad_norm=max_grad_norm, expected_batch_size=batch_size, generator=g_noise,
                       momentum=momentum, weight_decay=weight_decay)
    curve, steps = [], 0
    bar = tqdm(range(epochs), desc="DP-SGD", disable=not progress, leave=False, mininterval=1.0)
    for epoch in bar:
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for _ in range(per_epoch):
            idx = (torch.rand(n, generator=g_sample) < q).nonzero().squeeze(1).to(dev)
            loss_sum, correct = dp_step(model, opt, x[idx], y[idx], generator=g_enc,
                                        physical_batch_size=physical_batch_size)
            tot_loss, tot_correct, seen, steps = tot_loss + loss_sum, tot_correct + correct, seen + len(idx), steps + 1
        curve.append({"epoch": epoch + 1, "loss": tot_loss / max(seen, 1), "train_acc": tot_correct / max(seen, 1)})
        bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}", train=f"{curve[-1]['train_acc']:.3f}", refresh=False)
    opt.zero_grad(set_to_none=True)
    for p in model.parameters():   # the attributes DPOptimizer and dp_step hung on the parameters
        for attr in ("grad_sample", "summed_grad"):
            if hasattr(p, attr):
                delattr(p, attr)
    return {"curve": curve, "epsilon": spent_epsilon(noise_multiplier, q, steps, delta, accountant), "steps": steps,
            "sample_rate": q, "noise_multiplier": float(noise_multiplier), "delta": float(delta)}
