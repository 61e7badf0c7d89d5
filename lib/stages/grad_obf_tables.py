"""Paper D's tables (notebook 07): the per-attack entries of lib.stages.grad_obf as accuracy tables with Wilson
intervals, the worst cases and the masking table, the rows and per-example outcomes the claims read
(lib.claims.registry.paper_d), the sparsity rows, and the readings the notebook prints. Pure functions of the
entries and frames: nothing here trains or attacks."""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ..claims import published as paper
from ..claims import registry as CL
from ..claims import verdicts as V
from . import grad_obf as G

WORST = {"spikes": "worst case, spike space", "image": "worst case, image space"}
OUTCOMES = {"test_acc": V.Outcome("eval", "accuracy", scale=100.0)}
STEM_KERNEL = {"imagenet": 7, "cifar": 3}      # lib.core.sew's stem convolutions


# ----------------------------------------------------------------------------- accuracy with intervals

def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of k/n, in %."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(method="wilson")
    return 100 * ci.low, 100 * ci.high


def summary(entries: list[dict]) -> pd.DataFrame:
    """One row per entry: accuracy (%) over its examples with a 95% Wilson interval."""
    rows = []
    for e in entries:
        k, n = int(e["correct"].sum()), len(e["correct"])
        lo, hi = wilson(k, n)
        rows.append({**{c: v for c, v in e.items() if c != "correct"}, "n_eval": n, "test_acc": 100 * k / max(n, 1),
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def cells(attacks: pd.DataFrame) -> pd.DataFrame:
    """Tables 1–2 layout of `summary` rows: per (model, seed), "acc [ci_low, ci_high]" for FGSM, PGD, clean."""
    t = attacks.assign(cell=[f"{r.test_acc:.1f} [{r.ci_low:.1f}, {r.ci_high:.1f}]" for r in attacks.itertuples()])
    t = t.pivot_table(index=["model", "seed"], columns="attack", values="cell", aggfunc="first", sort=False)
    t = t[["FGSM", "PGD", "clean"]]
    t.columns = [f"{c} (ours, %)" for c in t.columns]
    return t


def table3(attacks: pd.DataFrame, groups: list[dict], seed: int) -> pd.DataFrame:
    """Table 3 layout (training seed `seed`): each avg-pool SEW net's FGSM / PGD / clean accuracy and, in brackets,
    its change from the max-pool SEW net of the same architecture. Empty without such pairs."""
    pt = attacks[attacks.seed == seed].pivot_table(index="model", columns="attack", values="test_acc")
    rows = [{"model": g["sew_avg"], **{f"{c} (ours, %)": f"{pt.loc[g['sew_avg'], c]:.1f} "
                                                         f"({pt.loc[g['sew_avg'], c] - pt.loc[g['sew'], c]:+.1f})"
                                       for c in ("FGSM", "PGD", "clean")}}
            for g in groups if g.get("sew") and g.get("sew_avg")]
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def paper_table3_range(pap: pd.DataFrame) -> str:
    """The range of the paper's CIFAR-10 Table 3 brackets (avg − max pooling), per attack."""
    p3 = pap[(pap.table == 3) & (pap.dataset == "cifar10")]
    return ", ".join(f"{c.upper() if c != 'clean' else c} {p3[c + '_delta'].min():+.2f} to "
                     f"{p3[c + '_delta'].max():+.2f}" for c in ("fgsm", "pgd", "clean"))


def brackets(pap: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The paper's Table 3 brackets against its own Table 2 (avg-pool minus max-pool accuracy, computed): the
    comparison table and a sentence naming the rows that disagree."""
    chk = pap[pap.table == 3].merge(pap[(pap.table == 2) & (pap.pool == "max")], on=["dataset", "model"],
                                    suffixes=("", "_max"))
    agree = True
    for c in ("fgsm", "pgd", "clean"):
        chk[f"{c}: Table 3 − Table 2"] = (chk[c] - chk[f"{c}_max"]).round(2)
        agree = agree & np.isclose(chk[f"{c}: Table 3 − Table 2"], chk[f"{c}_delta"])
    chk["brackets agree"] = agree
    bad = chk[~chk["brackets agree"]]
    text = "Paper D's own tables: " + ("all Table 3 brackets equal Table 3 − Table 2." if bad.empty else
        f"**{len(bad)} of {len(chk)} Table 3 rows disagree with Table 2**: " + "; ".join(
            f"{r.dataset} {r.model} FGSM avg-pool {r.fgsm:.2f} vs max-pool {r.fgsm_max:.2f} (Table 2) is "
            f"{r.fgsm - r.fgsm_max:+.2f}, the bracket says {r.fgsm_delta:+.2f}" for r in bad.itertuples())
        + ". On those rows the paper's own numbers show average pooling *raising* FGSM accuracy, against its text.")
    cols = ["dataset", "model", "fgsm: Table 3 − Table 2", "fgsm_delta", "pgd: Table 3 − Table 2", "pgd_delta",
            "clean: Table 3 − Table 2", "clean_delta", "brackets agree"]
    return chk[cols], text


# ----------------------------------------------------------------------------- worst cases, masking

def worst_case(net: G.Net, entries: list[dict], n: int, space: str) -> dict:
    """An example counts as robust only if every attack run on `net` in threat model `space` ("spikes": ε-ball
    around the encoded spike tensor, the authors'; "image": ε-ball around the image) over its first n examples left
    it correct. Label: WORST[space]."""
    mine = [e for e in entries if e["model"] == net.name and e["seed"] == net.seed and e["attack"] != "clean"
            and e["space"] == space and len(e["correct"]) >= n]
    if not mine:
        raise ValueError(f"{net.name}: no attack in the {space} space over {n} examples")
    ok = np.logical_and.reduce([e["correct"][:n] for e in mine])
    return {**G.entry(net, dict(attack="worst", label=WORST[space]), ok, "worst"), "space": space,
            "check": f"min over {len(mine)} attacks"}


def prefix(e: dict, n: int, group: str) -> dict:
    return {**e, "correct": e["correct"][:n], "group": group}


def n_worst(sec: G.Params) -> int:
    """The images every masking check ran on (the worst cases' sample)."""
    return min(sec.masking.n, sec.masking.square.n)


def worst_entries(study: G.Study, entries: list[dict]) -> list[dict]:
    """Group "worst", per net of `masking.models` and seed, on the first `n_worst` images: its clean / FGSM / PGD
    entries cut to them, then the worst case in each threat model it was attacked in (`worst_case`)."""
    sec, n, out = study.sec, n_worst(study.sec), []
    for name in sec.masking.models:
        for seed in sec.seeds:
            net = study.nets[(name, seed)]
            mine = [e for e in entries if e["model"] == name and e["seed"] == seed]
            out += [prefix(e, n, "worst") for e in mine if e["attack"] in ("clean", "FGSM", "PGD")]
            out += [worst_case(net, mine, n, space) for space in ("spikes", "image")
                    if any(e["space"] == space and e["attack"] != "clean" for e in mine)]
    return out


def masking_table(sec: G.Params, paper_entries: list[dict], masking: list[dict], sweep: list[dict],
                  worst: list[dict]) -> pd.DataFrame:
    """The masking figure's table, per net of `masking.models`: the authors' FGSM / PGD, every masking check, the
    sweep's PGD at its largest ε (robustness must vanish there; on the sweep's images) and both worst cases."""
    models, big = sec.masking.models, max(sec.sweep.eps_255)
    large = [{**e, "attack": f"PGD-{sec.attack.iters}, ε = {big:g}/255", "check": "large ε", "group": "masking"}
             for e in sweep if e["model"] in models and e["attack"] == "PGD" and e["eps_255"] == big]
    t = summary([prefix(e, len(e["correct"]), e["group"]) for e in paper_entries if e["model"] in models] + masking
                + large + [w for w in worst if w["attack"] in WORST.values()])
    return t[~((t.group == "paper") & (t.attack == "clean"))]


# ----------------------------------------------------------------------------- what the claims read

def entry_id(e: dict) -> str:
    return f"{e['model']}|{e['seed']}|{e['group']}|{e['attack']}|{e.get('check', '')}|{len(e['correct'])}"


def claim_rows(entries: list[dict]) -> pd.DataFrame:
    """The accuracy table the claims read: `summary`'s rows with `examples`, the id of each entry's per-example
    outcomes (`outcomes`). Entries over the same prefix of the attacked images pair example by example."""
    return summary(entries).assign(examples=[entry_id(e) for e in entries])


def outcomes(entries: list[dict]) -> pd.DataFrame:
    """Per-example outcomes (lib.claims.verdicts.Examples): measure "eval", example i = the i-th attacked image (the
    same image in every entry), correct = the net still classifies it right under the entry's attack."""
    return pd.concat([pd.DataFrame({"id": entry_id(e), "measure": "eval", "example": np.arange(len(e["correct"])),
                                    "correct": np.asarray(e["correct"]).astype(np.int8)}) for e in entries],
                     ignore_index=True).drop_duplicates(["id", "example"])


# examples_of(frame, params): a stage's examples.csv.gz as lib.claims.verdicts.Examples with this module's OUTCOMES
examples_of = partial(V.Examples.of, outcomes=OUTCOMES)


def claims(sec: G.Params, params: dict) -> list:
    """Paper D's claims for the nets of this grid (lib.claims.registry.paper_d); D5b judges the paper's stated drop
    of the pool's zeros (Fig. 5: max pooling's zeros, gone with average pooling)."""
    return CL.paper_d(G.groups(sec), params["verdicts"]["margins"], masking_models=list(sec.masking.models),
                      stated_pool_drop=-paper.PAPER_D_SPARSITY["max pooling"])


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


def layer_means(sp: pd.DataFrame) -> pd.DataFrame:
    """Fig. 5's table: per net, seed and module, its gradient zeros and norm averaged over the batches."""
    return sp.groupby(["model", "kind", "arch", "pool", "seed", "name", "type", "order"], as_index=False, sort=False)[
        ["grad_input_zero_pct", "grad_output_zero_pct", "grad_input_norm"]].mean()


# ----------------------------------------------------------------------------- readings

def rat_lines(sec: G.Params) -> list[str]:
    """The defended nets' recipe, one line (none without `defence: rat` nets)."""
    names, r = [m.name for m in sec.models if m.defence == "rat"], sec.rat
    return [f"defended nets {names}: RAT, the loss on adversarial spikes only (PGD-{r.iters}, ε = {r.eps_255:g}/255, "
            f"step {r.step_255:g}/255, random start {r.random_start}, BN eval), Parseval β = {r.beta:g} after every "
            "step"] if names else []


def describe(study: G.Study, scale: str, device, source: str) -> str:
    """The notebook's opening lines: the grid this scale runs and the recipe."""
    sec, d, tr, a = study.sec, study.data, study.sec.training, study.sec.attack
    return "\n".join([
        f"scale = {scale}; device = {device}; data = {source}", f"nets: {[m.name for m in sec.models]}",
        f"width {sec.width}, blocks {list(sec.blocks) if sec.blocks else 'the arch default'}, stem {sec.stem}, "
        f"T = {sec.T}, K = {sec.K} phases; {len(d.y_train)} training images, {len(d.y_test)} test images, "
        f"{G.n_attacked(sec, d)} attacked; seeds {list(sec.seeds)}",
        f"training: Adam lr {tr.lr} wd {tr.weight_decay}, batch {tr.batch_size}, {tr.epochs} epochs, flip = {tr.flip}",
        f"attacks: ε = {a.eps_255}/255, PGD step {a.step} × {a.iters}, random start {a.random_start}, "
        f"BN mode while crafting: {a.bn_mode}",
        *rat_lines(sec),
        f"replaced at this scale: {sorted(sec.replaced)}; not run here: {list(sec.not_run)}"])


def accuracy(frame: pd.DataFrame, model: str, attack: str, seed: int) -> float:
    r = frame[(frame.model == model) & (frame.attack == attack) & (frame.seed == seed)]
    return float(r.test_acc.iloc[0]) if len(r) else float("nan")


def module_rows(layers: pd.DataFrame, where: str) -> pd.Series:
    """Which rows of `layer_means` are the modules `where` names: "stem pool", "stem neurons" (the IF neurons
    feeding it), "input" (the attacked input), "downsample" (the strided 1×1 convolutions of the shortcuts)."""
    if where == "stem pool":
        return layers.name.str.endswith("maxpool")
    if where == "stem neurons":
        return layers.name.isin(["net.sn1", "sn1"])
    if where == "input":
        return layers.type == "input"
    if where == "downsample":
        return layers.name.str.contains("downsample") & (layers.type == "Conv2d")
    raise ValueError(f"unknown module group {where!r}")


def zeros(layers: pd.DataFrame, model: str, seed: int, where: str) -> float:
    """Mean % zeros of the input gradient of `model`'s modules `where` (`module_rows`), NaN if it has none."""
    r = layers[(layers.model == model) & (layers.seed == seed) & module_rows(layers, where)]
    return float(r.grad_input_zero_pct.mean()) if len(r) else float("nan")


def defended_line(sew: str, rat: str, accs: dict, masking: pd.DataFrame, seed: int) -> str:
    """D1 in words: what the defence cost in clean accuracy, and the undefended − defended gap under the authors'
    attacks and under the spike-space worst case (where both nets ran the masking checks)."""
    gap = {a: accs[sew][i] - accs[rat][i] for i, a in enumerate(("clean", "FGSM", "PGD"))}
    text = (f"* **Against the defended SEW** ({rat}, same architecture, data and attacks): undefended − defended "
            f"accuracy is {gap['clean']:+.1f} points clean (what the defence cost on these images), "
            f"{gap['FGSM']:+.1f} under FGSM and {gap['PGD']:+.1f} under PGD")
    worst = masking[(masking.attack == WORST["spikes"]) & (masking.seed == seed)].set_index("model").test_acc
    if sew in worst.index and rat in worst.index:
        text += (f", and {worst[sew] - worst[rat]:+.1f} under the spike-space worst case ({worst[sew]:.1f}% vs "
                 f"{worst[rat]:.1f}%)")
    return text + " (D1: the paper says the undefended net is at least comparable)."


def reading(sec: G.Params, *, attacks, masking, layers, sweep, models, verdicts, pap, seed, n_attacked, chance,
            scale) -> str:
    """'Reading these numbers': the notebook's closing summary, computed from this run's tables (markdown)."""
    lines = []
    for g in G.groups(sec):
        s = g.get("sew")
        if not s:
            continue
        accs = {m: [accuracy(attacks, m, a, seed) for a in ("clean", "FGSM", "PGD")] for m in g.values()}
        lines.append(f"* **{s}** (authors' attacks on the spikes): clean {accs[s][0]:.1f}%, FGSM {accs[s][1]:.1f}%, "
                     f"PGD {accs[s][2]:.1f}%" + "".join(
                         f"; **{g[r]}**: clean {accs[g[r]][0]:.1f}%, FGSM {accs[g[r]][1]:.1f}%, "
                         f"PGD {accs[g[r]][2]:.1f}%" for r in ("sew_avg", "spiking", "ann", "sew_rat") if g.get(r))
                     + ".")
        if g.get("sew_rat"):
            lines.append(defended_line(s, g["sew_rat"], accs, masking, seed))
    space_txt = {"spikes": "spike-tensor (the authors')", "image": "image"}
    for name in sec.masking.models:
        sub = masking[(masking.model == name) & (masking.seed == seed)]
        parts = [f"the authors' PGD leaves {accuracy(sub[sub.group == 'paper'], name, 'PGD', seed):.1f}% "
                 f"(all {n_attacked} images)"]
        for space, worst_label in WORST.items():
            cand = sub[(sub.group == "masking") & (sub.space == space) & (sub.check != "large ε")]
            cand = cand.sort_values("test_acc")
            w = sub[sub.attack == worst_label]
            if len(cand) and len(w):
                r = cand.iloc[0]
                parts.append(f"in the {space_txt[space]} threat model the strongest check, *{r.attack}*, leaves "
                             f"{r.test_acc:.1f}% [{r.ci_low:.1f}, {r.ci_high:.1f}] of {r.n_eval} and the worst case "
                             f"over all its attacks {float(w.test_acc.iloc[0]):.1f}% of {n_worst(sec)}")
        lines.append(f"* **{name}**: " + "; ".join(parts) + ".")
    k = STEM_KERNEL[sec.stem]
    for g in G.groups(sec):
        s, a = g.get("sew"), g.get("sew_avg")
        if s and a:
            z = {w: (zeros(layers, s, seed, w), zeros(layers, a, seed, w))
                 for w in ("stem pool", "stem neurons", "input", "downsample")}
            lines.append(f"* Gradient zeros (Fig. 5), {s} vs {a}: stem pool {z['stem pool'][0]:.1f}% vs "
                         f"{z['stem pool'][1]:.1f}%; the IF neurons feeding it {z['stem neurons'][0]:.1f}% vs "
                         f"{z['stem neurons'][1]:.1f}% (max pooling passes a gradient to one element per window, and "
                         f"the zeros reach the layer before it); the gradient w.r.t. the attacked spikes "
                         f"{z['input'][0]:.2f}% vs {z['input'][1]:.2f}% — the stem convolution spreads every output "
                         f"gradient over its {k}×{k} window, so the zeros stop there. Strided 1×1 downsample "
                         f"convolutions zero {z['downsample'][0]:.0f}% of their input gradient in every net, pooling "
                         "or not (structural).")
    big = sweep[(sweep.attack == "PGD") & (sweep.eps_255 == sweep.eps_255.max())]
    lines.append(f"* At ε = {sweep.eps_255.max():g}/255, PGD leaves " + ", ".join(
        f"{r.model} {r.test_acc:.1f}%" for r in big.itertuples()) + f" (chance {chance:g}%).")
    lines.append("* Verdicts: " + "; ".join(f"{c}: {x}" for c, x in verdicts.items()) + ".")
    p_clean = pap[(pap.dataset == "cifar10") & pap.model.str.startswith("SEW") & (pap.table.isin([2, 3]))].clean
    lines.append(f"* Scale {scale}: nets far smaller and far less trained than the paper's (clean accuracy "
                 f"{models.test_acc.min():.0f}–{models.test_acc.max():.0f}% vs the paper's {p_clean.min():.0f}–"
                 f"{p_clean.max():.0f}% for its SEW-ResNets on CIFAR-10, the paper's numbers), one "
                 "training seed: read directions, not values. What it would take: the paper scale on a GPU "
                 "(`scale: paper`, README).")
    return "\n".join(lines)
