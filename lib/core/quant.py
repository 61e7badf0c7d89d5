"""Quantizers from paper A (arXiv 2502.18623, §III-C and §IV-B).

The paper quantizes three things:

1. **ANN activations**: brevitas ``QuantReLU`` at b ∈ {2, 4, 8} bits, with the range clipped at a
   threshold θ ∈ {0.5, …, 1.5}  ->  :func:`quant_relu`.
2. **SNN membrane potentials**: snntorch ``state_quant(num_bits=b, threshold=θ)``, applied in every
   LIF layer (whose firing threshold is also θ)  ->  :func:`state_quant`.
3. **Weights** of conv/linear layers: brevitas ``QuantConv2d`` / ``QuantLinear`` at b ∈ {8, 4, 2}
   bits, for ANNs and SNNs, trained quantization-aware  ->  :func:`conv2d`, :func:`linear`.

Levels per bit width (checked by tests/test_quant.py):

====================  =========================================  ======  ======  ======  ======
quantizer             level set                                  b=1     b=2     b=4     b=8
====================  =========================================  ======  ======  ======  ======
state_quant           2^b uniform levels in [-θ(1+lo), θ(1+up)]   2       4       16      256
quant_relu            {0, Δ, …, θ}, Δ = θ/(2^b-1)                 2       4       16      256
linear / conv2d       {-(2^(b-1)-1)s, …, 0, …, (2^(b-1)-1)s}      error   3       15      255
====================  =========================================  ======  ======  ======  ======

(brevitas' default weight quantizer is *narrow range*: 2-bit weights are ternary {-s, 0, +s}.)

Everything here is device-agnostic: no tensor is created on a fixed device at call time.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
from brevitas.inject.enum import RestrictValueType, ScalingImplType
from brevitas.nn import QuantConv2d, QuantLinear, QuantReLU
from brevitas.quant.scaled_int import Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from torch import Tensor

__all__ = [
    "StateQuant",
    "StateQuantizer",
    "state_quant",
    "ConstUintActPerTensorFloat",
    "quant_relu",
    "linear",
    "conv2d",
    "distinct_levels",
    "quantized_weight",
]


# ---------------------------------------------------------------------------------------------
# 1. Membrane-potential (state) quantization: an O(N)-memory twin of snntorch's state_quant
# ---------------------------------------------------------------------------------------------

def _nearest_level_index(x: Tensor, levels: Tensor) -> Tensor:
    """Index of the level snntorch's ``StateQuant`` would pick for every element of ``x``.

    snntorch computes ``idx = argmin_k |levels[k] - x|`` (``torch.min(..., dim=-1)[1]``, which returns
    the *first* index among equal minima) by broadcasting x against all levels (memory N·2^b).
    We obtain the same index with O(N) memory:

    * The distances are evaluated with the very same floating-point expression
      ``(levels[k] - x).abs()`` in the same promoted dtype, so float rounding is identical.
    * Because IEEE subtraction is monotone, D_k = |fl(levels[k] - x)| is weakly decreasing for
      levels ≤ x and weakly increasing for levels > x (a "valley"). With a = last index such that
      levels[a] ≤ x (``searchsorted``), the minimum is min(D_a, D_{a+1}); if D_{a+1} < D_a the answer
      is a+1, otherwise the first index k ≤ a with D_k == D_a (usually a itself).
    * A tie D_a == D_{a+1} (x on a midpoint, exactly or after rounding) therefore resolves to the
      **lower** level, like snntorch.
    * D_{a-1} == D_a only happens when ulp(x) is comparable to the level spacing (x ≳ 2.6e5 for
      8 bits, θ = 1) or for ±inf; then snntorch's first-index rule returns an even lower level
      (for ±inf: the lowest level). Those elements get a vectorised binary search so that the
      behaviour is reproduced bit for bit.
    * NaN: all distances are NaN and ``torch.min`` (CPU) returns index 0, i.e. the lowest level.
    """
    n = levels.numel()
    a = torch.searchsorted(levels, x, right=True) - 1          # in [-1, n-1]; NaN -> n-1
    left = a.clamp(min=0)
    right = (a + 1).clamp(max=n - 1)
    d_left = (levels[left] - x).abs()
    d_right = (levels[right] - x).abs()
    idx = torch.where(d_right < d_left, right, left)

    # Plateau to the left of the chosen level (only for huge |x| / inf): first index with D_k == D_left.
    prev = (left - 1).clamp(min=0)
    plateau = (idx == left) & (left > 0) & ((levels[prev] - x).abs() == d_left)
    if bool(plateau.any()):
        pos = plateau.nonzero(as_tuple=True)[0]
        xs, target = x[pos], d_left[pos]
        lo = torch.zeros_like(pos)
        hi = left[pos]                                          # predicate D_k <= target holds at hi
        for _ in range(max(1, (n - 1).bit_length()) + 1):
            mid = (lo + hi) // 2
            ok = (levels[mid] - xs).abs() <= target
            hi = torch.where(ok, mid, hi)
            lo = torch.where(ok, lo, mid + 1)
        idx[pos] = hi

    return torch.where(torch.isnan(x), torch.zeros_like(idx), idx)


def _decision_boundaries(levels: Tensor) -> tuple[Tensor, Tensor]:
    """Tables (lower, upper) with: snntorch picks level k  <=>  lower[k] < x <= upper[k],
    valid for every non-NaN x <= upper[-1] (x in the dtype of ``levels``).

    For x in [L_k, L_{k+1}] only levels k and k+1 can be the minimiser (the float distances to
    L_{k-1} and L_{k+2} are strictly larger, because rounding errors are ~2^-p of the step), and
    "D_k <= D_{k+1}" is monotone in x, so the largest float x that still picks k (ties included) is
    found by bisection over floats. Below L_0 the answer is always 0 (lower[0] = -inf). Above L_{n-1}
    the answer is n-1 as long as ulp(x - L_0) <= step/8, which holds for x < upper[-1] :=
    2^(floor(log2 step_min) + p - 3) - 2 max|L|; larger x fall back to :func:`_nearest_level_index`.
    """
    n = levels.numel()
    lk, lk1 = levels[:-1], levels[1:]
    lo, hi = lk.clone(), lk1.clone()                            # pred(lo) true, pred(hi) false
    for _ in range(4 * torch.finfo(levels.dtype).bits):
        done = torch.nextafter(lo, hi) >= hi
        if bool(done.all()):
            break
        mid = lo + (hi - lo) * 0.5
        mid = torch.where((mid > lo) & (mid < hi), mid, torch.nextafter(lo, hi))
        pred = (lk - mid).abs() <= (lk1 - mid).abs()
        lo = torch.where(done, lo, torch.where(pred, mid, lo))
        hi = torch.where(done, hi, torch.where(pred, hi, mid))
    else:  # pragma: no cover
        raise RuntimeError("state_quant: bisection for the decision boundaries did not converge")
    p = 1 - round(math.log2(torch.finfo(levels.dtype).eps))       # significand bits (24 for float32)
    step_min = float((lk1 - lk).min())
    top = 2.0 ** (math.floor(math.log2(step_min)) + p - 3) - 2 * float(levels.abs().max())
    top = max(top, float(levels[-1]))
    inf = torch.full((1,), float("inf"), dtype=levels.dtype, device=levels.device)
    upper = torch.cat([lo, torch.full_like(inf, top)])
    lower = torch.cat([-inf, lo])
    return lower, upper


class _Tables:
    """Per-(device, dtype) look-up tables of a level set, see :func:`_decision_boundaries`."""

    def __init__(self, levels: Tensor):
        self.levels = levels.contiguous()
        if bool((levels[1:] > levels[:-1]).all()) and bool(torch.isfinite(levels).all()):
            self.lower, self.upper = _decision_boundaries(self.levels)
        else:  # degenerate level set (e.g. a threshold so tiny that levels coincide): exact path only
            self.upper = torch.full_like(self.levels, -float("inf"))
            self.lower = torch.full_like(self.levels, float("inf"))
        self.n = levels.numel()
        self.lo = float(levels[0])
        self.inv_step = (self.n - 1) / (float(levels[-1]) - self.lo)


def _quantize_to_levels(x: Tensor, t: _Tables) -> Tensor:
    """``levels[first argmin_k |levels[k] - x|]`` for a flat ``x`` (dtype of ``t.levels``).

    Fast path: k = clamp(round((x - L_0) / step), 0, n-1), accepted iff lower[k] < x <= upper[k]
    (an exact test). Rejected elements (NaN, inf, |x| beyond the tables) go through the exact
    :func:`_nearest_level_index`. Cost: ~13 elementwise passes, O(N) memory.
    """
    r = (x - t.lo).mul_(t.inv_step).round_().clamp_(0, t.n - 1)
    k = torch.nan_to_num_(r, nan=0.0).to(torch.int32)
    ok = (x > t.lower.index_select(0, k)) & (x <= t.upper.index_select(0, k))
    out = t.levels.index_select(0, k)
    if not bool(ok.all()):
        pos = (~ok).nonzero(as_tuple=True)[0]
        out[pos] = t.levels[_nearest_level_index(x[pos], t.levels)]
    return out


class StateQuant(torch.autograd.Function):
    """Nearest-level quantization with a straight-through gradient (snntorch's ``StateQuant``).

    ``StateQuant.apply(x, levels)``: forward ``levels[argmin_k |levels[k] - x|]`` (first index among
    ties; output dtype = ``levels.dtype``, as in snntorch); backward: identity
    (``grad_output.clone()``), no gradient to ``levels``. An optional third argument, a dict cache
    {(device, dtype): _Tables}, avoids rebuilding the decision tables on every call.
    """

    @staticmethod
    def forward(ctx, input_: Tensor, levels: Tensor, cache: dict | None = None) -> Tensor:  # noqa: D401
        size = input_.size()
        flat = input_.detach().flatten()
        ct = torch.result_type(levels, flat)                    # dtype of snntorch's `levels - input_`
        key = (flat.device, ct)
        tables = None if cache is None else cache.get(key)
        if tables is None:
            tables = _Tables(levels.to(device=flat.device, dtype=ct))
            if cache is not None:
                cache[key] = tables
        out = _quantize_to_levels(flat.to(ct).contiguous(), tables)
        return out.to(levels.dtype).reshape(size)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return grad_output.clone(), None, None


class StateQuantizer:
    """Picklable callable returned by :func:`state_quant` (pass it as ``state_quant=`` to LIF layers).

    Attributes: ``num_bits``, ``threshold``, ``lower_limit``, ``upper_limit``, ``levels`` (CPU,
    default dtype; identical to snntorch's ``torch.linspace`` levels), ``step``.
    """

    def __init__(self, num_bits: int, threshold: float, lower_limit: float = 0.0, upper_limit: float = 0.2):
        if isinstance(num_bits, bool) or not isinstance(num_bits, int) or num_bits < 1:
            raise ValueError(f"state_quant: num_bits must be an int >= 1, got {num_bits!r}")
        if not threshold > 0:
            raise ValueError(f"state_quant: threshold must be > 0, got {threshold!r}")
        if lower_limit < -1 or upper_limit < -1:
            raise ValueError("state_quant: lower_limit/upper_limit must be >= -1")
        self.num_bits = num_bits
        self.threshold = threshold
        self.lower_limit = lower_limit
        self.upper_limit = upper_limit
        num_levels = 2 << num_bits - 1                           # == 2**num_bits, snntorch's expression
        # exactly snntorch's expression, so the levels are bit-identical
        self.levels = torch.linspace(
            -threshold - threshold * lower_limit,
            threshold + threshold * upper_limit,
            num_levels,
        )
        self._tables: dict = {}                                  # (device, dtype) -> _Tables

    @property
    def step(self) -> float:
        return float(self.levels[1] - self.levels[0])

    def __call__(self, x: Tensor) -> Tensor:
        return StateQuant.apply(x, self.levels, self._tables)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_tables"] = {}
        return state

    def __repr__(self) -> str:
        return (f"StateQuantizer(num_bits={self.num_bits}, threshold={self.threshold}, "
                f"lower_limit={self.lower_limit}, upper_limit={self.upper_limit}, "
                f"range=[{float(self.levels[0]):.4g}, {float(self.levels[-1]):.4g}])")


def state_quant(num_bits: int, threshold: float, lower_limit: float = 0.0,
                upper_limit: float = 0.2) -> Callable[[Tensor], Tensor]:
    """Membrane-potential quantizer, a drop-in for ``snntorch.functional.quant.state_quant(num_bits,
    uniform=True, threshold=threshold, lower_limit=..., upper_limit=...)``.

    Maps each value to the nearest of ``2**num_bits`` uniformly spaced levels
    ``torch.linspace(-θ(1+lower_limit), θ(1+upper_limit), 2**num_bits)``; the gradient is passed
    straight through (identity, also outside the range), exactly like snntorch.

    Differences from snntorch: memory O(N) instead of O(N·2^b) (snntorch broadcasts the state
    against all levels: for one 8-bit time step of a [128, 32, 28, 28] conv state that is
    3.2M × 256 float32 = 3.3 GB per temporary); decision tables are cached per (device, dtype);
    ``threshold <= 0`` / ``num_bits < 1`` raise ``ValueError``. Outputs and gradients are
    bit-identical to snntorch's (tests/test_quant.py), including:

    * ties (x exactly on — or, after float32 rounding, indistinguishable from — a midpoint between
      two levels) go to the **lower** level, because snntorch's ``torch.min(dim)`` returns the first
      index of equal minima (e.g. 1 bit, θ = 1: levels {-1, 1.2}, x = 0.1 -> -1);
    * snntorch quirks are kept: the output dtype is the levels' dtype (float32 under the default
      dtype, even for float16/float64 inputs); NaN and ±inf map to the lowest level -θ(1+lower_limit);
      for |x| so large that float32 cannot resolve the level spacing (x ≳ 2.6e5 at 8 bits, θ = 1;
      ≳ 2e6 at 4 bits) the result is a lower level than the nearest one. Real membrane potentials
      never get there.

    Note: snntorch's first-index tie rule is documented for CPU; on CUDA our tie rule is still
    "lower level" (deterministic) whatever snntorch's CUDA kernel would do.
    """
    return StateQuantizer(num_bits, threshold, lower_limit, upper_limit)


# ---------------------------------------------------------------------------------------------
# 2. ANN activation quantization: brevitas QuantReLU with a fixed clipping range θ
# ---------------------------------------------------------------------------------------------

class ConstUintActPerTensorFloat(Uint8ActPerTensorFloat):
    """Unsigned per-tensor activation quantizer with a **constant** scale max_val / (2^b - 1).

    Brevitas' default ``Uint8ActPerTensorFloat`` learns its scale (initialised from the 99.999th
    percentile of the first 300 batches). Paper A says only that thresholds 0.5…1.5 are applied
    "before quantization, clipping activations and setting an upper bound on magnitudes", i.e. the
    clipping range is the experimental variable θ; a learned scale would drift away from θ, so we fix
    it (``ScalingImplType.CONST``, scaling_init = max(|min_val|, |max_val|) = θ). This is the paper's
    Eq. (1) with a_min = 0, a_max = θ: q(a) = Δ·clamp(round(a/Δ), 0, 2^b - 1), Δ = θ/(2^b - 1).
    Not narrow range: 2^b levels. Rounding is ``torch.round`` (half to even).
    """
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    min_val = 0.0


def quant_relu(bits: int | None, threshold: float) -> nn.Module:
    """ReLU whose output is quantized to ``{0, θ/(2^b-1), …, θ}`` (brevitas ``QuantReLU``).

    ``bits=None`` -> full-precision ``nn.ReLU()`` (no clipping). Returns plain tensors.

    Gradient (brevitas STE): 1 where the *rounded* value lies in [0, 2^b-1], i.e. for
    0 < x < θ + Δ/2 (the clamp is applied after the STE rounding); 0 for x < 0 (ReLU) and for
    x ≳ θ + Δ/2 (clipped). The module has no parameters; it holds only constant brevitas buffers.
    """
    if bits is None:
        return nn.ReLU()
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"quant_relu: bits must be None or an int >= 1, got {bits!r}")
    if not threshold > 0:
        raise ValueError(f"quant_relu: threshold must be > 0, got {threshold!r}")
    return QuantReLU(act_quant=ConstUintActPerTensorFloat, bit_width=bits, max_val=float(threshold),
                     return_quant_tensor=False)


# ---------------------------------------------------------------------------------------------
# 3. Weight quantization: brevitas QuantLinear / QuantConv2d (quantization-aware training)
# ---------------------------------------------------------------------------------------------

WEIGHT_QUANT = Int8WeightPerTensorFloat
"""brevitas' default weight quantizer for QuantLinear/QuantConv2d (used with bit_width overridden):
signed, **narrow range**, per-tensor float scale s = max|W| / (2^(b-1) - 1) recomputed from the
current weights at every forward (``ScalingImplType.STATS``, ``StatsOp.MAX``; no learned scale),
zero point 0, round half to even. Integer codes lie in [-(2^(b-1)-1), 2^(b-1)-1], so a b-bit layer
has at most 2^b - 1 distinct weights: 2 bits -> 3 (ternary {-s, 0, s}), 4 bits -> 15, 8 bits -> 255.
1 bit is impossible (the narrow range is {0}; brevitas would produce scale = inf and NaN weights).
Gradients reach the float weights through the rounding STE and through s (max|W|).
Bias and input/output activations are not quantized (bias_quant=None, input_quant=None).

