"""Training reaches the expected accuracy, is deterministic, and the model cache never retrains."""
from pathlib import Path

import pytest
import torch

from lib.core import config, data as D
from lib.stages import base as pipeline
from lib.core.train import ModelStore

ROOT = Path(__file__).resolve().parents[1]


def _store(tmp_path, params, datasets=("iris",)):
    loader = pipeline.Loader(params)
    for ds in datasets:
        t = loader(ds)
        s = config.scale_settings(params, ds)
        for seed in config.seeds(params, ds):
            D.save_split(D.make_split(t.y_train, t.y_test, seed=seed, n_in=s["n_in"], n_out=s["n_out"]),
                         D.split_path(tmp_path / "splits", ds, seed))
    return ModelStore(tmp_path / "ckpt", data_loader=loader, splits_dir=tmp_path / "splits", progress=False)


@pytest.mark.parametrize("kind", ["ann", "snn"])
def test_fcnet_learns_iris_at_quick_settings(tmp_path, kind):
    params = config.load(ROOT / "params.yaml", "quick")  # full Iris, the quick (= paper) recipe, T = 25
    store = _store(tmp_path, params)
    rec = store.get_or_train(config.unit(params, "iris", kind, "target", 0))
    assert rec["test_acc"] > 0.90, rec["test_acc"]
    assert len(rec["pools"]["eval"]["labels"]) == 30 and len(rec["pools"]["in"]["labels"]) == 60
    assert rec["curve"][-1]["epoch"] == params["scales"]["quick"]["tabular"]["epochs"]


def test_cache_trains_once_and_training_is_deterministic(tmp_path):
    params = config.load(ROOT / "params.yaml", "smoke")
    store = _store(tmp_path, params)
    unit = config.unit(params, "iris", "snn", "shadow", 0)
    first = store.get_or_train(unit)
    again = store.get_or_train(unit)
    assert store.trained == 1
    assert all(torch.equal(first["state_dict"][k], again["state_dict"][k]) for k in first["state_dict"])
    # a second store reads the first one's folder and trains nothing
    reader = ModelStore(tmp_path / "other", read_dirs=[tmp_path / "ckpt"], data_loader=store.data_loader,
                        splits_dir=tmp_path / "splits", progress=False)
    reader.get_or_train(unit)
    assert reader.trained == 0
    # retraining the same unit from scratch gives the same weights and outputs
    fresh = ModelStore(tmp_path / "fresh", data_loader=store.data_loader, splits_dir=tmp_path / "splits",
                       progress=False).get_or_train(unit)
    assert all(torch.equal(first["state_dict"][k], fresh["state_dict"][k]) for k in first["state_dict"])
    assert (first["pools"]["out"]["outputs"] == fresh["pools"]["out"]["outputs"]).all()
    # how training is watched and scored (curve size, eval batch) is not part of the unit: it must not move the weights
    watched = ModelStore(tmp_path / "watched", data_loader=store.data_loader, splits_dir=tmp_path / "splits",
                         progress=False, curve_eval_size=7, eval_batch_size=5).get_or_train(unit)
    assert all(torch.equal(first["state_dict"][k], watched["state_dict"][k]) for k in first["state_dict"])
    assert abs(first["pools"]["out"]["outputs"] - watched["pools"]["out"]["outputs"]).max() < 1e-5
    # a different setting is a different unit
    store.get_or_train(config.unit(params, "iris", "snn", "shadow", 0, surrogate="atan"))
    assert store.trained == 2


def test_records_hold_attack_material_and_a_rebuildable_model(tmp_path):
    params = config.load(ROOT / "params.yaml", "smoke")
    store = _store(tmp_path, params)
    rec = store.get_or_train(config.unit(params, "iris", "ann", "target", 0))
    pools = rec["pools"]
    assert pools["in"]["outputs"].shape == (60, 3) and pools["out"]["outputs"].shape == (15, 3)
    model = store.load_model(rec)
    x, _ = D.pool(store.data_loader("iris"), D.load_split(tmp_path / "splits/iris/seed0.json"), "target_out")
    with torch.no_grad():
        assert torch.allclose(model(x), torch.from_numpy(pools["out"]["outputs"]), atol=1e-6)


def test_interrupted_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    params = config.load(ROOT / "params.yaml", "smoke")
    store = _store(tmp_path, params)
    unit = config.unit(params, "iris", "ann", "target", 0)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        store.get_or_train(unit)
    assert store.find(unit) is None   # nothing half-written is mistaken for a trained model


def test_transfer_unit_starts_from_pretrained_weights_and_keeps_frozen_layers(tmp_path):
    params = config.load(ROOT / "params.yaml", "smoke")
    store = _store(tmp_path, params)
    src = store.get_or_train(config.unit(params, "iris", "ann", "target", 0))
    unit = config.unit(params, "iris", "ann", "shadow", 0, init_from={"dataset": "iris", "key": src["key"]},
                       frozen=[0])
    rec = store.get_or_train(unit)
    for k in ("ops.0.weight", "ops.0.bias"):
        assert torch.equal(rec["state_dict"][k], src["state_dict"][k])      # frozen: unchanged
    assert not torch.equal(rec["state_dict"]["ops.1.weight"], src["state_dict"]["ops.1.weight"])  # fine-tuned
