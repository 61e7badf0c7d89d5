"""The papers' own published numbers, for side-by-side display. Never used as our results.

Paper A (arXiv 2502.18623), Table II: weight quantization; the "full precision" rows are the
unquantized models. Values are mean (± std) over the paper's runs, accuracies in %.
"""
from __future__ import annotations

import functools
import io

import pandas as pd

_TABLE_II = """dataset,method,kind,train_acc,train_acc_std,test_acc,test_acc_std,auc,auc_std
mnist,full precision,ann,99.96,0.03,99.21,0.01,0.5900,0.008
mnist,full precision,snn,99.95,0.05,99.22,0.02,0.5264,0.011
mnist,w=8,ann,99.88,0.05,99.16,0.02,0.5674,0.007
mnist,w=8,snn,99.93,0.03,99.16,0.03,0.5101,0.012
mnist,w=4,ann,99.85,0.04,99.12,0.04,0.5800,0.003
mnist,w=4,snn,99.91,0.02,99.21,0.05,0.5117,0.009
mnist,w=2,ann,99.57,0.02,99.07,0.03,0.5667,0.009
mnist,w=2,snn,99.88,0.03,99.11,0.04,0.4993,0.005
fmnist,full precision,ann,99.52,0.13,92.77,0.20,0.6400,0.011
fmnist,full precision,snn,99.42,0.32,92.44,0.19,0.5453,0.008
fmnist,w=8,ann,95.98,0.08,92.30,0.10,0.5397,0.010
fmnist,w=8,snn,96.49,0.91,92.00,0.10,0.5022,0.003
fmnist,w=4,ann,95.47,0.72,92.15,0.09,0.5406,0.005
fmnist,w=4,snn,96.44,0.53,91.97,0.17,0.4970,0.010
fmnist,w=2,ann,92.61,0.20,90.69,0.18,0.5295,0.004
fmnist,w=2,snn,93.37,0.51,91.36,0.18,0.5024,0.005
cifar10,full precision,ann,99.24,0.08,79.20,0.43,0.8200,0.095
cifar10,full precision,snn,99.13,0.45,78.99,0.33,0.5927,0.005
cifar10,w=8,ann,79.61,0.20,77.78,0.28,0.6800,0.015
cifar10,w=8,snn,72.37,0.44,73.39,0.13,0.5250,0.022
cifar10,w=4,ann,79.56,0.41,77.71,0.39,0.7000,0.021
cifar10,w=4,snn,72.54,0.29,72.92,0.51,0.5405,0.011
cifar10,w=2,ann,71.35,0.24,73.37,0.15,0.6200,0.015
cifar10,w=2,snn,66.41,1.09,68.59,0.55,0.5280,0.002
iris,full precision,ann,98.33,2.34,100.0,0.00,0.7700,0.13
iris,full precision,snn,100.0,0.00,100.0,0.00,0.5728,0.020
iris,w=8,ann,82.78,2.02,93.33,2.94,0.6500,0.070
iris,w=8,snn,79.44,7.33,95.56,1.92,0.5234,0.012
iris,w=4,ann,85.56,1.05,91.11,1.92,0.7163,0.160
iris,w=4,snn,84.17,2.47,94.44,3.06,0.5304,0.045
iris,w=2,ann,84.06,2.20,91.11,3.06,0.6400,0.013
iris,w=2,snn,81.94,4.18,92.22,6.71,0.5380,0.020
breast_cancer,full precision,ann,99.34,0.04,98.25,0.00,0.6500,0.008
breast_cancer,full precision,snn,100.0,0.00,98.25,0.24,0.5534,0.017
breast_cancer,w=8,ann,97.51,0.13,97.96,0.0,0.5500,0.006
breast_cancer,w=8,snn,99.09,0.64,98.25,0.00,0.4983,0.003
breast_cancer,w=4,ann,97.58,0.57,97.96,0.49,0.5404,0.010
breast_cancer,w=4,snn,97.69,0.36,97.66,0.51,0.5099,0.021
breast_cancer,w=2,ann,97.80,0.46,97.54,0.40,0.5800,0.013
breast_cancer,w=2,snn,97.87,0.48,97.37,0.00,0.5088,0.021
"""