Paper A's Eq. (2) writes an unsigned 0…2^k-1 code with step (max-min)/(2^k-1); the paper says it
uses brevitas.nn for weights and gives no quantizer config, so we keep brevitas' default quantizer.
"""


def _check_weight_bits(bits) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
        raise ValueError(f"weight_bits must be None or an int >= 2 (brevitas' narrow-range signed "
                         f"weight quantizer has no 1-bit mode), got {bits!r}")


def linear(in_features: int, out_features: int, weight_bits: int | None, bias: bool = True) -> nn.Module:
    """``nn.Linear`` (weight_bits=None) or brevitas ``QuantLinear`` with ``weight_bit_width=weight_bits``
    and the quantizer described in :data:`WEIGHT_QUANT`. Returns plain tensors."""
    if weight_bits is None:
        return nn.Linear(in_features, out_features, bias=bias)
    _check_weight_bits(weight_bits)
    return QuantLinear(in_features, out_features, bias=bias, weight_quant=WEIGHT_QUANT,
                       weight_bit_width=weight_bits, return_quant_tensor=False)


def conv2d(in_ch: int, out_ch: int, kernel_size, padding, weight_bits: int | None, bias: bool = True) -> nn.Module:
    """``nn.Conv2d`` (weight_bits=None) or brevitas ``QuantConv2d`` with ``weight_bit_width=weight_bits``
    and the quantizer described in :data:`WEIGHT_QUANT`. Returns plain tensors."""
    if weight_bits is None:
        return nn.Conv2d(in_ch, out_ch, kernel_size, padding=padding, bias=bias)
    _check_weight_bits(weight_bits)
    return QuantConv2d(in_ch, out_ch, kernel_size, padding=padding, bias=bias, weight_quant=WEIGHT_QUANT,
                       weight_bit_width=weight_bits, return_quant_tensor=False)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def distinct_levels(t: Tensor) -> int:
    """Number of distinct values in ``t``."""
    return int(torch.unique(t.detach()).numel())


def quantized_weight(module: nn.Module) -> Tensor:
    """The weight used in the forward pass: ``module.quant_weight().value`` for brevitas layers
    (differentiable w.r.t. the float weight), ``module.weight`` for plain torch layers."""
    if hasattr(module, "quant_weight"):
        return module.quant_weight().value
    return module.weight
