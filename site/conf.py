"""Sphinx configuration of the companion's static site (built by site/build.py; `make site`).

The source tree is assembled at build time (site/build.py): the committed executed notebooks
results/<stage>/<stage>.ipynb, the pages of site/pages/ and a generated claims dashboard (index.md).
Nothing is executed and nothing is fetched: the site must read offline (tests/test_site.py checks it).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "Private and robust spiking networks"
author = "the companion's authors"
copyright = "the companion's authors"

extensions = ["myst_nb", "nb_alt", "plain_math"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}   # myst-nb claims both

# The notebooks are the committed executed copies: never run them again, and keep the progress bars and
# warnings of stderr off the site (they belong to the terminal).
nb_execution_mode = "off"
nb_output_stderr = "remove"
nb_merge_streams = True

# Offline by construction. No page has math; should one ever, it is shown as TeX source (_ext/plain_math.py)
# rather than by MathJax from a CDN. myst-nb adds require.js only for widget outputs; the notebooks have
# none, and an empty nb_ipywidgets_js keeps it off in any case.
html_math_renderer = "plain"
nb_ipywidgets_js = {}
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "SNN privacy companion"
html_static_path = ["_static"]
html_css_files = ["claims.css"]
html_js_files = ["claims.js"]
html_copy_source = False          # no _sources/*.ipynb copies (large, and not a page)
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    # no launch buttons (Binder/Colab), no repository or issue links, no download buttons: nothing that
    # points off this machine
    "use_download_button": False,
    "use_fullscreen_button": True,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "launch_buttons": {},
    "show_toc_level": 2,
    "secondary_sidebar_items": {"index": [], "**": ["page-toc"]},
}
