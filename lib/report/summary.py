"""Every stage's verdicts in one place (notebook 99_claims): reads the claims tables the stages wrote
(`results/<stage>/claims.csv` and the per-comparison file), trains and recomputes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..attacks.claims import ladder_parts

DETAIL_FILES = ("claims_comparisons.csv", "claims_detail.csv")   # 05–07 / 02–04 name it differently
CLASSES = ("supported", "partly supported", "mixed", "partly contradicted", "contradicted", "not resolved",
           "not tested")


def verdict_class(verdict: str) -> str:
    """The category of a verdict text of lib.attacks.verdicts.claim_verdict (or a claim's fixed note)."""
    v = str(verdict)
    for c in ("partly supported", "partly contradicted", "supported", "contradicted", "mixed", "not resolved"):
        if v.startswith(c):
            return c
    return "not tested"


def _stage_file(root: Path, stage: str, names) -> Path:
    for n in names:
        if (root / stage / n).is_file():
            return root / stage / n
    raise FileNotFoundError(f"{root / stage}: none of {list(names)} — run the stage `{stage}` first (dvc repro)")


def collect(root: str | Path, stages) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims: one row per claim of every stage, with its stage, the scale and data source the stage ran at and its
    verdict class; comparisons: every comparison with its stage). A missing file is an error naming it."""
    root = Path(root)
    claims, comps = [], []
    for stage in stages:
        c = pd.read_csv(_stage_file(root, stage, ("claims.csv",)))
        metrics = root / stage / "metrics.json"
        scale = json.loads(metrics.read_text()).get("scale", "") if metrics.is_file() else ""
        c.insert(0, "stage", stage)
        c["scale"] = scale
        c["verdict class"] = c["our verdict"].map(verdict_class)
        claims.append(c)
        d = pd.read_csv(_stage_file(root, stage, DETAIL_FILES))
        d.insert(0, "stage", stage)
        comps.append(d)
    return pd.concat(claims, ignore_index=True), pd.concat(comps, ignore_index=True)


def evidence(comps: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, claim) the comparison with the smallest Holm p (ties: the largest |a − b|) — what our numbers say
    most clearly — as 'a vs b: a − b [95% interval]', plus how many comparisons had data."""
    d = comps.copy()
    for col in ("p (Holm)", "a − b", "a", "b", "ci_low", "ci_high"):
        d[col] = pd.to_numeric(d.get(col), errors="coerce")
    d["with data"] = d["a − b"].notna()
    rows = []
    for (stage, claim), g in d.groupby(["stage", "claim"], sort=False):
        has = g[g["with data"]]
        row = {"stage": stage, "claim": claim, "comparisons with data": int(len(has)), "clearest comparison": "",
               "ours (a, b)": "", "a − b [95% CI]": ""}
        if len(has):
            r = has.assign(_p=has["p (Holm)"].fillna(np.inf), _d=-has["a − b"].abs()).sort_values(["_p", "_d"]).iloc[0]
            row.update({"clearest comparison": r.comparison, "ours (a, b)": f"{r.a:.4g}, {r.b:.4g}" if pd.notna(r.b)
                        else f"{r.a:.4g}",
                        "a − b [95% CI]": f"{r['a − b']:+.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]",
                        "p (Holm)": r["p (Holm)"]})
        rows.append(row)
    return pd.DataFrame(rows)


