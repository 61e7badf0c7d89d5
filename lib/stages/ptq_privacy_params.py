"""params.yaml → 06_post_training_quantization (paper C, notebook 06): the section at one scale, validated without
torch.

Loaded by lib.core.config's validator (STAGE_SCHEMAS) and re-exported by lib.stages.ptq_privacy, which runs the study.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

from ..core import config as C
from ..core.vocab import LIRA_VARIANTS, PTQ_BITS, PTQ_METHODS


# ----------------------------------------------------------------------------- the section: Params
# params.yaml → 06_post_training_quantization has its own schema (CIFAR ResNets under LiRA share nothing with the SNN
# grid's per-family keys); `by_scale.<scale>` replaces whole top-level entries (a replaced mapping is given in full).
SECTION = "06_post_training_quantization"
DATASETS = ("cifar10", "cifar100", "tinyimagenet")   # paper C's; only CIFAR-10 is in the offline mirror
REQUIRED = ("dataset", "models", "targets", "pkeep", "arch", "training", "lira", "ptq", "adaptive", "rmia",
            "shadow_counts", "stack", "seed", "pool", "n_test")


def _entry_checks() -> tuple[dict, dict]:
    """(key → check of its value, key → what is expected) for every entry of the section."""
    num, pos = C._num, C._is_pos_int
    bits_ok = lambda v: isinstance(v, list) and v and all(b in PTQ_BITS for b in v)   # noqa: E731
    bits_txt = f"a non-empty list from {sorted(PTQ_BITS)}"
    POS_LIST = (lambda v: isinstance(v, list) and v and all(pos(x) for x in v), "a non-empty list of positive integers")
    POS, GE0 = (pos, "a positive integer"), (lambda x: num(x, 0), "a number >= 0")
    BOOL = (lambda x: isinstance(x, bool), "true or false")
    BITS_OR_NONE = (lambda v: v == [] or bits_ok(v), f"[] or {bits_txt}")
    checks = {
        "dataset": lambda v: v in DATASETS, "not_run": lambda v: isinstance(v, list) and set(v) <= set(DATASETS),
        "pool": lambda v: v is None or num(v, 16, 100000, True), "models": lambda v: num(v, 3, None, True),
        "targets": lambda v: num(v, 1, None, True), "pkeep": lambda v: num(v, 0.0) and 0 < v < 1,
        "n_test": lambda v: v is None or num(v, 16, 10000, True), "stack": lambda v: v is None or num(v, 1, None, True),
        "seed": lambda v: num(v, 0, None, True),
        # the nested blocks: config.check_block's schemas (sub-key → (check, expected)), errors name the full key
        "arch": {"blocks": POS_LIST, "widths": POS_LIST},
        "training": {"epochs": POS, "batch_size": POS, "lr": GE0, "momentum": (lambda x: num(x, 0, 1), "a number in "
                     "[0, 1]"), "weight_decay": GE0, "augment": BOOL},
        "lira": {"queries": (lambda q: isinstance(q, list) and q and all(x in ("none", "flip") or (
                     isinstance(x, int) and not isinstance(x, bool)) for x in q),
                     "a non-empty list of none | flip | int (a seeded training augmentation)"),
                 "variant": (lambda x: x in LIRA_VARIANTS, f"one of {list(LIRA_VARIANTS)}"), "fix_variance": BOOL,
                 "fprs": (lambda f: isinstance(f, list) and all(num(x) and 0 < x < 1 for x in f), "numbers in (0, 1)")},
        "ptq": {"methods": (lambda m: isinstance(m, list) and m and set(m) <= set(PTQ_METHODS),
                            f"a non-empty list from {list(PTQ_METHODS)}"), "bits": (bits_ok, bits_txt),
                "calibration": POS, "obc_calibration": POS, "iters": {"adaround": POS, "brecq": POS},
                "reg": {"adaround": GE0, "brecq": GE0}, "runs": POS, "runs_bits": BITS_OR_NONE,
                "scale_method": (lambda x: x in ("mse", "minmax"), "mse|minmax"), "bn_leak_bits": BITS_OR_NONE,
                "bn_source": (lambda x: x in ("members", "train"), "members|train"),
                "decoupled": {"last_bits": (lambda x: x in PTQ_BITS, f"one of {sorted(PTQ_BITS)}"),
                              "bits": BITS_OR_NONE}},
        "adaptive": {"methods": (lambda m: isinstance(m, list) and set(m) <= set(PTQ_METHODS), f"a list from "
                                 f"{list(PTQ_METHODS)}"), "bits": BITS_OR_NONE},
        "rmia": {"references": (lambda r: isinstance(r, list) and all(pos(x) for x in r), "positive integers"),
                 "offline_a": (lambda x: num(x, 0, 1), "a number in [0, 1]"), "gamma": GE0,
                 "population": (lambda x: num(x, 1, 10000, True), "an integer in [1, 10000]")},
        "shadow_counts": lambda v: isinstance(v, list) and all(num(c, 1, None, True) for c in v),
    }
    expected = {"pool": "null or an integer in [16, 100000] (at most the dataset's training images)",
                "n_test": "null or an integer in [16, 10000]",
                "dataset": f"one of {list(DATASETS)} (CIFAR-10 is the one in the offline mirror)",
                "not_run": f"a list from {list(DATASETS)}", "models": "an integer >= 3",
                "pkeep": "a number in (0, 1)", "shadow_counts": "a list of positive integers",
                "stack": "null (one by one on a CPU, 16 on CUDA) or a positive integer"}
    return checks, expected


def _check_entries(sec: dict, where: str) -> None:
    """Each entry of the section (where = its name) or of a by_scale replacement (where = <name>.by_scale.<scale>)."""
    C._schema_entries(sec, where, *_entry_checks())
    if "arch" in sec:
        a = sec["arch"]
        C._check(len(a["blocks"]) == len(a["widths"]), f"{where}.arch.widths", a["widths"],
                 f"one width per stage of arch.blocks ({len(a['blocks'])} stages)")


@dataclass(frozen=True)
class Arch:
    blocks: list             # BasicBlocks per stage
    widths: list             # channels per stage


@dataclass(frozen=True)
class Training:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    augment: bool


@dataclass(frozen=True)
class Lira:
    queries: list            # "none" | "flip" | int (a seeded draw of the training augmentation)
    variant: str             # lib.attacks.lira.VARIANTS: paper | authors
    fix_variance: bool
    fprs: list


@dataclass(frozen=True)
class Decoupled:
    last_bits: float         # the fc's bits
    bits: list               # the other layers' bits of the decoupled copies


@dataclass(frozen=True)
class PTQ:
    methods: list
    bits: list
    calibration: int         # calibration images (the target's members)
    obc_calibration: int     # OBC's and GPTQ's Hessian images
    iters: dict              # {adaround, brecq}: optimisation steps
    reg: dict                # {adaround, brecq}: rounding regulariser
    scale_method: str        # mse | minmax
    runs: int                # calibration draws at runs_bits
    runs_bits: list
    bn_source: str           # OBC's BN re-estimation data: members | train (the authors' leak)
    bn_leak_bits: list       # bits rerun with bn_source = train
    decoupled: Decoupled


@dataclass(frozen=True)
class Adaptive:
    methods: list
    bits: list


@dataclass(frozen=True)
class RMIA:
    references: list         # OUT references per example
    offline_a: float
    gamma: float
    population: int


NESTED = {"arch": Arch, "training": Training, "lira": Lira, "adaptive": Adaptive, "rmia": RMIA}


def _entry(k: str, v):
    """A checked entry as the field Params holds: its small dataclass for the nested ones."""
    if k == "ptq":
        return PTQ(**{**v, "decoupled": Decoupled(**v["decoupled"])})
    return NESTED[k](**v) if k in NESTED else v


@dataclass(frozen=True)
class Params:
    """params.yaml → 06_post_training_quantization at one scale, validated (ConfigError naming the key)."""
    dataset: str             # cifar10 (the data set the models train on)
    models: int              # ResNets of the keep matrix (every one a leave-one-out target)
    targets: int             # the first `targets` models are quantized and attacked
    pkeep: float             # each pool example IN exactly ⌊pkeep·models⌋ models
    arch: Arch
    training: Training
    lira: Lira
    ptq: PTQ
    adaptive: Adaptive       # the attacker who quantizes its shadows too
    rmia: RMIA
    shadow_counts: list      # the attacker's budgets (shadows) of the budget curve
    stack: int | None        # models per stacked training run (null = lib.core.resnet.default_stack)
    seed: int
    pool: int | None         # training images of the study (null = all)
    n_test: int | None       # test images (null = all)
    not_run: list = field(default_factory=list)
    checkpoints_dir: str | None = None
    results_dir: str | None = None
    figures_dir: str | None = None
    where: str = field(default=SECTION, compare=False, repr=False)   # the key errors name (…by_scale.<scale>)

    def __post_init__(self):
        _check_entries(self.as_dict(), self.where)
        w = self.where
        C._check(self.targets <= self.models, f"{w}.targets", self.targets, f"at most models = {self.models}")
        C._check(int(self.pkeep * (self.models - 1)) >= 1, f"{w}.models", self.models,
                 "enough models that every example is IN and OUT of at least one shadow")
        C._check(all(c < self.models for c in self.shadow_counts), f"{w}.shadow_counts", self.shadow_counts,
                 f"counts below models = {self.models} (a target's shadows are the other models)")
        C._check(self.ptq.calibration <= self.pkeep * (self.pool or 50000), f"{w}.ptq.calibration",
                 self.ptq.calibration, "at most the members of one model (pkeep · pool)")

    def as_dict(self) -> dict:
        """The section's entries as params.yaml writes them (folders left out when unset)."""
        d = asdict(self)
        d.pop("where")
        return {k: v for k, v in d.items() if not (k.endswith("_dir") and v is None)}

    @classmethod
    def from_section(cls, sec: dict, where: str = SECTION) -> "Params":
        """A section at one scale (no by_scale; config.section's bookkeeping key `replaced` is ignored)."""
        sec = {k: v for k, v in copy.deepcopy(sec).items() if k != "replaced"}
        _check_entries(sec, where)
        for k in REQUIRED:
            if k not in sec:
                raise C.ConfigError(f"params.yaml: missing key `{where}.{k}`")
        return cls(**{k: _entry(k, v) for k, v in sec.items()}, where=where)

    @classmethod
    def from_params(cls, params: dict, scale: str | None = None) -> "Params":
        """params[SECTION] at `scale` (default params['scale']): the section and every by_scale replacement are
        checked, then the active one's entries replace the section's. Errors on the active values name
        <section>.by_scale.<scale> when that scale has replacements (config's own-schema convention)."""
        scale = scale or params["scale"]
        sec = C._get(params, SECTION)
        C._check(isinstance(sec, dict), SECTION, sec, "a mapping")
        by = sec.get("by_scale") or {}
        C._check(isinstance(by, dict) and set(by) <= set(C.SCALES), f"{SECTION}.by_scale", by,
                 f"a mapping with keys from {C.SCALES}")
        _check_entries(base := {k: v for k, v in sec.items() if k != "by_scale"}, SECTION)
        for sc, over in by.items():
            _check_entries(over or {}, f"{SECTION}.by_scale.{sc}")
        for k in REQUIRED:
            C._get(params, f"{SECTION}.{k}")
        return cls.from_section({**base, **(by.get(scale) or {})},
                                f"{SECTION}.by_scale.{scale}" if scale in by else SECTION)
