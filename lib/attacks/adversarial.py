"""Paper D (gradient obfuscation in SEW-ResNet SNNs): L∞ evasion attacks and a gradient-sparsity probe.

The attack space is whatever `model` takes. The authors (luutn2002/grad-obf-snn, source/attacks.py) attack the
*encoded spike tensor* [T, B, C, H, W], so there `model` is the SNN body without its encoder; to attack the raw
image instead, pass a module that maps the image through a differentiable encoder into the SNN. `model` must
return logits [B, K]. Before every forward pass the state of spikingjelly memory modules (membrane potentials) is
reset, as in the authors' loop (`functional.reset_net`).

The authors' settings: FGSM ε = 6/255; PGD ε = 6/255, step 0.01, 7 iterations, uniform random start in the ε-ball;
clamp to [0, 1]; model in train() mode (BatchNorm batch statistics) while crafting (`bn_mode="train"` here),
eval() when scoring (`robust_accuracy`).

Batch layout: the batch is dimension `batch_dim` of `x` (0 for [B, C, H, W], 1 for [T, B, C, H, W]); `y` is [B].
Loss functions map (logits [B, K], y [B]) to per-example losses [B]; gradients are taken of their sum, so each
example's input gradient is that of its own loss.
"""
from __future__ import annotations

import inspect
import math
from contextlib import contextmanager
from typing import Callable, Iterator

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

try:
    from spikingjelly.activation_based.base import MemoryModule
    from spikingjelly.activation_based.neuron import BaseNode
except ImportError:  # spikingjelly absent: plain torch models only
    MemoryModule = BaseNode = None

LossFn = Callable[[Tensor, Tensor], Tensor]
Clamp = tuple[float, float] | None

SPARSITY_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d) + (
    (BaseNode,) if BaseNode is not None else ())


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example cross-entropy [B]."""
    return F.cross_entropy(logits, y, reduction="none")


def margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Per-example max_{k≠y} z_k − z_y [B]: positive iff the example is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return other - true


# ----------------------------------------------------------------------------- model state helpers

def _reset(model: nn.Module) -> None:
    """Reset spikingjelly neuron state (no-op for plain torch models)."""
    if MemoryModule is not None:
        for m in model.modules():
            if isinstance(m, MemoryModule):
                m.reset()


def _forward(model: nn.Module, x: Tensor) -> Tensor:
    _reset(model)
    return model(x)


@contextmanager
def _bn_mode(model: nn.Module, mode: str | None) -> Iterator[None]:
    """Put BatchNorm modules in train ("train") or eval ("eval") mode, or leave them (None). On exit their modes
    and buffers (running statistics) are restored, so crafting in train mode does not change the scored model
    (the authors' loop lets the running statistics drift with the adversarial batches)."""
    if mode not in ("train", "eval", None):
        raise ValueError(f"bn_mode must be 'train', 'eval' or None, not {mode!r}")
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.training, {k: b.clone() for k, b in m.named_buffers(recurse=False)}) for m in bns]
    try:
        if mode is not None:
            for m in bns:
                m.train(mode == "train")
        yield
    finally:
        for m, (training, buffers) in zip(bns, saved):
            m.train(training)
            for k, b in buffers.items():
                getattr(m, k).copy_(b)


def _box(x: Tensor, eps: float, clamp: Clamp) -> tuple[Tensor, Tensor]:
    """Bounds of the ε-ball around x intersected with the clamp box (x must lie in the box)."""
    lo, hi = x - eps, x + eps
    if clamp is not None:
        lo, hi = lo.clamp(min=clamp[0]), hi.clamp(max=clamp[1])
    return lo, hi


