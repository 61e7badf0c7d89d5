"""Surrogate gradients and the multi-step leaky integrate-and-fire (LIF) layer.

The LIF layer follows `snntorch.Leaky` exactly (reset by subtraction, reset_delay=True):

    r[t] = H(U[t-1] - θ)                       (detached: no gradient through the reset)
    U[t] = q( β·U[t-1] + I[t] - r[t]·θ )       (q = optional state quantizer, straight-through)
    S[t] = Θ(U[t] - θ)                          forward: Heaviside; backward: the surrogate σ'(U[t] - θ)

with U[-1] = 0. Instead of one autograd graph per time step, `LIF` takes the input current of all
T steps at once ([T, B, ...]) and runs the recurrence in one autograd Function whose backward pass is
the exact linear recurrence

    ∂L/∂U[t] = ∂L/∂Umem[t] + ∂L/∂S[t]·σ'(U[t] - θ) + β·∂L/∂U[t+1],     ∂L/∂I[t] = ∂L/∂U[t],

where σ' is obtained from snntorch's own surrogate autograd function (so any snntorch surrogate works
unchanged). tests/test_neurons.py checks outputs and gradients against an `snntorch.Leaky` step loop.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from snntorch import surrogate as snn_surrogate

from .vocab import SURROGATE_CONSTANTS, SURROGATES as SURROGATE_NAMES, same_names

class SpikeRateEscapeLegacy(torch.autograd.Function):
    """Spike rate escape as snntorch ≤ 0.7 computed it: the slope was passed where β belongs.

    Forward: S = Θ(x), x = U - θ.   Backward: ∂S/∂x = k · exp(-k |x - 1|),  k = slope.

    Peaked at x = 1 (U = θ + 1) like the current version, but k times narrower: at U = θ the gradient is
    k·e^{-k} (≈ 3.5e-10 for k = 25). `beta` is accepted and ignored, as it was then.
    """

    @staticmethod
    def forward(ctx, input_, slope):
        ctx.save_for_backward(input_)
        ctx.slope = slope
        return (input_ > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (input_,) = ctx.saved_tensors
        return grad_output * ctx.slope * torch.exp(-ctx.slope * torch.abs(input_ - 1)), None


class TriangularTrue(torch.autograd.Function):
    """A triangular surrogate in the usual sense (e.g. Esser et al. 2016, Bellec et al. 2018).

    Forward: S = Θ(x), x = U - θ.   Backward: ∂S/∂x = max(0, 1 - |x| / w) / w   (w = width, default 1).

    Contrast snntorch's `triangular`, whose gradient is +θ for x < 0 and -θ for x ≥ 0: a step, not a triangle,
    and negative above threshold.
    """

    @staticmethod
    def forward(ctx, input_, width):
        ctx.save_for_backward(input_)
        ctx.width = width
        return (input_ > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (input_,) = ctx.saved_tensors
        w = ctx.width
        return grad_output * torch.clamp(1.0 - torch.abs(input_) / w, min=0.0) / w, None


def spike_rate_escape_legacy(beta=1, slope=25):
    """SpikeRateEscapeLegacy with slope k (β ignored, as snntorch ≤ 0.7 did)."""

    def inner(x):
        return SpikeRateEscapeLegacy.apply(x, slope)

    return inner


def triangular_true(width=1.0):
    """TriangularTrue with half-width `width` (gradient max(0, 1 - |x|/w) / w)."""

    def inner(x):
        return TriangularTrue.apply(x, width)

    return inner


# name -> snntorch-style factory. Names are the keys of `surrogates` in params.yaml, whose values are the
# keyword arguments (paper A §IV-C). In the formulas x = U - θ (the LIF layer passes U - θ to the spike function).
SURROGATES: dict[str, Callable] = {
    "fast_sigmoid": snn_surrogate.fast_sigmoid,          # dS/dx = 1 / (1 + k|x|)^2, k = slope
    "atan": snn_surrogate.atan,                          # dS/dx = (α/2) / (1 + (π α x / 2)^2)
    "spike_rate_escape": snn_surrogate.spike_rate_escape,  # dS/dx = slope · exp(-β |x - 1|)  (peak at U = θ + 1)
    "triangular": snn_surrogate.triangular,              # dS/dx = +thr for x < 0, -thr for x ≥ 0 (snntorch's definition)
    "straight_through_estimator": snn_surrogate.straight_through_estimator,  # dS/dx = 1
    # variants that are not paper A's (04_surrogate_gradients discusses why they exist)
    "spike_rate_escape_legacy": spike_rate_escape_legacy,  # dS/dx = slope · exp(-slope |x - 1|)  (snntorch ≤ 0.7)
    "triangular_true": triangular_true,                  # dS/dx = max(0, 1 - |x|/w) / w
}
same_names(SURROGATES, SURROGATE_NAMES, "lib.core.neurons.SURROGATES")
for _name, _fn in SURROGATES.items():   # the validator's constants are exactly each function's keyword arguments
    if tuple(inspect.signature(_fn).parameters) != SURROGATE_CONSTANTS[_name]:
        raise AssertionError(f"lib.core.vocab.SURROGATE_CONSTANTS[{_name!r}] = {SURROGATE_CONSTANTS[_name]} differs from "
                             f"the arguments of its spike function {tuple(inspect.signature(_fn).parameters)}")


def surrogate(name: str, **kwargs) -> Callable[[torch.Tensor], torch.Tensor]:
    """The snntorch surrogate spike function called `name` (a key of SURROGATES)."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r} (parameter `surrogate`); choose one of {sorted(SURROGATES)}")
    fn = SURROGATES[name](**kwargs)
    if name == "fast_sigmoid":   # the LIF backward's fused form of this function's gradient (same arithmetic)
        fn.fused_grad = _fast_sigmoid_grad(float(kwargs.get("slope", 25)))
    return fn


