"""No import runs back up the layers: a module imports only from its own layer or the ones below."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ramanid"

#: lowest first; a module may import from its own rank or a lower one
LAYERS = [
    ["errors", "atomic", "chemistry", "cluster", "cores", "data", "jsonable"],
    ["spectra"],
    ["io"],
    ["preprocessing"],
    ["targets", "models", "holdout", "confidence", "search", "quality", "mixture"],
    ["training"],
    # a model folder holds one of training's estimators; inference reads it through bundle
    ["bundle", "evaluation", "plots", "datasets"],
    # training for a folder: the recipe of cross-validation, the folder format and the metrics
    ["deploy"],
    ["predict"],
    ["explain", "maps"],
    ["demo", "serve", "__init__", "assess"],
    ["cli"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _layer(module: str) -> str:
    """``ramanid.io.rruff`` -> ``io``; ``ramanid`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ramanid"):
            names = [node.module] if node.module != "ramanid" else [f"ramanid.{a.name}" for a in node.names]
            yield from ((name, node.lineno) for name in names)
        elif isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.startswith("ramanid"))


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    relative = path.relative_to(PACKAGE).with_suffix("")
    own = relative.parts[0] if len(relative.parts) > 1 else relative.name
    assert own in RANK, f"{relative}: add its layer to LAYERS"
    upward = [
        f"line {line}: {name}"
        for name, line in _imports(path)
        if _layer(name) != "__version__" and RANK.get(_layer(name), -1) > RANK[own]
    ]
    assert not upward, f"{relative} imports from a higher layer: {upward}"


def test_importing_plots_leaves_matplotlib_alone():
    """Figures use matplotlib's object API: no pyplot import, so the user's backend is untouched."""
    import subprocess
    import sys

    code = "import sys, ramanid.plots, ramanid.explain; print('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
