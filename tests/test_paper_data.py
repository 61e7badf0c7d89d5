"""The paper datasets' loaders (lib.core.paper_data) on miniature datasets generated here in the real on-disk formats:
CIFAR-100 python pickles, a TinyImageNet-200 folder of JPEGs with val_annotations.txt, CIFAR10-DVS .aedat event files
(and their class zips). Nothing is downloaded: every load passes allow_download=False and download_url is replaced by
a function that fails the test."""
import hashlib
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib.core import paper_data as P
from lib.core.data import DataError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    import torchvision.datasets.utils as tvu

    def refuse(*a, **k):
        raise AssertionError("a test tried to download")
    monkeypatch.setattr(tvu, "download_url", refuse)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _truncate(path: Path, n: int) -> None:
    path.write_bytes(path.read_bytes()[:-n])


# ----------------------------------------------------------------------------- CIFAR-100

def make_cifar100(raw: Path, n_train=20, n_test=10, seed=0) -> dict:
    """cifar-100-python/{train,test,meta} as torchvision reads them (pickled dicts: data uint8 [n, 3072] in CHW order,
    fine_labels, coarse_labels; meta: fine_label_names)."""
    rng = np.random.default_rng(seed)
    folder = raw / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = rng.integers(0, 100, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "fine_labels": fine, "coarse_labels": [y // 5 for y in fine],
                         "filenames": [f"{name}_{i}.png" for i in range(n)], "batch_label": name}, f, protocol=2)
        out[name] = (data, fine)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class{i}" for i in range(100)],
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, f, protocol=2)
    return out


def test_cifar100_reads_generated_batches(tmp_path):
    gen = make_cifar100(tmp_path / "raw")
    d = P.load_cifar100(tmp_path / "raw", allow_download=False, strict=False)
    data, fine = gen["train"]
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (10, 3, 32, 32)
    assert d.y_train.tolist() == fine and d.y_test.tolist() == gen["test"][1]
    # pixel (c, h, w) of image i is byte c·1024 + h·32 + w, mapped to (v/255 − 0.5)/0.5
    want = (torch.from_numpy(data.reshape(20, 3, 32, 32)).float() / 255 - 0.5) / 0.5
    assert torch.allclose(d.x_train, want)
    assert d.n_classes == 100 and d.intensity_range == (-1.0, 1.0) and d.augment and d.source == "CIFAR-100"


