"""Parity of our exact OBQ (lib/core/ptq.py, method "obc") with IST-DASLab/OBC's on layers with dead inputs.

The reference below is a transcription (plain torch, CPU, no printing/CUDA sync) of IST-DASLab/OBC at
commit 9b7979b ("Added relative dampening option"):

* ``quant.py``: ``quantize`` and ``Quantizer.find_params`` for the weight quantizer that ``main_trueobs.py``
  configures (``perchannel=not wperweight`` → True, ``sym=not wasym``, ``mse=not wminmax``); we test the
  asymmetric grid (``--wasym``), min–max (``--wminmax``) and the default MSE range search.
* ``trueobs.py``: ``TrueOBS.add_batch`` (H = (2/n) Σ X Xᵀ), ``TrueOBS.prepare`` (relative dampening, then
  dead inputs: ``dead = diag(H) == 0; H[dead, dead] = 1; W[:, dead] = 0``), ``TrueOBS.invert``,
  ``TrueOBS.prepare_iter``, ``TrueOBS.prepare_sparse`` and ``TrueOBS.quantize``.

The point of issue 21: ``TrueOBS.quantize`` calls ``prepare()`` (which zeroes the dead columns of W) and
only *then* ``self.quantizer.find_params(W, weight=True)``, so each row's grid is fitted to the row with its
dead weights already 0. Fitting the grid to the raw weights first (our old order) stretches the range of
every row whose min or max sits in a dead column, and that row then quantizes differently.
"""
import pytest
import torch
from torch import nn

from lib.core import ptq

BITS_MAXQ = {4: 15, 2: 3}          # OBC's Quantizer: maxq = 2**bits − 1; ours: LEVELS[bits] − 1


# --------------------------------------------------------------- IST-DASLab/OBC, transcribed

def _obc_quantize(x, scale, zero, maxq):
    """quant.py: ``quantize``."""
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def _obc_find_params(x, maxq, mse, norm=2.4, grid=100, maxshrink=.8):
    """quant.py: ``Quantizer.find_params(x, weight=True)`` with perchannel=True, sym=False."""
    x = x.flatten(1)
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    tmp = (xmin == 0) & (xmax == 0)
    xmin[tmp] = -1
    xmax[tmp] = +1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    if mse:
        best = torch.full([x.shape[0]], float('inf'))
        for i in range(int(maxshrink * grid)):
            p = 1 - i / grid
            xmin1 = p * xmin
            xmax1 = p * xmax
            scale1 = (xmax1 - xmin1) / maxq
            zero1 = torch.round(-xmin1 / scale1)
            q = _obc_quantize(x, scale1.unsqueeze(1), zero1.unsqueeze(1), maxq)
            q -= x
            q.abs_()
            q.pow_(norm)
            err = torch.sum(q, 1)
            tmp = err < best
            if torch.any(tmp):
                best[tmp] = err[tmp]
                scale[tmp] = scale1[tmp]
                zero[tmp] = zero1[tmp]
    return scale.reshape(-1, 1), zero.reshape(-1, 1)


def _obc_hessian(inp):
    """trueobs.py: ``TrueOBS.add_batch`` for an nn.Linear, one batch: H = 2/n · X Xᵀ in float64."""
    inp = inp.t()
    return 2 / inp.shape[1] * (inp.matmul(inp.t())).double()


def _obc_invert(H):
    """trueobs.py: ``TrueOBS.invert``."""
    try:
        return torch.cholesky_inverse(torch.linalg.cholesky(H))
    except RuntimeError:
        return torch.cholesky_inverse(torch.linalg.cholesky(H + torch.eye(H.shape[0])))