def _fast_sigmoid_grad(slope: float):
    """`snntorch.surrogate.FastSigmoid`'s backward, grad / (k|x| + 1)², written in place: one temporary instead of
    six, no autograd graph. The same operations in the same order (`** 2` is `x * x` in torch's pow kernel), so
    float32 results are bit for bit snntorch's (tests/test_neurons.py; in float64 ours is the more exact, see there)."""

    def grad(x: torch.Tensor, grad_spikes: torch.Tensor, out: torch.Tensor) -> None:
        x.abs_().mul_(slope).add_(1.0)
        torch.div(grad_spikes, x.mul_(x), out=out)

    return grad


def surrogate_grad(spike_fn: Callable, x: torch.Tensor, grad_spikes: torch.Tensor | None = None) -> torch.Tensor:
    """grad_spikes · σ'(x), evaluated by running snntorch's autograd Function backwards once."""
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        out = spike_fn(leaf)
        g = torch.ones_like(out) if grad_spikes is None else grad_spikes
        (grad,) = torch.autograd.grad(out, leaf, g)
    return grad


SURROGATE_CHUNK = 1 << 17  # elements per surrogate call in the backward pass (512 KB in float32: stays in L2;
# measured on the tabular SNN's [25, 16, 1000] layer: 1.25x faster than 1 << 20, 1.3x than 1 << 16)


