"""Every stage's verdicts in one place (notebook 99_claims): reads the claims tables the stages wrote
(`results/<stage>/claims.csv` and the per-comparison file), trains and recomputes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..claims.registry import ladder_parts
from ..claims.verdicts import CLASS_GROUPS, CLASSES
from .summary_params import CLAIM_STAGES, SECTION, Params  # noqa: F401 (the section; torch-free, for the validator)

DETAIL_FILE = "claims_detail.csv"   # every stage's per-comparison file
LADDER_STAGE = "08_attack_ladder"
CLASS = "verdict class"             # the column of lib.claims.verdicts.evaluate beside `our verdict`


def _stage_file(root: Path, stage: str, name: str) -> Path:
    if not (root / stage / name).is_file():
        raise FileNotFoundError(f"{root / stage / name} is missing — run the stage `{stage}` first (dvc repro)")
    return root / stage / name


def collect(root: str | Path, stages) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims: one row per claim of every stage, with its stage, the scale and data source the stage ran at and its
    verdict class (the stage's `verdict class` column); comparisons: every comparison with its stage). A missing
    file, or a claims table without the class column (written before verdicts carried it), is an error naming it."""
    root = Path(root)
    claims, comps = [], []
    for stage in stages:
        f = _stage_file(root, stage, "claims.csv")
        c = pd.read_csv(f)
        if CLASS not in c.columns:
            raise ValueError(f"{f} has no `{CLASS}` column (written before verdicts carried their class) — rerun "
                             f"the stage `{stage}` (dvc repro)")
        metrics = root / stage / "metrics.json"
        scale = json.loads(metrics.read_text()).get("scale", "") if metrics.is_file() else ""
        c.insert(0, "stage", stage)
        c["scale"] = scale
        claims.append(c)
        d = pd.read_csv(_stage_file(root, stage, DETAIL_FILE))
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


def reading(claims: pd.DataFrame, comps: pd.DataFrame | None = None) -> dict:
    """Per paper, the claim ids by outcome, from the table `collect` builds (with its `verdict class`): holds
    (supported, partly supported), fails (contradicted, partly contradicted, mixed), open (not resolved, not tested),
    aside (scoped, structural), each as "claim (stage)" — stage 08's claims among them, once each (their primary
    cell); and `ladder`: from stage 08's comparisons (`comps`), {claim: {metric: [(attack, verdict class)]}} per
    cell in the ladder's order (secondary cells, Holm-corrected as one family)."""
    out = {}
    grid = ladder_grid(comps, classes=True) if comps is not None else pd.DataFrame()
    for paper, g in claims.groupby("paper", sort=True):
        r = {k: [f"{c} ({st[:2]})" for c, st, v in zip(g.claim, g.stage, g["verdict class"]) if v in cls]
             for k, cls in CLASS_GROUPS.items()}
        r["stages"] = sorted(set(g.stage))
        r["scales"] = sorted(set(g.scale.astype(str)))
        ladder: dict = {}
        for cid in g[g.stage == LADDER_STAGE].claim:
            if cid in grid.index.get_level_values(0):
                for metric, row in grid.loc[cid].iterrows():
                    ladder.setdefault(cid, {})[metric] = list(row.dropna().items())
        r["ladder"] = ladder
        out[paper] = r
    return out


