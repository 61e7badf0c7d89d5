"""Paper C (notebook 06): post-training quantization (PTQ) of CIFAR ResNets under LiRA — the study's plumbing.

One keep matrix over a pool of CIFAR-10 training images: `models` ResNets (lib.core.resnet), model m trained on
the pool examples with keep[m] (each example IN exactly ⌊pkeep·models⌋ of them). Every model is a cache unit
(checkpoints/06_post_training_quantization/cifar10/<key>.pt): an interrupted run keeps what finished, and the
same params retrain nothing. LiRA is leave-one-out: model t is a target, the other models its shadows; the
first `targets` models are also quantized (lib.core.ptq) and their quantized copies attacked against the
full-precision shadows, as the authors do. Each quantized copy's logits are cached too (…/outputs/ptq-<key>.npz).

Params: the section at one scale (frozen, validated). The attacks on a Study's outputs (LiRA, RMIA), their tables,
the claims' inputs and the notebook's reading: lib.stages.ptq_privacy_tables.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from ..core.progress import tqdm

from ..core import executor as EX
from ..core import ptq as Q
from ..core import resnet as R
from ..core.train import CheckpointStore, atomic_save, unit_key
from ..attacks import lira as L
from .ptq_privacy_params import SECTION, Params   # the section at one scale (torch-free, for the validator)

FULL_PRECISION = "full precision"
FP_BITS = 32


@dataclass
class Pool:
    """The data of the study: pool images (train split) with the keep matrix, test images, RMIA population."""
    x: torch.Tensor          # [N, 3, 32, 32] preprocessed
    y: torch.Tensor          # [N]
    index: np.ndarray        # positions in the training set
    keep: np.ndarray         # [M, N] bool
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str              # what the numbers are computed on (the stand-in label)
    n_classes: int

    def members(self, m: int) -> np.ndarray:
        return np.flatnonzero(self.keep[m])


def build_pool(data, P: Params) -> Pool:
    """A seeded `pool`-sized subset of the training set (all of it when null), the keep matrix over it, and a seeded
    `n_test`-sized subset of the test set (all of it when null; the test set is never anyone's member). Subsets
    are random, not the first images: a stored test set can be ordered by class."""
    n_train = len(data.y_train)
    n = P.pool or n_train
    if n > n_train:
        raise ValueError(f"06_post_training_quantization.pool = {n} exceeds the {n_train} training images")
    rng = np.random.default_rng(P.seed)
    index = np.sort(rng.permutation(n_train)[:n]) if n < n_train else np.arange(n_train)
    keep = L.keep_matrix(P.models, n, seed=P.seed, pkeep=P.pkeep)
    nt = P.n_test or len(data.y_test)
    test = rng.permutation(len(data.y_test))[:nt]   # random order: RMIA's population is a prefix of it
    return Pool(data.x_train[index], data.y_train[index], index, keep, data.x_test[test], data.y_test[test],
                data.source, int(data.n_classes))


def model_seed(P: Params, m: int) -> int:
    return int(P.seed) * 1000 + m


def unit(P: Params, pool: Pool, m: int) -> dict:
    """What determines model m's weights (its cache key): architecture, recipe, data, its members, its seed."""
    return {"section": SECTION, "dataset": P.dataset, "data_source": pool.source,
            "arch": asdict(P.arch), "training": asdict(P.training), "seed": model_seed(P, m),
            "members_sha": unit_key(pool.index[pool.members(m)].tolist())}


class Cache(CheckpointStore):
    """The stage's files under <checkpoints_dir>/<dataset>/ (`dir`): one <key>.pt per trained model, in the model
    store every family shares (lib.core.train.CheckpointStore: layout, claims, `put`); outputs/fp-<key>.npz (every
    full-precision model's logits) and outputs/ptq-<key>.npz (one per quantized copy; Study._outputs). Writes are
    atomic (tmp + rename)."""

    def __init__(self, root: str | Path, dataset: str):
        super().__init__(root, dataset=dataset)
        self.dir = self.write_dir / dataset
        self.dir.mkdir(parents=True, exist_ok=True)

    def model_path(self, u: dict) -> Path:
        return self.path(u)

    save = staticmethod(atomic_save)   # any file of the stage, to a given path (a checkpoint: `put`)


def arch_of(P: Params, pool: Pool) -> dict:
    """ResNet(**arch_of(...)): the section's architecture with the data set's number of classes."""
    return {**asdict(P.arch), "n_classes": pool.n_classes}


def train_models(cache: Cache, pool: Pool, P: Params, device=None) -> tuple[list[dict], int]:
    """Every model's record (state_dict, seconds, unit, curve), training only the ones not in the cache (in stacks
    of P.stack; null = lib.core.resnet.default_stack: one by one on a CPU, where stacking measured slower, 16 on
    CUDA). With execution.executor `ray` (lib.core.executor) each stack is a Ray task (16 per task when a task has a
    GPU, else one model); locally with execution.workers > 1 the stacks are shared out to that many
    single-threaded processes. Returns (records, how many were trained now)."""
    units = [unit(P, pool, m) for m in range(P.models)]
    todo = [m for m, u in enumerate(units) if not cache.model_path(u).is_file()]
    settings = EX.active()
    # a Ray task trains on what it was given (a GPU or not), not on this process's device
    dev = ("cuda" if settings.ray_gpus_per_unit > 0 else "cpu") if settings.ray else device
    k = P.stack or R.default_stack(R._device(dev))
    chunks = [todo[a:a + k] for a in range(0, len(todo), k)]   # one stack (or one model) each, saved when it finishes
    args = [(cache, pool, P, c, dev, k, settings.claim_stale_seconds) for c in chunks]
    if settings.ray or settings.workers > 1:   # Ray tasks, or execution.workers single-threaded local processes
        EX.run_jobs([EX.Job(train_chunk, a, f"{P.dataset} ResNet models {c[0]}–{c[-1]}")
                     for a, c in zip(args, chunks)], settings, desc=f"{P.dataset} ResNet stacks")
    else:
        for a in args:
            train_chunk(*a)
    recs = [cache.get(u) for u in units]   # None: a corrupt checkpoint, now moved aside (CheckpointStore.load)
    if any(r is None for r in recs):       # trained again, as if it had been missing
        recs, again = train_models(cache, pool, P, device)
        return recs, len(todo) + again
    return recs, len(todo)


def train_chunk(cache: Cache, pool: Pool, P: Params, chunk: list[int], device=None, stack: int | None = None,
                claim_stale_seconds: float = 600.0) -> list[int]:
    """Train models `chunk` of the keep matrix in one stack and save each (locally or in a Ray task). Each model is
    claimed first (lib.core.executor.claim): one that another process is training is waited for, not trained
    again. Returns the models trained here."""
    from contextlib import ExitStack
    tr = P.training
    units = {m: unit(P, pool, m) for m in chunk}
    claims = EX.claims_dir_for(cache.dir.parent)
    with ExitStack() as held:
        mine = [m for m in chunk
                if held.enter_context(EX.claim(claims, P.dataset, unit_key(units[m]),
                                               lambda _, f=cache.model_path(units[m]): f.is_file(),
                                               stale_seconds=claim_stale_seconds))]
        if not mine:
            return []
        out = R.train(arch_of(P, pool), pool.x, pool.y, [pool.members(m) for m in mine],
                      [model_seed(P, m) for m in mine], epochs=tr.epochs, batch_size=tr.batch_size,
                      lr=tr.lr, momentum=tr.momentum, weight_decay=tr.weight_decay, augment=tr.augment,
                      stack=stack or len(mine), device=device, desc=f"{P.dataset} ResNet model",
                      first_index=mine[0])
        for m, rec in zip(mine, out):
            cache.save({**rec, "unit": units[m], "index": m}, cache.model_path(units[m]))
    return mine


def model(rec_or_state, arch: dict) -> R.ResNet:
    net = R.ResNet(**arch)
    net.load_state_dict(rec_or_state["state_dict"] if "state_dict" in rec_or_state else rec_or_state)
    return net.eval()


def accuracy(logits: np.ndarray, y) -> float:
    """% of examples whose argmax is the label; logits [N, C]."""
    return float(100.0 * (np.asarray(logits).argmax(-1) == np.asarray(y)).mean())


def queries(P: Params) -> list:
    """The views every model is queried with: "none" first (accuracy), then LiRA's other queries."""
    return ["none", *[q for q in P.lira.queries if q != "none"]]


def lira_views(P: Params) -> list[int]:
    """Positions of LiRA's queries in `queries(P)` (the attacks' scores and RMIA's signals use these)."""
    return [queries(P).index(q) for q in P.lira.queries]


# ----------------------------------------------------------------------------- quantized copies

def ptq_jobs(P: Params, targets=None, runs=None, grid: bool = True, methods=None, bits=None) -> list[dict]:
    """The quantized configurations of the study, one dict each: target (model index), run (calibration draw),
    method, bits, last_bits (the fc's; = bits unless decoupled), bn_source (OBC only). Calibration draws: ptq.runs
    at the bit widths of ptq.runs_bits (Fig. 6's spread; `runs` overrides), one elsewhere; round-to-nearest draws
    none. `grid=False` gives only the plain ones (no decoupled, no BN leak rows); `methods`, `bits` replace
    ptq.methods, ptq.bits."""
    p = P.ptq
    jobs = []
    for t in (range(P.targets) if targets is None else targets):
        for method in (p.methods if methods is None else methods):
            n_runs = 1 if method == "rtn" else (p.runs if runs is None else runs)  # RTN draws no calibration
            for r in range(n_runs):
                def add(bits, last_bits=None, bn=None):
                    jobs.append({"target": int(t), "run": r, "method": method, "bits": bits,
                                 "last_bits": bits if last_bits is None else last_bits,
                                 "bn_source": (bn or p.bn_source) if method == "obc" else ""})
                for b in (p.bits if bits is None else bits):
                    if r == 0 or b in p.runs_bits:
                        add(b)
                if not grid or r > 0:
                    continue
                for b in p.decoupled.bits:
                    add(b, last_bits=p.decoupled.last_bits)
                if method == "obc" and p.bn_source != "train":
                    for b in p.bn_leak_bits:
                        add(b, bn="train")
    return jobs


def adaptive_jobs(P: Params) -> list[dict]:
    """The adaptive attacker's copies: every model (not only the targets) quantized with each of adaptive.methods
    at adaptive.bits, one calibration draw, plain grid."""
    return ptq_jobs(P, targets=range(P.models), runs=1, grid=False, methods=P.adaptive.methods, bits=P.adaptive.bits)


def quantize(net: R.ResNet, job: dict, pool: Pool, P: Params, seed: int, device=None):
    """A quantized copy of `net` (model job['target']) for one job. Calibration images come from that model's
    members only (lib.core.ptq.calibration_indices; OBC and GPTQ, whose Hessians they give, draw obc_calibration);
    OBC's BN re-estimation draws from its members or, when
    job['bn_source'] == 'train', from the whole pool, non-members included (the authors' leak)."""
    p, members = P.ptq, pool.members(job["target"])
    method, bits = job["method"], job["bits"]
    n_cal = min(p.obc_calibration if method in ("obc", "gptq") else p.calibration, len(members))   # Hessian methods
    cal = Q.calibration_indices(members, n_cal, seed)
    bn_x = None
    if method == "obc":   # batch-norm tuning after OBC (Frantar et al. 2022; the authors)
        bn_x = pool.x[Q.bn_indices(members, np.arange(len(pool.y)), n_cal, seed, source=job["bn_source"])]
    last = job["last_bits"] if job["last_bits"] != bits else None
    return Q.quantize_model(net, method, bits, pool.x[cal], last_layer_bits=last, iters=p.iters.get(method, 1),
                            reg=p.reg.get(method), scale_method=p.scale_method, seed=seed, device=device,
                            bn_x=bn_x, progress_desc=f"model {job['target']} {method} {bits}-bit"
                                                     + (f", fc {last}-bit" if last else ""))


def make_ptq_copies(rec: dict, items: list, pool: Pool, P: Params, device=None) -> None:
    """Quantize model `rec` once per (job, path) of `items` and save atomically at `path` the copy's logits under
    `queries(P)` on the pool [N, V, C] and the test images [n_test, V, C], and its PTQ report (Study.quantized:
    in this process, a local worker or a Ray task). A path that exists is skipped."""
    arch = arch_of(P, pool)
    for job, path in items:
        if Path(path).is_file():
            continue
        qnet, report = quantize(model(rec, arch), job, pool, P, seed=model_seed(P, job["target"]) * 100 + job["run"],
                                device=device)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_save({"pool": R.logits(qnet, None, pool.x, queries=queries(P), device=device)[0],
                     "test": R.logits(qnet, None, pool.x_test, queries=queries(P), device=device)[0],
                     "report": np.array(json.dumps(report, default=str))}, path)


@dataclass
class Study:
    """The section's state: its Params (at the active scale), the pool, the cache and the trained models' records."""
    sec: Params
    pool: Pool
    cache: Cache
    recs: list
    device: object = None

    @classmethod
    def open(cls, sec, data, checkpoints_dir, device=None) -> "Study":
        """`sec`: Params, or the section's dict at the active scale (validated into Params)."""
        P = sec if isinstance(sec, Params) else Params.from_section(sec)
        return cls(P, build_pool(data, P), Cache(checkpoints_dir, P.dataset), [], device)

    @property
    def arch(self) -> dict:
        return arch_of(self.sec, self.pool)

    # -- models
    def train(self) -> int:
        self.recs, n = train_models(self.cache, self.pool, self.sec, self.device)
        return n

    def _outputs(self, name: str, key: dict, make) -> dict:
        path = self.cache.dir / "outputs" / f"{name}-{unit_key(key)}.npz"
        path.parent.mkdir(exist_ok=True)
        if not path.is_file():
            self.cache.save(make(), path)
        with np.load(path) as f:
            return {k: f[k] for k in f.files}

    def fp_outputs(self) -> dict:
        """Full-precision logits of every model under `queries(P)`: pool [M, N, V, C], test [M, n_test, V, C]."""
        P, pool = self.sec, self.pool
        key = {"models": [r["unit"] for r in self.recs], "queries": P.lira.queries, "n_test": len(pool.y_test)}
        states = [r["state_dict"] for r in self.recs]

        def make():
            return {"pool": R.logits(states, self.arch, pool.x, queries=queries(P), device=self.device),
                    "test": R.logits(states, self.arch, pool.x_test, queries=queries(P), device=self.device)}
        return self._outputs("fp", key, make)

    def _ptq_path(self, job: dict) -> Path:
        """The file of one quantized copy (outputs/ptq-<key>.npz): its model's unit, the job, the queries and the
        PTQ settings name it."""
        P, p = self.sec, asdict(self.sec.ptq)
        key = {"model": self.recs[job["target"]]["unit"], "job": {k: v for k, v in job.items() if k != "target"},
               "queries": P.lira.queries, "n_test": len(self.pool.y_test),
               "ptq": {k: p[k] for k in ("calibration", "obc_calibration", "iters", "reg", "scale_method")}}
        return self.cache.dir / "outputs" / f"ptq-{unit_key(key)}.npz"

    def quantized(self, jobs: list[dict]) -> list[dict]:
        """Per job: its quantized copy's logits under `queries(P)` on the pool [N, V, C] and the test images
        [n_test, V, C], and its PTQ report. Each copy is cached on its own (an interrupted run keeps the finished
        ones). Missing copies are made by the executor first (execution.workers single-threaded local processes,
        one job per target model, so that a worker receives the pool once per model; or Ray tasks), else here."""
        paths = [self._ptq_path(j) for j in jobs]
        missing: dict[int, list] = {}
        for job, path in zip(jobs, paths):
            if not path.is_file():
                missing.setdefault(job["target"], []).append((job, str(path)))
        settings = EX.active()
        if missing and (settings.ray or settings.workers > 1):
            dev = ("cuda" if settings.ray_gpus_per_unit > 0 else "cpu") if settings.ray else self.device
            EX.run_jobs([EX.Job(make_ptq_copies, (self.recs[t], items, self.pool, self.sec, dev),
                                f"model {t}: {len(items)} PTQ copies") for t, items in missing.items()],
                        settings, desc="PTQ copies")
        out = []
        for job, path in zip(jobs, tqdm(paths, desc="PTQ copies")):
            if not path.is_file():   # one worker: made here, one after the other
                make_ptq_copies(self.recs[job["target"]], [(job, str(path))], self.pool, self.sec, self.device)
            with np.load(path) as f:
                out.append({**job, "pool": f["pool"], "test": f["test"], "report": json.loads(str(f["report"]))})
        return out