class _LIFFunction(torch.autograd.Function):
    # Memory- and call-bound on a CPU (a tabular layer's step is [16, 1000]): every step's work is written as few
    # torch calls as the arithmetic allows (views of all T steps taken once with unbind; spikes written by `gt`
    # straight into the float output; no zero gradients materialized for an unused output), with exactly the
    # arithmetic of the per-step loop, so the results are bit for bit those of the loop it replaced.
    @staticmethod
    def forward(ctx, current, beta, threshold, spike_fn, state_quant):
        mems = torch.empty_like(current)
        spikes = torch.empty_like(current)
        cur, mem, spk = current.unbind(0), mems.unbind(0), spikes.unbind(0)
        for t in range(len(cur)):
            if t == 0:
                mem[0].copy_(cur[0])
            else:  # U[t] = β U[t-1] + I[t] - θ S[t-1]
                torch.add(cur[t], mem[t - 1], alpha=beta, out=mem[t])
                mem[t].sub_(spk[t - 1], alpha=threshold)
            if state_quant is not None:
                mem[t].copy_(state_quant(mem[t]))
            torch.gt(mem[t], threshold, out=spk[t])
        ctx.save_for_backward(mems)
        ctx.beta, ctx.threshold, ctx.spike_fn = beta, threshold, spike_fn
        ctx.set_materialize_grads(False)   # an output nobody used (a hidden layer's membrane) gets None, not zeros
        return spikes, mems

    @staticmethod
    def backward(ctx, grad_spikes, grad_mems):
        (mems,) = ctx.saved_tensors
        beta, threshold, fn = ctx.beta, ctx.threshold, ctx.spike_fn
        T = mems.shape[0]
        if grad_spikes is None:   # only the membrane was used (the output layer): ∂L/∂I[t] = ∂L/∂U[t] + β ∂L/∂I[t+1]
            grad_current = grad_mems.clone() if grad_mems is not None else torch.zeros_like(mems)
            g = grad_current.unbind(0)
            for t in range(T - 2, -1, -1):
                g[t].add_(g[t + 1], alpha=beta)
            return grad_current, None, None, None, None
        grad_current = torch.empty_like(mems)
        g = grad_current.unbind(0)
        gm = grad_mems.unbind(0) if grad_mems is not None else None
        # Latest steps first, in chunks of steps whose working set stays in cache (≈ SURROGATE_CHUNK
        # elements); the surrogate term of a chunk is one call (small layers: all T steps in one call).
        chunk = max(1, SURROGATE_CHUNK // max(1, mems[0].numel()))
        fused = getattr(fn, "fused_grad", None)
        for t in range(T - 1, -1, -1):
            if t == T - 1 or (T - 1 - t) % chunk == 0:
                t0 = max(0, t + 1 - chunk)
                if fused is not None:
                    fused(mems[t0:t + 1] - threshold, grad_spikes[t0:t + 1], grad_current[t0:t + 1])
                else:
                    grad_current[t0:t + 1] = surrogate_grad(fn, mems[t0:t + 1] - threshold, grad_spikes[t0:t + 1])
            if gm is not None:
                g[t].add_(gm[t])
            if t + 1 < T:  # ∂L/∂I[t] = direct[t] + β ∂L/∂I[t+1]
                g[t].add_(g[t + 1], alpha=beta)
        return grad_current, None, None, None, None


class LIF(torch.nn.Module):
    """Leaky integrate-and-fire neurons over T steps: current [T, B, ...] -> (spikes, membrane), both [T, B, ...].

    β is the membrane decay (paper A: 0.95), θ the firing threshold (1.0), `spike_fn` an snntorch
    surrogate spike function and `state_quant` an optional membrane quantizer (e.g. snntorch's
    `state_quant`), applied to U[t] after every update as `snntorch.Leaky(state_quant=...)` does.
    """

    def __init__(self, beta: float = 0.95, threshold: float = 1.0, spike_fn: Callable | None = None,
                 state_quant: Callable | None = None):
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"LIF beta must lie in [0, 1] (parameter `beta`), got {beta}")
        self.beta, self.threshold = float(beta), float(threshold)
        self.spike_fn = spike_fn if spike_fn is not None else surrogate("fast_sigmoid", slope=25)
        self.state_quant = state_quant

    def forward(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _LIFFunction.apply(current, self.beta, self.threshold, self.spike_fn, self.state_quant)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}, state_quant={self.state_quant is not None}"


def gradient_curves(names, kwargs: dict, theta: float = 1.0, u_min: float = -1.0, u_max: float = 3.0,
                    n: int = 801):
    """∂S/∂U of each surrogate on a grid of membrane potentials U (x = U - θ is what the LIF layer passes):
    a tidy frame with columns surrogate, U, theta, grad (for plotting)."""
    import pandas as pd
    u = torch.linspace(u_min, u_max, n, dtype=torch.float64)
    frames = []
    for name in names:
        g = surrogate_grad(surrogate(name, **kwargs.get(name, {})), u - theta)
        frames.append(pd.DataFrame({"surrogate": name, "U": u.numpy(), "theta": theta, "grad": g.numpy()}))
    return pd.concat(frames, ignore_index=True)
