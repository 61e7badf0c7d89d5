"""The papers' own datasets beyond paper A's: CIFAR-100 (paper C Table I, paper D), TinyImageNet-200 (paper C §IV-C)
and CIFAR10-DVS (paper D Tables 1–3), as the whole-tensor `Tensors` of lib.core.data.

Each loader takes its files from `raw_dir` if they are there and verify, else from the offline mirror (the folder the
mirror environment variable names, params.yaml 00_data.mirror_env), else downloads them (only with
`allow_download=True`), else fails with a `DataError` that names every missing or corrupt file and the URL to fetch
it from. `strict=True` (the default) checks the real datasets' published MD5s and counts; `strict=False` checks only
the on-disk structure (every file the format needs, readable): it exists for the miniature datasets the tests
generate and must not be used for results.

Mirror layout (beside the existing files of ../shared/datasets, none of these three are there today):
  <mirror>/cifar-100-python.tar.gz          torchvision's archive, MD5 eb9058c3a382ffc7106e4002c42a8d85
  <mirror>/tiny-imagenet-200.zip            the cs231n archive, MD5 90528d7ca1a48142e341f4ef8d21d0de
  <mirror>/CIFAR10DVS/<class>.zip           the ten figshare archives spikingjelly names, with its MD5s

CIFAR-100: torchvision's `CIFAR100` (its MD5 check of `cifar-100-python/{train,test,meta}`), 50,000 / 10,000 images,
100 fine labels (the coarse labels are not used). Preprocessing as CIFAR-10 in lib.core.data: (x − 0.5) / 0.5,
intensity range (−1, 1), the same batch augmentation (`augment=True`).

TinyImageNet-200: no torchvision class; `_read_tiny` reads the standard folder layout
  tiny-imagenet-200/wnids.txt, train/<wnid>/images/*.JPEG (500 per class), val/images/*.JPEG (10,000) and
  val/val_annotations.txt (image, wnid, bounding box; tab-separated).
The label of a wnid is its position in the SORTED wnids (what torchvision's ImageFolder on train/ would give), not its
line in wnids.txt. The test set is the labelled val set (the official test images have no labels). Images are 64×64;
the few grayscale JPEGs are converted to RGB. Preprocessing as CIFAR-10 (x − 0.5) / 0.5, augmentation on. The zip's
MD5 90528d7ca1a48142e341f4ef8d21d0de is the one many independent public TinyImageNet loaders carry (e.g. avalanche's
tiny_imagenet.py) and that a public download log records for the 248,100,043-byte cs231n zip; it was not checked
against the file here (no internet on this machine).

CIFAR10-DVS: spikingjelly's `CIFAR10DVS` (pinned 2.0.0). On disk under <raw_dir>/CIFAR10DVS (its `root`):
  download/<class>.zip     the ten archives (figshare URLs and MD5s from `CIFAR10DVS.resource_url_md5()`),
  extract/<class>/cifar10_<class>_<i>.aedat   what they unzip to (AER-DAT, big-endian 32-bit address + timestamp),
  events_np/<class>/cifar10_<class>_<i>.npz   the events converted by spikingjelly (t, x, y, p; x, y in [0, 128)),
  frames_number_<T>_split_by_<how>/<class>/*.npz   the frames spikingjelly integrates ([T, 2, 128, 128] counts;
                           reused as they are on later loads: delete the folder after replacing events_np).
spikingjelly would download by itself whenever events_np is absent, so this module prepares events_np itself (from
extract/ or the verified archives, converting each .aedat with spikingjelly's own reader and naming any file that
fails) and only then builds `CIFAR10DVS(root, data_type="frame", frames_number=T, split_by=...)`.
Frames: each sample's events are cut into T segments (split_by "number": equal event counts, spikingjelly's
`cal_fixed_frames_number_segment_index`; "time": equal durations) and each segment is summed per polarity and pixel
(`integrate_events_segment_to_frame`): a frame holds event counts, so the frames of a sample sum to its number of
events. Resizing (`size`) is area pooling rescaled by (128 / size)², which keeps the counts exactly when size divides
128 (64, 32) and approximately otherwise (48). Samples are [T, 2, H, W]; `EventTensors` is the `Tensors` sibling.
Split: the dataset has none. Per class, the first ceil(0.9·n) samples in spikingjelly's file order (DatasetFolder's
sorted names: cifar10_airplane_0, _1, _10, _100, ...) train and the rest test: what
`spikingjelly.datasets.split_to_train_test_set(0.9, dataset, 10)` (random_split=False) gives, the split most
spikingjelly-based CIFAR10-DVS code uses, computed here from the labels without loading every sample twice.

Paper D's own DVS preprocessing could not be read from its code: the authors' repository (luutn2002/grad-obf-snn,
all six commits up to 11989ad) has no CIFAR10-DVS code at all. train.py:157-191 (`preprocess`) always builds
torchvision CIFAR-100 (even for the configs/cifar10 files), README.md:75-77 says "All used dataset is included in
torchvision" (CIFAR10-DVS is not), and every config sets `T = 10` (e.g. configs/cifar10/max/.env.sewrn18.phase:1), the
time steps of the phase encoder of static images (train.py:212 builds `Encoder` without it; its default is also 10,
source/encoder.py:8). The defaults here are therefore choices,
not the authors': T = 10 frames (their T), split_by "number" and the 9:1 per-class split (spikingjelly's usual
recipe), 64×64 (the exact halving of 128; 48×48 is the other common choice).
"""
from __future__ import annotations

