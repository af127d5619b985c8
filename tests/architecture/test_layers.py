"""The package's shape (docs/architecture.md), from its own imports as grimp draws
them, in-function imports included: no import circles, routes and commands
imported only from above, no hidden in-function imports, and the import-linter
contracts of pyproject.toml kept."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
from importlinter import configuration
from importlinter.application.use_cases import lint_imports

import qinqing

SRC = Path(qinqing.__file__).parent
DOORS = ("api", "deps", "cli", "schemas", "lane")
ABOVE_DOORS = ("qinqing.entrypoints", "qinqing.web", "qinqing.__main__")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("qinqing")


def _is_door(module: str) -> bool:
    parts = module.split(".")
    return len(parts) == 3 and parts[2] in DOORS and parts[1] not in ("http", "kit", "web")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_a_circle_is_found_when_there_is_one() -> None:
    """The check itself: a graph with a loop of three is reported."""
    g = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        g.add_import(importer=a, imported=b)
    assert _cycles(g) == [["p.a", "p.b", "p.c"]]


def test_routes_and_commands_are_imported_only_from_above(graph: grimp.ImportGraph) -> None:
    """A domain's api/cli/deps/schemas modules are doors: the app, the CLI, the web
    pages and other doors use them; no service, rule or model does."""
    wrong = sorted(
        f"{importer} -> {door}"
        for door in graph.modules
        if _is_door(door)
        for importer in graph.find_modules_that_directly_import(door)
        if not (_is_door(importer) or importer.startswith(ABOVE_DOORS))
    )
    assert wrong == []


def test_no_hidden_in_function_imports() -> None:
    """An import inside a function hides the layering; the few that must be (a heavy
    optional dependency, a cycle of process startup) say why in a comment above."""
    hidden = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        above = lines[sub.lineno - 2].strip() if sub.lineno > 1 else ""
                        if not above.startswith("#"):
                            hidden.append(f"{path.relative_to(SRC)}:{sub.lineno}")
    assert hidden == []


def test_the_import_contracts_are_kept() -> None:
    """pyproject.toml's import-linter contracts (as `make lint` runs them)."""
    configuration.configure()  # what the lint-imports command does before it lints
    assert lint_imports(config_filename=str(SRC.parents[1] / "pyproject.toml")) is True
