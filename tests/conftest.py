"""Our own test run's set-up: the Python processes tests start reuse compiled bytecode; markers by what a test
needs (`pytest -m "not slow"` is the fast lane); fixtures of suite runs that several test modules read."""

import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from conformance.contract.evidence import STRICT_ENV
from tests import suite_runs
from tests.go_connectors import engine_binary
from tests.postgres import DSN_VARIABLE, PostgresUnavailable, fresh_database, throwaway_cluster
from tests.suite_runs import PROFILE, RunSuite, SuiteRun

__all__ = ["MODULE_MARKS", "FIXTURE_MARKS", "pytest_collection_modifyitems", "zoo_importable", "run_suite",
           "go_run"]

# Many tests run the suite in a new Python process. With PYTHONDONTWRITEBYTECODE set (as on CI images), each one
# recompiled our modules and pytest re-rewrote hypothesis' on import, a slow start each time. The cache
# lives under a prefix in the temp directory, so no source tree gets __pycache__, which is what that variable asks.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault("PYTHONPYCACHEPREFIX",
                          os.path.join(tempfile.gettempdir(), f"conformance-tests-pycache-{os.getuid()}"))

# A check recording a label its clause does not declare is our bug: it raises in every suite run our tests start
# (in-process or in a child process, which inherits the variable), where a user's run only warns once.
os.environ[STRICT_ENV] = "1"

