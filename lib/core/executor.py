"""Where training units run, and the claim that keeps any unit from being trained twice.

Every model of the pipeline is a cache unit: a dict that defines it, whose hash names its checkpoint file, written
atomically (lib.core.train.atomic_save). Training a unit is therefore a pure job, "make this file", that can run
anywhere that sees the same checkpoint folder. `params.yaml: execution.executor` says where:

    local   this process (`execution.workers: 1`), or `execution.workers` single-threaded processes (`run_jobs`;
            Ray is not imported)
    ray     one Ray task per missing unit, on the cluster at `execution.ray_address` (null: a Ray instance started
            here), `execution.ray_cpus_per_unit` CPUs and `execution.ray_gpus_per_unit` GPUs each. Workers write
            into the same checkpoint store, so the repository must be on a filesystem every node mounts at the same
            path. The notebook waits with a progress bar over units, then reads the store as it does locally.

The executor never changes what is trained: no `execution` key is part of a unit or a dvc dependency. (One caveat,
measured: on a CPU the reduction order of convolutions depends on torch's thread count, so a unit is bit-identical
across executors when both train it with the same number of threads; a Ray task uses `ray_cpus_per_unit` threads,
the local workers one each.)

A *claim* (`claim`) is a lock file per unit, `<claims dir>/<dataset>/<key>.lock`, created with O_EXCL, holding the
holder's host and pid, its mtime refreshed by a heartbeat. Whoever holds it trains the unit; anybody else asking
for the same unit (another worker, another stage, another notebook) waits until the holder is done and then reads
its checkpoint, copying it into its own store when the holder wrote it into another stage's folder (the holder
leaves `<key>.done` naming the file; only a waiter copies, so what a stage reads never depends on which stages ran
before it). A claim whose holder died (same host and the pid is gone, or no heartbeat for
`execution.claim_stale_seconds`) is broken and taken over: a killed worker's unit is retried by Ray and trained again,
and its half-written `<key>.pt.tmp` is never read (readers look for `<key>.pt` only, which appears by a rename).
Two processes that find the same stale claim at the same instant could both take it over (the rename that breaks
it is atomic, the check before it is not); they would then both train the unit, to the same bits, and one rename
wins: wasted work, never a wrong or half file.

Local worker processes (`local_pool`) end with the process that started them (`die_with_parent`): a killed
notebook kernel leaves no worker training on for minutes beside its rerun.

Who uses it: lib.core.train.CheckpointStore.claim, the one model store of every family, and through it
ModelStore.train_missing (01 through lib.stages.base.train_all; 02–04, 08 and 09 through membership.train_parallel;
05 through temporal.train_units, each model measured inside the worker that trains it), ptq_privacy.train_models and
Study.quantized (06: models and quantized copies) and grad_obf.Study.train (07). Every stage trains its missing
models through `run_jobs` first, then reads them from the store.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, _check

EXECUTORS = ("local", "ray")
# The keys of params.yaml's `execution` section: where units run, not what they are. Never part of a unit, and no
# stage depends on them (dvc.yaml), so switching the executor or the number of workers reruns nothing.
EXECUTION_KEYS = ("executor", "workers", "ray_address", "ray_cpus_per_unit", "ray_gpus_per_unit", "ray_max_retries",
                  "claim_stale_seconds")


def _number(x, integer: bool = False) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and (not integer or isinstance(x, int))


@dataclass(frozen=True)
class Settings:
    """params.yaml's `execution` section, checked when built (every error names its key, `execution.<key>`)."""
    executor: str = "local"
    workers: int = 1                  # local single-threaded worker processes that train a stage's units at once
    ray_address: str | None = None
    ray_cpus_per_unit: int = 1
    ray_gpus_per_unit: float = 0
    ray_max_retries: int = 3
    claim_stale_seconds: float = 600.0

    def __post_init__(self):
        _check(self.executor in EXECUTORS, "execution.executor", self.executor, f"one of {EXECUTORS}")
        _check(_number(self.workers, True) and self.workers >= 1, "execution.workers", self.workers,
               "a positive integer")
        _check(self.ray_address is None or (isinstance(self.ray_address, str) and self.ray_address.strip() != ""),
               "execution.ray_address", self.ray_address, 'null, "auto" or "host:port"')
        _check(_number(self.ray_cpus_per_unit, True) and self.ray_cpus_per_unit >= 1, "execution.ray_cpus_per_unit",
               self.ray_cpus_per_unit, "a positive integer")
        _check(_number(self.ray_gpus_per_unit) and self.ray_gpus_per_unit >= 0, "execution.ray_gpus_per_unit",
               self.ray_gpus_per_unit, "a number >= 0 (a fraction shares a GPU)")
        _check(_number(self.ray_max_retries, True) and self.ray_max_retries >= 0, "execution.ray_max_retries",
               self.ray_max_retries, "an integer >= 0")
        _check(_number(self.claim_stale_seconds) and self.claim_stale_seconds > 0, "execution.claim_stale_seconds",
               self.claim_stale_seconds, "a positive number")

    @classmethod
    def from_params(cls, params: dict) -> "Settings":
        ex = params.get("execution") or {}
        if not isinstance(ex, dict):
            raise ConfigError(f"params.yaml: `execution` = {ex!r} is invalid; expected a mapping")
        unknown = sorted(set(ex) - set(EXECUTION_KEYS))
        if unknown:
            raise ConfigError(f"params.yaml: unknown key `execution.{unknown[0]}`; expected one of {list(EXECUTION_KEYS)}")
        return cls(**ex)

    @property
    def ray(self) -> bool:
        return self.executor == "ray"


