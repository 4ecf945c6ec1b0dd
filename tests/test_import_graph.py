"""The module import graph of ``ledger/`` and ``projections/`` has no cycle.

Every import statement counts: at the top of a module, inside a function, under
``if TYPE_CHECKING:`` — a function-local import delays a cycle to run time, it does not
remove it, and a reader still has to hold both modules in mind at once. Each module
names the modules it imports; an edge goes to the most specific module that exists
(``from .base import build`` -> ``projections.base``; ``from . import _lmdb`` ->
``ledger._lmdb``, not the package). A cycle fails the test with its path.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "projections")


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``packages``."""
    out: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _targets(module: str, is_package: bool, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join([*base, *([node.module] if node.module else [])])
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules (of ``files``) it imports anywhere in its body."""
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _targets(module, is_package, node)
            if isinstance(node, ast.ImportFrom):
                # ``from X import name``: name is a submodule, or an attribute of X
                subs = [n for n in names[:-1] if n in files]
                names = subs if len(subs) == len(names) - 1 else [*subs, names[-1]]
            for name in names:
                parts = name.split(".")
                while parts and ".".join(parts) not in files:
                    parts.pop()
                target = ".".join(parts)
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_ledger_and_projections_import_no_cycle():
    graph = import_graph(module_files(ROOT, PACKAGES))
    assert "projections.base" in graph and "ledger.errors" in graph  # the walk saw them
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_ledger_never_imports_projections_or_cli():
    graph = import_graph(module_files(ROOT, (*PACKAGES, "cli")))
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m.split(".")[0] == "ledger"
        for t in targets
        if t.split(".")[0] in ("projections", "cli")
    )
    assert bad == []


def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(tmp_path, ["pkg"])


def test_a_cycle_through_a_function_local_import_is_found(tmp_path):
    files = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from .b import thing\n",
            "pkg/b.py": "def thing():\n    from pkg.a import other\n    return other\n",
        },
    )
    assert find_cycle(import_graph(files)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_a_type_checking_import_counts_and_a_package_import_is_not_a_cycle(tmp_path):
    files = _package(
        tmp_path,
        {
            "pkg/__init__.py": "from .a import A as A\n",
            "pkg/a.py": "from . import b\nA = 1\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n",
            "pkg/c.py": "import pkg.b\n",
        },
    )
    graph = import_graph(files)
    assert graph["pkg.a"] == {"pkg.b"}  # ``from . import b`` is an edge to pkg.b only
    assert find_cycle(graph) == ["pkg.b", "pkg.c", "pkg.b"]
