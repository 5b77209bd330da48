"""The layout keeps its shape: no module of harness/, conformance/ or reference/ over 500 lines, and no import cycle
among them (counting the imports a module runs when it is imported: not those inside functions or under
`if TYPE_CHECKING:`)."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "conformance", "reference")
MAX_LINES = 500


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name -> file, for every .py under the packages (a package is named by its __init__.py)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def long_modules(root: Path, packages: tuple[str, ...]) -> dict[str, int]:
    """File (relative to `root`) -> line count, for the modules over MAX_LINES."""
    counts = {str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
              for path in module_files(root, packages).values()}
    return {path: n for path, n in counts.items() if n > MAX_LINES}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported: module and class level, in if/try/with blocks, but
    not in functions nor under `if TYPE_CHECKING:` (its else branch runs)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time(node.body)
            yield from _import_time(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _import_time(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _import_time(node.body)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules among `modules` it imports at import time."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph[name] = set()
        for node in _import_time(ast.parse(path.read_text(encoding="utf-8"), str(path)).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from package import name` imports the submodule package.name when there is one
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            edges.update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph`: each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_is_over_500_lines() -> None:
    assert len(module_files(ROOT, PACKAGES)) > 40  # the walk found the packages
    long = long_modules(ROOT, PACKAGES)
    assert not long, f"modules over {MAX_LINES} lines (split them along concept lines): {long}"


def test_no_import_cycle() -> None:
    graph = import_graph(module_files(ROOT, PACKAGES))
    assert "conformance.execute.session" in graph["conformance.execute.subject"]  # the graph sees real imports
    found = cycles(graph)
    assert not found, "import cycles among the packages' modules (at import time): " + \
        "; ".join(" <-> ".join(c) for c in found)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A package whose modules import each other in each of the ways import_graph tells apart."""
    package = tmp_path / "pkg"
    package.mkdir()
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n"
                "def f():\n    from . import a\n",
        "c.py": "from .d import y\n",
        "d.py": "try:\n    import pkg.c\nexcept ImportError:\n    pass\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    return tmp_path


def test_graph_counts_import_time_imports_only(tree: Path) -> None:
    graph = import_graph(module_files(tree, ("pkg",)))
    assert graph["pkg.a"] == {"pkg", "pkg.b"}
    assert graph["pkg.b"] == set()  # TYPE_CHECKING and a function's import are not run at import time
    assert graph["pkg.c"] == {"pkg.d"}
    assert graph["pkg.d"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.c", "pkg.d"]]


def test_long_module_is_found(tree: Path) -> None:
    (tree / "pkg" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tree / "pkg" / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert long_modules(tree, ("pkg",)) == {"pkg/long.py": MAX_LINES + 1}