_ACTIVE = Settings()


def configure(settings: Settings | dict) -> Settings:
    """Set the process's executor (lib.stages.base.open_stage does, from params.yaml). Returns the previous one."""
    global _ACTIVE
    new = settings if isinstance(settings, Settings) else Settings.from_params(settings)
    if new.ray:   # said now, before any stage starts training
        try:
            import ray  # noqa: F401
        except ImportError as e:
            raise ImportError("params.yaml: execution.executor is `ray` but ray cannot be imported here: pip install -r "
                              "requirements.txt -c requirements-lock.txt, or set execution.executor: local") from e
    prev, _ACTIVE = _ACTIVE, new
    return prev


def active() -> Settings:
    return _ACTIVE


# ----------------------------------------------------------------------------- claims

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claim:
    """The lock file of one unit. `try_acquire` creates it (O_EXCL) and starts the heartbeat; `release` removes it."""

    def __init__(self, lock: Path, stale_seconds: float = 600.0):
        self.lock = Path(lock)
        self.stale_seconds = float(stale_seconds)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def try_acquire(self) -> bool:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token, "since": time.time()}, f)
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(self.stale_seconds / 4, 0.05)):
            try:
                os.utime(self.lock)
            except FileNotFoundError:
                return

    def holder(self) -> dict | None:
        try:
            return json.loads(self.lock.read_text())
        except (FileNotFoundError, json.JSONDecodeError):   # gone, or its holder is still writing it
            return None

    def stale(self) -> bool:
        """The holder is dead: on this host and its pid is gone, or its heartbeat stopped `stale_seconds` ago."""
        try:
            age = time.time() - self.lock.stat().st_mtime
        except FileNotFoundError:
            return False
        h = self.holder()
        if h is not None and h.get("host") == socket.gethostname() and not _alive(int(h["pid"])):
            return True
        return age > self.stale_seconds

    def break_stale(self) -> bool:
        """Remove a dead holder's lock (by an atomic rename first, so two breakers cannot both remove it)."""
        if not self.stale():
            return False
        grave = self.lock.with_name(f"{self.lock.name}.broken-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.lock, grave)
        except FileNotFoundError:
            return False
        grave.unlink(missing_ok=True)
        return True

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        h = self.holder()
        if h is not None and h.get("token") == self.token:
            self.lock.unlink(missing_ok=True)


def claims_dir_for(write_dir: str | Path) -> Path:
    """One claims folder for all stages: `.claims` beside the stages' checkpoint folders (checkpoints/.claims)."""
    return Path(write_dir).resolve().parent / ".claims"


@contextmanager
def claim(claims_dir: str | Path, dataset: str, key: str, ready, *, stale_seconds: float = 600.0,
          poll_seconds: float = 0.5):
    """Hold the claim on unit `dataset/key`, or wait for the one who holds it.

    `ready(waited)` says whether this caller can already read the unit (its checkpoint is in the caller's store);
    `waited` is True once the caller has waited for another holder, whose checkpoint it may then take from that
    holder's folder (`done_path`; only then, so what a stage reads never depends on which stages ran before it).
    Yields a handle that is true when the caller must train the unit now (it holds the claim; released on exit,
    also on an exception), false when the unit became readable meanwhile. Before releasing, the holder calls
    `handle.done(path)` to say where it wrote the checkpoint."""
    lock = Path(claims_dir) / dataset / f"{key}.lock"
    c = Claim(lock, stale_seconds)
    waited = False
    while True:
        if ready(waited):
            yield ClaimHandle(None, lock)
            return
        if c.try_acquire():
            break
        if not c.break_stale():
            waited = True
            time.sleep(poll_seconds)
    try:
        if ready(waited):   # finished by another holder between our check and our lock
            yield ClaimHandle(None, lock)
        else:
            yield ClaimHandle(c, lock)
    finally:
        c.release()


class ClaimHandle:
    def __init__(self, claim: Claim | None, lock: Path):
        self.claim, self.lock = claim, lock

    def __bool__(self) -> bool:   # True: the caller holds the claim and must train
        return self.claim is not None

    def done(self, path: str | Path) -> None:
        """Record where the unit's checkpoint is, for waiters whose store does not read that folder."""
        marker = self.lock.with_suffix(".done")
        tmp = marker.with_name(marker.name + f".{uuid.uuid4().hex[:8]}")
        tmp.write_text(str(Path(path).resolve()))
        os.replace(tmp, marker)


def done_path(claims_dir: str | Path, dataset: str, key: str) -> Path | None:
    """Where the last holder of `dataset/key` wrote its checkpoint, if that file still exists."""
    marker = Path(claims_dir) / dataset / f"{key}.done"
    try:
        p = Path(marker.read_text().strip())
    except FileNotFoundError:
        return None
    return p if p.is_file() else None


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ----------------------------------------------------------------------------- local worker processes

_PR_SET_PDEATHSIG = 1   # linux/prctl.h
_WATCHED = False


def die_with_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """End this process (a local worker) when process `parent_pid`, the one that started it, dies: at once on
    Linux (prctl PR_SET_PDEATHSIG: the kernel sends SIGKILL), and everywhere by a daemon thread that polls
    os.getppid() and kills this process once it is no longer `parent_pid` (the fallback elsewhere, and for a
    parent that died before this ran). Idempotent. Without it a killed notebook kernel's loky workers train on for
    minutes (they notice the parent only after their task).

    PR_SET_PDEATHSIG fires when the *thread* that spawned this process ends. loky spawns its workers from the thread
    that submits work (a notebook's main thread here) and from its executor's manager thread, which outlive them;
    a pool used from a short-lived thread loses its idle workers when that thread ends, and joblib starts fresh
    ones at the next call (measured: no error, only the start-up)."""
    global _WATCHED
    if _WATCHED:
        return
    _WATCHED = True
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):   # no libc prctl: the thread below still watches
            pass

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def local_pool(workers: int, **kw):
    """joblib's Parallel over `workers` loky processes (reused across calls, as joblib does) that each end with
    this process (`die_with_parent`). Call it as `local_pool(n)(delayed(f)(x) for x in xs)`; `kw` go to Parallel
    (e.g. return_as="generator_unordered")."""
    from joblib import Parallel, parallel_config
    with parallel_config(backend="loky", initializer=die_with_parent, initargs=(os.getpid(),)):
        return Parallel(n_jobs=workers, verbose=0, **kw)


