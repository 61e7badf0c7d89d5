"""params.yaml is validated before anything trains; every error names the offending key."""
from pathlib import Path

import pytest
import yaml

from lib.core import config

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, edit):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_repository_params_are_valid_at_every_scale():
    for scale in config.SCALES:
        params = config.load(ROOT / "params.yaml", scale)
        assert params["scale"] == scale
        for ds in params["00_data"]["datasets"]:
            s = config.scale_settings(params, ds)
            assert s["steps"] > 0 and s["epochs"] > 0


@pytest.mark.parametrize("key,edit", [
    ("model.snn.surrogate", lambda p: p["model"]["snn"].__setitem__("surrogate", "sigmoidal")),
    ("00_data.datasets", lambda p: p["00_data"].__setitem__("datasets", ["mnist", "svhn"])),
    ("01_models.datasets", lambda p: p["01_models"].__setitem__("datasets", ["imagenet"])),
    ("scales.quick.steps", lambda p: p["scales"]["quick"].__setitem__("steps", 0)),
    ("scales.smoke.steps", lambda p: p["scales"]["smoke"].__setitem__("steps", -3)),
    ("scale", lambda p: p.__setitem__("scale", "huge")),
    ("model.snn.beta", lambda p: p["model"]["snn"].__setitem__("beta", 1.5)),
    ("00_data.cifar10_source", lambda p: p["00_data"].__setitem__("cifar10_source", "jpeg")),
    ("train.lr.snn", lambda p: p["train"]["lr"].__setitem__("snn", 0)),
    ("scales.quick.image.epochs", lambda p: p["scales"]["quick"]["image"].__setitem__("epochs", 2.5)),
    ("train.curve_eval_size", lambda p: p["train"].__setitem__("curve_eval_size", 0)),
    ("train.eval_batch_size", lambda p: p["train"].__setitem__("eval_batch_size", "big")),
    ("05_temporal_dynamics.by_scale.quick.batch_size", lambda p: p["05_temporal_dynamics"]["by_scale"]["quick"]
     .__setitem__("batch_size", {"image": -32, "tabular": None})),
    ("05_temporal_dynamics.by_scale.quick.curve_eval_size", lambda p: p["05_temporal_dynamics"]["by_scale"]["quick"]
     .__setitem__("curve_eval_size", 1.5)),
])
def test_invalid_value_names_its_key(tmp_path, key, edit):
    path = _write(tmp_path, edit)
    with pytest.raises(config.ConfigError, match=f"`{key}`"):
        config.load(path)


def test_missing_key_is_named(tmp_path):
    path = _write(tmp_path, lambda p: p["model"]["snn"].pop("threshold"))
    with pytest.raises(config.ConfigError, match="model.snn.threshold"):
        config.load(path)


def test_unit_overrides_are_checked():
    params = config.load(ROOT / "params.yaml", "smoke")
    u = config.unit(params, "iris", "snn", "target", 0, surrogate="atan")
    assert u["surrogate_kwargs"] == {"alpha": 2.0}       # the paper's constant comes along
    assert u["steps"] == params["scales"]["smoke"]["steps"]
    with pytest.raises(config.ConfigError, match="surrogate"):
        config.unit(params, "iris", "snn", "target", 0, surrogate="nope")
    with pytest.raises(config.ConfigError, match="bitz"):
        config.unit(params, "iris", "ann", "target", 0, bitz=3)


def test_shadow_unit_depends_on_split_mode_target_does_not():
    params = config.load(ROOT / "params.yaml", "smoke")
    t1, s1 = (config.unit(params, "mnist", "ann", r, 0) for r in ("target", "shadow"))
    params["00_data"]["split_mode"] = "as_published"
    t2, s2 = (config.unit(params, "mnist", "ann", r, 0) for r in ("target", "shadow"))
    assert t1 == t2 and s1 != s2

