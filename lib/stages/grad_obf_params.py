"""Stage 07's section of params.yaml (`07_gradient_sparsity`, paper D) as frozen dataclasses: `Params` and its parts.
`Params.from_params(params, scale)` reads the section at a scale (its `by_scale.<scale>` entries replace whole
top-level entries, as lib.core.config.section does); __post_init__ checks every value and raises a
lib.core.config.ConfigError naming its params.yaml key. lib.core.config.validate calls it (STAGE_SCHEMAS), so this
module imports no model library: the architectures and surrogates are lib.core.vocab's names, the keys of
lib.core.sew.ARCHS and SURROGATES (sew asserts so at import)."""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass

from ..core import config as C
from ..core.vocab import SEW_ARCHS, SEW_SURROGATES

SECTION = "07_gradient_sparsity"
DATASETS = ("cifar10", "cifar100", "cifar10dvs")   # paper D's; only CIFAR-10 is in the offline mirror
KINDS = ("sew", "spiking", "ann")
DEFENCES = ("none", "rat")   # rat: regularized adversarial training (lib.attacks.rat, recipe = the section's `rat`)


@dataclass(frozen=True)
class Model:
    """One trained net: `name` a display label (not in its cache key); kind sew|spiking|ann; arch a key of
    lib.core.sew.ARCHS (lib.core.vocab.SEW_ARCHS); pool = the stem pool, max (the authors') | avg (their Table 3
    variant); defence = none (the paper's undefended nets; may be left out) | rat (trained with the section's
    `rat` recipe)."""
    name: str
    kind: str
    arch: str
    pool: str
    defence: str = "none"


@dataclass(frozen=True)
class Training:
    """The authors' Adam recipe (lib.core.sew.fit)."""
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    flip: bool


@dataclass(frozen=True)
class Rat:
    """The adversarial-training recipe of `defence: rat` nets (lib.attacks.rat.RAT): L∞ ε, step (1/255), PGD
    iterations, random start, Parseval β."""
    eps_255: float
    step_255: float
    iters: int
    random_start: bool
    beta: float


@dataclass(frozen=True)
class Attack:
    """The authors' attacks: ε (1/255), PGD step and iterations, BN mode while crafting, batch size."""
    eps_255: float
    step: float
    iters: int
    random_start: bool
    bn_mode: str
    batch_size: int


@dataclass(frozen=True)
class Sweep:
    eps_255: tuple
    n: int


@dataclass(frozen=True)
class Sparsity:
    n: int
    batch_size: int


@dataclass(frozen=True)
class Surrogate:
    name: str
    alpha: float


@dataclass(frozen=True)
class Square:
    queries: int
    n: int
    p_init: float


@dataclass(frozen=True)
class Masking:
    """The gradient-masking checks: on `models` (names) and the first `n` attacked images."""
    models: tuple
    n: int
    iters: int
    restarts: int
    surrogate: Surrogate
    transfer_from: str | None
    square: Square


