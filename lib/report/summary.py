"""Every stage's verdicts in one place (notebook 99_claims): reads the claims tables the stages wrote
(`results/<stage>/claims.csv` and the per-comparison file), trains and recomputes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

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


__all__ = ["DETAIL_FILES", "CLASSES", "verdict_class", "collect", "evidence", "counts"]