def table_ii() -> pd.DataFrame:
    """Paper A, Table II, one row per (dataset, method, kind)."""
    return pd.read_csv(io.StringIO(_TABLE_II))


# Paper A, Table III: SNNs trained with five surrogate gradients (fast sigmoid slope 25, atan α = 2, spike rate
# escape β = 1 slope 25, triangular and STE at snntorch defaults). Transcribed from the paper's text; `method` is
# our surrogate key (lib.core.neurons.SURROGATES), accuracies in %, AUC to three decimals as printed.
_TABLE_III = """dataset,method,kind,train_acc,train_acc_std,test_acc,test_acc_std,auc,auc_std
mnist,fast_sigmoid,snn,99.88,0.01,99.22,0.04,0.518,0.001
mnist,atan,snn,99.96,0.02,99.25,0.06,0.547,0.006
mnist,spike_rate_escape,snn,99.97,0.01,99.25,0.03,0.508,0.008
mnist,triangular,snn,75.16,0.09,76.34,0.14,0.503,0.003
mnist,straight_through_estimator,snn,99.57,0.04,98.79,0.07,0.528,0.005
fmnist,fast_sigmoid,snn,99.45,0.04,91.97,0.12,0.518,0.008
fmnist,atan,snn,99.58,0.03,92.18,0.14,0.547,0.002
fmnist,spike_rate_escape,snn,99.74,0.09,92.23,0.11,0.523,0.016
fmnist,triangular,snn,78.79,0.24,79.49,0.20,0.498,0.011
fmnist,straight_through_estimator,snn,91.55,0.13,89.69,0.21,0.512,0.003
cifar10,fast_sigmoid,snn,82.90,0.46,78.04,0.40,0.535,0.010
cifar10,atan,snn,87.56,0.41,78.99,0.38,0.561,0.010
cifar10,spike_rate_escape,snn,89.92,0.39,79.95,0.33,0.567,0.013
cifar10,triangular,snn,21.43,0.76,23.92,0.86,0.550,0.036
cifar10,straight_through_estimator,snn,53.10,0.66,62.49,0.54,0.644,0.034
iris,fast_sigmoid,snn,82.50,2.46,90.00,6.34,0.654,0.022
iris,atan,snn,96.67,1.46,93.33,0.50,0.563,0.095
iris,spike_rate_escape,snn,96.67,1.00,100.00,0.00,0.543,0.036
iris,triangular,snn,100.00,0.00,100.00,0.00,0.510,0.029
iris,straight_through_estimator,snn,97.50,0.04,100.00,0.00,0.542,0.108
breast_cancer,fast_sigmoid,snn,100.00,0.00,100.00,0.00,0.494,0.013
breast_cancer,atan,snn,100.00,0.00,97.37,0.11,0.538,0.015
breast_cancer,spike_rate_escape,snn,100.00,0.00,97.37,0.11,0.512,0.026
breast_cancer,triangular,snn,97.58,0.12,98.25,0.00,0.497,0.022
breast_cancer,straight_through_estimator,snn,99.78,0.12,98.25,0.00,0.482,0.024
"""


def table_iii() -> pd.DataFrame:
    """Paper A, Table III, one row per (dataset, surrogate); `method` holds the surrogate key."""
    return pd.read_csv(io.StringIO(_TABLE_III))



