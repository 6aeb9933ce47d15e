"""The package's rooms: imports run one way, and only the face modules import the model."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "recommender"
#: The modules above the model: they may import it (and ``__init__``, the public namespace).
FACES = {"_cli", "_evaluate", "_serving"}


def imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports (``from . import x`` included)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                found |= {n for n in names if n in modules and n != path.stem}
        edges[path.stem] = found
    return edges


def test_imports_have_no_cycle():
    edges = imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(edges[module]):
            assert target not in path, "import cycle: " + " -> ".join([*path, target])
            if target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(edges):
        visit(module, [module])


def test_only_the_faces_import_the_model():
    importers = {m for m, targets in imports().items() if "_model" in targets}
    assert importers <= FACES | {"__init__"}, importers
