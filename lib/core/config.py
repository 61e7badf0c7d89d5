"""params.yaml: loading, validation (before any training) and the resolved settings of one scale.

Every check raises `ConfigError` naming the offending key, e.g. `model.snn.surrogate`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# the names params.yaml may use, from the one light module that holds them (no model library is imported here)
from .vocab import (CIFAR10_SOURCES, DATASETS, ENCODINGS, IMAGE_DATASETS, KINDS, MARGIN_METRICS,  # noqa: F401
                    READOUTS, SPLIT_MODES, SURROGATE_CONSTANTS, SURROGATES)

SCALES = ("smoke", "quick", "paper")
OPTIMIZERS = ("adam", "sgd")


class ConfigError(ValueError):
    """An invalid value in params.yaml; the message names its key."""


def _get(params: dict, key: str):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"params.yaml: missing key `{key}`")
        node = node[part]
    return node


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise ConfigError(f"params.yaml: `{key}` = {value!r} is invalid; expected {expected}")


def _positive_int(params, key, allow_none=False):
    v = _get(params, key)
    if allow_none and v is None:
        return
    _check(isinstance(v, int) and not isinstance(v, bool) and v > 0, key, v,
           "a positive integer" + (" or null" if allow_none else ""))


def _positive(params, key):
    v = _get(params, key)
    _check(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, key, v, "a positive number")


def _datasets(params, key):
    v = _get(params, key)
    _check(isinstance(v, list) and v and all(d in DATASETS for d in v), key, v, f"a non-empty list from {list(DATASETS)}")


# Every key the common sections may hold (a nested mapping: key → its own keys, or None for a value). An unknown key
# anywhere in them, or an unknown top-level section, is refused, naming its full path (a typo or a leftover such as
# `train.lr_schedule` would otherwise be silently ignored). The values are checked in `validate`; the stage sections
# check their own keys (check_section, STAGE_SCHEMAS), `execution` is lib.core.executor.Settings's, `surrogates` and
# `encoders` are keyed by the names of lib.core.vocab (their constants checked by the encoders themselves).
_FAMILY_SCALE = {"n_in": None, "n_out": None, "epochs": None}
KNOWN_KEYS = {
    "scale": None,
    "00_data": dict.fromkeys(("datasets", "raw_dir", "splits_dir", "mirror_env", "cifar10_source", "split_mode",
                              "shadow_member_fraction", "shadow_nonmember_fraction", "tabular_test_fraction",
                              "tabular_split_seed")),
    "model": {**dict.fromkeys(("hidden", "conv_channels", "conv_kernel", "conv_padding")),
              "snn": dict.fromkeys(("beta", "threshold", "steps", "surrogate", "encoding", "readout"))},
    "surrogates": None, "encoders": None, "execution": None,
    "train": {"optimizer": None, "lr": dict.fromkeys(KINDS), "weight_decay": None,
              "batch_size": {"image": None, "tabular": None}, "device": None, "curve_eval_size": None,
              "eval_batch_size": None, "seed": None, "shadow_seed_offset": None},
    "scales": {sc: {"image": _FAMILY_SCALE, "tabular": _FAMILY_SCALE, "steps": None,
                    "seeds": {"image": None, "tabular": None}} for sc in SCALES},
    "attack": dict.fromkeys(("mode", "max_train", "standardize", "n_boot")),
    "verdicts": {"margins": None, "bootstrap": {"n_boot": None, "seed": None}},
    "01_models": None,
}


def _known_keys(node, known: dict, where: str = "") -> None:
    """Refuse any key of `node` (a mapping of params.yaml at `where`) that `known` does not list, recursively."""
    for k, v in node.items():
        key = f"{where}.{k}" if where else str(k)
        if k not in known:
            raise ConfigError(f"params.yaml: unknown key `{key}`; expected one of {list(known)}")
        if known[k] is not None and isinstance(v, dict):
            _known_keys(v, known[k], key)


def validate(params: dict) -> dict:
    """Check every value the pipeline uses; return params unchanged."""
    _check(isinstance(params, dict), "(top level)", params, "a mapping of sections")
    _check(_get(params, "scale") in SCALES, "scale", params.get("scale"), f"one of {SCALES}")
    for key in ("00_data", "model", "model.snn", "train", "scales", "attack", "verdicts"):
        if key in ("attack", "verdicts") and key not in params:
            continue
        _check(isinstance(_get(params, key), dict), key, _get(params, key), "a mapping")
    _validate_execution(params)   # first: it names the train.<key> that moved to execution
    _known_keys(params, {**KNOWN_KEYS, **dict.fromkeys(STAGE_SCHEMAS)})   # the stage sections check their own
    _datasets(params, "00_data.datasets")
    _check(_get(params, "00_data.cifar10_source") in CIFAR10_SOURCES, "00_data.cifar10_source",
           params["00_data"]["cifar10_source"], f"one of {CIFAR10_SOURCES}")
    _check(_get(params, "00_data.split_mode") in SPLIT_MODES, "00_data.split_mode",
           params["00_data"]["split_mode"], f"one of {SPLIT_MODES}")
    for key in ("00_data.shadow_member_fraction", "00_data.shadow_nonmember_fraction", "00_data.tabular_test_fraction"):
        v = _get(params, key)
        _check(isinstance(v, (int, float)) and 0 < v < 1, key, v, "a fraction in (0, 1)")
    for key in ("model.hidden", "model.conv_kernel"):
        _positive_int(params, key)
    v = _get(params, "model.snn.beta")
    _check(isinstance(v, (int, float)) and 0 <= v <= 1, "model.snn.beta", v, "a number in [0, 1]")
    _positive(params, "model.snn.threshold")
    v = _get(params, "model.snn.surrogate")
    _check(v in SURROGATES, "model.snn.surrogate", v, f"one of {sorted(SURROGATES)}")
    _check(isinstance(_get(params, "surrogates"), dict), "surrogates", params["surrogates"], "a mapping")
    for name, consts in params["surrogates"].items():
        _check(name in SURROGATES, f"surrogates.{name}", name, f"surrogate names from {sorted(SURROGATES)}")
        _check(consts is None or isinstance(consts, dict), f"surrogates.{name}", consts, "a mapping of constants")
        for const, v in (consts or {}).items():
            _check(const in SURROGATE_CONSTANTS[name], f"surrogates.{name}.{const}", v,
                   f"a constant of {name}: one of {list(SURROGATE_CONSTANTS[name])}" if SURROGATE_CONSTANTS[name]
                   else f"nothing: {name} takes no constant")
            _check(_num(v) and v > 0, f"surrogates.{name}.{const}", v, "a positive number")
    v = _get(params, "model.snn.encoding")
    _check(v in ENCODINGS, "model.snn.encoding", v, f"one of {ENCODINGS}")
    v = _get(params, "model.snn.readout")
    _check(v in READOUTS, "model.snn.readout", v, f"one of {READOUTS}")
    v = _get(params, "train.optimizer")
    _check(v in OPTIMIZERS, "train.optimizer", v, f"one of {OPTIMIZERS}")
    for kind in KINDS:
        _positive(params, f"train.lr.{kind}")
    for fam in ("image", "tabular"):
        _positive_int(params, f"train.batch_size.{fam}")
    _positive_int(params, "train.curve_eval_size")
    _positive_int(params, "train.eval_batch_size")
    _positive_int(params, "train.shadow_seed_offset")
    v = _get(params, "train.weight_decay")
    _check(_num(v, 0), "train.weight_decay", v, "a number >= 0 (the optimizer's L2 penalty)")
    for scale in SCALES:
        _positive_int(params, f"scales.{scale}.steps")
        for fam in ("image", "tabular"):
            _positive_int(params, f"scales.{scale}.{fam}.epochs")
            _positive_int(params, f"scales.{scale}.{fam}.n_in", allow_none=True)
            _positive_int(params, f"scales.{scale}.{fam}.n_out", allow_none=True)
            _positive_int(params, f"scales.{scale}.seeds.{fam}")
    if "attack" in params:
        v = _get(params, "attack.mode")
        _check(v in ATTACK_MODES, "attack.mode", v, f"one of {ATTACK_MODES}")
        v = _get(params, "attack.max_train")
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= 4, "attack.max_train", v, "an integer >= 4")
        _check(isinstance(_get(params, "attack.standardize"), bool), "attack.standardize",
               params["attack"]["standardize"], "true or false")
        v = _get(params, "attack.n_boot")
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= 0, "attack.n_boot", v, "an integer >= 0")
    if "verdicts" in params:
        v = _get(params, "verdicts.margins")
        _check(isinstance(v, dict), "verdicts.margins", v, "a mapping {metric: positive margin}")
        for metric in v:
            _check(metric in MARGIN_METRICS, f"verdicts.margins.{metric}", v[metric],
                   f"a margin of a metric the claims use: {list(MARGIN_METRICS)}")
        for metric in MARGIN_METRICS:   # every one is read by some claim: a missing one would stop a stage late
            _check(_num(v.get(metric)) and v.get(metric) > 0, f"verdicts.margins.{metric}", v.get(metric),
                   "a positive margin (lib.core.vocab.MARGIN_METRICS says its unit)")
        _positive_int(params, "verdicts.bootstrap.n_boot")
        v = _get(params, "verdicts.bootstrap.seed")
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= 0, "verdicts.bootstrap.seed", v,
               "an integer >= 0")
    _validate_encoders(params)
    if "01_models" in params:   # 02-05: their stage's Params (STAGE_SCHEMAS) checks them, with check_section
        check_section(params, "01_models", tuple(MODELS_KEYS), MODELS_KEYS)
    for name, where in STAGE_SCHEMAS.items():
        if name in params:
            _stage_schema(where)(params)
    return params


# Sections whose schema lives with their stage: section → "module:callable" (params → raises ConfigError), imported
# only when that section is validated. A stage module's callable is its Params.from_params (a frozen dataclass
# validated in __post_init__, every error naming its key). Each lives in a `<stage>_params` module that imports no
# model library (torch, sklearn, pandas): validating params.yaml takes well under 2 s and starts no kernel.
STAGE_SCHEMAS = {
    "02_activation_quantization": "lib.stages.membership_params:activation_quantization",
    "03_weight_quantization": "lib.stages.membership_params:weight_quantization",
    "04_surrogate_gradients": "lib.stages.membership_params:surrogate_gradients",
    "05_temporal_dynamics": "lib.stages.temporal_params:Params.from_params",
    "06_post_training_quantization": "lib.stages.ptq_privacy_params:Params.from_params",
    "07_gradient_sparsity": "lib.stages.grad_obf_params:Params.from_params",
    "08_attack_ladder": "lib.stages.ladder_params:Params.from_params",
    "09_privacy_utility": "lib.stages.privacy_utility_params:Params.from_params",
    "99_claims": "lib.stages.summary_params:Params.from_params",
}


def _stage_schema(where: str):
    import importlib
    mod, _, attr = where.partition(":")
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------- the SNN grid's sections (01-05): the common frame
# Sections 01_models ... 05_temporal_dynamics share one frame, checked by `check_section`:
#   * the section's own keys, all required: 01_models' are MODELS_KEYS below (checked here); those of 02-05 are the
#     fields of their stage's Params (lib.stages.membership, lib.stages.temporal; registered in STAGE_SCHEMAS),
#     whose __post_init__ checks the values;
#   * the per-family keys FAMILY_KEYS (optional; a null entry or a missing key = inherit the scale's value) —
#     the same checks in every section that takes them (every one but 01_models, which trains the scale's own
#     recipe that later stages reuse);
#   * COMMON_KEYS (curve_eval_size, folders);
#   * `by_scale.<scale>`: replacements of own keys, per-family keys and curve_eval_size, checked by the same code.
# One resolver, `effective`, turns them into the numbers a stage trains with.
SECTIONS = ("01_models", "02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients",
            "05_temporal_dynamics")
FAMILY_KEYS = ("members", "epochs", "seeds", "batch_size")
DIR_KEYS = ("checkpoints_dir", "results_dir", "figures_dir")
COMMON_KEYS = ("curve_eval_size", *DIR_KEYS)
ATTACK_MODES = ("single", "per_class")
# Sections without the per-family keys: 01_models trains the scale's recipe (`scales`, train.batch_size) itself.
SCALE_RECIPE_ONLY = ("01_models",)


def _list_of(key: str, v, allowed) -> None:
    """`v` must be a non-empty list of entries from `allowed`."""
    allowed = list(allowed)
    _check(isinstance(v, list) and v and all(x in allowed for x in v), key, v, f"a non-empty list from {allowed}")


def _is_pos_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


# 01_models' own keys and their checks (key → check(full key, value)); 02-05 check theirs in their Params
MODELS_KEYS = {"datasets": lambda key, v: _list_of(key, v, DATASETS), "kinds": lambda key, v: _list_of(key, v, KINDS)}


def _family_value(key: str, fam: str, x) -> None:
    """One per-family entry `key.<fam>` (key = <where>.<members|epochs|seeds|batch_size>); null = inherit."""
    if x is None:
        return
    if key.rsplit(".", 1)[-1] == "members":
        _check(isinstance(x, list) and len(x) == 2 and all(_is_pos_int(n) and n >= 2 for n in x), f"{key}.{fam}", x,
               "[n_in, n_out] (two integers >= 2) or null (= the scale's n_in / n_out)")
    else:
        _check(_is_pos_int(x), f"{key}.{fam}", x, "a positive integer or null (= the scale's value)")


def _per_family(key: str, v) -> None:
    """`v` must be a mapping {image: ..., tabular: ...} (either may be left out or null)."""
    _check(v is None or isinstance(v, dict), key, v, "a mapping {image: ..., tabular: ...} or null")
    for fam, x in (v or {}).items():
        _check(fam in ("image", "tabular"), f"{key}.{fam}", fam, "a family: image or tabular")
        _family_value(key, fam, x)


def _validate_entries(entries: dict, where: str, allowed: tuple, checks: dict) -> None:
    """Check every entry of a section (where = name) or of one of its by_scale replacements (where = name.by_scale.sc):
    unknown keys, checks[key] where given, the per-family keys, curve_eval_size and the folders."""
    for k, v in entries.items():
        key = f"{where}.{k}"
        if k not in allowed:
            raise ConfigError(f"params.yaml: unknown key `{key}`; expected one of {list(allowed)}")
        if k in checks:
            checks[k](key, v)
        elif k in FAMILY_KEYS:
            _per_family(key, v)
        elif k == "curve_eval_size":
            _check(v is None or _is_pos_int(v), key, v, "a positive integer or null (= train.curve_eval_size)")
        elif k in DIR_KEYS:
            _check(isinstance(v, str) and v, key, v, "a folder path")


def check_section(params: dict, name: str, own: tuple, checks: dict | None = None) -> None:
    """The common frame of a section of the SNN grid (see above): a mapping with its `own` keys and DIR_KEYS present,
    no unknown key (also under `by_scale.<scale>`, which takes own keys, per-family keys and curve_eval_size only),
    valid per-family keys and curve_eval_size, and at the active scale members per model within the scale's pools.
    `checks`: key → check(full key, value) for the own keys whose values are checked here (01_models); a stage's
    Params checks the values of its own keys itself."""
    sec, checks = params[name], checks or {}
    _check(isinstance(sec, dict), name, sec, "a mapping")
    for k in (*own, *DIR_KEYS):
        _get(params, f"{name}.{k}")
    family_keys = () if name in SCALE_RECIPE_ONLY else FAMILY_KEYS
    _validate_entries(sec, name, (*own, *family_keys, *COMMON_KEYS, "by_scale"), checks)
    by = sec.get("by_scale") or {}
    _check(isinstance(by, dict), f"{name}.by_scale", by, f"a mapping with keys from {SCALES}")
    for sc, over in by.items():
        _check(sc in SCALES, f"{name}.by_scale.{sc}", sc, f"a scale: one of {SCALES}")
        _check(over is None or isinstance(over, dict), f"{name}.by_scale.{sc}", over, "a mapping")
        _validate_entries(over or {}, f"{name}.by_scale.{sc}", (*own, *family_keys, "curve_eval_size"), checks)
    # the active scale: a section's members per model can only be a subset of the scale's pools
    scale = params["scale"]
    act, over = section(params, name), (by.get(scale) or {})
    for fam, ds in (("image", "mnist"), ("tabular", "iris")):
        members = (act.get("members") or {}).get(fam)
        base = params["scales"][scale][fam]
        if members and base["n_in"] is not None:
            where = f"{name}.by_scale.{scale}" if (over.get("members") or {}).get(fam) else name
            _check(members[0] <= base["n_in"] and members[1] <= (base["n_out"] or members[1]),
                   f"{where}.members.{fam}", members,
                   f"at most the scale's [n_in, n_out] = [{base['n_in']}, {base['n_out']}] (scales.{scale}.{fam})")


@dataclass(frozen=True, kw_only=True)
class GridSection:
    """A section of the SNN grid (02-05) at one scale: the common frame every stage's Params (lib.stages.membership,
    lib.stages.temporal) extends with its own keys, OWN_KEYS, and checks in __post_init__, naming each key by `key`.

    `from_params` checks the frame (check_section), then builds the section as written (scale None) and with each
    `by_scale.<scale>` replacement applied, so every value is checked where it is written, and returns the active
    scale's. `per_family` is what `effective` reads of it."""
    name: str
    members: dict | None = None       # per family (image / tabular): [n_in, n_out]; null = the scale's
    epochs: dict | None = None
    seeds: dict | None = None
    batch_size: dict | None = None
    curve_eval_size: int | None = None
    checkpoints_dir: str | None = None
    results_dir: str | None = None
    figures_dir: str | None = None
    scale: str | None = None          # whose `by_scale` replacements are applied (None: the section as written)
    replaced: dict = field(default_factory=dict)   # the keys those replacements change, with their values
    written: tuple = field(default=(), repr=False, compare=False)   # the keys they write (errors are named there)
    OWN_KEYS = ()                     # (class attribute) the section's own keys, all required

    @classmethod
    def own_keys(cls, name: str) -> tuple:
        """Section `name`'s own keys (OWN_KEYS; a Params that serves several sections looks them up)."""
        return cls.OWN_KEYS

    def key(self, k: str) -> str:
        """The params.yaml key a value of this section is written under."""
        return f"{self.name}.by_scale.{self.scale}.{k}" if k in self.written else f"{self.name}.{k}"

    @property
    def per_family(self) -> dict:
        """The per-family keys and curve_eval_size at this scale, as `effective` reads a section."""
        return {k: getattr(self, k) for k in (*FAMILY_KEYS, "curve_eval_size")}

    @classmethod
    def from_params(cls, params: dict, name: str, **extra):
        """Section `name` at the active scale, every scale's replacements checked; `extra`: more fields."""
        check_section(params, name, cls.own_keys(name))
        raw = params[name]
        views = [(None, {**{k: v for k, v in raw.items() if k != "by_scale"}, "replaced": {}})]
        views += [(sc, _at_scale(raw, sc)) for sc in (raw.get("by_scale") or {})]
        built = {sc: cls._of(name, sec, sc, raw, extra) for sc, sec in views}
        return built.get(params["scale"]) or cls._of(name, section(params, name), params["scale"], raw, extra)

    @classmethod
    def _of(cls, name: str, sec: dict, scale: str | None, raw: dict, extra: dict):
        own = {k: tuple(sec[k]) if isinstance(sec[k], list) else sec[k] for k in cls.own_keys(name)}
        common = {k: sec.get(k) for k in (*FAMILY_KEYS, "curve_eval_size", *DIR_KEYS)}
        written = tuple(((raw.get("by_scale") or {}).get(scale) or {}) if scale else ())
        return cls(name=name, **own, **common, **extra, scale=scale, replaced=dict(sec.get("replaced") or {}),
                   written=written)