def _input_grad(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn) -> Tensor:
    """d Σ loss / d x (also under an outer no_grad), without touching the parameters' .grad."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(_forward(model, x), y).sum()
        return torch.autograd.grad(loss, x)[0]


# ----------------------------------------------------------------------------- gradient attacks

def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, loss_fn: LossFn = cross_entropy,
         clamp: Clamp = (0.0, 1.0), bn_mode: str | None = "eval") -> Tensor:
    """Fast Gradient Sign Method: x + ε·sign(∇_x loss), clamped to `clamp` (None: no box). A zero gradient
    entry leaves that entry unperturbed (sign 0), which is how sparse gradients blunt the attack.
    Authors: ε = 6/255, clamp (0, 1), bn_mode="train"."""
    with _bn_mode(model, bn_mode):
        g = _input_grad(model, x, y, loss_fn)
    lo, hi = _box(x, eps, clamp)
    return torch.clamp(x.detach() + eps * g.sign(), lo, hi)


def pgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, step: float, iters: int, *,
        loss_fn: LossFn = cross_entropy, random_start: bool = True, restarts: int = 1, seed: int = 0,
        clamp: Clamp = (0.0, 1.0), bn_mode: str | None = "eval", batch_dim: int = 0) -> Tensor:
    """L∞ PGD (Madry et al. 2018): from x (or x + U(−ε, ε) with `random_start`), `iters` steps
    x ← Π(x + step·sign(∇_x loss)), Π = projection onto the ε-ball around x ∩ the clamp box. Each restart
    returns its last iterate; over restarts the perturbation with the highest per-example loss (evaluated under
    `bn_mode`) is kept, so restarts never lower any example's loss. Random starts come from a private
    torch.Generator seeded with `seed` (CPU draws, so identical across devices).
    Authors: ε = 6/255, step 0.01, 7 iterations, random start, one restart, clamp (0, 1), bn_mode="train"."""
    if restarts < 1:
        raise ValueError("restarts must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    x = x.detach()
    lo, hi = _box(x, eps, clamp)
    best = best_loss = None
    with _bn_mode(model, bn_mode):
        for _ in range(restarts):
            adv = x
            if random_start:
                noise = torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device)
                adv = torch.clamp(x + (2 * noise - 1) * eps, lo, hi)
            for _ in range(iters):
                adv = torch.clamp(adv + step * _input_grad(model, adv, y, loss_fn).sign(), lo, hi)
            if restarts == 1:
                return adv
            with torch.no_grad():
                loss = loss_fn(_forward(model, adv), y)
            if best_loss is None:
                best, best_loss = adv, loss
                continue
            better = loss > best_loss
            shape = [1] * x.dim()
            shape[batch_dim] = -1
            best = torch.where(better.view(shape), adv, best)
            best_loss = torch.maximum(loss, best_loss)
    return best


# ----------------------------------------------------------------------------- Square Attack

def _p_selection(p_init: float, it: int, n_iters: int) -> float:
    """Square Attack's schedule of the fraction p of pixels changed (halvings at fixed points of a 10 000-query
    budget, rescaled to n_iters), as in the authors' reference code."""
    it = int(it / n_iters * 10000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
                       (8000, 256), (10000, 512)):
        if it <= bound:
            return p_init / div
    return p_init


