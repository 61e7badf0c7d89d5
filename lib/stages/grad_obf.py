"""Paper D's study (notebook 07): train SEW-ResNet / Spiking-ResNet / ANN twins, attack them as the authors do,
probe their gradient sparsity, and check the robustness for gradient masking (Athalye et al. 2018).

The stage's section of params.yaml is `Params` (lib.stages.grad_obf_params). Everything is a cache
unit under `<checkpoints_dir>/<dataset>/`: one `<key>.pt` per trained net (key = what determines its weights: kind,
arch, pool, width, blocks, stem, T, K, recipe, data, seed; not its display name) and one `<key>/<attack key>.npz` per
attack run (per-example correctness), written atomically, so an interrupted run loses at most the unit it was in.
The tables the notebook shows and the claims read are built in lib.stages.grad_obf_tables.

Attack spaces. SNNs are attacked as the authors do, on the encoded spike tensor [T, B, C, H, W] (`space="spikes"`),
except the BPDA check (`space="image"`: the raw image through the phase encoder with a straight-through backward,
lib.core.sew.BPDAClassifier) and the transfer check (examples crafted on the ANN twin's image, scored through the
encoder). The ANN twin has no encoder: it is always attacked on the image. On event data (CIFAR10-DVS) there is no
encoder: the SNNs take binary event frames, the ANN their mean, every attack perturbs the frames (`space="spikes"`)
and the BPDA check does not apply. Perturbations are L∞ in the space
attacked, ε in units of 1/255 (`eps_255`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core import sew as S
from ..core import train as TR
from ..core import executor as EX
from ..core.train import atomic_save, unit_key
from ..attacks import adversarial as A
from ..attacks import rat as R
from .grad_obf_params import SECTION, Model, Params


# ----------------------------------------------------------------------------- data

@dataclass
class Data:
    """Images in [0, 1] (float, [N, 3, H, W]) or, for event data (`events`), binary event frames [N, T, 2, H, W];
    `attacked` = a prefix of the (seeded, random) test subset."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    n_classes: int
    sha: str
    events: bool = False

    def attacked(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test[:n], self.y_test[:n]


def load_data(data, sec: Params) -> Data:
    """Seeded random subsets (`n_train` of the training set, `n_test` of the test set; null = all) of a
    lib.core.data.Tensors (CIFAR normalised to [-1, 1]), mapped back to pixels in [0, 1] as the authors feed them
    (no normalisation). Random, not the first images: the stored test set is ordered by class.
    Event data (lib.core.paper_data.EventTensors, CIFAR10-DVS: [N, frames, 2, H, W] counts) become binary spike
    frames (a pixel spikes in a frame if it had an event of that polarity): the SNNs take them without an encoder,
    and the authors' attacks then perturb spikes in [0, 1] exactly as on the phase code. `T` must equal the frames."""
    rng = np.random.default_rng(sec.seed)
    n_tr, n_te = len(data.y_train), len(data.y_test)
    for key, n, total in (("n_train", sec.n_train, n_tr), ("n_test", sec.n_test, n_te)):
        if n is not None and n > total:
            raise ValueError(f"{SECTION}.{key} = {n} exceeds the {total} images there are")
    tr = np.sort(rng.permutation(n_tr)[:sec.n_train or n_tr])
    te = rng.permutation(n_te)[:sec.n_test or n_te]

    events = getattr(data, "family", "image") == "event"
    if events and data.x_train.shape[1] != sec.T:
        raise ValueError(f"{SECTION}.T = {sec.T} but the event data have {data.x_train.shape[1]} frames per sample "
                         "(lib.core.paper_data.load_cifar10dvs `frames`): they must agree")

    def pix(x):
        return (x > 0).float() if events else (x * 0.5 + 0.5).clamp(0, 1)

    sha = unit_key([data.source, tr.tolist(), te.tolist()] + (["binary frames"] if events else []))
    return Data(pix(data.x_train[tr]), data.y_train[tr].long(), pix(data.x_test[te]), data.y_test[te].long(),
                data.source, int(data.n_classes), sha, events)


def n_attacked(sec: Params, data: Data) -> int:
    return min(sec.attacked or len(data.y_test), len(data.y_test))


# ----------------------------------------------------------------------------- models

def spec_of(sec: Params, name: str) -> Model:
    for m in sec.models:
        if m.name == name:
            return m
    raise KeyError(f"{SECTION}: no model named {name!r} in `models` ({[m.name for m in sec.models]})")


def groups(sec: Params) -> list[dict]:
    """The nets the claims compare, one dict per architecture (in `models` order) with the name of its first net
    in each role: "sew" (SEW, max pool), "sew_avg" (SEW, avg pool), "spiking" (Spiking-ResNet, max pool), "ann"
    (all undefended), and "sew_rat" (SEW, max pool, `defence: rat`). Other defended nets have no role."""
    out = {}
    for m in sec.models:
        if m.kind == "spiking" and m.pool == "avg":
            continue
        role = {"sew": "sew_avg" if m.pool == "avg" else "sew", "spiking": "spiking", "ann": "ann"}[m.kind]
        if m.defence != "none":
            if role != "sew":
                continue
            role = f"sew_{m.defence}"
        out.setdefault(m.arch, {}).setdefault(role, m.name)
    return list(out.values())


def build(sec: Params, spec: Model, n_classes: int, seed: int, events: bool = False) -> nn.Module:
    """The net of `spec`, initialised from `seed` (torch.manual_seed before building, as the authors): an
    EncodedClassifier (images → phase code → mean logits) for SNNs, the torchvision-style ResNet for the ANN. On
    event data (`events`): 2 input channels, the SNNs a FramesClassifier (frames in, no encoder), the ANN a
    MeanFrameClassifier (the mean frame)."""
    torch.manual_seed(seed)
    kw = dict(num_classes=n_classes, width=sec.width, blocks=_list(sec.blocks), pool=spec.pool, stem=sec.stem)
    if events:
        kw.update(frames=True, in_channels=2)
    if spec.kind == "ann":
        return S.build("ann", spec.arch, **kw)
    return S.build(spec.kind, spec.arch, T=sec.T, K=sec.K, encode=not events, **kw)


def _list(v):
    return None if v is None else list(v)


def unit(sec: Params, spec: Model, data: Data, seed: int) -> dict:
    """What determines a net's weights (its cache key), in params.yaml's form."""
    u = {"section": SECTION, "kind": spec.kind, "arch": spec.arch, "pool": spec.pool, "width": sec.width,
         "blocks": _list(sec.blocks), "stem": sec.stem, "training": asdict(sec.training), "seed": seed,
         "data": data.sha}
    if spec.kind != "ann":
        u.update(T=sec.T, K=sec.K)
    if spec.defence != "none":   # undefended nets keep the keys they had before defences existed
        u.update(defence=spec.defence, rat=asdict(sec.rat))
    return u


def defence(sec: Params, spec: Model) -> R.RAT | None:
    """The training-time defence of `spec` (lib.attacks.rat.RAT from the section's `rat`), None if undefended."""
    return R.RAT(**asdict(sec.rat)) if spec.defence == "rat" else None


@dataclass
class Net:
    """A trained net and how to attack it."""
    name: str
    spec: Model
    seed: int
    model: nn.Module          # images [B, 3, H, W] → logits (eval mode)
    key: str
    seconds: float
    curve: list
    trained_now: bool
    events: bool = False

    @property
    def spiking(self) -> bool:
        return self.spec.kind != "ann"

    @property
    def encoded(self) -> bool:
        """Phase-coded images (the attacked spikes come from an encoder the BPDA check can bypass)."""
        return self.spiking and not self.events

    def on_spikes(self) -> nn.Module:
        """The same weights taking the spike tensor [T, B, C, H, W] (SNNs: the phase code, or the event frames) or
        the image (ANN; on event data the frames, batch first)."""
        return S.SpikingClassifier(self.model.net, self.model.T) if self.spiking else self.model

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spiking:
            return x
        return x.transpose(0, 1) if self.events else S.phase_encode(x, self.model.K, self.model.T)


@dataclass
class Study:
    sec: Params
    data: Data
    root: Path
    device: torch.device
    nets: dict = field(default_factory=dict)     # (name, seed) → Net

    @classmethod
    def open(cls, sec: Params | dict, data, checkpoints_dir, device=None) -> "Study":
        """`sec`: the section (a dict as in params.yaml is read with Params.from_params at scale quick)."""
        if isinstance(sec, dict):
            sec = Params.from_params({SECTION: sec, "scale": "quick"})
        dev = torch.device(device) if device is not None else TR.device("auto")
        d = load_data(data, sec)
        root = Path(checkpoints_dir) / sec.dataset
        root.mkdir(parents=True, exist_ok=True)
        return cls(sec, d, root, dev)

    # ------------------------------------------------------------------ training
    def train(self) -> pd.DataFrame:
        """Train (or load) every (model, seed); one row each with clean train/test accuracy and seconds."""
        rows = []
        nets = [(seed, spec, unit_key(unit(self.sec, spec, self.data, seed)))
                for seed in self.sec.seeds for spec in self.sec.models]
        missing = {key for _, _, key in nets if not (self.root / f"{key}.pt").exists()}
        settings = EX.active()
        if settings.ray or settings.workers > 1:
            # one Ray task, or one job of execution.workers single-threaded local processes, per missing net; then
            # everything is read as below. Defended (adversarially trained) nets first, then the spiking ones: the
            # longest first, so that the workers finish together
            dev = ("cuda" if settings.ray_gpus_per_unit > 0 else "cpu") if settings.ray else self.device
            todo = sorted([(seed, spec) for seed, spec, key in nets if key in missing],
                          key=lambda n: (n[1].defence == "none", n[1].kind == "ann"))
            EX.run_jobs([EX.Job(train_net, (self.sec, spec, self.data, seed, self.root, dev,
                                            settings.claim_stale_seconds), f"{spec.name} seed {seed}")
                         for seed, spec in todo], settings, desc="nets")
        for seed, spec, key in nets:
            path = self.root / f"{key}.pt"
            model = build(self.sec, spec, self.data.n_classes, seed, self.data.events)
            now = key in missing
            if not path.exists():
                train_net(self.sec, spec, self.data, seed, self.root, self.device, settings.claim_stale_seconds)
            rec = TR.CheckpointStore.load(path, map_location="cpu")
            if rec is None:   # a corrupt checkpoint, now moved aside (CheckpointStore.load): trained again here
                now = train_net(self.sec, spec, self.data, seed, self.root, self.device, settings.claim_stale_seconds)
                rec = TR.CheckpointStore.load(path, map_location="cpu")
            model.load_state_dict(rec["state_dict"])
            model.to(self.device).eval()
            net = Net(spec.name, spec, seed, model, key, rec["seconds"], rec["curve"], now, self.data.events)
            self.nets[(spec.name, seed)] = net
            n_tr = min(len(self.data.y_train), len(self.data.y_test))
            rows.append({"model": spec.name, "kind": spec.kind, "arch": spec.arch, "pool": spec.pool,
                         "defence": spec.defence, "seed": seed, "train_acc": self.accuracy(net, self.data.x_train[:n_tr],
                                                                  self.data.y_train[:n_tr]),
                         "test_acc": self.accuracy(net, self.data.x_test, self.data.y_test),
                         "n_train": len(self.data.y_train), "n_test": len(self.data.y_test),
                         "epochs": self.sec.training.epochs, "train_seconds": rec["seconds"], "trained_now": now,
                         "final_loss": rec["curve"][-1]["loss"] if rec["curve"] else float("nan"),
                         "data_source": self.data.source})
        return pd.DataFrame(rows)

    def accuracy(self, net: Net, x: torch.Tensor, y: torch.Tensor) -> float:
        _, ok = A.correct(net.model, x, y, None, self.sec.attack.batch_size * 4)
        return 100.0 * ok.float().mean().item()

    def curves(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": n.name, "seed": n.seed, **c} for n in self.nets.values() for c in n.curve])

    # ------------------------------------------------------------------ attacks
    def run(self, net: Net, spec: dict, n: int) -> np.ndarray:
        """Per-example correctness (bool [n]) of `net` on the first n attacked images under attack `spec`
        (see `attack_fn`); cached per (net, spec, n, data)."""
        full = {**{k: v for k, v in spec.items() if k not in ("label", "check")}, "n": n, "data": self.data.sha,
                "seed": self.sec.seed, "batch_size": self.sec.attack.batch_size}
        if spec.get("source"):
            full["source_key"] = self.nets[(spec["source"], net.seed)].key
        path = self.root / net.key / f"{unit_key(full)}.npz"
        if path.exists():
            return np.load(path)["correct"]
        path.parent.mkdir(exist_ok=True)
        x, y = self.data.attacked(n)
        model, inputs, kw, batch_dim = self._attack_setup(net, spec, x)
        fn = attack_fn(spec)
        _, ok = A.correct(model, inputs, y, fn, self.sec.attack.batch_size, batch_dim=batch_dim,
                          desc=f"{net.name} seed {net.seed}: {label(spec)}", **kw)
        ok = ok.numpy()
        atomic_save({"correct": ok, "spec": json.dumps(full)}, path)
        return ok

    def _attack_setup(self, net: Net, spec: dict, x: torch.Tensor):
        """(model the attack sees and the scorer scores, its inputs, extra attack kwargs, batch_dim)."""
        kind = spec["attack"]
        if kind == "transfer":
            src = self.nets[(spec["source"], net.seed)]
            return net.model, x, {"source": src.on_spikes(), "inner": spec}, 0
        if spec.get("space") == "image" and net.spiking:
            return S.BPDAClassifier(net.model.net, net.model.T, net.model.K), x, {}, 0
        model = net.on_spikes()
        if spec.get("surrogate") and net.spiking:
            model = S.SpikingClassifier(S.swap_surrogate(net.model.net, spec["surrogate"]["name"],
                                                         spec["surrogate"]["alpha"]), net.model.T)
        return model, net.encode(x), {}, (1 if net.spiking else 0)

    def paper_entries(self) -> list[dict]:
        """Every net under the authors' clean / FGSM / PGD (Tables 1–3) on all attacked images."""
        n = n_attacked(self.sec, self.data)
        return [entry(net, spec, self.run(net, spec, n), "paper")
                for net in self.nets.values() for spec in paper_attacks(self.sec)]

    def sweep_entries(self) -> list[dict]:
        """Every net, clean then FGSM / PGD at each ε of `sweep.eps_255` (Fig. 2), on the first `sweep.n` images."""
        specs = [paper_attacks(self.sec)[0], *sweep_attacks(self.sec)]
        return [entry(net, spec, self.run(net, spec, self.sec.sweep.n), "sweep")
                for net in self.nets.values() for spec in specs]

    def masking_entries(self) -> list[dict]:
        """The masking checks (`masking_attacks`) of each net in `masking.models`, each on its own sample."""
        m = self.sec.masking
        return [entry(net, spec, self.run(net, spec, spec.get("n", m.n)), "masking")
                for name in m.models for seed in self.sec.seeds for net in [self.nets[(name, seed)]]
                for spec in masking_attacks(self.sec, net)]


def train_net(sec: Params, spec: Model, data: Data, seed: int, root, device, claim_stale_seconds: float = 600.0) -> bool:
    """Train one net and save it to <root>/<key>.pt (root = <checkpoints_dir>/<dataset>, Study.root; locally or in a
    Ray task) through the model store every family shares (lib.core.train.CheckpointStore), under its claim: a net
    another process is training is waited for, not trained twice. Returns whether it was trained here."""
    tr = sec.training
    u = unit(sec, spec, data, seed)
    store = TR.CheckpointStore(Path(root).parent, dataset=sec.dataset, claim_stale_seconds=claim_stale_seconds)
    with store.claim(u) as mine:
        if not mine:
            return False
        model = build(sec, spec, data.n_classes, seed, data.events)
        rec = S.fit(model, data.x_train, data.y_train, epochs=tr.epochs, batch_size=tr.batch_size, lr=tr.lr,
                    weight_decay=tr.weight_decay, flip=tr.flip, seed=seed, device=torch.device(device),
                    desc=f"{sec.dataset} {spec.name} seed {seed}", defence=defence(sec, spec))
        store.put(u, {**rec, "unit": u})
    return True


# ----------------------------------------------------------------------------- attacks (specs are dicts: cache keys)

def label(spec: dict) -> str:
    return spec.get("label") or spec["attack"]


def attack_fn(spec: dict):
    """The attack callable for A.correct: (model, xb, yb, **kw) → adversarial input of `model`."""
    kind, eps = spec["attack"], spec.get("eps_255", 0) / 255
    seed = int(spec.get("seed", 0))
    if kind == "clean":
        return None
    if kind == "fgsm":
        return lambda m, xb, yb, batch_dim=0: A.fgsm(m, xb, yb, eps, bn_mode=spec["bn_mode"])
    if kind == "pgd":
        return lambda m, xb, yb, batch_dim=0: A.pgd(
            m, xb, yb, eps, spec["step"], spec["iters"], random_start=spec.get("random_start", True),
            restarts=spec.get("restarts", 1), seed=seed, bn_mode=spec["bn_mode"], batch_dim=batch_dim)
    if kind == "square":
        return lambda m, xb, yb, batch_dim=0: A.square_attack(
            m, xb, yb, eps, queries=spec["queries"], p_init=spec["p_init"], seed=seed, batch_dim=batch_dim)
    if kind == "transfer":
        def transfer(m, xb, yb, source, inner, batch_dim=0):
            return attack_fn({**inner, "attack": inner["inner_attack"]})(source, xb, yb)
        return transfer
    raise ValueError(f"unknown attack {kind!r}")


def pgd_step(sec: Params, eps_255: float, iters: int) -> float:
    """The authors' step where it reaches the ε-ball boundary in `iters` steps, else 2.5·ε/iters (Madry et al.)."""
    return max(float(sec.attack.step), 2.5 * eps_255 / 255 / iters)


def paper_attacks(sec: Params) -> list[dict]:
    """Clean, FGSM and PGD as the authors run them (Tables 1–3)."""
    a = sec.attack
    base = dict(eps_255=a.eps_255, bn_mode=a.bn_mode, seed=sec.seed)
    return [dict(attack="clean", label="clean"),
            dict(attack="fgsm", label="FGSM", **base),
            dict(attack="pgd", label="PGD", step=a.step, iters=a.iters, random_start=a.random_start, **base)]


def masking_attacks(sec: Params, net: Net) -> list[dict]:
    """The gradient-masking checks (Athalye et al. 2018) that apply to `net`, each labelled. `check`:
    what the check varies."""
    a, m = sec.attack, sec.masking
    eps, it, r = a.eps_255, m.iters, m.restarts
    strong = dict(attack="pgd", eps_255=eps, step=pgd_step(sec, eps, it), iters=it, random_start=True,
                  bn_mode="eval", seed=sec.seed)
    out = [dict(attack="pgd", label=f"PGD-{a.iters}, BN eval", eps_255=eps, step=a.step, iters=a.iters,
                random_start=a.random_start, bn_mode="eval", seed=sec.seed, check="BN mode"),
           dict(strong, label=f"PGD-{it} x {r} restarts, BN eval", restarts=r, check="many steps + restarts")]
    if net.spiking:
        s = m.surrogate
        out.append(dict(strong, label=f"PGD-{it}, surrogate {s.name}(α={s.alpha:g})", surrogate=asdict(s),
                        check="surrogate swap"))
        if net.encoded:   # event frames have no encoder to bypass
            out.append(dict(strong, label=f"PGD-{it} on the image, BPDA encoder", space="image",
                            check="attack the image (BPDA)"))
        if m.transfer_from and m.transfer_from != net.name:
            out.append(dict(attack="transfer", label=f"transfer PGD-{it} from {m.transfer_from}",
                            source=m.transfer_from, inner_attack="pgd", eps_255=eps, step=strong["step"],
                            iters=it, random_start=True, bn_mode="eval", seed=sec.seed, check="transfer"))
    sq = m.square
    out.append(dict(attack="square", label=f"Square-{sq.queries}", eps_255=eps, queries=sq.queries,
                    p_init=sq.p_init, seed=sec.seed, check="gradient-free", n=sq.n, bn_mode="eval"))
    return out


def sweep_attacks(sec: Params) -> list[dict]:
    a = sec.attack
    out = []
    for e in sec.sweep.eps_255:
        base = dict(eps_255=e, bn_mode=a.bn_mode, seed=sec.seed)
        out.append(dict(attack="fgsm", label="FGSM", **base))
        out.append(dict(attack="pgd", label="PGD", step=pgd_step(sec, e, a.iters), iters=a.iters,
                        random_start=a.random_start, **base))
    return out


def entry(net: Net, spec: dict, ok: np.ndarray, group: str) -> dict:
    """One attack run on one net as a row of the tables (lib.stages.grad_obf_tables), `correct` per example."""
    return {"model": net.name, "kind": net.spec.kind, "arch": net.spec.arch, "pool": net.spec.pool,
            "defence": net.spec.defence, "seed": net.seed, "group": group, "attack": label(spec),
            "check": spec.get("check", "authors' protocol" if group == "paper" and spec["attack"] != "clean" else ""),
            "space": ("spikes" if net.events else   # event data: every net and attack works on the frames
                      "image" if (spec.get("space") == "image" or spec["attack"] == "transfer" or not net.spiking)
                      else "spikes"),
            "bn_mode": spec.get("bn_mode", ""), "eps_255": spec.get("eps_255", 0), "correct": ok}


# ----------------------------------------------------------------------------- the sparsity probe

def sparsity(study: Study, net: Net) -> pd.DataFrame:
    """lib.attacks.adversarial.gradient_sparsity per batch of the first `sparsity.n` attacked images, in the space
    the authors attack (spikes for SNNs), BN mode as the attack's. One row per (batch, module)."""
    sp = study.sec.sparsity
    x, y = study.data.attacked(sp.n)
    model = net.on_spikes()
    frames = []
    for b, start in enumerate(range(0, len(y), sp.batch_size)):
        xb = net.encode(x[start:start + sp.batch_size]).to(study.device)
        yb = y[start:start + sp.batch_size].to(study.device)
        df = A.gradient_sparsity(model, xb, yb, bn_mode=study.sec.attack.bn_mode)
        df["order"] = np.arange(len(df))
        frames.append(df.assign(batch=b))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(model=net.name, kind=net.spec.kind, arch=net.spec.arch, pool=net.spec.pool, seed=net.seed)


__all__ = ["SECTION", "Params", "Model", "Data", "load_data", "n_attacked", "spec_of", "groups", "build", "unit", "Net",
           "Study", "defence", "train_net", "label", "attack_fn", "pgd_step", "paper_attacks", "masking_attacks", "sweep_attacks", "entry", "sparsity"]