# What each test module needs, for the modules whose every test needs it. "slow": runs the suite (or a build, or
# an engine) in a new process; "go": builds or runs Go connectors; "postgres"/"s3"/"kafka": a server or a fake of
# one; "pipeline": a Conduit engine; "fuse": a FUSE mount. The markers are registered in pyproject.toml.
MODULE_MARKS: dict[str, tuple[str, ...]] = {
    "test_blind_audit": ("slow",),
    "test_blind_audit3": ("slow", "postgres"),
    "test_budget": ("slow",),
    "test_configure_required": ("slow", "go"),
    "test_conduit_file_paths": ("slow", "go"),
    "test_reopen": ("slow", "go"),
    "test_conduit_connectors": ("slow", "go"),
    "test_conduit_file_faults": ("slow", "fuse", "go"),
    "test_conduit_kafka": ("slow", "go", "kafka"),
    "test_conduit_v013": ("slow", "go"),
    "test_conduit_v013_postgres": ("slow", "go", "postgres"),
    "test_conduit_v013_s3": ("slow", "go", "s3"),
    "test_conduit_v014": ("slow", "go"),
    "test_conduit_v014_postgres": ("slow", "go", "postgres"),
    "test_conduit_v014_s3": ("slow", "go", "s3"),
    "test_backend_faults": ("slow", "go"),
    "test_docs": ("slow",),
    "test_evidence": ("slow",),
    "test_examples": ("slow",),
    "test_fault_bypass": ("slow", "fuse", "go"),
    "test_fsync_kept": ("slow", "fuse", "go"),
    "test_fuse_faults": ("slow", "fuse", "go"),
    "test_gating": ("slow",),
    "test_hang": ("slow",),
    "test_hostile": ("slow",),
    "test_install": ("slow",),
    "test_invariants": ("slow",),
    "test_lifecycle_charges": ("slow",),
    "test_lifecycle_events": ("slow", "go"),
    "test_path_param": ("slow",),
    "test_pipeline": ("slow", "go", "pipeline"),
    "test_pipeline_control": ("slow", "go", "pipeline"),
    "test_process_env": ("slow", "go"),
    "test_plugin": ("slow",),
    "test_plugin_adoption": ("slow",),
    "test_readme": ("slow",),
    "test_reference_crash": ("slow",),  # kills writer processes mid-write, several times
    "test_shared_database": ("slow",),
    "test_zoo": ("slow",),
    "test_zoo_variants": ("slow",),
}
# What a fixture brings to any test that uses it, in the modules not listed above.
FIXTURE_MARKS: dict[str, tuple[str, ...]] = {
    "pytester": ("slow",),  # it runs the plugin, in this process or a new one
    "run_suite": ("slow",),
    "go_run": ("slow", "go"),
    "dists": ("slow",),  # builds the sdist and wheels
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test by its module and the fixtures it uses (MODULE_MARKS, FIXTURE_MARKS)."""
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if isinstance(item, pytest.Function) else ""
        names = set(MODULE_MARKS.get(module, ()))
        for fixture in getattr(item, "fixturenames", ()):
            names.update(FIXTURE_MARKS.get(fixture, ()))
        for name in sorted(names - {mark.name for mark in item.iter_markers()}):
            item.add_marker(name)



@pytest.fixture(scope="session")
def go_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """The suite run over our Go connectors on SDK v0.12.0 and upstream's file connector (tests/suite_runs.py)."""
    return suite_runs.go_run(tmp_path_factory, worker_id)


@pytest.fixture
def zoo_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository on PYTHONPATH, so a suite run in a pytester subprocess loads zoo specs (`tests.zoo.x:name`)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(suite_runs.REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.delenv("CONFORMANCE_DESTINATION", raising=False)


@pytest.fixture
def run_suite(tmp_path: Path) -> RunSuite:
    """Runs `pytest --destination=...` over `specs` in a fresh directory under `profile`, without shrinking
    (tests/suite_runs.py's run_suite); `tests` selects suite tests by name (-k), `args` are passed on."""
    count = itertools.count()

    def run(specs: Sequence[str], *args: str, tests: Iterable[str] | None = None, profile: str = PROFILE,
            **settings: object) -> SuiteRun:
        selection = ("-k", suite_runs.keyword_for(tests)) if tests is not None else ()
        directory = tmp_path / f"run-{next(count)}"
        directory.mkdir()
        return suite_runs.run_suite(directory, *specs, args=(*args, *selection), profile=profile, **settings)

    return run


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A fresh database: in the server $CONFORMANCE_POSTGRES_DSN names, or in a throwaway cluster of our own."""
    configured = os.environ.get(DSN_VARIABLE)
    if configured:
        with fresh_database(configured) as dsn:
            yield dsn
        return
    if os.environ.get("CI"):
        pytest.fail(f"{DSN_VARIABLE} is not set: .ci/run starts PostgreSQL and sets it, so under CI this is a bug")
    try:
        cluster = throwaway_cluster()
        server = cluster.__enter__()
    except PostgresUnavailable as err:
        pytest.skip(f"not checked here: {err}")
    try:
        with fresh_database(server) as dsn:
            yield dsn
    finally:
        cluster.__exit__(None, None, None)


# The engines: name in tests/go_connectors.py -> release. The zoo's pipeline failures run on v0.13.3 alone; what
# passes, and the driver-against-pipeline comparison, on both (each engine costs a minute or two of CI per test).
ENGINES = {"conduit13": "v0.13.3", "conduit14": "v0.14.0"}


@pytest.fixture(scope="module")
def conduit() -> str:
    """Conduit v0.13.3."""
    return engine_binary("conduit13")


@pytest.fixture(scope="module", params=sorted(ENGINES), ids=ENGINES.get)
def engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Each Conduit release, as (binary, release)."""
    return engine_binary(request.param), ENGINES[request.param]


@pytest.fixture
def fuse_here() -> None:
    """The FUSE fault filesystem works here; CI (.ci/run sets CONFORMANCE_REQUIRE_FUSE) fails rather than skips
    without it."""
    from conformance.probes import fuse as fusefs

    reason = fusefs.unavailable()
    if reason is not None:
        if os.environ.get("CONFORMANCE_REQUIRE_FUSE"):
            pytest.fail(f"FUSE is required here but unavailable: {reason}")
        pytest.skip(f"FUSE unavailable: {reason}")
