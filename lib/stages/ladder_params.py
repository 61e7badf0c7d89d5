"""params.yaml's 08_attack_ladder as a frozen dataclass (`Params`, re-exported as lib.stages.ladder.Params): every
value checked in __post_init__, every error a ConfigError naming its key. Imports nothing heavier than
lib.core.config, so validating params.yaml (config.STAGE_SCHEMAS) loads no model code."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass

from ..core import config as C
from ..core.config import ConfigError


SECTION = "08_attack_ladder"
FAMILIES = ("image", "tabular")
SETTING_KEYS = ("kind", "label", "datasets", "lr", "weight_bits", "encoding", "surrogate")


@dataclass(frozen=True)
class PerFamily:
    """A value per dataset family (params.yaml `{image: ..., tabular: ...}`)."""
    image: object
    tabular: object

    def of(self, fam: str):
        return getattr(self, fam)


@dataclass(frozen=True)
class SettingSpec:
    """One entry of `settings` as params.yaml states it: `lr` names the kind whose train.lr it takes (None: its own)."""
    id: str
    kind: str
    datasets: tuple
    label: str | None = None
    lr: str | None = None
    weight_bits: int | None = None
    encoding: str | None = None
    surrogate: str | None = None


@dataclass(frozen=True)
class AsPublished:
    settings: tuple
    datasets: tuple


@dataclass(frozen=True)
class Lira:
    variant: str
    fix_variance: bool


@dataclass(frozen=True)
class Rmia:
    offline_a: float
    gamma: float


def _num(x, lo=None, hi=None, integer=False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and (not integer or isinstance(x, int))
    return ok and (lo is None or x >= lo) and (hi is None or x <= hi)


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"params.yaml: `{key}` = {value!r} is invalid; expected {expected}")


def _per_fam(v, ok) -> bool:
    return isinstance(v, dict) and set(v) == set(FAMILIES) and all(ok(x) for x in v.values())


def _setting_ok(v) -> bool:
    from ..core.vocab import DATASETS, ENCODINGS, KINDS, SURROGATES
    return (isinstance(v, dict) and set(v) <= set(SETTING_KEYS) and {"kind", "datasets"} <= set(v)
            and v["kind"] in KINDS and isinstance(v["datasets"], list) and v["datasets"]
            and set(v["datasets"]) <= set(DATASETS) and len(set(v["datasets"])) == len(v["datasets"])
            and v.get("lr") in (None, *KINDS) and (v.get("weight_bits") is None or _num(v["weight_bits"], 1, 8, True))
            and (v.get("label") is None or isinstance(v["label"], str))
            and (v.get("encoding") is None or (v["kind"] == "snn" and v["encoding"] in ENCODINGS))
            and (v.get("surrogate") is None or (v["kind"] == "snn" and v["surrogate"] in SURROGATES)))


def _checks() -> dict:
    """key → (check of its params.yaml value, what is expected)."""
    from ..core.vocab import DATASETS, ENCODINGS, KINDS, LIRA_VARIANTS
    num, pos = _num, (lambda x: _num(x, 1, None, True))   # noqa: E731
    fam = "{image: ..., tabular: ...}"
    return {
        "regime": (lambda v: isinstance(v, str) and v, "a name"),
        "members": (lambda v: _per_fam(v, lambda x: x is None or num(x, 2, None, True)),
                    f"{fam}, each an integer >= 2 (members per model) or null (the whole training part)"),
        "epochs": (lambda v: _per_fam(v, pos), f"{fam} of positive integers"),
        "batch_size": (lambda v: _per_fam(v, pos), f"{fam} of positive integers"),
        "models": (lambda v: _per_fam(v, lambda x: num(x, 4, None, True)),
                   f"{fam}, each an integer >= 4 (every leave-one-out target needs an IN and an OUT reference)"),
        "population_test": (lambda v: _per_fam(v, lambda x: x is None or num(x, 10, None, True)),
                            f"{fam}, each an integer >= 10 or null (every test example)"),
        "curve_eval_size": (pos, "a positive integer"),
        "seed": (lambda v: num(v, 0, None, True), "a non-negative integer"),
        "settings": (lambda v: isinstance(v, dict) and v and all(isinstance(k, str) and _setting_ok(x)
                                                                for k, x in v.items()),
                     f"a mapping id → {{kind: {'|'.join(KINDS)}, datasets: [distinct datasets from {list(DATASETS)}], "
                     f"and optionally label, lr: ann|snn, weight_bits: 1-8, encoding (SNN): one of {list(ENCODINGS)}, "
                     "surrogate (SNN): a key of `surrogates`}"),
        "as_published": (lambda v: isinstance(v, dict) and set(v) == {"settings", "datasets"}
                         and all(isinstance(v[k], list) for k in v) and set(v["datasets"]) <= set(DATASETS),
                         "{settings: [setting ids], datasets: [datasets]}"),
        "lira": (lambda v: isinstance(v, dict) and set(v) == {"variant", "fix_variance"}
                 and v["variant"] in LIRA_VARIANTS and isinstance(v["fix_variance"], bool),
                 f"{{variant: {'|'.join(LIRA_VARIANTS)}, fix_variance: true|false}}"),
        "rmia": (lambda v: isinstance(v, dict) and set(v) == {"offline_a", "gamma"} and num(v["offline_a"], 0, 1)
                 and num(v["gamma"], 0) and v["gamma"] > 0, "{offline_a in [0, 1], gamma > 0}"),
        "primary": (lambda v: isinstance(v, dict) and v and all(
            isinstance(x, dict) and set(x) == {"attack", "metric", "reason"} and x["metric"] in ("auc", "tpr_low")
            and all(isinstance(x[k], str) and x[k].strip() for k in x) for x in v.values()),
            "a mapping ladder claim → {attack: a rung, metric: auc|tpr_low, reason: why (stated before looking)} "
            "(lib.claims.registry.check_ladder_primary checks the claim ids and attacks)"),
    }


def _sub_checks() -> dict:
    """The nested blocks' keys (config.check_block's schemas), checked before `_checks`: an error names the full key
    (`08_attack_ladder.lira.fix_variance`, `08_attack_ladder.members.image`) and the bad value, not the block."""
    from ..core.vocab import DATASETS, LIRA_VARIANTS
    pos = (lambda x: _num(x, 1, None, True), "a positive integer")
    fam = lambda ok, txt: {f: (ok, txt) for f in FAMILIES}   # noqa: E731
    return {
        "members": fam(lambda x: x is None or _num(x, 2, None, True),
                       "an integer >= 2 or null (the whole training part)"),
        "epochs": fam(*pos), "batch_size": fam(*pos),
        "models": fam(lambda x: _num(x, 4, None, True),
                      "an integer >= 4 (every leave-one-out target needs an IN and an OUT reference)"),
        "population_test": fam(lambda x: x is None or _num(x, 10, None, True),
                               "an integer >= 10 or null (every test example)"),
        "as_published": {"settings": (lambda v: isinstance(v, list), "a list of setting ids"),
                         "datasets": (lambda v: isinstance(v, list) and set(v) <= set(DATASETS),
                                      f"a list from {list(DATASETS)}")},
        "lira": {"variant": (lambda x: x in LIRA_VARIANTS, f"one of {list(LIRA_VARIANTS)}"),
                 "fix_variance": (lambda x: isinstance(x, bool), "true or false")},
        "rmia": {"offline_a": (lambda x: _num(x, 0, 1), "a number in [0, 1]"),
                 "gamma": (lambda x: _num(x, 0) and x > 0, "a number > 0")},
    }


def _check_setting(key: str, v) -> None:
    """One entry of `settings` (key = its full params.yaml key): its keys, then each value, named alone."""
    from ..core.vocab import DATASETS, ENCODINGS, KINDS, SURROGATES
    _check(isinstance(v, dict), key, v, f"a mapping with keys from {list(SETTING_KEYS)}")
    for k in v:
        if k not in SETTING_KEYS:
            raise ConfigError(f"params.yaml: unknown key `{key}.{k}`; expected one of {list(SETTING_KEYS)}")
    for k in ("kind", "datasets"):
        if k not in v:
            raise ConfigError(f"params.yaml: missing key `{key}.{k}`")
    _check(v["kind"] in KINDS, f"{key}.kind", v["kind"], f"one of {list(KINDS)}")
    ds = v["datasets"]
    _check(isinstance(ds, list) and ds and set(ds) <= set(DATASETS) and len(set(ds)) == len(ds), f"{key}.datasets",
           ds, f"a non-empty list of distinct datasets from {list(DATASETS)}")
    _check(v.get("lr") in (None, *KINDS), f"{key}.lr", v.get("lr"), f"null or one of {list(KINDS)}")
    _check(v.get("weight_bits") is None or _num(v["weight_bits"], 1, 8, True), f"{key}.weight_bits",
           v.get("weight_bits"), "null or an integer in [1, 8]")
    _check(v.get("label") is None or isinstance(v["label"], str), f"{key}.label", v.get("label"), "a text")
    _check(v.get("encoding") is None or (v["kind"] == "snn" and v["encoding"] in ENCODINGS), f"{key}.encoding",
           v.get("encoding"), f"null, or for an SNN one of {list(ENCODINGS)}")
    _check(v.get("surrogate") is None or (v["kind"] == "snn" and v["surrogate"] in SURROGATES), f"{key}.surrogate",
           v.get("surrogate"), f"null, or for an SNN one of {sorted(SURROGATES)}")


def _raw(v):
    """A field's value as params.yaml states it (for the checks and messages)."""
    if isinstance(v, tuple) and v and isinstance(v[0], SettingSpec):
        return {x.id: {k: _raw(getattr(x, k)) for k in SETTING_KEYS if getattr(x, k) is not None} for x in v}
    if is_dataclass(v):
        return {f.name: _raw(getattr(v, f.name)) for f in fields(v)}
    return [_raw(x) for x in v] if isinstance(v, tuple) else v


