"""Paper D's study (notebook 07): train SEW-ResNet / Spiking-ResNet / ANN twins, attack them as the authors do,
probe their gradient sparsity, and check the robustness for gradient masking (Athalye et al. 2018).

Everything is a cache unit under `<checkpoints_dir>/<dataset>/`: one `<key>.pt` per trained net (key = what
determines its weights: kind, arch, pool, width, blocks, stem, T, K, recipe, data, seed; not its display name) and
one `<key>/<attack key>.npz` per attack run (per-example correctness), written atomically, so an interrupted run
loses at most the unit it was in.

Attack spaces. SNNs are attacked as the authors do, on the encoded spike tensor [T, B, C, H, W] (`space="spikes"`),
except the BPDA check (`space="image"`: the raw image through the phase encoder with a straight-through backward,
lib.core.sew.BPDAClassifier) and the transfer check (examples crafted on the ANN twin's image, scored through the
encoder). The ANN twin has no encoder: it is always attacked on the image. Perturbations are L∞ in the space
attacked, ε in units of 1/255 (`eps_255`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest
from torch import nn

from ..core import sew as S
from ..core import train as TR
from ..core import executor as EX
from ..core.train import atomic_save, unit_key
from ..attacks import adversarial as A
from ..claims import verdicts as V

SECTION = "07_gradient_sparsity"


@dataclass
class Data:
    """Images in [0, 1] (float, [N, 3, 32, 32]); `attacked` = a prefix of the (seeded, random) test subset."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    n_classes: int
    sha: str

    def attacked(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test[:n], self.y_test[:n]


def load_data(data, sec: dict) -> Data:
    """Seeded random subsets (`n_train` of the training set, `n_test` of the test set; null = all) of a
    lib.core.data.Tensors (CIFAR normalised to [-1, 1]), mapped back to pixels in [0, 1] as the authors feed them
    (no normalisation). Random, not the first images: the stored test set is ordered by class."""
    rng = np.random.default_rng(sec["seed"])
    n_tr, n_te = len(data.y_train), len(data.y_test)
    for key, n, total in (("n_train", sec["n_train"], n_tr), ("n_test", sec["n_test"], n_te)):
        if n is not None and n > total:
            raise ValueError(f"{SECTION}.{key} = {n} exceeds the {total} images there are")
    tr = np.sort(rng.permutation(n_tr)[:sec["n_train"] or n_tr])
    te = rng.permutation(n_te)[:sec["n_test"] or n_te]

    def pix(x):
        return (x * 0.5 + 0.5).clamp(0, 1)

    sha = unit_key([data.source, tr.tolist(), te.tolist()])
    return Data(pix(data.x_train[tr]), data.y_train[tr].long(), pix(data.x_test[te]), data.y_test[te].long(),
                data.source, int(data.n_classes), sha)


def n_attacked(sec: dict, data: Data) -> int:
    return min(sec["attacked"] or len(data.y_test), len(data.y_test))


# ----------------------------------------------------------------------------- models

def spec_of(sec: dict, name: str) -> dict:
    for m in sec["models"]:
        if m["name"] == name:
            return m
    raise KeyError(f"{SECTION}: no model named {name!r} in `models` ({[m['name'] for m in sec['models']]})")


def build(sec: dict, spec: dict, n_classes: int, seed: int) -> nn.Module:
    """The net of `spec`, initialised from `seed` (torch.manual_seed before building, as the authors): an
    EncodedClassifier (images → phase code → mean logits) for SNNs, the torchvision-style ResNet for the ANN."""
    torch.manual_seed(seed)
    kw = dict(num_classes=n_classes, width=sec["width"], blocks=sec["blocks"], pool=spec["pool"], stem=sec["stem"])
    if spec["kind"] == "ann":
        return S.build("ann", spec["arch"], **kw)
    return S.build(spec["kind"], spec["arch"], T=sec["T"], K=sec["K"], encode=True, **kw)


def unit(sec: dict, spec: dict, data: Data, seed: int) -> dict:
    """What determines a net's weights (its cache key)."""
    u = {"section": SECTION, "kind": spec["kind"], "arch": spec["arch"], "pool": spec["pool"], "width": sec["width"],
         "blocks": sec["blocks"], "stem": sec["stem"], "training": sec["training"], "seed": seed, "data": data.sha}
    if spec["kind"] != "ann":
        u.update(T=sec["T"], K=sec["K"])
    return u


@dataclass
class Net:
    """A trained net and how to attack it."""
    name: str
    spec: dict
    seed: int
    model: nn.Module          # images [B, 3, H, W] → logits (eval mode)
    key: str
    seconds: float
    curve: list
    trained_now: bool

    @property
    def spiking(self) -> bool:
        return self.spec["kind"] != "ann"

    def on_spikes(self) -> nn.Module:
        """The same weights taking the encoded spike tensor [T, B, C, H, W] (SNNs) or the image (ANN)."""
        return S.SpikingClassifier(self.model.net, self.model.T) if self.spiking else self.model

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return S.phase_encode(x, self.model.K, self.model.T) if self.spiking else x


@dataclass
class Study:
    sec: dict
    data: Data
    root: Path
    device: torch.device
    nets: dict = field(default_factory=dict)     # (name, seed) → Net

    @classmethod
    def open(cls, sec: dict, data, checkpoints_dir, device=None) -> "Study":
        dev = torch.device(device) if device is not None else TR.device("auto")
        d = load_data(data, sec)
        root = Path(checkpoints_dir) / sec["dataset"]
        root.mkdir(parents=True, exist_ok=True)
        return cls(sec, d, root, dev)

    # ------------------------------------------------------------------ training
    def train(self) -> pd.DataFrame:
        """Train (or load) every (model, seed); one row each with clean train/test accuracy and seconds."""
        tr = self.sec["training"]
        rows = []
        nets = [(seed, spec, unit_key(unit(self.sec, spec, self.data, seed)))
                for seed in self.sec["seeds"] for spec in self.sec["models"]]
        missing = {key for _, _, key in nets if not (self.root / f"{key}.pt").exists()}
        settings = EX.active()
        if settings.ray:   # train.executor: ray — one Ray task per missing net, then everything is read as below
            dev = "cuda" if settings.ray_gpus_per_unit > 0 else "cpu"
            EX.run_jobs([EX.Job(train_net, (self.sec, spec, self.data, seed, self.root, dev,
                                            settings.claim_stale_seconds), f"{spec['name']} seed {seed}")
                         for seed, spec, key in nets if key in missing], settings, desc="nets")
        for seed, spec, key in nets:
            path = self.root / f"{key}.pt"
            model = build(self.sec, spec, self.data.n_classes, seed)
            now = key in missing
            if not path.exists():
                train_net(self.sec, spec, self.data, seed, self.root, self.device, settings.claim_stale_seconds)
            rec = torch.load(path, map_location="cpu", weights_only=False)
            model.load_state_dict(rec["state_dict"])
            model.to(self.device).eval()
            net = Net(spec["name"], spec, seed, model, key, rec["seconds"], rec["curve"], now)
            self.nets[(spec["name"], seed)] = net
            n_tr = min(len(self.data.y_train), len(self.data.y_test))
            rows.append({"model": spec["name"], "kind": spec["kind"], "arch": spec["arch"], "pool": spec["pool"],
                         "seed": seed, "train_acc": self.accuracy(net, self.data.x_train[:n_tr],
                                                                  self.data.y_train[:n_tr]),
                         "test_acc": self.accuracy(net, self.data.x_test, self.data.y_test),
                         "n_train": len(self.data.y_train), "n_test": len(self.data.y_test),
                         "epochs": tr["epochs"], "train_seconds": rec["seconds"], "trained_now": now,
                         "final_loss": rec["curve"][-1]["loss"] if rec["curve"] else float("nan"),
                         "data_source": self.data.source})
        return pd.DataFrame(rows)

    def accuracy(self, net: Net, x: torch.Tensor, y: torch.Tensor) -> float:
        _, ok = A.correct(net.model, x, y, None, self.sec["attack"]["batch_size"] * 4)
        return 100.0 * ok.float().mean().item()

    def curves(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": n.name, "seed": n.seed, **c} for n in self.nets.values() for c in n.curve])

    # ------------------------------------------------------------------ attacks
    def run(self, net: Net, spec: dict, n: int) -> np.ndarray:
        """Per-example correctness (bool [n]) of `net` on the first n attacked images under attack `spec`
        (see `attack_fn`); cached per (net, spec, n, data)."""
        full = {**{k: v for k, v in spec.items() if k not in ("label", "check")}, "n": n, "data": self.data.sha, "seed": self.sec["seed"],
                "batch_size": self.sec["attack"]["batch_size"]}
        if spec.get("source"):
            full["source_key"] = self.nets[(spec["source"], net.seed)].key
        path = self.root / net.key / f"{unit_key(full)}.npz"
        if path.exists():
            return np.load(path)["correct"]
        path.parent.mkdir(exist_ok=True)
        x, y = self.data.attacked(n)
        model, inputs, kw, batch_dim = self._attack_setup(net, spec, x)
        fn = attack_fn(spec)
        _, ok = A.correct(model, inputs, y, fn, self.sec["attack"]["batch_size"], batch_dim=batch_dim,
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


def train_net(sec: dict, spec: dict, data: Data, seed: int, root, device, claim_stale_seconds: float = 600.0) -> bool:
    """Train one net and save it to <root>/<key>.pt (locally or in a Ray task), under its claim
    (lib.core.executor.claim): a net another process is training is waited for, not trained twice. Returns whether
    it was trained here."""
    tr = sec["training"]
    u = unit(sec, spec, data, seed)
    path = Path(root) / f"{unit_key(u)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with EX.claim(EX.claims_dir_for(Path(root).parent), sec["dataset"], unit_key(u), lambda _: path.is_file(),
                  stale_seconds=claim_stale_seconds) as mine:
        if not mine:
            return False
        model = build(sec, spec, data.n_classes, seed)
        rec = S.fit(model, data.x_train, data.y_train, epochs=tr["epochs"], batch_size=tr["batch_size"], lr=tr["lr"],
                    weight_decay=tr["weight_decay"], flip=tr["flip"], seed=seed, device=torch.device(device),
                    desc=f"{sec['dataset']} {spec['name']} seed {seed}")
        atomic_save({**rec, "unit": u}, path)
    return True


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


def pgd_step(sec: dict, eps_255: float, iters: int) -> float:
    """The authors' step where it reaches the ε-ball boundary in `iters` steps, else 2.5·ε/iters (Madry et al.)."""
    return max(float(sec["attack"]["step"]), 2.5 * eps_255 / 255 / iters)


def paper_attacks(sec: dict) -> list[dict]:
    """Clean, FGSM and PGD as the authors run them (Tables 1–3)."""
    a = sec["attack"]
    base = dict(eps_255=a["eps_255"], bn_mode=a["bn_mode"], seed=sec["seed"])
    return [dict(attack="clean", label="clean"),
            dict(attack="fgsm", label="FGSM", **base),
            dict(attack="pgd", label="PGD", step=a["step"], iters=a["iters"], random_start=a["random_start"], **base)]


def masking_attacks(sec: dict, net: Net) -> list[dict]:
    """The gradient-masking checks (Athalye et al. 2018) that apply to `net`, each labelled. `group`:
    what the check varies."""
    a, m = sec["attack"], sec["masking"]
    eps, it, r = a["eps_255"], m["iters"], m["restarts"]
    strong = dict(attack="pgd", eps_255=eps, step=pgd_step(sec, eps, it), iters=it, random_start=True,
                  bn_mode="eval", seed=sec["seed"])
    out = [dict(attack="pgd", label=f"PGD-{a['iters']}, BN eval", eps_255=eps, step=a["step"], iters=a["iters"],
                random_start=a["random_start"], bn_mode="eval", seed=sec["seed"], check="BN mode"),
           dict(strong, label=f"PGD-{it} x {r} restarts, BN eval", restarts=r, check="many steps + restarts")]
    if net.spiking:
        s = m["surrogate"]
        out.append(dict(strong, label=f"PGD-{it}, surrogate {s['name']}(α={s['alpha']:g})", surrogate=s,
                        check="surrogate swap"))
        out.append(dict(strong, label=f"PGD-{it} on the image, BPDA encoder", space="image",
                        check="attack the image (BPDA)"))
        if m["transfer_from"] and m["transfer_from"] != net.name:
            out.append(dict(attack="transfer", label=f"transfer PGD-{it} from {m['transfer_from']}",
                            source=m["transfer_from"], inner_attack="pgd", eps_255=eps, step=strong["step"],
                            iters=it, random_start=True, bn_mode="eval", seed=sec["seed"], check="transfer"))
    sq = m["square"]
    out.append(dict(attack="square", label=f"Square-{sq['queries']}", eps_255=eps, queries=sq["queries"],
                    p_init=sq["p_init"], seed=sec["seed"], check="gradient-free", n=sq["n"], bn_mode="eval"))
    return out


def sweep_attacks(sec: dict) -> list[dict]:
    a = sec["attack"]
    out = []
    for e in sec["sweep"]["eps_255"]:
        base = dict(eps_255=e, bn_mode=a["bn_mode"], seed=sec["seed"])
        out.append(dict(attack="fgsm", label="FGSM", **base))
        out.append(dict(attack="pgd", label="PGD", step=pgd_step(sec, e, a["iters"]), iters=a["iters"],
                        random_start=a["random_start"], **base))
    return out


# ----------------------------------------------------------------------------- tables

def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of k/n, in %."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(method="wilson")
    return 100 * ci.low, 100 * ci.high


def entry(net: Net, spec: dict, ok: np.ndarray, group: str) -> dict:
    return {"model": net.name, "kind": net.spec["kind"], "arch": net.spec["arch"], "pool": net.spec["pool"],
            "seed": net.seed, "group": group, "attack": label(spec),
            "check": spec.get("check", "authors' protocol" if group == "paper" and spec["attack"] != "clean" else ""),
            "space": ("image" if (spec.get("space") == "image" or spec["attack"] == "transfer" or not net.spiking)
                      else "spikes"),
            "bn_mode": spec.get("bn_mode", ""), "eps_255": spec.get("eps_255", 0), "correct": ok}


def summary(entries: list[dict]) -> pd.DataFrame:
    """One row per entry: accuracy (%) over its examples with a 95% Wilson interval."""
    rows = []
    for e in entries:
        k, n = int(e["correct"].sum()), len(e["correct"])
        lo, hi = wilson(k, n)
        rows.append({**{c: v for c, v in e.items() if c != "correct"}, "n_eval": n, "test_acc": 100 * k / max(n, 1),
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def claim_rows(entries: list[dict]) -> pd.DataFrame:
    """The accuracy table the claims read: `summary`'s rows with `examples`, the id of each entry's per-example
    outcomes (`outcomes`). Entries over the same prefix of the attacked images pair example by example."""
    return summary(entries).assign(examples=[entry_id(e) for e in entries])


def entry_id(e: dict) -> str:
    return f"{e['model']}|{e['seed']}|{e['group']}|{e['attack']}|{e.get('check', '')}|{len(e['correct'])}"


def outcomes(entries: list[dict]) -> pd.DataFrame:
    """Per-example outcomes (lib.claims.verdicts.Examples): measure "eval", example i = the i-th attacked image (the
    same image in every entry), correct = the net still classifies it right under the entry's attack."""
    return pd.concat([pd.DataFrame({"id": entry_id(e), "measure": "eval", "example": np.arange(len(e["correct"])),
                                    "correct": np.asarray(e["correct"]).astype(np.int8)}) for e in entries],
                     ignore_index=True).drop_duplicates(["id", "example"])


OUTCOMES = {"test_acc": V.Outcome("eval", "accuracy", scale=100.0)}


def examples_of(frame: pd.DataFrame, params: dict) -> V.Examples:
    b = params["verdicts"]["bootstrap"]
    return V.Examples(frame, OUTCOMES, n_boot=b["n_boot"], seed=b["seed"])


WORST = {"spikes": "worst case, spike space", "image": "worst case, image space"}


def worst_case(net: Net, entries: list[dict], n: int, space: str) -> dict:
    """An example counts as robust only if every attack run on `net` in threat model `space` ("spikes": ε-ball
    around the encoded spike tensor, the authors'; "image": ε-ball around the image) over its first n examples left
    it correct. Label: WORST[space]."""
    mine = [e for e in entries if e["model"] == net.name and e["seed"] == net.seed and e["attack"] != "clean"
            and e["space"] == space and len(e["correct"]) >= n]
    if not mine:
        raise ValueError(f"{net.name}: no attack in the {space} space over {n} examples")
    ok = np.logical_and.reduce([e["correct"][:n] for e in mine])
    return {**entry(net, dict(attack="worst", label=WORST[space]), ok, "worst"), "space": space,
            "check": f"min over {len(mine)} attacks"}


def prefix(e: dict, n: int, group: str) -> dict:
    return {**e, "correct": e["correct"][:n], "group": group}


def sparsity(study: Study, net: Net) -> pd.DataFrame:
    """lib.attacks.adversarial.gradient_sparsity per batch of the first `sparsity.n` attacked images, in the space
    the authors attack (spikes for SNNs), BN mode as the attack's. One row per (batch, module)."""
    sp = study.sec["sparsity"]
    x, y = study.data.attacked(sp["n"])
    model = net.on_spikes()
    frames = []
    for b, start in enumerate(range(0, len(y), sp["batch_size"])):
        xb = net.encode(x[start:start + sp["batch_size"]]).to(study.device)
        yb = y[start:start + sp["batch_size"]].to(study.device)
        df = A.gradient_sparsity(model, xb, yb, bn_mode=study.sec["attack"]["bn_mode"])
        df["order"] = np.arange(len(df))
        frames.append(df.assign(batch=b))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(model=net.name, kind=net.spec["kind"], arch=net.spec["arch"], pool=net.spec["pool"],
                      seed=net.seed)


def sparsity_rows(sp: pd.DataFrame) -> pd.DataFrame:
    """Per (model, seed): % zeros of the input gradient and of the stem pool's input gradient, averaged over the
    batches, each with its test-set SE (`<metric>_se`: sd over the batches / √batches; the batches are disjoint sets
    of the attacked images, so their spread is test-set noise, not training variance). The verdicts' rows."""
    keys = ["model", "kind", "arch", "pool", "seed"]
    inp = sp[sp.type == "input"].set_index(keys + ["batch"]).grad_input_zero_pct.rename("input_zero_pct")
    pool = sp[sp.name.str.endswith("maxpool")].set_index(keys + ["batch"]).grad_input_zero_pct.rename("pool_zero_pct")
    per_batch = pd.concat([inp, pool], axis=1).reset_index()
    g = per_batch.groupby(keys, sort=False)
    out = g[["input_zero_pct", "pool_zero_pct"]].mean()
    n = g.size()
    for c in ("input_zero_pct", "pool_zero_pct"):
        out[f"{c}_se"] = g[c].std(ddof=1) / np.sqrt(n)
    return out.assign(batches=n).reset_index()


__all__ = ["SECTION", "Data", "load_data", "n_attacked", "spec_of", "build", "unit", "Net", "Study", "label",
           "attack_fn", "pgd_step", "WORST", "paper_attacks", "masking_attacks", "sweep_attacks", "wilson", "entry", "summary",
           "claim_rows", "entry_id", "outcomes", "OUTCOMES", "examples_of", "worst_case", "prefix", "sparsity",
           "sparsity_rows"]
