"""Input encoders: a preprocessed batch x [B, ...] -> input currents / spikes [T, B, ...].

Four encodings (the key `encoding` in params.yaml; constants under `encoders.<name>`):

    direct         the same input current x at every step (paper A)                    static=True
    rate           independent Bernoulli(p) spike at every step (snntorch.spikegen.rate)
    regular_rate   deterministic rate coding: exactly floor(T·p) spikes at regular intervals (paper B's
                   "deterministic rate coding" baseline; integrate-and-fire of the constant intensity p)
    poisson_burst  one Bernoulli(p) burst trial per window of `tau` steps, Poisson burst size   (paper B)
    delayed_burst  one burst per presentation, Geometric onset that is earlier for larger p     (paper B)

Here p = intensity(x, low, high) = clamp((x - low) / (high - low), 0, 1) is the per-element
intensity. Paper B (Moshruba, Poursiami, Parsa, arXiv:2505.04034) gives the mechanisms of its two
encodings -- "Pr(burst in interval) = f(x_i)" with a monotonic f, a burst size n_i ~ Poisson(λ),
and for Delayed-Burst a single burst per input feature whose Geometric onset delay shrinks as the
input grows -- but not all constants or boundary rules. Every such choice is written down in the
class docstrings below, together with its default and why.

Conventions shared by all spiking encoders
---------------------------------------------
* Output: [T, B, ...] in the dtype of x, values exactly 0.0 or 1.0 (a step never carries two spikes:
  each is a boolean event). Spikes are not differentiable (no gradient flows back to x).
* Randomness: every draw comes from `generator` (all of it from U(0,1) draws: Bernoulli trials by
  comparison, Poisson sizes and Geometric onsets by exact inverse-CDF), so the same seed gives the
  same spikes. Draws are made on `generator.device` and moved to `x.device`: a CPU generator
  therefore gives bit-identical spikes whether x lives on the CPU or a GPU (the recommended,
  deterministic choice; it costs one host->device copy). A CUDA generator on x.device avoids that
  copy but yields a different (still seeded) stream. generator=None uses torch's global RNG on
  x.device.
* Draw order (part of the seeded contract): regular_rate draws nothing (deterministic); rate draws U[T, B, ...]; poisson_burst draws one
  U[2, W, B, ...] (row 0: burst trials, row 1: burst sizes; W = ceil(T / tau)); delayed_burst draws
  one U[2, B, ...] (row 0: onsets, row 1: burst sizes). All in float32.
* `expected_spike_count(encoder, p, steps)` is the exact analytic mean number of spikes per element
  over T steps (finite sums; no truncation), used by tests/test_encoders.py and the notebook.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .encoder_constants import (CONSTANTS, Constants, DelayedBurstConstants, DirectConstants,  # noqa: F401 (re-exported)
                                PoissonBurstConstants, RateConstants, RegularRateConstants, check_constants,
                                encoding_key)
from .vocab import ENCODINGS, same_names

__all__ = [
    "Encoder", "Direct", "Rate", "RegularRate", "PoissonBurst", "DelayedBurst", "ENCODERS",
    "build_encoder", "intensity", "expected_spike_count",
]


# ----------------------------------------------------------------------------- helpers

def intensity(x, low: float = 0.0, high: float = 1.0) -> Tensor:
    """Map [low, high] linearly onto [0, 1], clamped: the probability/intensity of each element.

    Values <= low give 0 and values >= high give 1. For inputs scaled to [0, 1] use low=0, high=1;
    for mean/std-normalized images pass the normalized images of black and white (e.g. MNIST with
    mean 0.1307, std 0.3081: low = -0.4242, high = 2.8215). Float inputs keep their dtype (at least
    float32 precision is used for half inputs).
    """
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)) or not high > low:
        raise ValueError(f"intensity needs finite `low` < `high`, got low={low}, high={high}")
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    work = x.to(torch.promote_types(x.dtype, torch.float32))
    return ((work - low) / (high - low)).clamp(0.0, 1.0)


def _check_input(x: Tensor, steps: int, enc: str) -> int:
    if not isinstance(x, Tensor):
        raise TypeError(f"{enc}: x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{enc}: x must be a floating-point tensor (preprocessed inputs), got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{enc}: x must have a batch dimension [B, ...], got a scalar")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{enc}: `steps` must be an integer >= 1, got {steps!r}")
    return steps


def _uniform(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) float32 of `shape` drawn on generator.device (or x.device), returned on x.device."""
    device = generator.device if generator is not None else x.device
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return u.to(x.device)


