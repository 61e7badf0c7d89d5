"""The names params.yaml may use, each written once, in a module that imports nothing.

Validation (lib.core.config and the stages' schemas) reads them here, so loading params.yaml imports no model
library (torch, brevitas, snntorch, spikingjelly). The modules that implement the names import their tuple from
here, and where one builds a mapping keyed by the names it asserts at import that its keys are exactly these.
"""

# lib.core.data
IMAGE_DATASETS = ("mnist", "fmnist", "cifar10")
TABULAR_DATASETS = ("iris", "breast_cancer")
DATASETS = IMAGE_DATASETS + TABULAR_DATASETS
SPLIT_MODES = ("disjoint", "as_published")
CIFAR10_SOURCES = ("torchvision", "jpeg-standin")

# lib.core.models (Net)
ARCHS = ("convnet", "fcnet")
KINDS = ("ann", "snn")
READOUTS = ("last", "mean")

# lib.core.neurons.SURROGATES (snntorch spike functions; the keys of `surrogates` in params.yaml)
SURROGATES = ("fast_sigmoid", "atan", "spike_rate_escape", "triangular", "straight_through_estimator",
              "spike_rate_escape_legacy", "triangular_true")
# the constants each surrogate takes (`surrogates.<name>` in params.yaml; lib.core.neurons asserts that they are the
# keyword arguments of its spike functions, snntorch's and ours)
SURROGATE_CONSTANTS = {"fast_sigmoid": ("slope",), "atan": ("alpha",), "spike_rate_escape": ("beta", "slope"),
                       "triangular": ("threshold",), "straight_through_estimator": (),
                       "spike_rate_escape_legacy": ("beta", "slope"), "triangular_true": ("width",)}

# lib.core.encoders.ENCODERS (`encoding`, the keys of `encoders`)
ENCODINGS = ("direct", "rate", "regular_rate", "poisson_burst", "delayed_burst")

# lib.claims (params.yaml verdicts.margins): the metrics an equivalence / non-inferiority margin is given for, in the
# units the claims use: AUC units (auc, trace_auc), accuracy points (test_acc), TPR as a fraction (tpr_at_1pct,
# tpr_at_0_1pct; tpr_low = the ladder's TPR at its stated FPR), pool_zero_pct in points of gradient zeros (paper D)
MARGIN_METRICS = ("auc", "trace_auc", "test_acc", "tpr_at_1pct", "tpr_at_0_1pct", "tpr_low", "pool_zero_pct")

# lib.core.sew (paper D's SEW / Spiking ResNets): ARCHS and the spikingjelly surrogates of swap_surrogate
SEW_ARCHS = ("resnet18", "resnet34", "resnet50")
SEW_SURROGATES = ("atan", "erf", "piecewise_quadratic", "sigmoid")

# lib.core.ptq (paper C): the methods and the bit widths with a defined grid (LEVELS' keys)
PTQ_METHODS = ("rtn", "adaround", "brecq", "obc", "gptq")
PTQ_BITS = (8, 4, 2, 1.58, 1)

# lib.attacks.lira.VARIANTS (06: lira.variant): the LiRA of paper C's text, or of the authors' code
LIRA_VARIANTS = ("paper", "authors")


def same_names(mapping, names: tuple, what: str) -> None:
    """Assert that a mapping built by a heavy module is keyed by exactly the vocabulary's names."""
    if set(mapping) != set(names):
        raise AssertionError(f"{what}: keys {sorted(mapping, key=str)} differ from lib.core.vocab's "
                             f"{sorted(names, key=str)}")
