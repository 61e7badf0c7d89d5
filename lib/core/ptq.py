"""Post-training weight quantization (PTQ) of paper C ("Bits for Privacy", §II–IV; authors' code QuTongxi/Quant-MIA).

What is quantized (as the authors): the **weights** of every conv and linear layer, stem and fc included;
activations stay full precision. Grids are per output channel and asymmetric (paper eq. 2/4):

    ŵ = s · (clamp(round(w / s) + z, 0, L − 1) − z),   z ∈ ℤ,

with L levels: ``LEVELS = {8: 256, 4: 16, 2: 4, 1.58: 3, 1: 2}``. 1.58 bits is the paper's eq. 4 (levels
{0, 1, 2} − z: ternary when the channel straddles zero). "1-bit" is the authors' sign baseline: two
*asymmetric* levels {0, 1} − z, i.e. {0, s} or {−s, 0} (one of them is always zero), which is why it fails.

Scale and zero point (:func:`channel_grid`): ``scale_method="minmax"`` (default) takes the channel range
[min(w, 0), max(w, 0)], s = range / (L − 1), z = round(−min / s); this is brevitas'
``ShiftedUint8WeightPerChannelFloat`` rule (tests/test_ptq.py). ``"mse"`` is what the authors' code actually
runs for all three methods (AdaRound/BRECQ ``scale_method='mse'``, OBC ``mse=not wminmax``): shrink the range
by p ∈ {1, 0.99, …, 0.21} and keep the p with the least Σ|ŵ − w|^2.4 per channel.

Methods (:func:`quantize_model`), each on a deep copy:

* ``"rtn"``: round to nearest on the grid.
* ``"adaround"`` (Nagel et al. 2020): per layer, in execution order, learn for every weight whether it
  rounds down or up: ŵ = s·(clamp(⌊w/s⌋ + h(V) + z, 0, L−1) − z) with the rectified sigmoid
  h(V) = clamp(σ(V)(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1, V initialised so that h = frac(w/s); minimise
  ‖W x − Ŵ x̂‖² (summed over output channels, mean over batch and positions) + reg·Σ(1 − |2h − 1|^b),
  b annealed linearly 20 → 2 after a warm-up of 20 % of the iterations (no regulariser during the
  warm-up); Adam, lr 1e-3, batches of 32 drawn from the cache; finally h ← 1[V ≥ 0]. x̂ is the layer's
  input in the model quantized *so far* (earlier layers already hard-rounded), the target W x the
  full-precision layer output on the full-precision input (AdaRound/BRECQ ``asym=True``, the authors'
  setting). Authors: 20 000 iterations per layer, reg 1e-3, batch 32; ``iters`` here.
* ``"brecq"`` (Li et al. 2021): the same rounding variables, optimised jointly for all conv/linear layers of
  one unit of ``model.units()`` (stem, each BasicBlock, head) to match the full-precision unit output on
  the full-precision input, from the quantized-so-far unit input; reg 1e-2 (authors: 20 000 iterations).
  The authors' BRECQ reconstructs the stem conv and the fc layer-wise *including* the following
  (BN-folded) ReLU — the same as our stem and head units.
* ``"obc"`` (Frantar & Alistarh 2022, exact greedy OBQ): per layer, loss tr((W − Ŵ) H (W − Ŵ)ᵀ) with
  H = (2/n) Σ X Xᵀ over the calibration inputs (im2col for convs) of the *full-precision* model (all
  Hessians from one pass, as the authors' ``main_trueobs.py``); per output row, repeatedly quantize the
  not-yet-quantized weight with the least (w − q)²/[H_F⁻¹]_jj (or, if some weight lies outside the grid by
  more than s/2, the one with the largest error: OBC's outlier rule), compensate the remaining weights
  with the OBS update δ = −H_F⁻¹[:, j](w_j − q_j)/[H_F⁻¹]_jj and drop j from H_F⁻¹. The authors then
  re-estimate BN statistics (``bn_x`` / :func:`bn_reestimate`).
* ``"gptq"`` (Frantar et al. 2023, brevitas' ``gptq_mode``; lib.core.gptq): the same loss tr((W − Ŵ) H (W − Ŵ)ᵀ)
  and OBS compensation as OBQ, on brevitas layers carrying our grid (fixed s, z from the original weight).
  OBQ chooses, for every output row separately, the next weight greedily and downdates that row's H_F⁻¹
  exactly after each step; GPTQ quantizes one column of all rows at a time in a fixed order (or by
  decreasing H_jj: ``act_order``) from one Cholesky factor of H⁻¹ per layer, updating the later columns in
  lazy blocks (brevitas: ⌈d/100⌉ columns). Dampening H += ``damp``·mean diag H (brevitas' percdamp, default
  0.01). Its H comes from the layer's input in the model quantized *so far* (OBQ: full precision).

BN folding. BRECQ's code folds BN into the preceding conv before quantizing (``search_fold_and_remove_bn``,
also in the authors' copy); the authors' AdaRound and OBC code quantize the raw conv weights next to an
unfolded BN. ``fold_bn=None`` follows them (True for "brecq", False otherwise). We fold *virtually*: the
grid and the rounding act on W·f with f = γ/√(σ² + ε) per output channel, and the layer stores Ŵ_f / f with
BN kept, which in eval mode computes exactly the folded quantized conv while the module structure and
state_dict keys stay those of the input model. Per-channel grids are equivariant under f > 0, so folding
only changes channels with γ < 0 (grid mirrored) and AdaRound's per-channel loss weights.

Calibration data (:func:`calibration_indices`, :func:`bn_indices`): a seeded subset of the target's members
(authors: 1024, OBC's Hessian 2048). The authors' OBC batch-norm tuning draws from the whole training set,
non-members included — ``bn_indices(..., source="train")`` reproduces that leak; "members" avoids it.

Everything is deterministic given ``seed`` (on CPU; cuDNN may add float noise on CUDA) and runs on
``device`` (CUDA when present by default).

Where: the grid is lib.core.ptq_grid, exact OBQ/OBC (and its Hessians) lib.core.obc, the brevitas GPTQ wrapper
lib.core.gptq; this module runs the methods (AdaRound/BRECQ reconstruction included), BN re-estimation and the
calibration draws, and re-exports the names of ``__all__``.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call
from .progress import tqdm

from .gptq import gptq_weights
from .obc import _hessians, _obc_layer, obq  # noqa: F401  (obq, _obc_layer: re-exported for callers and tests)
from .ptq_grid import LEVELS, Grid, Quantized, channel_grid, n_levels, quantize_tensor  # noqa: F401
from .vocab import PTQ_METHODS

__all__ = [
    "LEVELS",
    "METHODS",
    "n_levels",
    "Grid",
    "Quantized",
    "channel_grid",
    "quantize_tensor",
    "obq",
    "quantize_model",
    "bn_reestimate",
    "calibration_indices",
    "bn_indices",
]

METHODS = PTQ_METHODS
DEFAULT_REG = {"adaround": 1e-3, "brecq": 1e-2}   # authors' AdaRound (weight=0.001) and BRECQ (--weight 0.01)
ZETA, GAMMA = 1.1, -0.1                            # rectified-sigmoid stretch (AdaRound)
B_START, B_END, WARMUP = 20.0, 2.0, 0.2            # regulariser annealing (AdaRound/BRECQ defaults)
_CHUNK = 256                                       # images per forward when caching activations


# ------------------------------------------------------------------------------------- model plumbing

class _StopForward(Exception):
    pass


class _Layer:
    """A conv/linear layer to quantize: its bit width, fold factor f (BN γ/√(σ²+ε) or 1) and grid of W·f."""

    def __init__(self, name: str, module: nn.Module, bits: float, fold: Tensor, scale_method: str):
        self.name, self.module, self.bits = name, module, bits
        shape = (-1,) + (1,) * (module.weight.dim() - 1)
        self.fold = fold.reshape(shape).to(module.weight)
        self.w = module.weight.detach() * self.fold      # the tensor that is put on the grid
        self.grid = channel_grid(self.w, bits, scale_method)

    def stored(self, w_hat: Tensor) -> Tensor:
        """The weight to store so that the (unfolded) layer + BN computes the folded quantized layer."""
        return torch.where(self.fold != 0, w_hat / torch.where(self.fold != 0, self.fold, 1.0), 0.0)

    def install(self, w_hat: Tensor) -> None:
        with torch.no_grad():
            self.module.weight.copy_(self.stored(w_hat))


def _run_hooks(model: nn.Module, x: Tensor, hooks: list[tuple[nn.Module, Callable]]) -> None:
    handles = [m.register_forward_hook(h) for m, h in hooks]
    try:
        with torch.no_grad():
            model(x)
    except _StopForward:
        pass
    finally:
        for hd in handles:
            hd.remove()


def _trace(model: nn.Module, x: Tensor) -> tuple[list[str], dict[str, str]]:
    """Conv/linear layer names in execution order, and {conv name: name of the BN that consumes its output}."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    produced: dict[int, str] = {}
    consumer: dict[str, str] = {}
    hooks: list[tuple[nn.Module, Callable]] = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            def after(mod, inp, out):
                order.append(names[mod])
                produced[id(out)] = names[mod]
            hooks.append((m, after))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            def before(mod, inp, out):
                if id(inp[0]) in produced:
                    consumer.setdefault(produced[id(inp[0])], names[mod])
            hooks.append((m, before))
    _run_hooks(model, x, hooks)
    if len(set(order)) != len(order):
        raise ValueError("quantize_model: a conv/linear layer runs more than once per forward")
    return order, consumer


