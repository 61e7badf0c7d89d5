"""params.yaml: loading, validation (before any training) and the resolved settings of one scale.

Every check raises `ConfigError` naming the offending key, e.g. `model.snn.surrogate`.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .data import CIFAR10_SOURCES, DATASETS, IMAGE_DATASETS, SPLIT_MODES
from .models import KINDS, READOUTS
from .neurons import SURROGATES

SCALES = ("smoke", "quick", "paper")
ENCODINGS = ("direct", "rate", "regular_rate", "poisson_burst", "delayed_burst")
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
    _validate_executor(params)
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
    for name in SECTIONS:
        if name in params:
            _validate_section(params, name)
    for name, where in STAGE_SCHEMAS.items():
        if name in params:
            _stage_schema(where)(params)
    return params


# Sections whose schema lives with their stage: section → "module:callable" (params → raises ConfigError), imported
# only when that section is validated. A stage module's callable is its Params.from_params (a frozen dataclass
# validated in __post_init__, every error naming its key).
STAGE_SCHEMAS = {
    "06_post_training_quantization": "lib.core.config:_validate_ptq",
    "07_gradient_sparsity": "lib.core.config:_validate_grad",
    "08_attack_ladder": "lib.core.config:_validate_ladder",
    "99_claims": "lib.core.config:_validate_claims",
}


def _stage_schema(where: str):
    import importlib
    mod, _, attr = where.partition(":")
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------- stage sections: keys, validation, resolution
# Every stage section (01_models ... 05_temporal_dynamics) is checked by one validator, `_validate_section`:
#   * its own grid keys (table SECTIONS: key → check), all required;
#   * the per-family keys FAMILY_KEYS (optional; a null entry or a missing key = inherit the scale's value) —
#     the same checks in every section that takes them (every one but 01_models, which trains the scale's own
#     recipe that later stages reuse);
#   * COMMON_KEYS (workers, curve_eval_size, folders);
#   * `by_scale.<scale>`: replacements of grid keys, per-family keys and curve_eval_size, checked by the same code.
# One resolver, `effective`, turns them into the numbers a stage trains with.
FAMILY_KEYS = ("members", "epochs", "seeds", "batch_size")
DIR_KEYS = ("checkpoints_dir", "results_dir", "figures_dir")
COMMON_KEYS = ("workers", "curve_eval_size", *DIR_KEYS)
ATTACK_MODES = ("single", "per_class")


def _list_of(key: str, v, allowed) -> None:
    """`v` must be a non-empty list of entries from `allowed`."""
    allowed = list(allowed)
    _check(isinstance(v, list) and v and all(x in allowed for x in v), key, v, f"a non-empty list from {allowed}")


def _is_pos_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _bool(key, v, params) -> None:
    _check(isinstance(v, bool), key, v, "true or false")


def _bits(key, v, params) -> None:
    _check(isinstance(v, list) and v and all(isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 16 for b in v),
           key, v, "a non-empty list of integers in [2, 16]")


def _thresholds(key, v, params) -> None:
    _check(isinstance(v, list) and v and all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0
                                            for t in v), key, v, "a non-empty list of positive numbers")


def _transfer(key, v, params) -> None:
    ok = isinstance(v, dict) and set(v) == {"source", "target", "frozen"} and v["source"] in IMAGE_DATASETS \
        and v["target"] in IMAGE_DATASETS and isinstance(v["frozen"], list) and all(
            isinstance(i, int) and 0 <= i < 4 for i in v["frozen"])
    _check(ok, key, v, "{source: image set, target: image set, frozen: [layer indices 0-3]}")


def _sweep(key, v, params) -> None:
    from .encoders import build_encoder
    ok = isinstance(v, dict) and isinstance(v.get("datasets"), list) and all(d in DATASETS for d in v["datasets"])
    _check(ok, f"{key}.datasets", (v or {}).get("datasets") if isinstance(v, dict) else v, "a list of datasets")
    for enc, grid in v.items():
        if enc == "datasets":
            continue
        _check(enc in ("poisson_burst", "delayed_burst", "rate") and isinstance(grid, dict), f"{key}.{enc}",
               grid, "a mapping {constant: [values]} of a stochastic encoder")
        for const, values in grid.items():
            _check(isinstance(values, list) and values, f"{key}.{enc}.{const}", values, "a non-empty list")
            for x in values:
                try:
                    build_encoder(enc, **{**(params.get("encoders", {}).get(enc) or {}), const: x})
                except (TypeError, ValueError) as err:
                    raise ConfigError(f"params.yaml: `{key}.{enc}.{const}` = {x!r}: {err}") from None


def _efficiency(key, v, params) -> None:
    ok = isinstance(v, dict) and set(v) == {"spike_samples", "rss_interval"} and _is_pos_int(v["spike_samples"]) \
        and isinstance(v["rss_interval"], (int, float)) and not isinstance(v["rss_interval"], bool) \
        and v["rss_interval"] > 0
    _check(ok, key, v, "{spike_samples: positive integer, rss_interval: seconds > 0}")


_DATASETS = lambda key, v, params: _list_of(key, v, DATASETS)   # noqa: E731
_KINDS = lambda key, v, params: _list_of(key, v, KINDS)          # noqa: E731

# Each section's own grid keys and their checks (all required). A section listed here is validated when present.
SECTIONS = {
    "01_models": {"datasets": _DATASETS, "kinds": _KINDS},
    "02_activation_quantization": {"datasets": _DATASETS, "kinds": _KINDS, "bits": _bits, "thresholds": _thresholds,
                                   "output_layer_variant": _bool},
    "03_weight_quantization": {"datasets": _DATASETS, "kinds": _KINDS, "bits": _bits},
    "04_surrogate_gradients": {"datasets": _DATASETS,
                               "surrogates": lambda key, v, params: _list_of(key, v, sorted(SURROGATES)),
                               "spike_rate_escape_legacy": _bool, "triangular_true": _bool},
    "05_temporal_dynamics": {"datasets": _DATASETS,
                             "encodings": lambda key, v, params: _list_of(key, v, ENCODINGS),
                             "baseline": lambda key, v, params: _check(v in ENCODINGS, key, v, f"one of {ENCODINGS}"),
                             "trace_attack": _bool, "transfer": _transfer, "sweep": _sweep, "efficiency": _efficiency},
}
# Sections without the per-family keys: 01_models trains the scale's recipe (`scales`, train.batch_size) itself.
SCALE_RECIPE_ONLY = ("01_models",)


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


def _validate_entries(params: dict, name: str, entries: dict, where: str, allowed: tuple) -> None:
    """Check every entry of a section (where = name) or of one of its by_scale replacements (where = name.by_scale.sc)."""
    grid = SECTIONS[name]
    for k, v in entries.items():
        key = f"{where}.{k}"
        if k not in allowed:
            raise ConfigError(f"params.yaml: unknown key `{key}`; expected one of {list(allowed)}")
        if k in grid:
            grid[k](key, v, params)
        elif k in FAMILY_KEYS:
            _per_family(key, v)
        elif k == "curve_eval_size":
            _check(v is None or _is_pos_int(v), key, v, "a positive integer or null (= train.curve_eval_size)")
        elif k == "workers":
            _check(_is_pos_int(v), key, v, "a positive integer")
        elif k in DIR_KEYS:
            _check(isinstance(v, str) and v, key, v, "a folder path")


def _validate_section(params: dict, name: str) -> None:
    sec, grid = params[name], SECTIONS[name]
    _check(isinstance(sec, dict), name, sec, "a mapping")
    for k in (*grid, *DIR_KEYS):
        _get(params, f"{name}.{k}")
    family_keys = () if name in SCALE_RECIPE_ONLY else FAMILY_KEYS
    _validate_entries(params, name, sec, name, (*grid, *family_keys, *COMMON_KEYS, "by_scale"))
    by = sec.get("by_scale") or {}
    _check(isinstance(by, dict), f"{name}.by_scale", by, f"a mapping with keys from {SCALES}")
    for sc, over in by.items():
        _check(sc in SCALES, f"{name}.by_scale.{sc}", sc, f"a scale: one of {SCALES}")
        _check(over is None or isinstance(over, dict), f"{name}.by_scale.{sc}", over, "a mapping")
        _validate_entries(params, name, over or {}, f"{name}.by_scale.{sc}", (*grid, *family_keys, "curve_eval_size"))
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
    if name == "05_temporal_dynamics":
        # the active grid must be runnable: transfer and sweep datasets are trained in the main grid
        for ds in (act["transfer"]["source"], act["transfer"]["target"], *act["sweep"]["datasets"]):
            _check(ds in act["datasets"], f"{name}.datasets", act["datasets"],
                   f"a list that includes {ds} (used by `transfer` / `sweep` at scale {scale})")
        _check(act["baseline"] in act["encodings"], f"{name}.encodings", act["encodings"],
               f"a list that includes the baseline {act['baseline']!r}")


# ---------------------------------------------------------------- 06_post_training_quantization (paper C)
# Its own schema: CIFAR ResNets under LiRA share nothing with the SNN grid's per-family keys. `by_scale.<scale>`
# replaces whole top-level entries (a replaced mapping is given in full), checked by the same rules.
PTQ_SECTION = "06_post_training_quantization"
PTQ_METHODS = ("rtn", "adaround", "brecq", "obc")
LIRA_VARIANTS = ("paper", "authors")
PTQ_DATASETS = ("cifar10", "cifar100", "tinyimagenet")


def _num(x, lo=None, hi=None, integer=False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and (not integer or isinstance(x, int))
    return ok and (lo is None or x >= lo) and (hi is None or x <= hi)


def _ptq_entries(sec: dict, where: str) -> None:
    from .ptq import LEVELS   # the bit widths with a defined grid
    bits_ok = lambda v: isinstance(v, list) and v and all(b in LEVELS for b in v)   # noqa: E731
    bits_txt = f"a non-empty list from {sorted(LEVELS)}"
    checks = {
        "dataset": lambda v: v == "cifar10", "not_run": lambda v: isinstance(v, list) and set(v) <= set(PTQ_DATASETS),
        "pool": lambda v: v is None or _num(v, 16, 50000, True), "models": lambda v: _num(v, 3, None, True),
        "targets": lambda v: _num(v, 1, None, True), "pkeep": lambda v: _num(v, 0.0) and 0 < v < 1,
        "n_test": lambda v: v is None or _num(v, 16, 10000, True), "stack": lambda v: v is None or _num(v, 1, None, True),
        "seed": lambda v: _num(v, 0, None, True),
        "arch": lambda v: isinstance(v, dict) and set(v) == {"blocks", "widths"} and len(v["blocks"]) == len(
            v["widths"]) and all(_is_pos_int(b) for b in v["blocks"] + v["widths"]),
        "training": lambda v: isinstance(v, dict) and set(v) == {"epochs", "batch_size", "lr", "momentum",
                                                                 "weight_decay", "augment"}
        and _is_pos_int(v["epochs"]) and _is_pos_int(v["batch_size"]) and _num(v["lr"], 0) and _num(v["momentum"], 0, 1)
        and _num(v["weight_decay"], 0) and isinstance(v["augment"], bool),
        "lira": lambda v: isinstance(v, dict) and set(v) == {"queries", "variant", "fix_variance", "fprs"}
        and isinstance(v["queries"], list) and v["queries"]
        and all(q in ("none", "flip") or (isinstance(q, int) and not isinstance(q, bool)) for q in v["queries"])
        and v["variant"] in LIRA_VARIANTS and isinstance(v["fix_variance"], bool)
        and isinstance(v["fprs"], list) and all(_num(f) and 0 < f < 1 for f in v["fprs"]),
        "ptq": lambda v: isinstance(v, dict) and set(v) == {"methods", "bits", "calibration", "obc_calibration",
                                                            "iters", "reg", "scale_method", "runs", "runs_bits",
                                                            "bn_source", "bn_leak_bits", "decoupled"}
        and isinstance(v["methods"], list) and v["methods"] and set(v["methods"]) <= set(PTQ_METHODS)
        and bits_ok(v["bits"]) and _is_pos_int(v["calibration"]) and _is_pos_int(v["obc_calibration"])
        and isinstance(v["iters"], dict) and set(v["iters"]) == {"adaround", "brecq"}
        and all(_is_pos_int(i) for i in v["iters"].values()) and isinstance(v["reg"], dict)
        and set(v["reg"]) == {"adaround", "brecq"} and all(_num(r, 0) for r in v["reg"].values())
        and v["scale_method"] in ("mse", "minmax") and _is_pos_int(v["runs"])
        and (v["runs_bits"] == [] or bits_ok(v["runs_bits"]))
        and v["bn_source"] in ("members", "train") and (v["bn_leak_bits"] == [] or bits_ok(v["bn_leak_bits"]))
        and isinstance(v["decoupled"], dict) and set(v["decoupled"]) == {"last_bits", "bits"}
        and v["decoupled"]["last_bits"] in LEVELS and (v["decoupled"]["bits"] == [] or bits_ok(v["decoupled"]["bits"])),
        "adaptive": lambda v: isinstance(v, dict) and set(v) == {"methods", "bits"} and set(v["methods"]) <= set(
            PTQ_METHODS) and (v["bits"] == [] or bits_ok(v["bits"])),
        "rmia": lambda v: isinstance(v, dict) and set(v) == {"references", "offline_a", "gamma", "population"}
        and isinstance(v["references"], list) and all(_is_pos_int(r) for r in v["references"])
        and _num(v["offline_a"], 0, 1) and _num(v["gamma"], 0) and _num(v["population"], 1, 10000, True),
        "shadow_counts": lambda v: isinstance(v, list) and all(_num(c, 1, None, True) for c in v),
    }
    expected = {"arch": "{blocks: [n per stage], widths: [channels per stage]} of equal length",
                "training": "{epochs, batch_size, lr, momentum in [0, 1], weight_decay, augment}",
                "lira": "{queries: list of none | flip | int (a seeded training augmentation), variant: paper|authors, fix_variance: bool, fprs in (0, 1)}",
                "ptq": f"{{methods ⊆ {list(PTQ_METHODS)}, bits/bn_leak_bits/decoupled.bits: {bits_txt}, "
                       "calibration, obc_calibration, iters: {adaround, brecq}, reg: {adaround, brecq}, scale_method: mse|minmax, runs, runs_bits, bn_source: members|train, "
                       "decoupled: {last_bits, bits}}",
                "adaptive": f"{{methods ⊆ {list(PTQ_METHODS)}, bits: {bits_txt}}}",
                "rmia": "{references: [positive integers], offline_a in [0, 1], gamma > 0, population ≤ 10000}",
                "pool": "null or an integer in [16, 50000]", "n_test": "null or an integer in [16, 10000]",
                "dataset": "cifar10 (the only one of paper C's datasets in the mirror)",
                "not_run": f"a list from {list(PTQ_DATASETS)}", "models": "an integer >= 3",
                "pkeep": "a number in (0, 1)", "shadow_counts": "a list of positive integers",
                "stack": "null (one by one on a CPU, 16 on CUDA) or a positive integer"}
    _schema_entries(sec, where, checks, expected)


def _schema_entries(sec: dict, where: str, checks: dict, expected: dict) -> None:
    """Check each entry of a section with its own schema (06, 07): folder keys, unknown keys, checks[key](value)."""
    for k, v in sec.items():
        if k in DIR_KEYS:
            _check(isinstance(v, str) and v, f"{where}.{k}", v, "a folder path")
            continue
        if k not in checks:
            raise ConfigError(f"params.yaml: unknown key `{where}.{k}`; expected one of {[*checks, *DIR_KEYS]}")
        _check(bool(checks[k](v)), f"{where}.{k}", v, expected.get(k, "a positive integer"))


def _own_schema(params: dict, name: str, entries, required) -> tuple[dict, dict]:
    """A section with its own schema: the section and each `by_scale.<scale>` replacement checked by `entries`,
    every `required` key present; returns (the section at the active scale, its by_scale mapping)."""
    sec = params[name]
    _check(isinstance(sec, dict), name, sec, "a mapping")
    by = sec.get("by_scale") or {}
    _check(isinstance(by, dict) and set(by) <= set(SCALES), f"{name}.by_scale", by, f"a mapping with keys from {SCALES}")
    entries({k: v for k, v in sec.items() if k != "by_scale"}, name)
    for sc, over in by.items():
        entries(over or {}, f"{name}.by_scale.{sc}")
    for k in required:
        _get(params, f"{name}.{k}")
    return section(params, name), by


def _validate_ptq(params: dict) -> None:
    name = PTQ_SECTION
    act, by = _own_schema(params, name, _ptq_entries, (
        "dataset", "models", "targets", "pkeep", "arch", "training", "lira", "ptq", "adaptive", "rmia",
        "shadow_counts", "stack", "seed", "pool", "n_test"))
    where = f"{name}.by_scale.{params['scale']}" if params["scale"] in by else name
    _check(act["targets"] <= act["models"], f"{where}.targets", act["targets"], f"at most models = {act['models']}")
    _check(int(act["pkeep"] * (act["models"] - 1)) >= 1, f"{where}.models", act["models"],
           "enough models that every example is IN and OUT of at least one shadow")
    _check(all(c < act["models"] for c in act["shadow_counts"]), f"{where}.shadow_counts", act["shadow_counts"],
           f"counts below models = {act['models']} (a target's shadows are the other models)")
    _check(act["ptq"]["calibration"] <= act["pkeep"] * (act["pool"] or 50000), f"{where}.ptq.calibration",
           act["ptq"]["calibration"], "at most the members of one model (pkeep · pool)")


# ---------------------------------------------------------------- 07_gradient_sparsity (paper D)
# Its own schema, checked like 06's: `by_scale.<scale>` replaces whole top-level entries.
GRAD_SECTION = "07_gradient_sparsity"
GRAD_DATASETS = ("cifar10", "cifar100", "cifar10dvs")
GRAD_KINDS = ("sew", "spiking", "ann")
GRAD_ARCHS = ("resnet18", "resnet34", "resnet50")                   # = lib.core.sew.ARCHS (tested)
GRAD_SURROGATES = ("atan", "erf", "piecewise_quadratic", "sigmoid")  # = lib.core.sew.SURROGATES (tested)


def _grad_entries(sec: dict, where: str) -> None:
    ARCHS, SURROGATES = GRAD_ARCHS, GRAD_SURROGATES   # literal: validation must not import spikingjelly
    model_ok = lambda m: isinstance(m, dict) and set(m) == {"name", "kind", "arch", "pool"} and isinstance(  # noqa: E731
        m["name"], str) and m["name"] and m["kind"] in GRAD_KINDS and m["arch"] in ARCHS and m["pool"] in ("max", "avg")
    eps_ok = lambda e: _num(e, 0, 255) and e > 0   # noqa: E731
    checks = {
        "dataset": lambda v: v == "cifar10", "not_run": lambda v: isinstance(v, list) and set(v) <= set(GRAD_DATASETS),
        "models": lambda v: isinstance(v, list) and v and all(model_ok(m) for m in v)
        and len({m["name"] for m in v}) == len(v),
        "width": lambda v: _num(v, 1, None, True), "stem": lambda v: v in ("imagenet", "cifar"),
        "blocks": lambda v: v is None or (isinstance(v, list) and len(v) == 4 and all(_is_pos_int(b) for b in v)),
        "T": lambda v: _num(v, 1, None, True), "K": lambda v: _num(v, 1, 8, True),
        "n_train": lambda v: v is None or _num(v, 16, 50000, True), "n_test": lambda v: v is None or _num(v, 16, 10000, True),
        "attacked": lambda v: v is None or _num(v, 1, 10000, True),
        "seeds": lambda v: isinstance(v, list) and v and all(_num(x, 0, None, True) for x in v) and len(set(v)) == len(v),
        "seed": lambda v: _num(v, 0, None, True),
        "training": lambda v: isinstance(v, dict) and set(v) == {"epochs", "batch_size", "lr", "weight_decay", "flip"}
        and _is_pos_int(v["epochs"]) and _num(v["batch_size"], 2, None, True) and _num(v["lr"], 0) and v["lr"] > 0
        and _num(v["weight_decay"], 0) and isinstance(v["flip"], bool),
        "attack": lambda v: isinstance(v, dict) and set(v) == {"eps_255", "step", "iters", "random_start", "bn_mode",
                                                               "batch_size"}
        and eps_ok(v["eps_255"]) and _num(v["step"], 0) and v["step"] > 0 and _is_pos_int(v["iters"])
        and isinstance(v["random_start"], bool) and v["bn_mode"] in ("train", "eval") and _is_pos_int(v["batch_size"]),
        "sweep": lambda v: isinstance(v, dict) and set(v) == {"eps_255", "n"} and isinstance(v["eps_255"], list)
        and v["eps_255"] and all(eps_ok(e) for e in v["eps_255"]) and _is_pos_int(v["n"]),
        "sparsity": lambda v: isinstance(v, dict) and set(v) == {"n", "batch_size"} and _is_pos_int(v["n"])
        and _num(v["batch_size"], 2, None, True),
        "masking": lambda v: isinstance(v, dict) and set(v) == {"models", "n", "iters", "restarts", "surrogate",
                                                                "transfer_from", "square"}
        and isinstance(v["models"], list) and all(isinstance(x, str) for x in v["models"]) and _is_pos_int(v["n"])
        and _is_pos_int(v["iters"]) and _is_pos_int(v["restarts"])
        and isinstance(v["surrogate"], dict) and set(v["surrogate"]) == {"name", "alpha"}
        and v["surrogate"]["name"] in SURROGATES and _num(v["surrogate"]["alpha"], 0) and v["surrogate"]["alpha"] > 0
        and (v["transfer_from"] is None or isinstance(v["transfer_from"], str))
        and isinstance(v["square"], dict) and set(v["square"]) == {"queries", "n", "p_init"}
        and _is_pos_int(v["square"]["queries"]) and _is_pos_int(v["square"]["n"]) and _num(v["square"]["p_init"], 0, 1),
    }
    expected = {
        "models": f"a non-empty list of {{name (unique), kind: {'|'.join(GRAD_KINDS)}, arch: resnet18|resnet34|resnet50, "
                  "pool: max|avg}}",
        "blocks": "null or 4 positive integers", "stem": "imagenet or cifar", "K": "an integer in [1, 8]",
        "n_train": "null or an integer in [16, 50000]", "n_test": "null or an integer in [16, 10000]",
        "attacked": "null or an integer in [1, 10000]",
        "seeds": "a non-empty list of distinct non-negative integers", "seed": "a non-negative integer",
        "training": "{epochs, batch_size >= 2, lr > 0, weight_decay >= 0, flip: bool}",
        "attack": "{eps_255 in (0, 255], step > 0, iters, random_start: bool, bn_mode: train|eval, batch_size}",
        "sweep": "{eps_255: a non-empty list in (0, 255], n}", "sparsity": "{n, batch_size >= 2}",
        "masking": f"{{models: [model names], n, iters, restarts, surrogate: {{name: one of "
                   f"{sorted(SURROGATES)}, alpha > 0}}, transfer_from: a model name or null, "
                   "square: {queries, n, p_init in [0, 1]}}",
        "dataset": "cifar10 (the only one of paper D's datasets in the mirror)",
        "not_run": f"a list from {list(GRAD_DATASETS)}", "width": "a positive integer", "T": "a positive integer"}
    _schema_entries(sec, where, checks, expected)


def _validate_grad(params: dict) -> None:
    name = GRAD_SECTION
    act, by = _own_schema(params, name, _grad_entries, (
        "dataset", "models", "width", "blocks", "stem", "T", "K", "n_train", "n_test", "attacked", "seeds",
        "seed", "training", "attack", "sweep", "sparsity", "masking"))

    def where(k):
        return f"{name}.by_scale.{params['scale']}.{k}" if k in (by.get(params["scale"]) or {}) else f"{name}.{k}"

    names = {m["name"]: m for m in act["models"]}
    for m in act["masking"]["models"]:
        _check(m in names, where("masking") + ".models", m, f"a name from `models` ({sorted(names)})")
    src = act["masking"]["transfer_from"]
    _check(src is None or names.get(src, {}).get("kind") == "ann", where("masking") + ".transfer_from", src,
           f"null or the name of an ANN in `models` ({sorted(n for n, m in names.items() if m['kind'] == 'ann')})")
    n_test = act["n_test"] or 10000
    n_att = min(act["attacked"] or n_test, n_test)
    _check(act["attacked"] is None or act["attacked"] <= n_test, where("attacked"), act["attacked"],
           f"at most n_test = {n_test}")
    for k, v in (("sweep", act["sweep"]["n"]), ("sparsity", act["sparsity"]["n"]), ("masking", act["masking"]["n"]),
                 ("masking", act["masking"]["square"]["n"])):
        _check(v <= n_att, where(k), v, f"sample sizes at most the {n_att} attacked images")


# ---------------------------------------------------------------- 08_attack_ladder (papers A and B, leakage regime)
# Its own schema, checked like 06's and 07's: `by_scale.<scale>` replaces whole top-level entries.
LADDER_SECTION = "08_attack_ladder"
LADDER_SETTING_KEYS = ("kind", "label", "datasets", "lr", "weight_bits", "encoding", "surrogate")


def _per_fam(v, ok) -> bool:
    return isinstance(v, dict) and set(v) == {"image", "tabular"} and all(ok(x) for x in v.values())


def _ladder_setting_ok(v) -> bool:
    return (isinstance(v, dict) and set(v) <= set(LADDER_SETTING_KEYS) and {"kind", "datasets"} <= set(v)
            and v["kind"] in KINDS and isinstance(v["datasets"], list) and v["datasets"]
            and set(v["datasets"]) <= set(DATASETS) and len(set(v["datasets"])) == len(v["datasets"])
            and v.get("lr") in (None, *KINDS) and (v.get("weight_bits") is None or _num(v["weight_bits"], 1, 8, True))
            and (v.get("label") is None or isinstance(v["label"], str))
            and (v.get("encoding") is None or (v["kind"] == "snn" and v["encoding"] in ENCODINGS))
            and (v.get("surrogate") is None or (v["kind"] == "snn" and v["surrogate"] in SURROGATES)))


def _ladder_entries(sec: dict, where: str) -> None:
    pos = lambda x: _num(x, 1, None, True)   # noqa: E731
    checks = {
        "regime": lambda v: isinstance(v, str) and v,
        "members": lambda v: _per_fam(v, lambda x: x is None or _num(x, 2, None, True)),
        "epochs": lambda v: _per_fam(v, pos), "batch_size": lambda v: _per_fam(v, pos),
        "models": lambda v: _per_fam(v, lambda x: _num(x, 4, None, True)),
        "population_test": lambda v: _per_fam(v, lambda x: x is None or _num(x, 10, None, True)),
        "curve_eval_size": pos, "seed": lambda v: _num(v, 0, None, True), "workers": pos,
        "settings": lambda v: isinstance(v, dict) and v and all(isinstance(k, str) and _ladder_setting_ok(x)
                                                                for k, x in v.items()),
        "as_published": lambda v: isinstance(v, dict) and set(v) == {"settings", "datasets"}
        and all(isinstance(v[k], list) for k in v) and set(v["datasets"]) <= set(DATASETS),
        "lira": lambda v: isinstance(v, dict) and set(v) == {"variant", "fix_variance"}
        and v["variant"] in LIRA_VARIANTS and isinstance(v["fix_variance"], bool),
        "rmia": lambda v: isinstance(v, dict) and set(v) == {"offline_a", "gamma"} and _num(v["offline_a"], 0, 1)
        and _num(v["gamma"], 0) and v["gamma"] > 0,
        "primary": lambda v: isinstance(v, dict) and v and all(
            isinstance(x, dict) and set(x) == {"attack", "metric", "reason"} and x["metric"] in ("auc", "tpr_low")
            and all(isinstance(x[k], str) and x[k].strip() for k in x) for x in v.values()),
    }
    fam = "{image: ..., tabular: ...}"
    expected = {
        "regime": "a name", "members": f"{fam}, each an integer >= 2 (members per model) or null (the whole training part)",
        "epochs": f"{fam} of positive integers", "batch_size": f"{fam} of positive integers",
        "models": f"{fam}, each an integer >= 4 (every leave-one-out target needs an IN and an OUT reference)",
        "population_test": f"{fam}, each an integer >= 10 or null (every test example)",
        "curve_eval_size": "a positive integer", "seed": "a non-negative integer", "workers": "a positive integer",
        "settings": f"a mapping id → {{kind: {'|'.join(KINDS)}, datasets: [distinct datasets from {list(DATASETS)}], "
                    f"and optionally label, lr: ann|snn, weight_bits: 1-8, encoding (SNN): one of {list(ENCODINGS)}, "
                    "surrogate (SNN): a key of `surrogates`}",
        "as_published": "{settings: [setting ids], datasets: [datasets]}",
        "lira": f"{{variant: {'|'.join(LIRA_VARIANTS)}, fix_variance: true|false}}",
        "rmia": "{offline_a in [0, 1], gamma > 0}",
        "primary": "a mapping ladder claim → {attack: a rung, metric: auc|tpr_low, reason: why (stated before looking)} "
                   "(lib.claims.registry.check_ladder_primary checks the claim ids and attacks)"}
    _schema_entries(sec, where, checks, expected)


def _validate_ladder(params: dict) -> None:
    name = LADDER_SECTION
    act, by = _own_schema(params, name, _ladder_entries, (
        "regime", "members", "epochs", "batch_size", "models", "population_test", "curve_eval_size", "seed", "settings",
        "as_published", "lira", "rmia", "workers", "primary"))

    def where(k):
        return f"{name}.by_scale.{params['scale']}.{k}" if k in (by.get(params["scale"]) or {}) else f"{name}.{k}"

    have = set(params["00_data"]["datasets"])
    for sid, st in act["settings"].items():
        missing = sorted(set(st["datasets"]) - have)
        _check(not missing, where("settings") + f".{sid}.datasets", st["datasets"],
               f"datasets that 00_data prepares ({sorted(have)}); missing: {missing}")
        if st.get("surrogate"):
            _check(st["surrogate"] in params["surrogates"], where("settings") + f".{sid}.surrogate", st["surrogate"],
                   f"a key of `surrogates` ({sorted(params['surrogates'])})")
    ap = act["as_published"]
    for sid in ap["settings"]:
        _check(sid in act["settings"], where("as_published") + ".settings", sid,
               f"a setting id ({sorted(act['settings'])})")
        _check(set(ap["datasets"]) <= set(act["settings"][sid]["datasets"]), where("as_published") + ".datasets",
               ap["datasets"], f"datasets that setting {sid!r} is trained on ({act['settings'][sid]['datasets']})")


# ---------------------------------------------------------------- 99_claims
CLAIMS_SECTION = "99_claims"
CLAIM_STAGES = ("02_activation_quantization", "03_weight_quantization", "04_surrogate_gradients",
                "05_temporal_dynamics", "06_post_training_quantization", "07_gradient_sparsity", "08_attack_ladder")


def _claims_entries(sec: dict, where: str) -> None:
    _schema_entries(sec, where, {"stages": lambda v: isinstance(v, list) and v and set(v) <= set(CLAIM_STAGES)
                                 and len(set(v)) == len(v),
                                 "before": lambda v: v is None or (isinstance(v, str) and v.endswith(".csv"))},
                    {"stages": f"a non-empty list of distinct stages from {list(CLAIM_STAGES)}",
                     "before": "null or the path of a claims_all.csv (the verdicts before a change of the engine)"})


def _validate_claims(params: dict) -> None:
    _own_schema(params, CLAIMS_SECTION, _claims_entries, ("stages",))


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

def _validate_executor(params: dict) -> None:
    """train.executor and its settings (lib.core.executor); all optional: absent = local, as before they existed."""
    tr = params["train"]
    if "executor" in tr:
        from .executor import EXECUTORS
        _check(tr["executor"] in EXECUTORS, "train.executor", tr["executor"], f"one of {EXECUTORS}")
    if tr.get("ray_address") is not None:
        _check(isinstance(tr["ray_address"], str) and tr["ray_address"].strip() != "", "train.ray_address",
               tr["ray_address"], 'null, "auto" or "host:port"')
    for key in ("ray_cpus_per_unit", "ray_max_retries"):
        if key in tr:
            v = tr[key]
            _check(isinstance(v, int) and not isinstance(v, bool) and v >= (1 if key == "ray_cpus_per_unit" else 0),
                   f"train.{key}", v, "a positive integer" if key == "ray_cpus_per_unit" else "an integer >= 0")
    if "ray_gpus_per_unit" in tr:
        v = tr["ray_gpus_per_unit"]
        _check(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, "train.ray_gpus_per_unit", v,
               "a number >= 0 (a fraction shares a GPU)")
    if "claim_stale_seconds" in tr:
        _positive(params, "train.claim_stale_seconds")


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