def _poisson_cdf(lam: float, n: int) -> list[float]:
    """F(k) = P(K <= k) for K ~ Poisson(lam), k = 0..n-1 (float64, exact up to rounding)."""
    out, term, acc = [], math.exp(-lam), 0.0
    for k in range(n):
        if k > 0:
            term *= lam / k
        acc += term
        out.append(min(acc, 1.0))
    return out


def _burst_lengths(u: Tensor, lam: float, min_burst: int, cap: int) -> Tensor:
    """L = min(max(K, min_burst), cap) with K ~ Poisson(lam) by exact inverse CDF of uniforms u.

    K = inf{k : F(k) >= u}, so #{k < cap : F(k) < u} = min(K, cap); only F(0..cap-1) is needed,
    hence no truncation of the Poisson tail is involved. Returns int32 of u's shape.
    """
    if cap <= 0:
        return torch.zeros(u.shape, dtype=torch.int32, device=u.device)
    cdf = torch.tensor(_poisson_cdf(lam, cap), dtype=torch.float32, device=u.device)
    k_capped = torch.bucketize(u, cdf, out_int32=True, right=False)  # #{k : cdf[k] < u}
    return k_capped.clamp(min=min(min_burst, cap))


def _mean_capped_burst(lam: float, min_burst: int, cap: int) -> float:
    """E[min(max(K, min_burst), cap)], K ~ Poisson(lam) = sum_{j<cap} P(max(K, m) > j)."""
    cdf = _poisson_cdf(lam, max(cap, 0))
    return float(sum(1.0 if j < min_burst else 1.0 - cdf[j] for j in range(max(cap, 0))))


# ----------------------------------------------------------------------------- encoders

@dataclass(frozen=True)
class Encoder(Constants):
    """Base class. Call as enc(x, steps, generator=None) -> [T, B, ...] (T = steps). Each encoder's constants,
    defaults and their checks are its base class in lib.core.encoder_constants (torch-free); `params()` lists them."""

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Direct(DirectConstants, Encoder):
    """Direct input (paper A): the preprocessed x is the input current at every step.

    Returns x.unsqueeze(0).expand(steps, *x.shape): a stride-0 *view* of x, no copy -- all T steps
    share x's memory and gradients flow to x. Do not write into it in place (call .contiguous()
    first if a writable copy is needed). No constants; `generator` is ignored.
    """

    # constants, defaults and their checks: DirectConstants (lib.core.encoder_constants)

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        _check_input(x, steps, self.name)
        return x.unsqueeze(0).expand(steps, *x.shape)


@dataclass(frozen=True)
class Rate(RateConstants, Encoder):
    """Rate (Bernoulli) coding, the semantics of snntorch.spikegen.rate.

    Generative process, independently for every step t < T and element i:
        p_i = intensity(x_i, low, high);   S[t, i] = 1[U[t, i] < p_i],  U ~ U[0, 1)
    i.e. S[t, i] ~ Bernoulli(p_i); p = 0 never fires, p = 1 fires every step. E[count] = T p.

    Defaults low=0, high=1: inputs already scaled to [0, 1] (then identical in distribution to
    snntorch.spikegen.rate, which clamps x to [0, 1]); set them to the normalized black/white
    values when x is mean/std normalized.
    """

    # constants, defaults and their checks: RateConstants (lib.core.encoder_constants)

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        _check_input(x, steps, self.name)
        p = intensity(x.detach(), self.low, self.high)
        u = _uniform((steps, *x.shape), x, generator)
        return (u < p).to(x.dtype)


