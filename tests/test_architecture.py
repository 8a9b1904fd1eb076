"""The shape of the package: no import cycle, no private names across modules, few imports
inside functions, no sprawling function.  Read from the source with ``ast`` (and radon for
cyclomatic complexity), so a regression fails here before it spreads."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hypernodes"

#: imports inside functions that stay: optional engines loaded on first use (PEP 562), the
#: command's click-free start, viz's graphviz, and telemetry's optional packages
MAX_FUNCTION_IMPORTS = 15

#: No function above cyclomatic complexity 20, and at most 8 above 15 (seven today; the
#: count may only go down).
MAX_OVER_15 = 7


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _target(module: str, is_package: bool, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module if node.module and node.module.startswith("hypernodes") else None
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_only(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(inner) for inner in ast.walk(node))
    return ids


def _imports() -> tuple[nx.DiGraph, list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The module graph (imports inside functions included), the imports made inside
    functions, and the private names imported from another module."""
    modules = _modules()
    graph: nx.DiGraph = nx.DiGraph()
    inside: list[tuple[str, str]] = []
    private: list[tuple[str, str, str]] = []
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text())
        graph.add_node(module)
        skip = _type_only(tree)
        in_function = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            pairs: list[tuple[str, str | None]] = []
            if isinstance(node, ast.Import):
                pairs = [(a.name, None) for a in node.names if a.name.startswith("hypernodes")]
            else:
                base = _target(module, is_package, node)
                if base is None:
                    continue
                for alias in node.names:
                    name = f"{base}.{alias.name}"
                    pairs.append((name, None) if name in modules else (base, alias.name))
            for target, name in pairs:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target == module or target not in modules:
                    continue
                graph.add_edge(module, target)
                if id(node) in in_function:
                    inside.append((module, target))
                if name and name.startswith("_") and not name.startswith("__"):
                    private.append((module, target, name))
    return graph, inside, private


def test_no_import_cycle_between_modules():
    graph, _, _ = _imports()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []


def test_no_private_name_is_imported_from_another_module():
    _, _, private = _imports()
    assert private == []


def test_few_imports_of_our_own_modules_inside_functions():
    _, inside, _ = _imports()
    assert len(inside) <= MAX_FUNCTION_IMPORTS, sorted(inside)


def test_the_execution_package_imports_nothing_above_it():
    graph, _, _ = _imports()
    above = ("hypernodes.model.pipeline", "hypernodes.engines")  # the front door, the engines
    wrong = [
        (a, b)
        for a, b in graph.edges
        if a.startswith("hypernodes.execution") and (b == above[0] or b.startswith(above[1]))
    ]
    assert wrong == []


def test_no_function_is_too_complex():
    radon = pytest.importorskip("radon.complexity", reason="radon is in the dev extra")
    scores: set[tuple[int, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        for block in radon.cc_visit(path.read_text()):
            for item in [block, *getattr(block, "methods", [])]:
                if not hasattr(item, "is_method") and not hasattr(item, "closures"):
                    continue
                if type(item).__name__ == "Class":
                    continue
                scores.add((item.complexity, f"{path.name}:{item.lineno} {item.name}"))
    over_20 = sorted(s for s in scores if s[0] > 20)
    over_15 = sorted(s for s in scores if s[0] > 15)
    assert over_20 == []
    assert len(over_15) <= MAX_OVER_15, over_15
