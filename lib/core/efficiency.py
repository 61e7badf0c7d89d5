"""Efficiency of a training run: wall time, peak CPU memory (RSS), GPU memory and power, spike counts.

    RSS      resident set size of this process, sampled by a background thread every `interval` s
             (psutil); `rss_peak_mb` = the highest sample, `rss_increase_mb` = peak − the sample taken
             just before the run. Before the baseline sample, freed heap memory is handed back to the
             OS (glibc malloc_trim), so memory freed by an earlier run in the same process is not
             silently reused and hidden from the next run's increase.
    GPU      only when a CUDA device is in use *and* pynvml is installed: peak allocated memory
             (torch.cuda.max_memory_allocated) and the mean of NVML power samples taken by the same
             thread. Otherwise both are recorded as "n/a" — never estimated.
    step     one training step at the training batch size, measured alone (`train_step`): the memory of
             training itself, without the evaluation passes (batch 512) that set a whole run's peak.
    spikes   spikes per sample emitted by each LIF layer (Net.record_spikes), plus the input spikes
             the encoder emits per sample (none for direct input, which feeds currents): a proxy
             for synaptic operations, since each spike drives one row of the next layer's weights.
"""
from __future__ import annotations

import ctypes
import threading
import time

import numpy as np
import psutil
import torch

NA = "n/a"


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to hand back
        pass


def _nvml_handle(dev: torch.device):
    """An NVML handle for `dev`, or None when there is no GPU or no pynvml."""
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    try:
        import pynvml
        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(dev.index or 0)
    except Exception:  # pynvml missing or NVML unusable
        return None


class Meter:
    """Context manager measuring one run: `with Meter(dev) as m: ...; m.result()`.

    A daemon thread samples RSS (and GPU power when available) every `interval` seconds."""

    def __init__(self, dev: torch.device | str = "cpu", interval: float = 0.01):
        self.dev = torch.device(dev)
        self.interval = float(interval)
        self.proc = psutil.Process()
        self.samples: list[int] = []
        self.power: list[float] = []
        self._stop = threading.Event()

    def _sample(self) -> None:
        self.samples.append(self.proc.memory_info().rss)
        if self._nvml is not None:
            import pynvml
            try:
                self.power.append(pynvml.nvmlDeviceGetPowerUsage(self._nvml) / 1000.0)  # mW -> W
            except Exception:
                pass

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        _malloc_trim()
        self._nvml = _nvml_handle(self.dev)
        if self._nvml is not None:
            torch.cuda.reset_peak_memory_stats(self.dev)
        self.baseline = self.proc.memory_info().rss
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self._sample()
        return False

    def result(self) -> dict:
        mb = 1024 ** 2
        gpu = self._nvml is not None
        return {"wall_seconds": self.seconds, "rss_baseline_mb": self.baseline / mb,
                "rss_peak_mb": max(self.samples) / mb, "rss_increase_mb": (max(self.samples) - self.baseline) / mb,
                "rss_samples": len(self.samples),
                "gpu_peak_mem_mb": torch.cuda.max_memory_allocated(self.dev) / mb if gpu else NA,
                "gpu_mean_power_w": (sum(self.power) / len(self.power) if self.power else NA) if gpu else NA,
                "memory_method": f"psutil RSS sampled every {self.interval:g} s in a thread of the training process "
                                 "(malloc_trim before the baseline)"}


