"""Where units train (lib.core.executor): claims keep a unit from being trained twice, a dead holder's claim is taken
over, half-written files are never read, the local executor needs no Ray, and a local Ray cluster trains a smoke grid
to the same bits as the local executor, retrying a unit whose worker was killed."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lib.core import config, executor as EX
from lib.stages import base as pipeline
from lib.core.train import ModelStore, unit_key

from conftest import make_store as _store

ROOT = Path(__file__).resolve().parents[1]


def _smoke():
    return config.load(ROOT / "params.yaml", "smoke")


def _same(a: dict, b: dict) -> bool:
    """Bit-identical weights and attack material (outputs and losses on every pool)."""
    return (all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
            and all((a["pools"][p][f] == b["pools"][p][f]).all() for p in a["pools"] for f in ("outputs", "loss")))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------- claims

def test_a_claim_is_exclusive_until_released(tmp_path):
    a, b = EX.Claim(tmp_path / "u.lock"), EX.Claim(tmp_path / "u.lock")
    assert a.try_acquire() and not b.try_acquire()
    assert not b.stale() and not b.break_stale()          # its holder (this process) is alive and beating
    a.release()
    assert not (tmp_path / "u.lock").exists() and b.try_acquire()
    b.release()


def test_a_dead_holders_claim_is_taken_over(tmp_path):
    lock = tmp_path / "u.lock"
    # on this host, a pid that no longer runs: stale at once
    lock.write_text(json.dumps({"host": EX.socket.gethostname(), "pid": _dead_pid(), "token": "x"}))
    c = EX.Claim(lock, stale_seconds=3600)
    assert c.stale() and c.break_stale() and c.try_acquire()
    c.release()
    # on another host: stale only once its heartbeat is older than stale_seconds
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "y"}))
    assert not EX.Claim(lock, stale_seconds=60).stale()
    old = time.time() - 120
    os.utime(lock, (old, old))
    assert EX.Claim(lock, stale_seconds=60).stale()
    # a live holder's heartbeat keeps its claim fresh
    lock.unlink()
    holder = EX.Claim(lock, stale_seconds=0.4)
    assert holder.try_acquire()
    os.utime(lock, (old, old))
    time.sleep(0.3)
    assert time.time() - lock.stat().st_mtime < 0.4
    holder.release()


def test_two_stages_asking_for_one_unit_train_it_once(tmp_path):
    """Two stores writing to different folders (two stages), sharing the claims folder, ask for the same unit at
    the same time: one trains it, the other waits and copies the holder's checkpoint into its own folder."""
    params = _smoke()
    first = _store(tmp_path, params)
    second = ModelStore(tmp_path / "stage2", data_loader=first.data_loader, splits_dir=tmp_path / "splits",
                        progress=False, claims_dir=first.claims_dir)
    unit = config.unit(params, "iris", "snn", "target", 0, epochs=40)
    recs = {}
    threads = [threading.Thread(target=lambda s=s, n=n: recs.__setitem__(n, s.get_or_train(unit)))
               for n, s in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first.trained + second.trained == 1
    assert first.find(unit) != second.find(unit) and second.find(unit).parent.parent == tmp_path / "stage2"
    assert _same(recs["a"], recs["b"]) and recs["a"]["train_seconds"] == recs["b"]["train_seconds"]  # one training
    assert not list(first.claims_dir.rglob("*.lock"))


def test_a_finished_units_copy_is_taken_only_after_waiting_for_it(tmp_path):
    """What a stage reads never depends on which stages ran before it: a unit another stage trained in an earlier
    run (no live claim) is trained by this stage itself, not copied from that stage's folder."""
    params = _smoke()
    first = _store(tmp_path, params)
    unit = config.unit(params, "iris", "ann", "target", 0)
    first.get_or_train(unit)
    assert EX.done_path(first.claims_dir, "iris", unit_key(unit)) == first.path(unit).resolve()
    later = ModelStore(tmp_path / "later", data_loader=first.data_loader, splits_dir=tmp_path / "splits",
                       progress=False, claims_dir=first.claims_dir)
    later.get_or_train(unit)
    assert later.trained == 1


def test_a_half_written_checkpoint_is_never_read(tmp_path):
    """A killed run leaves <key>.pt.tmp and its claim: the next run ignores the half file, takes the claim over and
    trains the unit to the same bits as a clean run."""
    params = _smoke()
    store = _store(tmp_path, params)
    unit = config.unit(params, "iris", "ann", "target", 0)
    path = store.path(unit)
    path.parent.mkdir(parents=True)
    path.with_name(path.name + ".tmp").write_bytes(b"PK\x03\x04 half a zip")
    lock = store.claims_dir / "iris" / f"{unit_key(unit)}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": EX.socket.gethostname(), "pid": _dead_pid(), "token": "killed"}))
    assert store.find(unit) is None and store.get(unit) is None
    rec = store.get_or_train(unit)
    clean = ModelStore(tmp_path / "clean", data_loader=store.data_loader, splits_dir=tmp_path / "splits",
                       progress=False).get_or_train(unit)
    assert store.trained == 1 and _same(rec, clean)
    assert not lock.exists() and not list(path.parent.glob("*.tmp"))


