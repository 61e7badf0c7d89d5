"""The papers' quantitative claims as data (lib.claims.verdicts.Claim): wording, the metric, and the comparisons
that test each one. Notebooks build the claims for the grid they ran and judge them with
lib.claims.verdicts.evaluate; the rules of judgement live only there.

Paper A (notebooks 02–04, §V): comparisons pick rows of lib.stages.membership's results by dataset, kind, method
(and θ, output_quant); paired by seed. A claim that two configurations are "similar" is an equivalence test within
params.yaml → verdicts.margins[metric].
Paper B (notebook 05): every comparison is paired by seed (efficiency: by seed and model role), per dataset.
Papers A and B under the attack ladder (notebook 08): lib.claims.ladder_claims, re-exported here.
"""
from __future__ import annotations

from .ladder_claims import (LADDER_CLAIMS, LADDER_METRICS, LADDER_SEP, check_ladder_primary, ladder,  # noqa: F401
                            ladder_parts, metric_label)
from .verdicts import Claim, Comparison

# ============================================================================= paper A (arXiv 2502.18623, §V)

FULL_PRECISION = "full precision"   # the `method` of unquantized models in paper A's results (lib.stages.membership)


def comparison(label: str, a: dict, b: dict | None, expect: str, metric: str, margins: dict | None = None,
               claim: str = "comparisons") -> Comparison:
    """One comparison written as paper A's sentences put it: expect "similar" becomes an equivalence test within
    `margins[metric]` (params.yaml → verdicts.margins); lower/higher (and the other lib.claims.verdicts
    expectations) pass through."""
    if expect != "similar":
        return Comparison(label, a, b, expect)
    if not margins or metric not in margins:
        raise ValueError(f"claim {claim!r}: an equivalence margin for `{metric}` is needed "
                         "(params.yaml → verdicts.margins)")
    return Comparison(label, a, b, "equivalent", float(margins[metric]))


def _a(id_: str, text: str, metric: str, pairs, margins: dict | None, **kw) -> Claim:
    """A paper-A claim from its (label, a, b, expect) pairs."""
    return Claim(id_, "A", text, metric, tuple(comparison(label, a, b, e, metric, margins, id_)
                                              for label, a, b, e in pairs), **kw)


def _fp(ds, kind):
    """The single full-precision model (ANN: ReLU; SNN: θ = model.snn.threshold), not the FP SNN at each θ."""
    return dict(dataset=ds, kind=kind, method=FULL_PRECISION, act_threshold=None)


def _fp_at(ds, th):
    """The full-precision SNN trained at firing threshold θ (§V-A reference at the same θ)."""
    return dict(dataset=ds, kind="snn", method=FULL_PRECISION, act_threshold=float(th))


def _q(ds, kind, method, section, output_quant=True, **more):
    """A quantized configuration; §V-A SNN rows are told apart by output_quant (output membrane quantized or not)."""
    d = dict(dataset=ds, kind=kind, method=method, **more)
    if section == "act" and kind == "snn":
        d["output_quant"] = output_quant
    return d


