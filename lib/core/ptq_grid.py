"""The weight grid of paper C's post-training quantization (lib.core.ptq; its docstring has the rules): per output
channel, asymmetric, L levels per bit width (``LEVELS``), range by "minmax" or the authors' "mse" search."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .vocab import PTQ_BITS, same_names

LEVELS: dict[float, int] = {8: 256, 4: 16, 2: 4, 1.58: 3, 1: 2}
same_names(LEVELS, PTQ_BITS, "lib.core.ptq_grid.LEVELS")
MSE_NORM, MSE_STEPS = 2.4, 80                      # authors' "mse" range search: Lp norm, shrink steps of 1 %


def n_levels(bits: float, name: str = "bits") -> int:
    """Number of grid levels L for a bit width (1.58 → 3); ValueError naming ``name`` otherwise."""
    if isinstance(bits, bool) or bits not in LEVELS:
        raise ValueError(f"{name}={bits!r} is not a supported bit width; choose one of {sorted(LEVELS)}")
    return LEVELS[bits]


class Grid(NamedTuple):
    """Per-output-channel asymmetric grid: scale and integer zero point shaped [C, 1, …] like the weight."""
    scale: Tensor
    zero_point: Tensor
    levels: int


class Quantized(NamedTuple):
    w_hat: Tensor
    scale: Tensor
    zero_point: Tensor


def _dequant(x: Tensor, scale: Tensor, zp: Tensor, levels: int) -> Tensor:
    """s · (clamp(round(x / s) + z, 0, L − 1) − z)."""
    return (torch.clamp(torch.round(x / scale) + zp, 0, levels - 1) - zp) * scale


def _range_grid(lo: Tensor, hi: Tensor, levels: int) -> tuple[Tensor, Tensor]:
    scale = (hi - lo) / (levels - 1)
    return scale, torch.round(-lo / scale)


def channel_grid(w: Tensor, bits: float, scale_method: str = "minmax") -> Grid:
    """Per-output-channel (dim 0) asymmetric grid of ``w`` (lib.core.ptq's docstring states the two rules).

    The range always contains 0 (so 0 is a level and z ∈ {0, …, L−1}); an all-zero channel gets [−1, 1].
    """
    levels = n_levels(bits)
    x = w.detach().flatten(1)
    lo = torch.clamp(x.min(1).values, max=0)
    hi = torch.clamp(x.max(1).values, min=0)
    dead = (lo == 0) & (hi == 0)
    lo, hi = torch.where(dead, -1.0, lo), torch.where(dead, 1.0, hi)
    scale, zp = _range_grid(lo, hi, levels)
    if scale_method == "mse":
        best = torch.full_like(scale, float("inf"))
        for i in range(MSE_STEPS):
            p = 1 - i / 100
            s1, z1 = _range_grid(p * lo, p * hi, levels)
            err = (_dequant(x, s1[:, None], z1[:, None], levels) - x).abs().pow(MSE_NORM).sum(1)
            better = err < best
            best = torch.where(better, err, best)
            scale, zp = torch.where(better, s1, scale), torch.where(better, z1, zp)
    elif scale_method != "minmax":
        raise ValueError(f"scale_method={scale_method!r}: choose 'minmax' or 'mse'")
    shape = (-1,) + (1,) * (w.dim() - 1)
    return Grid(scale.reshape(shape), zp.reshape(shape), levels)


def quantize_tensor(w: Tensor, bits: float, rounding: Tensor | None = None, *, grid: Grid | None = None,
                    scale_method: str = "minmax") -> Quantized:
    """ŵ = s·(clamp(round(w/s) + z, 0, L−1) − z) per output channel (paper eq. 2/4).

    ``rounding``: AdaRound's h ∈ [0, 1] (same shape as w) replaces round(w/s) by ⌊w/s⌋ + h (differentiable
    in h). ``grid``: a precomputed :func:`channel_grid` (else computed from ``w`` with ``scale_method``).
    """
    g = grid if grid is not None else channel_grid(w, bits, scale_method)
    if g.levels != n_levels(bits):
        raise ValueError(f"grid has {g.levels} levels but bits={bits!r} needs {n_levels(bits)}")
    if rounding is None:
        w_hat = _dequant(w, g.scale, g.zero_point, g.levels)
    else:
        q = torch.clamp(torch.floor(w / g.scale) + rounding + g.zero_point, 0, g.levels - 1)
        w_hat = (q - g.zero_point) * g.scale
    return Quantized(w_hat, g.scale, g.zero_point)