def gpu_status(dev: torch.device | str = "cpu") -> dict:
    """What GPU measurement is possible here: {"gpu": name or n/a, "nvml": True/False}."""
    dev = torch.device(dev)
    h = _nvml_handle(dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" and torch.cuda.is_available() else NA
    return {"gpu": name, "nvml": h is not None}


@torch.no_grad()
def spike_counts(model, x: torch.Tensor, *, seed: int = 0, batch_size: int = 256) -> dict:
    """Mean spikes per sample: {"input": encoder spikes (nan for direct), "lif1": ..., "lifL": ...}.

    Uses the model's own bookkeeping (Net.record_spikes) with a generator seeded by `seed`; the input
    spikes are counted from an encoder draw of the same generator state, so they are the spikes the
    first layer received."""
    if model.kind != "snn":
        raise ValueError("spike counts exist for SNNs only")
    model.eval()
    dev = next(model.parameters()).device
    T = model.snn.steps
    gen = torch.Generator().manual_seed(seed)
    per_layer, n_in_spikes, n = None, 0.0, 0
    model.record_spikes = True
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(dev)
            state = gen.get_state()
            if not model.encoder.static:
                n_in_spikes += float(model.encoder(xb, T, gen).sum())
                gen.set_state(state)       # the network sees exactly the spikes just counted
            model.trace(xb, gen)
            counts = [c * len(xb) for c in model.spike_counts]
            per_layer = counts if per_layer is None else [a + b for a, b in zip(per_layer, counts)]
            n += len(xb)
    finally:
        model.record_spikes = False
    out = {"input": float("nan") if model.encoder.static else n_in_spikes / n}
    out.update({f"lif{k + 1}": c / n for k, c in enumerate(per_layer)})
    return out


def allocated_peak(model, fn) -> dict:
    """Peak bytes of live tensors during fn() (a forward + backward), counted by torch's own MemTracker
    (torch.distributed._tools.mem_tracker: a TorchDispatchMode that sees every allocation and free of a tensor
    storage, on CPU as on CUDA). Unlike the process's resident memory it does not depend on the allocator's
    state or on other threads: the same step gives the same bytes on every call. Returns MB in total and for
    the tensors saved for backward (activations) and temporaries."""
    from torch.distributed._tools.mem_tracker import MemTracker   # private module of torch; pinned torch version
    mt = MemTracker()
    mt.track_external(model)
    with mt:
        fn()
    snap = mt.get_tracker_snapshot("peak")
    dev = next(model.parameters()).device
    per = next((v for k, v in snap.items() if torch.device(k).type == dev.type), {})
    by = {str(getattr(k, "value", k)): v for k, v in per.items()}
    mb = 2.0 ** 20
    return {"total_mb": by.get("Total", 0) / mb, "activation_mb": by.get("Activation", 0) / mb,
            "temp_mb": by.get("Temp", 0) / mb}


# How step_alloc_mb is measured (written into every efficiency row).
ALLOC_METHOD = ("peak bytes of live tensors in one forward + backward (torch MemTracker, "
                "torch.distributed._tools.mem_tracker): repeatable, unlike RSS")


def row(meas: dict, device=None) -> dict:
    """One model's measurements (a Meter's result around its training, train_step's and spike_counts' under
    "spikes") as table columns: whole-run time and RSS (nan when the model was not trained in a Meter), the training
    step's, GPU memory and power ("n/a" unless measured), the device, then spikes per sample per layer and in total."""
    nan = float("nan")
    out = {k: meas.get(k, nan) for k in ("wall_seconds", "rss_peak_mb", "rss_increase_mb")}
    out.update({k: meas[k] for k in ("step_rss_increase_mb", "step_seconds", "step_alloc_mb", "step_activation_mb",
                                     "step_batch")})
    out.update(step_alloc_method=ALLOC_METHOD, gpu_peak_mem_mb=meas.get("gpu_peak_mem_mb", NA),
               gpu_mean_power_w=meas.get("gpu_mean_power_w", NA), device=device)
    out.update({f"spikes_{k}": v for k, v in meas["spikes"].items()})
    out["spikes_total"] = float(np.nansum(list(meas["spikes"].values())))
    return out


def train_step(model, x: torch.Tensor, y: torch.Tensor, *, seed: int = 0, repeats: int = 2,
               interval: float = 0.005) -> dict:
    """Memory and time of one training step (forward + cross-entropy + backward, no optimizer) at the batch
    (x, y): wall time and RSS increase from a Meter around the last of `repeats` steps (the first ones pay
    one-time allocations), and `step_alloc_mb`, the peak bytes of live tensors of one more identical step
    (allocated_peak) — the repeatable measure memory verdicts use. Unlike a whole run, this excludes the
    evaluation passes, whose larger batches set a run's peak."""
    import torch.nn.functional as F
    dev = next(model.parameters()).device
    model.train()
    x, y = x.to(dev), y.to(dev)

    def step():
        gen = torch.Generator().manual_seed(seed)
        out = model(x, gen) if model.kind == "snn" else model(x)
        F.cross_entropy(out, y).backward()
        del out

    for i in range(repeats):
        model.zero_grad(set_to_none=True)
        with Meter(dev, interval) as m:
            step()
    model.zero_grad(set_to_none=True)
    alloc = allocated_peak(model, step)
    model.zero_grad(set_to_none=True)
    model.eval()
    r = m.result()
    return {"step_seconds": r["wall_seconds"], "step_rss_increase_mb": r["rss_increase_mb"], "step_batch": len(x),
            "step_alloc_mb": alloc["total_mb"], "step_activation_mb": alloc["activation_mb"],
            "step_temp_mb": alloc["temp_mb"]}


__all__ = ["ALLOC_METHOD", "Meter", "allocated_peak", "gpu_status", "row", "spike_counts", "train_step", "NA"]