def _obc_trueobs_quantize(W, H64, maxq, mse, rel_damp=0.0, parallel=32):
    """trueobs.py: ``TrueOBS.prepare`` + ``TrueOBS.quantize`` (with ``prepare_iter``/``prepare_sparse``).

    Returns (Q, scale, zero) — the quantized weight and the grid ``find_params`` fitted.
    """
    rows, columns = W.shape
    # --- prepare()
    W = W.clone()
    H = H64.float()
    if rel_damp > 0:
        H += rel_damp * torch.diag(H).mean() * torch.eye(H.shape[0])
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    Hinv1 = _obc_invert(H)
    # --- quantize()
    Q = torch.zeros_like(W)
    scale_all, zero_all = _obc_find_params(W, maxq, mse)          # fitted AFTER prepare() zeroed dead columns
    for i1 in range(0, rows, parallel):
        # prepare_iter
        i2 = min(i1 + parallel, rows)
        count = i2 - i1
        w = W[i1:i2, :]
        Hinv = Hinv1.unsqueeze(0).repeat((count, 1, 1))
        mask = torch.zeros_like(w).bool()
        rangecount = torch.arange(count)
        idxcount = rangecount + i1
        # prepare_sparse
        start = int(torch.min(torch.sum((w == 0).float(), 1)).item()) + 1
        for i in range(w.shape[0]):
            tmp = w[i] == 0
            H1 = H.clone()
            H1[tmp, :] = 0
            H1[:, tmp] = 0
            H1[tmp, tmp] = 1
            Hinv[i] = _obc_invert(H1)
            mask[i, torch.nonzero(tmp, as_tuple=True)[0][:(start - 1)]] = True
        # the greedy OBS loop
        outlier = .25 * (scale_all ** 2)[i1:i2, :]
        scale = scale_all[i1:i2, :]
        zero = zero_all[i1:i2, :]
        for quant in range(start, columns + 1):
            q = _obc_quantize(w, scale, zero, maxq)
            err = (w - q) ** 2
            diag = torch.diagonal(Hinv, dim1=1, dim2=2)
            scores = err / diag
            scores[mask] = float('inf')
            err[mask] = 0
            j = torch.argmin(scores, 1)
            sel = torch.any(err > outlier, 1)
            sel &= w[rangecount, j] != 0
            if torch.any(sel):
                j[sel] = torch.argmax(err[sel, :], 1)
            q1 = q[rangecount, j]
            Q[idxcount, j] = q1
            row = Hinv[rangecount, j, :]
            d = diag[rangecount, j]
            w -= row * ((w[rangecount, j] - q1) / d).unsqueeze(1)
            mask[rangecount, j] = True
            if quant == columns:
                break
            row /= torch.sqrt(d).unsqueeze(1)
            Hinv -= torch.bmm(row.unsqueeze(2), row.unsqueeze(1))
    return Q, scale_all, zero_all


# ----------------------------------------------------------------------------------- fixture

DEAD = [2, 7, 11]          # inputs of the 10×16 layer that the ReLU never lets through


def _net(dead=DEAD, seed=0):
    """Linear(6→16) → ReLU → Linear(16→10); hidden units ``dead`` have weight 0 and bias −100 (always 0)."""
    with torch.random.fork_rng():               # seeded init without touching the global RNG
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    with torch.no_grad():
        net[0].weight[dead] = 0
        net[0].bias[dead] = -100
    x = torch.randn(128, 6, generator=torch.Generator().manual_seed(seed + 1))
    return net, x


def _layer_input(net, x):
    with torch.no_grad():
        return net[1](net[0](x))


def _rows_differing(a, b, atol=1e-6):
    return int((~torch.isclose(a, b, rtol=0, atol=atol).all(1)).sum())


def _old_order(w, h, bits, scale_method):
    """Our pre-issue-21 order: grid fitted to the raw W, dead columns zeroed afterwards (inside OBQ)."""
    grid = ptq.channel_grid(w, bits, scale_method)
    w = w.clone()
    h = h.to(w.dtype).clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    return ptq.obq(w, torch.cholesky_inverse(torch.linalg.cholesky(h)), grid)