def paper_a_quantization(section: str, datasets, bits, margins: dict | None, kinds=("ann", "snn"), thresholds=None,
                         output_variant: bool = False) -> list[Claim]:
    """The claims of §V-A (section 'act', method a=b, averaged over θ per seed; paper A Fig. 2–3) and §V-B (section
    'weight', method w=b; paper A Table II). Paired by seed. The paper's comparisons use the single full-precision
    model and (§V-A SNNs) the output-quantized SNN, as the paper's Fig. 2-3 do. `margins`: params.yaml →
    verdicts.margins (the "bit widths alike" claim is an equivalence test within margins['auc']).

    §V-A only: with `thresholds`, SNN quantized vs FP is also judged against the full-precision SNN at the SAME θ
    (one comparison per b and θ), since θ is the SNN's firing threshold too; with `output_variant`, the SNNs whose
    output layer's membrane is not quantized get their own claim rows ("SNN (output unquantized): …")."""
    m = "a" if section == "act" else "w"
    low = min(bits)
    others = [b for b in bits if b != low]
    top = max(bits)
    what = "activation" if section == "act" else "weight"
    act_snn = section == "act" and "snn" in kinds
    variants = [(True, "SNN", "")] + ([(False, "SNN (output unquantized)", " (output membrane unquantized)")]
                                      if act_snn and output_variant else [])
    # where the paper states it, and which of our figures / tables shows it
    src_auc, src_acc = ("paper A §V-A, Fig. 3", "paper A §V-A, Fig. 2") if section == "act" else \
        ("paper A §V-B, Table II",) * 2
    shown_auc, shown_acc = ("02: Fig. 3", "02: Fig. 2") if section == "act" else ("03: Table II",) * 2
    ours = " (our addition)"
    auc = dict(source=src_auc, shown_in=shown_auc)

    def A(id_, text, metric, pairs, **kw):
        return _a(id_, text, metric, pairs, margins, **kw)

    cl = []
    for kind in kinds:
        K = kind.upper()
        cl.append(A(f"{K}: quantized < FP", f"{what} quantization (every bit width) lowers MIA AUC below full "
                    f"precision in {K}s", "auc",
                    [(f"{ds} {m}={b} vs FP", _q(ds, kind, f"{m}={b}", section), _fp(ds, kind), "lower")
                     for ds in datasets for b in bits], **auc))
    if act_snn and thresholds:
        for oq, name, note in variants:
            cl.append(A(f"{name}: quantized < FP at the same θ",
                        "activation quantization (every bit width) lowers MIA AUC below full precision in SNNs; "
                        f"judged against the full-precision SNN trained at the same threshold θ{note}", "auc",
                        [(f"{ds} {m}={b} vs FP, θ={float(th):g}",
                          _q(ds, "snn", f"{m}={b}", section, oq, act_threshold=float(th)), _fp_at(ds, th), "lower")
                         for ds in datasets for b in bits for th in thresholds],
                        source=src_auc + ours, shown_in=shown_auc))
    if section == "act":
        cl.append(A(f"ANN: {low}-bit most vulnerable",
                    f"among quantized ANNs the {low}-bit model is the most vulnerable", "auc",
                    [(f"{ds} {m}={low} vs {m}={b}", dict(dataset=ds, kind="ann", method=f"{m}={low}"),
                      dict(dataset=ds, kind="ann", method=f"{m}={b}"), "higher") for ds in datasets for b in others],
                    **auc))
    else:
        cl.append(A(f"ANN: {low}-bit lowest AUC", f"{low}-bit weight-quantized ANNs have the lowest AUC", "auc",
                    [(f"{ds} {m}={low} vs {m}={b}", dict(dataset=ds, kind="ann", method=f"{m}={low}"),
                      dict(dataset=ds, kind="ann", method=f"{m}={b}"), "lower") for ds in datasets for b in others],
                    **auc))
    if "snn" in kinds:
        for oq, name, note in (variants if section == "act" else [(True, "SNN", "")]):
            cl.append(A(f"{name}: bit widths alike", f"quantized SNNs show similar AUC at every bit width{note}", "auc",
                        [(f"{ds} {m}={b} vs {m}={top}", _q(ds, "snn", f"{m}={b}", section, oq),
                          _q(ds, "snn", f"{m}={top}", section, oq), "similar")
                         for ds in datasets for b in bits if b != top],
                        source=src_auc + (ours if not oq else ""), shown_in=shown_auc))
    for kind in kinds:
        K = kind.upper()
        cl.append(A(f"{K}: {low}-bit costs accuracy", f"the largest accuracy drop is at {low} bits ({K})", "test_acc",
                    [(f"{ds} {m}={low} vs {m}={top}", _q(ds, kind, f"{m}={low}", section),
                      _q(ds, kind, f"{m}={top}", section), "lower") for ds in datasets],
                    source=src_acc, shown_in=shown_acc))
    if set(kinds) >= {"ann", "snn"}:
        methods = [FULL_PRECISION] + [f"{m}={b}" for b in bits]
        cl.append(A("SNN < ANN", "SNNs are less vulnerable than ANNs at every quantization level", "auc",
                    [(f"{ds} {me}", _fp(ds, "snn") if me == FULL_PRECISION else _q(ds, "snn", me, section),
                      _fp(ds, "ann") if me == FULL_PRECISION else _q(ds, "ann", me, section), "lower")
                     for ds in datasets for me in methods], **auc))
        for oq, name, note in variants[1:]:
            cl.append(A(f"{name} < ANN", f"SNNs are less vulnerable than ANNs at every quantization level{note}", "auc",
                        [(f"{ds} {m}={b}", _q(ds, "snn", f"{m}={b}", section, oq), _q(ds, "ann", f"{m}={b}", section),
                          "lower") for ds in datasets for b in bits], source=src_auc + ours, shown_in=shown_auc))
        cl.append(A("FP SNN < quantized ANN",
                    "even full-precision SNNs are less vulnerable than quantized ANNs at any bit width", "auc",
                    [(f"{ds} SNN FP vs ANN {m}={b}", _fp(ds, "snn"), dict(dataset=ds, kind="ann", method=f"{m}={b}"),
                      "lower") for ds in datasets for b in bits], **auc))
    return cl


