"""params.yaml → 99_claims (notebook 99): the section at one scale, validated without the claims engine.

Loaded by lib.core.config's validator (STAGE_SCHEMAS) and re-exported by lib.stages.summary.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..core import config as C

SECTION = "99_claims"
CLAIM_STAGES = ("02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients",
                "05_temporal_dynamics", "06_post_training_quantization", "07_gradient_sparsity", "08_attack_ladder",
                "09_privacy_utility")


@dataclass(frozen=True)
class Params:
    """params.yaml's `99_claims` (at one scale: `by_scale.<scale>` replaces whole entries). Built by `from_params`;
    __post_init__ checks every value and raises a ConfigError naming its key."""
    stages: tuple                 # the stages whose claims are gathered, from CLAIM_STAGES
    before: str | None = None     # a claims_all.csv of the verdicts before a change of the engine ("what moved")
    checkpoints_dir: str = f"checkpoints/{SECTION}"
    results_dir: str = f"results/{SECTION}"
    figures_dir: str = f"figures/{SECTION}"
    scale: str | None = None
    keys: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        key = lambda k: self.keys.get(k, f"{SECTION}.{k}")   # noqa: E731
        st = list(self.stages) if isinstance(self.stages, tuple) else self.stages
        C._check(isinstance(st, list) and st and set(st) <= set(CLAIM_STAGES) and len(set(st)) == len(st),
                 key("stages"), st, f"a non-empty list of distinct stages from {list(CLAIM_STAGES)}")
        C._check(self.before is None or (isinstance(self.before, str) and self.before.endswith(".csv")), key("before"),
                 self.before, "null or the path of a claims_all.csv (the verdicts before a change of the engine)")
        for k in C.DIR_KEYS:
            C._check(isinstance(getattr(self, k), str) and getattr(self, k), key(k), getattr(self, k), "a folder path")

    @classmethod
    def from_params(cls, params: dict, scale: str | None = None) -> "Params":
        """params[SECTION] at `scale` (default: params' `scale`); every scale's entries are checked."""
        sec = params.get(SECTION)
        C._check(isinstance(sec, dict), SECTION, sec, "a mapping")
        by = sec.get("by_scale") or {}
        C._check(isinstance(by, dict) and set(by) <= set(C.SCALES), f"{SECTION}.by_scale", by,
                 f"a mapping with keys from {C.SCALES}")
        scale = scale or params["scale"]
        own = [f.name for f in fields(cls) if f.name not in ("scale", "keys")]
        out = []
        for sc in (scale, *(x for x in C.SCALES if x != scale)):
            over = by.get(sc) or {}
            grid = C.section({SECTION: sec, "scale": sc}, SECTION)
            grid.pop("replaced")
            keys = {k: f"{SECTION}.by_scale.{sc}.{k}" if k in over else f"{SECTION}.{k}" for k in grid}
            for k in grid:
                if k not in own:
                    raise C.ConfigError(f"params.yaml: unknown key `{keys[k]}`; expected one of {own}")
            if "stages" not in grid:
                raise C.ConfigError(f"params.yaml: missing key `{SECTION}.stages`")
            st = grid.pop("stages")
            out.append(cls(stages=tuple(st) if isinstance(st, list) else st, **grid, scale=sc, keys=keys))
        return out[0]
