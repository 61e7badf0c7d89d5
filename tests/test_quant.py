"""Tests for lib/quant.py: state_quant == snntorch (bit for bit), QuantReLU / QuantLinear / QuantConv2d levels."""
import pickle

import pytest
import snntorch as snn
import torch
import torch.nn as nn
import torch.nn.functional as F
from snntorch.functional.quant import state_quant as snn_state_quant

from lib.core import quant
from lib.core.quant import (_nearest_level_index, conv2d, distinct_levels, linear, quant_relu, quantized_weight,
                       state_quant)

BITS = list(range(1, 9))
THRESHOLDS = [0.5, 0.75, 1.0, 1.25, 1.5]


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Bit pattern (NaN-safe exact comparison)."""
    return t.view(torch.int32) if t.dtype == torch.float32 else t.view(torch.int64)


def _probe_inputs(levels: torch.Tensor, n_random: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """Random values + every midpoint and its float neighbours + the levels + extremes."""
    mids = (levels[1:] + levels[:-1]) / 2
    up, down = torch.tensor(1e9), torch.tensor(-1e9)
    near = [mids]
    m_up, m_dn = mids, mids
    for _ in range(2):
        m_up, m_dn = torch.nextafter(m_up, up), torch.nextafter(m_dn, down)
        near += [m_up, m_dn]
    extremes = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e3, -1e3, 2e4, 1e5, 3e5, 1e6, 1e8, -1e5, -1e8, 3e38,
                             float("inf"), -float("inf"), float("nan")])
    rnd = torch.randn(n_random, generator=gen) * scale
    return torch.cat([rnd, *near, levels, torch.nextafter(levels, up), torch.nextafter(levels, down), extremes])


def _float_ties(levels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mask of x lying (in float arithmetic) at equal distance from two neighbouring levels."""
    k = (torch.searchsorted(levels, x, right=True) - 1).clamp(0, levels.numel() - 2)
    return ((levels[k] - x).abs() == (levels[k + 1] - x).abs()) & (x >= levels[0]) & (x <= levels[-1])


# ------------------------------------------------------------------------------------------------
# state_quant
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lower_limit,upper_limit", [(0.0, 0.2), (0.2, 0.0), (0.0, 0.0)])
def test_state_quant_levels_equal_snntorch(lower_limit, upper_limit):
    for b in BITS:
        for th in THRESHOLDS:
            q = state_quant(b, th, lower_limit, upper_limit)
            assert q.levels.numel() == 2 ** b
            # snntorch's StateQuant closure keeps `levels`; rebuild them the way snntorch does
            ref = torch.linspace(-th - th * lower_limit, th + th * upper_limit, 2 << b - 1)
            assert torch.equal(q.levels, ref)


@pytest.mark.parametrize("b", BITS)
def test_state_quant_bit_identical_to_snntorch(b):
    gen = torch.Generator().manual_seed(b)
    n_ties = 0
    for th in THRESHOLDS:
        for lower_limit, upper_limit in [(0.0, 0.2), (0.1, 0.0)]:
            ours = state_quant(b, th, lower_limit, upper_limit)
            ref = snn_state_quant(num_bits=b, uniform=True, threshold=th, lower_limit=lower_limit,
                                  upper_limit=upper_limit)
            x = _probe_inputs(ours.levels, 1500, 1.5 * th, gen)
            y_ours, y_ref = ours(x), ref(x)
            assert y_ours.dtype == y_ref.dtype and y_ours.shape == y_ref.shape
            bad = _bits(y_ours) != _bits(y_ref)
            assert not bad.any(), (th, x[bad][:5], y_ours[bad][:5], y_ref[bad][:5])
            # ties resolve to the lower of the two neighbouring levels (snntorch: first index of torch.min)
            tie = _float_ties(ours.levels, x)
            n_ties += int(tie.sum())
            k = (torch.searchsorted(ours.levels, x[tie], right=True) - 1).clamp(0, 2 ** b - 2)
            assert torch.equal(y_ours[tie], ours.levels[k])
            # every output is a level; at most 2^b distinct values
            assert torch.isin(y_ours, ours.levels).all()
            assert distinct_levels(y_ours) <= 2 ** b
    assert n_ties > 0, "probe set must contain exact float ties"