import math
import os
import pickle
import shutil
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR100 as _TV_CIFAR100

from .data import DataError, Tensors, md5

PAPER_DATASETS = ("cifar100", "tinyimagenet", "cifar10dvs")   # for lib.core.vocab (the lead adds it there)
DVS_SPLIT_BY = ("number", "time")
LABELS = {"cifar100": "CIFAR-100", "tinyimagenet": "TinyImageNet-200", "cifar10dvs": "CIFAR10-DVS"}
PAPERS = {"cifar100": "C (Table I), D (Tables 1-3)", "tinyimagenet": "C (§IV-C)", "cifar10dvs": "D (Tables 1-3)"}

# ----------------------------------------------------------------------------- the published files

CIFAR100_ARCHIVE = (_TV_CIFAR100.filename, _TV_CIFAR100.tgz_md5, _TV_CIFAR100.url)
CIFAR100_FOLDER = _TV_CIFAR100.base_folder          # cifar-100-python
# file → MD5 as torchvision checks them (train, test, meta)
CIFAR100_FILES = dict(_TV_CIFAR100.train_list + _TV_CIFAR100.test_list) | \
    {_TV_CIFAR100.meta["filename"]: _TV_CIFAR100.meta["md5"]}

TINY_ARCHIVE = ("tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de",
                "http://cs231n.stanford.edu/tiny-imagenet-200.zip")
TINY_FOLDER = "tiny-imagenet-200"
TINY_COUNTS = {"classes": 200, "train_per_class": 500, "val": 10_000}
TINY_SIZE = 64

DVS_FOLDER = "CIFAR10DVS"   # spikingjelly's root inside raw_dir, and the folder of the ten zips in the mirror
DVS_SIZE = 128
DVS_PER_CLASS = 1000


def _dvs_resources() -> list[tuple[str, str, str]]:
    """(archive name, figshare URL, MD5) of the ten CIFAR10-DVS class archives, as spikingjelly lists them."""
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS
    return [tuple(r) for r in CIFAR10DVS.resource_url_md5()]


def _dvs_classes() -> tuple[str, ...]:
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS_CLASS_NAMES
    return tuple(CIFAR10DVS_CLASS_NAMES)


def _mirror_dir(mirror: str | Path) -> Path:
    mirror = Path(mirror)
    if not mirror.is_dir():
        raise DataError(f"data mirror {mirror} (from the mirror environment variable) is not a folder")
    return mirror


def _fix_hint(what: str) -> str:
    return (f"put {what} into the mirror folder (the mirror environment variable, params.yaml 00_data.mirror_env) "
            "or into raw_dir, or run where there is internet (allow_download)")


def _listing(problems: list[str], limit: int = 12) -> str:
    shown = problems[:limit]
    more = f" … and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(shown) + more