def _typed(k: str, v):
    if k in ("members", "epochs", "batch_size", "models", "population_test"):
        return PerFamily(**v)
    if k == "settings":
        return tuple(SettingSpec(sid, **{**x, "datasets": tuple(x["datasets"])}) for sid, x in v.items())
    if k == "as_published":
        return AsPublished(tuple(v["settings"]), tuple(v["datasets"]))
    return {"lira": lambda: Lira(**v), "rmia": lambda: Rmia(**v)}.get(k, lambda: v)()


@dataclass(frozen=True)
class Params:
    """params.yaml's `08_attack_ladder` at one scale (see the comments there). Built by `from_params`;
    __post_init__ checks every value and raises a ConfigError naming its params.yaml key (`keys`: the key of each
    entry, `08_attack_ladder.by_scale.<scale>.<key>` where that scale replaces it)."""
    regime: str
    members: PerFamily
    epochs: PerFamily
    batch_size: PerFamily
    models: PerFamily
    population_test: PerFamily
    curve_eval_size: int
    seed: int
    settings: tuple               # of SettingSpec, in params.yaml order
    as_published: AsPublished
    lira: Lira
    rmia: Rmia
    primary: dict                 # claim → {attack, metric, reason} (lib.claims.registry.check_ladder_primary)
    checkpoints_dir: str = f"checkpoints/{SECTION}"
    results_dir: str = f"results/{SECTION}"
    figures_dir: str = f"figures/{SECTION}"
    scale: str | None = None
    replaced: tuple = ()
    keys: dict = field(default_factory=dict, compare=False, repr=False)

    def key(self, name: str) -> str:
        return self.keys.get(name, f"{SECTION}.{name}")

    def __post_init__(self):
        for name, (ok, expected) in _checks().items():
            _check(bool(ok(_raw(getattr(self, name)))), self.key(name), _raw(getattr(self, name)), expected)
        for name in C.DIR_KEYS:
            _check(isinstance(getattr(self, name), str) and getattr(self, name), self.key(name),
                   getattr(self, name), "a folder path")
        by_id = {x.id: x for x in self.settings}
        for sid in self.as_published.settings:
            _check(sid in by_id, self.key("as_published") + ".settings", sid, f"a setting id ({sorted(by_id)})")
            _check(set(self.as_published.datasets) <= set(by_id[sid].datasets), self.key("as_published")
                   + ".datasets", list(self.as_published.datasets),
                   f"datasets that setting {sid!r} is trained on ({list(by_id[sid].datasets)})")

    @classmethod
    def from_params(cls, params: dict, scale: str | None = None) -> "Params":
        """params[SECTION] at `scale` (default: params' `scale`), its `by_scale.<scale>` entries replacing whole
        top-level entries (config.section). Every scale's grid is checked, the active one first; the active one's
        settings must also train on datasets that 00_data prepares, with surrogates that `surrogates` defines."""
        sec = params.get(SECTION)
        _check(isinstance(sec, dict), SECTION, sec, "a mapping")
        by = sec.get("by_scale") or {}
        _check(isinstance(by, dict) and set(by) <= set(C.SCALES), f"{SECTION}.by_scale", by,
               f"a mapping with keys from {C.SCALES}")
        scale = scale or params["scale"]
        grids = [cls.from_section(sec, sc) for sc in (scale, *(x for x in C.SCALES if x != scale))]
        p, have = grids[0], set(params["00_data"]["datasets"])
        for st in p.settings:
            missing = sorted(set(st.datasets) - have)
            _check(not missing, p.key("settings") + f".{st.id}.datasets", list(st.datasets),
                   f"datasets that 00_data prepares ({sorted(have)}); missing: {missing}")
            if st.surrogate:
                _check(st.surrogate in params["surrogates"], p.key("settings") + f".{st.id}.surrogate",
                       st.surrogate, f"a key of `surrogates` ({sorted(params['surrogates'])})")
        return p

    @classmethod
    def from_section(cls, sec: dict, scale: str = "quick") -> "Params":
        """The section as params.yaml writes it (with or without `by_scale`) at `scale`."""
        over = (sec.get("by_scale") or {}).get(scale) or {}
        grid = C.section({SECTION: sec, "scale": scale}, SECTION)
        replaced = grid.pop("replaced")
        keys = {k: f"{SECTION}.by_scale.{scale}.{k}" if k in over else f"{SECTION}.{k}" for k in grid}
        checks, subs = _checks(), _sub_checks()
        own = [f.name for f in fields(cls) if f.name not in ("scale", "replaced", "keys")]
        for k, v in grid.items():
            if k not in own:
                raise ConfigError(f"params.yaml: unknown key `{keys[k]}`; expected one of {own}")
            if k in subs:
                C.check_block(v, keys[k], subs[k])
            if k == "settings" and isinstance(v, dict):
                for sid, x in v.items():
                    _check_setting(f"{keys[k]}.{sid}", x)
            if k in checks:
                _check(bool(checks[k][0](v)), keys[k], v, checks[k][1])
        for f in fields(cls):
            if f.name not in grid and f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"params.yaml: missing key `{SECTION}.{f.name}`")
        return cls(**{k: _typed(k, v) for k, v in grid.items()}, scale=scale, replaced=tuple(replaced), keys=keys)


__all__ = ["AsPublished", "FAMILIES", "Lira", "Params", "PerFamily", "Rmia", "SECTION", "SETTING_KEYS", "SettingSpec"]
