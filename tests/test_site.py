"""The static site (`make site`, site/build.py) and `dvc plots show`, read offline in a real headless browser.

The site is built once into a temporary folder from the committed executed notebooks, served on localhost and
read with Debian's Chromium driven by Playwright: the claims dashboard holds every claim of
results/99_claims/claims_all.csv and its filters show the right rows, every stage page shows its figures, no
internal link or anchor is broken, and every request the browser makes goes to localhost (each one is recorded;
anything else is aborted and fails the test). `dvc plots show` writes a page with Vega inline that draws its
plots from a file:// URL. Skipped only where /usr/bin/chromium is absent (.ci/run installs it).
"""
import csv
import functools
import html.parser
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _site_build():
    # site/build.py by path: a package named `site` would shadow Python's own `site` module
    spec = importlib.util.spec_from_file_location("site_build", ROOT / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sb = _site_build()


def claims_rows():
    with open(ROOT / "results" / "99_claims" / "claims_all.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def png_outputs(notebook: Path) -> int:
    """How many image/png outputs a notebook has (each becomes one <img> on its page)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))


# ---------------------------------------------------------------- the build (no browser needed)

@pytest.fixture(scope="module")
def site_html(tmp_path_factory):
    return sb.build(tmp_path_factory.mktemp("site"))


def test_build_offline_and_complete(site_html):
    assert sb.check_offline(site_html) == []
    for nb in sb.stage_notebooks():
        assert (site_html / sb.stage_page(nb.stem)).is_file(), nb.stem
    assert len(sb.stage_notebooks()) == 11
    for page in ("running", "reading", "times", "method", "layout"):
        assert (site_html / "site" / "pages" / f"{page}.html").is_file()
    assert "mathjax" not in (site_html / "index.html").read_text().lower()
    assert not list(site_html.rglob("require*.js"))


def test_check_offline_finds_remote_loads(tmp_path):
    (tmp_path / "a.html").write_text('<script src="https://cdn.example/v.js"></script>'
                                     '<link rel="stylesheet" href="//fonts.example/f.css">'
                                     '<a href="https://arxiv.org/abs/2502.18623">paper</a><img src="_images/x.png">')
    (tmp_path / "b.css").write_text("@font-face { src: url(https://fonts.example/x.woff2) }")
    assert sorted(sb.check_offline(tmp_path)) == ["a.html: //fonts.example/f.css",
                                                  "a.html: https://cdn.example/v.js",
                                                  "b.css: https://fonts.example/x.woff2"]


def test_every_shown_in_resolves_to_a_section():
    notebooks = {nb.stem: nb for nb in sb.stage_notebooks()}
    for row in claims_rows():
        if row["shown in"]:
            stage, section = sb.resolve_shown_in(row["shown in"], notebooks)
            assert stage.startswith(row["shown in"][:2]), row["shown in"]
            assert section, f"'{row['shown in']}' names no heading of {stage}"
    assert sb.resolve_shown_in("", notebooks) is None


def test_figure_alt_text_and_no_stderr(tmp_path):
    """A fixture notebook (a figure with IPython's alt metadata, one without, a stderr progress bar) through
    site/conf.py: the first <img> carries the alt text, the second a fallback, and stderr is not on the page."""
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAFElEQVR4nGP8z8DwnwEJMDGgAQBFAQIC"
           "YzfZqQAAAABJRU5ErkJggg==")
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "language": "python",
          "display_name": "Python 3"}, "language_info": {"name": "python"}},
          "cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# Fixture\n"},
                    {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1, "source": "plot()",
                     "outputs": [
                         {"output_type": "stream", "name": "stderr", "text": "train 40%|████ 4/10 TQDM-NOISE\r"},
                         {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Image>"},
                          "metadata": {"image/png": {"alt": "AUC against θ for ANN and SNN"}}},
                         {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Image>"},
                          "metadata": {}}]}]}
    src = tmp_path / "src"
    src.mkdir()
    (src / "fixture.ipynb").write_text(json.dumps(nb))
    (src / "index.md").write_text("# Index\n\n```{toctree}\nfixture\n```\n")
    page = (sb.sphinx(src, tmp_path / "html", tmp_path / "doctrees") / "fixture.html").read_text()
    imgs = [a for a in _tags(page, "img")]
    assert [a["alt"] for a in imgs] == ["AUC against θ for ANN and SNN", "Figure from fixture"]
    assert "TQDM-NOISE" not in page


# ---------------------------------------------------------------- served, read in Chromium

class _Tags(html.parser.HTMLParser):
    def __init__(self, tag):
        super().__init__()
        self.tag, self.found = tag, []

    def handle_starttag(self, tag, attrs):
        if tag == self.tag:
            self.found.append(dict(attrs))


def _tags(page: str, tag: str) -> list[dict]:
    parser = _Tags(tag)
    parser.feed(page)
    return parser.found


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and (tag != "link" or key == "href"):
                self.links.append(attrs[key])


@pytest.fixture(scope="module")
def server(site_html):
    handler = functools.partial(_QuietHandler, directory=str(site_html))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (Debian: apt-get install -y chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright   # pinned in requirements.txt: missing is a failure
    with sync_playwright() as p:
        # launch() gives every run a fresh temporary profile (its own --user-data-dir)
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _local(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in {"data", "blob", "file"} or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)


@pytest.fixture
def page(browser):
    """A browser page whose every request is recorded; one to any host but localhost (or a scheme other than
    http, file, data, blob) is aborted, so nothing leaves the machine, and fails the test at teardown. So does
    an uncaught JavaScript error."""
    context = browser.new_context()
    requests_seen = []

    def route(r):
        requests_seen.append(r.request.url)
        r.continue_() if _local(r.request.url) else r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert requests_seen, "the page made no request at all"
    assert [u for u in requests_seen if not _local(u)] == [], "requests to other hosts"
    assert errors == [], errors


def _visible_ids(pg):
    return pg.eval_on_selector_all("#claims tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.claimId)")


def test_dashboard_has_every_claim(page, server):
    page.goto(server + "index.html")
    rows = claims_rows()
    assert len(rows) == 72
    ids = page.eval_on_selector_all("#claims tbody tr", "rows => rows.map(r => r.dataset.claimId)")
    assert ids == [sb.claim_id(r) for r in rows]
    assert len(set(ids)) == len(ids)
    assert _visible_ids(page) == ids
    assert page.inner_text("#claims-count") == f"{len(rows)} of {len(rows)} claims"
    # every row links to its stage page; a "shown in" cell to a section of the named stage
    stage_links = page.eval_on_selector_all("#claims tbody tr a.stage", "as => as.map(a => a.getAttribute('href'))")
    assert stage_links == [sb.stage_page(r["stage"]) for r in rows]
    shown = page.eval_on_selector_all("#claims a.shown-in", "as => as.map(a => a.getAttribute('href'))")
    assert len(shown) == sum(bool(r["shown in"]) for r in rows) and all("#" in h for h in shown)


def test_dashboard_filters(page, server):
    page.goto(server + "index.html")
    rows = claims_rows()
    everything = [sb.claim_id(r) for r in rows]

    def expect(paper, verdict):
        page.select_option("#filter-paper", paper)
        page.select_option("#filter-verdict", verdict)
        want = [sb.claim_id(r) for r in rows
                if paper in ("", r["paper"]) and verdict in ("", r["verdict class"])]
        assert _visible_ids(page) == want, (paper, verdict)
        assert page.inner_text("#claims-count") == f"{len(want)} of {len(rows)} claims"
        return want

    for paper in sorted({r["paper"] for r in rows}):
        assert 0 < len(expect(paper, "")) < len(rows)
    for verdict in sorted({r["verdict class"] for r in rows}):
        assert 0 < len(expect("", verdict)) < len(rows)
    combos = {(r["paper"], r["verdict class"]) for r in rows}   # both filters at once, on whatever the run found
    paper, verdict = sorted(combos)[0]
    assert expect(paper, verdict) == [sb.claim_id(r) for r in rows
                                      if r["paper"] == paper and r["verdict class"] == verdict] != []
    empty = next((p_, v_) for p_ in sorted({r["paper"] for r in rows})
                 for v_ in sorted({r["verdict class"] for r in rows}) if (p_, v_) not in combos)
    assert expect(*empty) == []                 # an empty combination shows nothing, and says so
    assert expect("", "") == everything


def test_stage_pages_show_their_figures(page, server):
    for nb in sb.stage_notebooks():
        page.goto(server + sb.stage_page(nb.stem))
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "article img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.getAttribute('alt')])")
        assert len(images) == png_outputs(nb) > 0, nb.stem
        for complete, width, alt in images:
            assert complete and width > 0 and alt, (nb.stem, complete, width, alt)


def test_search_works_locally(page, server):
    page.goto(server + "search.html?q=LiRA")
    page.wait_for_selector("#search-results li", timeout=30_000)
    assert page.locator("#search-results li").count() > 0


def test_no_link_is_broken(site_html, server):
    """Crawl every page reachable from index.html over HTTP: each internal href/src answers, and each
    #fragment names an element id on its page."""
    pages, seen, todo, broken = {}, set(), [server + "index.html"], []
    fragments = []
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            with urllib.request.urlopen(url) as resp:
                body = resp.read()
        except Exception as exc:
            broken.append(f"{url}: {exc}")
            continue
        if not url.endswith(".html"):
            continue
        parser = _Ids()
        parser.feed(body.decode("utf-8"))
        pages[url] = parser.ids
        for link in parser.links:
            target = urllib.parse.urljoin(url, link)
            parts = urllib.parse.urlsplit(target)
            if parts.scheme in {"mailto", "data", "javascript"}:
                continue
            assert parts.scheme == "http" and parts.hostname in LOCAL_HOSTS, f"{url} links off the site: {link}"
            clean = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
            if parts.fragment:
                fragments.append((url, clean, urllib.parse.unquote(parts.fragment)))
            todo.append(clean)
    assert broken == []
    assert len(pages) >= 10 + 5 + 1
    missing = [f"{src} -> {page}#{frag}" for src, page, frag in fragments if frag not in pages.get(page, set())]
    assert missing == []


# ---------------------------------------------------------------- dvc plots show, offline

@pytest.fixture(scope="module")
def dvc_plots(tmp_path_factory):
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    out = tmp_path_factory.mktemp("dvc_plots")
    subprocess.run([dvc, "plots", "show", "-o", str(out)], cwd=ROOT, check=True, capture_output=True)
    return out / "index.html"


def test_dvc_plots_page_is_offline(dvc_plots):
    page = dvc_plots.read_text(encoding="utf-8")
    scripts = _tags(page, "script")
    assert scripts and not [s for s in scripts if s.get("src")]          # no script is loaded from anywhere
    assert "cdn.jsdelivr" not in page
    for package in ("vega@5.20.2", "vega-lite@5.2.0", "vega-embed@6.18.2"):
        assert f'data-package="{package}"' in page
    assert page.count("vegaEmbed(") > 0


def test_dvc_plots_render_offline(dvc_plots, page):
    page.goto(dvc_plots.as_uri())
    page.wait_for_selector("div[id] svg, div[id] canvas", timeout=30_000)
    assert page.locator("div[id] canvas, div[id] svg").count() > 0
