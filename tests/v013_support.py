"""What tests/test_conduit_v013*.py share: one suite run per set of destinations, shared by the xdist workers, and
the verdict tables they pin."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from conformance.clauses import CLAUSES
from tests.go_connectors import build
from tests.test_conduit_connectors import REPO_ROOT, SuiteRun

__all__ = ["PROFILE", "shared_run", "table", "expected", "not_passed", "reasons", "dump"]

# Derandomized, so the verdicts (and the minimal examples) do not depend on a seed.
PROFILE = "conformance-quick"


def _run(directory: Path, specs: Iterable[str], env: Mapping[str, str]) -> SuiteRun:
    """The suite over `specs` in a subprocess in `directory` (the repository importable), with its JSON report."""
    environment = {k: v for k, v in os.environ.items() if k != "CONFORMANCE_DESTINATION"}
    environment.update(env)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    report = directory / "report.json"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *(f"--destination={s}" for s in specs), "-p", "no:cacheprovider",
         f"--hypothesis-profile={PROFILE}", f"--conformance-report={report}", "-W", "ignore"],
        cwd=directory, env=environment, capture_output=True, text=True, timeout=3000)
    return SuiteRun(completed.returncode, completed.stdout + completed.stderr, report)


def shared_run(factory: pytest.TempPathFactory, worker_id: str, name: str, specs: Iterable[str],
               builds: Iterable[str], env: Mapping[str, str] | None = None) -> SuiteRun:
    """One suite run named `name`, made by the first xdist worker that asks and read by the others."""
    root = factory.getbasetemp() if worker_id == "master" else factory.getbasetemp().parent
    directory = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "output.txt").exists():
            for connector in builds:
                build(connector)  # before the run, so a build never counts against a call limit
            directory.mkdir(exist_ok=True)
            run = _run(directory, list(specs), env or {})
            (directory / "returncode").write_text(str(run.ret))
            (directory / "output.txt").write_text(run.output)
    return SuiteRun(int((directory / "returncode").read_text()), (directory / "output.txt").read_text(),
                    directory / "report.json")


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
