"""Suite runs in a subprocess, as a user makes them (`pytest --destination=...`), with their JSON report: one run
per set of destinations, shared by the xdist workers, and the verdict tables the tests pin."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from conformance.contract.clauses import CLAUSES, LOCATION
from harness import Registration
from tests.go_connectors import build
from tests.support import no_shrink_conftest

__all__ = ["NO_LOCATION", "PIPELINE_CLAUSES", "pipeline_rows", "REPO_ROOT", "PROFILE", "GO_FIXED", "GO_SEED",
           "UPSTREAM", "SuiteRun", "RunSuite", "run_suite",
           "shared_run", "go_run", "keyword_for", "parse_tables", "table", "expected", "not_passed", "reasons", "dump",
           "opened"]

# What a registration without directory_param or path_param leaves not checked: every clause that needs a location.
NO_LOCATION = sorted(clause.id for clause in CLAUSES.values() if LOCATION in clause.needs)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Derandomized, so the verdicts (and the failing examples) do not depend on a seed.
PROFILE = "conformance-quick"
# Our Go destinations on SDK v0.12.0 (the docs page's as written, and fixed) and upstream's file connector v0.9.0.
GO_FIXED = "tests.conduit_connectors:go_fixed"
GO_SEED = "tests.conduit_connectors:go_seed"
UPSTREAM = "tests.conduit_connectors:upstream_file"


SECTION = re.compile(r"^=+ destination conformance: (?P<name>.+?) =+$")
ROW = re.compile(r"^  (?P<status>passed|FAILED|known fail|not checked|n/a|skipped) +(?P<clause>[a-z]+\.[a-z-]+)"
                 r"(?: +(?P<reason>.*?))? *$")


def parse_tables(lines: Iterable[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Every printed `destination conformance: <spec>` table: spec -> clause -> (status, reason)."""
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    current: dict[str, tuple[str, str]] | None = None
    for line in lines:
        if line.startswith("="):
            header = SECTION.match(line)
            current = tables.setdefault(header.group("name"), {}) if header else None
        elif current is not None and (row := ROW.match(line)):
            current[row.group("clause")] = (row.group("status"), row.group("reason") or "")
    return tables


class SuiteRun:
    """One `pytest --destination=...` run in a subprocess: its exit code, output, printed tables and JSON report."""

    def __init__(self, ret: int, output: str, report: Path) -> None:
        self.ret = ret
        self.output = output
        self.lines = output.splitlines()
        self.tables = parse_tables(self.lines)
        self.report: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}

    def summary(self, spec: str) -> dict[str, tuple[str, str]]:
        """clause -> (status, reason) as the summary printed it for one destination; fails the test if missing."""
        if spec not in self.tables:
            pytest.fail(f"no summary table for {spec}; tables: {sorted(self.tables)}\n{self.tail()}")
        return self.tables[spec]

    def tail(self, count: int = 120) -> str:
        """The end of the output, for assertion messages."""
        return "\n".join(self.lines[-count:])

    def verdicts(self, spec: str) -> dict[str, str]:
        """clause -> status for one destination."""
        destinations = self.report.get("destinations", {})
        if spec not in destinations:
            pytest.fail(f"no report for {spec}:\n{self.output[-6000:]}")
        return {clause: row["status"] for clause, row in destinations[spec]["clauses"].items()}

    def with_status(self, spec: str, status: str) -> set[str]:
        """The clauses of one destination with this status."""
        return {clause for clause, s in self.verdicts(spec).items() if s == status}


def run_suite(directory: Path, *specs: str, args: tuple[str, ...] = (), env: Mapping[str, str | None] | None = None,
              timeout: float = 3000, profile: str = PROFILE, **settings: object) -> SuiteRun:
    """The suite over `specs` under `profile` (with `settings` overridden) in a subprocess in `directory` (the
    repository importable; `env` entries of None are unset), without shrinking: these runs pin verdicts and
    messages, which do not depend on it, not minimal examples."""
    environment = {k: v for k, v in os.environ.items() if k != "CONFORMANCE_DESTINATION"}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    report = directory / "report.json"
    (directory / "conftest.py").write_text(no_shrink_conftest(profile, **settings))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *(f"--destination={s}" for s in specs), "-p", "no:cacheprovider",
         f"--hypothesis-profile={profile}", f"--conformance-report={report}", "-W", "ignore", *args],
        cwd=directory, env=environment, capture_output=True, text=True, timeout=timeout)
    return SuiteRun(completed.returncode, completed.stdout + completed.stderr, report)