@pytest.mark.parametrize("b", BITS)
def test_state_quant_gradient_identical_to_snntorch(b):
    gen = torch.Generator().manual_seed(100 + b)
    for th in (0.5, 1.0, 1.5):
        x = (torch.randn(4, 50, 7, generator=gen) * 2 * th)
        g = torch.randn(x.shape, generator=gen)
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        y1 = state_quant(b, th)(x1)
        y2 = snn_state_quant(num_bits=b, threshold=th)(x2)
        assert torch.equal(y1, y2)
        (y1 * g).sum().backward()
        (y2 * g).sum().backward()
        assert torch.equal(x1.grad, x2.grad)
        assert torch.equal(x1.grad, g)  # straight-through, also outside the range


def test_state_quant_explicit_ties_go_to_lower_level():
    q = state_quant(1, 1.0)                       # levels {-1, 1.2}; midpoint 0.1
    assert q(torch.tensor([0.1])).item() == -1.0
    assert q(torch.tensor([0.1001])).item() == pytest.approx(1.2)
    q = state_quant(1, 0.5, 0.0, 0.0)             # levels {-0.5, 0.5}; exact midpoint 0
    assert torch.equal(q(torch.tensor([0.0, -0.0, 1e-7])), torch.tensor([-0.5, -0.5, 0.5]))
    q = state_quant(2, 1.5, 0.0, 0.0)             # levels {-1.5, -0.5, 0.5, 1.5}: midpoints -1, 0, 1 exact
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert torch.equal(q(x), torch.tensor([-1.5, -0.5, 0.5]))
    assert torch.equal(q(x), snn_state_quant(num_bits=2, threshold=1.5, upper_limit=0.0)(x))


def test_state_quant_dtypes_and_shape_match_snntorch():
    gen = torch.Generator().manual_seed(7)
    for dtype in (torch.float64, torch.float16):
        x = (torch.randn(3, 5, 11, generator=gen) * 1.3).to(dtype)
        for b in (2, 8):
            y1 = state_quant(b, 1.0)(x)
            y2 = snn_state_quant(num_bits=b, threshold=1.0)(x)
            assert y1.dtype == y2.dtype == torch.float32 and y1.shape == x.shape
            assert torch.equal(y1, y2)


def test_exact_fallback_matches_snntorch():
    """The exact (slow-path) index routine on its own, so both code paths are covered."""
    gen = torch.Generator().manual_seed(3)
    for b in (1, 3, 8):
        q = state_quant(b, 0.9)
        x = _probe_inputs(q.levels, 500, 2.0, gen)
        idx = _nearest_level_index(x, q.levels)
        ref = snn_state_quant(num_bits=b, threshold=0.9)(x)
        assert torch.equal(q.levels[idx], ref)


def test_state_quant_large_batch_levels_and_range():
    """O(N) memory: an 8-bit conv-sized state (snntorch would allocate 2M x 256 floats per temporary)."""
    x = torch.randn(25 * 4, 16, 28, 28, generator=torch.Generator().manual_seed(0)) * 2
    for b in (2, 8):
        q = state_quant(b, 1.0)
        y = q(x)
        assert y.shape == x.shape
        assert distinct_levels(y) == 2 ** b
        assert y.min().item() == -1.0 and y.max().item() == pytest.approx(1.2)
        assert (y - x).abs()[x.abs() < 1.0].max() <= q.step / 2 + 1e-6


def test_state_quant_in_snntorch_leaky_matches():
    gen = torch.Generator().manual_seed(11)
    cur = torch.rand(20, 8, 30, generator=gen) * 0.6
    for b in (2, 4, 8):
        th = 0.75
        outs = []
        for sq in (state_quant(b, th), snn_state_quant(num_bits=b, threshold=th)):
            lif = snn.Leaky(beta=0.95, threshold=th, state_quant=sq)
            mem = lif.init_leaky()
            spk_rec, mem_rec = [], []
            for t in range(cur.shape[0]):
                spk, mem = lif(cur[t], mem)
                spk_rec.append(spk)
                mem_rec.append(mem)
            outs.append((torch.stack(spk_rec), torch.stack(mem_rec)))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
        assert outs[0][0].sum() > 0


def test_state_quant_pickle_and_validation():
    q = state_quant(4, 1.0)
    x = torch.randn(100)
    q(x)
    q2 = pickle.loads(pickle.dumps(q))
    assert torch.equal(q2(x), q(x))
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError):
            state_quant(bad, 1.0)
    with pytest.raises(ValueError):
        state_quant(4, 0.0)
    assert torch.equal(quant.StateQuant.apply(x, q.levels), q(x))  # table-free call path
    tiny = state_quant(8, 1e-44)                                    # coinciding levels -> exact path only
    xt = torch.tensor([0.0, 1e-45, -1e-45, 1.0, float("nan")])
    assert torch.equal(_bits(tiny(xt)), _bits(snn_state_quant(num_bits=8, threshold=1e-44)(xt)))