def _capture(module: nn.Module, root: nn.Module, x: Tensor, what: str) -> Tensor:
    """Input ("in") or output ("out") of ``module`` when ``root`` runs on x, in chunks, stopping early."""
    parts = []

    def hook(mod, inp, out):
        parts.append((inp[0] if what == "in" else out).detach().clone())
        raise _StopForward

    for c in range(0, len(x), _CHUNK):
        _run_hooks(root, x[c:c + _CHUNK], [(module, hook)])
    return torch.cat(parts)


@torch.no_grad()
def _apply(module: nn.Module, x: Tensor) -> Tensor:
    return torch.cat([module(x[c:c + _CHUNK]) for c in range(0, len(x), _CHUNK)])


def _rec_loss(pred: Tensor, tgt: Tensor) -> Tensor:
    """AdaRound/BRECQ ``lp_loss(p=2)``: squared error summed over channels (dim 1), averaged over the rest."""
    return (pred - tgt).square().sum(1).mean()


class _AdaRound:
    """Learned rounding of one layer: V with h(V) = clamp(σ(V)(ζ−γ)+γ, 0, 1), initialised at h = frac(w/s)."""

    def __init__(self, layer: _Layer):
        self.layer = layer
        rest = layer.w / layer.grid.scale - torch.floor(layer.w / layer.grid.scale)
        self.v = nn.Parameter(-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1))

    def h(self) -> Tensor:
        return torch.clamp(torch.sigmoid(self.v) * (ZETA - GAMMA) + GAMMA, 0, 1)

    def w_hat(self, soft: bool) -> Tensor:
        """Quantized W·f with soft (h) or hard (1[V ≥ 0]) rounding."""
        h = self.h() if soft else (self.v >= 0).to(self.v.dtype)
        return quantize_tensor(self.layer.w, self.layer.bits, h, grid=self.layer.grid).w_hat

    def weight(self, soft: bool) -> Tensor:
        """The weight in the layer's stored layout (see :meth:`_Layer.stored`)."""
        return self.layer.stored(self.w_hat(soft))


