"""The zoo under the conformance suite: each broken destination fails its clause, the unusual ones pass.

Every check runs the suite in a subprocess (tests/conftest.py's run_suite), as a user would (`pytest
--destination=...`), and reads the per-clause summary table. To stay fast, destinations of one contract area share a
subprocess (one `--destination` each) and `-k` selects only the suite tests of the clauses asserted for them.

The runs use the suite's derandomized profiles, so no verdict depends on a seed, without their shrink phase: a
broken destination must be caught under CATCH_PROFILE, an unusual one must pass under PASS_PROFILE (the cases and
profiles are in tests/zoo/cases.py).
"""

import importlib
import re

import pytest

from conformance.contract.clauses import BACKEND, CLAUSES, ENGINE, LOCATION, READ_BACK
from harness import Registration
from tests.suite_runs import REPO_ROOT, RunSuite
from tests.zoo.cases import (
    BARE_CLASS,
    CATCH_PROFILE,
    CLAUSE_TESTS,
    GROUPS,
    PASS_PROFILE,
    TIMEOUT_CASE,
    TIMEOUT_MUST_PASS,
    UNUSUAL,
)

__all__: list[str] = []

def rows_with(table: dict[str, tuple[str, str]], status: str) -> list[str]:
    """The clauses with this status."""
    return [clause for clause, (s, _) in table.items() if s == status]


# --- call.timeout (first: the longest run, mostly waiting) ---------------------------------------------------


def test_a_hanging_write_fails_call_timeout_and_the_run_goes_on(run_suite: RunSuite) -> None:
    """call.timeout: with a 0.5 s limit, a write that sleeps an hour fails the clause and the run ends soon."""
    case = TIMEOUT_CASE
    run = run_suite([case.spec], "--conformance-timeout=0.5", profile=CATCH_PROFILE)  # the whole suite
    assert run.ret == 1, run.tail()
    table = run.summary(case.spec)
    status, reason = table["call.timeout"]
    assert status == "FAILED", run.tail()
    hung = re.match(r"(\d+) check\(s\) hit the per-call limit of 0\.5s$", reason)
    assert hung and int(hung.group(1)) >= 3, reason
    for clause in TIMEOUT_MUST_PASS:
        assert table[clause][0] == "passed", f"{clause}: {table[clause]}\n{run.tail()}"


# --- the broken destinations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("group", list(GROUPS))
def test_broken_destinations_fail_their_clause(run_suite: RunSuite, group: str) -> None:
    """Each broken destination: exit code 1, its clause FAILED, the group's other clauses passed (or, for a bug
    in an invariant every session watches, not checked because that clause's failure stopped their checks)."""
    cases = GROUPS[group].cases
    run = run_suite([case.spec for case in cases], tests=GROUPS[group].tests(), profile=CATCH_PROFILE)
    problems: list[str] = []
    misses: list[str] = []
    for case in cases:
        table = run.summary(case.spec)
        status = table.get(case.breaks, ("missing", ""))[0]
        if status != "FAILED" and case.known_miss:
            misses.append(f"{case.name}: {case.breaks} is {status!r} ({case.known_miss})")
        elif status != "FAILED":
            problems.append(f"{case.name}: {case.breaks} is {status!r}, expected FAILED")
        for clause in GROUPS[group].must_pass(case):
            status, reason = table.get(clause, ("missing", ""))
            # A bug that breaks an invariant watched in every session stops the other clauses' checks too: they
            # are not checked, and say it was that clause's failure that stopped them.
            stopped_by_its_bug = status == "not checked" and any(
                f"charged to {c}" in reason for c in (case.breaks, *case.also))
            if status != "passed" and not stopped_by_its_bug:
                problems.append(f"{case.name}: {clause} is {status!r} ({reason}), expected passed")
    assert not problems, "\n".join(problems) + "\n\n" + run.tail(200)
    if len(misses) < len(cases):
        assert run.ret == 1, f"expected exit code 1 (some clause failed), got {run.ret}\n{run.tail()}"
    if misses:
        pytest.xfail("known suite false negative: " + "; ".join(misses))


def test_every_broken_registration_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Registration in tests.zoo.broken is listed once, and every clause has a broken destination."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    broken = importlib.import_module("tests.zoo.broken")
    registered = {n for n in dir(broken) if isinstance(getattr(broken, n), Registration)}
    cases = [case for group in GROUPS.values() for case in group.cases]
    assert sorted(case.name for case in [*cases, TIMEOUT_CASE]) == sorted(registered)
    assert all(case.breaks in group.clauses for group in GROUPS.values() for case in group.cases)
    covered = {case.breaks for case in cases} | {TIMEOUT_CASE.breaks}
    engine = {c.id for c in CLAUSES.values() if ENGINE in c.needs}  # pipeline clauses: no engine in this zoo
    # fault.backend-*: the destinations with a server over TCP are tests/zoo/backend.py's (tests/test_backend_faults.py)
    engine |= {c.id for c in CLAUSES.values() if BACKEND in c.needs}
    assert set(CLAUSES) - engine - covered == set(), "clauses without a broken destination"
    assert set(CLAUSE_TESTS) | {"call.timeout"} | engine == set(CLAUSES)


# --- the unusual destinations --------------------------------------------------------------------------------


def expected_statuses(registration: Registration, clause_id: str) -> set[str]:
    """What the summary may show for a correct destination: passed, unless skipped or not checkable."""
    clause = CLAUSES[clause_id]
    if clause_id in registration.skip:
        return {"skipped"}
    needs = {READ_BACK: registration.read_back, LOCATION: registration.directory_param or registration.path_param,
             ENGINE: None, BACKEND: registration.backends or None}
    if any(needs[n] is None for n in clause.needs):
        return {"not checked"}
    return {"passed"}


@pytest.mark.parametrize("name", UNUSUAL)
def test_unusual_destination_passes_every_clause(
    run_suite: RunSuite, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A correct but unusual destination: exit code 0, no FAILED row, every checkable clause passed."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    registration: Registration = getattr(importlib.import_module("tests.zoo.unusual"), name)
    spec = f"tests.zoo.unusual:{name}"
    run = run_suite([spec], profile=PASS_PROFILE)
    table = run.summary(spec)
    assert run.ret == 0, f"{rows_with(table, 'FAILED')} failed\n{run.tail(300)}"
    assert not rows_with(table, "FAILED")
    wrong = {c: table.get(c, ("missing", "")) for c in CLAUSES
             if table.get(c, ("missing", ""))[0] not in expected_statuses(registration, c)}
    assert not wrong, f"{wrong}\n{run.tail()}"
    for clause_id, reason in registration.skip.items():
        assert table[clause_id] == ("skipped", reason)


def test_bare_class_without_read_back_reports_not_checked(run_suite: RunSuite) -> None:
    """A bare class: clauses needing read_back or a directory are "not checked" with the reason, never passed."""
    run = run_suite([BARE_CLASS], "--destination-config", "directory={tmp}/x", profile=CATCH_PROFILE)
    table = run.summary(BARE_CLASS)
    assert run.ret == 0, f"{rows_with(table, 'FAILED')} failed\n{run.tail(300)}"
    for clause in CLAUSES.values():
        status, reason = table[clause.id]
        if clause.needs:
            assert status == "not checked", (clause.id, status, reason)
            assert any(what in reason for what in ("needs read_back", "needs directory_param", "needs a Conduit binary",
                                                   "no backend declared")), (clause.id, reason)
        else:
            assert status == "passed", (clause.id, status, reason)
