"""What each input encoder is, without torch: its constants, their defaults and their checks.

lib.core.encoders builds each encoder class on the matching class here (`class PoissonBurst(PoissonBurstConstants,
Encoder)`): the constants, their defaults and every check of their values are written once, here, and the spike
generation (torch) there. The class docstrings of lib.core.encoders say what each constant means and why its
default was chosen. params.yaml's `encoders.<name>` and the sweep of 05_temporal_dynamics are validated with
`check_constants`, so loading params.yaml imports no model library.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import ClassVar

from .vocab import ENCODINGS, same_names


def _as_int(value, name: str, enc: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not isinstance(value, numbers.Integral) and (
            not math.isfinite(value) or value != int(value)):
        raise ValueError(f"{enc}: `{name}` must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{enc}: `{name}` must be an integer >= {minimum}, got {value!r}")
    return value


def _as_float(value, name: str, enc: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{enc}: `{name}` must be a finite number, got {value!r}")
    value = float(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ValueError(f"{enc}: `{name}` must lie in {rng}, got {value!r}")
    return value


def _check_low_high(obj) -> None:
    enc = obj.name
    object.__setattr__(obj, "low", _as_float(obj.low, "low", enc))
    object.__setattr__(obj, "high", _as_float(obj.high, "high", enc))
    if not obj.high > obj.low:
        raise ValueError(f"{enc}: `low` must be < `high`, got low={obj.low}, high={obj.high}")


@dataclass(frozen=True)
class Constants:
    """Base class: an encoder's name and constants (validated in __post_init__)."""

    name: ClassVar[str] = "encoder"
    static: ClassVar[bool] = False  # True: every step is the same tensor (a model may compute layer 1 once)

    def params(self) -> dict:
        """The constants of this encoder (what build_encoder accepts), e.g. for logging."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class DirectConstants(Constants):
    name: ClassVar[str] = "direct"
    static: ClassVar[bool] = True


@dataclass(frozen=True)
class RateConstants(Constants):
    name: ClassVar[str] = "rate"
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        _check_low_high(self)


@dataclass(frozen=True)
class RegularRateConstants(Constants):
    name: ClassVar[str] = "regular_rate"
    low: float = 0.0
    high: float = 1.0
    EPS: ClassVar[float] = 1e-6

    def __post_init__(self):
        _check_low_high(self)


@dataclass(frozen=True)
class PoissonBurstConstants(Constants):
    name: ClassVar[str] = "poisson_burst"
    tau: int = 5
    lam: float = 2.0
    low: float = 0.0
    high: float = 1.0
    min_burst: int = 1
    max_burst: int | None = None

    def __post_init__(self):
        enc = self.name
        object.__setattr__(self, "tau", _as_int(self.tau, "tau", enc, 1))
        object.__setattr__(self, "lam", _as_float(self.lam, "lam", enc, lo=0.0))
        object.__setattr__(self, "min_burst", _as_int(self.min_burst, "min_burst", enc, 0))
        if self.max_burst is not None:
            mb = _as_int(self.max_burst, "max_burst", enc, max(1, self.min_burst))
            object.__setattr__(self, "max_burst", mb)
        _check_low_high(self)


@dataclass(frozen=True)
class DelayedBurstConstants(Constants):
    name: ClassVar[str] = "delayed_burst"
    SCHEDULES: ClassVar[tuple[str, ...]] = ("linear_q", "linear_mean")
    lam: float = 2.0
    p_min: float = 0.05
    p_max: float = 1.0
    low: float = 0.0
    high: float = 1.0
    min_burst: int = 1
    max_burst: int | None = None
    schedule: str = "linear_q"
    margin: int = 5

    def __post_init__(self):
        enc = self.name
        object.__setattr__(self, "lam", _as_float(self.lam, "lam", enc, lo=0.0))
        object.__setattr__(self, "p_min", _as_float(self.p_min, "p_min", enc, lo=0.0, hi=1.0))
        object.__setattr__(self, "p_max", _as_float(self.p_max, "p_max", enc, lo=0.0, hi=1.0))
        if self.p_min > self.p_max:
            raise ValueError(f"{enc}: `p_min` must be <= `p_max`, got p_min={self.p_min}, p_max={self.p_max}")
        object.__setattr__(self, "min_burst", _as_int(self.min_burst, "min_burst", enc, 0))
        if self.max_burst is not None:
            mb = _as_int(self.max_burst, "max_burst", enc, max(1, self.min_burst))
            object.__setattr__(self, "max_burst", mb)
        if self.schedule not in self.SCHEDULES:
            raise ValueError(f"{enc}: `schedule` must be one of {list(self.SCHEDULES)}, got {self.schedule!r}")
        object.__setattr__(self, "margin", _as_int(self.margin, "margin", enc, 0))
        _check_low_high(self)


CONSTANTS: dict[str, type[Constants]] = {
    cls.name: cls for cls in (DirectConstants, RateConstants, RegularRateConstants, PoissonBurstConstants,
                              DelayedBurstConstants)
}
same_names(CONSTANTS, ENCODINGS, "lib.core.encoder_constants.CONSTANTS")


def encoding_key(name) -> str:
    """The encoding's key: names are case-insensitive and '-' may replace '_' ("Poisson-Burst" works)."""
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    if key not in CONSTANTS:
        raise ValueError(f"unknown encoding {name!r} (parameter `encoding`); choose one of {sorted(CONSTANTS)}")
    return key


def check_constants(name: str, **params) -> Constants:
    """The validated constants of encoding `name`: an unknown name, an unknown constant or an invalid value raises
    ValueError naming the offending key (lib.core.encoders.build_encoder builds the encoder on the same checks)."""
    cls = CONSTANTS[encoding_key(name)]
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown constant(s) {unknown} for encoding {cls.name!r}; valid constants: {allowed}")
    return cls(**params)
