"""Datasets, preprocessing (paper A §IV-A) and membership splits.

Image sets are held as whole tensors (airbench style): one float tensor per split, augmented in batch.
Preprocessing:
- MNIST / Fashion-MNIST: 28×28 grayscale in [0, 1] (ToTensor), "normalized with mean 0, std 1", i.e. unchanged.
- CIFAR-10: (x - 0.5) / 0.5 per channel; training batches get a random 32×32 crop of the 4-pixel
  zero-padded image and a horizontal flip with p = 0.5 (see `augment`).
- Iris / Breast Cancer: a fixed 80/20 stratified split; StandardScaler fit on the 80% part only.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from .vocab import CIFAR10_SOURCES, DATASETS, IMAGE_DATASETS, SPLIT_MODES, TABULAR_DATASETS  # noqa: F401

POOLS = ("target_in", "target_out", "shadow_in", "shadow_out")
STANDIN_LABEL = "CIFAR-10 JPEG stand-in (not CIFAR-10)"

# Files each image set needs in <raw_dir>/<folder>/raw (or <raw_dir> for CIFAR-10), with accepted MD5s:
# (uncompressed name, its MD5 or None, compressed name, its MD5 as torchvision checks it).
_MNIST_GZ = dict(__import__("torchvision").datasets.MNIST.resources)
_FMNIST_GZ = dict(__import__("torchvision").datasets.FashionMNIST.resources)
_MNIST_RAW_MD5 = {  # published MD5s of the uncompressed originals
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
RAW_FILES = {
    "mnist": ("MNIST/raw", [(n, _MNIST_RAW_MD5[n], n + ".gz", _MNIST_GZ[n + ".gz"]) for n in _IDX]),
    "fmnist": ("FashionMNIST/raw", [(n, None, n + ".gz", _FMNIST_GZ[n + ".gz"]) for n in _IDX]),
    "cifar10": (".", [(None, None, "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")]),
    "cifar10-jpeg-standin": (".", [(None, None, "CIFAR10-jpeg-standin.tar.gz", "c0314f743a6b680ed8db2e433ffeb575")]),
}


class DataError(RuntimeError):
    """A dataset could not be found or verified; the message says which files and what to do."""


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _item_ok(folder: Path, item) -> bool:
    raw, raw_md5, gz, gz_md5 = item
    if raw is not None and (folder / raw).is_file() and (raw_md5 is None or md5(folder / raw) == raw_md5):
        # an uncompressed file without a known MD5 counts only beside its verified archive
        return raw_md5 is not None or ((folder / gz).is_file() and md5(folder / gz) == gz_md5)
    return (folder / gz).is_file() and md5(folder / gz) == gz_md5


def _problems(folder: Path, items, mirror: Path | None = None) -> list[str]:
    """One line per file of `items` that `folder` lacks or holds corrupt; with `mirror` (the mirror's folder of the
    same files), a file the mirror has but that does not verify is reported as such (not as "missing")."""
    out = []
    for item in items:
        if not _item_ok(folder, item):
            names = [n for n in (item[0], item[2]) if n]
            present = [n for n in names if (folder / n).exists()]
            note = 'corrupt: MD5 mismatch' if present else 'missing'
            bad = [_mirror_mismatch(mirror / n, want) for n, want in ((item[0], item[1]), (item[2], item[3]))
                   if mirror is not None and n and want and (mirror / n).is_file()]
            if bad and not present:
                note = "missing; the mirror's copy is there but does not verify: " + "; ".join(bad)
            out.append(f"{' or '.join(names)} ({note})")
    return out


def _mirror_mismatch(path: Path, want: str) -> str:
    """Why a mirror file was not copied: its size and MD5 against the expected MD5 (a truncated or corrupt copy)."""
    return f"{path} has {path.stat().st_size} bytes, MD5 {md5(path)} (expected MD5 {want})"


def _copy_from_mirror(key: str, raw_dir: Path, mirror: Path) -> None:
    sub, items = RAW_FILES[key]
    src, dst = mirror / sub, raw_dir / sub
    dst.mkdir(parents=True, exist_ok=True)
    for raw, raw_md5, gz, gz_md5 in items:
        for name, want in ((raw, raw_md5), (gz, gz_md5)):
            if name and (src / name).is_file() and not (dst / name).is_file():
                if want is None or md5(src / name) == want:
                    shutil.copyfile(src / name, dst / name)


def fetch(key: str, raw_dir: str | Path, mirror: str | Path | None, allow_download: bool = True) -> Path:
    """Make sure the original files of `key` are in raw_dir, verified by MD5; return their folder.

    Order: files already there → copy from `mirror` → torchvision download. Fails at once with a
    DataError that lists every missing or corrupt file and how to provide it.
    """
    if key not in RAW_FILES:
        raise ValueError(f"unknown dataset {key!r}; choose one of {sorted(RAW_FILES)}")
    raw_dir = Path(raw_dir)
    sub, items = RAW_FILES[key]
    folder = raw_dir / sub
    if not _problems(folder, items):
        return folder
    if mirror:
        mirror = Path(mirror)
        if not mirror.is_dir():
            raise DataError(f"data mirror {mirror} (from the mirror environment variable) is not a folder")
        _copy_from_mirror(key, raw_dir, mirror)
    if _problems(folder, items) and allow_download and key in ("mnist", "fmnist", "cifar10"):
        try:
            _torchvision_class(key)(str(raw_dir), train=True, download=True)
        except Exception as err:  # no network: report below with the file list
            warnings.warn(f"torchvision could not download {key}: {err}")
    problems = _problems(folder, items, Path(mirror) / sub if mirror else None)
    if problems:
        where = f"the mirror {Path(mirror) / sub}" if mirror else "no mirror (the mirror environment variable is unset)"
        hint = ("set `00_data.cifar10_source: jpeg-standin` in params.yaml (or run `make repro "
                "CIFAR10_SOURCE=jpeg-standin`) to use the labelled JPEG stand-in, or put the original "
                "cifar-10-python.tar.gz in the mirror") if key == "cifar10" else \
            "copy the original files into the mirror folder (laid out as a torchvision root) or connect to the internet"
        raise DataError(f"{key}: cannot provide {', '.join(problems)} in {folder}; checked {where} and a download. To fix: {hint}.")
    return folder


def _torchvision_class(key):
    import torchvision.datasets as tvd
    return {"mnist": tvd.MNIST, "fmnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[key]


# ----------------------------------------------------------------------------- tensors

@dataclass
class Tensors:
    """A dataset as whole tensors. `x_*` are preprocessed floats; `intensity_range` is the value range
    that encoders map to spike probabilities [0, 1]."""
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    family: str            # "image" or "tabular"
    source: str            # what the numbers were computed on (e.g. the JPEG stand-in label)
    intensity_range: tuple[float, float]
    augment: bool = False  # CIFAR-10 training augmentation

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load(name: str, raw_dir: str | Path = "data/raw", *, cifar10_source: str = "torchvision",
         mirror: str | Path | None = None, tabular_test_fraction: float = 0.2, tabular_split_seed: int = 0,
         processed_dir: str | Path = "data/processed") -> Tensors:
    """Load dataset `name` as preprocessed tensors (fetching the raw files first if needed)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (parameter `datasets`); choose from {list(DATASETS)}")
    if name in TABULAR_DATASETS:
        return _load_tabular(name, tabular_test_fraction, tabular_split_seed)
    if name == "cifar10":
        if cifar10_source not in CIFAR10_SOURCES:
            raise ValueError(f"`cifar10_source` must be one of {CIFAR10_SOURCES}, got {cifar10_source!r}")
        if cifar10_source == "jpeg-standin":
            warnings.warn("cifar10_source=jpeg-standin: using the JPEG-recompressed stand-in; every result on it "
                          f"is labelled '{STANDIN_LABEL}'")
            xtr, ytr, xte, yte = _load_standin(Path(raw_dir), mirror, Path(processed_dir))
            source = STANDIN_LABEL
        else:
            fetch("cifar10", raw_dir, mirror)
            tv = _torchvision_class("cifar10")
            tr, te = tv(str(raw_dir), train=True, download=True), tv(str(raw_dir), train=False, download=True)
            xtr, ytr = torch.from_numpy(tr.data), torch.tensor(tr.targets)
            xte, yte = torch.from_numpy(te.data), torch.tensor(te.targets)
            source = "CIFAR-10"
        to_float = lambda x: (x.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
        return Tensors(name, to_float(xtr), ytr.long(), to_float(xte), yte.long(), 10, "image", source,
                       (-1.0, 1.0), augment=True)
    fetch(name, raw_dir, mirror)
    tv = _torchvision_class(name)
    tr, te = tv(str(raw_dir), train=True, download=True), tv(str(raw_dir), train=False, download=True)
    to_float = lambda x: x.unsqueeze(1).float() / 255.0
    label = {"mnist": "MNIST", "fmnist": "Fashion-MNIST"}[name]
    return Tensors(name, to_float(tr.data), tr.targets.long(), to_float(te.data), te.targets.long(), 10,
                   "image", label, (0.0, 1.0))


def _load_standin(raw_dir: Path, mirror, processed_dir: Path):
    cache = processed_dir / "cifar10-jpeg-standin.pt"
    if cache.is_file():
        return torch.load(cache)
    folder = fetch("cifar10-jpeg-standin", raw_dir, mirror, allow_download=False)
    out = folder / "CIFAR10-jpeg-standin"
    if not (out / "test").is_dir():
        with tarfile.open(folder / "CIFAR10-jpeg-standin.tar.gz") as tar:
            tar.extractall(out, filter="data")
    from torchvision.datasets import ImageFolder
    arrays = []
    for split in ("train", "test"):
        ds = ImageFolder(str(out / split))
        x = np.stack([np.asarray(ds.loader(p).convert("RGB")) for p, _ in ds.samples])
        arrays += [torch.from_numpy(x), torch.tensor(ds.targets)]
    processed_dir.mkdir(parents=True, exist_ok=True)
    torch.save(tuple(arrays), cache)
    return tuple(arrays)


def _load_tabular(name: str, test_fraction: float, split_seed: int) -> Tensors:
    from sklearn.datasets import load_breast_cancer, load_iris
    bunch = {"iris": load_iris, "breast_cancer": load_breast_cancer}[name]()
    xtr, xte, ytr, yte = train_test_split(bunch.data, bunch.target, test_size=test_fraction,
                                          stratify=bunch.target, random_state=split_seed)
    scaler = StandardScaler().fit(xtr)  # fit on the training part only
    f = lambda a: torch.tensor(scaler.transform(a), dtype=torch.float32)
    label = {"iris": "Iris", "breast_cancer": "Breast Cancer"}[name]
    return Tensors(name, f(xtr), torch.tensor(ytr).long(), f(xte), torch.tensor(yte).long(),
                   int(bunch.target.max()) + 1, "tabular", label, (-3.0, 3.0))


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4, fill: float = -1.0) -> torch.Tensor:
    """Batched CIFAR-10 augmentation: random crop of the `pad`-padded image (padding = black = -1 after
    normalization) and horizontal flip with p = 0.5, one draw per image."""
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=fill)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)
    cols = dx[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # [b, h, w, c]
    return out.permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- membership splits

def _stratified_take(index: np.ndarray, labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    if n is None or n >= len(index):
        return np.sort(index)
    take, _ = train_test_split(index, train_size=n, stratify=labels[index], random_state=seed)
    return np.sort(take)


def _halves(n_total: int, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = train_test_split(np.arange(n_total), test_size=0.5, stratify=labels, random_state=seed)
    return np.sort(a), np.sort(b)


def make_split(y_train, y_test, *, seed: int, n_in: int | None, n_out: int | None, mode: str = "disjoint",
               shadow_member_fraction: float = 0.8, shadow_nonmember_fraction: float = 0.2) -> dict:
    """Membership pools for one dataset and seed: indices into the training ("train") or test ("test") set.

    disjoint: train set → two stratified halves (target / shadow members), test set → two halves
    (target / shadow non-members); each pool is then a stratified subset of `n_in` / `n_out` examples
    (None = the whole half). The four pools are pairwise disjoint.
    as_published: the target pools as above; shadow-in is a random `shadow_member_fraction` of target-in
    and shadow-out a random `shadow_nonmember_fraction` of target-out (the authors' earlier code).
    `eval` is every test example used by either model: test accuracy is measured on it.
    """
    if mode not in SPLIT_MODES:
        raise ValueError(f"`split_mode` must be one of {SPLIT_MODES}, got {mode!r}")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    tr_a, tr_b = _halves(len(y_train), y_train, seed)
    te_a, te_b = _halves(len(y_test), y_test, seed + 10_000)
    pools = {"target_in": _stratified_take(tr_a, y_train, n_in, seed),
             "target_out": _stratified_take(te_a, y_test, n_out, seed)}
    if mode == "disjoint":
        pools["shadow_in"] = _stratified_take(tr_b, y_train, n_in, seed + 1)
        pools["shadow_out"] = _stratified_take(te_b, y_test, n_out, seed + 1)
    else:
        rng = np.random.default_rng(seed)
        frac = lambda idx, f: np.sort(rng.choice(idx, size=max(1, round(f * len(idx))), replace=False))
        pools["shadow_in"] = frac(pools["target_in"], shadow_member_fraction)
        pools["shadow_out"] = frac(pools["target_out"], shadow_nonmember_fraction)
    split = {"seed": seed, "mode": mode, "n_in": n_in, "n_out": n_out,
             "source": {"target_in": "train", "shadow_in": "train", "target_out": "test", "shadow_out": "test",
                        "eval": "test"},
             "pools": {k: v.tolist() for k, v in pools.items()}}
    split["pools"]["eval"] = sorted(set(split["pools"]["target_out"]) | set(split["pools"]["shadow_out"]))
    return split


def split_path(splits_dir: str | Path, dataset: str, seed: int) -> Path:
    return Path(splits_dir) / dataset / f"seed{seed}.json"


def save_split(split: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split))


def load_split(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"membership split {path} is missing: run the 00_data stage (dvc repro 00_data)")
    return json.loads(path.read_text())


def pool(data: Tensors, split: dict, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of pool `name` (target_in, target_out, shadow_in, shadow_out or eval)."""
    idx = torch.tensor(split["pools"][name], dtype=torch.long)
    if split["source"][name] == "train":
        return data.x_train[idx], data.y_train[idx]
    return data.x_test[idx], data.y_test[idx]


def example_ids(split: dict, name: str) -> np.ndarray:
    """Dataset-wide ids of the examples of pool `name`, the same in every split of a dataset: a training-set index
    i is i, a test-set index j is −(j + 1). Per-example outcomes of two models are paired on these ids."""
    idx = np.asarray(split["pools"][name], dtype=np.int64)
    return idx if split["source"][name] == "train" else -(idx + 1)


def mirror_from_env(var: str) -> str | None:
    value = os.environ.get(var)
    return value or None
