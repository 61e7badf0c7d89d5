"""params.yaml's 09_privacy_utility as a frozen dataclass (`Params`): every value checked in __post_init__, every
error a ConfigError naming its key; torch-free (lib.core.config.STAGE_SCHEMAS validates params.yaml with it).

The section reuses the leakage regime of 08 (a population per dataset, a keep matrix of `models` networks, each in turn
the target, the others its references: lib.stages.ladder) and adds what issue 25 asks for: canaries planted in the
population, and settings that are baselines (DP-SGD at several ε, an ANN regularised by weight decay or stopped
early) beside the papers' heuristic defences. A setting's `role` says which: reference (the undefended net),
defence (a paper's claim: `claim` names it), dp, regularised."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from ..core import config as C
from ..core.config import ConfigError
from .ladder_params import FAMILIES, Lira, PerFamily, Rmia, _check, _num

SECTION = "09_privacy_utility"
ROLES = ("reference", "defence", "dp", "regularised")
SETTING_KEYS = ("kind", "role", "label", "claim", "weight_bits", "act_bits", "encoding", "weight_decay", "epochs",
                "epsilon", "lr", "max_grad_norm", "ptq")


@dataclass(frozen=True)
class Setting:
    """One configuration: kind (ann|snn), role, label, the paper claim a defence stands for, and its overrides of
    the regime's unit (weight_bits, act_bits, encoding, weight_decay, epochs; epsilon: DP-SGD at that ε, null = clipping
    only, present only for role dp; lr and max_grad_norm, role dp only: the values `dp_tuning` chose on the
    validation split, written into params.yaml — without them, train.lr of the kind and dp.max_grad_norm; ptq:
    {method, bits}, a defence only: paper C's post-training weight quantization applied to the reference ANN's
    trained models, lib.core.ptq)."""
    id: str
    kind: str
    role: str
    label: str
    claim: str | None = None
    weight_bits: int | None = None
    act_bits: int | None = None
    encoding: str | None = None
    weight_decay: float | None = None
    epochs: int | None = None
    epsilon: float | None = None
    lr: float | None = None
    max_grad_norm: float | None = None
    ptq: dict | None = None


@dataclass(frozen=True)
class Canaries:
    fraction: float
    seed: int


@dataclass(frozen=True)
class DP:
    delta: float
    max_grad_norm: float


@dataclass(frozen=True)
class DPTuning:
    """The grid each DP-SGD setting's learning rate (per kind) and clipping norm are chosen from, on the validation
    split of `seed` (lib.stages.privacy_utility.tuning)."""
    lr: dict                     # kind -> list of learning rates
    max_grad_norm: tuple
    seed: int


def _check_setting(key: str, v) -> None:
    from ..core.vocab import ENCODINGS, KINDS
    _check(isinstance(v, dict), key, v, f"a mapping with keys from {list(SETTING_KEYS)}")
    for k in v:
        if k not in SETTING_KEYS:
            raise ConfigError(f"params.yaml: unknown key `{key}.{k}`; expected one of {list(SETTING_KEYS)}")
    for k in ("kind", "role"):
        if k not in v:
            raise ConfigError(f"params.yaml: missing key `{key}.{k}`")
    _check(v["kind"] in KINDS, f"{key}.kind", v["kind"], f"one of {list(KINDS)}")
    _check(v["role"] in ROLES, f"{key}.role", v["role"], f"one of {list(ROLES)}")
    _check(isinstance(v.get("label", ""), str), f"{key}.label", v.get("label"), "a text")
    _check((v.get("claim") is not None) == (v["role"] == "defence") and isinstance(v.get("claim", ""), str),
           f"{key}.claim", v.get("claim"), "the paper claim a defence stands for (defences only)")
    _check(v.get("weight_bits") is None or _num(v["weight_bits"], 1, 8, True), f"{key}.weight_bits",
           v.get("weight_bits"), "null or an integer in [1, 8]")
    _check(v.get("act_bits") is None or _num(v["act_bits"], 1, 8, True), f"{key}.act_bits", v.get("act_bits"),
           "null or an integer in [1, 8]")
    _check(v.get("encoding") is None or (v["kind"] == "snn" and v["encoding"] in ENCODINGS), f"{key}.encoding",
           v.get("encoding"), f"null, or for an SNN one of {list(ENCODINGS)}")
    _check(v.get("weight_decay") is None or _num(v["weight_decay"], 0), f"{key}.weight_decay",
           v.get("weight_decay"), "null or a number >= 0")
    _check(v.get("epochs") is None or _num(v["epochs"], 1, None, True), f"{key}.epochs", v.get("epochs"),
           "null or a positive integer")
    _check(("epsilon" in v) == (v["role"] == "dp"), f"{key}.epsilon", v.get("epsilon"),
           "given (a number > 0, or null for clipping only) for role dp, and only for it")
    _check(v.get("epsilon") is None or (_num(v["epsilon"], 0) and v["epsilon"] > 0), f"{key}.epsilon",
           v.get("epsilon"), "null (clipping only) or a number > 0")
    for k in ("weight_bits", "act_bits"):
        _check(not (v["role"] == "dp" and v.get(k)), f"{key}.{k}", v.get(k),
               "null for DP-SGD (lib.core.dp does not train quantized layers)")
    if v.get("ptq") is not None:
        from ..core.vocab import PTQ_BITS, PTQ_METHODS
        q = v["ptq"]
        _check(isinstance(q, dict) and set(q) == {"method", "bits"} and q["method"] in PTQ_METHODS
               and q["bits"] in PTQ_BITS, f"{key}.ptq", q,
               f"{{method: one of {list(PTQ_METHODS)}, bits: one of {list(PTQ_BITS)}}}")
        _check(v["kind"] == "ann" and v["role"] == "defence" and not any(
            v.get(k) is not None for k in ("weight_bits", "act_bits", "encoding", "weight_decay", "epochs")),
               f"{key}.ptq", q, "given only for an ANN defence without weight_bits / act_bits / encoding / "
               "weight_decay / epochs (it quantizes "
               "the reference ANN's trained models)")
    for k in ("lr", "max_grad_norm"):
        _check(v.get(k) is None or (v["role"] == "dp" and _num(v[k], 0) and v[k] > 0), f"{key}.{k}", v.get(k),
               "null, or for role dp a number > 0 (the value dp_tuning chose)")


def _checks() -> dict:
    from ..core.vocab import DATASETS, LIRA_VARIANTS
    pos = lambda x: _num(x, 1, None, True)   # noqa: E731
    fam = "{image: ..., tabular: ...}"
    per = lambda ok: (lambda v: isinstance(v, dict) and set(v) == set(FAMILIES) and all(ok(x) for x in v.values()))  # noqa: E731
    return {
        "regime": (lambda v: isinstance(v, str) and v, "a name"),
        "datasets": (lambda v: isinstance(v, list) and v and set(v) <= set(DATASETS) and len(set(v)) == len(v),
                     f"a non-empty list of distinct datasets from {list(DATASETS)}"),
        "members": (per(lambda x: x is None or _num(x, 2, None, True)), f"{fam}, each an integer >= 2 or null"),
        "epochs": (per(pos), f"{fam} of positive integers"),
        "batch_size": (per(pos), f"{fam} of positive integers"),
        "models": (per(lambda x: _num(x, 4, None, True)), f"{fam}, each an integer >= 4"),
        "population_test": (per(lambda x: x is None or _num(x, 10, None, True)), f"{fam}, each >= 10 or null"),
        "curve_eval_size": (pos, "a positive integer"),
        "seed": (lambda v: _num(v, 0, None, True), "a non-negative integer"),
        "canaries": (lambda v: isinstance(v, dict) and set(v) == {"fraction", "seed"} and _num(v["fraction"], 0, 0.5)
                     and v["fraction"] > 0 and _num(v["seed"], 0, None, True),
                     "{fraction in (0, 0.5], seed: a non-negative integer}"),
        "dp": (lambda v: isinstance(v, dict) and set(v) == {"delta", "max_grad_norm"} and _num(v["delta"], 0, 1)
               and 0 < v["delta"] < 1 and _num(v["max_grad_norm"], 0) and v["max_grad_norm"] > 0,
               "{delta in (0, 1), max_grad_norm > 0}"),
        "dp_tuning": (lambda v: isinstance(v, dict) and set(v) == {"lr", "max_grad_norm", "seed"}
                      and isinstance(v["lr"], dict) and set(v["lr"]) <= {"ann", "snn"}
                      and all(isinstance(g, list) and g and all(_num(x, 0) and x > 0 for x in g)
                              for g in v["lr"].values())
                      and isinstance(v["max_grad_norm"], list) and v["max_grad_norm"]
                      and all(_num(x, 0) and x > 0 for x in v["max_grad_norm"]) and _num(v["seed"], 0, None, True),
                      "{lr: {ann: [lr > 0, ...], snn: [...]}, max_grad_norm: [C > 0, ...], seed: an integer >= 0}"),
        "settings": (lambda v: isinstance(v, dict) and v, "a mapping id → setting"),
        "attacks": (lambda v: isinstance(v, list) and v and set(v) <= {"loss", "LiRA offline", "LiRA online", "RMIA"},
                    "a non-empty list from [loss, LiRA offline, LiRA online, RMIA]"),
        "primary": (lambda v: isinstance(v, dict) and set(v) == {"attack", "metric", "reason"}
                    and v["metric"] in ("auc", "canary_tpr") and isinstance(v["reason"], str) and v["reason"].strip(),
                    "{attack: a rung of `attacks`, metric: auc|canary_tpr, reason: why (stated before looking)}"),
        "lira": (lambda v: isinstance(v, dict) and set(v) == {"variant", "fix_variance"}
                 and v["variant"] in LIRA_VARIANTS and isinstance(v["fix_variance"], bool),
                 f"{{variant: {'|'.join(LIRA_VARIANTS)}, fix_variance: true|false}}"),
        "rmia": (lambda v: isinstance(v, dict) and set(v) == {"offline_a", "gamma"} and _num(v["offline_a"], 0, 1)
                 and _num(v["gamma"], 0) and v["gamma"] > 0, "{offline_a in [0, 1], gamma > 0}"),
    }


@dataclass(frozen=True)
class Params:
    """params.yaml's `09_privacy_utility` at one scale (see the comments there); the regime's attributes have the
    names lib.stages.ladder reads (members, epochs, batch_size, models, population_test, seed, regime, lira, rmia)."""
    regime: str
    datasets: tuple
    members: PerFamily
    epochs: PerFamily
    batch_size: PerFamily
    models: PerFamily
    population_test: PerFamily
    curve_eval_size: int
    seed: int
    canaries: Canaries
    dp: DP
    dp_tuning: DPTuning
    settings: tuple              # of Setting, in params.yaml order
    attacks: tuple
    primary: dict
    lira: Lira
    rmia: Rmia
    checkpoints_dir: str = f"checkpoints/{SECTION}"
    results_dir: str = f"results/{SECTION}"
    figures_dir: str = f"figures/{SECTION}"
    scale: str | None = None
    replaced: tuple = ()
    keys: dict = field(default_factory=dict, compare=False, repr=False)

    def key(self, name: str) -> str:
        return self.keys.get(name, f"{SECTION}.{name}")

    def of_role(self, role: str) -> tuple:
        return tuple(s for s in self.settings if s.role == role)

    def __post_init__(self):
        roles = [s.role for s in self.settings]
        _check(roles.count("reference") == 1, self.key("settings"), roles, "exactly one setting with role reference")
        ref = self.of_role("reference")[0]
        _check(ref.kind == "ann", self.key("settings") + f".{ref.id}.kind", ref.kind, "ann (the undefended ANN)")
        for s in self.of_role("dp"):
            _check(s.kind in self.dp_tuning.lr, self.key("dp_tuning") + ".lr", sorted(self.dp_tuning.lr),
                   f"a learning-rate grid for kind {s.kind!r} (setting {s.id} trains with DP-SGD)")
        _check(self.primary["attack"] in self.attacks, self.key("primary") + ".attack", self.primary["attack"],
               f"one of `attacks` ({list(self.attacks)})")

    @classmethod
    def from_params(cls, params: dict, scale: str | None = None) -> "Params":
        sec = params.get(SECTION)
        _check(isinstance(sec, dict), SECTION, sec, "a mapping")
        by = sec.get("by_scale") or {}
        _check(isinstance(by, dict) and set(by) <= set(C.SCALES), f"{SECTION}.by_scale", by,
               f"a mapping with keys from {C.SCALES}")
        scale = scale or params["scale"]
        grids = [cls._at(sec, sc) for sc in (scale, *(x for x in C.SCALES if x != scale))]
        p, have = grids[0], set(params["00_data"]["datasets"])
        missing = sorted(set(p.datasets) - have)
        _check(not missing, p.key("datasets"), list(p.datasets), f"datasets 00_data prepares; missing: {missing}")
        return p

    @classmethod
    def _at(cls, sec: dict, scale: str) -> "Params":
        over = (sec.get("by_scale") or {}).get(scale) or {}
        grid = C.section({SECTION: sec, "scale": scale}, SECTION)
        replaced = grid.pop("replaced")
        keys = {k: f"{SECTION}.by_scale.{scale}.{k}" if k in over else f"{SECTION}.{k}" for k in grid}
        checks = _checks()
        own = [f.name for f in fields(cls) if f.name not in ("scale", "replaced", "keys")]
        for k, v in grid.items():
            if k not in own:
                raise ConfigError(f"params.yaml: unknown key `{keys[k]}`; expected one of {own}")
            if k == "settings" and isinstance(v, dict):
                for sid, x in v.items():
                    _check_setting(f"{keys[k]}.{sid}", x)
            if k in checks:
                _check(bool(checks[k][0](v)), keys[k], v, checks[k][1])
        for f in fields(cls):
            if f.name not in grid and f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"params.yaml: missing key `{SECTION}.{f.name}`")
        typed = {}
        for k, v in grid.items():
            if k in ("members", "epochs", "batch_size", "models", "population_test"):
                v = PerFamily(**v)
            elif k == "settings":
                v = tuple(Setting(sid, **{"label": sid, **x}) for sid, x in v.items())
            elif k in ("datasets", "attacks"):
                v = tuple(v)
            elif k == "dp_tuning":
                v = DPTuning({kd: tuple(float(x) for x in g) for kd, g in v["lr"].items()},
                             tuple(float(x) for x in v["max_grad_norm"]), int(v["seed"]))
            elif k in ("canaries", "dp", "lira", "rmia"):
                v = {"canaries": Canaries, "dp": DP, "lira": Lira, "rmia": Rmia}[k](**v)
            typed[k] = v
        return cls(**typed, scale=scale, replaced=tuple(replaced), keys=keys)


__all__ = ["SECTION", "ROLES", "SETTING_KEYS", "Setting", "Canaries", "DP", "DPTuning", "Params"]