def reading_text(r: dict, primary: dict) -> str:
    """Notebook 99's reading as markdown: per paper (`r` = `reading`'s result) its claims by outcome and, for each
    ladder claim, its AUC cell under each attack of stage 08 (`primary`: params.yaml → 08_attack_ladder.primary)."""
    lines = []
    for p, x in r.items():
        own = [s[:2] for s in x["stages"] if s != LADDER_STAGE]
        n = sum(len(x[k]) for k in ("holds", "fails", "open", "aside"))
        lines.append(f"**Paper {p}** ({f'{n} claims of stages ' + ', '.join(own) if own else 'stage 08 only'}"
                     f"{'; and stage 08' if own and x['ladder'] else ''}; scale {', '.join(x['scales'])})")
        for k, name in (("holds", "holds"), ("fails", "does not hold"), ("open", "not decided here"),
                        ("aside", "scoped or structural (not a finding either way)")):
            if x[k]:
                lines.append(f"* {name} ({len(x[k])}): {', '.join(x[k])}")
        for base, by_metric in x["ladder"].items():
            prim = primary.get(base, {})
            lines.append(f"* under the attack ladder (08), *{base}*, AUC under each attack (the claim's verdict is "
                         f"its primary cell, {prim.get('attack', '?')} {prim.get('metric', '?')}; the others are "
                         "secondary): " + "; ".join(f"{atk} **{v}**" for atk, v in by_metric.get("AUC", [])))
        lines.append("")
    return "\n".join(lines)


def ladder_grid(comps: pd.DataFrame, classes: bool = False) -> pd.DataFrame:
    """Stage 08's cells (claim × metric rows, attacks as columns), each cell's verdict (or, with `classes`, its
    verdict class) from its comparisons (lib.stages.ladder.verdict_grid), read from the comparisons `collect`
    gathered."""
    from .ladder_tables import verdict_grid
    d = comps[comps.stage == LADDER_STAGE] if "stage" in comps else comps
    if not len(d):
        return pd.DataFrame()
    return verdict_grid(d.drop(columns=["stage"], errors="ignore"), classes=classes)


# ----------------------------------------------------------------------------- what the mended engine moved

# The mends of issue 21 (the verdict engine), by item, and how a claim shows that a mend touches it. A claim's
# "mends that touch it" lists every item whose condition holds for its comparisons: the candidates for why its
# verdict moved, not a proof of which one did.
MENDS = {
    1: "equivalence is contradicted only beyond the margin",
    2: "one rule for the noise: seeds (t, n − 1) and test set (normal), both must be beaten",
    3: "the same examples compared paired (McNemar, DeLong, paired bootstrap)",
    4: "one training seed: tested on test-set noise only, and said so (no chunks as seeds)",
    5: "TPR at an FPR with tied scores: randomised threshold, ties covering the FPR not resolvable",
    6: "TPR noise by a bootstrap over members and non-members",
    7: "one primary cell per ladder claim, the other cells one secondary family",
    9: "structural claims judged on the stated magnitude; 'supported on k of n planned'; zero-effect wording",
    10: "LiRA / RMIA references balanced per example (RMIA: ml_privacy_meter's computation)",
    11: "measurements that cannot differ between encodings shown as scoped",
}


def mends_touching(stage: str, claim: str, verdict: str, cls: str, comps: pd.DataFrame) -> list[int]:
    """The issue-21 items (MENDS) whose condition holds for one claim, from its verdict (item 9: the wording of
    planned comparisons and of "no zeros"), its verdict class and its comparisons."""
    c = comps[(comps.stage == stage) & (comps.claim == claim)] if len(comps) else comps
    items = []
    expected = c.get("expected", pd.Series(dtype=str)).astype(str)
    metric = c.get("metric", pd.Series(dtype=str)).astype(str)
    if expected.str.startswith("|a − b").any():
        items.append(1)
    if (pd.to_numeric(c.get("pairs"), errors="coerce") >= 2).any() and (pd.to_numeric(c.get("se test set"),
                                                                                        errors="coerce") > 0).any():
        items.append(2)
    if c.get("test-set floor", pd.Series(dtype=str)).astype(str).eq("paired examples").any():
        items.append(3)
    if (pd.to_numeric(c.get("pairs"), errors="coerce") == 1).any():
        items.append(4)
    if metric.str.contains("tpr").any():
        items += [5, 6]
    if stage == LADDER_STAGE:
        items.append(7)
    v = str(verdict)
    if cls == "structural" or "planned comparisons" in v or "no zeros" in v:
        items.append(9)
    if stage in ("06_post_training_quantization", LADDER_STAGE):
        items.append(10)
    if cls == "scoped":
        items.append(11)
    return items