def paper_a_threshold_accuracy(datasets, bits, margins: dict | None, output_variant: bool = False) -> list[Claim]:
    """§V-A accuracy claims about θ (paper A Fig. 2): ANN accuracy stable across θ (equivalence within
    margins['test_acc']); SNN 4/8-bit accuracy rises with θ (the output-quantized SNNs of the paper; with
    `output_variant` also the SNNs whose output membrane is unquantized)."""
    snn = [(True, "SNN", "")] + ([(False, "SNN (output unquantized)", " (output membrane unquantized)")]
                                 if output_variant else [])
    where = dict(source="paper A §V-A, Fig. 2", shown_in="02: Fig. 2")
    return [
        _a("ANN: θ barely matters", "ANN accuracy is stable across thresholds at each bit width", "test_acc",
           [(f"{ds} a={b} θmax vs θmin", dict(dataset=ds, kind="ann", method=f"a={b}", act_threshold="max"),
             dict(dataset=ds, kind="ann", method=f"a={b}", act_threshold="min"), "similar")
            for ds in datasets for b in bits], margins, **where),
    ] + [
        _a(f"{name}: higher θ, higher accuracy (4/8-bit)",
           f"for 4- and 8-bit SNNs higher thresholds improve accuracy{note}", "test_acc",
           [(f"{ds} a={b} θmax vs θmin", _q(ds, "snn", f"a={b}", "act", oq, act_threshold="max"),
             _q(ds, "snn", f"a={b}", "act", oq, act_threshold="min"), "higher")
            for ds in datasets for b in bits if b >= 4], margins,
           **{**where, "source": where["source"] + ("" if oq else " (our addition)")})
        for oq, name, note in snn]


def paper_a_surrogates(datasets, surrogates, margins: dict | None = None) -> list[Claim]:
    """§V-C (paper A Table III): spike rate escape lowest AUC, atan highest, STE vulnerable on CIFAR-10, fast sigmoid
    most accurate, triangular least accurate (each against every other of the paper's surrogates that ran)."""
    def s(ds, name):
        return dict(dataset=ds, kind="snn", method=name)
    five = list(surrogates)

    def vs(name, expect, metric_datasets):
        return [(f"{ds} {name} vs {o}", s(ds, name), s(ds, o), expect)
                for ds in metric_datasets for o in five if o != name]

    def A(id_, text, metric, pairs):
        return _a(id_, text, metric, pairs, margins, source="paper A §V-C, Table III", shown_in="04: Table III")

    cl = []
    if "spike_rate_escape" in five:
        cl.append(A("spike rate escape: lowest AUC",
                    "spike rate escape is the most resilient surrogate (lowest AUC) across most datasets", "auc",
                    vs("spike_rate_escape", "lower", datasets)))
    if "atan" in five:
        cl.append(A("atan: highest AUC", "arctangent often shows the highest vulnerability", "auc",
                    vs("atan", "higher", datasets)))
    if "straight_through_estimator" in five:
        cl.append(A("STE: vulnerable on CIFAR-10",
                    "STE exhibits high vulnerability on complex datasets such as CIFAR-10", "auc",
                    vs("straight_through_estimator", "higher", [d for d in datasets if d == "cifar10"])))
    if "fast_sigmoid" in five:
        cl.append(A("fast sigmoid: best accuracy", "fast sigmoid consistently delivers the best accuracy", "test_acc",
                    vs("fast_sigmoid", "higher", datasets)))
    if "triangular" in five:
        cl.append(A("triangular: poor accuracy", "triangular performs poorly across datasets", "test_acc",
                    vs("triangular", "lower", datasets)))
    return cl


