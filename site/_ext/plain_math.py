"""Math without MathJax: the site loads nothing from a CDN, and no page has math today.

Sphinx's default HTML math renderer is MathJax from a CDN (and refuses an empty `mathjax_path`). This
renderer writes any math as its TeX source in a <span>/<div class="math">, so a formula that ever appears
stays readable offline instead of pulling a script from the internet.
"""
from html import escape

from docutils import nodes


def _inline(self, node):
    self.body.append(f'<span class="math">{escape(node.astext())}</span>')
    raise nodes.SkipNode


def _block(self, node):
    self.body.append(f'<div class="math"><pre>{escape(node.astext())}</pre></div>')
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("plain", (_inline, None), (_block, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
