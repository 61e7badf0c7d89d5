"""lib.core.neurons surrogate variants (spike_rate_escape_legacy, triangular_true) and the snntorch definitions
that notebook 04 discusses: gradients checked against their closed forms."""
import math

import pytest
import torch

from lib.core.neurons import LIF, SURROGATES, surrogate, surrogate_grad

X = torch.linspace(-3, 3, 601, dtype=torch.float64)


def grad_of(name, **kw):
    return surrogate_grad(surrogate(name, **kw), X)


def test_forward_is_heaviside_for_every_surrogate():
    for name in SURROGATES:
        s = surrogate(name)(X)
        assert torch.equal(s, (X > 0).to(s.dtype)), name


def test_spike_rate_escape_legacy_uses_slope_as_decay():
    g = grad_of("spike_rate_escape_legacy", beta=1, slope=25)
    assert torch.allclose(g, 25 * torch.exp(-25 * (X - 1).abs()))
    assert g[X.abs().argmin()] < 1e-9          # at U = θ (x = 0) the gradient all but vanishes
    assert math.isclose(g.max().item(), 25.0)  # peak at x = 1, i.e. U = θ + 1
    # beta is ignored, as in snntorch <= 0.7
    assert torch.equal(g, grad_of("spike_rate_escape_legacy", beta=7, slope=25))


def test_installed_spike_rate_escape_peaks_one_above_threshold():
    """snntorch 1.0: slope · exp(-β|x - 1|), x = U - θ: the peak sits at U = θ + 1, not at θ."""
    g = grad_of("spike_rate_escape", beta=1, slope=25)
    assert torch.allclose(g, 25 * torch.exp(-(X - 1).abs()))
    assert X[g.argmax()].item() == pytest.approx(1.0)


def test_triangular_true_is_a_triangle():
    g = grad_of("triangular_true")
    assert torch.allclose(g, torch.clamp(1 - X.abs(), min=0))
    assert g.max().item() == pytest.approx(1.0) and X[g.argmax()].item() == pytest.approx(0.0)
    g2 = grad_of("triangular_true", width=0.5)
    assert torch.allclose(g2, torch.clamp(1 - X.abs() / 0.5, min=0) / 0.5)


def test_snntorch_triangular_is_a_signed_step():
    g = grad_of("triangular")
    assert torch.equal(g, torch.where(X < 0, 1.0, -1.0).to(g.dtype))


def test_variants_train_through_lif():
    """Every surrogate (variants included) passes a finite, non-zero gradient through the LIF layer."""
    torch.manual_seed(0)
    cur = (torch.randn(5, 8, 6, dtype=torch.float64) + 0.8).requires_grad_(True)
    for name in ("spike_rate_escape_legacy", "triangular_true"):
        spikes, mem = LIF(0.95, 1.0, surrogate(name))(cur)
        (spikes.sum() + mem[-1].sum()).backward()
        assert torch.isfinite(cur.grad).all() and cur.grad.abs().sum() > 0
        cur.grad = None
