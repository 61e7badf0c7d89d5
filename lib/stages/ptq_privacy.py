"""Paper C (notebook 06): post-training quantization (PTQ) of CIFAR ResNets under LiRA — the study's plumbing.

One keep matrix over a pool of CIFAR-10 training images: `models` ResNets (lib.core.resnet), model m trained on
the pool examples with keep[m] (each example IN exactly ⌊pkeep·models⌋ of them). Every model is a cache unit
(checkpoints/06_post_training_quantization/cifar10/<key>.pt): an interrupted run keeps what finished, and the
same params retrain nothing. LiRA is leave-one-out: model t is a target, the other models its shadows; the
first `targets` models are also quantized (lib.core.ptq) and their quantized copies attacked against the
full-precision shadows, as the authors do. Each quantized copy's logits are cached too (…/outputs/ptq-<key>.npz).

Tables (tidy, one row per target × configuration × attack):
    method        "full precision" or a PTQ method (rtn, adaround, brecq, obc)
    bits          32 for full precision; 4, 2, 1.58, 1
    last_bits     the fc's bits when decoupled (e.g. 8), else = bits
    bn_source     OBC's BN re-estimation data: members | train (the authors' leak); "" for the others
    shadows       fp (full-precision shadows, the paper) | quantized (the adaptive attacker, beyond the paper)
    attack        "LiRA online" | "LiRA offline" (fixed variance per params) | "RMIA"
    test_acc      % on the test images; train_acc: % on the target's members (the gap = overfitting)
    auc, tpr_at_0_1pct, tpr_at_1pct (+ _status, _chance, min_fpr), n_members, n_nonmembers
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core import executor as EX
from ..core import ptq as Q
from ..core import resnet as R
from ..core.train import atomic_save, unit_key
from ..attacks import lira as L
from ..claims import verdicts as V
from ..attacks.lira import metrics_row, rmia_signal  # noqa: F401  (re-exported: 06's notebook and tests use them here)

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


def build_pool(data, sec: dict) -> Pool:
    """A seeded `pool`-sized subset of the training set (all of it when null), the keep matrix over it, and a seeded
    `n_test`-sized subset of the test set (all of it when null; the test set is never anyone's member). Subsets
    are random, not the first images: a stored test set can be ordered by class."""
    n_train = len(data.y_train)
    n = sec["pool"] or n_train
    if n > n_train:
        raise ValueError(f"06_post_training_quantization.pool = {n} exceeds the {n_train} training images")
    rng = np.random.default_rng(sec["seed"])
    index = np.sort(rng.permutation(n_train)[:n]) if n < n_train else np.arange(n_train)
    keep = L.keep_matrix(sec["models"], n, seed=sec["seed"], pkeep=sec["pkeep"])
    nt = sec["n_test"] or len(data.y_test)
    test = rng.permutation(len(data.y_test))[:nt]   # random order: RMIA's population is a prefix of it
    return Pool(data.x_train[index], data.y_train[index], index, keep, data.x_test[test], data.y_test[test],
                data.source, int(data.n_classes))


def model_seed(sec: dict, m: int) -> int:
    return int(sec["seed"]) * 1000 + m


def unit(sec: dict, pool: Pool, m: int) -> dict:
    """What determines model m's weights (its cache key): architecture, recipe, data, its members, its seed."""
    return {"section": "06_post_training_quantization", "dataset": sec["dataset"], "data_source": pool.source,
            "arch": sec["arch"], "training": sec["training"], "seed": model_seed(sec, m),
            "members_sha": unit_key(pool.index[pool.members(m)].tolist())}


class Cache:
    """Files under <checkpoints_dir>/<dataset>/: one <key>.pt per trained model; outputs/fp-<key>.npz (every
    full-precision model's logits) and outputs/ptq-<key>.npz (one per quantized copy; Study._outputs). Writes are
    atomic (tmp + rename)."""

    def __init__(self, root: str | Path, dataset: str):
        self.dir = Path(root) / dataset
        self.dir.mkdir(parents=True, exist_ok=True)

    def model_path(self, u: dict) -> Path:
        return self.dir / f"{unit_key(u)}.pt"

    save = staticmethod(atomic_save)


def arch_of(sec: dict, pool: Pool) -> dict:
    """ResNet(**arch_of(...)): the section's architecture with the data set's number of classes."""
    return {**sec["arch"], "n_classes": pool.n_classes}


def train_models(cache: Cache, pool: Pool, sec: dict, device=None) -> tuple[list[dict], int]:
    """Every model's record (state_dict, seconds, unit, curve), training only the ones not in the cache (in stacks
    of sec['stack']; null = lib.core.resnet.default_stack: one by one on a CPU, where stacking measured slower, 16 on
    CUDA). With train.executor `ray` (lib.core.executor) each stack is a Ray task (16 per task when a task has a
    GPU, else one model). Returns (records, how many were trained now)."""
    units = [unit(sec, pool, m) for m in range(sec["models"])]
    todo = [m for m, u in enumerate(units) if not cache.model_path(u).is_file()]
    settings = EX.active()
    # a Ray task trains on what it was given (a GPU or not), not on this process's device
    dev = ("cuda" if settings.ray_gpus_per_unit > 0 else "cpu") if settings.ray else device
    k = sec["stack"] or R.default_stack(R._device(dev))
    chunks = [todo[a:a + k] for a in range(0, len(todo), k)]   # one stack (or one model) each, saved when it finishes
    args = [(cache, pool, sec, c, dev, k, settings.claim_stale_seconds) for c in chunks]
    if settings.ray:
        EX.run_jobs([EX.Job(train_chunk, a, f"{sec['dataset']} ResNet models {c[0]}–{c[-1]}")
                     for a, c in zip(args, chunks)], settings, desc=f"{sec['dataset']} ResNet stacks")
    else:
        for a in args:
            train_chunk(*a)
    recs = [torch.load(cache.model_path(u), weights_only=False) for u in units]
    return recs, len(todo)


def train_chunk(cache: Cache, pool: Pool, sec: dict, chunk: list[int], device=None, stack: int | None = None,
                claim_stale_seconds: float = 600.0) -> list[int]:
    """Train models `chunk` of the keep matrix in one stack and save each (locally or in a Ray task). Each model is
    claimed first (lib.core.executor.claim): one that another process is training is waited for, not trained
    again. Returns the models trained here."""
    from contextlib import ExitStack
    tr = sec["training"]
    units = {m: unit(sec, pool, m) for m in chunk}
    claims = EX.claims_dir_for(cache.dir.parent)
    with ExitStack() as held:
        mine = [m for m in chunk
                if held.enter_context(EX.claim(claims, sec["dataset"], unit_key(units[m]),
                                               lambda _, f=cache.model_path(units[m]): f.is_file(),
                                               stale_seconds=claim_stale_seconds))]
        if not mine:
            return []
        out = R.train(arch_of(sec, pool), pool.x, pool.y, [pool.members(m) for m in mine],
                      [model_seed(sec, m) for m in mine], epochs=tr["epochs"], batch_size=tr["batch_size"],
                      lr=tr["lr"], momentum=tr["momentum"], weight_decay=tr["weight_decay"], augment=tr["augment"],
                      stack=stack or len(mine), device=device, desc=f"{sec['dataset']} ResNet model",
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


def queries(sec: dict) -> list:
    """The views every model is queried with: "none" first (accuracy), then LiRA's other queries."""
    return ["none", *[q for q in sec["lira"]["queries"] if q != "none"]]


def lira_views(sec: dict) -> list[int]:
    """Positions of LiRA's queries in `queries(sec)` (the attacks' scores and RMIA's signals use these)."""
    return [queries(sec).index(q) for q in sec["lira"]["queries"]]


# ----------------------------------------------------------------------------- quantized copies

def ptq_jobs(sec: dict, targets=None, runs=None, grid: bool = True) -> list[dict]:
    """The quantized configurations of the study, one dict each: target (model index), run (calibration draw),
    method, bits, last_bits (the fc's; = bits unless decoupled), bn_source (OBC only). Calibration draws: ptq.runs
    at the bit widths of ptq.runs_bits (Fig. 6's spread; `runs` overrides), one elsewhere; round-to-nearest draws
    none. `grid=False` gives only the plain ones (no decoupled, no BN leak rows)."""
    p = sec["ptq"]
    jobs = []
    for t in (range(sec["targets"]) if targets is None else targets):
        for method in p["methods"]:
            n_runs = 1 if method == "rtn" else (p["runs"] if runs is None else runs)  # RTN draws no calibration
            for r in range(n_runs):
                def add(bits, last_bits=None, bn=None):
                    jobs.append({"target": int(t), "run": r, "method": method, "bits": bits,
                                 "last_bits": bits if last_bits is None else last_bits,
                                 "bn_source": (bn or p["bn_source"]) if method == "obc" else ""})
                for b in p["bits"]:
                    if r == 0 or b in p["runs_bits"]:
                        add(b)
                if not grid or r > 0:
                    continue
                for b in p["decoupled"]["bits"]:
                    add(b, last_bits=p["decoupled"]["last_bits"])
                if method == "obc" and p["bn_source"] != "train":
                    for b in p["bn_leak_bits"]:
                        add(b, bn="train")
    return jobs


def quantize(net: R.ResNet, job: dict, pool: Pool, sec: dict, seed: int, device=None):
    """A quantized copy of `net` (model job['target']) for one job. Calibration images come from that model's
    members only (lib.core.ptq.calibration_indices); OBC's BN re-estimation draws from its members or, when
    job['bn_source'] == 'train', from the whole pool, non-members included (the authors' leak)."""
    p, members = sec["ptq"], pool.members(job["target"])
    method, bits = job["method"], job["bits"]
    n_cal = min(p["obc_calibration"] if method == "obc" else p["calibration"], len(members))
    cal = Q.calibration_indices(members, n_cal, seed)
    bn_x = None
    if method == "obc":   # batch-norm tuning after OBC (Frantar et al. 2022; the authors)
        bn_x = pool.x[Q.bn_indices(members, np.arange(len(pool.y)), n_cal, seed, source=job["bn_source"])]
    last = job["last_bits"] if job["last_bits"] != bits else None
    return Q.quantize_model(net, method, bits, pool.x[cal], last_layer_bits=last, iters=p["iters"].get(method, 1),
                            reg=p["reg"].get(method), scale_method=p["scale_method"], seed=seed, device=device,
                            bn_x=bn_x, progress_desc=f"model {job['target']} {method} {bits}-bit"
                                                     + (f", fc {last}-bit" if last else ""))


@dataclass
class Study:
    """The section's state: params (at the active scale), the pool, the cache and the trained models' records."""
    sec: dict
    pool: Pool
    cache: Cache
    recs: list
    device: object = None

    @classmethod
    def open(cls, sec: dict, data, checkpoints_dir, device=None) -> "Study":
        return cls(sec, build_pool(data, sec), Cache(checkpoints_dir, sec["dataset"]), [], device)

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
        """Full-precision logits of every model under `queries(sec)`: pool [M, N, V, C], test [M, n_test, V, C]."""
        sec, pool = self.sec, self.pool
        key = {"models": [r["unit"] for r in self.recs], "queries": sec["lira"]["queries"], "n_test": len(pool.y_test)}
        states = [r["state_dict"] for r in self.recs]

        def make():
            return {"pool": R.logits(states, self.arch, pool.x, queries=queries(sec), device=self.device),
                    "test": R.logits(states, self.arch, pool.x_test, queries=queries(sec), device=self.device)}
        return self._outputs("fp", key, make)

    def quantized(self, jobs: list[dict]) -> list[dict]:
        """Per job: its quantized copy's logits under `queries(sec)` on the pool [N, V, C] and the test images
        [n_test, V, C], and its PTQ report. Each copy is cached on its own (an interrupted run keeps the finished ones)."""
        sec, pool, out = self.sec, self.pool, []
        p = sec["ptq"]
        for job in tqdm(jobs, desc="PTQ copies"):
            m = job["target"]
            key = {"model": self.recs[m]["unit"], "job": {k: v for k, v in job.items() if k != "target"},
                   "queries": sec["lira"]["queries"], "n_test": len(pool.y_test),
                   "ptq": {k: p[k] for k in ("calibration", "obc_calibration", "iters", "reg", "scale_method")}}

            def make(job=job, m=m):
                qnet, report = quantize(model(self.recs[m], self.arch), job, pool, sec,
                                        seed=model_seed(sec, m) * 100 + job["run"], device=self.device)
                return {"pool": R.logits(qnet, None, pool.x, queries=queries(sec), device=self.device)[0],
                        "test": R.logits(qnet, None, pool.x_test, queries=queries(sec), device=self.device)[0],
                        "report": np.array(json.dumps(report, default=str))}
            f = self._outputs("ptq", key, make)
            out.append({**job, "pool": f["pool"], "test": f["test"], "report": json.loads(str(f["report"]))})
        return out

    # -- attacks
    def scores(self, logits: np.ndarray) -> np.ndarray:
        """LiRA scores [..., N, A] of pool logits [..., N, views, C] (the views of LiRA's A queries)."""
        y = self.pool.y.numpy()
        z = np.asarray(logits)[..., lira_views(self.sec), :]
        return L.scores_from_logits(z, y) if z.ndim == 3 else np.stack([L.scores_from_logits(v, y) for v in z])

    def attack(self, target_scores: np.ndarray, m: int, shadow_scores: np.ndarray, shadows=None) -> list[dict]:
        """LiRA online and offline on model m's scores [N, A] with the other models (or `shadows`, indices) as
        shadows: one dict per attack with the member scores (kept for pooling) and the truth keep[m]."""
        keep = self.pool.keep
        rest = np.array([i for i in (range(len(keep)) if shadows is None else shadows) if i != m])
        lr = self.sec["lira"]
        # the same number of IN and of OUT shadows for every example (lira.balanced_references, as stage 08): in
        # leave-one-out a target's members otherwise have one IN shadow fewer than its non-members
        k = keep[rest]
        use = L.balanced_references(k) if min(k.sum(0).min(), (~k).sum(0).min()) >= 1 else np.ones_like(k)
        sh = np.where(use.reshape(use.shape + (1,) * (np.ndim(shadow_scores) - 2)), shadow_scores[rest], np.nan)
        out = []
        for name, online in (("LiRA online", True), ("LiRA offline", False)):
            atk = L.LiRA(online=online, fix_variance=lr["fix_variance"], variant=lr["variant"])
            out.append({"attack": name, "n_shadows": len(rest), "scores": atk.member_scores(
                sh, keep[rest], target_scores), "truth": keep[m]})
        return out

    def rmia(self, target_pool_logits, target_test_logits, m: int, fp: dict, refs: int) -> dict:
        """Offline RMIA on model m's outputs with the other models as references (up to `refs` OUT per example);
        population = the first rmia.population test images (never anyone's member)."""
        r, keep, y = self.sec["rmia"], self.pool.keep, self.pool.y.numpy()
        n_pop = min(r["population"], len(self.pool.y_test))
        yt = self.pool.y_test.numpy()[:n_pop]
        rest = np.array([i for i in range(len(keep)) if i != m])
        v = lira_views(self.sec)
        sig = lambda z, yy: rmia_signal(z[..., v, :], yy)   # noqa: E731
        sc = L.rmia_member_scores(sig(target_pool_logits, y), sig(fp["pool"][rest], y), keep[rest],
                                  sig(target_test_logits[:n_pop], yt), sig(fp["test"][rest, :n_pop], yt),
                                  offline_a=r["offline_a"], gamma=r["gamma"], max_refs=refs,
                                  ref_use=L.balanced_references(keep[rest], k_in=0, k_out=refs))   # `refs` OUT models
        return {"attack": f"RMIA ({refs} ref{'s' if refs > 1 else ''})", "n_shadows": refs, "scores": sc,
                "truth": keep[m]}


# ----------------------------------------------------------------------------- tables

CONFIG = ["method", "bits", "last_bits", "bn_source", "shadows"]


ARRAYS = ("scores", "truth", "correct")   # an entry's per-example arrays (not table columns)


def attack_table(entries: list[dict], fprs, keys=None, boot: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-target table, pooled table). `entries`: dicts with the configuration columns, target, run,
    test_acc, train_acc, attack, scores, truth (and `correct`, the test images the target gets right). Pooled =
    the member scores of every target of one (configuration, run, attack) — or `keys` — concatenated: N⁻ grows with
    the number of targets (leave-one-out pooling); its TPR's bootstrap resamples the targets too. Each per-target
    row's `examples` is the id of its per-example outcomes (`outcomes`). `boot`: params.yaml → verdicts.bootstrap."""
    b = boot or {"n_boot": 200, "seed": 0}
    per = [{**{k: v for k, v in e.items() if k not in ARRAYS},
            **metrics_row(e["scores"], e["truth"], fprs, n_boot=b["n_boot"], seed=b["seed"]), "examples": entry_id(e)}
           for e in entries]
    per = pd.DataFrame(per)
    keys = [*CONFIG, "run", "attack"] if keys is None else list(keys)
    pooled = []
    for cfg, g, sc, tr in _pooled(entries, keys):
        who = np.concatenate([np.full(len(e["truth"]), e["target"]) for e in g])
        pooled.append({**cfg, "targets": len(g), "test_acc": float(np.mean([e["test_acc"] for e in g])),
                       "train_acc": float(np.mean([e["train_acc"] for e in g])),
                       **metrics_row(sc, tr, fprs, groups=who, n_boot=b["n_boot"], seed=b["seed"])})
    return per, pd.DataFrame(pooled)


def entry_id(e: dict) -> str:
    """The id of an attack entry's per-example outcomes: its configuration, target, run and attack."""
    return "|".join(str(e.get(k, "")) for k in (*CONFIG, "target", "run", "attack"))


def outcomes(entries: list[dict]) -> pd.DataFrame:
    """Per-example outcomes of attack entries (lib.claims.verdicts.Examples): measure "lira" = the attack's member
    score and the truth of every pool example (example = pool position), "eval" = the target's correctness on
    every test image (example = −(j + 1))."""
    parts = []
    for e in entries:
        i = entry_id(e)
        parts.append(pd.DataFrame({"id": i, "measure": "lira", "example": np.arange(len(e["truth"])),
                                   "member": np.asarray(e["truth"]).astype(np.int8), "score": e["scores"]}))
        if "correct" in e:
            parts.append(pd.DataFrame({"id": i, "measure": "eval", "example": -(np.arange(len(e["correct"])) + 1),
                                       "correct": np.asarray(e["correct"]).astype(np.int8)}))
    return pd.concat(parts, ignore_index=True)


# the metric columns of the per-target table (and claims_table's acc_over_chance), from the per-example outcomes
OUTCOMES = {"test_acc": V.Outcome("eval", "accuracy", scale=100.0),
            "acc_over_chance": V.Outcome("eval", "accuracy", scale=100.0),
            "auc": V.Outcome("lira", "auc"),
            **{f"{p}tpr_at_{t}": V.Outcome("lira", "log10_tpr" if p else "tpr", f)
               for f, t in ((0.01, "1pct"), (0.001, "0_1pct")) for p in ("", "log10_")}}


def examples_of(frame: pd.DataFrame, params: dict) -> V.Examples:
    b = params["verdicts"]["bootstrap"]
    return V.Examples(frame, OUTCOMES, n_boot=b["n_boot"], seed=b["seed"])


def _groups(entries, keys):
    out: dict = {}
    for e in entries:
        out.setdefault(tuple(e[k] for k in keys), []).append(e)
    return [(dict(zip(keys, k)), g) for k, g in out.items()]


def _pooled(entries, keys):
    """Per group of `keys`: (its values, its entries, their member scores concatenated, their truth concatenated)."""
    return [(cfg, g, np.concatenate([e["scores"] for e in g]), np.concatenate([e["truth"] for e in g]))
            for cfg, g in _groups(entries, list(keys))]


def pooled_roc(entries: list[dict], keys=(*CONFIG, "attack"), n_points: int = 150) -> pd.DataFrame:
    """Log-log ROC curve points of each pooled configuration (all runs together)."""
    return pd.concat([L.roc_loglog(sc, tr, n_points).assign(**cfg) for cfg, _, sc, tr in _pooled(entries, keys)],
                     ignore_index=True)


def main_grid(df: pd.DataFrame, sec: dict, decoupled: bool = False) -> pd.DataFrame:
    """Rows of the paper's main grid: OBC only with the section's BN source (not the leak copies), and — unless
    `decoupled` — only copies whose fc has the same bits as the rest."""
    keep = df.bn_source.fillna("").isin(["", sec["ptq"]["bn_source"]])
    return df[keep if decoupled else keep & (df.last_bits == df.bits)]


FP_CONFIG = {"method": FULL_PRECISION, "bits": FP_BITS, "last_bits": FP_BITS, "bn_source": "", "shadows": "fp"}


JOB = ("method", "bits", "last_bits", "bn_source", "target", "run")


def _accs(study: Study, pool_logits: np.ndarray, test_logits: np.ndarray, m: int) -> dict:
    """Test accuracy (%) and accuracy on model m's members (the train accuracy), both on the un-augmented view, and
    which test images it gets right (`correct`, for the paired tests)."""
    members = study.pool.members(m)
    return {"test_acc": accuracy(test_logits[:, 0], study.pool.y_test.numpy()),
            "correct": np.asarray(test_logits[:, 0]).argmax(-1) == study.pool.y_test.numpy(),
            "train_acc": accuracy(pool_logits[members, 0], study.pool.y.numpy()[members]),
            "n_eval": len(study.pool.y_test), "n_members_trained": len(members)}


def _fp_row(study: Study, fp: dict, m: int) -> dict:
    """The configuration and accuracies of full-precision model m as a target."""
    return {**FP_CONFIG, "target": m, "run": 0, **_accs(study, fp["pool"][m], fp["test"][m], m)}


def _q_row(study: Study, q: dict, shadows: str = "fp") -> dict:
    """The configuration and accuracies of quantized copy q as a target attacked with `shadows` (fp | quantized)."""
    return {**{k: q[k] for k in JOB}, "shadows": shadows, **_accs(study, q["pool"], q["test"], q["target"])}


def lira_entries(study: Study, fp: dict, qouts: list[dict], fp_targets=None) -> list[dict]:
    """Attack entries (for attack_table / pooled_roc): every full-precision model in `fp_targets` (default: all,
    leave-one-out) and every quantized copy, each against the full-precision shadows (the paper's protocol)."""
    S = study.scores(fp["pool"])
    out = []
    for m in (range(len(S)) if fp_targets is None else fp_targets):
        out += [{**_fp_row(study, fp, m), **a} for a in study.attack(S[m], m, S)]
    for q in qouts:
        out += [{**_q_row(study, q), **a} for a in study.attack(study.scores(q["pool"]), q["target"], S)]
    return out


def adaptive_entries(study: Study, fp: dict, qouts_all: list[dict]) -> list[dict]:
    """The adaptive attacker (beyond the paper): for each (method, bits) every model is quantized with the same PTQ,
    and the quantized targets (the first `targets` models) are attacked with the quantized shadows."""
    out = []
    for cfg, g in _groups(qouts_all, ["method", "bits", "last_bits", "bn_source", "run"]):
        Sq = np.stack([study.scores(q["pool"]) for q in sorted(g, key=lambda q: q["target"])])
        for q in g:
            m = q["target"]
            if m >= study.sec["targets"]:
                continue
            out += [{**_q_row(study, q, "quantized"), **a} for a in study.attack(Sq[m], m, Sq)]
    return out


def rmia_entries(study: Study, fp: dict, qouts: list[dict]) -> list[dict]:
    """RMIA (offline, references = the other full-precision models) on the full-precision targets (the first
    `targets` models) and on their quantized copies, for each reference count of rmia.references."""
    out = []
    for refs in study.sec["rmia"]["references"]:
        for m in range(study.sec["targets"]):
            out.append({**_fp_row(study, fp, m), **study.rmia(fp["pool"][m], fp["test"][m], m, fp, refs)})
        for q in qouts:
            out.append({**_q_row(study, q), **study.rmia(q["pool"], q["test"], q["target"], fp, refs)})
    return out


def budget_entries(study: Study, fp: dict) -> list[dict]:
    """TPR vs the attacker's budget on the full-precision targets (the first `targets` models): LiRA online and
    offline with the first c of the other models as shadows (c in shadow_counts), RMIA with k OUT references per
    example (k in rmia.references). Column `out_per_example`: OUT models per example the attack uses (LiRA:
    ≈ (1 − pkeep)·c; RMIA: k), the budget that matters for offline attacks."""
    S, sec, out = study.scores(fp["pool"]), study.sec, []
    for m in range(sec["targets"]):
        base = _fp_row(study, fp, m)
        others = [i for i in range(len(S)) if i != m]
        for c in sec["shadow_counts"]:
            for a in study.attack(S[m], m, S, shadows=others[:c]):
                out.append({**base, **a, "budget": c, "out_per_example": (1 - sec["pkeep"]) * c})
        for k in sec["rmia"]["references"]:
            out.append({**base, **study.rmia(fp["pool"][m], fp["test"][m], m, fp, k), "budget": k,
                        "out_per_example": float(k)})
    return out
