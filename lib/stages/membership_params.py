"""params.yaml → 02_activation_quantization, 03_weight_quantization, 04_surrogate_gradients (paper A §V): each
section at one scale, validated without torch.

Loaded by lib.core.config's validator (STAGE_SCHEMAS) and re-exported by lib.stages.membership, which runs the grids.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core import config as C


# ----------------------------------------------------------------------------- the sections 02-04 of params.yaml

# each section's own keys (all required; lib.core.config.GridSection adds the per-family keys, curve_eval_size, the
# folders and `by_scale`)
OWN_KEYS = {"02_activation_quantization": ("datasets", "kinds", "bits", "thresholds", "output_layer_variant"),
            "03_weight_quantization": ("datasets", "kinds", "bits"),
            "04_surrogate_gradients": ("datasets", "surrogates", "spike_rate_escape_legacy", "triangular_true")}


@dataclass(frozen=True)
class Params(C.GridSection):
    """One §V section of params.yaml (02_activation_quantization, 03_weight_quantization or
    04_surrogate_gradients) at one scale: its grid, plus the common frame of lib.core.config.GridSection (per-family
    values, folders). Checked in __post_init__: every error is a ConfigError naming its key
    (`<section>.by_scale.<scale>.<key>` when a replacement at that scale wrote it)."""
    datasets: tuple[str, ...]
    kinds: tuple[str, ...] = ("snn",)            # 04 trains SNNs only
    bits: tuple[int, ...] = ()                   # 02: activation bits; 03: weight bits
    thresholds: tuple[float, ...] = ()           # 02: clipping / firing thresholds θ
    output_layer_variant: bool = False           # 02: also the quantized SNNs whose output membrane is not quantized
    surrogates: tuple[str, ...] = ()             # 04: keys of `surrogates`
    spike_rate_escape_legacy: bool = False       # 04: trap 1 (snntorch ≤ 0.7's spike-rate escape)
    triangular_true: bool = False                # 04: trap 2 (a true triangle)

    @classmethod
    def own_keys(cls, name: str) -> tuple:
        if name not in OWN_KEYS:
            raise C.ConfigError(f"no §V section {name!r}; expected one of {list(OWN_KEYS)}")
        return OWN_KEYS[name]

    def __post_init__(self):
        own = self.own_keys(self.name)
        ok, as_yaml = C._check, (lambda v: list(v) if isinstance(v, tuple) else v)
        num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)   # noqa: E731
        C._list_of(self.key("datasets"), as_yaml(self.datasets), C.DATASETS)
        C._list_of(self.key("kinds"), as_yaml(self.kinds), C.KINDS)
        if "bits" in own:
            ok(isinstance(self.bits, tuple) and self.bits and all(isinstance(b, int) and not isinstance(b, bool)
                                                                 and 2 <= b <= 16 for b in self.bits),
               self.key("bits"), as_yaml(self.bits), "a non-empty list of integers in [2, 16]")
        if "thresholds" in own:
            ok(isinstance(self.thresholds, tuple) and self.thresholds and all(num(t) and t > 0 for t in self.thresholds),
               self.key("thresholds"), as_yaml(self.thresholds), "a non-empty list of positive numbers")
        if "surrogates" in own:
            C._list_of(self.key("surrogates"), as_yaml(self.surrogates), sorted(C.SURROGATES))
        for k in ("output_layer_variant", "spike_rate_escape_legacy", "triangular_true"):
            ok(isinstance(getattr(self, k), bool), self.key(k), getattr(self, k), "true or false")


# the schema of each section (lib.core.config.STAGE_SCHEMAS calls it with the params when they are validated)
def activation_quantization(params: dict) -> Params:
    return Params.from_params(params, "02_activation_quantization")


def weight_quantization(params: dict) -> Params:
    return Params.from_params(params, "03_weight_quantization")


def surrogate_gradients(params: dict) -> Params:
    return Params.from_params(params, "04_surrogate_gradients")