def _reconstruct(run: Callable[[Tensor, bool], Tensor], rounders: list[_AdaRound], x_in: Tensor, target: Tensor,
                 *, iters: int, reg: float, batch_size: int, gen: torch.Generator) -> dict:
    """Minimise rec_loss(run(x̂), target) + reg·Σ(1 − |2h − 1|^b) over the rounders' V (AdaRound schedule)."""
    opt = torch.optim.Adam([r.v for r in rounders], lr=1e-3)
    start = WARMUP * iters
    n = len(x_in)

    def full_err() -> float:
        with torch.no_grad():
            return sum(float(_rec_loss(run(x_in[c:c + _CHUNK], False), target[c:c + _CHUNK])) * len(x_in[c:c + _CHUNK])
                       for c in range(0, n, _CHUNK)) / n

    err_rtn = full_err()                                   # hard rounding at init = round to nearest
    for t in range(1, iters + 1):
        idx = torch.randperm(n, generator=gen)[:batch_size].to(x_in.device)
        loss = _rec_loss(run(x_in[idx], True), target[idx])
        if t >= start:
            b = B_END + (B_START - B_END) * max(0.0, 1 - (t - start) / (iters - start))
            loss = loss + reg * sum((1 - (2 * r.h() - 1).abs().pow(b)).sum() for r in rounders)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"err_rtn": err_rtn, "err": full_err()}


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quantize_model(model: nn.Module, method: str, bits: float, calib_x: Tensor, *,
                   last_layer_bits: float | None = None, iters: int = 20000, reg: float | None = None,
                   batch_size: int = 32, seed: int = 0, device: str | torch.device | None = None,
                   progress_desc: str = "", scale_method: str = "minmax", fold_bn: bool | None = None,
                   damp: float = 0.01, act_order: bool = False,
                   bn_x: Tensor | None = None) -> tuple[nn.Module, dict]:
    """Weight-only PTQ of a copy of ``model`` (on ``device``) with ``method`` ∈ METHODS at ``bits``.

    ``calib_x``: calibration images (members of the target only; authors 1024, OBC 2048). The last
    conv/linear layer in execution order (the fc) gets ``last_layer_bits`` if given (the paper's decoupled
    setting, 8 bits). "adaround"/"brecq": ``iters`` per layer/unit, ``reg`` (default 1e-3 / 1e-2 as the
    authors), Adam lr 1e-3 on batches of ``batch_size``; "brecq" needs ``model.units()``, "adaround" uses it
    if present to cache activations unit by unit. "obc": dampening ``damp``·mean diag H (authors: 0, with a
    +I fallback when H is singular); "gptq": the same ``damp`` (brevitas' percdamp) and ``act_order``.
    ``bn_x``: if given, BN statistics are re-estimated on it afterwards (:func:`bn_reestimate`, the authors'
    step after OBC; the caller picks members or the leaky pool).
    Returns (quantized model in eval mode, report dict).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: choose one of {METHODS}")
    n_levels(bits, "bits")
    if last_layer_bits is not None:
        n_levels(last_layer_bits, "last_layer_bits")
    fold = (method == "brecq") if fold_bn is None else fold_bn
    reg = DEFAULT_REG.get(method, 0.0) if reg is None else reg
    dev = _device(device)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    fp = copy.deepcopy(model).to(dev).eval()
    qm = copy.deepcopy(model).to(dev).eval()
    x = calib_x.to(dev)
    order, bn_of = _trace(qm, x[:1])
    modules = dict(qm.named_modules())
    layers: dict[str, _Layer] = {}
    for i, name in enumerate(order):
        mod = modules[name]
        f = torch.ones(mod.weight.shape[0], device=dev)
        if fold and name in bn_of:
            bn = modules[bn_of[name]]
            f = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        b = last_layer_bits if (last_layer_bits is not None and i == len(order) - 1) else bits
        layers[name] = _Layer(name, mod, b, f, scale_method)
    report: dict = {"method": method, "bits": bits, "last_layer_bits": last_layer_bits, "scale_method": scale_method,
                    "fold_bn": fold, "n_calib": len(x), "seed": seed, "device": str(dev),
                    "layers": {n: {"bits": l.bits, "levels": l.grid.levels, "folded_bn": bn_of.get(n) if fold else None}
                               for n, l in layers.items()}}
    desc = f"{progress_desc} {method} W{bits}".strip()
    if method in ("adaround", "brecq"):
        report.update(iters=iters, reg=reg, batch_size=batch_size)

    if method == "rtn":
        for lay in layers.values():
            lay.install(quantize_tensor(lay.w, lay.bits, grid=lay.grid).w_hat)

    elif method == "obc":
        hess = _hessians(fp, [dict(fp.named_modules())[n] for n in order], x)
        for name in tqdm(order, desc=desc, leave=False):
            lay = layers[name]
            lay.install(_obc_layer(lay.w, hess[name], lay.bits, damp, scale_method))
        report["damp"] = damp

    elif method == "gptq":
        spec = {n: (l.bits, l.grid, l.fold) for n, l in layers.items()}
        w_hat, info = gptq_weights(fp, spec, bn_of if fold else {}, x, damp=damp, act_order=act_order,
                                   progress_desc=desc)
        for name, lay in layers.items():
            lay.install(w_hat[name])
        report.update(damp=damp, act_order=act_order, gptq_failed=info["failed"])

    else:
        units_q = qm.units() if hasattr(qm, "units") else None
        if units_q is None:
            if method == "brecq":
                raise ValueError("brecq needs model.units()")
            units_q, units_fp = [qm], [fp]
        else:
            units_fp = fp.units()
        recon = []
        x_q, x_fp = x, x
        bar = tqdm(total=len(order) if method == "adaround" else len(units_q), desc=desc, leave=False)
        for u_q, u_fp in zip(units_q, units_fp):
            names_q = {m: n for n, m in u_q.named_modules()}
            mods_fp = dict(u_fp.named_modules())
            in_unit = [n for n in order if layers[n].module in names_q]
            if method == "brecq":
                rounders = [_AdaRound(layers[n]) for n in in_unit]
                keys = [names_q[r.layer.module] + ".weight" for r in rounders]

                def run(xb, soft, u=u_q, rs=rounders, ks=keys):
                    return functional_call(u, {k: r.weight(soft) for k, r in zip(ks, rs)}, (xb,))

                target = _apply(u_fp, x_fp)
                res = _reconstruct(run, rounders, x_q, target, iters=iters, reg=reg, batch_size=batch_size, gen=gen)
                for r in rounders:
                    r.layer.install(r.w_hat(soft=False))
                recon.append({"unit": ",".join(in_unit), **res})
                bar.update()
            else:
                for name in in_unit:
                    lay = layers[name]
                    bar.set_postfix_str(name)
                    x_in = _capture(lay.module, u_q, x_q, "in")
                    target = _capture(mods_fp[names_q[lay.module]], u_fp, x_fp, "out")
                    r = _AdaRound(lay)

                    def run(xb, soft, m=lay.module, r=r):
                        return functional_call(m, {"weight": r.weight(soft)}, (xb,))

                    res = _reconstruct(run, [r], x_in, target, iters=iters, reg=reg, batch_size=batch_size, gen=gen)
                    lay.install(r.w_hat(soft=False))
                    recon.append({"layer": name, **res})
                    bar.update()
            if u_q is not qm:
                x_q, x_fp = _apply(u_q, x_q), _apply(u_fp, x_fp)
        bar.close()
        report["recon"] = recon

    if bn_x is not None:
        bn_reestimate(qm, bn_x)
        report["bn_reestimated"] = len(bn_x)
    report["seconds"] = time.perf_counter() - t0
    return qm.eval(), report


@torch.no_grad()
def bn_reestimate(model: nn.Module, x: Tensor, batch_size: int = 128) -> nn.Module:
    """Reset every BN layer's running statistics and recompute them on ``x`` (in place; weights untouched).

    Train-mode forward passes in batches of ``batch_size`` with momentum=None, i.e. running stats = plain
    average of the per-batch statistics (= the statistics of ``x`` when it is one batch). The authors' OBC
    "batch-norm tuning" instead uses momentum 0.1 over 100 batches of 128 drawn from the whole training set.
    The model's train/eval mode and BN momenta are restored.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta, was_training = [m.momentum for m in bns], model.training
    dev = next(model.parameters()).device
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for c in range(0, len(x), batch_size):
        model(x[c:c + batch_size].to(dev))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return model.train(was_training)