# Paper C ("Bits for Privacy"): the numbers its text states (its figures' bars are not given as numbers).
# Table I is CIFAR-100 (10 seeds; full precision 70.22 %); the rest are quoted in §IV-B/C. TPRs are fractions.
_PAPER_C = """dataset,method,bits,last_bits,attack,metric,value,where
cifar100,adaround,1.58,1.58,,test_acc,62.35,Table I
cifar100,brecq,1.58,1.58,,test_acc,67.61,Table I
cifar100,obc,1.58,1.58,,test_acc,64.34,Table I
cifar100,adaround,1,1,,test_acc,1.00,Table I
cifar100,brecq,1,1,,test_acc,0.99,Table I
cifar100,obc,1,1,,test_acc,1.04,Table I
cifar100,full precision,32,32,,test_acc,70.22,Table I caption
cifar10,adaround,4,4,LiRA online,tpr_at_0_1pct,0.0790,§IV-B (vs 0.0776 full precision)
cifar10,full precision,32,32,LiRA online,tpr_at_0_1pct,0.0776,§IV-B
cifar10,obc,1.58,1.58,LiRA online,tpr_at_0_1pct,0.0173,§IV-B
cifar10,obc,1.58,1.58,LiRA offline,tpr_at_0_1pct,0.0077,§IV-B (offline fixed variance)
cifar10,brecq,2,2,,test_acc_drop,0.5,§IV-B (accuracy drop vs full precision)
cifar100,adaround,1.58,1.58,LiRA online,tpr_at_0_1pct,0.0031,§IV-B
cifar100,adaround,1.58,1.58,LiRA offline,tpr_at_0_1pct,0.0013,§IV-B (offline fixed variance)
cifar100,adaround,2,2,LiRA online,tpr_at_0_1pct,0.2196,§IV-B
tinyimagenet,adaround,2,8,,test_acc_drop,1.9,§IV-C decoupled (11 without)
tinyimagenet,adaround,1.58,8,,test_acc_drop,5.6,§IV-C decoupled (26 without)
"""


def paper_c() -> pd.DataFrame:
    """Paper C's stated numbers, one row per (dataset, method, bits, last_bits, attack, metric)."""
    return pd.read_csv(io.StringIO(_PAPER_C)).fillna({"attack": ""})


# Paper D (accuracy-robustness trade-off via SNN gradient sparsity), Tables 1–3: validation accuracy (%) under FGSM
# (ε 6/255) and PGD (ε 6/255, step 0.01, 7 iterations) on the encoded spikes, and clean. Table 1 is CIFAR-100; Table
# 2's CIFAR100 rows are its SNN-RAT and SEW-ResNet rows (same numbers), added by paper_d(). Table 3 = SEW-ResNets with average pooling; `delta` columns are the
# paper's bracketed change from max pooling (robust accuracy drops, clean accuracy rises). `defence` marks the
# defended SNNs the paper compares with (stage 07 builds one in SNN-RAT's manner on its own SEW: lib.attacks.rat).
_PAPER_D = """table,dataset,model,pool,defence,fgsm,pgd,clean,fgsm_delta,pgd_delta,clean_delta
1,cifar100,Input discretization,,yes,15.50,6.30,64.40,,,
1,cifar100,Hire-SNN,,yes,22.00,7.50,65.10,,,
1,cifar100,Vanilla VGG-11,,no,5.30,0.02,73.33,,,
1,cifar100,SNN-RAT VGG-11,,yes,25.86,10.38,70.89,,,
1,cifar100,SNN-RAT WRN-16,,yes,28.08,11.31,69.32,,,
1,cifar100,SEW-ResNet18,max,no,20.81,13.47,42.19,,,
1,cifar100,SEW-ResNet34,max,no,19.91,13.25,41.81,,,
1,cifar100,SEW-ResNet50,max,no,21.27,16.03,38.91,,,
1,cifar100,Spiking-ResNet18,max,no,13.36,11.15,23.23,,,
1,cifar100,Spiking-ResNet34,max,no,2.43,1.64,21.20,,,
1,cifar100,Spiking-ResNet50,max,no,3.32,2.44,20.56,,,
2,cifar10,SNN-RAT VGG-11,,yes,45.23,21.16,90.74,,,
2,cifar10,SNN-RAT WRN-16,,yes,50.78,22.71,92.69,,,
2,cifar10,SEW-ResNet18,max,no,46.99,34.33,73.78,,,
2,cifar10,SEW-ResNet34,max,no,49.20,36.98,74.16,,,
2,cifar10,SEW-ResNet50,max,no,51.09,40.55,73.34,,,
2,cifar10dvs,SNN-RAT VGG-11,,yes,36.22,19.02,71.77,,,
2,cifar10dvs,SNN-RAT WRN-16,,yes,40.16,17.11,76.12,,,
2,cifar10dvs,SEW-ResNet18,max,no,47.19,21.47,75.18,,,
2,cifar10dvs,SEW-ResNet34,max,no,49.03,18.65,75.29,,,
2,cifar10dvs,SEW-ResNet50,max,no,48.52,22.34,76.53,,,
3,cifar10,SEW-ResNet18,avg,no,45.71,25.72,75.76,-1.28,-8.61,1.98
3,cifar10,SEW-ResNet34,avg,no,48.72,29.82,76.17,-0.48,-7.16,2.01
3,cifar10,SEW-ResNet50,avg,no,49.88,33.29,75.28,-1.21,-7.26,1.94
3,cifar100,SEW-ResNet18,avg,no,17.93,8.65,43.32,-2.88,-4.82,1.13
3,cifar100,SEW-ResNet34,avg,no,20.07,10.37,44.58,-0.16,-2.88,2.77
3,cifar100,SEW-ResNet50,avg,no,22.02,13.37,43.40,-0.74,-2.66,4.49
3,cifar10dvs,SEW-ResNet18,avg,no,46.27,13.94,77.77,-0.92,-7.53,2.59
3,cifar10dvs,SEW-ResNet34,avg,no,47.66,12.54,76.43,-1.37,-6.11,1.14
3,cifar10dvs,SEW-ResNet50,avg,no,47.01,14.30,78.35,-1.51,-8.04,1.82
"""

