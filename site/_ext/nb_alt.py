"""Alt text for notebook figures on the site.

myst-nb (1.4) turns an `image/png` output into an image node but reads only `width` and `height` from the
output's metadata; IPython's `Image(..., alt=...)` stores the alt text as `{"image/png": {"alt": "..."}}`.
This extension wraps myst-nb's image renderer so that the `<img>` carries that text. An image without it gets
"Figure from <notebook>" rather than the hashed file name Sphinx would otherwise write.
"""
from pathlib import Path

from myst_nb.core.render import NbElementRenderer

_render_image = NbElementRenderer.render_image


def render_image(self, data):
    nodes = _render_image(self, data)
    alt = (data.output_metadata.get(data.mime_type) or {}).get("alt")
    if not alt:
        alt = f"Figure from {Path(self.renderer.document['source']).stem}"
    for node in nodes:
        node["alt"] = str(alt)
    return nodes


def setup(app):
    NbElementRenderer.render_image = render_image
    return {"parallel_read_safe": True, "parallel_write_safe": True}
