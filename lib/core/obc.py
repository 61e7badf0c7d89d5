"""Exact greedy OBQ / OBC (Frantar & Alistarh 2022; the authors' ``main_trueobs.py``) for paper C's "obc" method
(lib.core.ptq.quantize_model; its docstring states the algorithm): the Hessians of every layer's input in the
full-precision model, then per layer and output row the greedy quantize-and-compensate loop. tests/test_parity_obc.py
checks it against the reference implementation."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ptq_grid import Grid, _dequant, channel_grid

_OBQ_BYTES = 1 << 23                               # per-row inverse Hessians of one OBQ chunk (cache-sized: fastest on CPU)
_BATCH = 128                                       # images per forward when accumulating the Hessians


def obq(w: Tensor, h_inv: Tensor, grid: Grid) -> Tensor:
    """Exact greedy OBQ (OBC's ``TrueOBS.quantize``) of ``w`` [rows, d] given H⁻¹ [d, d]; returns Ŵ.

    Vectorised over rows (each row has its own, shrinking H_F⁻¹). After each quarter of the columns the
    eliminated rows/columns (exact zeros after the OBS downdate) are dropped, which cuts the O(d³) work per
    row about threefold without changing the arithmetic of the kept entries.
    """
    rows, d = w.shape
    scale, zp = grid.scale.reshape(rows, 1), grid.zero_point.reshape(rows, 1)
    out = torch.empty_like(w)
    per_chunk = max(1, min(rows, _OBQ_BYTES // (d * d * w.element_size())))
    for r0 in range(0, rows, per_chunk):
        ww = w[r0:r0 + per_chunk].clone()
        n = len(ww)
        s, z = scale[r0:r0 + per_chunk], zp[r0:r0 + per_chunk]
        outlier = 0.25 * s.square()
        hi = h_inv.expand(n, d, d).clone()
        cols = torch.arange(d, device=w.device).expand(n, d).clone()
        mask = torch.zeros(n, d, dtype=torch.bool, device=w.device)
        ar = torch.arange(n, device=w.device)
        done, res = 0, out[r0:r0 + per_chunk]
        for step in range(d):
            m = ww.shape[1]
            if m > 16 and m - done <= (3 * m) // 4:        # compact: keep the m − done live columns
                keep = (~mask).nonzero()[:, 1].view(n, m - done)
                ww, cols = ww.gather(1, keep), cols.gather(1, keep)
                hi = hi.gather(1, keep[:, :, None].expand(n, m - done, m))
                hi = hi.gather(2, keep[:, None, :].expand(n, m - done, m - done))
                mask, done = torch.zeros_like(keep, dtype=torch.bool), 0
            q = _dequant(ww, s, z, grid.levels)
            err = (ww - q).square()
            diag = hi.diagonal(dim1=1, dim2=2)
            scores = (err / diag).masked_fill(mask, float("inf"))
            err = err.masked_fill(mask, 0.0)
            j = scores.argmin(1)
            sel = (err > outlier).any(1) & (ww[ar, j] != 0)
            j = torch.where(sel, err.argmax(1), j)
            q1, dj = q[ar, j], diag[ar, j]
            res[ar, cols[ar, j]] = q1
            row = hi[ar, j, :]
            ww -= row * ((ww[ar, j] - q1) / dj)[:, None]
            mask[ar, j] = True
            done += 1
            if step == d - 1:
                break
            row = row / dj.sqrt()[:, None]
            hi.baddbmm_(row[:, :, None], row[:, None, :], alpha=-1)
    return out


def _obc_layer(w: Tensor, hessian: Tensor, bits: float, damp: float, scale_method: str = "minmax") -> Tensor:
    """OBC on one layer: damping (λ = damp·mean diag H), dead inputs (H_jj = 0: weight 0), the grid, H⁻¹,
    :func:`obq`.

    As OBC's ``TrueOBS.quantize`` (``prepare()`` zeroes the dead columns, then ``quantizer.find_params(W)``),
    the per-channel grid is fitted to W *after* its dead columns are zeroed: a dead weight never widens a
    row's range (nor enters the "mse" search). tests/test_parity_obc.py.
    """
    shape = w.shape
    w = w.flatten(1).clone()
    h = hessian.to(w.dtype).clone()
    if damp > 0:
        h += damp * torch.diag(h).mean() * torch.eye(len(h), dtype=h.dtype, device=h.device)
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    grid = channel_grid(w, bits, scale_method)
    try:
        h_inv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    except torch.linalg.LinAlgError:                  # the authors' fallback for a rank-deficient H
        h_inv = torch.cholesky_inverse(torch.linalg.cholesky(h + torch.eye(len(h), dtype=h.dtype, device=h.device)))
    return obq(w, h_inv, grid).reshape(shape)


def _im2col(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """Columns [C·kh·kw, B·Ho·Wo] (ordered like ``conv.weight.flatten(1)``) by strided slicing of the padded
    input, which is several times faster than F.unfold on CPU."""
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError("obc: only numeric zero padding is supported")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    xp = F.pad(x, (pw, pw, ph, ph))
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    cols = torch.stack([xp[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                        for i in range(kh) for j in range(kw)], 2)          # [B, C, kh·kw, Ho, Wo]
    return cols.permute(1, 2, 0, 3, 4).reshape(x.shape[1] * kh * kw, -1)


def _hessians(fp: nn.Module, fp_layers: list[nn.Module], x: Tensor) -> dict[str, Tensor]:
    """H = (2/n) Σ_images X Xᵀ (float64 running mean, as OBC's ``add_batch``) of every layer's input in the
    full-precision model; X = im2col columns for a conv, the input vector for a linear layer."""
    names = {m: n for n, m in fp.named_modules()}
    hess: dict[str, Tensor] = {}
    count = {"n": 0}

    def make(mod: nn.Module) -> Callable:
        def hook(m, inp, out):
            a = inp[0].detach()
            if isinstance(m, nn.Conv2d):
                if m.groups != 1:
                    raise ValueError(f"obc: grouped conv {names[m]} is not supported")
                a = _im2col(a, m)
            else:
                a = a.reshape(-1, a.shape[-1]).t()
            n_old, n_new = count["n"], count["n"] + len(inp[0])
            h = hess.get(names[m])
            h = torch.zeros(len(a), len(a), dtype=torch.float64, device=a.device) if h is None else h * (n_old / n_new)
            hess[names[m]] = h + 2 / n_new * (a @ a.t()).double()
        return hook

    handles = [m.register_forward_hook(make(m)) for m in fp_layers]
    try:
        with torch.no_grad():
            for c in range(0, len(x), _BATCH):
                xb = x[c:c + _BATCH]
                fp(xb)
                count["n"] += len(xb)
    finally:
        for hd in handles:
            hd.remove()
    return hess