# Paper D §4.3 / Fig. 5, quoted in the text: % zeros of the gradient, SEW-ResNet with max pooling.
PAPER_D_SPARSITY = {"IF neuron (surrogate)": 29.01, "max pooling": 37.88, "IF neuron with avg pooling (lowest)": 16.52}


def paper_d() -> pd.DataFrame:
    """Paper D's Tables 1–3 (accuracies in %), labelled as the paper's."""
    d = pd.read_csv(io.StringIO(_PAPER_D))
    t2 = d[(d.table == 1) & d.model.str.match(r"SNN-RAT|SEW-ResNet")].assign(table=2)
    d = pd.concat([d, t2], ignore_index=True)
    order = {"cifar10": 0, "cifar100": 1, "cifar10dvs": 2}
    return d.sort_values(["table", "dataset"], key=lambda c: c.map(order) if c.name == "dataset" else c,
                         kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- the paper's number behind each claim (notebook 99)

def _c_numbers() -> dict:
    c = paper_c()

    def pick(**where):
        m = pd.Series(True, index=c.index)
        for k, v in where.items():
            m &= c[k] == v
        return c[m]

    def txt(rows, label):
        return "; ".join(f"{label(r)} {r.value:g} ({r.dataset}, {r.where})" for r in rows.itertuples())

    tpr = lambda r: f"{r.method} {r.bits:g}-bit {r.attack} TPR@0.1%"   # noqa: E731
    acc = lambda r: f"{r.method} {r.bits:g}-bit accuracy"               # noqa: E731
    fp_acc = pick(method="full precision", metric="test_acc")
    return {
        "C1": txt(pick(metric="tpr_at_0_1pct", bits=4), tpr) + "; " + txt(
            pick(method="full precision", metric="tpr_at_0_1pct"), lambda r: "full precision TPR@0.1%"),
        "C4": txt(pick(metric="test_acc_drop", bits=2, last_bits=2), lambda r: f"{r.method} 2-bit accuracy drop"),
        "C5": txt(pick(metric="tpr_at_0_1pct", bits=1.58), tpr) + "; " + txt(
            pick(method="full precision", metric="tpr_at_0_1pct"), lambda r: "full precision TPR@0.1%"),
        "C6": txt(pick(metric="test_acc", bits=1.58), acc) + "; " + txt(fp_acc, lambda r: "full precision accuracy"),
        "C7": txt(pick(metric="test_acc", bits=1), acc) + " (chance 1%)",
        "C8": txt(pick(metric="test_acc_drop", last_bits=8), lambda r: f"{r.method} {r.bits:g}-bit, fc 8-bit, "
                                                                         "accuracy drop"),
    }


def _d_numbers() -> dict:
    d = paper_d()

    def row(table, dataset, model):
        r = d[(d.table == table) & (d.dataset == dataset) & (d.model == model)].iloc[0]
        return r

    sew = [f"SEW-ResNet{n}" for n in (18, 34, 50)]
    t2 = [row(2, "cifar10", m) for m in sew]
    rat = [row(2, "cifar10", f"SNN-RAT {m}") for m in ("VGG-11", "WRN-16")]
    vgg = row(1, "cifar100", "Vanilla VGG-11")
    t1_sew = [row(1, "cifar100", m) for m in sew]
    t1_spk = [row(1, "cifar100", m.replace("SEW", "Spiking")) for m in sew]
    t3 = [row(3, "cifar10", m) for m in sew]
    sl = lambda rows, col, fmt="{:.2f}": "/".join(fmt.format(getattr(r, col)) for r in rows)   # noqa: E731
    return {
        "D1": f"CIFAR-10 SEW-ResNet18/34/50 FGSM {sl(t2, 'fgsm')}, PGD {sl(t2, 'pgd')}; SNN-RAT VGG-11/WRN-16 FGSM "
              f"{sl(rat, 'fgsm')}, PGD {sl(rat, 'pgd')} (Table 2)",
        "D1a": f"CIFAR-100 SEW-ResNet18/34/50 FGSM {sl(t1_sew, 'fgsm')}, PGD {sl(t1_sew, 'pgd')}; undefended vanilla "
               f"VGG-11 FGSM {vgg.fgsm:.2f}, PGD {vgg.pgd:.2f} (Table 1)",
        "D2": f"CIFAR-100 PGD: Spiking-ResNet18/34/50 {sl(t1_spk, 'pgd')} vs SEW-ResNet18/34/50 {sl(t1_sew, 'pgd')} "
              "(Table 1)",
        "D3": f"CIFAR-10, avg- minus max-pool: FGSM {sl(t3, 'fgsm_delta', '{:+.2f}')}, PGD "
              f"{sl(t3, 'pgd_delta', '{:+.2f}')} (Table 3, SEW-ResNet18/34/50)",
        "D4": f"CIFAR-10, avg- minus max-pool: clean {sl(t3, 'clean_delta', '{:+.2f}')} (Table 3)",
        "D5b": f"max pooling {PAPER_D_SPARSITY['max pooling']:g}% zeros, eliminated with average pooling (§4.3)",
    }


_DS = {"mnist": "MNIST", "fmnist": "F-MNIST", "cifar10": "CIFAR-10", "iris": "Iris", "breast_cancer": "BC"}


def _a_numbers() -> dict:
    """Paper A's numbers behind the claims of 03 (Table II) and 04 (Table III), keyed (stage, claim id); 02's claims
    are about Fig. 2-3, which give no numbers."""
    t2 = table_ii().set_index(["dataset", "method", "kind"])
    t3 = table_iii().set_index(["dataset", "method"])
    dss = list(_DS)
    v = lambda ds, me, k, col="auc": t2.loc[(ds, me, k), col]   # noqa: E731
    fp = "full precision"

    def per_ds(f):
        return "; ".join(f"{_DS[ds]} {f(ds)}" for ds in dss)

    q = lambda k, col="auc", d=3: per_ds(lambda ds: f"FP {v(ds, fp, k, col):.{d}f}, w=8/4/2 " + "/".join(   # noqa: E731
        f"{v(ds, f'w={b}', k, col):.{d}f}" for b in (8, 4, 2)))
    acc = lambda k: per_ds(lambda ds: f"w=2 {v(ds, 'w=2', k, 'test_acc'):.2f} vs w=8 "   # noqa: E731
                           f"{v(ds, 'w=8', k, 'test_acc'):.2f}")
    ann_snn = per_ds(lambda ds: f"SNN {v(ds, fp, 'snn'):.3f} vs ANN {v(ds, fp, 'ann'):.3f}")
    w = "03_weight_quantization"
    out = {(w, "ANN: quantized < FP"): "AUC, ANN: " + q("ann"), (w, "SNN: quantized < FP"): "AUC, SNN: " + q("snn"),
           (w, "ANN: 2-bit lowest AUC"): "AUC, ANN: " + q("ann"), (w, "SNN: bit widths alike"): "AUC, SNN: " + q("snn"),
           (w, "ANN: 2-bit costs accuracy"): "test accuracy, ANN: " + acc("ann"),
           (w, "SNN: 2-bit costs accuracy"): "test accuracy, SNN: " + acc("snn"),
           (w, "SNN < ANN"): "full-precision AUC: " + ann_snn,
           (w, "FP SNN < quantized ANN"): "AUC: " + per_ds(lambda ds: f"FP SNN {v(ds, fp, 'snn'):.3f} vs ANN w=8/4/2 "
                                                           + "/".join(f"{v(ds, f'w={b}', 'ann'):.3f}" for b in (8, 4, 2)))}
    sur = "04_surrogate_gradients"
    s3 = lambda name, col="auc", d=3: per_ds(lambda ds: f"{t3.loc[(ds, name), col]:.{d}f} (others " + "/".join(   # noqa: E731
        f"{t3.loc[(ds, o), col]:.{d}f}" for o in t3.loc[ds].index if o != name) + ")")
    out.update({(sur, "spike rate escape: lowest AUC"): "AUC: " + s3("spike_rate_escape"),
                (sur, "atan: highest AUC"): "AUC: " + s3("atan"),
                (sur, "STE: vulnerable on CIFAR-10"): f"CIFAR-10 AUC {t3.loc[('cifar10', 'straight_through_estimator'), 'auc']:.3f}"
                                                      " (the highest of the five)",
                (sur, "fast sigmoid: best accuracy"): "test accuracy: " + s3("fast_sigmoid", "test_acc", 2),
                (sur, "triangular: poor accuracy"): "test accuracy: " + s3("triangular", "test_acc", 2)})
    lad = "08_attack_ladder"
    out.update({(lad, "A: SNN < ANN"): "full-precision AUC, shadow SVM (Table II): " + ann_snn,
                (lad, "A: SNN < ANN at the SNN's lr"): "— (our control; the paper trains the ANN at lr 1e-4)",
                (lad, "A: 2-bit < FP weights (ANN)"): "AUC, ANN: " + q("ann"),
                (lad, "A: 2-bit < FP weights (SNN)"): "AUC, SNN: " + q("snn"),
                (lad, "B1: Poisson-Burst < Rate"): "AUC lower by up to 6.5% (paper B, abstract)"})
    return out


# Paper B states its numbers in the text only (abstract, §V-D); claims B2-B5, B7, B11 have none.
PAPER_B_NUMBERS = {"B1": "AUC lower by up to 6.5% (abstract)", "B6": "GPU power 10–15% lower (abstract)",
                   "B8": "CPU memory 25–30% higher (§V)", "B9": "less than 1% degradation (§V-D)",
                   "B10": "drops by about 3% (§V-D)"}


@functools.lru_cache(maxsize=1)
def _numbers() -> tuple[dict, dict]:
    """(paper A's numbers by (stage, claim), the others by claim id), built once from the tables above."""
    return _a_numbers(), {**PAPER_B_NUMBERS, **_c_numbers(), **_d_numbers()}


def claim_numbers() -> dict:
    """{claim id: the paper's own number(s) behind it, as text built from the transcribed tables above}, for claims
    whose id is unique across stages (papers B, C, D). Claims whose number is only in a figure are absent."""
    return dict(_numbers()[1])


def claim_number(stage: str, claim: str) -> str:
    """The paper's own number behind `claim` of `stage`: paper A's claims by (stage, claim) (their ids repeat across
    02-04), 08's ladder claims by the claim before " · <attack> · <metric>", the others by id; "—" when the paper
    gives none (or only in a figure)."""
    a, other = _numbers()
    # the claim of a ladder id (lib.claims.registry.LADDER_SEP; not imported: 01-07 use this module without lib/attacks
    # among their dvc deps)
    base = str(claim).split(" · ")[0]
    return a.get((stage, claim)) or a.get((stage, base)) or other.get(base, "—")
