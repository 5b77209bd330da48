"""The third blind audit (tests/zoo/blind3, written from CONTRACT.md and the docs alone): every one-bug destination
the suite let through before this round's fixes fails its target clause now, and every control passes.

Each bug destination runs only its target clause's checks (`--conformance-clause`), each control the whole suite,
under the derandomized quick profile without shrinking, so no verdict depends on a seed.
"""

import json
from pathlib import Path

import pytest

from tests.postgres import DSN_VARIABLE
from tests.suite_runs import dump, not_passed, run_suite

MANIFEST = json.loads((Path(__file__).parent / "zoo" / "blind3" / "manifest.json").read_text())
BUGS = {row["module"]: row["target_clause"] for row in MANIFEST if row["kind"] == "bug"}
CONTROLS = sorted(row["module"] for row in MANIFEST if row["kind"] == "control")
POSTGRES = {row["module"] for row in MANIFEST if "PostgreSQL" in row.get("shape", "")}


def _spec(name: str) -> str:
    return f"tests.zoo.blind3.{name}:registration"


def _env(request: pytest.FixtureRequest, name: str) -> dict[str, str]:
    """A PostgreSQL destination's database: a fresh one (tests/conftest.py's postgres_dsn)."""
    return {DSN_VARIABLE: request.getfixturevalue("postgres_dsn")} if name in POSTGRES else {}


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_one_bug_destination_fails_its_clause(tmp_path: Path, request: pytest.FixtureRequest, name: str) -> None:
    """The bug is caught by the clause the audit aimed it at."""
    clause = BUGS[name]
    run = run_suite(tmp_path, _spec(name), args=(f"--conformance-clause={clause}",), env=_env(request, name))
    assert run.ret == 1, dump(run, _spec(name))
    assert not_passed(run, _spec(name)).get(clause) == "failed", dump(run, _spec(name))


@pytest.mark.parametrize("name", CONTROLS)
def test_a_correct_but_unusual_destination_passes(tmp_path: Path, request: pytest.FixtureRequest, name: str) -> None:
    """No clause fails; what is not checked is what the destination's shape cannot give."""
    run = run_suite(tmp_path, _spec(name), env=_env(request, name))
    failed = {c for c, s in not_passed(run, _spec(name)).items() if s == "failed"}
    assert failed == set(), dump(run, _spec(name))
