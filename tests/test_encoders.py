"""Encoders: shapes/dtypes, seeding, and the spike statistics against their exact analytic laws.

Statistical checks use fixed seeds (so they are deterministic) and tolerances of 5 standard errors
(a correct implementation would fail one with probability ~1e-6 per check under a fresh seed), or a
chi-square goodness-of-fit test at p-value 1e-4.
"""
import math

import pytest
import torch
from scipy import stats

from lib.core.encoders import (ENCODERS, DelayedBurst, Direct, PoissonBurst, Rate, build_encoder,
                          expected_spike_count, intensity)

T = 25
N_ROWS, N_COLS = 200, 100          # 20,000 independent elements per draw
N = N_ROWS * N_COLS
STOCHASTIC = ["rate", "poisson_burst", "delayed_burst"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def constant_input(p: float, dtype=torch.float32) -> torch.Tensor:
    return torch.full((N_ROWS, N_COLS), p, dtype=dtype)


def chi_square_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson chi-square p-value; trailing bins are merged until every expected count is >= 5."""
    counts, expected = counts.double().tolist(), (probs.double() * float(counts.sum())).tolist()
    obs_m, exp_m, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(counts, expected):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            obs_m.append(acc_o), exp_m.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0 or acc_o > 0:  # leftover tail goes into the last bin
        if exp_m:
            obs_m[-1] += acc_o
            exp_m[-1] += acc_e
        else:
            obs_m, exp_m = [acc_o], [acc_e]
    if len(exp_m) < 2:
        return 1.0 if obs_m == exp_m or abs(obs_m[0] - exp_m[0]) < 1e-9 else 0.0
    stat = sum((o - e) ** 2 / e for o, e in zip(obs_m, exp_m))
    return float(stats.chi2.sf(stat, df=len(exp_m) - 1))


# ----------------------------------------------------------------------------- contracts

@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_dtype_and_binary_values(name, dtype):
    enc = build_encoder(name)
    x = torch.rand(3, 1, 4, 4, generator=gen(5)).to(dtype)
    out = enc(x, 7, generator=gen(0))
    assert out.shape == (7, 3, 1, 4, 4)
    assert out.dtype == dtype
    assert out.device == x.device
    if name == "direct":
        assert enc.static is True
        assert torch.equal(out, x.unsqueeze(0).expand(7, *x.shape))
    else:
        assert enc.static is False
        assert set(out.unique().float().tolist()) <= {0.0, 1.0}


def test_direct_is_a_view_of_x():
    x = torch.randn(4, 10, requires_grad=True)
    out = Direct()(x, 5)
    assert out.data_ptr() == x.data_ptr() and out.stride(0) == 0
    out.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 5.0))   # 5 steps, each contributes d/dx = 1


@pytest.mark.parametrize("name", STOCHASTIC)
def test_same_seed_same_spikes_other_seed_differs(name):
    enc = build_encoder(name)
    x = torch.rand(16, 50, generator=gen(9))
    a, b, c = enc(x, T, gen(123)), enc(x, T, gen(123)), enc(x, T, gen(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert enc(x, T).shape == a.shape                  # generator=None uses the global RNG


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", STOCHASTIC)
def test_cpu_generator_is_device_independent(name):
    enc = build_encoder(name)
    x = torch.rand(8, 30, generator=gen(1))
    assert torch.equal(enc(x, T, gen(7)), enc(x.cuda(), T, gen(7)).cpu())


def test_input_checks():
    for name in sorted(ENCODERS):
        enc = build_encoder(name)
        with pytest.raises(TypeError):
            enc(torch.ones(2, 3, dtype=torch.int64), T)
        with pytest.raises(ValueError, match="`steps`"):
            enc(torch.ones(2, 3), 0)


def test_intensity_map():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0, 5.0])
    assert torch.allclose(intensity(x, -1.0, 3.0), torch.tensor([0.0, 0.0, 0.25, 0.5, 1.0, 1.0]))
    assert intensity(x.double(), 0, 1).dtype == torch.float64
    with pytest.raises(ValueError, match="`low`"):
        intensity(x, 1.0, 1.0)


# ----------------------------------------------------------------------------- build_encoder

def test_build_encoder_unknown_name_names_the_key():
    with pytest.raises(ValueError, match="`encoding`") as err:
        build_encoder("latency")
    for valid in ("direct", "rate", "poisson_burst", "delayed_burst"):
        assert valid in str(err.value)


@pytest.mark.parametrize("name,params,key", [
    ("poisson_burst", {"tau": 0}, "tau"),
    ("poisson_burst", {"tau": 2.5}, "tau"),
    ("poisson_burst", {"lam": -1.0}, "lam"),
    ("poisson_burst", {"min_burst": 3, "max_burst": 2}, "max_burst"),
    ("poisson_burst", {"taus": 5}, "taus"),
    ("rate", {"low": 1.0, "high": 0.0}, "low"),
    ("rate", {"high": float("nan")}, "high"),
    ("delayed_burst", {"p_min": 0.5, "p_max": 0.2}, "p_min"),
    ("delayed_burst", {"p_max": 1.5}, "p_max"),
    ("delayed_burst", {"lam": "2"}, "lam"),
    ("delayed_burst", {"schedule": "exponential"}, "schedule"),
    ("delayed_burst", {"margin": -1}, "margin"),
    ("direct", {"low": 0.0}, "low"),
])
def test_build_encoder_bad_constant_names_it(name, params, key):
    with pytest.raises(ValueError, match=key):
        build_encoder(name, **params)


def test_build_encoder_aliases_and_defaults():
    enc = build_encoder("Poisson-Burst", tau=4.0, lam=3)     # YAML may give floats / ints
    assert isinstance(enc, PoissonBurst) and enc.tau == 4 and isinstance(enc.tau, int) and enc.lam == 3.0
    # The documented defaults are part of the contract (changing one must be deliberate).
    assert build_encoder("rate").params() == {"low": 0.0, "high": 1.0}
    assert build_encoder("poisson_burst").params() == {
        "tau": 5, "lam": 2.0, "low": 0.0, "high": 1.0, "min_burst": 1, "max_burst": None}
    assert build_encoder("delayed_burst").params() == {
        "lam": 2.0, "p_min": 0.05, "p_max": 1.0, "low": 0.0, "high": 1.0, "min_burst": 1,
        "max_burst": None, "schedule": "linear_q", "margin": 5}


# ----------------------------------------------------------------------------- analytic means

def test_expected_spike_count_closed_forms():
    """Cases whose answer is known without the finite sums in expected_spike_count."""
    assert expected_spike_count(Rate(), 0.3, T) == pytest.approx(7.5)
    # lam=0, min_burst=1: every successful window emits exactly one spike -> p * ceil(T / tau).
    assert expected_spike_count(PoissonBurst(tau=5, lam=0.0), 0.3, 23) == pytest.approx(0.3 * 5)
    # huge lam: every successful window is full -> p * T (last, partial window included).
    assert expected_spike_count(PoissonBurst(tau=5, lam=60.0), 0.4, 23) == pytest.approx(0.4 * 23)
    # lam=0, min_burst=1: one spike iff the onset falls inside T -> 1 - (1 - q)^T.
    q = 0.05 + 0.95 * 0.3
    assert expected_spike_count(DelayedBurst(lam=0.0), 0.3, T) == pytest.approx(1 - (1 - q) ** T)
    assert expected_spike_count(DelayedBurst(lam=0.0), 1.0, T) == pytest.approx(1.0)
    # min_burst=1 adds e^-lam to the mean burst (no clipping binds when lam is small relative to T).
    lam = 0.5
    assert expected_spike_count(DelayedBurst(lam=lam, p_max=1.0), 1.0, T) == pytest.approx(lam + math.exp(-lam))
    pt = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(expected_spike_count(Rate(), pt, 10), 10 * pt.double())
    with pytest.raises(TypeError):
        expected_spike_count(Direct(), 0.5, T)


MEAN_CASES = [
    ("rate", {}, T),
    ("poisson_burst", {}, T),
    ("poisson_burst", {"tau": 4, "lam": 3.0, "max_burst": 3}, 23),     # partial last window, max_burst
    ("poisson_burst", {"tau": 6, "lam": 4.0, "min_burst": 0}, 23),     # window clip binds, raw Poisson size
    ("delayed_burst", {}, T),
    ("delayed_burst", {"lam": 4.0, "p_min": 0.1, "p_max": 0.6, "max_burst": 5}, 20),
    ("delayed_burst", {"schedule": "linear_mean", "margin": 5, "lam": 3.0, "min_burst": 0}, T),
]


@pytest.mark.parametrize("name,params,steps", MEAN_CASES)
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_mean_spike_count_matches_analytic(name, params, steps, p):
    enc = build_encoder(name, **params)
    counts = enc(constant_input(p), steps, gen(11)).sum(0).double()
    mean, se = counts.mean().item(), counts.std().item() / math.sqrt(N)
    expected = expected_spike_count(enc, p, steps)
    assert abs(mean - expected) <= 5 * se + 1e-9, (mean, expected, se)


@pytest.mark.parametrize("name", ["rate", "poisson_burst"])
def test_zero_intensity_never_spikes(name):
    enc = build_encoder(name, low=-1.0, high=2.0)
    x = torch.tensor([[-1.0, -5.0, -1.5]]).repeat(100, 1)   # at or below `low`
    assert enc(x, T, gen(3)).sum() == 0


# ----------------------------------------------------------------------------- rate

def test_rate_per_step_probability_matches_intensity():
    ps = torch.tensor([0.1, 0.5, 0.9])
    x = -1.0 + 4.0 * ps.repeat(N // 3, 1)                 # low=-1, high=3 -> intensity ps
    spikes = Rate(low=-1.0, high=3.0)(x, T, gen(21))       # [T, N/3, 3]
    n = spikes.shape[1]
    freq = spikes.double().mean(1)                         # [T, 3] per-step firing frequency
    tol = 5 * torch.sqrt(ps * (1 - ps) / n).double()
    assert torch.all((freq - ps.double()).abs() <= tol), freq
    # independence across steps: P(spike at t and t+1) = p^2
    joint = (spikes[1:] * spikes[:-1]).double().mean((0, 1))
    assert torch.allclose(joint, ps.double() ** 2, atol=0.01)


def test_rate_matches_snntorch_semantics():
    """Same law as snntorch.spikegen.rate (which clamps x to [0, 1]): compare firing frequencies."""
    from snntorch import spikegen
    x = torch.tensor([-0.5, 0.2, 0.7, 1.5]).repeat(5000, 1)
    ours = Rate()(x, 10, gen(2)).mean((0, 1))
    torch.manual_seed(2)
    ref = spikegen.rate(x, num_steps=10).mean((0, 1))
    assert torch.allclose(ours, ref, atol=0.02)
    assert ours[0] == 0 and ours[3] == 1


# ----------------------------------------------------------------------------- poisson-burst

def test_poisson_burst_window_structure_and_burst_law():
    enc = PoissonBurst(tau=5, lam=2.0)
    p = 0.6
    spikes = enc(constant_input(p), T, gen(31))                     # [25, 200, 100]
    win = spikes.reshape(5, 5, N)                                   # [window, offset, element]
    # Each window's spikes are a prefix starting at the window start (one burst, no gaps).
    assert torch.all(win[:, 1:] <= win[:, :-1])
    # Burst occurrence: P(window non-silent) = p exactly (min_burst=1).
    occ = win[:, 0].double().mean().item()
    assert abs(occ - p) <= 5 * math.sqrt(p * (1 - p) / (5 * N))
    # Burst length given occurrence: min(max(K, 1), 5), K ~ Poisson(2).
    lengths = win.sum(1)[win[:, 0] > 0].long()
    pois = stats.poisson(2.0)
    probs = torch.tensor([0.0, pois.cdf(1), pois.pmf(2), pois.pmf(3), pois.pmf(4), pois.sf(4)])
    counts = torch.bincount(lengths, minlength=6)
    assert chi_square_pvalue(counts[1:], probs[1:]) > 1e-4


def test_poisson_burst_last_window_clipped_at_T():
    spikes = PoissonBurst(tau=5, lam=60.0)(constant_input(1.0), 12, gen(4))   # windows 0-4, 5-9, 10-11
    assert spikes.shape[0] == 12 and torch.all(spikes == 1)


# ----------------------------------------------------------------------------- delayed-burst

def first_spike_times(spikes: torch.Tensor) -> torch.Tensor:
    """Index of the first spike along dim 0, or T when there is none."""
    steps = spikes.shape[0]
    fired = spikes.any(0)
    first = spikes.double().argmax(0)
    return torch.where(fired, first, torch.full_like(first, steps)).flatten()


@pytest.mark.parametrize("params", [{}, {"schedule": "linear_mean", "margin": 5}])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.8])
def test_delayed_burst_onset_is_geometric(params, p):
    enc = DelayedBurst(**params)
    spikes = enc(constant_input(p), T, gen(41))
    onsets = first_spike_times(spikes)                        # = D when D < T (min_burst=1), else T
    counts = torch.bincount(onsets, minlength=T + 1)
    pmf = enc.onset_pmf(p, T)                                 # P(D = 0..T-1), P(D >= T)
    if params == {}:
        q = 0.05 + 0.95 * p
    else:
        q = 1 / (1 + (1 - p) * (T - 5))
    direct = torch.tensor([q * (1 - q) ** d for d in range(T)] + [(1 - q) ** T], dtype=torch.float64)
    assert torch.allclose(pmf, direct)
    assert chi_square_pvalue(counts, pmf) > 1e-4
    # exactly one burst: at most one 0 -> 1 transition per element
    rises = (spikes[1:] > spikes[:-1]).sum(0) + spikes[0]
    assert rises.max() <= 1


def test_delayed_burst_brighter_fires_earlier():
    enc = DelayedBurst()
    ps = [0.0, 0.25, 0.5, 0.75, 1.0]
    means = [first_spike_times(enc(constant_input(p), T, gen(51))).double().mean().item() for p in ps]
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[-1] == 0.0                                   # p_max = 1: full intensity fires at step 0
    # same ordering inside one batch with mixed intensities
    x = torch.tensor([0.1, 0.9]).repeat(5000, 1)
    onsets = first_spike_times(enc(x, T, gen(52))).view(5000, 2).double().mean(0)
    assert onsets[0] > onsets[1] + 5


def test_delayed_burst_never_fires_when_q_is_zero():
    enc = DelayedBurst(p_min=0.0, p_max=0.5)
    assert enc(constant_input(0.0), T, gen(6)).sum() == 0
    assert expected_spike_count(enc, 0.0, T) == 0.0


# ----------------------------------------------------------------------------- regular (deterministic) rate

@pytest.mark.parametrize("steps", [1, 5, 8, 25])
def test_regular_rate_fires_exactly_floor_T_p_evenly_spaced(steps):
    from lib.core.encoders import RegularRate
    ps = torch.tensor([0.0, 0.04, 0.2, 0.25, 1 / 3, 0.5, 0.7, 0.96, 1.0])
    s = RegularRate()(ps.unsqueeze(0), steps)[:, 0]                   # [T, 9]
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    counts = s.sum(0)
    assert torch.equal(counts, torch.tensor([math.floor(steps * p + 1e-6) for p in ps.tolist()], dtype=counts.dtype))
    for j, p in enumerate(ps.tolist()):
        times = torch.nonzero(s[:, j]).flatten().tolist()
        if len(times) >= 2:   # regular intervals: every gap is floor or ceil of 1/p
            gaps = {b - a for a, b in zip(times, times[1:])}
            assert gaps <= {math.floor(1 / p + 1e-9), math.ceil(1 / p - 1e-9)}, (p, times)
    assert torch.equal(expected_spike_count(RegularRate(), ps, steps).float(), counts.float())


def test_regular_rate_is_deterministic_and_differs_from_bernoulli():
    from lib.core.encoders import RegularRate
    x = torch.rand(64, 10, generator=gen(4))
    enc = build_encoder("regular-rate")
    a, b = enc(x, T, gen(1)), enc(x, T, gen(2))
    assert torch.equal(a, b)                                          # the generator is ignored
    assert torch.equal(a.sum(0), torch.floor(T * x + 1e-6))          # count = floor(T p) for every element
    r = build_encoder("rate")(x, T, gen(1))
    # same mean as Bernoulli rate coding (T p, up to the floor), but no spread across draws
    assert abs(float(r.sum(0).mean() - a.sum(0).mean())) < 1.0
    assert float(r.sum(0).var()) > float(a.sum(0).var())
    with pytest.raises(ValueError, match="low"):
        RegularRate(low=1.0, high=0.0)