@dataclass(frozen=True)
class RegularRate(RegularRateConstants, Encoder):
    """Deterministic (regular-interval) rate coding: paper B's baseline, "deterministic rate coding".

    The intensity p_i = intensity(x_i, low, high) is integrated at every step and a spike is emitted each time
    the running sum crosses an integer (an integrate-and-fire neuron driven by the constant current p_i, reset
    by subtraction):
        S[t, i] = floor((t + 1) p_i + ε) − floor(t p_i + ε),   t = 0 .. T−1,  ε = 1e-6
    so an element fires exactly floor(T p_i + ε) spikes over T steps, evenly spaced (interval 1/p_i steps):
    p = 1 fires at every step, p = 0.5 at t = 1, 3, 5, ..., p = 0 never. The same x always gives the same
    spikes (no randomness: `generator` is ignored, nothing is drawn). ε keeps p = k/T (e.g. 0.2 at T = 5)
    from losing its last spike to floating-point rounding; the arithmetic is in float64.
    E[count] = count = floor(T p + ε). The Bernoulli `rate` encoder has the same mean T·p, with variance.
    """

    # constants, defaults and their checks: RegularRateConstants (lib.core.encoder_constants)

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        _check_input(x, steps, self.name)
        p = intensity(x.detach(), self.low, self.high).to(torch.float64)
        t = torch.arange(steps + 1, device=x.device, dtype=torch.float64).view(steps + 1, *([1] * x.dim()))
        acc = torch.floor(t * p + self.EPS)           # [T+1, B, ...] spikes emitted before step t
        return (acc[1:] - acc[:-1]).to(x.dtype)