# -------------------------------------------------------------------------------------- tests

CASES = [(b, m) for b in (4, 2) for m in ("minmax", "mse")]


@pytest.mark.parametrize("bits,scale_method", CASES)
def test_fixture_has_dead_inputs_and_the_order_matters(bits, scale_method):
    """The fixture really has dead inputs, some row's range is set by a dead weight, and the old order
    (grid fitted first) gives a different Ŵ than OBC's in at least one row (so the parity test can fail)."""
    net, x = _net()
    inp = _layer_input(net, x)
    h = _obc_hessian(inp)
    assert torch.equal(torch.nonzero(torch.diag(h) == 0).flatten(), torch.tensor(DEAD))
    w = net[2].weight.detach()
    live = torch.ones(w.shape[1], dtype=torch.bool)
    live[DEAD] = False
    wl = w[:, live]
    extreme_dead = (w[:, DEAD].max(1).values > wl.max(1).values) | (w[:, DEAD].min(1).values < wl.min(1).values)
    assert int(extreme_dead.sum()) >= 1
    theirs, s, z = _obc_trueobs_quantize(w, h, BITS_MAXQ[bits], mse=scale_method == "mse")
    old = _old_order(w, h, bits, scale_method)
    assert _rows_differing(old, theirs) >= 1


@pytest.mark.parametrize("bits,scale_method", CASES)
@pytest.mark.parametrize("dead", [DEAD, []], ids=["dead", "no_dead"])
def test_quantize_model_obc_matches_ist_daslab_obc(bits, scale_method, dead):
    """quantize_model(..., "obc", damp=0) — OBC's default rel_damp=0 — on the ReLU-fed 10×16 layer equals
    TrueOBS.quantize on the full-precision layer input: same grid (scale, zero point) and same Ŵ."""
    net, x = _net(dead)
    inp = _layer_input(net, x)
    h = _obc_hessian(inp)
    assert int((torch.diag(h) == 0).sum()) == len(dead)
    w = net[2].weight.detach()
    theirs, s, z = _obc_trueobs_quantize(w, h, BITS_MAXQ[bits], mse=scale_method == "mse")
    q, _ = ptq.quantize_model(net, "obc", bits, x, device="cpu", damp=0.0, scale_method=scale_method)
    ours = q[2].weight.detach()
    assert _rows_differing(ours, theirs) == 0
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)
    # identical grid points: every weight sits on OBC's grid s·({0, …, maxq} − z) of its row
    ints = ours / s + z
    assert torch.allclose(ints, ints.round(), atol=1e-4)
    assert bool(((ints.round() >= 0) & (ints.round() <= BITS_MAXQ[bits])).all())
    # and our grid is theirs: fitted to W with the dead columns zeroed
    w0 = w.clone()
    w0[:, dead] = 0
    g = ptq.channel_grid(w0, bits, scale_method)
    assert torch.allclose(g.scale, s, rtol=1e-6, atol=0) and torch.equal(g.zero_point, z)
    assert torch.equal(ptq.quantize_tensor(ours, bits, grid=g).w_hat, ours)
    # the dead weights are quantized to 0 (their inputs never fire)
    assert bool((ours[:, dead] == 0).all())


@pytest.mark.parametrize("bits,scale_method", CASES)
def test_obc_layer_matches_ist_daslab_obc_with_dead_inputs(bits, scale_method):
    """_obc_layer directly (float32, damp 0) against TrueOBS.quantize on the same W and H."""
    net, x = _net()
    h = _obc_hessian(_layer_input(net, x))
    w = net[2].weight.detach()
    theirs, _, _ = _obc_trueobs_quantize(w, h, BITS_MAXQ[bits], mse=scale_method == "mse")
    ours = ptq._obc_layer(w, h, bits, 0.0, scale_method)
    assert _rows_differing(ours, theirs) == 0
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-6)