def _archive_state(path: Path, want: str | None) -> str | None:
    """None when `path` is there and (with `want`) has that MD5; else why not."""
    if not path.is_file():
        return "missing"
    if want is not None:
        got = md5(path)
        if got != want:
            return f"corrupt: {path.stat().st_size} bytes, MD5 {got} (expected MD5 {want})"
    return None


def _provide_archive(name: str, want: str | None, dest: Path, mirror_dir: Path | None, url: str,
                     allow_download: bool) -> tuple[Path | None, list[str]]:
    """Make a verified archive `name` exist in `dest`: there already → copy from `mirror_dir` → download.
    Returns (its path or None, what was tried and why it failed)."""
    target = dest / name
    notes = []
    state = _archive_state(target, want)
    if state is None:
        return target, notes
    notes.append(f"{target} ({state})")
    if mirror_dir is not None:
        src = mirror_dir / name
        mstate = _archive_state(src, want)
        if mstate is None:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            return target, notes
        notes.append(f"mirror {src} ({mstate})")
    else:
        notes.append("no mirror (the mirror environment variable is unset)")
    if allow_download:
        from torchvision.datasets.utils import download_url
        try:
            download_url(url, str(dest), filename=name, md5=want)
            if _archive_state(target, want) is None:
                return target, notes
            notes.append(f"download from {url} did not verify")
        except Exception as err:  # no network: reported with the rest
            notes.append(f"download from {url} failed: {err}")
    else:
        notes.append("download not allowed")
    return None, notes


# ----------------------------------------------------------------------------- CIFAR-100

def _cifar100_problems(folder: Path, files: dict) -> list[str]:
    out = []
    for name, want in files.items():
        p = folder / name
        if not p.is_file():
            out.append(f"{CIFAR100_FOLDER}/{name} (missing)")
        elif want is not None and md5(p) != want:
            out.append(f"{CIFAR100_FOLDER}/{name} (corrupt: {p.stat().st_size} bytes, MD5 {md5(p)}, expected {want})")
    return out


def fetch_cifar100(raw_dir: str | Path = "data/raw", mirror: str | Path | None = None, *,
                   allow_download: bool = True, strict: bool = True) -> Path:
    """Make sure `cifar-100-python/{train,test,meta}` are in raw_dir (MD5-checked when strict); return raw_dir.

    Order: extracted files already there → the archive in raw_dir → the archive from the mirror → torchvision's
    download (allow_download) — the archive always MD5-checked when strict — then extracted."""
    raw_dir = Path(raw_dir)
    files = CIFAR100_FILES if strict else dict.fromkeys(CIFAR100_FILES)
    folder = raw_dir / CIFAR100_FOLDER
    if not _cifar100_problems(folder, files):
        return raw_dir
    name, want, url = CIFAR100_ARCHIVE
    mirror_dir = _mirror_dir(mirror) if mirror else None
    archive, notes = _provide_archive(name, want if strict else None, raw_dir, mirror_dir, url, allow_download)
    if archive is not None:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(raw_dir, filter="data")
        except (tarfile.TarError, EOFError, OSError) as err:
            notes.append(f"{archive} could not be extracted ({err})")
    problems = _cifar100_problems(folder, files)
    if problems:
        raise DataError(f"cifar100: cannot provide {', '.join(problems)} in {raw_dir}; tried {'; '.join(notes)}. "
                        f"To fix: {_fix_hint(f'{name} (from {url}, MD5 {want})')}.")
    return raw_dir


def _cifar100_class(files: dict):
    """torchvision's CIFAR100 checking `files` (file → MD5, or None to check presence only)."""
    class _CIFAR100(_TV_CIFAR100):
        train_list = [["train", files["train"]]]
        test_list = [["test", files["test"]]]
        meta = {**_TV_CIFAR100.meta, "md5": files["meta"]}
    return _CIFAR100