def _num(x, lo=None, hi=None, integer=False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and (not integer or isinstance(x, int))
    return ok and (lo is None or x >= lo) and (hi is None or x <= hi)


def _pos(x) -> bool:
    return _num(x, 1, None, True)


def _eps(e) -> bool:
    return _num(e, 0, 255) and e > 0


# field → (check of the typed value, what is expected); the text names the params.yaml entry
CHECKS = {
    "dataset": (lambda v: v in DATASETS, f"one of {list(DATASETS)} (CIFAR-10 is the one in the offline mirror)"),
    "not_run": (lambda v: isinstance(v, tuple) and set(v) <= set(DATASETS), f"a list from {list(DATASETS)}"),
    "models": (lambda v: isinstance(v, tuple) and v and len({m.name for m in v}) == len(v) and all(
        isinstance(m.name, str) and m.name and m.kind in KINDS and m.arch in SEW_ARCHS and m.pool in ("max", "avg")
        and m.defence in DEFENCES for m in v),
        f"a non-empty list of {{name (unique), kind: {'|'.join(KINDS)}, arch: {'|'.join(SEW_ARCHS)}, "
        f"pool: max|avg, defence (optional): {'|'.join(DEFENCES)}}}"),
    "width": (_pos, "a positive integer"),
    "stem": (lambda v: v in ("imagenet", "cifar"), "imagenet or cifar"),
    "blocks": (lambda v: v is None or (isinstance(v, tuple) and len(v) == 4 and all(_pos(b) for b in v)),
               "null or 4 positive integers"),
    "T": (_pos, "a positive integer"),
    "K": (lambda v: _num(v, 1, 8, True), "an integer in [1, 8]"),
    "n_train": (lambda v: v is None or _num(v, 16, 50000, True), "null or an integer in [16, 50000]"),
    "n_test": (lambda v: v is None or _num(v, 16, 10000, True), "null or an integer in [16, 10000]"),
    "attacked": (lambda v: v is None or _num(v, 1, 10000, True), "null or an integer in [1, 10000]"),
    "seeds": (lambda v: isinstance(v, tuple) and v and all(_num(x, 0, None, True) for x in v)
              and len(set(v)) == len(v), "a non-empty list of distinct non-negative integers"),
    "seed": (lambda v: _num(v, 0, None, True), "a non-negative integer"),
    "training": (lambda t: _pos(t.epochs) and _num(t.batch_size, 2, None, True) and _num(t.lr, 0) and t.lr > 0
                 and _num(t.weight_decay, 0) and isinstance(t.flip, bool),
                 "{epochs, batch_size >= 2, lr > 0, weight_decay >= 0, flip: bool}"),
    "attack": (lambda a: _eps(a.eps_255) and _num(a.step, 0) and a.step > 0 and _pos(a.iters)
               and isinstance(a.random_start, bool) and a.bn_mode in ("train", "eval") and _pos(a.batch_size),
               "{eps_255 in (0, 255], step > 0, iters, random_start: bool, bn_mode: train|eval, batch_size}"),
    "sweep": (lambda s: isinstance(s.eps_255, tuple) and s.eps_255 and all(_eps(e) for e in s.eps_255) and _pos(s.n),
              "{eps_255: a non-empty list in (0, 255], n}"),
    "sparsity": (lambda s: _pos(s.n) and _num(s.batch_size, 2, None, True), "{n, batch_size >= 2}"),
    "rat": (lambda r: _eps(r.eps_255) and _eps(r.step_255) and _pos(r.iters) and isinstance(r.random_start, bool)
            and _num(r.beta, 0, 1), "{eps_255 and step_255 in (0, 255], iters, random_start: bool, beta in [0, 1]}"),
    "masking": (lambda m: isinstance(m.models, tuple) and all(isinstance(x, str) for x in m.models) and _pos(m.n)
                and _pos(m.iters) and _pos(m.restarts) and m.surrogate.name in SEW_SURROGATES
                and _num(m.surrogate.alpha, 0) and m.surrogate.alpha > 0
                and (m.transfer_from is None or isinstance(m.transfer_from, str))
                and _pos(m.square.queries) and _pos(m.square.n) and _num(m.square.p_init, 0, 1),
                f"{{models: [model names], n, iters, restarts, surrogate: {{name: one of {sorted(SEW_SURROGATES)}, "
                "alpha > 0}, transfer_from: a model name or null, square: {queries, n, p_init in [0, 1]}}"),
}
# The nested blocks' keys (config.check_block's schemas), checked on the params.yaml values before CHECKS: an error
# names the full key (`07_gradient_sparsity.masking.square.queries`) and the bad value, not the whole block.
_POS = (_pos, "a positive integer")
_GT0 = (lambda x: _num(x, 0) and x > 0, "a number > 0")
_BOOL = (lambda x: isinstance(x, bool), "true or false")
SUB_CHECKS = {
    "training": {"epochs": _POS, "batch_size": (lambda x: _num(x, 2, None, True), "an integer >= 2"), "lr": _GT0,
                 "weight_decay": (lambda x: _num(x, 0), "a number >= 0"), "flip": _BOOL},
    "attack": {"eps_255": (_eps, "a number in (0, 255]"), "step": _GT0, "iters": _POS, "random_start": _BOOL,
               "bn_mode": (lambda x: x in ("train", "eval"), "train or eval"), "batch_size": _POS},
    "sweep": {"eps_255": (lambda v: isinstance(v, list) and v and all(_eps(e) for e in v),
                          "a non-empty list of numbers in (0, 255]"), "n": _POS},
    "sparsity": {"n": _POS, "batch_size": (lambda x: _num(x, 2, None, True), "an integer >= 2")},
    "rat": {"eps_255": (_eps, "a number in (0, 255]"), "step_255": (_eps, "a number in (0, 255]"), "iters": _POS,
            "random_start": _BOOL, "beta": (lambda x: _num(x, 0, 1), "a number in [0, 1]")},
    "masking": {"models": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                           "a list of model names"),
                "n": _POS, "iters": _POS, "restarts": _POS,
                "surrogate": {"name": (lambda x: x in SEW_SURROGATES, f"one of {sorted(SEW_SURROGATES)}"),
                              "alpha": _GT0},
                "transfer_from": (lambda x: x is None or isinstance(x, str), "a model name or null"),
                "square": {"queries": _POS, "n": _POS, "p_init": (lambda x: _num(x, 0, 1), "a number in [0, 1]")}},
}
MODEL_CHECKS = {"name": (lambda x: isinstance(x, str) and x, "a non-empty name"),
                "kind": (lambda x: x in KINDS, f"one of {list(KINDS)}"),
                "arch": (lambda x: x in SEW_ARCHS, f"one of {list(SEW_ARCHS)}"),
                "pool": (lambda x: x in ("max", "avg"), "max or avg"),
                "defence": (lambda x: x in DEFENCES, f"one of {list(DEFENCES)}")}