OLD_LADDER_METRICS = {"auc": "AUC", "tpr_low": "TPR at low FPR"}   # stage 08's metric labels before issue 21


def what_moved(before: pd.DataFrame, after: pd.DataFrame, comps: pd.DataFrame,
               ladder_primary: dict | None = None) -> pd.DataFrame:
    """Every claim whose verdict changed between `before` (claims_all.csv of the run judged by the old engine, with
    its `verdict class` column: results/history/claims_before_issue21.csv stores it) and `after` (this run's),
    before → after, with the issue-21 items that touch it (`mends_touching`). Stage 08's old
    per-cell claims ("<claim> · <attack> · <metric>") are matched to the claim's primary cell (`ladder_primary`:
    params.yaml → 08_attack_ladder.primary); its other old cells are now secondary comparisons of the claim."""
    b = before.copy()
    parts = [ladder_parts(c) for c in b.claim]
    b["base"], b["atk"], b["met"] = [p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts]
    rows = []
    for _, r in after.iterrows():
        old = b[(b.stage == r.stage) & (b.base == r.claim)]
        if r.stage == LADDER_STAGE:
            p = (ladder_primary or {}).get(r.claim)
            old = old[(old.atk == p["attack"]) & (old.met == OLD_LADDER_METRICS[p["metric"]])] if p else old.iloc[0:0]
        if not len(old) or str(old.iloc[0]["our verdict"]) == str(r["our verdict"]):
            continue
        o = old.iloc[0]
        rows.append({"paper": r.paper, "stage": r.stage, "claim": r.claim,
                     "before": str(o["our verdict"]) + (f"  [old cell: {o.atk} · {o.met}]" if o.atk else ""),
                     "after": r["our verdict"], "class before": o[CLASS], "class after": r[CLASS],
                     "mends that touch it (issue 21 items)": ", ".join(
                         str(i) for i in mends_touching(r.stage, r.claim, r["our verdict"], r[CLASS], comps))})
    cols = ["paper", "stage", "claim", "before", "after", "class before", "class after", "class changed",
            "mends that touch it (issue 21 items)"]
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "class changed"])
    out.insert(7, "class changed", out["class before"] != out["class after"])
    # the claims whose class changed first (a finding gained or lost), then those whose wording alone changed
    return out.sort_values("class changed", ascending=False, kind="stable").reset_index(drop=True)


def moved_text(moved: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame) -> str:
    """Notebook 99's lines above the "what moved" table: issue 21's items, the classes before → after, and stage
    08's count of claims before (every ladder cell a claim) and now (one per claim, on its primary cell)."""
    pairs = moved.groupby(["class before", "class after"]).size().items()
    out = ("Issue 21's items: " + "; ".join(f"**{k}** {v}" for k, v in MENDS.items()) + ". Classes before → after: "
           + ", ".join(f"{a} → {b} × {n}" for (a, b), n in pairs))
    old08, new08 = before[before.stage == LADDER_STAGE], after[after.stage == LADDER_STAGE]
    if len(old08):
        tally = lambda t: ", ".join(f"{k} × {n}" for k, n in t[CLASS].value_counts().items())   # noqa: E731
        out += (f"\n\nStage 08 before: {len(old08)} ladder cells each counted as a claim ({tally(old08)}); now "
                f"{len(new08)} claims, each judged on its primary cell ({tally(new08)}); the other cells are "
                "secondary comparisons, Holm-corrected as one family per claim (item 7).")
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
    from ..claims.verdicts import paired
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


__all__ = ["Params", "SECTION", "CLAIM_STAGES",
           "DETAIL_FILE", "CLASS", "CLASSES", "LADDER_STAGE", "MENDS", "SWITCH_COLUMNS", "collect", "evidence",
           "counts", "reading", "reading_text", "ladder_grid", "mends_touching", "what_moved", "moved_text", "switches",
           "ladder_parts"]   # re-exported for notebook 99 (defined with the ladder claims in lib.claims.ladder_claims)