def test_cifar100_md5_check_fires_on_a_tampered_file(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    make_cifar100(raw)
    # the generated files are not the published ones: strict (the default) names each of them as corrupt
    with pytest.raises(DataError, match=r"cifar-100-python/train \(corrupt") as err:
        P.load_cifar100(raw, allow_download=False)
    assert "cifar-100-python.tar.gz" in str(err.value) and "cs.toronto.edu" in str(err.value)
    # with the fixture's own MD5s as the published ones, strict loads (torchvision's check passes) ...
    folder = raw / "cifar-100-python"
    monkeypatch.setattr(P, "CIFAR100_FILES", {n: _md5(folder / n) for n in ("train", "test", "meta")})
    assert len(P.load_cifar100(raw, allow_download=False).y_test) == 10
    # ... and a truncated file is named, the intact ones are not
    _truncate(folder / "test", 7)
    with pytest.raises(DataError, match=r"cifar-100-python/test \(corrupt") as err:
        P.load_cifar100(raw, allow_download=False)
    assert "cifar-100-python/train" not in str(err.value)


def test_cifar100_unreadable_file_named_without_md5(tmp_path):
    raw = tmp_path / "raw"
    make_cifar100(raw)
    _truncate(raw / "cifar-100-python" / "meta", 20)
    with pytest.raises(DataError, match=r"cifar-100-python/meta .*cannot be read"):
        P.load_cifar100(raw, allow_download=False, strict=False)


def test_cifar100_archive_from_mirror_and_a_truncated_mirror_copy(tmp_path, monkeypatch):
    src = tmp_path / "src"
    gen = make_cifar100(src)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-100-python", arcname="cifar-100-python")
    folder = src / "cifar-100-python"
    monkeypatch.setattr(P, "CIFAR100_FILES", {n: _md5(folder / n) for n in ("train", "test", "meta")})
    monkeypatch.setattr(P, "CIFAR100_ARCHIVE", ("cifar-100-python.tar.gz", _md5(archive), "https://example.org/c100"))
    d = P.load_cifar100(tmp_path / "raw", mirror=mirror, allow_download=False)   # strict: archive MD5-checked
    assert d.y_train.tolist() == gen["train"][1]
    assert (tmp_path / "raw" / "cifar-100-python.tar.gz").is_file()
    _truncate(archive, 100)
    with pytest.raises(DataError, match=r"mirror .*cifar-100-python.tar.gz \(corrupt: \d+ bytes, MD5"):
        P.load_cifar100(tmp_path / "raw2", mirror=mirror, allow_download=False)


def test_cifar100_missing_everything_names_archive_and_url(tmp_path):
    with pytest.raises(DataError) as err:
        P.load_cifar100(tmp_path / "raw", allow_download=False)
    msg = str(err.value)
    assert "cifar-100-python/train (missing)" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in msg
    assert "eb9058c3a382ffc7106e4002c42a8d85" in msg and "download not allowed" in msg


# ----------------------------------------------------------------------------- TinyImageNet-200

WNIDS = ("n09999999", "n01443537", "n02124075")   # wnids.txt order is not sorted: labels follow the sorted order


def _colour(label: int, i: int) -> tuple[int, int, int]:
    return (40 + 80 * label, 30 + 40 * i, 200 - 60 * label)


def make_tiny(raw: Path, n_train=3, n_val=2) -> dict:
    """tiny-imagenet-200 with wnids.txt, train/<wnid>/images/<wnid>_<i>.JPEG (+ <wnid>_boxes.txt) and val/images with
    val_annotations.txt. Image colours encode (sorted label, index); one training image is grayscale."""
    root = raw / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    label = {w: i for i, w in enumerate(sorted(WNIDS))}
    expect = {"train": [], "val": []}
    for w in sorted(WNIDS):
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        boxes = []
        for i in range(n_train):
            name = f"{w}_{i}.JPEG"
            if w == WNIDS[0] and i == 0:
                Image.new("L", (64, 64), 128).save(d / name, quality=95)
                expect["train"].append((label[w], (128, 128, 128)))
            else:
                Image.new("RGB", (64, 64), _colour(label[w], i)).save(d / name, quality=95)
                expect["train"].append((label[w], _colour(label[w], i)))
            boxes.append(f"{name}\t0\t0\t63\t63")
        (root / "train" / w / f"{w}_boxes.txt").write_text("\n".join(boxes) + "\n")
    rows, k = [], 0
    for i in range(n_val):
        for w in WNIDS:
            name = f"val_{k}.JPEG"
            Image.new("RGB", (64, 64), _colour(label[w], i)).save(root / "val" / "images" / name, quality=95)
            rows.append(f"{name}\t{w}\t3\t4\t60\t61")
            expect["val"].append((label[w], _colour(label[w], i)))
            k += 1
    (root / "val" / "val_annotations.txt").write_text("\n".join(rows) + "\n")
    return expect


def _mean_rgb(x: torch.Tensor) -> np.ndarray:
    return ((x.mean(dim=(-1, -2)) * 0.5 + 0.5) * 255).numpy()


def test_tinyimagenet_reads_generated_folder(tmp_path):
    expect = make_tiny(tmp_path / "raw")
    d = P.load_tinyimagenet(tmp_path / "raw", allow_download=False, strict=False)
    assert d.x_train.shape == (9, 3, 64, 64) and d.x_test.shape == (6, 3, 64, 64) and d.n_classes == 3
    assert d.y_train.tolist() == [y for y, _ in expect["train"]]
    assert d.y_test.tolist() == [y for y, _ in expect["val"]]   # labels from val_annotations.txt, by sorted wnid
    assert d.y_test.tolist() == [2, 0, 1, 2, 0, 1]               # WNIDS in file order → sorted positions
    # colours survive (JPEG quality 95: within a few levels); the grayscale image is RGB with equal channels
    assert np.abs(_mean_rgb(d.x_train) - np.array([c for _, c in expect["train"]])).max() < 4
    assert np.abs(_mean_rgb(d.x_test) - np.array([c for _, c in expect["val"]])).max() < 4
    gray = d.x_train[2 * 3]   # the first image of the last sorted wnid (WNIDS[0])
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert d.intensity_range == (-1.0, 1.0) and d.source == "TinyImageNet-200"


def test_tinyimagenet_missing_parts_are_named(tmp_path):
    with pytest.raises(DataError, match=r"tiny-imagenet-200/ \(missing\)") as err:
        P.load_tinyimagenet(tmp_path / "raw", allow_download=False)
    assert "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in str(err.value)
    assert "90528d7ca1a48142e341f4ef8d21d0de" in str(err.value)
    make_tiny(tmp_path / "raw")
    (tmp_path / "raw/tiny-imagenet-200/val/val_annotations.txt").unlink()
    with pytest.raises(DataError, match=r"tiny-imagenet-200/val/val_annotations.txt \(missing\)"):
        P.load_tinyimagenet(tmp_path / "raw", allow_download=False, strict=False)
    # strict: the counts of the real dataset are required
    make_tiny(tmp_path / "raw2")
    with pytest.raises(DataError, match=r"wnids.txt \(3 classes, expected 200\)"):
        P.load_tinyimagenet(tmp_path / "raw2", allow_download=False)


def test_tinyimagenet_truncated_jpeg_is_named(tmp_path):
    make_tiny(tmp_path / "raw")
    bad = tmp_path / f"raw/tiny-imagenet-200/train/{WNIDS[1]}/images/{WNIDS[1]}_1.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(DataError, match=rf"{bad.name} cannot be read"):
        P.load_tinyimagenet(tmp_path / "raw", allow_download=False, strict=False)


def test_tinyimagenet_zip_from_mirror_checked_by_md5(tmp_path, monkeypatch):
    expect = make_tiny(tmp_path / "src")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((tmp_path / "src").rglob("*")):
            z.write(p, p.relative_to(tmp_path / "src"))
    monkeypatch.setattr(P, "TINY_ARCHIVE", ("tiny-imagenet-200.zip", _md5(archive), "https://example.org/tiny.zip"))
    monkeypatch.setattr(P, "TINY_COUNTS", {"classes": 3, "train_per_class": 3, "val": 6})
    d = P.load_tinyimagenet(tmp_path / "raw", mirror=mirror, allow_download=False)   # strict, fixture's MD5/counts
    assert d.y_train.tolist() == [y for y, _ in expect["train"]]
    _truncate(archive, 50)
    with pytest.raises(DataError, match=r"tiny-imagenet-200.zip \(corrupt: \d+ bytes"):
        P.load_tinyimagenet(tmp_path / "raw2", mirror=mirror, allow_download=False)


# ----------------------------------------------------------------------------- CIFAR10-DVS

def write_aedat(path: Path, t, x, y, p) -> None:
    """An AER-DAT file as CIFAR10-DVS ships it: '#' header lines, then big-endian (address, timestamp) uint32 pairs.
    spikingjelly decodes address bits as x_raw = (a & 0xFE) >> 1, y_raw = (a & 0x7F00) >> 8, pol = a & 1 and returns
    x = 127 − y_raw, y = 127 − x_raw, p = 1 − pol: encoded here the other way round from the wanted (x, y, p)."""
    addr = ((127 - np.asarray(x)) << 8) | ((127 - np.asarray(y)) << 1) | (1 - np.asarray(p))
    body = np.stack([addr, np.asarray(t)], axis=1).astype(">u4").tobytes()
    path.write_bytes(b"#!AER-DAT2.0\r\n# generated by tests/test_paper_data.py\r\n" + body)


def make_dvs_extract(extract: Path, per_class: int, seed=0) -> dict:
    """extract/<class>/cifar10_<class>_<i>.aedat with 15–60 events each; returns {file stem: (class, t, x, y, p)}."""
    rng = np.random.default_rng(seed)
    events = {}
    for c, cls in enumerate(CLASSES):
        (extract / cls).mkdir(parents=True)
        for i in range(per_class):
            n = int(rng.integers(15, 60))
            t = np.sort(rng.choice(1_000_000, n, replace=False))
            x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
            write_aedat(extract / cls / f"cifar10_{cls}_{i}.aedat", t, x, y, p)
            events[f"cifar10_{cls}_{i}"] = (c, t, x, y, p)
    return events


def _hist(x, y, p) -> torch.Tensor:
    h = np.zeros((2, 128, 128))
    np.add.at(h, (p, y, x), 1)
    return torch.from_numpy(h).float()


def test_cifar10dvs_parses_integrates_and_splits_generated_events(tmp_path):
    raw = tmp_path / "raw"
    events = make_dvs_extract(raw / "CIFAR10DVS" / "extract", per_class=10)
    d = P.load_cifar10dvs(raw, allow_download=False, strict=False, frames=4, split_by="number", size=None)
    assert isinstance(d, P.EventTensors) and d.family == "event" and d.n_classes == 10
    assert d.x_train.shape == (90, 4, 2, 128, 128) and d.x_test.shape == (10, 4, 2, 128, 128)
    assert (raw / "CIFAR10DVS/events_np/cat/cifar10_cat_3.npz").is_file()             # spikingjelly's raw format
    assert (raw / "CIFAR10DVS/frames_number_4_split_by_number/cat").is_dir()           # spikingjelly's frames
    # 9:1 per class, the last file of each class in sorted-name order (…_9) tests
    assert sorted(d.ids_test) == sorted(f"cifar10_{c}_9" for c in CLASSES)
    assert np.bincount(d.y_train.numpy(), minlength=10).tolist() == [9] * 10
    for x, y, ids in ((d.x_train, d.y_train, d.ids_train), (d.x_test, d.y_test, d.ids_test)):
        for k, stem in enumerate(ids):
            c, t, ex, ey, ep = events[stem]
            assert y[k] == c
            assert x[k].sum() == len(t)                            # integration conserves the events
            assert torch.equal(x[k].sum(0), _hist(ex, ey, ep))     # each event at its (p, y, x)
            n = len(t) // 4                                        # split_by number: equal event counts per frame
            assert torch.equal(x[k][0], _hist(ex[:n], ey[:n], ep[:n]))
    # resized to 64: area pooling × 4 keeps every sample's count
    d64 = P.load_cifar10dvs(raw, allow_download=False, strict=False, frames=4, size=64)
    assert d64.x_train.shape == (90, 4, 2, 64, 64)
    assert torch.equal(d64.x_train.sum(dim=(1, 2, 3, 4)), d.x_train.sum(dim=(1, 2, 3, 4)))
    assert d64.intensity_range[0] == 0.0 and d64.intensity_range[1] == float(d64.x_train.max())


def test_cifar10dvs_class_zips_from_mirror_md5_checked(tmp_path, monkeypatch):
    src = tmp_path / "src"
    events = make_dvs_extract(src, per_class=2, seed=1)
    mirror = tmp_path / "mirror" / "CIFAR10DVS"
    mirror.mkdir(parents=True)
    resources = []
    for cls in CLASSES:   # the figshare zips hold <class>/<files>.aedat
        with zipfile.ZipFile(mirror / f"{cls}.zip", "w") as z:
            for f in sorted((src / cls).iterdir()):
                z.write(f, f"{cls}/{f.name}")
        resources.append((f"{cls}.zip", f"https://example.org/{cls}", _md5(mirror / f"{cls}.zip")))
    monkeypatch.setattr(P, "_dvs_resources", lambda: resources)
    monkeypatch.setattr(P, "DVS_PER_CLASS", 2)
    d = P.load_cifar10dvs(tmp_path / "raw", mirror=tmp_path / "mirror", allow_download=False, frames=2, size=32)
    assert d.x_train.shape == (20, 2, 2, 32, 32) and len(d.x_test) == 0     # ceil(2 · 0.9) = 2 train per class
    assert (tmp_path / "raw/CIFAR10DVS/download/ship.zip").is_file()
    assert sorted(int(d.x_train[k].sum()) for k in range(20)) == sorted(len(v[1]) for v in events.values())
    # a truncated class archive in the mirror is named with its size and MD5; nothing is downloaded
    _truncate(mirror / "dog.zip", 30)
    with pytest.raises(DataError, match=r"dog.zip .*mirror .*dog.zip \(corrupt: \d+ bytes, MD5") as err:
        P.load_cifar10dvs(tmp_path / "raw2", mirror=tmp_path / "mirror", allow_download=False)
    assert "cat.zip" not in str(err.value)


def test_cifar10dvs_missing_names_the_archives_and_figshare(tmp_path):
    with pytest.raises(DataError) as err:
        P.load_cifar10dvs(tmp_path / "raw", allow_download=False)
    msg = str(err.value)
    assert "missing 10 of the 10 class archives" in msg
    assert all(f"{c}.zip" in msg for c in CLASSES) and "https://ndownloader.figshare.com/files/7712788" in msg
    assert not (tmp_path / "raw/CIFAR10DVS/download/airplane.zip").exists()


def test_cifar10dvs_truncated_files_are_named(tmp_path):
    raw = tmp_path / "raw"
    make_dvs_extract(raw / "CIFAR10DVS" / "extract", per_class=2, seed=2)
    bad = raw / "CIFAR10DVS/extract/frog/cifar10_frog_1.aedat"
    _truncate(bad, 3)
    with pytest.raises(DataError, match=r"cifar10_frog_1.aedat \(ValueError"):
        P.load_cifar10dvs(raw, allow_download=False, strict=False, frames=2)
    assert not (raw / "CIFAR10DVS/events_np").exists()   # no half-converted folder for spikingjelly to trust
    bad.unlink()
    P.load_cifar10dvs(raw, allow_download=False, strict=False, frames=2)
    # a truncated converted event file: named, and spikingjelly's half-built frames folder and marker removed
    npz = raw / "CIFAR10DVS/events_np/deer/cifar10_deer_0.npz"
    _truncate(npz, 40)
    with pytest.raises(DataError, match=r"unreadable event files: .*cifar10_deer_0.npz"):
        P.load_cifar10dvs(raw, allow_download=False, strict=False, frames=3)
    assert not (raw / "CIFAR10DVS/frames_number_3_split_by_number").exists()
    assert not (raw / "CIFAR10DVS/frames_number_3_split_by_number.building").exists()


def test_cifar10dvs_split_by_time_cuts_equal_durations(tmp_path):
    raw = tmp_path / "raw"
    extract = raw / "CIFAR10DVS" / "extract"
    rng = np.random.default_rng(3)
    events = {}
    for c, cls in enumerate(CLASSES):
        (extract / cls).mkdir(parents=True)
        n = 30 + c
        t = np.sort(rng.choice(900, n, replace=False)) + 100   # spread enough that no third of the time is empty
        t[0], t[-1] = 100, 1000
        x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
        write_aedat(extract / cls / f"cifar10_{cls}_0.aedat", t, x, y, p)
        events[f"cifar10_{cls}_0"] = (t, x, y, p)
    d = P.load_cifar10dvs(raw, allow_download=False, strict=False, frames=3, split_by="time", size=None)
    assert d.split_by == "time" and d.x_train.shape == (10, 3, 2, 128, 128)
    for k, stem in enumerate(d.ids_train):
        t, x, y, p = events[stem]
        first = t < 100 + (1000 - 100) // 3                     # frame 0: t in [t0, t0 + ΔT), ΔT = (t_N − t0) // 3
        assert torch.equal(d.x_train[k][0], _hist(x[first], y[first], p[first]))
        assert d.x_train[k].sum() == len(t)


def test_paper_datasets_status(tmp_path):
    make_cifar100(tmp_path / "raw")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny-imagenet-200.zip").write_bytes(b"zip")
    rows = {r["dataset"]: r for r in P.paper_datasets_status(mirror, tmp_path / "raw")}
    assert list(rows) == list(P.PAPER_DATASETS)
    assert rows["cifar100"]["available"] and rows["cifar100"]["where"] == "raw_dir (extracted)"
    assert rows["tinyimagenet"]["where"] == "mirror" and rows["tinyimagenet"]["url"].startswith("http://cs231n")
    assert not rows["cifar10dvs"]["available"] and "airplane.zip" in rows["cifar10dvs"]["missing"]
    assert "figshare" in rows["cifar10dvs"]["url"]
