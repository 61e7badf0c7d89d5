"""params.yaml → 05_temporal_dynamics (paper B, notebook 05): the section at one scale, validated without torch.

Loaded by lib.core.config's validator (STAGE_SCHEMAS) and re-exported by lib.stages.temporal, which runs the grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core import config as C
from ..core.encoder_constants import check_constants


# ----------------------------------------------------------------------------- this section of params.yaml
SECTION = "05_temporal_dynamics"


@dataclass(frozen=True)
class Params(C.GridSection):
    """params.yaml's 05_temporal_dynamics at one scale: its grid, plus the common frame of lib.core.config.GridSection
    (per-family values, folders). Checked in __post_init__: every error is a ConfigError naming its key
    (`05_temporal_dynamics.by_scale.<scale>.<key>` when a replacement at that scale wrote it)."""
    OWN_KEYS = ("datasets", "encodings", "baseline", "trace_attack", "transfer", "sweep", "efficiency")
    datasets: tuple[str, ...]
    encodings: tuple[str, ...]
    baseline: str                  # the encoding paper B compares against
    trace_attack: bool             # also attack the whole output-membrane trace (paper B's break condition)
    transfer: dict                 # {source, target: image sets, frozen: [layer indices 0-3]}
    sweep: dict                    # {datasets: [...], <stochastic encoder>: {constant: [values]}}
    efficiency: dict               # {spike_samples, rss_interval} (Runner)
    encoders: dict = field(default_factory=dict, repr=False)   # params.yaml's `encoders` (the sweep's centre)
    name: str = field(default=SECTION, kw_only=True)

    def __post_init__(self):
        ok, as_yaml, enc = C._check, (lambda v: list(v) if isinstance(v, tuple) else v), C.ENCODINGS
        C._list_of(self.key("datasets"), as_yaml(self.datasets), C.DATASETS)
        C._list_of(self.key("encodings"), as_yaml(self.encodings), enc)
        ok(self.baseline in enc, self.key("baseline"), self.baseline, f"one of {enc}")
        ok(isinstance(self.trace_attack, bool), self.key("trace_attack"), self.trace_attack, "true or false")
        t, img = self.transfer, C.IMAGE_DATASETS
        ok(isinstance(t, dict) and set(t) == {"source", "target", "frozen"} and t["source"] in img
           and t["target"] in img and isinstance(t["frozen"], list)
           and all(isinstance(i, int) and 0 <= i < 4 for i in t["frozen"]), self.key("transfer"), t,
           "{source: image set, target: image set, frozen: [layer indices 0-3]}")
        key, v = self.key("sweep"), self.sweep
        ok(isinstance(v, dict) and isinstance(v.get("datasets"), list) and all(d in C.DATASETS for d in v["datasets"]),
           f"{key}.datasets", v.get("datasets") if isinstance(v, dict) else v, "a list of datasets")
        for e, grid in v.items():
            if e == "datasets":
                continue
            ok(e in ("poisson_burst", "delayed_burst", "rate") and isinstance(grid, dict), f"{key}.{e}", grid,
               "a mapping {constant: [values]} of a stochastic encoder")
            for const, values in grid.items():
                ok(isinstance(values, list) and values, f"{key}.{e}.{const}", values, "a non-empty list")
                for x in values:
                    try:
                        check_constants(e, **{**(self.encoders.get(e) or {}), const: x})
                    except (TypeError, ValueError) as err:
                        raise C.ConfigError(f"params.yaml: `{key}.{e}.{const}` = {x!r}: {err}") from None
        f = self.efficiency
        ok(isinstance(f, dict) and set(f) == {"spike_samples", "rss_interval"} and C._is_pos_int(f["spike_samples"])
           and isinstance(f["rss_interval"], (int, float)) and not isinstance(f["rss_interval"], bool)
           and f["rss_interval"] > 0, self.key("efficiency"), f, "{spike_samples: positive integer, rss_interval: seconds > 0}")

    @classmethod
    def from_params(cls, params: dict, name: str = SECTION) -> "Params":
        """The section at the active scale (GridSection.from_params), whose grid must also be runnable: the
        transfer and sweep datasets and the baseline are in it."""
        act = super().from_params(params, name, encoders=dict(params.get("encoders") or {}))
        for ds in (act.transfer["source"], act.transfer["target"], *act.sweep["datasets"]):
            C._check(ds in act.datasets, f"{name}.datasets", list(act.datasets),
                     f"a list that includes {ds} (used by `transfer` / `sweep` at scale {params['scale']})")
        C._check(act.baseline in act.encodings, f"{name}.encodings", list(act.encodings),
                 f"a list that includes the baseline {act.baseline!r}")
        return act