def square_attack(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, queries: int = 5000,
                  p_init: float = 0.05, seed: int = 0, clamp: Clamp = (0.0, 1.0), batch_dim: int = 0) -> Tensor:
    """Score-based, gradient-free L∞ Square Attack (Andriushchenko et al. 2020), untargeted, margin loss
    z_y − max_{k≠y} z_k, minimised until negative (then the example stops being queried).

    Init: vertical stripes x + ε·s, s ∈ {−1, 1} per (example, channel, column). Step i: per example a random
    s×s window, side s = round(√(p_i·H·W)) clipped to [1, min(H, W) − 1], p_i from the paper's schedule; inside
    it every channel is set to x ± ε (random sign per channel); the candidate replaces the current best iff its
    margin is lower. At most `queries` forward calls per example (the init counts as one); everything runs under
    torch.no_grad() with BatchNorm in eval mode (per-example scores must not depend on the queried subset).

    Shapes: x is [..., H, W] with the batch at `batch_dim`; all other leading dims are treated as channels, so
    [B, C, H, W] (batch_dim=0) and time-stacked [T, B, C, H, W] (batch_dim=1; the window covers the same pixels
    at every time step, signs drawn per (t, c)) both work. Default 5000 queries = AutoAttack's budget."""
    gen = torch.Generator().manual_seed(seed)
    x = x.detach()
    moved = x.movedim(batch_dim, 0)
    B, H, W = moved.shape[0], moved.shape[-2], moved.shape[-1]
    flat = moved.reshape(B, -1, H, W)

    def unflat(z: Tensor) -> Tensor:
        return z.reshape(z.shape[:1] + moved.shape[1:]).movedim(0, batch_dim)

    def rand_sign(*shape: int) -> Tensor:
        return (torch.randint(0, 2, shape, generator=gen) * 2 - 1).to(x.device, x.dtype)

    lo, hi = _box(flat, eps, clamp)
    with _bn_mode(model, "eval"), torch.no_grad():
        def margin(z: Tensor, yz: Tensor) -> Tensor:  # z_y − max other: negative iff misclassified
            return -margin_loss(_forward(model, unflat(z)), yz)

        best = torch.clamp(flat + eps * rand_sign(B, flat.shape[1], 1, W), lo, hi)
        m_best = margin(best, y)
        rows = torch.arange(H, device=x.device).view(1, 1, H, 1)
        cols = torch.arange(W, device=x.device).view(1, 1, 1, W)
        for i in range(queries - 1):
            active = (m_best > 0).nonzero().squeeze(1)
            n = active.numel()
            if n == 0:
                break
            s = min(max(round(math.sqrt(_p_selection(p_init, i, queries) * H * W)), 1), min(H, W) - 1)
            vh = torch.randint(0, H - s, (n,), generator=gen).to(x.device).view(n, 1, 1, 1)
            vw = torch.randint(0, W - s, (n,), generator=gen).to(x.device).view(n, 1, 1, 1)
            window = (rows >= vh) & (rows < vh + s) & (cols >= vw) & (cols < vw + s)
            xa, la, ha = flat[active], lo[active], hi[active]
            cand = torch.where(window, torch.clamp(xa + eps * rand_sign(n, flat.shape[1], 1, 1), la, ha),
                               best[active])
            m_cand = margin(cand, y[active])
            better = m_cand < m_best[active]
            best[active] = torch.where(better.view(n, 1, 1, 1), cand, best[active])
            m_best[active] = torch.minimum(m_cand, m_best[active])
    return unflat(best)


# ----------------------------------------------------------------------------- evaluation

def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def correct(model: nn.Module, x: Tensor, y: Tensor, attack: Callable[..., Tensor] | None, batch_size: int, *,
            batch_dim: int = 0, desc: str | None = None, **kw) -> tuple[Tensor, Tensor]:
    """Per-example correctness (bool [N], CPU) on clean inputs and on attack(model, xb, yb, **kw), for batches of
    `batch_size` along `batch_dim` (moved to the model's device; batch_dim is forwarded to attacks that take it),
    scored with the whole model in eval() and its modules' modes restored afterwards. attack=None scores clean
    inputs only (both results equal). `desc`: a tqdm progress bar over batches. Returns (clean, adversarial)."""
    from ..core.progress import tqdm

    dev = _device(model)
    if attack is not None and "batch_dim" in inspect.signature(attack).parameters:
        kw = {**kw, "batch_dim": batch_dim}
    modes = [(m, m.training) for m in model.modules()]
    clean, adv_ok = [], []
    starts = range(0, y.shape[0], batch_size)
    try:
        for start in (tqdm(starts, desc=desc, leave=False, mininterval=1.0) if desc else starts):
            xb = x.narrow(batch_dim, start, min(batch_size, y.shape[0] - start)).to(dev)
            yb = y[start:start + batch_size].to(dev)
            adv = attack(model, xb, yb, **kw) if attack is not None else xb
            model.eval()
            with torch.no_grad():
                c = (_forward(model, xb).argmax(-1) == yb).cpu()
                clean.append(c)
                adv_ok.append(c if attack is None else (_forward(model, adv).argmax(-1) == yb).cpu())
    finally:
        for m, training in modes:
            m.training = training
    return torch.cat(clean), torch.cat(adv_ok)