# ---------------------------------------------------------------- schemas of their own (06, 07, 08, 99)
# A section with its own schema: `by_scale.<scale>` replaces whole top-level entries (a replaced mapping is given in
# full), checked by the same rules. Each lives with its stage (the `Params` of STAGE_SCHEMAS); the helpers below
# are shared.


def _num(x, lo=None, hi=None, integer=False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and (not integer or isinstance(x, int))
    return ok and (lo is None or x >= lo) and (hi is None or x <= hi)


def check_block(v, where: str, schema: dict) -> None:
    """A nested block of a section (e.g. 06's `ptq`) against its schema: sub-key → (check(value) → bool, what is
    expected) or a nested schema. Exactly the schema's keys; every error names the full key path and the bad value
    alone, e.g. `06_post_training_quantization.ptq.iters.adaround` = -1, never the whole block."""
    _check(isinstance(v, dict), where, v, f"a mapping with the keys {list(schema)}")
    for k in v:
        if k not in schema:
            raise ConfigError(f"params.yaml: unknown key `{where}.{k}`; expected one of {list(schema)}")
    for k, spec in schema.items():
        if k not in v:
            raise ConfigError(f"params.yaml: missing key `{where}.{k}`")
        if isinstance(spec, dict):
            check_block(v[k], f"{where}.{k}", spec)
        else:
            _check(bool(spec[0](v[k])), f"{where}.{k}", v[k], spec[1])


def _schema_entries(sec: dict, where: str, checks: dict, expected: dict) -> None:
    """Check each entry of a section with its own schema (06, 07): folder keys, unknown keys, checks[key](value)
    or, where checks[key] is a mapping, check_block's nested schema."""
    for k, v in sec.items():
        if k in DIR_KEYS:
            _check(isinstance(v, str) and v, f"{where}.{k}", v, "a folder path")
            continue
        if k not in checks:
            raise ConfigError(f"params.yaml: unknown key `{where}.{k}`; expected one of {[*checks, *DIR_KEYS]}")
        if isinstance(checks[k], dict):
            check_block(v, f"{where}.{k}", checks[k])
            continue
        _check(bool(checks[k](v)), f"{where}.{k}", v, expected.get(k, "a positive integer"))


def _at_scale(sec: dict, scale: str) -> dict:
    """A copy of a section with its `by_scale.<scale>` entries applied (`replaced`: those that differ)."""
    sec = copy.deepcopy(sec)
    over = (sec.pop("by_scale", None) or {}).get(scale) or {}
    sec["replaced"] = {k: v for k, v in over.items() if sec.get(k) != v}
    sec.update(copy.deepcopy(over))
    return sec


def section(params: dict, name: str) -> dict:
    """params[name] with its `by_scale.<active scale>` entries applied: the grid the stage runs now.
    `replaced` lists the keys that differ from the full (paper) grid."""
    return _at_scale(params[name], params["scale"])


def section_values(sec: dict | None, dataset: str) -> dict:
    """The per-family values a section at the active scale (`section(...)`'s result) sets for `dataset`'s family,
    in `effective`'s names: n_in, n_out (from members), epochs, n_seeds (from seeds), batch_size, and the
    section-wide curve_eval_size. Null or missing entries are left out (= inherit). The middle layer of `effective`."""
    sec, fam, out = sec or {}, family(dataset), {}
    members = (sec.get("members") or {}).get(fam)
    if members:
        out["n_in"], out["n_out"] = members
    for key, name in (("epochs", "epochs"), ("seeds", "n_seeds"), ("batch_size", "batch_size")):
        v = (sec.get(key) or {}).get(fam)
        if v:
            out[name] = v
    if sec.get("curve_eval_size"):
        out["curve_eval_size"] = sec["curve_eval_size"]
    return out


def effective(params: dict, section: str | dict | None, dataset: str) -> dict:
    """The settings `dataset` is trained with in `section` at the active scale — the one resolver of the pipeline.

    Layers, each replacing the one before: the scale's values (`scales.<scale>`, train.batch_size,
    train.curve_eval_size) ← the section's per-family keys (members [n_in, n_out], epochs, seeds, batch_size;
    null = inherit) and curve_eval_size ← that section's `by_scale.<scale>` replacements.

    section: a section's name; a section dict (its `by_scale` is applied when present, so `section(...)`'s result
    and a raw params[name] give the same); or None for the scale alone (what `unit` starts from).
    Returns n_in, n_out (None = the whole half of the pool), epochs, seeds (list), batch_size, steps, family,
    reduced (the section's members differ from the scale's: its splits are subsets of 00_data's), scale,
    curve_eval_size."""
    fam, scale = family(dataset), params["scale"]
    sc, tr = params["scales"][scale], params["train"]
    out = {"n_in": sc[fam]["n_in"], "n_out": sc[fam]["n_out"], "epochs": sc[fam]["epochs"], "n_seeds": sc["seeds"][fam],
           "batch_size": tr["batch_size"][fam], "curve_eval_size": tr["curve_eval_size"]}
    if isinstance(section, str):
        section = params[section]
    sec = _at_scale(section, scale) if section and "by_scale" in section else section
    own = section_values(sec, dataset)
    reduced = "n_in" in own and (own["n_in"], own["n_out"]) != (out["n_in"], out["n_out"])
    out.update(own)
    return {"n_in": out["n_in"], "n_out": out["n_out"], "epochs": out["epochs"],
            "seeds": [tr["seed"] + i for i in range(out["n_seeds"])], "batch_size": out["batch_size"],
            "steps": sc["steps"], "family": fam, "reduced": reduced, "scale": scale,
            "curve_eval_size": out["curve_eval_size"]}


def _validate_execution(params: dict) -> None:
    """The `execution` section: where units run, never what they are (lib.core.executor.Settings checks it, naming
    `execution.<key>`). Optional: absent = this process, one worker."""
    from .executor import EXECUTION_KEYS, Settings
    for key in EXECUTION_KEYS:
        if key in params["train"]:
            raise ConfigError(f"params.yaml: `train.{key}` moved to `execution.{key}` (where units run is not part of "
                              "how they are trained)")
    Settings.from_params(params)


def load(path: str | Path = "params.yaml", scale: str | None = None) -> dict:
    """Read and validate params.yaml; `scale` (e.g. from papermill) overrides its `scale` key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found (run from the repository root)")
    params = yaml.safe_load(path.read_text())
    if scale is not None:
        params["scale"] = scale
    return validate(params)


def family(dataset: str) -> str:
    return "image" if dataset in IMAGE_DATASETS else "tabular"


def scale_settings(params: dict, dataset: str) -> dict:
    """The scale's own settings of `dataset` (no section): `effective(params, None, dataset)` plus n_seeds."""
    e = effective(params, None, dataset)
    return {**e, "n_seeds": len(e["seeds"])}


# ---------------------------------------------------------------- encoders (paper B)
def _validate_encoders(params: dict) -> None:
    from .encoder_constants import check_constants   # torch-free: the encoders' own checks
    for name, consts in (params.get("encoders") or {}).items():
        _check(name in ENCODINGS, f"encoders.{name}", name, f"encoder names from {ENCODINGS}")
        _check(consts is None or isinstance(consts, dict), f"encoders.{name}", consts, "a mapping of constants")
        try:
            check_constants(name, **(consts or {}))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"params.yaml: `encoders.{name}`: {err}") from None


def main(argv: list[str] | None = None) -> int:
    """`python -m lib.core.config [params.yaml ...]`: load and validate each file (no kernel, no training, no DVC);
    print "<file>: valid" or the error. Exit status 1 when any file is invalid (`make repro` runs this first, so a
    typo stops the run before `dvc repro` deletes any stage's outputs)."""
    import sys
    status = 0
    for path in (argv if argv is not None else sys.argv[1:]) or ["params.yaml"]:
        try:
            load(path)
        except ConfigError as err:
            print(f"{path}: invalid\n{err}", file=sys.stderr)
            status = 1
        else:
            print(f"{path}: valid")
    return status


# The unit builder (what one trained model is) lives in lib.core.units; these names stay importable from here.
from .units import init_seed, seeds, unit  # noqa: E402,F401


if __name__ == "__main__":
    # run as lib.core.config (not this __main__ copy), so that the stage schemas raise this very ConfigError
    from lib.core.config import main as _main
    raise SystemExit(_main())