@dataclass(frozen=True)
class PoissonBurst(PoissonBurstConstants, Encoder):
    """Poisson-Burst (paper B): intensity sets how often a burst occurs, a Poisson law its size.

    Exact generative process for one element with intensity p = intensity(x, low, high), T steps:
      1. Split time into W = ceil(T / tau) consecutive windows; window w covers steps
         [w*tau, min((w+1)*tau, T)) (the last window is shorter when tau does not divide T).
      2. At the start of each window, one Bernoulli trial with success probability p
         (paper B: "Pr(burst in interval) = f(x_i)", f = intensity, a monotone map to [0, 1]).
      3. On success draw K ~ Poisson(lam) and set the burst length
             L = min(max(K, min_burst), cap),   cap = tau (or min(tau, max_burst) if max_burst is set).
         The burst fires on the L consecutive steps w*tau, ..., w*tau + L - 1, clipped at the window
         end (which, for the last window, is T). On failure the window is silent.
    Windows and elements are independent. Hence each window holds at most tau spikes, a spike
    train never has two spikes in one step, and p = 0 gives no spikes at all.

    Choices beyond the paper, and why:
      * Clip at the window end, not at T: a burst belongs to its interval ("burst in interval"),
        so windows never overlap or merge -- the train stays the "stochastic yet regular" pattern
        aligned with the window grid that paper B credits for Poisson-Burst's even load and
        transferability (Sec. V-C, V-D), and "P(window w has a spike) = p" holds exactly.
      * K = 0: by default a successful trial still emits one spike (min_burst=1), so burst
        *occurrence* -- the quantity that carries the intensity in paper B -- is always visible
        and P(window silent) = 1 - p exactly. min_burst=0 gives the raw Poisson size (a success
        may then be silent); the mean burst length with min_burst=1 is lam + e^-lam before clipping.
    Defaults: tau=5 (T=25 -> 5 windows, i.e. 5 intensity samples per presentation, one burst
    opportunity every 5 steps), lam=2 (mean burst 2.14 spikes; P(K > 5) = 1.7%, so the window
    clip rarely binds, and a full-intensity input fires ~42% of steps (10.6 of 25) vs 100% under
    rate coding: the sparser load paper B reports), low=0, high=1 (inputs scaled to [0, 1]). Paper B tuned its
    tau and lambda "empirically" without stating them; set them in params.yaml.
    E[count] = p * sum_w E[min(max(K, min_burst), min(cap, T - w*tau))].
    """

    # constants, defaults and their checks: PoissonBurstConstants (lib.core.encoder_constants)

    @property
    def cap(self) -> int:
        return self.tau if self.max_burst is None else min(self.tau, self.max_burst)

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        _check_input(x, steps, self.name)
        n_win = -(-steps // self.tau)
        p = intensity(x.detach(), self.low, self.high)
        u = _uniform((2, n_win, *x.shape), x, generator)
        length = _burst_lengths(u[1], self.lam, self.min_burst, self.cap)   # [W, B, ...]
        length = torch.where(u[0] < p, length, torch.zeros_like(length))
        offset = torch.arange(self.tau, device=x.device, dtype=torch.int32)
        offset = offset.view(1, self.tau, *([1] * x.dim()))
        spikes = offset < length.unsqueeze(1)                                # [W, tau, B, ...]
        return spikes.reshape(n_win * self.tau, *x.shape)[:steps].to(x.dtype)


@dataclass(frozen=True)
class DelayedBurst(DelayedBurstConstants, Encoder):
    """Delayed-Burst (paper B): intensity sets *when* a single burst starts (latency code).

    Exact generative process for one element with intensity p = intensity(x, low, high), T steps:
      1. Onset success probability
             schedule="linear_q":    q = p_min + (p_max - p_min) * p           (default)
             schedule="linear_mean": q = 1 / (1 + (1 - p) * max(T - margin, 0))
         ("linear_mean" makes E[D] = (1 - p)(T - margin), the expected delay that secondary
         summaries of paper B attribute to it; "linear_q" is this project's default form.)
      2. Onset delay D ~ Geometric(q) on {0, 1, 2, ...}: P(D = d) = q (1 - q)^d (d = number of
         silent steps before the burst; q = 1 -> D = 0; q = 0 -> never fires). Larger p -> larger
         q -> earlier onset, E[D] = (1 - q) / q: bright pixels fire early, dark ones late.
      3. Burst length L = min(max(K, min_burst), T) (or min(., max_burst) if set), K ~ Poisson(lam).
      4. Spikes on steps D, D+1, ..., D+L-1; steps >= T are dropped (so D >= T gives no spikes).
    Exactly one burst per element per presentation (paper B: "for each input feature, a single
    burst is generated"), elements independent.

    Choices and defaults, and why:
      * min_burst=1 (as in PoissonBurst): a drawn onset is always observable as a spike, so the
        first-spike time equals D whenever D < T (the latency code is readable).
      * p_max=1.0: a full-intensity input fires at step 0 (E[D] = 0, as the paper's
        E[d] = (1 - x)(T - m) gives at x = 1). p_min=0.05: a zero-intensity input has
        E[D] = 19 steps, i.e. late in a T=25 presentation (the paper's (T - m) with margin m ~ 5),
        and still fires within T with probability 1 - 0.95^25 = 72%. The pipeline (params.yaml) sets
        p_min=0 instead: on MNIST that 72% of the black background drowned the digit and the SNN
        ConvNets did not learn (notebook 05 says so); the class default is kept as the paper's latency
        reading and is swept in notebook 05.
      * lam=2 -- the same burst law as Poisson-Burst ("similar to Poisson-Burst" in paper B), so the
        two encodings differ only in how intensity is expressed (occurrence vs onset time).
      * margin=5 (used only by schedule="linear_mean"): the latest expected onset is T - 5, leaving
        room for a mean-size burst to fit before T.
      * low=0, high=1: inputs scaled to [0, 1].
    E[count] = sum_{d<T} q (1-q)^d E[min(max(K, min_burst), cap, T - d)], cap = T or max_burst.
    """

    # constants, defaults and their checks: DelayedBurstConstants (lib.core.encoder_constants)

    def onset_probability(self, p, steps: int) -> Tensor:
        """q(p) of the Geometric onset law for intensity p (tensor or number) and T = steps."""
        p = torch.as_tensor(p)
        p = p.to(torch.promote_types(p.dtype, torch.float32)) if p.is_floating_point() else p.float()
        if self.schedule == "linear_q":
            q = self.p_min + (self.p_max - self.p_min) * p
        else:
            q = 1.0 / (1.0 + (1.0 - p) * max(steps - self.margin, 0))
        return q.clamp(0.0, 1.0)

    def onset_pmf(self, p, steps: int) -> Tensor:
        """[..., T+1]: P(D = d) for d = 0..T-1, then P(D >= T) (no burst within the presentation)."""
        q = self.onset_probability(torch.as_tensor(p, dtype=torch.float64), steps).unsqueeze(-1)
        d = torch.arange(steps, dtype=torch.float64)
        pmf = q * (1.0 - q) ** d
        tail = (1.0 - q) ** steps
        return torch.cat([pmf, tail], dim=-1)

    def cap(self, steps: int) -> int:
        return steps if self.max_burst is None else min(steps, self.max_burst)

    def __call__(self, x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        _check_input(x, steps, self.name)
        p = intensity(x.detach(), self.low, self.high)
        u = _uniform((2, *x.shape), x, generator)
        q = self.onset_probability(p, steps).to(torch.float32)
        # Inverse CDF: P(D >= d) = (1-q)^d  <=>  D = floor(log(1 - U) / log(1 - q)), 1 - U in (0, 1].
        ratio = torch.log1p(-u[0]) / torch.log1p(-q.clamp(max=1.0 - 1e-7))
        onset = torch.floor(ratio).clamp(0, steps)
        onset = torch.where(q >= 1.0, torch.zeros_like(onset), onset)
        onset = torch.where(q <= 0.0, torch.full_like(onset, steps), onset).to(torch.int32)
        length = _burst_lengths(u[1], self.lam, self.min_burst, self.cap(steps))
        t = torch.arange(steps, device=x.device, dtype=torch.int32).view(steps, *([1] * x.dim()))
        spikes = (t >= onset) & (t < onset + length)
        return spikes.to(x.dtype)


ENCODERS: dict[str, type[Encoder]] = {
    cls.name: cls for cls in (Direct, Rate, RegularRate, PoissonBurst, DelayedBurst)
}
same_names(ENCODERS, ENCODINGS, "lib.core.encoders.ENCODERS")
assert all(issubclass(ENCODERS[k], CONSTANTS[k]) for k in ENCODINGS), "every encoder is built on its constants"


def build_encoder(name: str, **params) -> Encoder:
    """The encoder called `name` (the key `encoding`) with constants `params` (encoders.<name>).

    Names are case-insensitive and '-' may replace '_' ("Poisson-Burst" works). An unknown name, an
    unknown constant or an invalid value raises ValueError naming the offending key
    (lib.core.encoder_constants.check_constants, the same checks without torch).
    """
    check_constants(name, **params)
    return ENCODERS[encoding_key(name)](**params)


def expected_spike_count(encoder: Encoder, p, steps: int):
    """Exact E[number of spikes of one element over `steps` steps] at intensity p.

    p: a number (returns float) or a tensor of intensities in [0, 1] (returns float64 tensor of the
    same shape). Direct emits currents, not spikes: TypeError.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an integer >= 1, got {steps!r}")
    scalar = not isinstance(p, Tensor)
    pt = torch.as_tensor(p, dtype=torch.float64)
    if torch.any((pt < 0) | (pt > 1)):
        raise ValueError("intensity p must lie in [0, 1]")
    if isinstance(encoder, Rate):
        out = steps * pt
    elif isinstance(encoder, RegularRate):
        out = torch.floor(steps * pt + encoder.EPS)
    elif isinstance(encoder, PoissonBurst):
        n_win = -(-steps // encoder.tau)
        per_success = sum(
            _mean_capped_burst(encoder.lam, encoder.min_burst, min(encoder.cap, steps - w * encoder.tau))
            for w in range(n_win))
        out = pt * per_success
    elif isinstance(encoder, DelayedBurst):
        cap = encoder.cap(steps)
        burst = torch.tensor([_mean_capped_burst(encoder.lam, encoder.min_burst, min(cap, steps - d))
                              for d in range(steps)], dtype=torch.float64)
        out = (encoder.onset_pmf(pt, steps)[..., :steps] * burst).sum(-1)
    elif isinstance(encoder, Direct):
        raise TypeError("direct encoding feeds input currents, not spikes: no expected spike count")
    else:
        raise TypeError(f"no expected spike count for {type(encoder).__name__}")
    return float(out) if scalar else out