# ============================================================================= paper B

PB, DB = "poisson_burst", "delayed_burst"

# Paper B's claims as the paper states them (abstract, §V).
PAPER_B = {
    "B1": "Poisson-Burst lowers MIA AUC vs Rate (paper: by up to 6.5%)",
    "B2": "Poisson-Burst keeps competitive accuracy vs Rate",
    "B3": "Delayed-Burst gives stronger privacy (lower AUC than Rate and Poisson-Burst)",
    "B4": "Delayed-Burst costs more accuracy (lower than Rate and Poisson-Burst)",
    "B5": "Poisson-Burst's gain survives an attack on the whole membrane trace (paper's own break condition)",
    "B6": "Poisson-Burst lowers GPU power by 10–15% vs Rate",
    "B7": "Poisson-Burst lowers memory vs Rate (paper: GPU memory)",
    "B8": "Delayed-Burst uses 25–30% more memory than Rate",
    "B9": "Poisson-Burst keeps transfer MNIST → Fashion-MNIST within 1% of training from scratch",
    "B10": "Delayed-Burst loses more under transfer (paper: ~3%) than Poisson-Burst",
    "B11": "The privacy ordering Poisson-Burst < Rate holds across τ and λ (paper's open question)",
}
TRANSFER_MARGIN = 1.0   # B9: "within 1%" of training from scratch, in accuracy points
MEMORY_SCOPE = "CPU allocator, dense tensors"   # B7/B8 measured without a GPU (see paper_b)


def paper_b(datasets, encodings, baseline: str, margins: dict, *, transfer_encodings=(), sweep=(),
            gpu: bool = False, memory_metric: str = "step_alloc_mb", trace: bool = True) -> list[Claim]:
    """Claims B1–B11 for the grid that ran. `baseline` is the encoding paper B calls Rate; `margins` are
    params.yaml → verdicts.margins (B2 reads "competitive accuracy" as non-inferiority within margins['test_acc']);
    `sweep` holds (dataset, encoding, constant, value) of the sweep points that ran; `memory_metric` is the
    efficiency column memory claims are judged on (a repeatable one)."""
    rt, encs = baseline, set(encodings)

    def enc(ds, e, **kw):
        return {"dataset": ds, "encoding": e, **kw}

    def per_ds(label, a, b, expect, margin=None, need=()):
        return tuple(Comparison(f"{ds}: {label}", enc(ds, a), enc(ds, b), expect, margin)
                     for ds in datasets if {a, b, *need} <= encs)

    m_acc = float(margins["test_acc"])
    out = [
        Claim("B1", "B", PAPER_B["B1"], "auc", per_ds(f"PB vs {rt}", PB, rt, "lower"), shown_in="05: accuracy vs AUC"),
        Claim("B2", "B", PAPER_B["B2"], "test_acc", per_ds(f"PB vs {rt}", PB, rt, "above", -m_acc),
              shown_in="05: accuracy table"),
        Claim("B3", "B", PAPER_B["B3"], "auc", per_ds(f"DB vs {rt}", DB, rt, "lower", need=(PB,))
              + per_ds("DB vs PB", DB, PB, "lower", need=(rt,)), shown_in="05: accuracy vs AUC"),
        Claim("B4", "B", PAPER_B["B4"], "test_acc", per_ds(f"DB vs {rt}", DB, rt, "lower", need=(PB,))
              + per_ds("DB vs PB", DB, PB, "lower", need=(rt,)), shown_in="05: accuracy table"),
    ]
    if trace:
        out.append(Claim("B5", "B", PAPER_B["B5"], "trace_auc", per_ds(f"PB vs {rt}, trace features", PB, rt, "lower"),
                         shown_in="05: final-step vs trace attack"))
    out.append(Claim("B6", "B", PAPER_B["B6"], "gpu_mean_power_w",
                     per_ds(f"PB vs {rt}, GPU power", PB, rt, "lower") if gpu else (), pair_on=("seed", "role"),
                     table="efficiency", note="" if gpu else "not testable here: no GPU (recorded n/a)"))
    # On a CPU every spiking encoding feeds the network a dense tensor of the same shape: the bytes a training step
    # allocates cannot differ between encodings, whatever the paper's GPU memory does. The verdict is kept, scoped.
    scope = "" if gpu else MEMORY_SCOPE
    out += [
        Claim("B7", "B", PAPER_B["B7"], memory_metric, per_ds(f"PB vs {rt}", PB, rt, "lower"), pair_on=("seed", "role"),
              table="efficiency", shown_in="05: efficiency", scope=scope),
        Claim("B8", "B", PAPER_B["B8"], memory_metric, per_ds(f"DB vs {rt}", DB, rt, "higher"),
              pair_on=("seed", "role"), table="efficiency", shown_in="05: efficiency", scope=scope),
    ]
    tenc = set(transfer_encodings)
    out += [
        Claim("B9", "B", PAPER_B["B9"], "drop",
              (Comparison("PB: scratch − transfer (points)", {"encoding": PB}, None, "below", TRANSFER_MARGIN),)
              if PB in tenc else (), table="transfer", shown_in="05: transfer"),
        Claim("B10", "B", PAPER_B["B10"], "drop",
              (Comparison("DB drop vs PB drop (points)", {"encoding": DB}, {"encoding": PB}, "higher"),)
              if {PB, DB} <= tenc else (), table="transfer", shown_in="05: transfer"),
        Claim("B11", "B", PAPER_B["B11"], "auc",
              tuple(Comparison(f"{ds}: PB {const}={val:g} vs {rt}",
                               {"dataset": ds, "encoding": PB, "constant": const, "value": val},
                               {"dataset": ds, "encoding": rt, "constant": "none"}, "lower")
                    for ds, e, const, val in sweep if e == PB), table="sweep", shown_in="05: sweep"),
    ]
    return out