def calibration_indices(members: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the target's member indices, drawn without replacement by a generator seeded with ``seed``.

    Prefix-consistent: the first 1024 of a 2048-draw (OBC's Hessian set) are the 1024-draw (AdaRound/BRECQ).
    """
    members = np.asarray(members)
    if members.ndim != 1 or not np.issubdtype(members.dtype, np.integer):
        raise ValueError("members must be a 1-D integer index array")
    if len(np.unique(members)) != len(members):
        raise ValueError("members contains duplicate indices")
    if not 0 < n <= len(members):
        raise ValueError(f"n={n} calibration samples requested from {len(members)} members")
    return members[np.random.default_rng(seed).permutation(len(members))[:n]]


def bn_indices(members: np.ndarray, train_pool: np.ndarray, n: int, seed: int, source: str = "members") -> np.ndarray:
    """Indices for BN re-estimation after OBC. ``source="members"``: :func:`calibration_indices` (members only,
    the calibration draw itself for the same seed). ``source="train"``: the authors' choice, ``n`` indices
    drawn from the whole training pool (the target's non-members included: a membership leak)."""
    if source == "members":
        return calibration_indices(members, n, seed)
    if source == "train":
        return calibration_indices(train_pool, n, seed)
    raise ValueError(f"source={source!r}: choose 'members' or 'train'")
