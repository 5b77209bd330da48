"""The install path of the README's "In CI" recipe: the wheel, installed with pip into a fresh plain venv (its
dependencies from the package index), checks a destination kept in a plain directory on PYTHONPATH, outside any
repository and package, and explains a clause from the contract it ships. It runs twice: with the newest hypothesis
the index offers (what pip picks) and with the oldest the wheel declares it supports (pyproject's lower bound).

One venv serves the whole run, also under pytest-xdist (the first worker builds it, under a file lock). Without
the index (pip cannot download pydantic, hypothesis, pytest and pyfakefs) the tests are skipped, saying so.
"""

import fcntl
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.contract.clauses import CLAUSES
from conformance.contract.document import clause_section
from tests.support import summary

REPO = Path(__file__).resolve().parents[1]
NETWORK_TROUBLE = re.compile(
    r"Could not find a version that satisfies|No matching distribution found|NewConnectionError|Failed to establish "
    r"a new connection|Temporary failure in name resolution|Name or service not known|Network is unreachable|"
    r"ConnectTimeout|Read timed out|ProxyError|SSLError|Connection refused", re.I)

MYDEST = '''
"""A destination kept in a plain directory: the reference's file destination in the default middleware."""

from harness import Registration, default_destination_middleware, destination_with_middleware, directory_reader
from reference import FileDestination


def new_destination():
    return destination_with_middleware(FileDestination(), *default_destination_middleware())


registration = Registration(
    factory=new_destination,
    config={"directory": "{tmp}/out"},
    read_back=directory_reader("directory"),
    directory_param="directory",
)
'''


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would point Python or pytest at this checkout or its options."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONFORMANCE_DESTINATION", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_XDIST")}
    return {**env, **extra}


def _build_wheel(root: Path) -> Path:
    """The wheel, built from a copy of the sources (the checkout is left alone); offline when it can be."""
    src = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".hypothesis")
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "CONTRACT.md"):
        shutil.copy2(REPO / name, src / name)
    for package in ("harness", "reference", "conformance"):
        shutil.copytree(REPO / package, src / package, symlinks=True, ignore=ignore)
    for isolation in (["--no-isolation"], []):  # offline with the test extra installed; else fetch setuptools
        built = _run([sys.executable, "-m", "build", *isolation, "--wheel", "--outdir", str(root / "dist"), str(src)],
                     cwd=root)
        if built.returncode == 0:
            return next((root / "dist").glob("destination_conformance-*.whl"))
        if not (isolation and "Missing dependencies" in built.stdout + built.stderr):
            break
    raise AssertionError(f"python -m build --wheel failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")


def oldest_hypothesis() -> str:
    """The oldest hypothesis the project declares it supports: the lower bound of its requirement in pyproject."""
    bound = re.search(r'^\s*"hypothesis>=([0-9.]+)",?$', (REPO / "pyproject.toml").read_text(), re.M)
    assert bound, "pyproject's hypothesis requirement has no plain lower bound"
    return bound.group(1)


def _make_venv(root: Path, pins: tuple[str, ...] = ()) -> dict[str, str]:
    """Builds the wheel and installs it, with `pins` beside it, into a fresh plain venv: {"python": ...} or
    {"skip": why}."""
    wheel = _build_wheel(root)
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    if made.returncode != 0:
        return {"skip": f"python -m venv cannot create a venv here: {made.stderr.strip()[-300:]}"}
    python = venv / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel), *pins],
                     cwd=root, env=_clean_env())
    if installed.returncode != 0:
        output = installed.stdout + installed.stderr
        if NETWORK_TROUBLE.search(output):
            last = [line for line in output.splitlines() if line.strip()][-1]
            return {"skip": "pip cannot reach the package index to install the wheel's dependencies (pydantic, "
                            f"hypothesis, pytest, pyfakefs) into a fresh venv: {last.strip()[:300]}"}
        raise AssertionError(f"pip install {wheel.name} into a fresh venv failed:\n{output[-4000:]}")
    version = _run([str(python), "-c", "import hypothesis; print(hypothesis.__version__)"], cwd=root,
                   env=_clean_env())
    return {"python": str(python), "venv": str(venv), "wheel": wheel.name, "hypothesis": version.stdout.strip()}


