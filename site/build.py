"""Build the companion's static site from the committed executed notebooks (`make site`).

    python site/build.py [OUT]          # default OUT: site/_build; the site lands in OUT/html

The source tree is assembled in OUT/src (never in the repository's results/), laid out as the repository is
so that a page's relative links work both on the site and on a git host: the executed notebooks
results/<stage>/<stage>.ipynb, the pages site/pages/*.md, and index.md, the
claims dashboard generated from results/99_claims/claims_all.csv (every claim, filterable by paper and by
verdict class with site/_static/claims.js, each row linking to the stage page and, where the "shown in"
label names a section of that notebook, to that section). Sphinx (myst-nb, sphinx-book-theme; site/conf.py)
renders it without executing anything. tests/test_site.py builds it with `build` and reads it in a headless
browser.
"""
from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

SITE = Path(__file__).resolve().parent
REPO = SITE.parent
CLAIMS = Path("results/99_claims/claims_all.csv")

# "shown in" labels that name a section by what it shows rather than by its heading: label -> a phrase of
# the heading (matched case-insensitively). A label that is itself part of a heading ("Fig. 3", "Table II")
# needs no entry.
SECTION_ALIASES = {
    "accuracy table": "Accuracy and membership inference",
    "accuracy vs AUC": "Accuracy and membership inference",
    "final-step vs trace attack": "membrane trace",
    "sweep": "Sensitivity",
    "Tables 1–2": "Tables 1–3",
    "Table 3": "Tables 1–3",
    "masking checks": "gradient masking",
    "ladder": "The ladder",
}

# the dashboard's columns, in order (claims_all.csv's names); the rest of the row is in 99's notebook
COLUMNS = ["paper", "claim", "verdict class", "our verdict", "shown in", "stage", "paper says",
           "paper's number (the paper's)", "clearest comparison", "ours (a, b)", "a − b [95% CI]", "p (Holm)"]


def stage_notebooks(repo: Path = REPO) -> list[Path]:
    """The executed notebook of every stage, results/<stage>/<stage>.ipynb, in stage order."""
    return sorted(p for p in (repo / "results").glob("*/*.ipynb") if p.stem == p.parent.name)


def read_claims(repo: Path = REPO) -> list[dict]:
    with open(repo / CLAIMS, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def claim_id(row: dict) -> str:
    """A claim's identity on the site: its stage and its name (a name alone repeats across 02 and 03)."""
    return f"{row['stage']}/{row['claim']}"


def section_id(title: str) -> str:
    """The HTML id docutils gives a section with this title (docutils.nodes.make_id)."""
    from docutils.nodes import make_id
    return make_id(title)


def headings(notebook: Path) -> list[str]:
    """The markdown headings of a notebook, in order, without their leading #s."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        out += [line.lstrip("#").strip() for line in source.splitlines() if re.match(r"#{1,6} ", line)]
    return out


def resolve_shown_in(label: str, notebooks: dict[str, Path]) -> tuple[str, str | None] | None:
    """'02: Fig. 3' -> (stage, section id or None): the stage whose number is the label's prefix, and the
    first heading of its notebook that names the label's first item (or its alias). None for an empty label
    or an unknown stage."""
    m = re.match(r"\s*(\d\d):\s*(.*)", label)
    if not m:
        return None
    stage = next((s for s in notebooks if s.startswith(m.group(1) + "_")), None)
    if stage is None:
        return None
    item = re.split(r",|\(", m.group(2))[0].strip()   # '06: Fig. 2, Fig. 6' -> 'Fig. 2'
    phrase = SECTION_ALIASES.get(item, item).casefold()
    for title in headings(notebooks[stage]):
        # the phrase as whole words: 'Fig. 2' must not match 'Fig. 20'
        if re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", title.casefold()):
            return stage, section_id(title)
    return stage, None


def stage_page(stage: str) -> str:
    """A stage's page on the site, relative to its root (the notebook's path in the repository, as .html)."""
    return f"results/{stage}/{stage}.html"


def _cell(text: str) -> str:
    return html.escape(text or "")


def dashboard(rows: list[dict], notebooks: dict[str, Path]) -> str:
    """index.md: the claims dashboard (raw HTML table + filters) and the site's table of contents."""
    papers = sorted({r["paper"] for r in rows})
    classes = sorted({r["verdict class"] for r in rows})
    head = "".join(f"<th>{_cell(c)}</th>" for c in COLUMNS)
    body = []
    for r in rows:
        cells = []
        for c in COLUMNS:
            if c == "stage":
                cells.append(f'<td><a class="stage" href="{stage_page(r["stage"])}">{_cell(r["stage"])}</a></td>')
            elif c == "shown in" and r[c]:
                stage, section = resolve_shown_in(r[c], notebooks) or (r["stage"], None)
                href = stage_page(stage) + (f"#{section}" if section else "")
                cells.append(f'<td><a class="shown-in" href="{href}">{_cell(r[c])}</a></td>')
            else:
                cells.append(f'<td class="verdict-class">{_cell(r[c])}</td>' if c == "verdict class"
                             else f"<td>{_cell(r[c])}</td>")
        body.append(f'<tr data-claim-id="{_cell(claim_id(r))}" data-paper="{_cell(r["paper"])}" '
                    f'data-verdict-class="{_cell(r["verdict class"])}">{"".join(cells)}</tr>')
    options = lambda values: "".join(f'<option value="{_cell(v)}">{_cell(v)}</option>' for v in values)
    stages = "\n".join(f"results/{s}/{s}" for s in notebooks)
    return f"""# Private and robust spiking networks: every claim, and what our runs say

A reproducible companion to four papers on how spiking neural networks (SNNs) compare with ordinary networks
(ANNs) under membership inference and adversarial attacks: paper A (quantization and surrogate gradients,
stages 02–04, 08), B (temporal input dynamics, 05, 08), C (post-training quantization, 06) and D (gradient
sparsity, 07). [Running the companion](site/pages/running.md) has the two commands (`make repro`, `make test`);
[Reading the results](site/pages/reading.md) says what each stage shows.

Below, the papers' quantitative claims, each judged by the stage that tests it (the table of
`results/99_claims/claims_all.csv`, made by the committed quick run). *Not resolved* is not *refuted*: see
[how claims are judged](site/pages/method.md#how-claims-are-judged). Each row links to the stage's executed notebook,
and "shown in" to the section that shows it.

```{{raw}} html
<div class="claims-filters">
  <label>paper <select id="filter-paper"><option value="">all</option>{options(papers)}</select></label>
  <label>verdict class <select id="filter-verdict"><option value="">all</option>{options(classes)}</select></label>
  <span id="claims-count" aria-live="polite">{len(rows)} of {len(rows)} claims</span>
</div>
<div class="claims-wrap">
<table id="claims" class="claims-table">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table>
</div>
```

```{{toctree}}
:caption: The companion
:maxdepth: 1

site/pages/running
site/pages/reading
site/pages/times
site/pages/method
site/pages/layout
```

```{{toctree}}
:caption: Stages (executed notebooks)
:maxdepth: 1

{stages}
```
"""


