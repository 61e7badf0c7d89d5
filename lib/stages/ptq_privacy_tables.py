"""Paper C (notebook 06): the attacks on a Study's outputs (LiRA online/offline, RMIA), their attack entries and
tables, the inputs of paper C's claims (lib.claims.registry.paper_c) and the notebook's tables and reading.
The study itself (params, pool, models, quantized copies) is lib.stages.ptq_privacy.

Tables (tidy, one row per target × configuration × attack):
    method        "full precision" or a PTQ method (rtn, adaround, brecq, obc)
    bits          32 for full precision; 4, 2, 1.58, 1
    last_bits     the fc's bits when decoupled (e.g. 8), else = bits
    bn_source     OBC's BN re-estimation data: members | train (the authors' leak); "" for the others
    shadows       fp (full-precision shadows, the paper) | quantized (the adaptive attacker, beyond the paper)
    attack        "LiRA online" | "LiRA offline" (fixed variance per params) | "RMIA"
    test_acc      % on the test images; train_acc: % on the target's members (the gap = overfitting)
    auc, tpr_at_0_1pct, tpr_at_1pct (+ _status, _chance, min_fpr), n_members, n_nonmembers
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ..core import ptq as Q
from ..attacks import lira as L
from ..attacks.lira import metrics_row, rmia_signal
from ..claims import metrics as MT, registry as CL, verdicts as V
from . import ptq_privacy as PP


# ----------------------------------------------------------------------------- attacks

def scores(study: PP.Study, logits: np.ndarray) -> np.ndarray:
    """LiRA scores [..., N, A] of pool logits [..., N, views, C] (the views of LiRA's A queries)."""
    y = study.pool.y.numpy()
    z = np.asarray(logits)[..., PP.lira_views(study.sec), :]
    return L.scores_from_logits(z, y) if z.ndim == 3 else np.stack([L.scores_from_logits(v, y) for v in z])


def attack(study: PP.Study, target_scores: np.ndarray, m: int, shadow_scores: np.ndarray, shadows=None) -> list[dict]:
    """LiRA online and offline on model m's scores [N, A] with the other models (or `shadows`, indices) as
    shadows: one dict per attack with the member scores (kept for pooling) and the truth keep[m]."""
    keep = study.pool.keep
    rest = np.array([i for i in (range(len(keep)) if shadows is None else shadows) if i != m])
    lr = study.sec.lira
    # the same number of IN and of OUT shadows for every example (lira.balanced_references, as stage 08): in
    # leave-one-out a target's members otherwise have one IN shadow fewer than its non-members
    k = keep[rest]
    use = L.balanced_references(k) if min(k.sum(0).min(), (~k).sum(0).min()) >= 1 else np.ones_like(k)
    sh = np.where(use.reshape(use.shape + (1,) * (np.ndim(shadow_scores) - 2)), shadow_scores[rest], np.nan)
    out = []
    for name, online in (("LiRA online", True), ("LiRA offline", False)):
        atk = L.LiRA(online=online, fix_variance=lr.fix_variance, variant=lr.variant)
        out.append({"attack": name, "n_shadows": len(rest), "scores": atk.member_scores(
            sh, keep[rest], target_scores), "truth": keep[m]})
    return out


def rmia(study: PP.Study, target_pool_logits, target_test_logits, m: int, fp: dict, refs: int) -> dict:
    """Offline RMIA on model m's outputs with the other models as references (up to `refs` OUT per example);
    population = the first rmia.population test images (never anyone's member)."""
    r, keep, y = study.sec.rmia, study.pool.keep, study.pool.y.numpy()
    n_pop = min(r.population, len(study.pool.y_test))
    yt = study.pool.y_test.numpy()[:n_pop]
    rest = np.array([i for i in range(len(keep)) if i != m])
    v = PP.lira_views(study.sec)
    sig = lambda z, yy: rmia_signal(z[..., v, :], yy)   # noqa: E731
    sc = L.rmia_member_scores(sig(target_pool_logits, y), sig(fp["pool"][rest], y), keep[rest],
                              sig(target_test_logits[:n_pop], yt), sig(fp["test"][rest, :n_pop], yt),
                              offline_a=r.offline_a, gamma=r.gamma, max_refs=refs,
                              ref_use=L.balanced_references(keep[rest], k_in=0, k_out=refs))   # `refs` OUT models
    return {"attack": f"RMIA ({refs} ref{'s' if refs > 1 else ''})", "n_shadows": refs, "scores": sc,
            "truth": keep[m]}


# ----------------------------------------------------------------------------- attack entries
# An entry: one target (full precision or a quantized copy) × attack, with its configuration columns, accuracies
# and per-example arrays; attack_table turns them into tables.

CONFIG = ["method", "bits", "last_bits", "bn_source", "shadows"]
FP_CONFIG = {"method": PP.FULL_PRECISION, "bits": PP.FP_BITS, "last_bits": PP.FP_BITS, "bn_source": "", "shadows": "fp"}
JOB = ("method", "bits", "last_bits", "bn_source", "target", "run")


def _groups(entries, keys):
    out: dict = {}
    for e in entries:
        out.setdefault(tuple(e[k] for k in keys), []).append(e)
    return [(dict(zip(keys, k)), g) for k, g in out.items()]


def _accs(study: PP.Study, pool_logits: np.ndarray, test_logits: np.ndarray, m: int) -> dict:
    """Test accuracy (%) and accuracy on model m's members (the train accuracy), both on the un-augmented view, and
    which test images it gets right (`correct`, for the paired tests)."""
    members = study.pool.members(m)
    return {"test_acc": PP.accuracy(test_logits[:, 0], study.pool.y_test.numpy()),
            "correct": np.asarray(test_logits[:, 0]).argmax(-1) == study.pool.y_test.numpy(),
            "train_acc": PP.accuracy(pool_logits[members, 0], study.pool.y.numpy()[members]),
            "n_eval": len(study.pool.y_test), "n_members_trained": len(members)}


def _fp_row(study: PP.Study, fp: dict, m: int) -> dict:
    """The configuration and accuracies of full-precision model m as a target."""
    return {**FP_CONFIG, "target": m, "run": 0, **_accs(study, fp["pool"][m], fp["test"][m], m)}


def _q_row(study: PP.Study, q: dict, shadows: str = "fp") -> dict:
    """The configuration and accuracies of quantized copy q as a target attacked with `shadows` (fp | quantized)."""
    return {**{k: q[k] for k in JOB}, "shadows": shadows, **_accs(study, q["pool"], q["test"], q["target"])}


def lira_entries(study: PP.Study, fp: dict, qouts: list[dict], fp_targets=None) -> list[dict]:
    """Attack entries (for attack_table / pooled_roc): every full-precision model in `fp_targets` (default: all,
    leave-one-out) and every quantized copy, each against the full-precision shadows (the paper's protocol)."""
    S = scores(study, fp["pool"])
    out = []
    for m in (range(len(S)) if fp_targets is None else fp_targets):
        out += [{**_fp_row(study, fp, m), **a} for a in attack(study, S[m], m, S)]
    for q in qouts:
        out += [{**_q_row(study, q), **a} for a in attack(study, scores(study, q["pool"]), q["target"], S)]
    return out


def adaptive_entries(study: PP.Study, fp: dict, qouts_all: list[dict]) -> list[dict]:
    """The adaptive attacker (beyond the paper): for each (method, bits) every model is quantized with the same PTQ,
    and the quantized targets (the first `targets` models) are attacked with the quantized shadows."""
    out = []
    for cfg, g in _groups(qouts_all, ["method", "bits", "last_bits", "bn_source", "run"]):
        Sq = np.stack([scores(study, q["pool"]) for q in sorted(g, key=lambda q: q["target"])])
        for q in g:
            m = q["target"]
            if m >= study.sec.targets:
                continue
            out += [{**_q_row(study, q, "quantized"), **a} for a in attack(study, Sq[m], m, Sq)]
    return out


def rmia_entries(study: PP.Study, fp: dict, qouts: list[dict]) -> list[dict]:
    """RMIA (offline, references = the other full-precision models) on the full-precision targets (the first
    `targets` models) and on their quantized copies, for each reference count of rmia.references."""
    out = []
    for refs in study.sec.rmia.references:
        for m in range(study.sec.targets):
            out.append({**_fp_row(study, fp, m), **rmia(study, fp["pool"][m], fp["test"][m], m, fp, refs)})
        for q in qouts:
            out.append({**_q_row(study, q), **rmia(study, q["pool"], q["test"], q["target"], fp, refs)})
    return out


def budget_entries(study: PP.Study, fp: dict) -> list[dict]:
    """TPR vs the attacker's budget on the full-precision targets (the first `targets` models): LiRA online and
    offline with the first c of the other models as shadows (c in shadow_counts), RMIA with k OUT references per
    example (k in rmia.references). Column `out_per_example`: OUT models per example the attack uses (LiRA:
    ≈ (1 − pkeep)·c; RMIA: k), the budget that matters for offline attacks."""
    S, P, out = scores(study, fp["pool"]), study.sec, []
    for m in range(P.targets):
        base = _fp_row(study, fp, m)
        others = [i for i in range(len(S)) if i != m]
        for c in P.shadow_counts:
            for a in attack(study, S[m], m, S, shadows=others[:c]):
                out.append({**base, **a, "budget": c, "out_per_example": (1 - P.pkeep) * c})
        for k in P.rmia.references:
            out.append({**base, **rmia(study, fp["pool"][m], fp["test"][m], m, fp, k), "budget": k,
                        "out_per_example": float(k)})
    return out


# ----------------------------------------------------------------------------- tables

ARRAYS = ("scores", "truth", "correct")   # an entry's per-example arrays (not table columns)


def attack_table(entries: list[dict], fprs, keys=None, boot: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-target table, pooled table). `entries`: dicts with the configuration columns, target, run,
    test_acc, train_acc, attack, scores, truth (and `correct`, the test images the target gets right). Pooled =
    the member scores of every target of one (configuration, run, attack) — or `keys` — concatenated: N⁻ grows with
    the number of targets (leave-one-out pooling); its TPR's bootstrap resamples the targets too. Each per-target
    row's `examples` is the id of its per-example outcomes (`outcomes`). `boot`: params.yaml → verdicts.bootstrap."""
    b = boot or {"n_boot": 200, "seed": 0}
    per = [{**{k: v for k, v in e.items() if k not in ARRAYS},
            **metrics_row(e["scores"], e["truth"], fprs, n_boot=b["n_boot"], seed=b["seed"]), "examples": entry_id(e)}
           for e in entries]
    per = pd.DataFrame(per)
    keys = [*CONFIG, "run", "attack"] if keys is None else list(keys)
    pooled = []
    for cfg, g, sc, tr in _pooled(entries, keys):
        who = np.concatenate([np.full(len(e["truth"]), e["target"]) for e in g])
        pooled.append({**cfg, "targets": len(g), "test_acc": float(np.mean([e["test_acc"] for e in g])),
                       "train_acc": float(np.mean([e["train_acc"] for e in g])),
                       **metrics_row(sc, tr, fprs, groups=who, n_boot=b["n_boot"], seed=b["seed"])})
    return per, pd.DataFrame(pooled)


def entry_id(e: dict) -> str:
    """The id of an attack entry's per-example outcomes: its configuration, target, run and attack."""
    return "|".join(str(e.get(k, "")) for k in (*CONFIG, "target", "run", "attack"))


def outcomes(entries: list[dict]) -> pd.DataFrame:
    """Per-example outcomes of attack entries (lib.claims.verdicts.Examples): measure "lira" = the attack's member
    score and the truth of every pool example (example = pool position), "eval" = the target's correctness on
    every test image (example = −(j + 1))."""
    parts = []
    for e in entries:
        i = entry_id(e)
        parts.append(pd.DataFrame({"id": i, "measure": "lira", "example": np.arange(len(e["truth"])),
                                   "member": np.asarray(e["truth"]).astype(np.int8), "score": e["scores"]}))
        if "correct" in e:
            parts.append(pd.DataFrame({"id": i, "measure": "eval", "example": -(np.arange(len(e["correct"])) + 1),
                                       "correct": np.asarray(e["correct"]).astype(np.int8)}))
    return pd.concat(parts, ignore_index=True)


# the metric columns of the per-target table (and claims_table's acc_over_chance), from the per-example outcomes
OUTCOMES = {"test_acc": V.Outcome("eval", "accuracy", scale=100.0),
            "acc_over_chance": V.Outcome("eval", "accuracy", scale=100.0),
            "auc": V.Outcome("lira", "auc"),
            **{f"{p}tpr_at_{t}": V.Outcome("lira", "log10_tpr" if p else "tpr", f)
               for f, t in ((0.01, "1pct"), (0.001, "0_1pct")) for p in ("", "log10_")}}


# examples_of(frame, params): a stage's examples.csv.gz as lib.claims.verdicts.Examples with this module's OUTCOMES
examples_of = partial(V.Examples.of, outcomes=OUTCOMES)


def _pooled(entries, keys):
    """Per group of `keys`: (its values, its entries, their member scores concatenated, their truth concatenated)."""
    return [(cfg, g, np.concatenate([e["scores"] for e in g]), np.concatenate([e["truth"] for e in g]))
            for cfg, g in _groups(entries, list(keys))]


def pooled_roc(entries: list[dict], keys=(*CONFIG, "attack"), n_points: int = 150) -> pd.DataFrame:
    """Log-log ROC curve points of each pooled configuration (all runs together)."""
    return pd.concat([L.roc_loglog(sc, tr, n_points).assign(**cfg) for cfg, _, sc, tr in _pooled(entries, keys)],
                     ignore_index=True)


def main_grid(df: pd.DataFrame, P: PP.Params, decoupled: bool = False) -> pd.DataFrame:
    """Rows of the paper's main grid: OBC only with the section's BN source (not the leak copies), and — unless
    `decoupled` — only copies whose fc has the same bits as the rest."""
    keep = df.bn_source.fillna("").isin(["", P.ptq.bn_source])
    return df[keep if decoupled else keep & (df.last_bits == df.bits)]


def plain_entries(entries: list[dict], P: PP.Params) -> list[dict]:
    """The entries of the main grid's quantized targets (no decoupled copies, OBC with the section's BN source)."""
    return [e for e in entries if e["target"] in range(P.targets) and e["last_bits"] == e["bits"]
            and e["bn_source"] in ("", P.ptq.bn_source)]


def adaptive_baseline(entries: list[dict], P: PP.Params) -> list[dict]:
    """What the adaptive attacker is compared with: the same copies (run 0) and the full-precision targets, attacked
    with the full-precision shadows."""
    ad = P.adaptive
    return [e for e in entries if e["method"] in ad.methods and e["bits"] in ad.bits and e["last_bits"] == e["bits"]
            and e["run"] == 0] + [e for e in entries if e["method"] == PP.FULL_PRECISION and e["target"] in range(P.targets)]


# ----------------------------------------------------------------------------- the notebook's tables

def saved(df: pd.DataFrame, path) -> pd.DataFrame:
    """Write a table (no index) and read it back: what follows computes on the file's numbers, as a reader would."""
    df.to_csv(path, index=False)
    return pd.read_csv(path)


def models_table(study: PP.Study, fp: dict, source: str) -> pd.DataFrame:
    """One row per trained model: its seed, members, train accuracy (on its members), test accuracy, seconds, gap."""
    pool, y, yt = study.pool, study.pool.y.numpy(), study.pool.y_test.numpy()
    models = pd.DataFrame([{"model": m, "seed": r["seed"], "members": int(pool.keep[m].sum()),
                            "train_acc": PP.accuracy(fp["pool"][m][pool.members(m), 0], y[pool.members(m)]),
                            "test_acc": PP.accuracy(fp["test"][m][:, 0], yt), "train_seconds": r["seconds"],
                            "data_source": source} for m, r in enumerate(study.recs)])
    models["gap"] = models.train_acc - models.test_acc
    return models


def models_note(models: pd.DataFrame, n_trained: int, scale: str, source: str) -> str:
    return (f"**Scale: {scale}. {source}.** {n_trained} models trained now, {len(models) - n_trained} loaded "
            f"from the cache. Train accuracy (on each model's members) {models.train_acc.mean():.1f}% ± "
            f"{models.train_acc.std():.1f}, test accuracy {models.test_acc.mean():.1f}% ± {models.test_acc.std():.1f}: "
            f"a train − test gap of **{models.gap.mean():.1f} points** (the overfitting LiRA exploits). "
            f"Training took {models.train_seconds.sum() / 60:.1f} min in all.")


def grid_values(net, scale_method: str) -> pd.DataFrame:
    """The distinct values of the stem convolution's channels at every bit width with a grid (lib.core.ptq.LEVELS)."""
    w, rows = net.conv1.weight.detach(), []
    for b in sorted(Q.LEVELS, reverse=True):
        wq = Q.quantize_tensor(w, b, scale_method=scale_method).w_hat
        rows.append({"bits": b, "levels L": Q.n_levels(b),
                     "distinct values per channel (max)": max(len(np.unique(wq[c].numpy())) for c in range(len(wq))),
                     "channel 0 values": np.round(np.unique(wq[0].numpy()), 3).tolist()[:8]})
    return pd.DataFrame(rows)


def ptq_runs_table(study: PP.Study, qouts: list[dict]) -> pd.DataFrame:
    """One row per quantized copy: its job, the PTQ seconds (as made, for cached copies) and its test accuracy."""
    yt = study.pool.y_test.numpy()
    return pd.DataFrame([{**{k: q[k] for k in ("target", "run", "method", "bits", "last_bits", "bn_source")},
                          "seconds": q["report"].get("seconds"), "test_acc": PP.accuracy(q["test"][:, 0], yt)}
                         for q in qouts])


def judged_tpr(per: pd.DataFrame) -> tuple[str, int]:
    """(the TPR column the privacy claims are judged on, one target's N⁻): TPR@0.1% when one full-precision target's
    median non-member count resolves it (lib.claims.metrics.tpr_resolvable), else TPR@1%."""
    n_neg = int(per[per.method == PP.FULL_PRECISION].n_nonmembers.median())
    return ("tpr_at_0_1pct" if MT.tpr_resolvable(0.001, n_neg) else "tpr_at_1pct"), n_neg


def resolution_note(tpr: str, n_neg: int, pooled: pd.DataFrame, P: PP.Params, scale: str) -> str:
    return (f"**Scale: {scale}.** One target has N⁻ ≈ {n_neg} non-members: its smallest resolvable FPR is "
            f"{10 / n_neg:.2%} (≥ 10 false positives). Per-target TPR@0.1% is therefore "
            f"{'resolvable' if tpr == 'tpr_at_0_1pct' else '**not resolvable**'} at this scale, and the claims below "
            f"are judged per target on **`{tpr}`**. Figures pool the {P.targets} quantized targets "
            f"(N⁻ = {int(pooled[pooled.method == PP.FULL_PRECISION].n_nonmembers.max())}); below, the full-precision "
            f"models pooled over all {P.models} (every model a leave-one-out target):")


def _mean_sd(v) -> str:
    return f"{v.mean():.2f} ± {v.std():.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def table_one(plain_per: pd.DataFrame, published: pd.DataFrame, source: str) -> pd.DataFrame:
    """Table I: 1.58-bit and 1-bit test accuracy per method, ours (mean ± sd over targets and runs, LiRA online rows)
    above paper C's (CIFAR-100)."""
    ours = (plain_per[(plain_per.attack == "LiRA online") & plain_per.bits.isin([1.58, 1])]
            .groupby(["bits", "method"]).test_acc.agg(_mean_sd).unstack("method"))
    ours.index = [f"ours {b:g}-bit ({source})" for b in ours.index]
    t1 = published[published["where"] == "Table I"].pivot(index="bits", columns="method", values="value")
    t1.index = [f"paper C {b:g}-bit (CIFAR-100)" for b in t1.index]
    return pd.concat([ours, t1.round(2).astype(str)]).fillna("—")


def tpr_table(plain: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3's numbers: pooled accuracy, AUC and TPRs per (method, bits, attack) beside paper C's CIFAR-10 TPR@0.1%."""
    tab = plain.groupby(["method", "bits", "attack"], sort=False)[["test_acc", "auc", "tpr_at_0_1pct",
                                                                  "tpr_at_1pct"]].mean()
    pcq = published[(published.dataset == "cifar10") & (published.metric == "tpr_at_0_1pct")].set_index(
        ["method", "bits", "attack"]).value
    tab["paper C TPR@0.1% (CIFAR-10, ResNet-18)"] = [pcq.get(k, np.nan) for k in tab.index]
    return tab


def decoupled_rows(per: pd.DataFrame, P: PP.Params) -> pd.DataFrame:
    """Fig. 4's rows: the quantized targets at ptq.decoupled.bits, fc decoupled or not, LiRA online."""
    dec = main_grid(per, P, decoupled=True)
    return dec[dec.bits.isin(P.ptq.decoupled.bits) & (dec.attack == "LiRA online") & (dec.method != PP.FULL_PRECISION)]


def bn_leak_table(per: pd.DataFrame, tpr: str) -> pd.DataFrame | None:
    """OBC with BN re-estimated on its members vs on the whole pool (the authors' leak); None without leaky copies."""
    obc = per[(per.method == "obc") & (per.last_bits == per.bits)]
    if obc.bn_source.nunique() < 2:
        return None
    return obc.pivot_table(index=["bits", "attack"], columns="bn_source", values=["test_acc", tpr, "auc"],
                           aggfunc="mean")


# ----------------------------------------------------------------------------- paper C's claims

def claims_table(per: pd.DataFrame, n_classes: int) -> pd.DataFrame:
    """The per-target table the claims are judged on: one row per (configuration, target, run, attack) (the engine
    averages runs within a target), with accuracy over chance (C7) and its standard error."""
    t = per.copy()
    t["bn_source"] = t.bn_source.fillna("")
    t["acc_over_chance"] = t.test_acc - 100.0 / n_classes
    t["acc_over_chance_se"] = V.accuracy_se(t.test_acc, t.n_eval)
    return t


def spread_verdict(wins: list[bool], losses: list[bool]) -> str:
    """C11's verdict from its comparisons: a win = BRECQ's spread significantly larger, a loss = significantly
    smaller (Holm-adjusted)."""
    if all(wins):
        return "supported"
    if all(losses):
        return "contradicted"
    if any(wins) and any(losses):
        return "mixed"
    return "partly supported" if any(wins) else "partly contradicted" if any(losses) else "not resolved"


def c11_judgement(plain_per: pd.DataFrame, tpr: str, n_runs: int) -> tuple[str, str]:
    """C11 (BRECQ 1.58-bit's leakage varies more across calibration runs): the spread over runs *within* a target
    (each 1.58-bit copy's deviation from its target's mean over runs, LiRA online), BRECQ vs AdaRound and vs OBC by
    Levene's test (median-centred), Holm over the comparisons. Returns (verdict class, note); ("not tested", "")
    below 3 runs or without BRECQ and another calibrated method."""
    from scipy import stats
    runs = plain_per[(plain_per.bits == 1.58) & (plain_per.attack == "LiRA online") & (plain_per.method != "rtn")].copy()
    runs["dev"] = runs[tpr] - runs.groupby(["method", "target"])[tpr].transform("mean")
    others = [m for m in ("adaround", "obc") if m in set(runs.method)]
    if n_runs < 3 or "brecq" not in set(runs.method) or not others:
        return "not tested", ""
    b = runs[runs.method == "brecq"].dev
    tests = [(o, runs[runs.method == o].dev) for o in others]
    ps = V.holm([stats.levene(b, d, center="median").pvalue for _, d in tests])
    parts = [f"sd BRECQ {b.std():.4f} vs {o} {d.std():.4f}, p (Holm) {p:.3g}" for (o, d), p in zip(tests, ps)]
    wins = [p < 0.05 and b.std() > d.std() for (_, d), p in zip(tests, ps)]
    losses = [p < 0.05 and b.std() < d.std() for (_, d), p in zip(tests, ps)]
    verdict = spread_verdict(wins, losses)
    return verdict, (f"{verdict} (Levene on within-target deviations over {n_runs} calibration runs, "
                     f"LiRA online, {tpr}: " + "; ".join(parts) + ")")


def c11_note(plain_per: pd.DataFrame, tpr: str, n_runs: int) -> str:
    """C11's note alone (c11_judgement); "" when not testable."""
    return c11_judgement(plain_per, tpr, n_runs)[1]


FPR_OF = {"tpr_at_1pct": 0.01, "tpr_at_0_1pct": 0.001}


def c5_note(cl_tab: pd.DataFrame, plain: pd.DataFrame, tpr: str) -> str:
    """C5 ("an order of magnitude" lower TPR at 1.58 bits): "" when a tenfold drop from full precision's mean TPR is
    measurable at the judged FPR; else why not, with the pooled TPR@0.1% ratios (full precision / 1.58-bit) as a
    description, no test."""
    fpr, fp_tpr = FPR_OF[tpr], float(cl_tab[(cl_tab.method == PP.FULL_PRECISION)][tpr].mean())
    if not fp_tpr / 10 < fpr:
        return ""
    q158 = plain[(plain.bits == 1.58) & plain.method.isin(CL.PAPER_C_METHODS)]   # the claim is about paper C's methods
    fpp0 = plain[plain.method == PP.FULL_PRECISION].set_index("attack").tpr_at_0_1pct
    ratio = "; ".join(f"{r.method} {r.attack}: ×{fpp0[r.attack] / r.tpr_at_0_1pct:.1f}"
                      for r in q158.groupby(["method", "attack"], as_index=False).tpr_at_0_1pct.mean().itertuples()
                      if r.tpr_at_0_1pct > 0)
    return (f"not testable on {tpr} at this scale: full precision's {fp_tpr:.4f} / 10 is below chance ({fpr:g}). "
            f"Descriptive, pooled targets, no test: full precision's TPR@0.1% divided by 1.58-bit's: {ratio}")


def paper_c_claims(P: PP.Params, params: dict, tpr: str, n_classes: int,
                   variance: tuple[str, str] = ("not tested", ""), magnitude_note: str = "") -> list:
    """Claims C1–C11 (lib.claims.registry.paper_c) for the grid that ran; `variance` = C11's (class, note) from
    c11_judgement."""
    p = P.ptq
    return CL.paper_c(p.methods, p.bits, p.decoupled.bits, tpr, params["verdicts"]["margins"], bn_source=p.bn_source,
                      last_bits=p.decoupled.last_bits, n_classes=n_classes, variance_note=variance[1],
                      variance_class=variance[0], magnitude_note=magnitude_note)


# ----------------------------------------------------------------------------- the reading

def reading(P: PP.Params, models: pd.DataFrame, pooled: pd.DataFrame, plain: pd.DataFrame, verdicts: pd.DataFrame,
            tpr: str, source: str, scale: str) -> str:
    """What limits this run's numbers, as markdown bullets computed from its tables (nothing typed in)."""
    from scipy import stats
    from ..report.plots import PTQ_LABELS
    fpp = pooled[(pooled.method == PP.FULL_PRECISION)]
    lines = [f"* **{source}**, {P.models} ResNets (blocks {P.arch.blocks}, widths {P.arch.widths}), "
             f"{P.training.epochs} epochs on {int(models.members.mean())} members each: test accuracy "
             f"{models.test_acc.mean():.1f}%, train − test gap {models.gap.mean():.1f} points. Paper C's ResNet-18 "
             "reaches ~95% on real CIFAR-10; a weaker, smaller model leaks differently, so compare directions, not values.",
             f"* Full-precision LiRA (pooled quantized targets, N⁻ = {int(fpp.n_nonmembers.iloc[0])}): "
             + ", ".join(f"{r.attack} TPR@1% {r.tpr_at_1pct:.3f}, TPR@0.1% "
                         + (f"{r.tpr_at_0_1pct:.4f}" if np.isfinite(r.tpr_at_0_1pct) else "not resolvable")
                         for r in fpp.itertuples()) + " (chance: TPR = FPR).",
             f"* C5's \"order of magnitude\" on `{tpr}`: a tenfold drop from full precision's "
             f"{fpp[tpr].max():.4f} would reach {fpp[tpr].max() / 10:.4f}, "
             + ("**below chance** (TPR = FPR): no attack can show it at this FPR here, so C5 cannot be supported at "
                "this scale whatever quantization does." if fpp[tpr].max() / 10 < FPR_OF[tpr] else "above chance: measurable."),
             f"* Claims judged per target on `{tpr}` with {P.targets} targets: few pairs, so wide intervals; "
             "*not resolved* is not *refuted*."]
    low = plain[(plain.bits == 1.58) & (plain.attack == "LiRA online")].groupby("method")[["test_acc",
                                                                                          "tpr_at_0_1pct"]].mean()
    fp_on = fpp.set_index("attack").loc["LiRA online"]
    lines.append("* The trade-off at 1.58 bits (LiRA online, pooled): " + "; ".join(
        f"{PTQ_LABELS.get(m, m)} loses {fp_on.test_acc - r.test_acc:.1f} accuracy points and divides TPR@0.1% by "
        f"{fp_on.tpr_at_0_1pct / r.tpr_at_0_1pct:.1f}" for m, r in low.iterrows() if r.tpr_at_0_1pct > 0) + ".")
    ok = low[low.tpr_at_0_1pct > 0]
    if len(ok) >= 3:
        rho = stats.spearmanr(fp_on.test_acc - ok.test_acc, fp_on.tpr_at_0_1pct / ok.tpr_at_0_1pct).statistic
        lines.append(f"* Across these {len(ok)} methods, Spearman ρ between accuracy lost and the TPR@0.1% reduction "
                     f"factor is {rho:.2f}: read each privacy gain beside the accuracy it costs.")
    tally = verdicts["verdict class"].value_counts()   # the engine's class field, never the text re-parsed
    lines.append(f"* Verdicts at scale {scale}: " + ", ".join(f"{v} × {n}" for v, n in tally.items()) + ".")
    return "\n".join(lines)
