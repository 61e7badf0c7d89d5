"""Checkpoint keys must not move: a refactor of lib that changed the hash of a unit would silently retrain every
cached model. tests/unit_keys_golden.json holds keys computed by the code of commit 27afc3d (before lib became
three subpackages) for target units of every scale, family and §V / paper-B setting. Shadow units are left out:
their keys changed on purpose when the shadow got its own initialization seed (`train.shadow_seed_offset`)."""
import json
from pathlib import Path

import pytest

from lib.stages import temporal as TD
from lib.core import config as C
from lib.core.train import unit_key

GOLDEN = json.loads((Path(__file__).parent / "unit_keys_golden.json").read_text())
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _unit(p, name):
    sc, ds, *rest = name.split("/")
    if ds == "05":
        ds, enc, role, seed = rest
        return TD.unit(p, C.section(p, "05_temporal_dynamics"), ds, enc, role, int(seed))
    kind, role, seed, *tag = rest
    extra = {"a4t0.5": dict(act_bits=4, act_threshold=0.5, epochs=25), "w2": dict(weight_bits=2),
             "atan": dict(surrogate="atan")}[tag[0]] if tag else {}
    return C.unit(p, ds, kind, role, int(seed), **extra)


def _load(scale):
    """params.yaml at `scale`, with real CIFAR-10 as the source: the golden keys were computed with it. (params.yaml
    names the JPEG stand-in since the committed quick run used it; a different dataset has other keys, by design.)"""
    p = C.load(PARAMS, scale)
    p["00_data"]["cifar10_source"] = "torchvision"
    return p


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_target_unit_keys_are_unchanged(name):
    p = _load(name.split("/")[0])
    if name.split("/")[1] == "05" and name.split("/")[2] not in C.section(p, "05_temporal_dynamics")["datasets"]:
        pytest.skip("dataset no longer in this scale's 05 grid")
    assert unit_key(_unit(p, name)) == GOLDEN[name], f"{name}: the checkpoint key changed (cached models would retrain)"


def test_shadow_is_seeded_apart_from_its_target():
    p = C.load(PARAMS, "quick")
    t, s = C.unit(p, "iris", "snn", "target", 0), C.unit(p, "iris", "snn", "shadow", 0)
    assert t["seed"] == s["seed"]                       # same split file (the shadow's pools of seed 0)
    assert C.init_seed(s) != C.init_seed(t)             # but its own initialization and shuffling
    assert C.init_seed(t) == t["seed"]


def test_the_cifar10_source_is_part_of_the_key():
    p = _load("quick")
    real = unit_key(C.unit(p, "cifar10", "snn", "target", 0))
    p["00_data"]["cifar10_source"] = "jpeg-standin"
    assert unit_key(C.unit(p, "cifar10", "snn", "target", 0)) != real   # a stand-in model never loads as a real one
    assert unit_key(C.unit(p, "mnist", "snn", "target", 0)) == unit_key(C.unit(_load("quick"), "mnist", "snn", "target", 0))
