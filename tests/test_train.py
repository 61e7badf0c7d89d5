"""Training reaches the expected accuracy, is deterministic, and the model cache never retrains."""
import re
from pathlib import Path

import pytest
import torch

from conftest import make_store as _store

from lib.core import config, data as D
from lib.core.train import ModelStore

ROOT = Path(__file__).resolve().parents[1]


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


# ----------------------------------------------------------------------------- one store for every family

def _resnet_unit():   # the shape of lib.stages.ptq_privacy.unit (paper C): carries its dataset
    return {"section": "06_post_training_quantization", "dataset": "cifar10", "data_source": "x",
            "arch": {"blocks": [1], "widths": [4]}, "training": {"epochs": 1}, "seed": 3, "members_sha": "ab"}


def _sew_unit():      # the shape of lib.stages.grad_obf.unit (paper D): no dataset, filed under the section's
    return {"section": "07_gradient_sparsity", "kind": "sew", "arch": "resnet18", "pool": "avg", "width": 8,
            "blocks": [1, 1, 1, 1], "stem": "cifar", "training": {"epochs": 1}, "seed": 0, "data": "cd", "T": 4, "K": 8}


@pytest.mark.parametrize("make", [_resnet_unit, _sew_unit])
def test_checkpoint_store_keeps_the_paper_c_and_d_layout(tmp_path, make):
    """A ResNet-like and a SEW-like unit are written where ptq_privacy.Cache and grad_obf.train_net wrote them
    before the stores were one (<checkpoints_dir>/<dataset>/<unit_key>.pt), under the same claim, and read back."""
    from lib.core.train import CheckpointStore, unit_key
    u = make()
    store = CheckpointStore(tmp_path / "stage", dataset="cifar10")
    path = tmp_path / "stage" / "cifar10" / f"{unit_key(u)}.pt"
    assert store.path(u) == path and store.find(u) is None and store.missing([u, u]) == [u]
    rec = {"state_dict": {"w": torch.arange(3.0)}, "unit": u, "seconds": 1.0}
    with store.claim(u) as mine:
        assert mine and (tmp_path / ".claims" / "cifar10" / f"{unit_key(u)}.lock").is_file()
        assert store.put(u, rec) == path
    assert not path.with_suffix(".json").exists()       # no sidecar unless asked for (06/07 never wrote one)
    back = store.get(u, map_location="cpu")
    assert torch.equal(back["state_dict"]["w"], rec["state_dict"]["w"]) and back["unit"] == u
    with store.claim(u) as mine:                          # readable now: nobody trains it again
        assert not mine
    assert store.missing([u]) == [] and store.path_of_key("cifar10", unit_key(u)) == path
    if "dataset" not in u:
        with pytest.raises(ValueError, match="dataset"):
            CheckpointStore(tmp_path / "other").path(u)


@pytest.mark.parametrize("stage", ["06_post_training_quantization", "07_gradient_sparsity"])
def test_checkpoints_on_disk_are_where_the_store_looks(stage):
    """The committed run's paper C / D checkpoints are found by the one store at their own paths."""
    from lib.core.train import CheckpointStore
    files = sorted((ROOT / "checkpoints" / stage / "cifar10").glob("*.pt"))
    if not files:
        pytest.skip(f"no checkpoints/{stage} here (a fresh clone)")
    store = CheckpointStore(ROOT / "checkpoints" / stage, dataset="cifar10")
    for f in files[:3]:
        assert store.find(torch.load(f, map_location="cpu", weights_only=False)["unit"]) == f


# ----------------------------------------------------------------------------- corrupt checkpoints (issue 23, item 2)

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _equal_records(a: dict, b: dict) -> bool:
    return (a["state_dict"].keys() == b["state_dict"].keys()
            and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
            and all((a["pools"][p]["outputs"] == b["pools"][p]["outputs"]).all() for p in a["pools"]))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_checkpoint_is_named_set_aside_and_retrained_to_the_same_bits(tmp_path, damage):
    from lib.core.train import CorruptCheckpoint
    params = config.load(ROOT / "params.yaml", "smoke")
    store = _store(tmp_path, params)
    unit = config.unit(params, "iris", "ann", "target", 0)
    first = store.get_or_train(unit)
    path = store.find(unit)
    if damage == "truncated":
        _truncate(path)
    else:
        path.write_bytes(b"not a checkpoint\n" * 100)
    broken = path.read_bytes()
    again = ModelStore(tmp_path / "ckpt", data_loader=store.data_loader, splits_dir=tmp_path / "splits",
                       progress=False)
    with pytest.warns(CorruptCheckpoint, match=re.escape(str(path))):
        rec = again.get_or_train(unit)
    assert again.trained == 1 and _equal_records(first, rec)
    aside = tmp_path / ".corrupt" / "ckpt" / "iris" / path.name     # outside the stage's folder, bytes kept
    assert aside.read_bytes() == broken and path.with_suffix(".json").is_file()
    assert _equal_records(first, again.get(unit))                      # the rewritten file is sound