def _run_single_threaded(fn, desc: str, *args) -> str:
    """A local worker's job (run_jobs): one torch thread, so that n workers on n cores do not compete and a unit's
    bits do not depend on how many workers there are. Returns `desc` for the progress bar."""
    import torch
    torch.set_num_threads(1)
    fn(*args)
    return desc


# ----------------------------------------------------------------------------- running jobs

@dataclass
class Job:
    """One unit to make: `fn(*args)` writes the unit's checkpoint (and claims it itself); `desc` names it."""
    fn: object
    args: tuple
    desc: str


def _run_in_worker(root: str, threads: int, fn, *args):
    """The body of a Ray task: work from the repository root (relative paths in params resolve as locally), train
    with `threads` torch threads, run the job."""
    import torch
    if not os.path.isfile(os.path.join(root, "params.yaml")):
        raise FileNotFoundError(f"Ray worker on {socket.gethostname()}: the repository {root} is not visible here. "
                                "execution.executor `ray` needs the repository on a filesystem every node mounts at the "
                                "same path (README: Running on a Ray cluster)")
    os.chdir(root)
    torch.set_num_threads(max(1, int(threads)))
    fn(*args)


def ray_init(settings: Settings):
    """Connect to the cluster at `ray_address` (null: start one here) once per process."""
    import ray
    if not ray.is_initialized():
        ray.init(address=settings.ray_address, include_dashboard=False, log_to_driver=False)   # workers log to /tmp/ray
    return ray


