"""Our test modules stay independent: no tests/test_*.py imports another (shared pieces live in support modules), and
a support module is imported under one name only (`tests.x`), so it is never loaded twice."""

import ast
from pathlib import Path

__all__: list[str] = []

TESTS = Path(__file__).resolve().parent
TEST_MODULES = sorted(TESTS.glob("test_*.py"))
# Our support modules (tests/*.py that are not test modules), which pytest's rootdir insertion would also make
# importable under their bare name.
SUPPORT = {p.stem for p in TESTS.glob("*.py") if not p.stem.startswith("test_") and p.stem != "conftest"} | {
    p.name for p in TESTS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every module an import statement names, `from a import b` as both a and a.b."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.append((node.lineno, base))
            names += [(node.lineno, f"{base}.{alias.name}" if node.module else base + alias.name)
                      for alias in node.names]
    return names


def offences(path: Path) -> list[str]:
    """What in one test module imports a test module, or a support module by a name other than tests.<name>."""
    found: dict[int, str] = {}  # one per import statement
    for line, name in imported(ast.parse(path.read_text(), str(path))):
        if line in found:
            continue
        parts = name.lstrip(".").split(".")
        if name.startswith("."):
            found[line] = f"{path.name}:{line}: relative import {name} (import tests.<module>)"
        elif any(part.startswith("test_") for part in parts) and parts[0] in ("tests", *[p.stem for p in TEST_MODULES]):
            found[line] = f"{path.name}:{line}: imports the test module {name}; move what it shares to a support module"
        elif parts[0] in SUPPORT:
            found[line] = (f"{path.name}:{line}: imports {name} by its bare name; import it as tests.{name}, the one "
                           "name it is loaded under")
    return list(found.values())


def test_no_test_module_imports_another_or_a_support_module_by_a_second_name() -> None:
    """Every tests/test_*.py imports only support modules, each as tests.<name>."""
    problems = [problem for path in TEST_MODULES for problem in offences(path)]
    assert not problems, "\n".join(problems)


def test_the_check_sees_each_kind_of_offending_import(tmp_path: Path) -> None:
    """The check finds `from tests.test_x import ...`, `from tests import test_x`, `import test_x`, a relative
    import and a support module imported bare; `from tests.support import ...` passes."""
    bad = tmp_path / "test_bad.py"
    bad.write_text("from tests.test_zoo import GROUPS\nfrom tests import test_zoo\nimport test_plugin\n"
                   "from .test_hang import x\nfrom support import summary\nfrom tests.support import summary\n")
    assert [int(problem.split(":")[1]) for problem in offences(bad)] == [1, 2, 3, 4, 5]