# ----------------------------------------------------------------------------- settings

def test_executor_settings_come_from_params_and_bad_values_are_named():
    params = _smoke()
    s = EX.Settings.from_params(params)
    assert s.executor == "local" and not s.ray and s.ray_address is None
    assert s.workers == params["execution"]["workers"] and set(params["execution"]) == set(EX.EXECUTION_KEYS)
    assert EX.Settings.from_params({"train": {}}) == EX.Settings()   # no `execution` section: this process, 1 worker
    for key, bad in (("executor", "slurm"), ("workers", 0), ("ray_cpus_per_unit", 0), ("ray_gpus_per_unit", -1),
                     ("ray_address", ""), ("ray_max_retries", -1), ("claim_stale_seconds", 0), ("colour", 1)):
        p = _smoke()
        p["execution"][key] = bad
        with pytest.raises(config.ConfigError, match=f"`execution.{key}`"):
            config.validate(p)


def test_where_units_run_is_not_part_of_training():
    """The execution keys live in `execution`, not in `train` (so a stage depends on `train` whole, and switching
    the executor reruns nothing): an old params.yaml that still sets one in `train` is told where it moved, and no
    unit carries one."""
    params = _smoke()
    assert not set(params["train"]) & set(EX.EXECUTION_KEYS)
    p = _smoke()
    p["train"]["executor"] = "ray"
    with pytest.raises(config.ConfigError, match="`train.executor` moved to `execution.executor`"):
        config.validate(p)
    p = _smoke()
    p["execution"].update(executor="ray", workers=7, claim_stale_seconds=5)
    for kind in ("ann", "snn"):
        u = config.unit(params, "iris", kind, "target", 0)
        assert not set(u) & set(EX.EXECUTION_KEYS) and u == config.unit(p, "iris", kind, "target", 0)


def test_local_executor_runs_without_ray_importable(tmp_path):
    """With `import ray` made impossible, the notebooks' modules import and the local executor trains a unit."""
    code = f"""
import sys
sys.modules["ray"] = None          # any `import ray` now raises ImportError
sys.path.insert(0, {str(ROOT / 'tests')!r})
from pathlib import Path
import lib, lib.stages.base, lib.stages.membership, lib.stages.ladder, lib.stages.ptq_privacy
import lib.stages.grad_obf, lib.stages.temporal
from lib.core import config, executor as EX
from lib.stages import base as pipeline
from conftest import make_store as _store
params = config.load({str(ROOT / 'params.yaml')!r}, "smoke")
EX.configure(params)
store = _store(Path({str(tmp_path)!r}), params)
units = [config.unit(params, "iris", k, "target", 0) for k in ("ann", "snn")]
recs = pipeline.train_all(store, units)
assert store.trained == 2 and store.train_missing(units) == 0
assert "ray" not in sys.modules or sys.modules["ray"] is None
try:                                # asking for Ray here fails at once, naming the setting
    EX.configure(EX.Settings(executor="ray"))
    raise SystemExit("configure(ray) did not fail")
except ImportError as e:
    assert "execution.executor" in str(e), e
print("ok", EX.active().executor)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok local")


# ----------------------------------------------------------------------------- local workers die with their parent

def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a killed orphan may wait to be reaped by an init that never does)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _kill_parent_and_watch(parent_code: str, pid_dir: Path, n: int) -> list[int]:
    """Run `parent_code` in a python process, wait for `n` processes to write their pid into `pid_dir`, kill the
    parent with SIGKILL and return the pids still running 5 s later (any left are killed then)."""
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=ROOT)
    pids = []
    try:
        t0 = time.time()
        while len(pids) < n and time.time() - t0 < 120 and parent.poll() is None:
            time.sleep(0.1)
            pids = sorted(int(f.name) for f in pid_dir.iterdir())
        assert len(pids) == n, f"{len(pids)} of {n} processes started (parent exit code {parent.poll()})"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        t0 = time.time()
        while any(_running(p) for p in pids) and time.time() - t0 < 5:
            time.sleep(0.05)
        return [p for p in pids if _running(p)]
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in pids:
            if _running(p):
                os.kill(p, signal.SIGKILL)


def test_local_workers_train_a_grid_to_the_single_threaded_bits(tmp_path):
    """train_missing with workers > 1 (the path of membership.train_parallel): each unit trained once, in the pool,
    to the bits one thread gives in this process."""
    params = _smoke()
    store = _store(tmp_path / "pool", params)
    units = [config.unit(params, "iris", k, "target", 0) for k in ("ann", "snn")]
    assert store.train_missing(units, settings=EX.Settings(), workers=2) == 2
    assert store.trained == 0 and store.missing(units) == []          # trained in the workers, not here
    here = _store(tmp_path / "here", params)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert all(_same(store.get(u), here.get_or_train(u)) for u in units)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_local_workers_die_with_their_killed_parent(tmp_path):
    """The pool ModelStore.train_missing trains in (02-04, 08: execution.workers): when its parent (a notebook
    kernel) is killed with SIGKILL, every worker ends within seconds instead of finishing its unit."""
    code = f"""
