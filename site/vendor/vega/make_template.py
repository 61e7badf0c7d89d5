"""Write dvc_plots.html, the page template `dvc plots show` uses (.dvc/config: plots.html_template).

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so it is blank offline. This template
carries the three libraries inline (the versions DVC's template names), so the page renders with no network.
It leaves out DVC's {scripts} placeholder on purpose: that is where DVC would put its CDN <script> tags.

    python site/vendor/vega/make_template.py     # needs npm and the npm registry; see README.md

The tarballs come from the npm registry (`npm pack`), are checked against the integrity hashes below, and
their licences are copied beside the template.
"""
import base64
import hashlib
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# package, version (dvc_render.vega.VegaRenderer.SCRIPTS), file in the tarball, npm integrity (sha512)
PACKAGES = [
    ("vega", "5.20.2", "package/build/vega.min.js",
     "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw=="),
    ("vega-lite", "5.2.0", "package/build/vega-lite.min.js",
     "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw=="),
    ("vega-embed", "6.18.2", "package/build/vega-embed.min.js",
     "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg=="),
]

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- vega, vega-lite and vega-embed inline (site/vendor/vega/README.md): this page loads nothing from
         the internet. DVC's placeholder for scripts is left out on purpose (it holds CDN script tags). -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def script(name: str, version: str, code: str) -> str:
    # a source map comment would point the browser's devtools at a file that is not here
    code = re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "", code)
    assert "</script" not in code.lower() and "{plot_divs}" not in code and "{scripts}" not in code
    return f'    <script data-package="{name}@{version}">\n{code}\n    </script>'


def main() -> None:
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, member, integrity in PACKAGES:
            subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            tgz = Path(tmp) / f"{name}-{version}.tgz"
            digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
            if digest != integrity:
                raise SystemExit(f"{tgz.name}: integrity {digest} is not the registry's {integrity}")
            with tarfile.open(tgz) as tar:
                code = tar.extractfile(member).read().decode("utf-8")
                (HERE / f"LICENSE.{name}").write_bytes(tar.extractfile("package/LICENSE").read())
            scripts.append(script(name, version, code))
    (HERE / "dvc_plots.html").write_text(PAGE.format(scripts="\n".join(scripts)), encoding="utf-8")


if __name__ == "__main__":
    main()