# ============================================================================= paper C

PAPER_C = {
    "C1": "4-bit PTQ leaks as much as full precision (TPR at low FPR comparable)",
    "C2": "4-bit PTQ keeps full-precision accuracy",
    "C3": "2-bit PTQ lowers leakage vs full precision",
    "C4": "2-bit PTQ costs (some) accuracy vs full precision",
    "C5": "1.58-bit PTQ lowers TPR@low FPR by an order of magnitude vs full precision",
    "C6": "1.58-bit PTQ costs accuracy vs full precision",
    "C7": "1-bit (sign) quantization collapses to chance accuracy (Table I)",
    "C8": "An 8-bit last layer (decoupled) recovers accuracy at low bits",
    "C9": "Decoupled low-bit models still leak less than full precision",
    "C10": "BRECQ 1.58-bit matches AdaRound/OBC 2-bit accuracy with lower leakage (best trade-off)",
    "C11": "BRECQ 1.58-bit leakage varies more across runs than AdaRound's and OBC's",
}


PAPER_C_METHODS = ("adaround", "brecq", "obc")   # the PTQ methods paper C evaluates; its claims range over these


def paper_c(methods, bits, decoupled_bits, tpr_metric: str, margins: dict, *, attacks=("LiRA online", "LiRA offline"),
            bn_source: str = "members", last_bits: float = 8, n_classes: int = 10,
            variance_note: str = "", magnitude_note: str = "", variance_class: str = "not tested") -> list[Claim]:
    """Claims C1–C11 for the grid that ran, on a per-target table (lib.stages.ptq_privacy: one row per target ×
    configuration × attack, runs averaged), paired by target. `tpr_metric` is the TPR column the privacy claims
    are judged on (tpr_at_0_1pct when the per-target non-member count resolves it, else tpr_at_1pct); C5's "order
    of magnitude" is log10 of it below −1 (a one-sided test of a − b < −1). C7 tests test_acc − chance for
    equivalence with 0 within margins['test_acc']; C11 (a spread, not a mean) is judged in the notebook and given
    here as `variance_note` with its class `variance_class` (lib.claims.verdicts.CLASSES). `magnitude_note`
    replaces C5's test when the notebook finds it cannot be decided (a tenfold drop from full precision would fall
    below chance, TPR = FPR). Equivalence margins: params.yaml →
    verdicts.margins."""
    ptq = [m for m in methods if m in PAPER_C_METHODS]   # round-to-nearest (our baseline) and GPTQ are not paper C's
    bset = set(bits)

    def q(m, b, lb=None, atk=None):
        d = {"method": m, "bits": b, "last_bits": b if lb is None else lb, "shadows": "fp",
             "bn_source": bn_source if m == "obc" else ""}
        return {**d, "attack": atk or attacks[0]}

    def fp(atk=None):
        return {"method": FULL_PRECISION, "attack": atk or attacks[0]}

    def leak(b, expect, margin=None, metric=tpr_metric):
        return tuple(Comparison(f"{m} {b:g}-bit vs FP, {atk}", q(m, b, atk=atk), fp(atk), expect, margin)
                     for m in ptq for atk in attacks) if b in bset else ()

    def acc(b, expect, margin=None):
        return tuple(Comparison(f"{m} {b:g}-bit vs FP", q(m, b), fp(), expect, margin) for m in ptq) if b in bset else ()

    m_acc, m_tpr = float(margins["test_acc"]), margins.get(tpr_metric)
    if m_tpr is None:
        raise ValueError(f"claim C1: an equivalence margin for `{tpr_metric}` is needed (params.yaml → verdicts.margins)")
    dec = [b for b in decoupled_bits if b in bset]
    C = lambda id_, metric, comps, **kw: Claim(id_, "C", PAPER_C[id_], metric, comps, pair_on=("target",),  # noqa: E731
                                               table="per_target", **kw)
    out = [
        C("C1", tpr_metric, leak(4, "equivalent", float(m_tpr)), source="Fig. 3", shown_in="06: Fig. 3"),
        C("C2", "test_acc", acc(4, "equivalent", m_acc), source="Fig. 2", shown_in="06: Fig. 2"),
        C("C3", tpr_metric, leak(2, "lower"), source="Fig. 3", shown_in="06: Fig. 3"),
        C("C4", "test_acc", acc(2, "lower"), source="Fig. 2", shown_in="06: Fig. 2"),
        C("C5", f"log10_{tpr_metric}", leak(1.58, "below", -1.0), source="abstract, Fig. 3", shown_in="06: Fig. 3",
          note=magnitude_note),
        C("C6", "test_acc", acc(1.58, "lower"), source="Fig. 2", shown_in="06: Fig. 2"),
        C("C7", "acc_over_chance", tuple(Comparison(f"{m} 1-bit: accuracy − chance ({100 / n_classes:g}%)", q(m, 1),
                                                    None, "equivalent", m_acc) for m in ptq) if 1 in bset else (),
          source="Table I (CIFAR-100)", shown_in="06: Table I"),
        C("C8", "test_acc", tuple(Comparison(f"{m} {b:g}-bit: fc {last_bits:g}-bit vs not", q(m, b, last_bits),
                                             q(m, b), "higher") for m in ptq for b in dec),
          source="Fig. 4a", shown_in="06: Fig. 4"),
        C("C9", tpr_metric, tuple(Comparison(f"{m} {b:g}-bit, fc {last_bits:g}-bit vs FP, {atk}",
                                             q(m, b, last_bits, atk), fp(atk), "lower")
                                  for m in ptq for b in dec for atk in attacks), source="Fig. 4b", shown_in="06: Fig. 4"),
    ]
    c10 = []
    if {"brecq"} <= set(ptq) and {1.58, 2} <= bset:
        for other in [m for m in ("adaround", "obc") if m in ptq]:
            c10.append(Comparison(f"BRECQ 1.58-bit vs {other} 2-bit: accuracy (non-inferior)", q("brecq", 1.58),
                                  q(other, 2), "above", -m_acc))
    out.append(C("C10", "test_acc", tuple(c10), source="§IV-B", shown_in="06: Fig. 2, Fig. 6"))
    c10b = tuple(Comparison(f"BRECQ 1.58-bit vs {other} 2-bit, {atk}", q("brecq", 1.58, atk=atk), q(other, 2, atk=atk),
                            "lower") for other in ("adaround", "obc") if other in ptq and "brecq" in ptq
                 and {1.58, 2} <= bset for atk in attacks)
    out.append(Claim("C10b", "C", PAPER_C["C10"] + " — the leakage half", tpr_metric, c10b, pair_on=("target",),
                     table="per_target", source="§IV-B", shown_in="06: Fig. 3, Fig. 6"))
    out.append(C("C11", tpr_metric, (), source="Fig. 6, §IV-C", shown_in="06: Fig. 6",
                 note=variance_note or "not testable here: needs several calibration runs (ptq.runs ≥ 3)",
                 note_class=variance_class if variance_note else "not tested"))
    return out