RunSuite = Callable[..., SuiteRun]  # tests/conftest.py's run_suite: run(specs, *args, tests=None, profile=PROFILE)


def keyword_for(tests: Iterable[str]) -> str:
    """A -k expression selecting these suite tests."""
    return " or ".join(sorted(set(tests)))


def shared_run(factory: pytest.TempPathFactory, worker_id: str, name: str, specs: Iterable[str],
               builds: Iterable[str] = (), env: Mapping[str, str] | None = None, **settings: object) -> SuiteRun:
    """One suite run named `name`, made by the first xdist worker that asks and read by the others."""
    root = factory.getbasetemp() if worker_id == "master" else factory.getbasetemp().parent
    directory = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "output.txt").exists():
            for connector in builds:
                build(connector)  # before the run, so a build never counts against a call limit
            directory.mkdir(exist_ok=True)
            run = run_suite(directory, *specs, env=env, **settings)
            (directory / "returncode").write_text(str(run.ret))
            (directory / "output.txt").write_text(run.output)
    return SuiteRun(int((directory / "returncode").read_text()), (directory / "output.txt").read_text(),
                    directory / "report.json")


def go_run(factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """The one suite run over the three Go connectors on SDK v0.12.0 (test_conduit_connectors pins their verdicts,
    test_conduit_v013 compares the fixed one's with SDK v0.13.3's)."""
    return shared_run(factory, worker_id, "go-run", [GO_FIXED, GO_SEED, UPSTREAM],
                      builds=("seed", "fixed", "upstream-file"))


@contextlib.contextmanager
def opened(registration: Registration, config: Mapping[str, str]) -> Iterator[Any]:
    """A destination of a standalone registration, configured and opened; torn down (unless a replay killed it)
    and its process stopped after."""
    from harness.conduit.plugin_process import PluginError

    destination = registration.factory()
    try:
        destination.configure(dict(config))
        destination.open()
        yield destination
    finally:
        try:
            with contextlib.suppress(PluginError):  # a replay may have killed it
                destination.teardown()
        finally:
            destination.close()


def table(run: SuiteRun, spec: str) -> dict[str, list[str]]:
    """status -> sorted clause ids, for one destination: the verdict table in the form the tests pin."""
    grouped: dict[str, list[str]] = {}
    for clause, status in run.verdicts(spec).items():
        grouped.setdefault(status, []).append(clause)
    return {status: sorted(clauses) for status, clauses in sorted(grouped.items())}


def expected(others: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """A whole verdict table from the clauses that do not pass: every other clause passed."""
    listed = {clause for clauses in others.values() for clause in clauses}
    full = {status: sorted(clauses) for status, clauses in others.items()}
    full["passed"] = sorted(set(CLAUSES) - listed)
    return dict(sorted(full.items()))


def not_passed(run: SuiteRun, spec: str) -> dict[str, str]:
    """clause -> status for every clause that did not pass."""
    return {clause: status for clause, status in run.verdicts(spec).items() if status != "passed"}


def reasons(run: SuiteRun, spec: str) -> dict[str, str]:
    """clause -> the verdict's reason, from the JSON report."""
    rows = run.report.get("destinations", {}).get(spec, {}).get("clauses", {})
    return {clause: str(row.get("reason", "")) for clause, row in rows.items()}


def dump(run: SuiteRun, spec: str) -> str:
    """The verdicts as JSON, for assertion messages."""
    return json.dumps(table(run, spec), indent=1) + "\n" + run.output[-4000:]


PIPELINE_CLAUSES = ("pipeline.delivers", "pipeline.crash-recovery", "pipeline.engine-restart")


def pipeline_rows(run: SuiteRun, spec: str) -> dict[str, dict]:
    """The report's rows of the pipeline clauses for one destination."""
    destinations = run.report.get("destinations", {})
    if spec not in destinations:
        pytest.fail(f"no report for {spec}:\n{run.output[-6000:]}")
    rows = {c: row for c, row in destinations[spec]["clauses"].items() if c in PIPELINE_CLAUSES}
    return rows
