"""GPTQ (Frantar et al. 2023) by brevitas' ``gptq_mode`` on our weight grid, for lib.core.ptq's "gptq" method.

The conv/linear layers of a working copy of the model become brevitas ``QuantConv2d``/``QuantLinear`` whose weight
quantizer is *ours*: per output channel, asymmetric, L levels, with the scale s and zero point z of
:func:`lib.core.ptq_grid.channel_grid` fixed from the original (virtually BN-folded) weight. brevitas' own
``ShiftedUint8WeightPerChannelFloat`` recomputes its min/max statistics at every call from the weight it is given:
the weight GPTQ is rewriting column by column, and under gptq_mode's per-column slicing only that one column
(brevitas 0.13.4: a different scale per column). GPTQ assumes a grid fixed before the first column, hence
:class:`_FixedScale`/:class:`_FixedZeroPoint`. brevitas computes
ŵ = s·(clamp(round(w/s + z), 0, max_int) − z), unsigned, with max_int = 2^b − 1 or, narrow range, 2^b − 2: every
width of LEVELS is exact (1.58 bits = unsigned narrow-range 2 bits = {0, 1, 2} − z; 1 bit = {0, 1} − z).
tests/test_gptq.py checks that every stored weight lies on channel_grid's grid.

The calibration images run through the working copy once per layer (execution order): the layer's Hessian
H = (2/n) Σ X Xᵀ (im2col columns for a conv, brevitas' ``unfoldNd``) comes from its input in the model quantized
*so far* (earlier layers already on the grid), as the reference GPTQ. Then brevitas' ``single_layer_update``:
dead inputs (H_jj = 0) get weight 0, damping H += percdamp·mean(diag H)·I (``damp`` here, brevitas' default
0.01, the same rule as our OBQ's), the upper Cholesky factor U of H⁻¹, and columns in a fixed order (or by
decreasing H_jj with ``act_order``): q_j = quant(w_j), then the not-yet-quantized columns of the block absorb
the error, w_k −= (w_j − q_j)/U_jj · U_jk, and the later blocks are updated once per block ("lazy batch
updates", block size ⌈d/num_blocks⌉, brevitas' default num_blocks = 100; the result does not depend on it up to
float rounding). brevitas accumulates H in float32.

Versus our exact OBQ (lib.core.obc): both minimise tr((W − Ŵ) H (W − Ŵ)ᵀ) layer by layer with the same OBS
compensation, but OBQ picks, separately for every output row, the next weight greedily (least
(w − q)²/[H_F⁻¹]_jj, outliers first) and downdates that row's H_F⁻¹ exactly after each step (O(d³) per row),
while GPTQ quantizes the same column of all rows at once in one order and needs only one Cholesky of H⁻¹
per layer (O(d³) per layer). OBQ's Hessians come from the full-precision model, GPTQ's from the
quantized-so-far model; OBQ fits the grid after zeroing dead columns, GPTQ (here) before.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn

from .progress import tqdm
from .ptq_grid import Grid

# bit width → (brevitas bit_width, narrow_range) of the unsigned integer grid with LEVELS[bits] levels
BREVITAS_INT: dict[float, tuple[int, bool]] = {8: (8, False), 4: (4, False), 2: (2, False), 1.58: (2, True),
                                               1: (1, False)}
NUM_BLOCKS = 100                                   # brevitas' default: block size ⌈d / 100⌉ columns
_CHUNK = 256                                       # calibration images per forward


class _FixedScale(nn.Module):
    """brevitas ``scaling_impl`` returning a fixed per-channel scale (the threshold brevitas passes is ignored)."""

    def __init__(self, fixed_scale: Tensor):
        super().__init__()
        self.register_buffer("value", fixed_scale.detach().clone())

    def forward(self, x: Tensor, threshold: Tensor | None = None) -> Tensor:
        return self.value


class _FixedZeroPoint(nn.Module):
    """brevitas ``zero_point_impl`` returning a fixed per-channel integer zero point."""

    def __init__(self, fixed_zero_point: Tensor):
        super().__init__()
        self.register_buffer("value", fixed_zero_point.detach().clone())

    def forward(self, x: Tensor, scale: Tensor, bit_width: Tensor) -> Tensor:
        return self.value


def _weight_quant():
    """Our grid as a brevitas weight quantizer (an injector; imported lazily: brevitas is slow to import)."""
    from brevitas.quant import ShiftedUint8WeightPerChannelFloat

    class OurGridWeightQuant(ShiftedUint8WeightPerChannelFloat):
        scaling_impl = _FixedScale
        zero_point_impl = _FixedZeroPoint

    return OurGridWeightQuant


def quant_layer(module: nn.Module, bits: float, grid: Grid, weight: Tensor, bias: Tensor | None) -> nn.Module:
    """A brevitas QuantConv2d/QuantLinear computing ``module`` with ``weight``/``bias`` quantized on ``grid``."""
    from brevitas.nn import QuantConv2d, QuantLinear

    if bits not in BREVITAS_INT:
        raise ValueError(f"gptq: bits={bits!r} has no brevitas integer grid; choose one of {sorted(BREVITAS_INT)}")
    bw, narrow = BREVITAS_INT[bits]
    if 2 ** bw - narrow != grid.levels:
        raise ValueError(f"gptq: brevitas' {bw}-bit grid (narrow_range={narrow}) does not have {grid.levels} levels")
    kw = dict(bias=bias is not None, weight_quant=_weight_quant(), weight_bit_width=bw, weight_narrow_range=narrow,
              weight_fixed_scale=grid.scale, weight_fixed_zero_point=grid.zero_point,
              device=weight.device, dtype=weight.dtype)
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str) or module.padding_mode != "zeros":
            raise ValueError("gptq: only numeric zero padding is supported")
        q = QuantConv2d(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                        padding=module.padding, dilation=module.dilation, groups=module.groups, **kw)
    elif isinstance(module, nn.Linear):
        q = QuantLinear(module.in_features, module.out_features, **kw)
    else:
        raise ValueError(f"gptq: cannot quantize a {type(module).__name__}")
    with torch.no_grad():
        q.weight.copy_(weight)
        if bias is not None:
            q.bias.copy_(bias)
    return q.eval()


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, new)


def gptq_weights(model: nn.Module, layers: dict[str, tuple[float, Grid, Tensor]], folded_bn: dict[str, str],
                 x: Tensor, *, damp: float = 0.01, act_order: bool = False, num_blocks: int = NUM_BLOCKS,
                 progress_desc: str = "") -> tuple[dict[str, Tensor], dict]:
    """GPTQ of the conv/linear ``layers`` of ``model`` ({name: (bits, grid of W·f, f shaped like the grid)}).

    ``folded_bn`` ({layer: BN consuming its output}): in the working copy the layer becomes W·f with bias
    f·(b − μ) + β and that BN the identity (the real fold, so later layers see the right inputs); elsewhere
    f must be 1. ``x``: calibration images on the model's device. ``model`` is not modified. Returns
    ({name: quantized W·f, exactly on its grid}, {"failed": layers whose H could not be Cholesky-factorised,
    left at round to nearest by brevitas}).
    """
    work = copy.deepcopy(model).eval()
    mods = dict(work.named_modules())
    for name, (bits, grid, f) in layers.items():
        m = mods[name]
        w = m.weight.detach() * f
        b = m.bias.detach() if m.bias is not None else None
        if name in folded_bn:
            bn = mods[folded_bn[name]]
            fv = f.flatten()
            b = fv * ((b if b is not None else 0) - bn.running_mean) + (bn.bias.detach() if bn.affine else 0)
            _replace(work, folded_bn[name], nn.Identity())
        elif not bool((f == 1).all()):
            raise ValueError(f"gptq: layer {name} has a fold factor but no BN to fold")
        _replace(work, name, quant_layer(m, bits, grid, w, b))
    qmods = dict(work.named_modules())
    failed: list[str] = []

    from brevitas.graph.gptq import gptq_mode
    with torch.no_grad(), gptq_mode(work, act_order=act_order, use_quant_activations=False, create_weight_orig=False,
                                    num_blocks=num_blocks, device="same") as g:
        if g.num_layers != len(layers):
            raise ValueError(f"gptq: brevitas found {g.num_layers} layers to quantize, expected {len(layers)}")
        for _ in tqdm(range(g.num_layers), desc=progress_desc, leave=False):
            for c in range(0, len(x), _CHUNK):
                g.model(x[c:c + _CHUNK])
            # gptq_mode.update() with our damping (it calls single_layer_update() at brevitas' default 0.01)
            for name in sorted(g.current_layer.layer_names):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    g.gpxq_layers[name].single_layer_update(percdamp=damp)
                if any("GPTQ will not be applied" in str(w.message) for w in caught):
                    failed.append(name)
                for w in caught:                          # pass brevitas' warnings on
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                g.hook_dict[name].remove()
            g.current_layer.layer_names.clear()
    out = {name: qmods[name].quant_weight().value.detach().clone() for name in layers}
    return out, {"failed": failed}