# ------------------------------------------------------------------------------------------------
# quant_relu
# ------------------------------------------------------------------------------------------------

def test_quant_relu_none_is_relu():
    assert type(quant_relu(None, 1.0)) is nn.ReLU


@pytest.mark.parametrize("b", [1, 2, 4, 8])
@pytest.mark.parametrize("th", [0.5, 1.0, 1.5])
def test_quant_relu_levels(b, th):
    act = quant_relu(b, th)
    assert list(act.parameters()) == []           # fixed (non-learned) clipping range
    x = torch.linspace(-2, 3 * th, 20001)
    y = act(x)
    assert isinstance(y, torch.Tensor) and type(y) is torch.Tensor
    assert distinct_levels(y) == 2 ** b
    assert y.min().item() == 0.0
    assert y.max().item() == pytest.approx(th, rel=1e-6)
    delta = th / (2 ** b - 1)
    ref = delta * torch.clamp(torch.round(torch.relu(x) / delta), 0, 2 ** b - 1)
    assert torch.allclose(y, ref, atol=1e-6, rtol=0)
    levels = torch.unique(y)
    assert torch.allclose(levels, delta * torch.arange(2 ** b, dtype=torch.float32), atol=1e-6, rtol=0)


def test_quant_relu_gradient_and_constant_scale():
    th, b = 1.0, 4
    act = quant_relu(b, th)
    act.train()
    for _ in range(5):                             # a learned / stats-initialised scale would move here
        act(torch.rand(64, 100) * 10)
    x = torch.tensor([-0.5, 0.01, 0.3, 0.99, 2.0], requires_grad=True)
    y = act(x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))
    assert y[-1].item() == pytest.approx(th)
    act.eval()
    z = torch.randn(2, 3, 8, 8)
    assert torch.equal(act(z), quant_relu(b, th)(z))
    fresh = quant_relu(b, th)
    fresh.load_state_dict(act.state_dict())
    assert torch.equal(fresh(z), act(z))


# ------------------------------------------------------------------------------------------------
# weight quantization
# ------------------------------------------------------------------------------------------------

def test_full_precision_layers():
    assert type(linear(4, 3, None)) is nn.Linear
    c = conv2d(1, 4, 5, 2, None)
    assert type(c) is nn.Conv2d and c.padding == (2, 2)
    assert quantized_weight(c) is c.weight


@pytest.mark.parametrize("b", [2, 3, 4, 8])
def test_quant_linear_levels_output_grad(b):
    torch.manual_seed(b)
    m = linear(200, 100, b)
    w = quantized_weight(m)
    qmax = 2 ** (b - 1) - 1                        # narrow range
    scale = m.weight.detach().abs().max() / qmax
    codes = w.detach() / scale
    assert distinct_levels(w) <= 2 ** b
    assert distinct_levels(w) == 2 * qmax + 1      # 2^b - 1 levels: 3 at 2 bits, 255 at 8 bits
    assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.round().abs().max() == qmax
    x = torch.randn(25 * 128, 200)                 # N = T * B rows
    y = m(x)
    assert type(y) is torch.Tensor and y.shape == (25 * 128, 100)
    assert torch.allclose(y, F.linear(x, w, m.bias), atol=1e-5)
    y.square().mean().backward()
    assert m.weight.grad is not None and torch.isfinite(m.weight.grad).all() and m.weight.grad.abs().sum() > 0
    assert m.bias.grad is not None


@pytest.mark.parametrize("b", [2, 4, 8])
def test_quant_conv_levels_output_grad(b):
    torch.manual_seed(10 + b)
    m = conv2d(8, 16, 5, 2, b)
    w = quantized_weight(m)
    assert w.shape == m.weight.shape
    assert distinct_levels(w) <= 2 ** b - 1
    if b == 2:
        assert distinct_levels(w) == 3                # ternary
    x = torch.randn(25 * 4, 8, 14, 14)
    y = m(x)
    assert type(y) is torch.Tensor and y.shape == (100, 16, 14, 14)
    assert torch.allclose(y, F.conv2d(x, w, m.bias, padding=2), atol=1e-5)
    y.mean().backward()
    assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0
    fresh = conv2d(8, 16, 5, 2, b)
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(quantized_weight(fresh), w)


def test_weight_bits_validation():
    with pytest.raises(ValueError):
        linear(4, 3, 1)
    with pytest.raises(ValueError):
        conv2d(1, 2, 3, 1, 0)