import os, time
from joblib import delayed
from lib.core import executor as EX

def task(d, parent):
    assert os.getppid() == parent        # a worker of this pool, not some other process
    open(os.path.join(d, str(os.getpid())), "w").close()
    time.sleep(60)

EX.local_pool(2)(delayed(task)({str(tmp_path)!r}, os.getpid()) for _ in range(2))
"""
    assert _kill_parent_and_watch(code, tmp_path, 2) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_the_watchdog_alone_ends_an_orphan(tmp_path):
    """Where prctl is not available (not Linux), die_with_parent's thread ends the process once its parent is gone."""
    child = f"""
import os, sys, time
from lib.core import executor as EX
EX.sys = type("NotLinux", (), {{"platform": "darwin"}})
EX.die_with_parent(os.getppid(), poll_seconds=0.1)
open(os.path.join({str(tmp_path)!r}, str(os.getpid())), "w").close()
time.sleep(60)
"""
    code = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {child!r}])\ntime.sleep(60)\n"
    assert _kill_parent_and_watch(code, tmp_path, 1) == []


# ----------------------------------------------------------------------------- a local Ray cluster

@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


RAY = EX.Settings(executor="ray", ray_cpus_per_unit=1, ray_max_retries=2, claim_stale_seconds=60)


def _grid(params):
    """A smoke grid across both families and kinds: Iris ANN/SNN target and shadow, MNIST ANN/SNN target."""
    return ([config.unit(params, "iris", k, r, 0) for k in ("ann", "snn") for r in ("target", "shadow")]
            + [config.unit(params, "mnist", k, "target", 0) for k in ("ann", "snn")])


def test_ray_trains_a_smoke_grid_to_the_local_executors_bits(tmp_path, ray_cluster):
    params = _smoke()
    local = _store(tmp_path / "local", params, datasets=("iris", "mnist"))
    threads = torch.get_num_threads()
    torch.set_num_threads(RAY.ray_cpus_per_unit)   # a Ray task trains with ray_cpus_per_unit threads
    try:
        want = [local.get_or_train(u) for u in _grid(params)]
    finally:
        torch.set_num_threads(threads)
    remote = _store(tmp_path / "ray", params, datasets=("iris", "mnist"))
    assert remote.train_missing(_grid(params), RAY) == len(want)
    assert remote.trained == 0                      # all of them trained by Ray workers, none in this process
    got = [remote.get(u) for u in _grid(params)]
    assert all(_same(a, b) for a, b in zip(want, got))
    assert {g["unit"]["dataset"] for g in got} == {"iris", "mnist"}
    assert remote.train_missing(_grid(params), RAY) == 0   # nothing is submitted twice
    assert not list(remote.claims_dir.rglob("*.lock"))