_NESTED = {"training": Training, "attack": Attack, "sweep": Sweep, "sparsity": Sparsity, "masking": Masking,
           "surrogate": Surrogate, "square": Square, "rat": Rat}


def _typed(name: str, v, top: bool = True):
    """A params.yaml value as its field holds it: mappings of the nested sections as their dataclass (None where
    the keys are not exactly its fields), lists as tuples, `models` as a tuple of Model; anything else as is."""
    cls = Model if name == "model" else _NESTED.get(name)
    if cls is not None:
        names = [f.name for f in fields(cls)]
        if not isinstance(v, dict) or set(v) != set(names):
            return None
        out = {k: _typed(k, v[k], top=False) for k in names}
        return None if any(out[k] is None and k in _NESTED for k in names) else cls(**out)
    if top and name == "models" and isinstance(v, list):
        ms = tuple(_typed("model", {"defence": "none", **m} if isinstance(m, dict) else m) for m in v)
        return None if None in ms else ms
    return tuple(v) if isinstance(v, list) else v


def _plain(v):
    """The params.yaml form of a field's value (for messages)."""
    if is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in fields(v)}
    return [_plain(x) for x in v] if isinstance(v, tuple) else v


def _invalid(key: str, value, expected: str):
    raise C.ConfigError(f"params.yaml: `{key}` = {_plain(value)!r} is invalid; expected {expected}")