def load_cifar100(raw_dir: str | Path = "data/raw", *, mirror: str | Path | None = None,
                  allow_download: bool = True, strict: bool = True) -> Tensors:
    """CIFAR-100 as Tensors: 50,000 / 10,000 images, 100 fine labels, (x − 0.5) / 0.5, augment on."""
    fetch_cifar100(raw_dir, mirror, allow_download=allow_download, strict=strict)
    files = CIFAR100_FILES if strict else dict.fromkeys(CIFAR100_FILES)
    tv = _cifar100_class(files)
    try:
        tr, te = tv(str(raw_dir), train=True), tv(str(raw_dir), train=False)
    except Exception as err:  # a file that is there but does not unpickle (truncated): name it
        bad = [n for n in files if not _unpickles(Path(raw_dir) / CIFAR100_FOLDER / n)]
        raise DataError(f"cifar100: {', '.join(f'{CIFAR100_FOLDER}/{n}' for n in bad) or CIFAR100_FOLDER} in "
                        f"{raw_dir} cannot be read ({type(err).__name__}: {err}); replace it from "
                        f"{CIFAR100_ARCHIVE[2]}") from err
    to_float = lambda x: (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
    return Tensors("cifar100", to_float(tr.data), torch.tensor(tr.targets).long(), to_float(te.data),
                   torch.tensor(te.targets).long(), 100, "image", LABELS["cifar100"], (-1.0, 1.0), augment=True)


def _unpickles(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            pickle.load(f, encoding="latin1")
        return True
    except Exception:
        return False


# ----------------------------------------------------------------------------- TinyImageNet-200

def _tiny_problems(root: Path, strict: bool) -> list[str]:
    """What the folder `root` (tiny-imagenet-200) lacks; [] when the layout is complete."""
    if not root.is_dir():
        return [f"{TINY_FOLDER}/ (missing)"]
    out = []
    wnids_file = root / "wnids.txt"
    if not wnids_file.is_file():
        return [f"{TINY_FOLDER}/wnids.txt (missing)"]
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    if not wnids:
        return [f"{TINY_FOLDER}/wnids.txt (empty)"]
    if strict and len(wnids) != TINY_COUNTS["classes"]:
        out.append(f"{TINY_FOLDER}/wnids.txt ({len(wnids)} classes, expected {TINY_COUNTS['classes']})")
    for w in wnids:
        d = root / "train" / w / "images"
        n = len([p for p in d.glob("*.JPEG")]) if d.is_dir() else 0
        if n == 0:
            out.append(f"{TINY_FOLDER}/train/{w}/images/*.JPEG (missing)")
        elif strict and n != TINY_COUNTS["train_per_class"]:
            out.append(f"{TINY_FOLDER}/train/{w}/images ({n} images, expected {TINY_COUNTS['train_per_class']})")
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        out.append(f"{TINY_FOLDER}/val/val_annotations.txt (missing)")
        return out
    rows = _tiny_annotations(ann)
    known = set(wnids)
    unknown = sorted({w for _, w in rows if w not in known})
    if unknown:
        out.append(f"{TINY_FOLDER}/val/val_annotations.txt (wnids not in wnids.txt: {', '.join(unknown[:5])})")
    absent = [f for f, _ in rows if not (root / "val" / "images" / f).is_file()]
    if absent:
        out.append(f"{TINY_FOLDER}/val/images/{absent[0]} (missing; {len(absent)} annotated images missing)")
    if not rows:
        out.append(f"{TINY_FOLDER}/val/val_annotations.txt (no rows)")
    elif strict and len(rows) != TINY_COUNTS["val"]:
        out.append(f"{TINY_FOLDER}/val/val_annotations.txt ({len(rows)} rows, expected {TINY_COUNTS['val']})")
    return out


def _tiny_annotations(path: Path) -> list[tuple[str, str]]:
    """(image file, wnid) per line of val_annotations.txt (the bounding box columns are ignored)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            parts = line.split("\t")
            if len(parts) < 2:
                raise DataError(f"tinyimagenet: {path} line {line!r} is not 'file<TAB>wnid<TAB>box'")
            rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def fetch_tinyimagenet(raw_dir: str | Path = "data/raw", mirror: str | Path | None = None, *,
                       allow_download: bool = True, strict: bool = True) -> Path:
    """Make sure the tiny-imagenet-200 folder is complete in raw_dir; return it. Order: the folder already there →
    the zip in raw_dir → the zip from the mirror → download (allow_download), the zip MD5-checked when strict,
    then extracted."""
    raw_dir = Path(raw_dir)
    root = raw_dir / TINY_FOLDER
    if not _tiny_problems(root, strict):
        return root
    name, want, url = TINY_ARCHIVE
    mirror_dir = _mirror_dir(mirror) if mirror else None
    archive, notes = _provide_archive(name, want if strict else None, raw_dir, mirror_dir, url, allow_download)
    if archive is not None:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(raw_dir)
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            notes.append(f"{archive} could not be extracted ({err})")
    problems = _tiny_problems(root, strict)
    if problems:
        raise DataError(f"tinyimagenet: cannot provide {_listing(problems)} in {raw_dir}; tried {'; '.join(notes)}. "
                        f"To fix: {_fix_hint(f'{name} (from {url}, MD5 {want})')}.")
    return root


def _read_images(paths: list[Path]) -> np.ndarray:
    from PIL import Image
    out = np.empty((len(paths), TINY_SIZE, TINY_SIZE, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")   # a few TinyImageNet JPEGs are grayscale
                if im.size != (TINY_SIZE, TINY_SIZE):
                    raise DataError(f"tinyimagenet: {p} is {im.size[0]}×{im.size[1]}, expected 64×64")
                out[i] = np.asarray(im)
        except (OSError, SyntaxError, ValueError) as err:   # PIL: truncated / not an image
            raise DataError(f"tinyimagenet: {p} cannot be read ({err}): a truncated or corrupt image; "
                            f"re-extract it from {TINY_ARCHIVE[0]} ({TINY_ARCHIVE[2]})") from err
    return out


def _read_tiny(root: Path):
    """(x_train uint8 [N,64,64,3], y_train, x_val, y_val, sorted wnids) from the folder layout."""
    wnids = sorted({w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()})
    label = {w: i for i, w in enumerate(wnids)}
    train = [(p, label[w]) for w in wnids for p in sorted((root / "train" / w / "images").glob("*.JPEG"))]
    val = [(root / "val" / "images" / f, label[w]) for f, w in _tiny_annotations(root / "val" / "val_annotations.txt")]
    xtr, xva = _read_images([p for p, _ in train]), _read_images([p for p, _ in val])
    return xtr, np.array([y for _, y in train]), xva, np.array([y for _, y in val]), wnids


def load_tinyimagenet(raw_dir: str | Path = "data/raw", *, mirror: str | Path | None = None,
                      allow_download: bool = True, strict: bool = True) -> Tensors:
    """TinyImageNet-200 as Tensors: 100,000 train / 10,000 val (as test) 64×64 RGB, labels by sorted wnid,
    (x − 0.5) / 0.5, augment on."""
    root = fetch_tinyimagenet(raw_dir, mirror, allow_download=allow_download, strict=strict)
    xtr, ytr, xte, yte, wnids = _read_tiny(root)
    to_float = lambda x: (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5
    return Tensors("tinyimagenet", to_float(xtr), torch.from_numpy(ytr).long(), to_float(xte),
                   torch.from_numpy(yte).long(), len(wnids), "image", LABELS["tinyimagenet"], (-1.0, 1.0),
                   augment=True)


# ----------------------------------------------------------------------------- CIFAR10-DVS

@dataclass
class EventTensors(Tensors):
    """Tensors of event frames: x_* are [N, T, 2, H, W] float event counts per (frame, polarity, pixel) — already
    spikes over time, not to be passed through an intensity encoder. `intensity_range` is (0, the largest count in
    the training frames). ids_* name each sample's file (cifar10_<class>_<i>)."""
    frames: int = 0
    split_by: str = ""
    ids_train: tuple = ()
    ids_test: tuple = ()


def _dvs_layout_problems(folder: Path, suffix: str, strict: bool) -> list[str]:
    """Class folders of `folder` (extract/ or events_np/) lacking `suffix` files; [] when complete."""
    out = []
    for c in _dvs_classes():
        n = len(list((folder / c).glob(f"*{suffix}"))) if (folder / c).is_dir() else 0
        if n == 0:
            out.append(f"{folder.name}/{c}/*{suffix} (missing)")
        elif strict and n != DVS_PER_CLASS:
            out.append(f"{folder.name}/{c} ({n} files, expected {DVS_PER_CLASS})")
    return out


def _convert_extracted(extract: Path, events_np: Path) -> None:
    """Each extract/<class>/*.aedat → events_np/<class>/*.npz with spikingjelly's reader (`_read_aedat_save_to_np`,
    what `CIFAR10DVS.create_raw_from_extracted` runs), into a temporary folder renamed at the end, so a failed run
    leaves no half-converted events_np that spikingjelly would take as complete; a file that fails is named."""
    from spikingjelly.datasets.cifar10_dvs import _read_aedat_save_to_np
    tmp = events_np.with_name(events_np.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    jobs = []
    for c in _dvs_classes():
        (tmp / c).mkdir(parents=True)
        jobs += [(src, tmp / c / (src.stem + ".npz")) for src in sorted((extract / c).glob("*.aedat"))]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        futures = [(src, pool.submit(_read_aedat_save_to_np, src, dst)) for src, dst in jobs]
        bad = []
        for src, f in futures:
            try:
                f.result()
            except Exception as err:
                bad.append(f"{src} ({type(err).__name__}: {err})")
    if bad:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cifar10dvs: {len(bad)} .aedat file(s) cannot be parsed (truncated or corrupt): "
                        f"{_listing(bad, 5)}. Re-extract them from their class archive (figshare URLs: "
                        f"{_dvs_resources()[0][1]} …, see spikingjelly CIFAR10DVS.resource_url_md5()).")
    tmp.rename(events_np)


def prepare_cifar10dvs(raw_dir: str | Path = "data/raw", mirror: str | Path | None = None, *,
                       allow_download: bool = True, strict: bool = True) -> Path:
    """Make <raw_dir>/CIFAR10DVS/events_np complete (spikingjelly's raw event format); return the CIFAR10DVS root.

    Order: events_np already there → extract/<class>/*.aedat → the ten class zips in root/download (copied from
    <mirror>/CIFAR10DVS/ or downloaded from figshare when allowed; MD5-checked when strict), unzipped to extract/."""
    root = Path(raw_dir) / DVS_FOLDER
    events_np, extract = root / "events_np", root / "extract"
    if events_np.with_name("events_np.building").exists():
        raise DataError(f"cifar10dvs: {events_np}.building marks an unfinished spikingjelly conversion: delete "
                        f"{events_np} and {events_np}.building, then rerun")
    if events_np.is_dir():
        problems = _dvs_layout_problems(events_np, ".npz", strict)
        if problems:
            raise DataError(f"cifar10dvs: {events_np} is incomplete: {_listing(problems)}. Delete it to rebuild it "
                            f"from {extract} or the archives.")
        return root
    notes = []
    if _dvs_layout_problems(extract, ".aedat", strict):
        mirror_dir = _mirror_dir(mirror) / DVS_FOLDER if mirror else None
        archives, faults = [], []
        for name, url, want in _dvs_resources():
            path, tried = _provide_archive(name, want if strict else None, root / "download", mirror_dir, url,
                                           allow_download)
            archives.append(path)
            if path is None:
                notes.append(f"{name} ({url}, MD5 {want})")
                faults += [t for t in tried if "(missing)" not in t and not t.startswith(("no mirror", "download not"))]
        if notes:
            where = f"the mirror {mirror_dir}" if mirror_dir else "no mirror (the mirror environment variable is unset)"
            raise DataError(
                f"cifar10dvs: missing {len(notes)} of the 10 class archives: {_listing(notes, 10)}; checked "
                f"{root / 'download'}, {where}" + ("" if allow_download else ", download not allowed")
                + (f"; problems: {_listing(faults, 10)}" if faults else "")
                + f". To fix: put the ten zips into <mirror>/{DVS_FOLDER}/ (the mirror environment variable, "
                f"params.yaml 00_data.mirror_env) or {root / 'download'}, or their extracted .aedat files into "
                f"{extract}/<class>/, "
                "or run where there is internet (allow_download).")
        tmp = extract.with_name("extract.unzipping")
        shutil.rmtree(tmp, ignore_errors=True)
        for path in archives:
            try:
                with zipfile.ZipFile(path) as z:
                    z.extractall(tmp)
            except (zipfile.BadZipFile, EOFError, OSError) as err:
                shutil.rmtree(tmp, ignore_errors=True)
                raise DataError(f"cifar10dvs: {path} cannot be extracted ({err}); delete it and fetch it "
                                "again") from err
        shutil.rmtree(extract, ignore_errors=True)
        tmp.rename(extract)
        problems = _dvs_layout_problems(extract, ".aedat", strict)
        if problems:
            raise DataError(f"cifar10dvs: the archives did not give the expected files: {_listing(problems)}")
    _convert_extracted(extract, events_np)
    return root


def _integrated(root: Path, frames: int, split_by: str):
    """spikingjelly's CIFAR10DVS frame dataset (integrating events_np into frames on first use)."""
    from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS
    out = root / f"frames_number_{frames}_split_by_{split_by}"
    try:
        return CIFAR10DVS(str(root), data_type="frame", frames_number=frames, split_by=split_by)
    except Exception as err:
        bad = [str(p) for p in sorted((root / "events_np").rglob("*.npz")) if not _npz_readable(p)]
        marker = out.with_name(out.name + ".building")
        if marker.exists():   # an unfinished frames folder (this run's or an earlier one's): remove it and its marker
            shutil.rmtree(out, ignore_errors=True)
            marker.unlink(missing_ok=True)
        hint = (f"unreadable event files: {_listing(bad, 5)} (truncated or corrupt: delete {root / 'events_np'} "
                "to rebuild it from extract/ or the archives)") if bad else f"{type(err).__name__}: {err}"
        raise DataError(f"cifar10dvs: spikingjelly could not integrate frames in {out}: {hint}") from err


def _npz_readable(path: Path) -> bool:
    try:
        with np.load(path) as z:
            for k in ("t", "x", "y", "p"):
                z[k]
        return True
    except Exception:
        return False


def _per_class_split(labels: np.ndarray, train_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """spikingjelly's split_to_train_test_set(train_ratio, ..., random_split=False): per class, the first
    ceil(n · train_ratio) samples in dataset order train, the rest test."""
    tr, te = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        pos = math.ceil(len(idx) * train_ratio)
        tr.append(idx[:pos])
        te.append(idx[pos:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


def _resize_counts(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """[T, 2, 128, 128] counts → [T, 2, size, size]: area pooling × (128/size)²; sums exact if size divides 128."""
    if size is None or size == x.shape[-1]:
        return x
    scale = (x.shape[-2] * x.shape[-1]) / (size * size)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="area") * scale


def load_cifar10dvs(raw_dir: str | Path = "data/raw", *, mirror: str | Path | None = None,
                    allow_download: bool = True, strict: bool = True, frames: int = 10, split_by: str = "number",
                    size: int | None = 64, train_ratio: float = 0.9) -> EventTensors:
    """CIFAR10-DVS as EventTensors [N, frames, 2, size, size] (size None = native 128), split per class
    train_ratio : 1 − train_ratio (see the module docstring for the choices and why they are ours)."""
    if split_by not in DVS_SPLIT_BY:
        raise ValueError(f"`split_by` must be one of {DVS_SPLIT_BY}, got {split_by!r}")
    if not (isinstance(frames, int) and frames > 0):
        raise ValueError(f"`frames` must be a positive integer, got {frames!r}")
    root = prepare_cifar10dvs(raw_dir, mirror, allow_download=allow_download, strict=strict)
    ds = _integrated(root, frames, split_by)
    from spikingjelly.datasets.utils import load_npz_frames
    if strict and len(ds.samples) != 10 * DVS_PER_CLASS:
        raise DataError(f"cifar10dvs: {len(ds.samples)} frame files in {ds.root}, expected {10 * DVS_PER_CLASS}: "
                        f"delete {ds.root} to rebuild it")
    labels = np.array(ds.targets)
    tr, te = _per_class_split(labels, train_ratio)
    ids = [Path(p).stem for p, _ in ds.samples]

    def stack(index):
        out = [_resize_counts(torch.from_numpy(load_npz_frames(ds.samples[i][0])), size) for i in index]
        h = size or DVS_SIZE
        return torch.stack(out) if out else torch.zeros((0, frames, 2, h, h))

    xtr, xte = stack(tr), stack(te)
    top = float(xtr.max()) if xtr.numel() else 1.0
    return EventTensors("cifar10dvs", xtr, torch.from_numpy(labels[tr]).long(), xte,
                        torch.from_numpy(labels[te]).long(), len(ds.classes), "event", LABELS["cifar10dvs"],
                        (0.0, top), augment=False, frames=frames, split_by=split_by,
                        ids_train=tuple(ids[i] for i in tr), ids_test=tuple(ids[i] for i in te))


# ----------------------------------------------------------------------------- dispatch and status

def load_paper_dataset(name: str, raw_dir: str | Path = "data/raw", **kw) -> Tensors:
    """load_cifar100 / load_tinyimagenet / load_cifar10dvs by name (keywords passed on)."""
    loaders = {"cifar100": load_cifar100, "tinyimagenet": load_tinyimagenet, "cifar10dvs": load_cifar10dvs}
    assert set(loaders) == set(PAPER_DATASETS)
    if name not in loaders:
        raise ValueError(f"unknown paper dataset {name!r}; choose from {list(PAPER_DATASETS)}")
    return loaders[name](raw_dir, **kw)


def paper_datasets_status(mirror: str | Path | None = None, raw_dir: str | Path = "data/raw") -> list[dict]:
    """Per paper dataset: whether its files are at hand (extracted in raw_dir, or the archive(s) in raw_dir or the
    mirror), where, and the URL(s) to fetch them from. Presence only: MD5s and counts are checked when loading."""
    raw_dir = Path(raw_dir)
    mirror = Path(mirror) if mirror else None
    rows = []

    def row(key, where, path, url, missing=""):
        rows.append({"dataset": key, "label": LABELS[key], "paper": PAPERS[key], "available": where is not None,
                     "where": where, "path": str(path) if path else None, "url": url, "missing": missing})

    # CIFAR-100
    name, want, url = CIFAR100_ARCHIVE
    if all((raw_dir / CIFAR100_FOLDER / f).is_file() for f in CIFAR100_FILES):
        row("cifar100", "raw_dir (extracted)", raw_dir / CIFAR100_FOLDER, url)
    elif (raw_dir / name).is_file():
        row("cifar100", "raw_dir (archive)", raw_dir / name, url)
    elif mirror and (mirror / name).is_file():
        row("cifar100", "mirror", mirror / name, url)
    else:
        row("cifar100", None, None, url, f"{name} (MD5 {want})")
    # TinyImageNet
    name, want, url = TINY_ARCHIVE
    if not _tiny_problems(raw_dir / TINY_FOLDER, strict=False):
        row("tinyimagenet", "raw_dir (extracted)", raw_dir / TINY_FOLDER, url)
    elif (raw_dir / name).is_file():
        row("tinyimagenet", "raw_dir (archive)", raw_dir / name, url)
    elif mirror and (mirror / name).is_file():
        row("tinyimagenet", "mirror", mirror / name, url)
    else:
        row("tinyimagenet", None, None, url, f"{name} (MD5 {want})")
    # CIFAR10-DVS
    res = _dvs_resources()
    urls = ", ".join(u for _, u, _ in res)
    root = raw_dir / DVS_FOLDER
    absent = lambda d: [n for n, _, _ in res if not (d / n).is_file()]
    if (root / "events_np").is_dir() and not _dvs_layout_problems(root / "events_np", ".npz", strict=False):
        row("cifar10dvs", "raw_dir (events_np)", root / "events_np", urls)
    elif not _dvs_layout_problems(root / "extract", ".aedat", strict=False):
        row("cifar10dvs", "raw_dir (extracted .aedat)", root / "extract", urls)
    elif not absent(root / "download"):
        row("cifar10dvs", "raw_dir (archives)", root / "download", urls)
    elif mirror and not absent(mirror / DVS_FOLDER):
        row("cifar10dvs", "mirror", mirror / DVS_FOLDER, urls)
    else:
        gone = absent(mirror / DVS_FOLDER) if mirror else [n for n, _, _ in res]
        row("cifar10dvs", None, None, urls, ", ".join(gone))
    return rows