# ============================================================================= paper D (notebook 07)

PAPER_D = {
    "D1": "Undefended SEW-ResNets are about as robust under FGSM and PGD as an adversarially defended SNN (SNN-RAT, "
          "Ding et al. 2022; Tables 1–2: SOTA-level accuracy without a defence), here also under the worst case of "
          "the masking checks",
    "D1a": "Undefended SEW-ResNets keep more accuracy under FGSM and PGD than an undefended non-spiking net (Table 1's "
           "vanilla VGG-11; here the ANN twin)",
    "D1b": "(ours, beyond the paper) SEW-ResNets stay more robust than the ANN twin when both are attacked on the "
           "image (worst case over the image-space attacks, same images)",
    "D2": "Spiking-ResNets do not share that robustness: lower FGSM / PGD accuracy than SEW-ResNets (Table 1)",
    "D3": "Average pooling in place of max pooling lowers FGSM and PGD accuracy (Table 3)",
    "D4": "Average pooling raises clean accuracy (Table 3)",
    "D5": "Average pooling densifies the input gradient: fewer exact zeros (Fig. 5)",
    "D5b": "Average pooling eliminates the zeros of the pooling layer's gradient (Fig. 5: −37.88 points)",
    "D6": "The robustness is the model's, not the attack's (the paper's reading, which it doubts itself): attacks "
          "stronger than the authors' PGD take no more than the margin off it",
}