@dataclass(frozen=True, kw_only=True)
class Params:
    """params.yaml's `07_gradient_sparsity` at one scale (see the comments there). Built by `from_params`;
    __post_init__ checks every value and raises a ConfigError naming its params.yaml key (`keys`)."""
    dataset: str
    not_run: tuple = ()
    models: tuple                 # of Model
    width: int
    stem: str
    blocks: tuple | None
    T: int
    K: int
    n_train: int | None
    n_test: int | None
    attacked: int | None
    seeds: tuple
    seed: int
    training: Training
    attack: Attack
    sweep: Sweep
    sparsity: Sparsity
    rat: Rat
    masking: Masking
    checkpoints_dir: str = f"checkpoints/{SECTION}"
    results_dir: str = f"results/{SECTION}"
    figures_dir: str = f"figures/{SECTION}"
    scale: str | None = None
    replaced: tuple = ()          # the entries `by_scale.<scale>` replaces with other values
    keys: dict = field(default_factory=dict, compare=False, repr=False)   # field → its params.yaml key

    def key(self, name: str) -> str:
        return self.keys.get(name, f"{SECTION}.{name}")

    def __post_init__(self):
        for name, (ok, expected) in CHECKS.items():
            if not ok(getattr(self, name)):
                _invalid(self.key(name), getattr(self, name), expected)
        for name in C.DIR_KEYS:
            if not (isinstance(getattr(self, name), str) and getattr(self, name)):
                _invalid(self.key(name), getattr(self, name), "a folder path")
        names = {m.name: m for m in self.models}
        for m in self.masking.models:
            if m not in names:
                _invalid(self.key("masking") + ".models", m, f"a name from `models` ({sorted(names)})")
        src = self.masking.transfer_from
        if not (src is None or (src in names and names[src].kind == "ann")):
            _invalid(self.key("masking") + ".transfer_from", src, "null or the name of an ANN in `models` "
                     f"({sorted(n for n, m in names.items() if m.kind == 'ann')})")
        n_test = self.n_test or 10000
        if self.attacked is not None and self.attacked > n_test:
            _invalid(self.key("attacked"), self.attacked, f"at most n_test = {n_test}")
        n_att = min(self.attacked or n_test, n_test)
        for k, v in (("sweep", self.sweep.n), ("sparsity", self.sparsity.n), ("masking", self.masking.n),
                     ("masking", self.masking.square.n)):
            if v > n_att:
                _invalid(self.key(k), v, f"sample sizes at most the {n_att} attacked images")

    @classmethod
    def from_params(cls, params: dict, scale: str | None = None) -> "Params":
        """params[SECTION] at `scale` (default: params' `scale`), its `by_scale.<scale>` entries replacing whole
        top-level entries (config.section). The grid of every scale is checked, the active one first, so a bad
        entry is caught whichever scale runs; returns the active one."""
        sec = params.get(SECTION)
        if not isinstance(sec, dict):
            _invalid(SECTION, sec, "a mapping")
        by = sec.get("by_scale") or {}
        if not (isinstance(by, dict) and set(by) <= set(C.SCALES)):
            _invalid(f"{SECTION}.by_scale", by, f"a mapping with keys from {C.SCALES}")
        for sc, over in by.items():
            if not (over is None or isinstance(over, dict)):
                _invalid(f"{SECTION}.by_scale.{sc}", over, "a mapping of replaced entries")
        scale = scale or params["scale"]
        active = cls._at(sec, scale)
        for other in C.SCALES:
            if other != scale:
                cls._at(sec, other)     # checked, not kept
        return active

    @classmethod
    def _at(cls, sec: dict, scale: str) -> "Params":
        over = (sec.get("by_scale") or {}).get(scale) or {}
        grid = C.section({SECTION: sec, "scale": scale}, SECTION)
        replaced = grid.pop("replaced")
        keys = {k: f"{SECTION}.by_scale.{scale}.{k}" if k in over else f"{SECTION}.{k}" for k in grid}
        own = [f.name for f in fields(cls) if f.name not in ("scale", "replaced", "keys")]
        for k in grid:
            if k not in own:
                raise C.ConfigError(f"params.yaml: unknown key `{keys[k]}`; expected one of {own}")
        for f in fields(cls):
            if f.name not in grid and f.default is MISSING and f.default_factory is MISSING:   # required
                raise C.ConfigError(f"params.yaml: missing key `{SECTION}.{f.name}`")
        values = {}
        for k, v in grid.items():
            if k in SUB_CHECKS:
                C.check_block(v, keys[k], SUB_CHECKS[k])
            if k == "models" and isinstance(v, list):
                for i, m in enumerate(v):
                    C.check_block({"defence": "none", **m} if isinstance(m, dict) else m, f"{keys[k]}[{i}]",
                                  MODEL_CHECKS)
            values[k] = _typed(k, v)
            if values[k] is None and v is not None:
                _invalid(keys[k], v, CHECKS[k][1])
        return cls(**values, scale=scale, replaced=tuple(replaced), keys=keys)
