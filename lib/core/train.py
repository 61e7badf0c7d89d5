"""Training, evaluation and the model store.

A *unit* is the dict of everything that determines a model's weights; its hash (`unit_key`) names its checkpoint.
`CheckpointStore` is the one checkpoint layout of every model family (<dir>/<dataset>/<key>.pt, atomic writes
under a per-unit claim): paper C's ResNets (lib.stages.ptq_privacy.Cache) and paper D's nets
(lib.stages.grad_obf.train_net) train through it. `ModelStore` is the store of the MLP/ConvNet/SNN units
(lib.core.config.unit) that also trains them: `get_or_train(unit)` returns its record, training it only when no
checkpoint for exactly that unit exists in any of the store's folders, so an interrupted run loses at most the
model in progress. A record holds the weights, the unit, the learning curve, final accuracies and the model's
outputs (features for the attack) and per-example losses on its own member / non-member pools.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from .progress import tqdm

from . import data as D
from . import executor as EX
from .config import init_seed

if TYPE_CHECKING:
    from .models import Net


def device(name: str = "auto") -> torch.device:
    """`auto` → cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def unit_key(unit: dict) -> str:
    return hashlib.sha1(json.dumps(unit, sort_keys=True).encode()).hexdigest()[:16]


def atomic_save(obj, path: str | Path) -> None:
    """Write `obj` to `path` through <path>.tmp and a rename, so a reader never sees half a file: a dict of arrays
    as .npz when the path ends in .npz, anything else with torch.save."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".npz":
        with open(tmp, "wb") as f:
            np.savez(f, **obj)
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)


def build(unit: dict, data: D.Tensors) -> Net:
    # imported here: a stage module imports this one for its store, and is imported to validate params.yaml,
    # which must not load brevitas and snntorch (lib.core.models' quantized layers and neurons)
    from .models import Net, SNNConfig
    snn = None
    if unit["kind"] == "snn":
        snn = SNNConfig(beta=unit["beta"], threshold=unit["threshold"], steps=unit["steps"],
                        surrogate=unit["surrogate"], surrogate_kwargs=unit["surrogate_kwargs"],
                        encoding=unit["encoding"], encoding_kwargs=unit["encoding_kwargs"], readout=unit["readout"])
    return Net(unit["arch"], unit["kind"], data.input_shape, data.n_classes, hidden=unit["hidden"],
               channels=unit["channels"], kernel=unit["kernel"], padding=unit["padding"],
               weight_bits=unit["weight_bits"], act_bits=unit["act_bits"], act_threshold=unit["act_threshold"],
               snn=snn, intensity_range=data.intensity_range,
               # present only in units whose output layer's membrane is left unquantized (config.unit)
               quant_output=unit.get("quant_output", True))


def pools_for(unit: dict) -> tuple[str, str]:
    return ("target_in", "target_out") if unit["role"] == "target" else ("shadow_in", "shadow_out")


@torch.no_grad()
def predict(model: Net, x: torch.Tensor, *, batch_size: int = 512, seed: int = 0,
            dev: torch.device | None = None, trace: bool = False) -> torch.Tensor:
    """Model outputs on x (ANN logits / SNN readout of the output membrane), or the full SNN trace
    [T, N, C] when `trace`. Stochastic encoders draw from a generator seeded with `seed`."""
    dev = dev or next(model.parameters()).device
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    outs = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(dev)
        if trace:
            outs.append(model.trace(xb, gen).cpu())
        else:
            outs.append(model(xb, gen).cpu() if model.kind == "snn" else model(xb).cpu())
    return torch.cat(outs, dim=1 if trace else 0)


def accuracy(outputs: torch.Tensor, y: torch.Tensor) -> float:
    return float((outputs.argmax(1) == y).float().mean())


def optimizer(params, unit: dict, **adam_kwargs) -> torch.optim.Optimizer:
    """The unit's optimizer over `params`: Adam, or SGD with momentum 0.9, at its lr and weight decay (`fit`'s and
    lib.core.stack_fc's; `adam_kwargs`, e.g. fused=True, reach Adam only)."""
    if unit["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=unit["lr"], weight_decay=unit["weight_decay"], **adam_kwargs)
    return torch.optim.SGD(params, lr=unit["lr"], momentum=0.9, weight_decay=unit["weight_decay"])


def fit(model: Net, unit: dict, data: D.Tensors, split: dict, *, dev: torch.device, desc: str = "",
        curve_eval_size: int = 500, eval_batch_size: int = 512, progress: bool = True) -> list[dict]:
    """Train `model` on its member pool with the unit's optimizer, lr, batch size and epochs.
    Returns the learning curve: per epoch mean loss, running train accuracy and test accuracy on
    (at most `curve_eval_size` examples of) the eval pool."""
    if unit.get("dp"):
        return _fit_dp(model, unit, data, split, dev=dev, desc=desc, curve_eval_size=curve_eval_size,
                       eval_batch_size=eval_batch_size, progress=progress)
    seed = init_seed(unit)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_in, y_in = D.pool(data, split, pools_for(unit)[0])
    x_ev, y_ev = D.pool(data, split, "eval")
    x_ev, y_ev = x_ev[:curve_eval_size], y_ev[:curve_eval_size]
    x_in, y_in = x_in.to(dev), y_in.to(dev)
    opt = optimizer([p for p in model.parameters() if p.requires_grad], unit)  # frozen layers stay fixed
    bs, n = unit["batch_size"], len(x_in)
    curve = []
    # redraw at most once a second: an executed notebook keeps every redraw of a bar in its output
    bar = tqdm(range(unit["epochs"]), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=gen).to(dev)
        tot_loss = tot_correct = 0.0
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            xb, yb = x_in[idx], y_in[idx]
            if data.augment:
                xb = D.augment(xb, gen)
            out = model(xb, gen) if model.kind == "snn" else model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(idx)
            tot_correct += float((out.argmax(1) == yb).sum())
        test_acc = accuracy(predict(model, x_ev, seed=seed + 1, dev=dev, batch_size=eval_batch_size), y_ev)
        curve.append({"epoch": epoch + 1, "loss": tot_loss / n, "train_acc": tot_correct / n, "test_acc": test_acc})
        bar.set_postfix(loss=f"{tot_loss / n:.3f}", train=f"{tot_correct / n:.3f}", test=f"{test_acc:.3f}",
                        refresh=False)
    return curve


def _fit_dp(model: Net, unit: dict, data: D.Tensors, split: dict, *, dev: torch.device, desc: str,
            curve_eval_size: int, eval_batch_size: int, progress: bool) -> list[dict]:
    """`fit` for a unit with `dp` (lib.core.units.dp_setting): DP-SGD (lib.core.dp.fit_dp) at the unit's optimizer
    (SGD with momentum 0.9, as `fit`, or Adam), lr, weight decay, batch size (the expected Poisson batch) and epochs,
    the noise multiplier calibrated by Opacus's RDP accountant to the unit's (ε, δ) over all its steps (ε = null:
    clipping only). No augmentation (per-example clipping of augmented copies would need Opacus's augmentation
    multiplicity). The curve's last epoch carries the ε spent and the noise multiplier."""
    from . import dp as DP
    p = unit["dp"]
    seed = init_seed(unit)
    torch.manual_seed(seed)
    x_in, y_in = D.pool(data, split, pools_for(unit)[0])
    x_ev, y_ev = D.pool(data, split, "eval")
    bs = int(unit["batch_size"])
    sigma = DP.calibrate(p["epsilon"], p["delta"], len(x_in), bs, unit["epochs"])
    rec = DP.fit_dp(model, x_in, y_in, epochs=unit["epochs"], batch_size=bs, lr=unit["lr"],
                    max_grad_norm=p["max_grad_norm"], noise_multiplier=sigma, seed=seed, optimizer=unit["optimizer"],
                    dev=dev, delta=p["delta"], momentum=0.9 if unit["optimizer"] != "adam" else 0.0,
                    weight_decay=unit["weight_decay"], progress=progress)
    test_acc = accuracy(predict(model, x_ev[:curve_eval_size], seed=seed + 1, dev=dev, batch_size=eval_batch_size),
                        y_ev[:curve_eval_size])
    curve = [{**c, "test_acc": float("nan")} for c in rec["curve"]]
    curve[-1].update(test_acc=test_acc, epsilon=rec["epsilon"], noise_multiplier=rec["noise_multiplier"],
                     steps=rec["steps"])
    return curve


def evaluate(model: Net, unit: dict, data: D.Tensors, split: dict, *, dev: torch.device,
             batch_size: int = 512, traces: bool = False) -> dict:
    """Final accuracies and the attack's raw material: outputs and per-example losses on the model's
    member and non-member pools (and train/test accuracy on members / the eval pool).
    With `traces` (SNN only), also the output-membrane traces [T, N, C] of the member and non-member pools,
    from the same forward pass (outputs = the model's readout of them, bit for bit), under "traces"."""
    seed = init_seed(unit) + 2
    p_in, p_out = pools_for(unit)
    keep = traces and model.kind == "snn"
    out, kept = {}, {}
    for name in (p_in, p_out, "eval"):
        x, y = D.pool(data, split, name)
        key = {p_in: "in", p_out: "out", "eval": "eval"}[name]
        if keep and key != "eval":
            tr = predict(model, x, seed=seed, dev=dev, batch_size=batch_size, trace=True)
            logits, kept[key] = model.readout(tr), tr.numpy()
        else:
            logits = predict(model, x, seed=seed, dev=dev, batch_size=batch_size)
        out[key] = {"outputs": logits.numpy(), "labels": y.numpy(),
                    "loss": F.cross_entropy(logits.double(), y, reduction="none").numpy(),
                    "example": D.example_ids(split, name)}
    result = {"train_acc": accuracy(torch.from_numpy(out["in"]["outputs"]), torch.from_numpy(out["in"]["labels"])),
              "test_acc": accuracy(torch.from_numpy(out["eval"]["outputs"]), torch.from_numpy(out["eval"]["labels"])),
              "pools": out}
    return {**result, "traces": kept} if keep else result


class CheckpointStore:
    """The one checkpoint layout of every model family: <dir>/<dataset>/<unit_key(unit)>.pt, written atomically
    (optionally with <key>.json beside it: the unit and its metrics, for humans), under the unit's claim
    (lib.core.executor.claim) so that no unit is trained twice at once.

    A unit is the dict of everything that determines a model's weights; its hash names the file. MLP/ConvNet/SNN
    units (lib.core.config.unit) and paper C's ResNets carry their `dataset`; paper D's nets do not, and are filed
    under the store's `dataset`. Looks up every folder in `read_dirs` and `write_dir`; writes only to `write_dir`.
    Users: ModelStore (01-05, 08), lib.stages.ptq_privacy.Cache (06), lib.stages.grad_obf.train_net (07).

    A corrupt checkpoint (truncated, overwritten, a bad checksum) is never an error: `load` (and `get`, `missing`)
    moves it aside (`set_aside`) with a warning naming it, and its unit counts as untrained, so whoever asked trains
    it again (to the same bits: training is deterministic). `missing` checks each file's zip directory (cheap:
    it finds truncated and garbage files); `load` finds the rest when it reads the file."""

    def __init__(self, write_dir: str | Path, read_dirs=(), *, dataset: str | None = None,
                 claims_dir: str | Path | None = None, claim_stale_seconds: float = 600.0):
        self.write_dir = Path(write_dir)
        self.dirs = [self.write_dir] + [Path(d) for d in read_dirs]
        self.dataset = dataset
        # per-unit locks shared by every stage's store (lib.core.executor.claim): no unit is trained twice at once
        self.claims_dir = Path(claims_dir) if claims_dir is not None else EX.claims_dir_for(self.write_dir)
        self.claim_stale_seconds = float(claim_stale_seconds)

    def dataset_of(self, unit: dict) -> str:
        ds = unit.get("dataset", self.dataset)
        if ds is None:
            raise ValueError(f"a unit without `dataset` needs a store with one (CheckpointStore(dataset=...)): {unit}")
        return ds

    def path(self, unit: dict, folder: Path | None = None) -> Path:
        return (folder or self.write_dir) / self.dataset_of(unit) / f"{unit_key(unit)}.pt"

    def find(self, unit: dict) -> Path | None:
        for d in self.dirs:
            p = self.path(unit, d)
            if p.is_file():
                return p
        return None

    def get(self, unit: dict, map_location=None) -> dict | None:
        """The unit's record; None when no folder has it, or its checkpoint was corrupt (now moved aside: `load`)."""
        p = self.find(unit)
        return self.load(p, map_location) if p else None

    @staticmethod
    def load(path: str | Path, map_location=None) -> dict | None:
        """The checkpoint at `path` (torch.load). None when the file is corrupt (not a readable zip archive, or one
        with a bad checksum), after moving it aside with a warning (`set_aside`), so that the caller trains its unit
        again; None also when it vanished meanwhile (another process set it aside). A sound file that cannot be
        loaded here (a class that moved, a CUDA tensor on a CPU machine) raises torch's error, noting the file."""
        path = Path(path)
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except Exception as e:   # noqa: BLE001 - corrupt: set aside; anything else: raised again below
            if not path.is_file():
                return None
            problem = _damage(path, deep=True)
            if problem is None:
                e.add_note(f"while loading the checkpoint {path} (its archive is sound: not set aside)")
                raise
            CheckpointStore.set_aside(path, f"{problem}; torch: {type(e).__name__}: {str(e)[:200]}")
            return None

    @staticmethod
    def set_aside(path: str | Path, problem: str) -> Path:
        """Move the corrupt checkpoint <dir>/<dataset>/<key>.pt to <dir's parent>/.corrupt/<dir's name>/<dataset>/
        <key>.pt (outside the stage's DVC-tracked folder, whose content is then again what a fresh run writes; its
        <key>.json stays), warning with both paths. Returns where it went."""
        path = Path(path)
        dest = path.parent.parent.parent / ".corrupt" / path.parent.parent.name / path.parent.name / path.name
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        except FileNotFoundError:   # set aside by another process meanwhile
            return dest
        except OSError as e:
            raise RuntimeError(f"the checkpoint {path} is corrupt ({problem}) and could not be moved aside ({e}): "
                               "delete it, and it is trained again") from e
        warnings.warn(f"the checkpoint {path} is corrupt ({problem}): moved it to {dest}; its model is trained "
                      "again (delete the moved file once done)", CorruptCheckpoint, stacklevel=2)
        return dest

    def path_of_key(self, dataset: str, key: str) -> Path | None:
        return next((d / dataset / f"{key}.pt" for d in self.dirs if (d / dataset / f"{key}.pt").is_file()), None)

    def missing(self, units: list[dict]) -> list[dict]:
        """The units (each once, in order) that no folder of this store has a sound checkpoint for: a file whose zip
        directory is unreadable (truncated, garbage) is moved aside now (`set_aside`) and its unit is missing."""
        todo, seen = [], set()
        for u in units:
            k = self.path(u)
            if k not in seen and self._find_sound(u) is None:
                seen.add(k)
                todo.append(u)
        return todo

    def _find_sound(self, unit: dict) -> Path | None:
        p = self.find(unit)
        problem = _damage(p) if p is not None else None
        if problem is None:
            return p
        self.set_aside(p, problem)
        return self._find_sound(unit)   # another folder's copy, if any

    def _readable(self, unit: dict, waited: bool = False) -> bool:
        """The unit's checkpoint is in one of this store's folders, or (after waiting for another stage's store that
        was training it: lib.core.executor.claim) is copied from that store's folder into this one now."""
        if self.find(unit) is not None:
            return True
        if not waited:
            return False
        src = EX.done_path(self.claims_dir, self.dataset_of(unit), unit_key(unit))
        if src is None:
            return False
        EX.copy_atomic(src, self.path(unit))
        meta = src.with_suffix(".json")
        if meta.is_file():
            EX.copy_atomic(meta, self.path(unit).with_suffix(".json"))
        return True

    @contextmanager
    def claim(self, unit: dict):
        """Hold the unit's claim, or wait for its holder (lib.core.executor.claim). Yields a handle that is true when
        the caller must train the unit now and `put` it before leaving; false when it became readable meanwhile."""
        with EX.claim(self.claims_dir, self.dataset_of(unit), unit_key(unit),
                      lambda waited: self._readable(unit, waited), stale_seconds=self.claim_stale_seconds) as mine:
            yield mine
            if mine and self.path(unit).is_file():
                mine.done(self.path(unit))   # where waiters of other stores find it

    def put(self, unit: dict, rec: dict, meta: dict | None = None) -> Path:
        """Write `rec` as the unit's checkpoint (atomically; a killed run's half file is replaced), and `meta` as
        <key>.json beside it when given. Returns the checkpoint's path."""
        p = self.path(unit)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(rec, p)
        if meta is not None:
            tmp = p.with_name(p.stem + ".json.tmp")
            tmp.write_text(json.dumps(meta, indent=1))
            os.replace(tmp, p.with_suffix(".json"))
        return p


class ModelStore(CheckpointStore):
    """The CheckpointStore of the MLP/ConvNet/SNN units (lib.core.config.unit) that trains them: `get_or_train`
    returns a unit's record, training it only when no folder of the store has its checkpoint. A record holds the
    weights, the unit, the learning curve, final accuracies and the model's outputs and per-example losses on its
    member / non-member pools (the attack's material); <key>.json beside it the unit and metrics."""

    def __init__(self, write_dir: str | Path, read_dirs=(), *, data_loader=None, splits_dir="data/splits",
                 device_name: str = "auto", progress: bool = True, curve_eval_size: int = 500,
                 eval_batch_size: int = 512, keep_traces: bool = False, claims_dir: str | Path | None = None,
                 claim_stale_seconds: float = 600.0):
        super().__init__(write_dir, read_dirs, claims_dir=claims_dir, claim_stale_seconds=claim_stale_seconds)
        self.splits_dir = Path(splits_dir)
        self.data_loader = data_loader  # callable(dataset) -> Tensors (cached by the caller)
        self.dev = device(device_name)
        self.progress = progress
        # how training is watched and scored; neither changes the weights, so neither is part of a unit
        self.curve_eval_size, self.eval_batch_size = int(curve_eval_size), int(eval_batch_size)
        # SNN records trained now also carry rec["traces"] (member/non-member output-membrane traces), in memory
        # only: never written to the checkpoint (a paper-scale pool's trace is tens of MB)
        self.keep_traces = bool(keep_traces)
        self.trained = 0  # how many models this store trained (the rest were loaded)
        self.device_name = device_name

    def spec(self) -> dict:
        """What rebuilds this store in another process (ModelStore(**spec)): folders, loader, scoring settings."""
        return {"write_dir": str(self.write_dir), "read_dirs": [str(d) for d in self.dirs[1:]],
                "data_loader": self.data_loader, "splits_dir": str(self.splits_dir), "device_name": self.device_name,
                "progress": False, "curve_eval_size": self.curve_eval_size, "eval_batch_size": self.eval_batch_size,
                "claims_dir": str(self.claims_dir), "claim_stale_seconds": self.claim_stale_seconds}

    def get_or_train(self, unit: dict, desc: str | None = None) -> dict:
        """The unit's record, trained now when no folder has a sound checkpoint of it (a corrupt one is moved
        aside and trained again: CheckpointStore.load)."""
        while True:
            rec = self.get(unit)
            if rec is not None:
                return rec
            with self.claim(unit) as mine:
                if mine:
                    return self._train(unit, desc)
            # trained meanwhile by whoever held the claim: read it (again the loop, should that file be corrupt)

    def _train(self, unit: dict, desc: str | None) -> dict:
        self.path(unit).with_name(self.path(unit).name + ".tmp").unlink(missing_ok=True)   # a killed run's half file
        data = self.data_loader(unit["dataset"])
        split = D.load_split(D.split_path(self.splits_dir, unit["dataset"], unit["seed"]))
        _check_split(split, unit)
        torch.manual_seed(init_seed(unit))
        model = build(unit, data)
        if unit.get("init_from"):
            self._init_from(model, unit)
        model = model.to(self.dev)
        desc = desc or _describe(unit)
        t0 = time.perf_counter()
        curve = fit(model, unit, data, split, dev=self.dev, desc=desc, progress=self.progress,
                    curve_eval_size=self.curve_eval_size, eval_batch_size=self.eval_batch_size)
        seconds = time.perf_counter() - t0
        ev = evaluate(model, unit, data, split, dev=self.dev, batch_size=self.eval_batch_size, traces=self.keep_traces)
        rec = {"unit": unit, "key": unit_key(unit), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
               "curve": curve, "train_acc": ev["train_acc"], "test_acc": ev["test_acc"], "pools": ev["pools"],
               "train_seconds": seconds, "data_source": data.source, "device": str(self.dev)}
        self._save(unit, rec)
        self.trained += 1
        return {**rec, "traces": ev["traces"]} if "traces" in ev else rec

    def train_missing(self, units: list[dict], settings: EX.Settings | None = None, desc: str = "models",
                      workers: int = 1, job=None) -> int:
        """Train every unit of `units` that has no checkpoint yet, with the executor (lib.core.executor; default the
        process's, from params.yaml): locally in this process one after the other, or in `workers` single-threaded
        processes; or as Ray tasks. Workers write into this store's folder; a unit initialized from another missing
        unit (init_from) waits for the next wave. `job(spec, unit)`: what a worker runs (default `train_unit_job`,
        which trains the unit into the store `spec` rebuilds; a module-level function or a partial of one).
        Returns how many were trained (`self.trained` counts only this process's)."""
        todo = self.missing(units)
        settings = settings or EX.active()
        if not settings.ray and workers <= 1:
            before = self.trained
            for u in tqdm(todo, desc=desc, disable=not self.progress):
                self.get_or_train(u)
            return self.trained - before
        if not todo:
            return 0
        keys = {unit_key(u) for u in todo}
        first = [u for u in todo if not (u.get("init_from") and u["init_from"]["key"] in keys)]
        spec = self.spec()
        n = EX.run_jobs([EX.Job(job or train_unit_job, (spec, u), _describe(u)) for u in first], settings,
                        desc=desc, workers=workers)
        rest = [u for u in todo if u not in first]
        return n + (self.train_missing(rest, settings, desc, workers, job) if rest else 0)

    def _init_from(self, model: Net, unit: dict) -> None:
        """Copy a trained unit's weights into `model` and freeze the layers listed in unit["frozen"]."""
        src = unit["init_from"]
        path = self.path_of_key(src["dataset"], src["key"])
        if path is None:
            raise FileNotFoundError(f"init_from: no checkpoint {src['dataset']}/{src['key']}.pt in {self.dirs}")
        rec = self.load(path)
        if rec is None:
            raise FileNotFoundError(f"init_from: the checkpoint {path} was corrupt (moved aside): rerun the stage "
                                    "that trains it first")
        model.load_state_dict(rec["state_dict"])
        for i in unit["frozen"]:
            for p in model.ops[i].parameters():
                p.requires_grad_(False)

    def _save(self, unit: dict, rec: dict) -> None:
        self.put(unit, rec, {k: rec[k] for k in ("unit", "key", "train_acc", "test_acc", "train_seconds", "data_source",
                                                 "device")})

    def load_model(self, rec: dict) -> Net:
        """Rebuild the trained network of a record."""
        model = build(rec["unit"], self.data_loader(rec["unit"]["dataset"]))
        model.load_state_dict(rec["state_dict"])
        return model.to(self.dev).eval()


_WORKER_STORES: dict = {}


def worker_store(spec: dict) -> "ModelStore":
    """The store that `spec` (ModelStore.spec) rebuilds in a worker, built once per process (so its datasets are
    loaded once per worker)."""
    loader = spec.get("data_loader")
    key = json.dumps({**{k: v for k, v in spec.items() if k != "data_loader"},
                      "loader": getattr(loader, "kw", repr(loader))}, sort_keys=True, default=str)
    if key not in _WORKER_STORES:
        _WORKER_STORES.clear()
        _WORKER_STORES[key] = ModelStore(**spec)
    return _WORKER_STORES[key]


def train_unit_job(spec: dict, unit: dict) -> None:
    """A worker's job (lib.core.executor): train one unit into the store that `spec` rebuilds."""
    worker_store(spec).get_or_train(unit)


class CorruptCheckpoint(UserWarning):
    """A checkpoint file could not be read and was moved aside (CheckpointStore.set_aside); its unit is trained
    again."""


def _damage(path: Path, deep: bool = False) -> str | None:
    """What is wrong with the archive of checkpoint `path` (torch.save writes a zip archive), or None when it is
    sound. Cheap by default: the zip directory at the file's end (a truncated or garbage file has none); `deep`
    also reads every member against its CRC."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip() if deep else None
    except FileNotFoundError:
        return None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return f"not a readable zip archive: {e}"
    return f"bad checksum in {bad}" if bad else None


def _check_split(split: dict, unit: dict) -> None:
    if split["n_in"] != unit["n_in"] or split["n_out"] != unit["n_out"]:
        raise ValueError(f"the split for {unit['dataset']} seed {unit['seed']} has n_in={split['n_in']}, "
                         f"n_out={split['n_out']} but the model asks for {unit['n_in']}, {unit['n_out']}: "
                         "re-run the 00_data stage at this scale")
    if unit["role"] == "shadow" and split["mode"] != unit["split_mode"]:
        raise ValueError(f"the split for {unit['dataset']} seed {unit['seed']} is `{split['mode']}` but "
                         f"00_data.split_mode is `{unit['split_mode']}`: re-run the 00_data stage")


def _describe(unit: dict) -> str:
    extra = [f"{k}={unit[k]}" for k in ("weight_bits", "act_bits", "act_threshold") if unit.get(k) is not None]
    if unit["kind"] == "snn" and unit["surrogate"] != "fast_sigmoid":
        extra.append(unit["surrogate"])
    if unit["kind"] == "snn" and unit["encoding"] != "direct":
        extra.append(unit["encoding"])
    return f"{unit['dataset']} {unit['kind'].upper()} {unit['role']} seed={unit['seed']} " + " ".join(extra)
