"""Membership splits, the offline mirror check, preprocessing and augmentation."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.core import data as D

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _labels(n, classes=10, seed=0):
    return np.random.default_rng(seed).integers(0, classes, n)


def test_disjoint_split_pools_are_disjoint_stratified_and_sized():
    ytr, yte = _labels(6000), _labels(1000, seed=1)
    s = D.make_split(ytr, yte, seed=3, n_in=1000, n_out=200)
    p = {k: np.array(v) for k, v in s["pools"].items()}
    assert len(p["target_in"]) == len(p["shadow_in"]) == 1000
    assert len(p["target_out"]) == len(p["shadow_out"]) == 200
    assert not set(p["target_in"]) & set(p["shadow_in"])      # members: both index the training set
    assert not set(p["target_out"]) & set(p["shadow_out"])    # non-members: both index the test set
    assert s["source"]["target_in"] == "train" and s["source"]["target_out"] == "test"
    assert set(p["eval"]) == set(p["target_out"]) | set(p["shadow_out"])
    for name, y in (("target_in", ytr), ("shadow_in", ytr), ("target_out", yte)):
        share = np.bincount(y[p[name]], minlength=10) / len(p[name])
        overall = np.bincount(y, minlength=10) / len(y)
        assert np.abs(share - overall).max() < 0.01, name     # stratified


def test_split_is_deterministic_per_seed():
    ytr, yte = _labels(3000), _labels(600, seed=1)
    a = D.make_split(ytr, yte, seed=5, n_in=300, n_out=100)
    b = D.make_split(ytr, yte, seed=5, n_in=300, n_out=100)
    c = D.make_split(ytr, yte, seed=6, n_in=300, n_out=100)
    assert a == b
    assert a["pools"]["target_in"] != c["pools"]["target_in"]


def test_full_halves_when_sizes_are_none():
    ytr, yte = _labels(120, 3), _labels(30, 3, seed=1)
    s = D.make_split(ytr, yte, seed=0, n_in=None, n_out=None)
    assert len(s["pools"]["target_in"]) + len(s["pools"]["shadow_in"]) == 120
    assert len(s["pools"]["target_out"]) + len(s["pools"]["shadow_out"]) == 30


def test_as_published_shadow_overlaps_target_as_the_authors_code():
    ytr, yte = _labels(3000), _labels(600, seed=1)
    pub = D.make_split(ytr, yte, seed=0, n_in=500, n_out=200, mode="as_published")
    dis = D.make_split(ytr, yte, seed=0, n_in=500, n_out=200, mode="disjoint")
    p = pub["pools"]
    assert set(p["shadow_in"]) <= set(p["target_in"]) and len(p["shadow_in"]) == 400
    assert set(p["shadow_out"]) <= set(p["target_out"]) and len(p["shadow_out"]) == 40
    assert p["target_in"] == dis["pools"]["target_in"]  # the target is the same model in both modes


def test_bad_split_mode_names_parameter():
    with pytest.raises(ValueError, match="split_mode"):
        D.make_split(_labels(100), _labels(50), seed=0, n_in=10, n_out=5, mode="overlap")


def test_mirror_check_names_the_missing_file(tmp_path):
    if not MIRROR.is_dir():
        pytest.skip("no ../shared/datasets mirror beside the repository")
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / "MNIST", mirror / "MNIST")
    (mirror / "MNIST/raw/t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.DataError, match="t10k-labels-idx1-ubyte") as err:
        D.fetch("mnist", tmp_path / "raw", mirror, allow_download=False)
    assert "train-images" not in str(err.value)  # only the missing file is named
    # a corrupt file is reported as such
    mirror2 = tmp_path / "mirror2"
    shutil.copytree(MIRROR / "MNIST", mirror2 / "MNIST")
    p = mirror2 / "MNIST/raw/train-labels-idx1-ubyte"
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[:-1] + b"\x00")
    with pytest.raises(D.DataError, match="train-labels-idx1-ubyte"):
        D.fetch("mnist", tmp_path / "raw2", mirror2, allow_download=False)


def test_truncated_mirror_file_is_reported_as_there_but_not_verifying(tmp_path):
    """A mirror file that exists but is truncated is not "missing": the error names it, its size and its MD5."""
    if not MIRROR.is_dir():
        pytest.skip("no ../shared/datasets mirror beside the repository")
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / "MNIST", mirror / "MNIST")
    p = mirror / "MNIST/raw/t10k-labels-idx1-ubyte"
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(D.DataError) as err:
        D.fetch("mnist", tmp_path / "raw", mirror, allow_download=False)
    msg = str(err.value)
    assert "does not verify" in msg and f"{p} has 100 bytes, MD5 {D.md5(p)}" in msg, msg
    assert "train-images" not in msg


def test_mnist_from_mirror_is_verified_and_preprocessed(tmp_path):
    if not MIRROR.is_dir():
        pytest.skip("no mirror")
    t = D.load("mnist", tmp_path / "raw", mirror=MIRROR)
    assert t.x_train.shape == (60000, 1, 28, 28) and t.x_test.shape == (10000, 1, 28, 28)
    assert float(t.x_train.min()) == 0.0 and float(t.x_train.max()) == 1.0   # mean 0 / std 1 = unchanged
    assert sorted(t.y_train.unique().tolist()) == list(range(10))


def test_tabular_scaler_fit_on_training_part_only():
    t = D.load("breast_cancer")
    assert t.x_train.shape[0] == 455 and t.x_test.shape[0] == 114      # 80/20 stratified
    assert torch.allclose(t.x_train.mean(0), torch.zeros(30), atol=1e-5)
    assert not torch.allclose(t.x_test.mean(0), torch.zeros(30), atol=1e-3)


def test_unknown_dataset_names_parameter():
    with pytest.raises(ValueError, match="datasets"):
        D.load("svhn")


def test_augment_crops_and_flips_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32) / 1e4
    out = D.augment(x.repeat(64, 1, 1, 1), g)
    assert out.shape == (128, 3, 32, 32)
    # every output is a shifted (and maybe mirrored) window of its padded input
    xp = torch.nn.functional.pad(x, (4, 4, 4, 4), value=-1.0)
    flips = 0
    for i in range(16):
        src = xp[i % 2]
        found = False
        for dy in range(9):
            for dx in range(9):
                win = src[:, dy:dy + 32, dx:dx + 32]
                if torch.equal(out[i], win):
                    found = True
                elif torch.equal(out[i], win.flip(-1)):
                    found, flips = True, flips + 1
        assert found
    assert 0 < flips < 16
