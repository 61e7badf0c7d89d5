"""Shared test helpers, imported by the test files as `from conftest import ...` (pytest puts tests/ on sys.path)."""
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny ops: one torch thread avoids oversubscription on the shared 2-core machine (3–4× faster here). A module
    uses it with `pytestmark = pytest.mark.usefixtures("one_thread")`, a test by naming it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@dataclass
class FakeTensors:
    """The fields of lib.core.data.Tensors the studies read (CIFAR-like images, labels, source, classes)."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str = "synthetic"
    n_classes: int = 4


def make_store(tmp_path, params, datasets=("iris",)):
    """A lib.core.train.ModelStore in tmp_path/ckpt, with the membership splits of `datasets` at `params`' scale
    written to tmp_path/splits (as 00_data writes them). The datasets' files go to tmp_path/raw (copied from the
    mirror there), never into the repository's data/raw (a dvc-tracked output of 00_data)."""
    from lib.core import config, data as D
    from lib.core.train import ModelStore
    from lib.stages import base as pipeline
    params = {**params, "00_data": {**params["00_data"], "raw_dir": str(tmp_path / "raw")}}
    loader = pipeline.Loader(params)
    assert Path(loader.kw["raw_dir"]).resolve().is_relative_to(Path(tmp_path).resolve())
    if loader.kw["mirror"] is None:   # pytest run without `make`: the mirror beside the repository, else data/raw (read)
        root = Path(__file__).resolve().parents[1]
        loader.kw["mirror"] = next((m for m in (root.parent / "shared" / "datasets", root / "data" / "raw")
                                    if m.is_dir()), None)
    for ds in datasets:
        t = loader(ds)
        s = config.scale_settings(params, ds)
        for seed in config.seeds(params, ds):
            D.save_split(D.make_split(t.y_train, t.y_test, seed=seed, n_in=s["n_in"], n_out=s["n_out"]),
                         D.split_path(tmp_path / "splits", ds, seed))
    return ModelStore(tmp_path / "ckpt", data_loader=loader, splits_dir=tmp_path / "splits", progress=False)


# ----------------------------------------------------------------------------- paper C (06) and paper D (07)
# A tiny section of each stage and its CIFAR-like data (test_ptq_privacy, test_grad_obf and the Ray test of
# test_executor train them).

PTQ_PRIVACY_SEC = {
    "dataset": "cifar10", "pool": 96, "models": 4, "targets": 2, "pkeep": 0.5, "n_test": 40, "seed": 3,
    "arch": {"blocks": [1, 1], "widths": [4, 8]}, "stack": None,
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                 "augment": False},
    "lira": {"queries": ["flip"], "variant": "paper", "fix_variance": True, "fprs": [0.01, 0.1]},
    "ptq": {"methods": ["rtn", "obc"], "bits": [2, 1.58], "calibration": 16, "obc_calibration": 16,
            "iters": {"adaround": 2, "brecq": 2}, "reg": {"adaround": 1e-3, "brecq": 1e-2},
            "scale_method": "minmax", "runs": 1, "runs_bits": [1.58], "bn_source": "members", "bn_leak_bits": [1.58],
            "decoupled": {"last_bits": 8, "bits": [1.58]}},
    "adaptive": {"methods": ["rtn"], "bits": [1.58]},
    "rmia": {"references": [1], "offline_a": 0.3, "gamma": 1.0, "population": 20},
    "shadow_counts": [2]
}


def ptq_privacy_data(n_train=200, n_test=60, seed=0):
    """Random 3×8×8 images of 4 classes (FakeTensors), the test half sorted by class."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 3, 8, 8, generator=g)
    y = torch.randint(0, 4, (n_train + n_test,), generator=g)
    # class 0..3 as a ladder of test labels, sorted: a "first n_test" subset would hold one class only
    order = torch.argsort(y[n_train:], stable=True) + n_train
    return FakeTensors(x[:n_train], y[:n_train], x[order], y[order])


GRAD_OBF_SEC = {
    "dataset": "cifar10", "seed": 1, "seeds": [5], "width": 2, "blocks": [1, 1, 1, 1], "stem": "imagenet",
    "T": 2, "K": 8, "n_train": 40, "n_test": 32, "attacked": 16,
    "models": [{"name": "SEW", "kind": "sew", "arch": "resnet18", "pool": "max"},
               {"name": "SEW avg", "kind": "sew", "arch": "resnet18", "pool": "avg"},
               {"name": "ANN", "kind": "ann", "arch": "resnet18", "pool": "max"},
               {"name": "SEW RAT", "kind": "sew", "arch": "resnet18", "pool": "max", "defence": "rat"}],
    "training": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "weight_decay": 1e-3, "flip": True},
    "attack": {"eps_255": 6, "step": 0.01, "iters": 2, "random_start": True, "bn_mode": "train", "batch_size": 8},
    "sweep": {"eps_255": [2, 64], "n": 8}, "sparsity": {"n": 16, "batch_size": 8},
    "rat": {"eps_255": 2, "step_255": 2.5, "iters": 1, "random_start": True, "beta": 0.004},
    "masking": {"models": ["SEW", "ANN"], "n": 8, "iters": 2, "restarts": 2,
                "surrogate": {"name": "sigmoid", "alpha": 1.0}, "transfer_from": "ANN",
                "square": {"queries": 5, "n": 8, "p_init": 0.05}}
}


def grad_obf_data(n_train=48, n_test=40, seed=0):
    """3×32×32 images of 3 classes whose brightness tells the class (FakeTensors), the test half sorted by class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n_train + n_test,), generator=g)
    x = torch.rand(n_train + n_test, 3, 32, 32, generator=g) * 0.4 + 0.3 * y.view(-1, 1, 1, 1) / 2 - 0.5
    order = torch.argsort(y[n_train:], stable=True) + n_train
    return FakeTensors(x[:n_train], y[:n_train], x[order], y[order], n_classes=3)
