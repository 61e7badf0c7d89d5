"""Papers A's and B's leakage claims under the attack ladder (notebook 08, lib.stages.ladder) as data: one claim per
LADDER_CLAIMS entry, judged on its primary cell (params.yaml → 08_attack_ladder.primary), every other cell
(attack × metric) one secondary family. lib.claims.registry re-exports these names."""
from __future__ import annotations

from .verdicts import Claim, Comparison

# Claims of papers A and B that are about leakage, judged in the leakage regime (notebook 08) under every rung of the
# attack ladder (lib.stages.ladder.LADDER) and on two metrics. id → (paper, a setting, b setting, what the paper says);
# every one expects a < b (a leaks less). Setting ids are params.yaml → 08_attack_ladder.settings keys.
LADDER_CLAIMS = {
    "A: SNN < ANN": ("A", "snn", "ann", "SNNs are less vulnerable to membership inference than ANNs (abstract, §V)"),
    "A: SNN < ANN at the SNN's lr": ("A", "snn", "ann_snn_lr",
                                     "SNNs leak less than ANNs, the ANN trained at the SNN's learning rate (our control)"),
    "A: 2-bit < FP weights (ANN)": ("A", "ann_w2", "ann", "2-bit weight quantization lowers MIA AUC (ANN; §V-B)"),
    "A: 2-bit < FP weights (SNN)": ("A", "snn_w2", "snn", "2-bit weight quantization lowers MIA AUC (SNN; §V-B)"),
    "B1: Poisson-Burst < Rate": ("B", "snn_pb", "snn_rate", "Poisson-Burst lowers MIA AUC vs Rate (paper B, abstract)"),
}
LADDER_METRICS = {"auc": "AUC", "tpr_low": "TPR"}   # the TPR's label names its FPR (ladder.fpr_label)
LADDER_SEP = " · "   # a ladder comparison's label: "<dataset>: <a> vs <b> · <attack> · <metric label>"


def ladder_parts(label: str) -> tuple[str, str, str]:
    """(comparison, attack, metric label) of a ladder comparison's label; ("<label>", "", "") for any other."""
    return tuple((str(label).split(LADDER_SEP) + ["", ""])[:3])


def metric_label(metric: str, fpr: float | None = None) -> str:
    """"AUC", or "TPR at 10% FPR" (the FPR the TPR was actually read at)."""
    if metric == "tpr_low":
        return f"TPR at {100 * fpr:g}% FPR" if fpr is not None else "TPR (FPR unknown)"
    return LADDER_METRICS.get(metric, metric)


def check_ladder_primary(primary: dict, attacks, where: str = "08_attack_ladder.primary") -> None:
    """The primary cell declared for every ladder claim (params.yaml): a known claim id, one of the ladder's
    attacks, a metric of LADDER_METRICS and a reason. Raises ValueError naming the key."""
    if not isinstance(primary, dict) or set(primary) != set(LADDER_CLAIMS):
        raise ValueError(f"{where}: one entry per ladder claim {sorted(LADDER_CLAIMS)} is needed, got "
                         f"{sorted(primary) if isinstance(primary, dict) else primary!r}")
    for cid, p in primary.items():
        if not isinstance(p, dict) or p.get("attack") not in tuple(attacks) or p.get("metric") not in LADDER_METRICS \
                or not str(p.get("reason", "")).strip():
            raise ValueError(f"{where}.{cid}: expected {{attack: one of {list(attacks)}, metric: one of "
                             f"{list(LADDER_METRICS)}, reason: why, stated before looking}}, got {p!r}")


def ladder(datasets_of: dict, attacks, primary: dict, fpr_of: dict | None = None,
           metrics=tuple(LADDER_METRICS)) -> list[Claim]:
    """One claim per LADDER_CLAIMS entry on notebook 08's per-target table (columns dataset, setting, attack,
    target, auc, tpr_low, fpr_low; paired on target). Its comparisons are every cell (attack × metric) on every
    dataset where both settings ran; the cell `primary[claim]` ({attack, metric}, params.yaml → 08_attack_ladder.
    primary, declared before looking) is the claim's primary family and decides its verdict; every other cell is
    secondary, Holm-corrected as one family (lib.claims.verdicts). `datasets_of`: setting id → the datasets it was
    trained on; `fpr_of`: dataset → the FPR its TPR is read at (named in the comparison's label)."""
    check_ladder_primary(primary, attacks)
    fpr_of = fpr_of or {}
    out = []
    for cid, (paper, a, b, text) in LADDER_CLAIMS.items():
        common = [ds for ds in datasets_of.get(a, ()) if ds in set(datasets_of.get(b, ()))]
        if not common:
            continue
        p = primary[cid]
        comps = tuple(Comparison(LADDER_SEP.join((f"{ds}: {a} vs {b}", atk, metric_label(metric, fpr_of.get(ds)))),
                                 {"dataset": ds, "setting": a, "attack": atk},
                                 {"dataset": ds, "setting": b, "attack": atk}, "lower", metric=metric,
                                 family="primary" if (atk, metric) == (p["attack"], p["metric"]) else "secondary")
                      for atk in attacks for metric in metrics for ds in common)
        out.append(Claim(cid, paper, text, p["metric"], comps, pair_on=("target",),
                         source="paper A" if paper == "A" else "paper B",
                         shown_in=f"08: ladder (primary: {p['attack']}, {metric_label(p['metric'])})"))
    return out


__all__ = ["LADDER_CLAIMS", "LADDER_METRICS", "LADDER_SEP", "check_ladder_primary", "ladder", "ladder_parts",
           "metric_label"]
