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
ENCODINGS = ("direct", "rate", "poisson_burst", "delayed_burst")
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
    for scale in SCALES:
        _positive_int(params, f"scales.{scale}.steps")
        for fam in ("image", "tabular"):
            _positive_int(params, f"scales.{scale}.{fam}.epochs")
            _positive_int(params, f"scales.{scale}.{fam}.n_in", allow_none=True)
            _positive_int(params, f"scales.{scale}.{fam}.n_out", allow_none=True)
            _positive_int(params, f"scales.{scale}.seeds.{fam}")
    if "01_models" in params:
        _datasets(params, "01_models.datasets")
        v = _get(params, "01_models.kinds")
        _check(isinstance(v, list) and v and all(k in KINDS for k in v), "01_models.kinds", v, f"a list from {KINDS}")
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
    for name in SECTIONS:
        if name in params:
            _validate_section(params, name)
    _validate_temporal(params)
    return params


# Sections of paper A §V: their grid keys, and which may be replaced per scale under `by_scale`.
SECTIONS = {
    "02_activation_quantization": ("datasets", "kinds", "bits", "thresholds", "output_layer_variant"),
    "03_weight_quantization": ("datasets", "kinds", "bits"),
    "04_surrogate_gradients": ("datasets", "surrogates", "spike_rate_escape_legacy", "triangular_true"),
}
ATTACK_MODES = ("single", "per_class")


def _list_of(key: str, v, allowed) -> None:
    """`v` must be a non-empty list of entries from `allowed`."""
    allowed = list(allowed)
    _check(isinstance(v, list) and v and all(x in allowed for x in v), key, v, f"a non-empty list from {allowed}")


def _is_pos_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _per_family(key: str, v) -> None:
    """`v` must be a mapping {image: positive integer or null, tabular: ...} (either key may be left out)."""
    ok = isinstance(v, dict) and set(v) <= {"image", "tabular"} and all(x is None or _is_pos_int(x) for x in v.values())
    _check(ok, key, v, "a mapping {image: a positive integer or null, tabular: a positive integer or null}")


def _validate_grid(sec: dict, where: str, keys) -> None:
    for k, v in sec.items():
        key = f"{where}.{k}"
        if k == "datasets":
            _list_of(key, v, DATASETS)
        elif k == "kinds":
            _list_of(key, v, KINDS)
        elif k == "bits":
            _check(isinstance(v, list) and v and all(isinstance(b, int) and 2 <= b <= 16 for b in v), key, v,
                   "a non-empty list of integers in [2, 16]")
        elif k == "thresholds":
            _check(isinstance(v, list) and v and all(isinstance(t, (int, float)) and t > 0 for t in v), key, v,
                   "a non-empty list of positive numbers")
        elif k == "surrogates":
            _list_of(key, v, sorted(SURROGATES))
        elif k in ("spike_rate_escape_legacy", "triangular_true", "output_layer_variant"):
            _check(isinstance(v, bool), key, v, "true or false")
        elif k == "epochs":
            _per_family(key, v)
        elif k == "workers":
            _check(_is_pos_int(v), key, v, "a positive integer")
        elif k in ("checkpoints_dir", "results_dir", "figures_dir"):
            _check(isinstance(v, str) and v, key, v, "a folder path")
        elif k != "by_scale":
            raise ConfigError(f"params.yaml: unknown key `{key}`; expected one of {sorted(keys)}, epochs, workers, "
                              "by_scale, checkpoints_dir, results_dir, figures_dir")


def _validate_section(params: dict, name: str) -> None:
    sec, keys = params[name], SECTIONS[name]
    for k in (*keys, "checkpoints_dir", "results_dir", "figures_dir"):
        _get(params, f"{name}.{k}")
    _validate_grid(sec, name, keys)
    by = sec.get("by_scale") or {}
    _check(isinstance(by, dict) and set(by) <= set(SCALES), f"{name}.by_scale", by, f"a mapping with keys from {SCALES}")
    for sc, over in by.items():
        over = over or {}
        _check(isinstance(over, dict), f"{name}.by_scale.{sc}", over, "a mapping")
        bad = set(over) - set(keys) - {"epochs"}
        _check(not bad, f"{name}.by_scale.{sc}", sorted(bad), f"only keys from {sorted(keys)} or epochs")
        _validate_grid(over, f"{name}.by_scale.{sc}", keys)


def section(params: dict, name: str) -> dict:
    """params[name] with its `by_scale.<active scale>` entries applied: the grid the stage runs now.
    `replaced` lists the keys that differ from the full (paper) grid."""
    sec = copy.deepcopy(params[name])
    over = (sec.pop("by_scale", None) or {}).get(params["scale"]) or {}
    sec["replaced"] = {k: v for k, v in over.items() if sec.get(k) != v}
    sec.update(copy.deepcopy(over))
    return sec


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
    """n_in, n_out, epochs, seeds, steps, batch_size of `dataset` at the active scale."""
    fam = family(dataset)
    sc = params["scales"][params["scale"]]
    out = dict(sc[fam])
    out.update(steps=sc["steps"], n_seeds=sc["seeds"][fam], batch_size=params["train"]["batch_size"][fam],
               family=fam, scale=params["scale"])
    return out


def init_seed(unit: dict) -> int:
    """The seed of a unit's initialization, shuffling, augmentation and encoder noise: `init_seed` for shadows
    (seed + train.shadow_seed_offset), else its `seed` (which also names its membership split)."""
    return int(unit.get("init_seed", unit["seed"]))