def run_jobs(jobs: list[Job], settings: Settings, *, desc: str = "units", workers: int | None = None) -> int:
    """Run `jobs` and wait for all with a progress bar: as Ray tasks (settings.executor `ray`), or locally in
    `workers` single-threaded processes (None = settings.workers; 1 = here, one after the other, on this process's
    threads). Returns how many ran. A failed Ray task raises here, naming the unit, after the others finished
    (their checkpoints are kept); a failed local job raises at once (finished checkpoints are kept too)."""
    from .progress import tqdm
    if not jobs:
        return 0
    if not settings.ray:
        n = settings.workers if workers is None else int(workers)
        if n <= 1:
            for j in tqdm(jobs, desc=desc):
                j.fn(*j.args)
            return len(jobs)
        from joblib import delayed
        with tqdm(total=len(jobs), desc=f"{desc} ({n} workers)") as bar:
            for d in local_pool(n, return_as="generator_unordered")(
                    delayed(_run_single_threaded)(j.fn, j.desc, *j.args) for j in jobs):
                bar.update(1)
                bar.set_postfix_str(d[:60])
        return len(jobs)
    ray = ray_init(settings)
    task = ray.remote(_run_in_worker).options(num_cpus=settings.ray_cpus_per_unit,
                                              num_gpus=settings.ray_gpus_per_unit,
                                              max_retries=settings.ray_max_retries, retry_exceptions=False)
    root = os.getcwd()
    shared: dict[int, object] = {}   # an argument object several jobs share (a dataset, a store spec) is put once

    def ref(a):
        if isinstance(a, (str, int, float, bool, type(None))):
            return a
        if id(a) not in shared:
            shared[id(a)] = ray.put(a)
        return shared[id(a)]

    pending = {task.remote(root, settings.ray_cpus_per_unit, j.fn, *[ref(a) for a in j.args]): j for j in jobs}
    failed = []
    with tqdm(total=len(jobs), desc=f"{desc} on Ray") as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                ray.get(ready[0])
            except Exception as e:   # noqa: BLE001 - reported below with the unit's name
                failed.append((job.desc, e))
            bar.update(1)
            bar.set_postfix_str(job.desc[:60])
    if failed:
        names = "; ".join(d for d, _ in failed[:5])
        raise RuntimeError(f"{len(failed)} of {len(jobs)} units failed on Ray ({names}): first error: "
                           f"{failed[0][1]}") from failed[0][1]
    return len(jobs)
