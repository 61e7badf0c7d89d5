"""params.yaml: loading, validation (before any training) and the resolved settings of one scale.

Every check raises `ConfigError` naming the offending key, e.g. `model.snn.surrogate`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# the names params.yaml may use, from the one light module that holds them (no model library is imported here)
from .vocab import (CIFAR10_SOURCES, DATASETS, ENCODINGS, IMAGE_DATASETS, KINDS, READOUTS,  # noqa: F401
                    SPLIT_MODES, SURROGATES)

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


def validate(params: dict) -> dict:
    """Check every value the pipeline uses; return params unchanged."""
    _check(_get(params, "scale") in SCALES, "scale", params.get("scale"), f"one of {SCALES}")
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
    for name in _get(params, "surrogates"):
        _check(name in SURROGATES, f"surrogates.{name}", name, f"surrogate names from {sorted(SURROGATES)}")
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
    _validate_execution(params)
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
        _check(isinstance(v, dict) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
                                                 for x in v.values()), "verdicts.margins", v,
               "a mapping {metric: positive margin}")
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
# validated in __post_init__, every error naming its key).
STAGE_SCHEMAS = {
    "02_activation_quantization": "lib.stages.membership:activation_quantization",
    "03_weight_quantization": "lib.stages.membership:weight_quantization",
    "04_surrogate_gradients": "lib.stages.membership:surrogate_gradients",
    "05_temporal_dynamics": "lib.stages.temporal:Params.from_params",
    "06_post_training_quantization": "lib.stages.ptq_privacy:Params.from_params",
    "07_gradient_sparsity": "lib.stages.grad_obf_params:Params.from_params",
    "08_attack_ladder": "lib.stages.ladder_params:Params.from_params",
    "99_claims": "lib.stages.summary:Params.from_params",
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


def _schema_entries(sec: dict, where: str, checks: dict, expected: dict) -> None:
    """Check each entry of a section with its own schema (06, 07): folder keys, unknown keys, checks[key](value)."""
    for k, v in sec.items():
        if k in DIR_KEYS:
            _check(isinstance(v, str) and v, f"{where}.{k}", v, "a folder path")
            continue
        if k not in checks:
            raise ConfigError(f"params.yaml: unknown key `{where}.{k}`; expected one of {[*checks, *DIR_KEYS]}")
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


def init_seed(unit: dict) -> int:
    """The seed of a unit's initialization, shuffling, augmentation and encoder noise: `init_seed` for shadows
    (seed + train.shadow_seed_offset), else its `seed` (which also names its membership split)."""
    return int(unit.get("init_seed", unit["seed"]))


def seeds(params: dict, dataset: str, section: str | dict | None = None) -> list[int]:
    """The seeds of `dataset` in `section` at the active scale (`effective(...)["seeds"]`)."""
    return effective(params, section, dataset)["seeds"]


def unit(params: dict, dataset: str, kind: str, role: str, seed: int, **overrides) -> dict:
    """The complete description of one trained model (a cache unit): everything that changes its weights.

    overrides: weight_bits, act_bits, act_threshold, surrogate, surrogate_kwargs, encoding, encoding_kwargs,
    epochs, ... (any key of the returned dict); for SNNs also `quant_output` (bool, default true: with act_bits,
    state_quant acts on the output LIF layer's membrane too). `quant_output` enters the unit only when it changes
    the model (false together with act_bits), so every other unit — and its checkpoint key — stays as it was.
    """
    quant_output = overrides.pop("quant_output", True)
    if kind == "snn" and not isinstance(quant_output, bool):
        raise ConfigError(f"model setting `quant_output` must be true or false, got {quant_output!r}")
    if role not in ("target", "shadow"):
        raise ConfigError(f"role must be `target` or `shadow`, got {role!r}")
    if kind not in KINDS:
        raise ConfigError(f"`kinds` entries must be one of {KINDS}, got {kind!r}")
    s = effective(params, None, dataset)   # the scale's values; a section's own values come in as overrides
    d, m, tr = params["00_data"], params["model"], params["train"]
    u = {
        "dataset": dataset, "kind": kind, "role": role, "seed": int(seed),
        "arch": "convnet" if s["family"] == "image" else "fcnet",
        "n_in": s["n_in"], "n_out": s["n_out"],
        "hidden": m["hidden"], "channels": list(m["conv_channels"]), "kernel": m["conv_kernel"],
        "padding": m["conv_padding"],
        "weight_bits": None, "act_bits": None, "act_threshold": None,
        "optimizer": tr["optimizer"], "lr": tr["lr"][kind], "weight_decay": tr["weight_decay"],
        "batch_size": s["batch_size"], "epochs": s["epochs"],
        # transfer learning: start from another trained unit's weights ({"dataset", "key"}), and keep the
        # layers listed in `frozen` (indices into Net.ops, e.g. [0, 1] = the two conv layers) fixed
        "init_from": None, "frozen": [],
    }
    if dataset == "cifar10":
        u["cifar10_source"] = d["cifar10_source"]
    if role == "shadow":  # the target's pools do not depend on the split mode; the shadow's do
        u["split_mode"] = d["split_mode"]
        # Threat model: the attacker's shadow does not share the target's initialization and batch order. `seed`
        # still names the split file (the shadow pools of that seed); weights, shuffling and encoder noise come
        # from init_seed. (Target units have no init_seed key, so their checkpoint keys are unchanged.)
        u["init_seed"] = int(seed) + int(tr["shadow_seed_offset"])
        if d["split_mode"] == "as_published":
            u["shadow_fractions"] = [d["shadow_member_fraction"], d["shadow_nonmember_fraction"]]
    if kind == "snn":
        sn = m["snn"]
        u.update(beta=sn["beta"], threshold=sn["threshold"], steps=s["steps"], surrogate=sn["surrogate"],
                 surrogate_kwargs=dict(params["surrogates"].get(sn["surrogate"], {})),
                 encoding=sn["encoding"], encoding_kwargs=dict(params.get("encoders", {}).get(sn["encoding"]) or {}),
                 readout=sn["readout"])
    for k, v in overrides.items():
        if k not in u and not (kind == "snn" and k in ("surrogate_kwargs", "encoding_kwargs")):
            raise ConfigError(f"unknown model setting `{k}` for a {kind} unit")
        u[k] = v
    if quant_output is not True:
        if kind != "snn":
            raise ConfigError(f"unknown model setting `quant_output` for a {kind} unit (ANN outputs are never quantized)")
        if u["act_bits"]:   # without act_bits nothing is quantized: the unit is the full-precision one
            u["quant_output"] = False
    if kind == "snn" and "surrogate" in overrides and "surrogate_kwargs" not in overrides:
        u["surrogate_kwargs"] = dict(params["surrogates"].get(u["surrogate"], {}))
    if kind == "snn" and "encoding" in overrides and "encoding_kwargs" not in overrides:
        u["encoding_kwargs"] = dict(params.get("encoders", {}).get(u["encoding"]) or {})
    if kind == "snn" and u["surrogate"] not in SURROGATES:
        raise ConfigError(f"unknown surrogate {u['surrogate']!r} (parameter `surrogate`); choose one of {sorted(SURROGATES)}")
    if kind == "snn" and u["encoding"] not in ENCODINGS:
        raise ConfigError(f"unknown encoding {u['encoding']!r} (parameter `encoding`); choose one of {ENCODINGS}")
    return copy.deepcopy(u)


# ---------------------------------------------------------------- encoders (paper B)
def _validate_encoders(params: dict) -> None:
    from .encoders import build_encoder
    for name, consts in (params.get("encoders") or {}).items():
        _check(name in ENCODINGS, f"encoders.{name}", name, f"encoder names from {ENCODINGS}")
        _check(consts is None or isinstance(consts, dict), f"encoders.{name}", consts, "a mapping of constants")
        try:
            build_encoder(name, **(consts or {}))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"params.yaml: `encoders.{name}`: {err}") from None