def test_missing_counts_a_truncated_checkpoint_and_train_missing_retrains_it(tmp_path):
    from lib.core import executor as EX
    from lib.core.train import CorruptCheckpoint
    params = config.load(ROOT / "params.yaml", "smoke")
    store = _store(tmp_path, params)
    units = [config.unit(params, "iris", "ann", role, 0) for role in ("target", "shadow")]
    first = [store.get_or_train(u) for u in units]
    assert store.missing(units) == []
    _truncate(store.find(units[1]))
    with pytest.warns(CorruptCheckpoint, match=re.escape(str(store.path(units[1])))):
        assert store.missing(units) == [units[1]]                        # set aside now: missing from here on
    assert store.find(units[1]) is None
    assert store.train_missing(units, settings=EX.Settings()) == 1
    assert _equal_records(first[1], store.get(units[1])) and _equal_records(first[0], store.get(units[0]))


def test_a_sound_checkpoint_that_fails_to_load_is_not_set_aside(tmp_path):
    """Only a damaged archive is set aside: a sound zip that torch cannot read (here: not a torch file; in
    practice a class that moved, a CUDA tensor on a CPU machine) raises, naming the file, and stays."""
    import zipfile
    from lib.core.train import CheckpointStore
    store = CheckpointStore(tmp_path / "stage", dataset="cifar10")
    u = _resnet_unit()
    path = store.path(u)
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("something/else.txt", "a sound archive")
    with pytest.raises(RuntimeError) as err:
        store.get(u)
    assert str(path) in "".join(getattr(err.value, "__notes__", []))
    assert path.is_file() and store.missing([u]) == [] and not (tmp_path / ".corrupt").exists()


def test_a_corrupt_paper_c_checkpoint_is_retrained_to_the_same_bits(tmp_path):
    import copy
    from conftest import PTQ_PRIVACY_SEC, ptq_privacy_data
    from lib.core.train import CorruptCheckpoint
    from lib.stages import ptq_privacy as PP
    s = PP.Study.open(PP.Params.from_section(PTQ_PRIVACY_SEC), ptq_privacy_data(), tmp_path / "c", device="cpu")
    assert s.train() == PTQ_PRIVACY_SEC["models"]
    path = s.cache.model_path(s.recs[1]["unit"])
    _truncate(path)
    again = PP.Study.open(copy.deepcopy(PTQ_PRIVACY_SEC), ptq_privacy_data(), tmp_path / "c", device="cpu")
    with pytest.warns(CorruptCheckpoint, match=re.escape(str(path))):
        assert again.train() == 1
    for a, b in zip(s.recs, again.recs):
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (tmp_path / ".corrupt" / "c" / PTQ_PRIVACY_SEC["dataset"] / path.name).is_file()


def test_a_corrupt_paper_d_checkpoint_is_retrained_to_the_same_bits(tmp_path):
    import copy
    from conftest import GRAD_OBF_SEC, grad_obf_data
    from lib.core.train import CorruptCheckpoint
    from lib.stages import grad_obf as G
    s = G.Study.open(copy.deepcopy(GRAD_OBF_SEC), grad_obf_data(), tmp_path / "d", device="cpu")
    assert s.train().trained_now.all()
    net = next(iter(s.nets.values()))
    path = s.root / f"{net.key}.pt"
    _truncate(path)
    s2 = G.Study.open(copy.deepcopy(GRAD_OBF_SEC), grad_obf_data(), tmp_path / "d", device="cpu")
    with pytest.warns(CorruptCheckpoint, match=re.escape(str(path))):
        rows = s2.train()
    assert rows.trained_now.tolist() == [n.key == net.key for n in s2.nets.values()]
    for k, n in s.nets.items():
        a, b = n.model.state_dict(), s2.nets[k].model.state_dict()
        assert all(torch.equal(a[p], b[p]) for p in a)