def robust_accuracy(model: nn.Module, x: Tensor, y: Tensor, attack: Callable[..., Tensor] | None,
                    batch_size: int, *, batch_dim: int = 0, **kw) -> dict:
    """Accuracy (%) on attack(model, xb, yb, **kw) (see `correct`). Returns {"accuracy", "clean_accuracy", "n"}."""
    clean, adv = correct(model, x, y, attack, batch_size, batch_dim=batch_dim, **kw)
    n = int(y.shape[0])
    return {"accuracy": 100.0 * adv.sum().item() / n, "clean_accuracy": 100.0 * clean.sum().item() / n, "n": n}


# ----------------------------------------------------------------------------- gradient sparsity

def gradient_sparsity(model: nn.Module, x: Tensor, y: Tensor, *,
                      module_types: tuple[type[nn.Module], ...] = SPARSITY_MODULES,
                      loss_fn: LossFn = cross_entropy, bn_mode: str | None = "eval") -> pd.DataFrame:
    """Share of exact zeros in the gradients flowing through modules, as in paper D §4 (Figs. 3, 5).

    One backward pass of Σ loss through `model` on x; hooks (removed afterwards) on every module of
    `module_types` — by default conv, BN, pooling and spikingjelly neurons (BaseNode, whose surrogate gradient
    lives inside the module, so leaf-only hooks would miss it). Per module, summed over all of its calls
    (a single-step neuron runs T times): grad_input_zero_pct / grad_output_zero_pct = % of entries == 0 in the
    gradient w.r.t. its inputs / outputs, grad_input_norm = L2 norm of the input gradient (a non-zero norm
    rules out the zero share being a vanished gradient). A final row "input" holds d loss / d x
    (grad_output_zero_pct NaN). BN modes as in the attacks (authors: "train")."""
    stats: dict[str, list[float]] = {}
    types: dict[str, str] = {}

    def record(name: str, slot: int):
        def fn(g: Tensor) -> None:
            s = stats.setdefault(name, [0.0] * 5)
            if slot == 0:
                s[0] += float((g == 0).sum().item())
                s[1] += float(g.numel())
                s[2] += float(g.double().pow(2).sum().item())
            else:
                s[3] += float((g == 0).sum().item())
                s[4] += float(g.numel())
        return fn

    # Tensor hooks on fresh copies of each module's inputs and outputs, not module backward hooks: the copies carry
    # exactly the gradient that flows through this module (an input shared with a skip path gets only this
    # module's share), and later in-place ops (`out += identity`, ReLU(inplace)) modify the copy, not a view
    # produced inside a backward-hook Function, which autograd forbids.
    def pre(name: str):
        def fn(_m: nn.Module, args: tuple):
            out = []
            for a in args:
                if isinstance(a, Tensor) and a.requires_grad:
                    a = a.clone()
                    a.register_hook(record(name, 0))
                out.append(a)
            return tuple(out)
        return fn

    def post(name: str):
        def fn(_m: nn.Module, _args: tuple, output):
            if isinstance(output, Tensor) and output.requires_grad:
                output.register_hook(record(name, 1))
                return output.clone()
            return None
        return fn

    handles = []
    for name, m in model.named_modules():
        if isinstance(m, module_types):
            types[name] = type(m).__name__
            handles.append(m.register_forward_pre_hook(pre(name)))
            handles.append(m.register_forward_hook(post(name)))
    try:
        with _bn_mode(model, bn_mode):
            g = _input_grad(model, x, y, loss_fn)
    finally:
        for h in handles:
            h.remove()

    def pct(z: float, n: float) -> float:
        return 100.0 * z / n if n else float("nan")

    rows = [dict(name=name, type=types[name], grad_input_zero_pct=pct(s[0], s[1]),
                 grad_output_zero_pct=pct(s[3], s[4]), grad_input_norm=math.sqrt(s[2]) if s[1] else float("nan"))
            for name, s in ((n, stats.get(n, [0.0] * 5)) for n in types)]
    rows.append(dict(name="input", type="input", grad_input_zero_pct=pct((g == 0).sum().item(), g.numel()),
                     grad_output_zero_pct=float("nan"), grad_input_norm=g.double().norm().item()))
    return pd.DataFrame(rows)