HYPOTHESIS = {"newest": (), "oldest": (f"hypothesis=={oldest_hypothesis()}",)}


@pytest.fixture(scope="session", params=sorted(HYPOTHESIS))
def venv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A venv with the wheel installed, with the newest or the oldest supported hypothesis, each made once per test
    run (shared by xdist workers)."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the 'build' package is not installed (pip install build, or the project's test extra), so the "
                    "wheel cannot be built here")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: the run's common directory
    root = shared / f"installed-wheel-{request.param}"
    root.mkdir(exist_ok=True)
    with open(shared / f"installed-wheel-{request.param}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result_file = root / "result.json"
        if not result_file.exists():
            try:
                result = _make_venv(root, HYPOTHESIS[request.param])
            except AssertionError as err:
                result = {"error": str(err)}
            result_file.write_text(json.dumps(result))
        result = json.loads(result_file.read_text())
    if "skip" in result:
        pytest.skip(result["skip"])
    if "error" in result:
        pytest.fail(result["error"])
    if request.param == "oldest":
        assert result["hypothesis"] == oldest_hypothesis(), result
    return result


def test_the_wheel_checks_a_destination_in_a_plain_directory(venv: dict[str, str], tmp_path: Path) -> None:
    """`python -m pytest --destination=mydest:registration` with the venv's python, mydest.py alone in a directory
    on PYTHONPATH (no package, no project files), run from another directory: every clause that applies passes,
    and the CI recipe's optional baseline, missing yet, is only a notice."""
    connector = tmp_path / "connector"
    connector.mkdir()
    (connector / "mydest.py").write_text(MYDEST, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    assert REPO not in tmp_path.parents and not (connector / "__init__.py").exists()
    result = _run([venv["python"], "-m", "pytest", "--destination=mydest:registration", "-p", "no:cacheprovider",
                   "--hypothesis-profile=conformance-dev", "--conformance-report=conformance.json",
                   "--conformance-baseline=conformance-baseline.json"],
                  cwd=work, env=_clean_env(PYTHONPATH=str(connector)))
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    rows = summary(out, "mydest:registration")
    assert set(rows) == set(CLAUSES)
    assert {c: s for c, s in rows.items()
            if s != "passed" and not c.startswith(("pipeline.", "fault.backend-"))} == {}
    engine = [c for c in CLAUSES if c.startswith(("pipeline.", "fault.backend-"))]  # need Conduit or a TCP backend
    assert re.search(rf"^  {len(CLAUSES) - len(engine)} passed, 0 failed, .*{len(engine)} not checked", out,
                     re.M), out[-2000:]
    assert "no baseline yet (conformance-baseline.json does not exist)" in out
    report = json.loads((work / "conformance.json").read_text())
    assert report["suite_version"] and "mydest:registration" in report["destinations"]
    passed = {t["nodeid"] for row in report["destinations"]["mydest:registration"]["clauses"].values()
              for t in row["tests"] if isinstance(t, dict) and t["outcome"] == "passed"}
    assert re.search(rf"^=+ {len(passed)} passed", out, re.M), out[-500:]


def test_the_wheel_explains_a_clause(venv: dict[str, str], tmp_path: Path) -> None:
    """`python -m conformance --explain write.round-trip` from the venv prints the clause's section of the contract
    the wheel ships, imported from the venv (not from this checkout)."""
    explained = _run([venv["python"], "-m", "conformance", "--explain", "write.round-trip"], cwd=tmp_path,
                     env=_clean_env())
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.strip() == clause_section("write.round-trip")
    where = _run([venv["python"], "-c", "import conformance, harness, reference; "
                                         "print(conformance.__file__, harness.__file__, reference.__file__)"],
                 cwd=tmp_path, env=_clean_env())
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(venv["venv"]) for path in where.stdout.split()), where.stdout