def paper_d(groups, margins: dict, *, masking_models=(), attacks=("FGSM", "PGD"), pair_on=("seed",),
            worst_label: str = "worst case, spike space", image_worst: str = "worst case, image space",
            reference: str = "PGD", stated_pool_drop: float | None = None) -> list[Claim]:
    """Claims D1–D6 for the nets that ran. `groups`: one dict per architecture with the names of its nets under
    the roles "sew" (max-pool), "sew_avg", "spiking", "ann", "sew_rat" (the adversarially trained SEW; missing roles
    drop their comparisons). D1 is a non-inferiority test (the paper: "comparable to SOTA defense methods"): the
    undefended SEW's accuracy − the defended SEW's > −margins['test_acc'], under the authors' FGSM and PGD and, for
    architectures whose two SEWs both ran the masking checks, under the spike-space worst case. Accuracy claims
    read the per-entry table ("accuracy": model, seed, group, attack, test_acc, n_eval, examples; group "paper" = the
    authors' protocol on the attacked set, group "worst" = the masking subset), paired on training seed and, within
    it, on the same attacked images (its per-example outcomes); with one training seed the verdict says the noise
    covers the test set only. The sparsity claims read one row per net ("sparsity": input_zero_pct, pool_zero_pct and
    their SEs over batches of images). D5b is structural (max pooling passes the gradient to one input per window, so
    the pool's zeros vanish with average pooling by construction): its comparison judges the paper's stated drop
    `stated_pool_drop` (points, avg − max) within ±margins['pool_zero_pct']. D6 is a non-inferiority test within
    the authors' threat model: worst case over every spike-space attack − the authors' PGD > −margins['test_acc'] on
    the same examples. D1b compares SEW and ANN in the one threat model they share (the image), worst case against
    worst case, for architectures whose SEW and ANN both ran the masking checks."""
    m_acc = float(margins["test_acc"])

    def row(name, atk, group="paper"):
        return {"model": name, "attack": atk, "group": group}

    def comps(role_a, role_b, atks, expect, margin=None):
        return tuple(Comparison(f"{g[role_a]} vs {g[role_b]}, {atk}", row(g[role_a], atk), row(g[role_b], atk), expect,
                                margin) for g in groups if g.get(role_a) and g.get(role_b) for atk in atks)

    def sp(role_a, role_b, expect, **kw):
        return tuple(Comparison(f"{g[role_a]} vs {g[role_b]}" + (f" (paper: {kw['centre']:+g})" if "centre" in kw else ""),
                                {"model": g[role_a]}, {"model": g[role_b]}, expect, **kw)
                     for g in groups if g.get(role_a) and g.get(role_b))

    D = lambda id_, metric, cs, table="accuracy", **kw: Claim(id_, "D", PAPER_D[id_], metric, cs,  # noqa: E731
                                                              pair_on=tuple(pair_on), table=table, **kw)
    d5b = sp("sew_avg", "sew", "equivalent", margin=float(margins["pool_zero_pct"]), centre=float(stated_pool_drop)) \
        if stated_pool_drop is not None else ()
    return [
        D("D1", "test_acc", comps("sew", "sew_rat", attacks, "above", margin=-m_acc) + tuple(
            Comparison(f"{g['sew']} vs {g['sew_rat']}, {worst_label}", row(g["sew"], worst_label, "worst"),
                       row(g["sew_rat"], worst_label, "worst"), "above", -m_acc)
            for g in groups if g.get("sew") in masking_models and g.get("sew_rat") in masking_models),
          source="Tables 1–2", shown_in="07: Tables 1–2"),
        D("D1a", "test_acc", comps("sew", "ann", attacks, "higher"),
          source="Table 1 (vanilla VGG-11)", shown_in="07: Tables 1–2"),
        D("D1b", "test_acc", tuple(Comparison(f"{g['sew']} vs {g['ann']}, {image_worst}", row(g["sew"], image_worst, "worst"),
                                              row(g["ann"], image_worst, "worst"), "higher")
                                   for g in groups if g.get("sew") in masking_models and g.get("ann") in masking_models),
          source="ours", shown_in="07: masking checks"),
        D("D2", "test_acc", comps("sew", "spiking", attacks, "higher"), source="Table 1", shown_in="07: Tables 1–2"),
        D("D3", "test_acc", comps("sew_avg", "sew", attacks, "lower"), source="Table 3", shown_in="07: Table 3"),
        D("D4", "test_acc", comps("sew_avg", "sew", ("clean",), "higher"), source="Table 3", shown_in="07: Table 3"),
        D("D5", "input_zero_pct", sp("sew_avg", "sew", "lower"), table="sparsity", source="Fig. 5",
          shown_in="07: Fig. 5", equal_text="no zeros in either (a = b = 0% of the input gradient)"),
        D("D5b", "pool_zero_pct", d5b, table="sparsity", source="Fig. 5", shown_in="07: Fig. 5",
          structural="max pooling passes the gradient to one input per window: average pooling removes those zeros "
                     "by construction"),
        D("D6", "test_acc", tuple(Comparison(f"{name}: {worst_label} − {reference}", row(name, worst_label, "worst"),
                                             row(name, reference, "worst"), "above", -m_acc)
                                  for name in masking_models if any(name in (g.get("sew"), g.get("sew_avg"),
                                                                                       g.get("spiking")) for g in groups)),
          source="§4.2 (\"we suspect … obfuscated gradient\")", shown_in="07: masking checks"),
    ]


__all__ = ["FULL_PRECISION", "comparison", "paper_a_quantization", "paper_a_threshold_accuracy",
           "paper_a_surrogates", "PAPER_B", "TRANSFER_MARGIN", "MEMORY_SCOPE", "paper_b", "PAPER_C", "paper_c", "PAPER_D", "paper_d",
           "LADDER_CLAIMS", "LADDER_METRICS", "LADDER_SEP", "check_ladder_primary", "ladder", "ladder_parts", "metric_label"]