def assemble(src: Path, repo: Path = REPO) -> Path:
    """Lay out the build-time source tree in `src` (emptied first) from the repository `repo`."""
    if src.exists():
        shutil.rmtree(src)
    notebooks = {}
    for nb in stage_notebooks(repo):
        (src / "results" / nb.stem).mkdir(parents=True)
        shutil.copy2(nb, src / "results" / nb.stem / nb.name)
        notebooks[nb.stem] = nb
    shutil.copytree(SITE / "pages", src / "site" / "pages")
    (src / "index.md").write_text(dashboard(read_claims(repo), notebooks), encoding="utf-8")
    return src


def check_offline(html_dir: Path) -> list[str]:
    """Everything the built HTML and CSS would load from another host, as 'file: url': a `src` attribute, a
    `<link href>` (style sheets, preloads, icons) or a CSS `url()` that is `http(s)://` or protocol-relative.
    Plain `<a href>` links are not loads and are allowed."""
    remote = r"""["']?((?:https?:)?//[^"')\s>]+)"""
    patterns = [re.compile(r"\ssrc\s*=\s*" + remote, re.I),
                re.compile(r"<link\b[^>]*?\shref\s*=\s*" + remote, re.I),
                re.compile(r"url\(\s*" + remote, re.I)]
    bad = []
    for path in sorted(html_dir.rglob("*")):
        if path.suffix in {".html", ".css"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            bad += [f"{path.relative_to(html_dir)}: {m.group(1)}" for p in patterns for m in p.finditer(text)]
    return bad


def sphinx(src: Path, html_dir: Path, doctrees: Path) -> Path:
    """Render the source tree `src` into `html_dir` with site/conf.py (warnings are errors: a broken
    cross-reference fails the build)."""
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-W", "--keep-going",
                    "-c", str(SITE), "-d", str(doctrees), str(src), str(html_dir)], check=True)
    return html_dir


def build(out: Path, repo: Path = REPO) -> Path:
    """Build the site into `out`/html (source tree in `out`/src); return the html folder. Raises when
    Sphinx fails or when the built pages would load anything from another host."""
    out = Path(out)
    src = assemble(out / "src", repo)
    html_dir = sphinx(src, out / "html", out / "doctrees")
    bad = check_offline(html_dir)
    if bad:
        raise RuntimeError("the built site refers to other hosts:\n" + "\n".join(bad[:20]))
    return html_dir


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SITE / "_build"
    print(f"site: {build(target) / 'index.html'}")
