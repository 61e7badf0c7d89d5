"""The multi-step LIF layer must equal an snntorch.Leaky step loop: outputs and gradients."""
import pytest
import snntorch as snn
import torch
from snntorch.functional import quant as snn_quant

from lib.core.neurons import LIF, SURROGATES, surrogate, surrogate_grad

PAPER_KWARGS = {"fast_sigmoid": {"slope": 25}, "atan": {"alpha": 2.0},
                "spike_rate_escape": {"beta": 1, "slope": 25}, "triangular": {},
                "straight_through_estimator": {},
                # lib's own variants (tests/test_surrogates.py checks their closed forms)
                "spike_rate_escape_legacy": {"beta": 1, "slope": 25}, "triangular_true": {}}


def snntorch_loop(current, beta, threshold, spike_fn, state_quant=None):
    lif = snn.Leaky(beta=torch.tensor(beta, dtype=torch.float64), threshold=threshold, spike_grad=spike_fn, reset_mechanism="subtract",
                    state_quant=state_quant if state_quant is not None else False)
    mem = lif.init_leaky()
    spikes, mems = [], []
    for t in range(current.shape[0]):
        spk, mem = lif(current[t], mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("threshold,quant_bits", [(1.0, None), (0.75, 4), (1.25, 2)])
def test_lif_matches_snntorch_leaky(name, threshold, quant_bits):
    torch.manual_seed(0)
    T, B, N = 12, 5, 7
    cur = (torch.randn(T, B, N) * 0.8 + 0.4).double()
    w_spk, w_mem = torch.randn(T, B, N).double(), torch.randn(T, B, N).double()
    sq = snn_quant.state_quant(num_bits=quant_bits, threshold=threshold) if quant_bits else None
    results = []
    for impl in ("ours", "snntorch"):
        x = cur.clone().requires_grad_(True)
        fn = surrogate(name, **PAPER_KWARGS[name])
        if impl == "ours":
            spk, mem = LIF(0.95, threshold, fn, sq)(x)
        else:
            spk, mem = snntorch_loop(x, 0.95, threshold, fn, sq)
        loss = (spk * w_spk).sum() + (mem * w_mem).sum()
        (g,) = torch.autograd.grad(loss, x)
        results.append((spk, mem, g))
    (s1, m1, g1), (s2, m2, g2) = results
    assert s1.sum() > 0, "test input should make neurons spike"
    assert torch.equal(s1, s2)
    tol = 1e-5 if quant_bits else 1e-12  # snntorch's state_quant computes in float32
    torch.testing.assert_close(m1.double(), m2.double(), rtol=tol, atol=tol)
    torch.testing.assert_close(g1.double(), g2.double(), rtol=tol * 100, atol=tol * 100)


# dS/dx of every surrogate at PAPER_KWARGS, x = U − θ, written out from the formulas (snntorch 1.0 docs / paper A
# §IV-C), independently of snntorch's code
CLOSED_FORMS = {
    "fast_sigmoid": lambda x: 1 / (1 + 25 * x.abs()) ** 2,
    "atan": lambda x: (2.0 / 2) / (1 + (torch.pi / 2 * 2.0 * x) ** 2),
    "spike_rate_escape": lambda x: 25 * torch.exp(-1 * (x - 1).abs()),
    "triangular": lambda x: torch.where(x < 0, 1.0, -1.0).to(x.dtype),
    "straight_through_estimator": lambda x: torch.ones_like(x),
    "spike_rate_escape_legacy": lambda x: 25 * torch.exp(-25 * (x - 1).abs()),
    "triangular_true": lambda x: torch.clamp(1 - x.abs(), min=0),
}


def test_every_surrogate_has_a_closed_form():
    assert set(CLOSED_FORMS) == set(SURROGATES)


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("threshold", [1.0, 0.6])
def test_surrogate_gradient_through_lif_is_the_closed_form(name, threshold):
    """One LIF step from rest: U = I, S = H(U − θ), so dS/dI must be the closed form at I − θ — for the bare
    spike function and for the gradient that flows through our multi-step LIF layer."""
    x = torch.linspace(-2, 2, 101, dtype=torch.float64)
    x = x[(x - 0).abs() > 1e-9]                       # the two one-sided forms of `triangular` meet at 0
    expect = CLOSED_FORMS[name](x)
    torch.testing.assert_close(surrogate_grad(surrogate(name, **PAPER_KWARGS[name]), x), expect)
    cur = (x + threshold).reshape(1, 1, -1).clone().requires_grad_(True)   # [T=1, B=1, N]
    spk, _ = LIF(0.95, threshold, surrogate(name, **PAPER_KWARGS[name]))(cur)
    (g,) = torch.autograd.grad(spk.sum(), cur)
    torch.testing.assert_close(g.flatten(), expect)


def test_surrogate_shapes_are_the_papers():
    x = torch.tensor([0.0, 0.2, -0.5], dtype=torch.float64)
    fs = surrogate_grad(surrogate("fast_sigmoid", slope=25), x)
    torch.testing.assert_close(fs, 1 / (1 + 25 * x.abs()) ** 2)
    at = surrogate_grad(surrogate("atan", alpha=2.0), x)
    torch.testing.assert_close(at, 1 / (1 + (torch.pi * x) ** 2))


def test_unknown_surrogate_names_parameter():
    with pytest.raises(ValueError, match="surrogate"):
        surrogate("sigmoidish")


@pytest.mark.parametrize("used", ["spikes", "membrane"])
@pytest.mark.parametrize("chunk_elements", [1, 1 << 20])
@pytest.mark.parametrize("name", ["fast_sigmoid", "atan", "triangular"])
def test_lif_gradient_when_one_output_is_unused(name, used, chunk_elements, monkeypatch):
    """A hidden layer uses only the spikes, the output layer only the membrane: the unused output's gradient is
    None (never materialized as zeros), and the gradient still equals snntorch's, whatever the surrogate chunk."""
    import lib.core.neurons as N
    monkeypatch.setattr(N, "SURROGATE_CHUNK", chunk_elements)
    torch.manual_seed(1)
    T, B, N_ = 9, 4, 6
    cur = (torch.randn(T, B, N_) * 0.8 + 0.4).double()
    w = torch.randn(T, B, N_).double()
    grads = []
    for impl in ("ours", "snntorch"):
        x = cur.clone().requires_grad_(True)
        fn = surrogate(name, **PAPER_KWARGS[name])
        spk, mem = LIF(0.9, 1.0, fn)(x) if impl == "ours" else snntorch_loop(x, 0.9, 1.0, fn)
        out = spk if used == "spikes" else mem
        (g,) = torch.autograd.grad((out * w).sum(), x)
        grads.append(g)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("slope", [25, 5.0])
def test_fused_fast_sigmoid_gradient_is_snntorchs_bit_for_bit(slope):
    """The LIF backward's in-place fast-sigmoid gradient (lib.core.neurons._fast_sigmoid_grad) gives exactly the
    float32 bits of snntorch's FastSigmoid backward (same operations, same order), so float32 checkpoints did not
    change with it. In float64 it is the closed form to rounding, where snntorch's is not quite: its forward returns
    float32 spikes, so autograd rounds the incoming float64 gradient to float32 before the backward runs."""
    torch.manual_seed(2)
    fn = surrogate("fast_sigmoid", slope=slope)
    assert hasattr(fn, "fused_grad")
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(7, 33, dtype=dtype) * 2
        g = torch.randn(7, 33, dtype=dtype)
        out = torch.empty_like(x)
        fn.fused_grad(x.clone(), g, out)
        if dtype == torch.float32:
            assert torch.equal(out, surrogate_grad(fn, x, g))
        else:
            torch.testing.assert_close(out, g / (slope * x.abs() + 1) ** 2, rtol=1e-15, atol=0)
            torch.testing.assert_close(out, surrogate_grad(fn, x, g), rtol=1e-7, atol=0)