def counts(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims per paper and verdict class (columns in CLASSES order)."""
    t = claims.groupby(["paper", "verdict class"]).size().unstack(fill_value=0)
    return t.reindex(columns=[c for c in CLASSES if c in t.columns])


def reading(claims: pd.DataFrame) -> dict:
    """Per paper, the claim ids by outcome, from the table `collect` builds (with its `verdict class`): holds
    (supported, partly supported), fails (contradicted, partly contradicted, mixed), open (not resolved, not tested),
    each as "claim (stage)"; and `ladder`: stage 08's claims (ids "<claim> · <attack> · <metric>") as
    {claim: {metric: [(attack, verdict class)]}} in the ladder's order."""
    out = {}
    groups = {"holds": ("supported", "partly supported"), "fails": ("contradicted", "partly contradicted", "mixed"),
              "open": ("not resolved", "not tested")}
    for paper, g in claims.groupby("paper", sort=True):
        main, lad = g[g.stage != "08_attack_ladder"], g[g.stage == "08_attack_ladder"]
        r = {k: [f"{c} ({st[:2]})" for c, st, v in zip(main.claim, main.stage, main["verdict class"]) if v in cls]
             for k, cls in groups.items()}
        r["stages"] = sorted(set(g.stage))
        r["scales"] = sorted(set(g.scale.astype(str)))
        ladder: dict = {}
        for c, v in zip(lad.claim, lad["verdict class"]):
            base, atk, metric = ladder_parts(c)
            ladder.setdefault(base, {}).setdefault(metric, []).append((atk, v))
        r["ladder"] = ladder
        out[paper] = r
    return out


# ----------------------------------------------------------------------------- "as published" switches

SWITCH_COLUMNS = ["paper", "switch", "as published", "default here", "stage", "where", "metric", "as published value",
                  "default value", "published − default", "ci_low", "ci_high", "pairs", "noise"]


def switches(root: str | Path, stages) -> pd.DataFrame:
    """Every "as published" switch beside the project's default, from the stages' results files (one row each):
    08 (split_mode, snntorch ≤ 0.7 spike rate escape, the triangular surrogate's sign: switches.csv), 06 (OBC's BN
    re-estimation on the whole training set, non-members included, vs the target's members: per_target.csv, paired
    on target) and 07 (PGD crafted with BN in train mode, the authors', vs eval mode: masking.csv; two samples,
    each value with its Wilson interval). Stages not in `stages` or without the file are skipped."""
    from ..attacks.verdicts import paired
    root, out = Path(root), []
    f = root / "08_attack_ladder" / "switches.csv"
    if "08_attack_ladder" in stages and f.is_file():
        sw = pd.read_csv(f)
        out.append(sw.assign(paper="A", stage="08_attack_ladder",   # paper A's split and surrogates
                             where=sw.dataset + ", " + sw.setting + ", " + sw.attack.astype(str)))
    f = root / "06_post_training_quantization" / "per_target.csv"
    if "06_post_training_quantization" in stages and f.is_file():
        per = pd.read_csv(f)
        obc = per[(per.method == "obc") & per.bn_source.isin(["train", "members"])]
        for (bits, atk), g in obc.groupby(["bits", "attack"]):
            if set(g.bn_source) != {"train", "members"}:
                continue
            for metric in ("tpr_at_1pct", "auc", "test_acc"):
                r = paired(g, metric, {"bn_source": "train"}, {"bn_source": "members"}, ("target", "run"))
                out.append(pd.DataFrame([{
                    "paper": "C", "switch": "BN re-estimation data (OBC)",
                    "as published": "the whole training set, non-members included (authors' code)",
                    "default here": "the target's members only", "stage": "06_post_training_quantization",
                    "where": f"OBC {bits:g}-bit, {atk}", "metric": metric, "as published value": r["a"],
                    "default value": r["b"], "published − default": r["diff"], "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"], "pairs": r["n"], "noise": r["noise"]}]))
    f = root / "07_gradient_sparsity" / "masking.csv"
    if "07_gradient_sparsity" in stages and f.is_file():
        mk = pd.read_csv(f)
        for model, g in mk.groupby("model", sort=False):
            a = g[(g.check == "authors' protocol") & (g.attack == "PGD")]
            b = g[g.check == "BN mode"]
            if len(a) and len(b):
                a, b = a.iloc[0], b.iloc[0]
                out.append(pd.DataFrame([{
                    "paper": "D", "switch": "BN mode while crafting PGD", "as published": "train (authors' code)",
                    "default here": "eval", "stage": "07_gradient_sparsity",
                    "where": f"{model}, PGD-7 ({int(a.n_eval)} vs {int(b.n_eval)} images)", "metric": "adv. accuracy (%)",
                    "as published value": a.test_acc, "default value": b.test_acc,
                    "published − default": a.test_acc - b.test_acc, "ci_low": np.nan, "ci_high": np.nan,
                    "pairs": np.nan, "noise": f"Wilson: [{a.ci_low:.1f}, {a.ci_high:.1f}] vs [{b.ci_low:.1f}, "
                                              f"{b.ci_high:.1f}]"}]))
    if not out:
        return pd.DataFrame(columns=SWITCH_COLUMNS)
    return pd.concat(out, ignore_index=True)[SWITCH_COLUMNS]


__all__ = ["DETAIL_FILES", "CLASSES", "SWITCH_COLUMNS", "verdict_class", "collect", "evidence", "counts", "reading", "switches",
           "ladder_parts"]   # re-exported for notebook 99 (defined with the ladder claims in lib.attacks.claims)