def seeds(params: dict, dataset: str) -> list[int]:
    base = params["train"]["seed"]
    return [base + i for i in range(scale_settings(params, dataset)["n_seeds"])]


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
    s = scale_settings(params, dataset)
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


# ---------------------------------------------------------------- encoders and 05_temporal_dynamics (paper B)
TEMPORAL = "05_temporal_dynamics"
TEMPORAL_KEYS = ("datasets", "encodings", "baseline", "members", "epochs", "seeds", "batch_size", "curve_eval_size",
                 "trace_attack", "transfer", "sweep", "efficiency")


def _validate_encoders(params: dict) -> None:
    from .encoders import build_encoder
    for name, consts in (params.get("encoders") or {}).items():
        _check(name in ENCODINGS, f"encoders.{name}", name, f"encoder names from {ENCODINGS}")
        _check(consts is None or isinstance(consts, dict), f"encoders.{name}", consts, "a mapping of constants")
        try:
            build_encoder(name, **(consts or {}))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"params.yaml: `encoders.{name}`: {err}") from None


def _validate_temporal_grid(sec: dict, where: str, params: dict) -> None:
    for k, v in sec.items():
        key = f"{where}.{k}"
        if k == "datasets":
            _list_of(key, v, DATASETS)
        elif k == "encodings":
            _list_of(key, v, ENCODINGS)
        elif k == "baseline":
            _check(v in ENCODINGS, key, v, f"one of {ENCODINGS}")
        elif k == "members":
            ok = isinstance(v, dict) and set(v) <= {"image", "tabular"} and all(
                x is None or (isinstance(x, list) and len(x) == 2 and all(_is_pos_int(n) and n >= 2 for n in x))
                for x in v.values())
            _check(ok, key, v, "a mapping {image: [n_in, n_out] or null, tabular: [n_in, n_out] or null}")
        elif k in ("epochs", "seeds", "batch_size"):
            _per_family(key, v)
        elif k == "curve_eval_size":
            _check(v is None or _is_pos_int(v), key, v, "a positive integer or null (= train.curve_eval_size)")
        elif k == "trace_attack":
            _check(isinstance(v, bool), key, v, "true or false")
        elif k == "transfer":
            ok = isinstance(v, dict) and set(v) == {"source", "target", "frozen"} and v["source"] in IMAGE_DATASETS \
                and v["target"] in IMAGE_DATASETS and isinstance(v["frozen"], list) and all(
                    isinstance(i, int) and 0 <= i < 4 for i in v["frozen"])
            _check(ok, key, v, "{source: image set, target: image set, frozen: [layer indices 0-3]}")
        elif k == "sweep":
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
                            from .encoders import build_encoder
                            build_encoder(enc, **{**(params.get("encoders", {}).get(enc) or {}), const: x})
                        except (TypeError, ValueError) as err:
                            raise ConfigError(f"params.yaml: `{key}.{enc}.{const}` = {x!r}: {err}") from None
        elif k == "efficiency":
            ok = isinstance(v, dict) and set(v) == {"spike_samples", "rss_interval"} and isinstance(
                v["spike_samples"], int) and v["spike_samples"] > 0 and isinstance(v["rss_interval"], (int, float)) \
                and v["rss_interval"] > 0
            _check(ok, key, v, "{spike_samples: positive integer, rss_interval: seconds > 0}")
        elif k in ("checkpoints_dir", "results_dir", "figures_dir"):
            _check(isinstance(v, str) and v, key, v, "a folder path")
        elif k != "by_scale":
            raise ConfigError(f"params.yaml: unknown key `{key}`; expected one of {sorted(TEMPORAL_KEYS)}, by_scale, "
                              "checkpoints_dir, results_dir, figures_dir")


def _validate_temporal(params: dict) -> None:
    """`encoders` (every constant builds its encoder) and the 05_temporal_dynamics section, incl. by_scale."""
    _validate_encoders(params)
    if TEMPORAL not in params:
        return
    sec = params[TEMPORAL]
    for k in (*TEMPORAL_KEYS, "checkpoints_dir", "results_dir", "figures_dir"):
        _get(params, f"{TEMPORAL}.{k}")
    _validate_temporal_grid(sec, TEMPORAL, params)
    by = sec.get("by_scale") or {}
    _check(isinstance(by, dict) and set(by) <= set(SCALES), f"{TEMPORAL}.by_scale", by, f"a mapping with keys from {SCALES}")
    for sc, over in by.items():
        over = over or {}
        _check(isinstance(over, dict) and set(over) <= set(TEMPORAL_KEYS), f"{TEMPORAL}.by_scale.{sc}", over,
               f"a mapping with keys from {TEMPORAL_KEYS}")
        _validate_temporal_grid(over, f"{TEMPORAL}.by_scale.{sc}", params)
    # the active grid must be runnable: transfer and sweep datasets are trained in the main grid
    act = section(params, TEMPORAL)
    for ds in (act["transfer"]["source"], act["transfer"]["target"], *act["sweep"]["datasets"]):
        _check(ds in act["datasets"], f"{TEMPORAL}.datasets", act["datasets"],
               f"a list that includes {ds} (used by `transfer` / `sweep` at scale {params['scale']})")
    _check(act["baseline"] in act["encodings"], f"{TEMPORAL}.encodings", act["encodings"],
           f"a list that includes the baseline {act['baseline']!r}")
