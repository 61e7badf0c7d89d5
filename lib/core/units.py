"""The unit builder: the complete description of one trained MLP/ConvNet/SNN model (a cache unit, whose hash names
its checkpoint: lib.core.train.CheckpointStore), from params.yaml at the active scale plus a stage's overrides.
Paper C's ResNets and paper D's SEW nets describe themselves in their stage modules (their own families' keys)."""
from __future__ import annotations

import copy

from .vocab import ENCODINGS, KINDS, SURROGATES


def init_seed(unit: dict) -> int:
    """The seed of a unit's initialization, shuffling, augmentation and encoder noise: `init_seed` for shadows
    (seed + train.shadow_seed_offset), else its `seed` (which also names its membership split)."""
    return int(unit.get("init_seed", unit["seed"]))


def seeds(params: dict, dataset: str, section: str | dict | None = None) -> list[int]:
    """The seeds of `dataset` in `section` at the active scale (`effective(...)["seeds"]`)."""
    from . import config as C   # config re-exports this module's names: imported here, not at the top
    return C.effective(params, section, dataset)["seeds"]


DP_KEYS = ("epsilon", "delta", "max_grad_norm")


def dp_setting(dp: dict) -> dict:
    """A unit's `dp` override checked: {epsilon: > 0 or null (clipping only, ε = ∞), delta: in (0, 1),
    max_grad_norm: > 0}; the errors name the key."""
    from . import config as C
    if not (isinstance(dp, dict) and set(dp) == set(DP_KEYS)):
        raise C.ConfigError(f"model setting `dp` must be a mapping with exactly the keys {list(DP_KEYS)}, got {dp!r}")
    eps, delta, clip = dp["epsilon"], dp["delta"], dp["max_grad_norm"]
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)   # noqa: E731
    if not (eps is None or (num(eps) and eps > 0)):
        raise C.ConfigError(f"model setting `dp.epsilon` must be > 0 or null (no noise), got {eps!r}")
    if not (num(delta) and 0 < delta < 1):
        raise C.ConfigError(f"model setting `dp.delta` must be in (0, 1), got {delta!r}")
    if not (num(clip) and clip > 0):
        raise C.ConfigError(f"model setting `dp.max_grad_norm` must be > 0, got {clip!r}")
    return {"epsilon": None if eps is None else float(eps), "delta": float(delta), "max_grad_norm": float(clip)}


def unit(params: dict, dataset: str, kind: str, role: str, seed: int, **overrides) -> dict:
    """The complete description of one trained model (a cache unit): everything that changes its weights.

    overrides: weight_bits, act_bits, act_threshold, surrogate, surrogate_kwargs, encoding, encoding_kwargs,
    epochs, ... (any key of the returned dict); `dp` ({epsilon, delta, max_grad_norm}: train with DP-SGD,
    lib.core.dp, at the unit's optimizer, lr, batch size and epochs); for SNNs also `quant_output` (bool, default true: with act_bits,
    state_quant acts on the output LIF layer's membrane too). `quant_output` enters the unit only when it changes
    the model (false together with act_bits), so every other unit — and its checkpoint key — stays as it was.
    """
    from . import config as C   # config re-exports this module's names: imported here, not at the top
    quant_output = overrides.pop("quant_output", True)
    dp = overrides.pop("dp", None)
    if kind == "snn" and not isinstance(quant_output, bool):
        raise C.ConfigError(f"model setting `quant_output` must be true or false, got {quant_output!r}")
    if role not in ("target", "shadow"):
        raise C.ConfigError(f"role must be `target` or `shadow`, got {role!r}")
    if kind not in KINDS:
        raise C.ConfigError(f"`kinds` entries must be one of {KINDS}, got {kind!r}")
    s = C.effective(params, None, dataset)   # the scale's values; a section's own values come in as overrides
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
            raise C.ConfigError(f"unknown model setting `{k}` for a {kind} unit")
        u[k] = v
    if quant_output is not True:
        if kind != "snn":
            raise C.ConfigError(f"unknown model setting `quant_output` for a {kind} unit (ANN outputs are never quantized)")
        if u["act_bits"]:   # without act_bits nothing is quantized: the unit is the full-precision one
            u["quant_output"] = False
    if dp is not None:   # DP-SGD (lib.core.dp); enters the unit only when given, so no other key changes
        u["dp"] = dp_setting(dp)
        if u["weight_bits"] or u["act_bits"]:
            raise C.ConfigError("model setting `dp` (DP-SGD) does not combine with `weight_bits` / `act_bits`")
    if kind == "snn" and "surrogate" in overrides and "surrogate_kwargs" not in overrides:
        u["surrogate_kwargs"] = dict(params["surrogates"].get(u["surrogate"], {}))
    if kind == "snn" and "encoding" in overrides and "encoding_kwargs" not in overrides:
        u["encoding_kwargs"] = dict(params.get("encoders", {}).get(u["encoding"]) or {})
    if kind == "snn" and u["surrogate"] not in SURROGATES:
        raise C.ConfigError(f"unknown surrogate {u['surrogate']!r} (parameter `surrogate`); choose one of {sorted(SURROGATES)}")
    if kind == "snn" and u["encoding"] not in ENCODINGS:
        raise C.ConfigError(f"unknown encoding {u['encoding']!r} (parameter `encoding`); choose one of {ENCODINGS}")
    return copy.deepcopy(u)