def test_ray_retries_a_killed_workers_unit_and_reads_no_half_file(tmp_path, ray_cluster):
    params = _smoke()
    store = _store(tmp_path, params, datasets=("mnist",))
    unit = config.unit(params, "mnist", "snn", "target", 0, epochs=12)   # long enough to be killed mid-training
    lock = store.claims_dir / "mnist" / f"{unit_key(unit)}.lock"
    done = {}
    runner = threading.Thread(target=lambda: done.setdefault("n", store.train_missing([unit], RAY)))
    runner.start()
    t0 = time.time()
    while not lock.is_file() or EX.Claim(lock).holder() is None:
        assert time.time() - t0 < 120 and runner.is_alive(), "no worker claimed the unit"
        time.sleep(0.05)
    victim = EX.Claim(lock).holder()["pid"]
    assert victim != os.getpid() and store.find(unit) is None
    os.kill(victim, signal.SIGKILL)                  # the worker dies mid-training, holding the claim
    runner.join(timeout=600)
    assert done.get("n") == 1                        # Ray reran the task; it took the dead worker's claim over
    rec = store.get(unit)
    assert rec is not None and not lock.exists() and not list(store.path(unit).parent.glob("*.tmp"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clean = ModelStore(tmp_path / "clean", data_loader=store.data_loader, splits_dir=tmp_path / "splits",
                           progress=False).get_or_train(unit)
    finally:
        torch.set_num_threads(threads)
    assert _same(rec, clean)


def test_two_ray_tasks_for_one_unit_train_it_once(tmp_path, ray_cluster):
    """Two stages' stores submit the same unit as Ray tasks; the second arrives while the first trains it: it waits,
    then copies the first one's checkpoint into its own folder instead of training."""
    params = _smoke()
    a = _store(tmp_path, params, datasets=("mnist",))
    b = ModelStore(tmp_path / "stage2", data_loader=a.data_loader, splits_dir=tmp_path / "splits", progress=False,
                   claims_dir=a.claims_dir)
    from lib.core.train import train_unit_job
    unit = config.unit(params, "mnist", "snn", "target", 0, epochs=24)   # ~12 s: the second task starts meanwhile
    lock = a.claims_dir / "mnist" / f"{unit_key(unit)}.lock"
    first = threading.Thread(target=EX.run_jobs, args=([EX.Job(train_unit_job, (a.spec(), unit), "stage 1")], RAY))
    first.start()
    t0 = time.time()
    while EX.Claim(lock).holder() is None:           # the first task holds the claim and is training
        assert time.time() - t0 < 120 and first.is_alive(), "the first task never claimed the unit"
        time.sleep(0.05)
    assert EX.run_jobs([EX.Job(train_unit_job, (b.spec(), unit), "stage 2")], RAY) == 1
    first.join()
    ra, rb = a.get(unit), b.get(unit)
    assert b.path(unit).is_file() and _same(ra, rb)
    assert ra["train_seconds"] == rb["train_seconds"]   # one training: the second is its copy


def test_paper_c_and_d_units_run_as_ray_tasks(tmp_path, ray_cluster):
    """Notebook 06's ResNets and 07's nets go through the executor too, to the local bits."""
    import copy

    from lib.stages import grad_obf as G, ptq_privacy as PP
    from conftest import GRAD_OBF_SEC as SEC_D, PTQ_PRIVACY_SEC as SEC_C, grad_obf_data as data_d
    from conftest import ptq_privacy_data as data_c
    prev = EX.configure(RAY)
    try:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            loc_c = PP.Study.open(copy.deepcopy(SEC_C), data_c(), tmp_path / "c_local", device="cpu")
            EX.configure(EX.Settings())
            assert loc_c.train() == SEC_C["models"]
            loc_d = G.Study.open(copy.deepcopy(SEC_D), data_d(), tmp_path / "d_local", device="cpu").train()
        finally:
            torch.set_num_threads(threads)
        EX.configure(RAY)
        ray_c = PP.Study.open(copy.deepcopy(SEC_C), data_c(), tmp_path / "c_ray", device="cpu")
        assert ray_c.train() == SEC_C["models"]
        for x, y in zip(loc_c.recs, ray_c.recs):
            assert all(torch.equal(x["state_dict"][k], y["state_dict"][k]) for k in x["state_dict"])
        ray_d = G.Study.open(copy.deepcopy(SEC_D), data_d(), tmp_path / "d_ray", device="cpu").train()
        assert ray_d.trained_now.all() and (ray_d.test_acc.values == loc_d.test_acc.values).all()
        assert (ray_d.final_loss.values == loc_d.final_loss.values).all()
    finally:
        EX.configure(prev)


def test_local_workers_train_init_from_units_after_their_source_and_measure_05_models_inside(tmp_path):
    """train_missing's local waves (a unit initialized from another missing unit waits for it) and stage 05's
    worker job (temporal.runner_job): each model trained in a worker, to the bits one thread gives here, its
    efficiency file and output-membrane traces written by the worker that trained it."""
    from functools import partial

    import numpy as np

    from lib.core.train import unit_key
    from lib.stages import temporal as TD
    params = _smoke()
    src = config.unit(params, "iris", "snn", "target", 0, encoding="poisson_burst", epochs=2)
    ft = config.unit(params, "iris", "snn", "target", 0, encoding="poisson_burst", epochs=2,
                     init_from={"dataset": "iris", "key": unit_key(src)}, frozen=[0])
    store = _store(tmp_path / "pool", params)
    cache = tmp_path / "pool" / "ckpt"
    job = partial(TD.runner_job, str(cache), 16, 0.01)
    assert store.train_missing([ft, src], settings=EX.Settings(), workers=2, job=job) == 2
    assert store.trained == 0 and store.missing([src, ft]) == []
    here = _store(tmp_path / "here", params)
    runner = TD.Runner(here, tmp_path / "here" / "ckpt", spike_samples=16)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for u in (src, ft):
            a, b = store.get(u), runner.get(u)
            assert _same(a, b), u.get("init_from")
            meas = json.loads((cache / "efficiency" / f"{a['key']}.json").read_text())
            assert meas["wall_seconds"] > 0 and meas["rss_samples"] >= 2
            with np.load(cache / "traces" / f"{a['key']}.npz") as f, \
                    np.load(tmp_path / "here" / "ckpt" / "traces" / f"{a['key']}.npz") as g:
                assert np.array_equal(f["in"], g["in"]) and np.array_equal(f["out"], g["out"])
    finally:
        torch.set_num_threads(threads)


def test_local_workers_train_paper_c_and_d_nets_and_ptq_copies_to_the_single_threaded_bits(tmp_path):
    """Notebook 06's ResNets and quantized copies and 07's nets in execution.workers = 2 local processes: the same
    bits as one thread in this process."""
    import copy

    import numpy as np

    from lib.stages import grad_obf as G, ptq_privacy as PP
    from conftest import GRAD_OBF_SEC as SEC_D, PTQ_PRIVACY_SEC as SEC_C, grad_obf_data as data_d
    from conftest import ptq_privacy_data as data_c
    threads = torch.get_num_threads()
    prev = EX.configure(EX.Settings())
    torch.set_num_threads(1)
    try:
        loc_c = PP.Study.open(copy.deepcopy(SEC_C), data_c(), tmp_path / "c_here", device="cpu")
        assert loc_c.train() == SEC_C["models"]
        jobs = [j for j in PP.ptq_jobs(loc_c.sec) if j["method"] in ("rtn", "gptq")][:4]
        q_here = loc_c.quantized(jobs)
        loc_d = G.Study.open(copy.deepcopy(SEC_D), data_d(), tmp_path / "d_here", device="cpu").train()
    finally:
        torch.set_num_threads(threads)
    EX.configure(EX.Settings(workers=2))
    try:
        par_c = PP.Study.open(copy.deepcopy(SEC_C), data_c(), tmp_path / "c_pool", device="cpu")
        assert par_c.train() == SEC_C["models"]
        for x, y in zip(loc_c.recs, par_c.recs):
            assert all(torch.equal(x["state_dict"][k], y["state_dict"][k]) for k in x["state_dict"])
        assert len(list((tmp_path / "c_pool").rglob("ptq-*.npz"))) == 0
        q_pool = par_c.quantized(jobs)
        assert len(list((tmp_path / "c_pool").rglob("ptq-*.npz"))) == len(jobs)
        for a, b in zip(q_here, q_pool):
            assert np.array_equal(a["pool"], b["pool"]) and np.array_equal(a["test"], b["test"]), a["method"]
        par_d = G.Study.open(copy.deepcopy(SEC_D), data_d(), tmp_path / "d_pool", device="cpu").train()
        assert par_d.trained_now.all() and (par_d.test_acc.values == loc_d.test_acc.values).all()
        assert (par_d.final_loss.values == loc_d.final_loss.values).all()
    finally:
        EX.configure(prev)
