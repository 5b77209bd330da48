"""The zoo under the conformance suite: each broken destination fails its clause, the unusual ones pass.

Every check runs the suite in a pytester subprocess, as a user would (`pytest --destination=...`), and reads
the per-clause summary table. To stay fast, destinations of one contract area share a subprocess (one
`--destination` each) and `-k` selects only the suite tests of the clauses asserted for them.

The runs use the suite's derandomized profiles, so no verdict depends on a seed, without their shrink phase
(NO_SHRINK_CONFTEST): a broken destination must be caught under conformance-quick (CATCH_PROFILE: every contract
class is drawn in every run, so a profile with more examples catches it too), and an unusual one must pass under
conformance-ci (PASS_PROFILE: the profile a connector's CI gates with; more examples are more chances of a false
failure). ZOO_PROFILE names one profile for both.
"""

import importlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.contract.clauses import BACKEND, CLAUSES, ENGINE, LOCATION, READ_BACK
from conformance.results.report import suite_clauses
from harness import Registration
from tests.support import no_shrink_conftest

REPO_ROOT = Path(__file__).resolve().parents[1]
CATCH_PROFILE = os.environ.get("ZOO_PROFILE", "conformance-quick")
PASS_PROFILE = os.environ.get("ZOO_PROFILE", "conformance-ci")
# A conftest for the subprocesses: the profiles without hypothesis' shrink phase (no verdict depends on shrinking).
NO_SHRINK_CONFTEST = no_shrink_conftest(CATCH_PROFILE, PASS_PROFILE)

# The suite tests that check each clause, where the zoo runs fewer than all of them for speed (selected with -k; a
# typo shows up as "not checked"); any other clause gets every suite test marked with it (suite_tests).
CLAUSE_TESTS: dict[str, tuple[str, ...]] = {
    "parameters.shape": ("test_parameters_shape_in_every_state",),
    "parameters.defaults-valid": ("test_defaults_satisfy_their_validations",),
    "configure.valid": ("test_registered_config_is_accepted",),
    "configure.required": ("test_missing_required_parameter_is_named",),
    "configure.invalid-values": ("test_value_breaking_a_validation_is_rejected",
                                 "test_lookalike_of_a_declared_type_is_rejected"),
    "configure.unknown-key": ("test_unknown_key_is_named",),
    "configure.no-side-effects": ("test_configure_touches_nothing", "test_configure_touches_nothing_anywhere"),
    "open.creates-directory": ("test_open_creates_missing_parents",),
    "open.keeps-existing": ("test_open_keeps_existing_directory",),
    "open.not-a-directory": ("test_open_refuses_what_is_not_a_directory",),
    "write.empty-batch": ("test_empty_batch_writes_nothing",),
    "write.round-trip": ("test_every_record_class_round_trips", "test_batches_read_back_as_the_model"),
    "write.count": ("test_write_returns_a_valid_count", "test_unspecified_keys_count_agrees_with_read_back"),
    "write.invalid-key-count": ("test_every_invalid_key_class_stops_the_batch",
                                "test_invalid_key_stops_the_batch_there"),
    "write.recovers": ("test_valid_batch_after_write_error", "test_valid_batch_after_an_io_error"),
    "write.no-mutation": ("test_write_leaves_records_unchanged",),
    "write.large-payload": ("test_large_payloads_round_trip",),
    "ack.in-order": ("test_acking_written_positions_in_order",),
    "lifecycle.valid-orders": ("test_valid_orders_write_ack_write", "test_valid_orders"),
    "lifecycle.out-of-order": ("test_each_forbidden_call", "test_out_of_order_calls"),
    "lifecycle.events": ("test_lifecycle_events_change_no_data",),
    "teardown.any-state": ("test_teardown_in_every_state",),
    "teardown.idempotent": ("test_second_teardown_does_nothing",),
    "teardown.keeps-data": ("test_data_survives_teardown",),
    "open.unwritable": ("test_open_reports_permission_denied",),
    "teardown.releases": ("test_teardown_releases_descriptors_and_threads",),
    "fault.disk-full": ("test_disk_fills_mid_batch",),
    "fault.io-error": ("test_io_error_mid_batch",),
    "safety.confined": ("test_every_hostile_key_stays_inside", "test_nothing_outside_the_directory_changes"),
    "safety.no-symlink-follow": ("test_symlink_at_a_key_is_not_followed",),
}

CORE = ("configure.valid", "write.count", "write.round-trip")


def suite_tests(clause_id: str) -> tuple[str, ...]:
    """Every suite test marked with the clause (the suite's markers are the one source of that)."""
    return tuple(sorted(test for test, clause in suite_clauses().items() if clause == clause_id))

SECTION = re.compile(r"^=+ destination conformance: (?P<name>.+?) =+$")
ROW = re.compile(r"^  (?P<status>passed|FAILED|known fail|not checked|n/a|skipped) +(?P<clause>[a-z]+\.[a-z-]+)"
                 r"(?: +(?P<reason>.*?))? *$")


@dataclass(frozen=True)
class Broken:
    """A registration in tests.zoo.broken and the clause it breaks."""

    name: str
    breaks: str
    known_miss: str = ""  # non-empty: why the suite may miss this bug (then an xfail, not a failure)
    also: tuple[str, ...] = ()  # invariants the same bug breaks in every other check (their failures are allowed)

    @property
    def spec(self) -> str:
        """Its --destination value."""
        return f"tests.zoo.broken:{self.name}"


@dataclass(frozen=True)
class Group:
    """Broken destinations checked in one subprocess: each breaks one of `clauses` and must pass the others.

    Only the suite tests of `clauses` run, so no time goes to checks whose verdict nobody asserts. A clause a
    destination breaks as a consequence of its bug stays out of its group (an empty batch that returns None
    also breaks write.count, since write([]) must return len([]) == 0).
    """

    clauses: tuple[str, ...]
    cases: tuple[Broken, ...]

    def must_pass(self, case: Broken) -> list[str]:
        """The group's clauses that `case` does not break."""
        return [c for c in self.clauses if c != case.breaks and c not in case.also]

    def tests(self) -> list[str]:
        """The suite tests to run: all of each clause's, since a clause passes only on the evidence of its checks."""
        return [name for c in self.clauses for name in CLAUSE_TESTS.get(c) or suite_tests(c)]


CONFIGURE = ("configure.required", "configure.invalid-values", "configure.unknown-key", "configure.no-side-effects")
OPEN = ("open.creates-directory", "open.keeps-existing", "open.not-a-directory", "open.unwritable")
TEARDOWN = ("teardown.any-state", "teardown.idempotent", "teardown.keeps-data", "teardown.releases")

GROUPS: dict[str, Group] = {
    "parameters": Group((*CORE, "parameters.shape", "parameters.defaults-valid"), (
        Broken("empty_description", "parameters.shape"),
        Broken("snake_case_name", "parameters.shape"),
        Broken("parameters_change_after_configure", "parameters.shape"),
        Broken("default_breaks_validation", "parameters.defaults-valid"),
    )),
    # parameters.shape is left out: it asks parameters() when configured and open, which a destination that
    # rejects its own config never reaches (not checked, for lack of evidence). parameters.defaults-valid is left out
    # too: given explicitly, the default of `sync` is refused as well (the same bug).
    "configure-valid": Group(("configure.valid", *CONFIGURE), (
        Broken("rejects_own_config", "configure.valid"),
    )),
    "configure": Group((*CORE, *CONFIGURE), (
        Broken("required_not_named", "configure.required"),
        Broken("required_accepted", "configure.required"),
        Broken("loose_bool", "configure.invalid-values"),
        Broken("ignores_unknown_keys", "configure.unknown-key"),
        Broken("mkdir_in_configure", "configure.no-side-effects"),
    )),
    "open": Group((*CORE, *OPEN), (
        Broken("mkdir_without_parents", "open.creates-directory"),
        Broken("clears_on_open", "open.keeps-existing"),
        Broken("not_a_directory_unnamed", "open.not-a-directory"),
        Broken("replaces_file_with_directory", "open.not-a-directory"),
        Broken("unwritable_unnamed", "open.unwritable"),
    )),
    "empty-batch": Group(("configure.valid", "write.empty-batch", "write.invalid-key-count", "write.large-payload"), (
        Broken("empty_batch_none", "write.empty-batch"),
        Broken("empty_batch_one", "write.empty-batch"),
    )),
    "drops-last": Group((*CORE, "write.empty-batch", "write.invalid-key-count", "write.no-mutation"), (
        Broken("drops_last_record", "write.round-trip"),
    )),
    # write.count is left out: its non-UTF-8-key check compares read-back after the WriteError with the model,
    # so a round-trip bug in the records before the rejected key also fails write.count (see the zoo report).
    "round-trip": Group(("configure.valid", "write.round-trip", "write.empty-batch", "write.no-mutation"), (
        Broken("first_record_wins", "write.round-trip"),
        Broken("ignores_deletes", "write.round-trip"),
    )),
    "count": Group(("configure.valid", "write.count", "write.empty-batch", "write.invalid-key-count",
                    "write.no-mutation"), (
        Broken("count_off_by_one", "write.count"),
        Broken("count_true", "write.count"),
    )),
    # write.recovers is left out: with a ValueError instead of WriteError there is no count to recover from, so
    # the clause has no evidence (not checked).
    "count-exception": Group((*CORE, "write.empty-batch", "write.no-mutation"), (
        Broken("value_error_on_invalid_key", "write.count"),
    )),
    # write.count is left out as for round-trip: the non-UTF-8-key check fails these through read-back.
    "invalid-key-count": Group(("configure.valid", "write.round-trip", "write.invalid-key-count",
                                "write.empty-batch", "write.no-mutation"), (
        Broken("skips_invalid_keys", "write.invalid-key-count"),
        Broken("written_always_zero", "write.invalid-key-count"),
        Broken("writes_valid_around_invalid", "write.invalid-key-count"),
    )),
    "recovers": Group((*CORE, "write.recovers", "write.invalid-key-count", "write.no-mutation"), (
        Broken("refuses_after_error", "write.recovers"),
    )),
    "no-mutation": Group((*CORE, "write.no-mutation"), (
        Broken("mutates_metadata", "write.no-mutation"),
    )),
    # write.round-trip and write.count are left out: the value it stores is the one it changed, which no record
    # gave the key (the session's "no value no record gave it" invariant fails the check that wrote it).
    "no-mutation-stored": Group(("configure.valid", "write.no-mutation"), (
        Broken("mutates_structured", "write.no-mutation"),
    )),
    "large-payload": Group((*CORE, "write.large-payload", "write.no-mutation"), (
        Broken("truncates_large_payloads", "write.large-payload"),
    )),
    # write.round-trip is left out: its payload bands go past 64 KiB, where this bug already shows.
    "large-payload-text": Group(("configure.valid", "write.count", "write.large-payload", "write.no-mutation"), (
        Broken("replaces_invalid_utf8", "write.large-payload"),
    )),
    "ack": Group((*CORE, "ack.in-order", "write.empty-batch"), (
        Broken("ack_expects_str", "ack.in-order"),
    )),
    # lifecycle.out-of-order is left out: its walk makes legal writes and acks too, and may hit the bug.
    "valid-orders": Group((*CORE, "ack.in-order", "lifecycle.valid-orders"), (
        Broken("second_write_after_ack_fails", "lifecycle.valid-orders"),
    )),
    "out-of-order": Group((*CORE, "ack.in-order", "lifecycle.valid-orders", "lifecycle.out-of-order"), (
        Broken("no_lifecycle_guard", "lifecycle.out-of-order"),
        Broken("configure_twice_allowed", "lifecycle.out-of-order"),
    )),
    # The events' checks send them in every session's order Conduit uses; a write outside the area in one of them
    # is safety.confined's, charged by the watch every call is under (so lifecycle.events stops there too).
    "events": Group((*CORE, "lifecycle.events", "safety.confined"), (
        Broken("created_needs_directory", "lifecycle.events"),
        Broken("updated_deletes_data", "lifecycle.events"),
        Broken("deleted_hangs", "lifecycle.events"),
        Broken("created_marker_beside_directory", "safety.confined", also=("lifecycle.events",)),
    )),
    "teardown": Group((*CORE, *TEARDOWN), (
        Broken("teardown_raises_unopened", "teardown.any-state"),
        Broken("teardown_twice_raises", "teardown.idempotent"),
        Broken("teardown_deletes_data", "teardown.keeps-data"),
        Broken("leaks_directory_fd", "teardown.releases"),
        Broken("leaks_flusher_thread", "teardown.releases"),
        Broken("leaks_socket", "teardown.releases"),  # caught after the grace a socket gets to close
    )),
    # An in-place write also breaks fault.io-error (an EIO mid-write leaves the file cut short).
    "disk-full": Group((*CORE, "fault.disk-full", "safety.confined"), (
        Broken("writes_in_place", "fault.disk-full"),
    )),
    "io-error": Group((*CORE, "fault.io-error", "fault.disk-full", "safety.confined"), (
        Broken("skips_records_on_io_error", "fault.io-error"),
    )),
    "safety": Group((*CORE, "safety.confined", "safety.no-symlink-follow"), (
        Broken("checkpoint_beside_directory", "safety.confined"),
        Broken("follows_symlinks", "safety.no-symlink-follow"),
    )),
    # One file named by a path parameter (path_param): the file's parent plays the directory's part.
    "path-open": Group((*CORE, *OPEN), (
        Broken("path_without_parents", "open.creates-directory"),
        Broken("path_lock_in_parent_on_open", "open.keeps-existing", also=("safety.confined",)),
    )),
    # path_lock_beside_parent and path_index_beside_file are caught on the real disk, path_scratch_in_tmpdir only in
    # the fake filesystem (which sees $TMPDIR).
    "path-safety": Group((*CORE, "safety.confined", "safety.no-symlink-follow"), (
        Broken("path_lock_beside_parent", "safety.confined"),
        Broken("path_index_beside_file", "safety.confined"),
        Broken("path_scratch_in_tmpdir", "safety.confined"),
        Broken("path_follows_symlink", "safety.no-symlink-follow"),
    )),
    # fault.io-error is left out: an error injected at the second write leaves half a line too.
    "path-faults": Group((*CORE, "fault.disk-full"), (
        Broken("path_half_line_kept", "fault.disk-full"),
    )),
}

TIMEOUT_CASE = Broken("hangs_on_big_batch", "call.timeout")
TIMEOUT_MUST_PASS = ("configure.valid", "parameters.shape", "write.empty-batch")

UNUSUAL = ["async_file", "memory_kv", "batched_reference", "capped_values"]
BARE_CLASS = "tests.zoo.unusual:GuardedFileDestination"


# --- running the suite and reading its summary ---------------------------------------------------------------


@dataclass
class Run:
    """One suite run in a subprocess: exit code, output and the summary table per destination."""

    ret: int
    lines: list[str]
    tables: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def table(self, spec: str) -> dict[str, tuple[str, str]]:
        """clause -> (status, reason) for one destination; fails the test if its table is missing."""
        if spec not in self.tables:
            pytest.fail(f"no summary table for {spec}; tables: {sorted(self.tables)}\n{self.tail()}")
        return self.tables[spec]

    def tail(self, count: int = 120) -> str:
        """The end of the output, for assertion messages."""
        return "\n".join(self.lines[-count:])


def parse_tables(lines: Iterable[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Every `destination conformance: <spec>` table: spec -> clause -> (status, reason)."""
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    current: dict[str, tuple[str, str]] | None = None
    for line in lines:
        if line.startswith("="):
            header = SECTION.match(line)
            current = tables.setdefault(header.group("name"), {}) if header else None
        elif current is not None and (row := ROW.match(line)):
            current[row.group("clause")] = (row.group("status"), row.group("reason") or "")
    return tables


RunSuite = Callable[..., Run]  # run(specs, *extra_args, tests=None, profile=CATCH_PROFILE) -> Run


def keyword_for(tests: Iterable[str]) -> str:
    """A -k expression selecting these suite tests."""
    return " or ".join(sorted(set(tests)))


@pytest.fixture
def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunSuite:
    """Runs `pytest --destination=...` for the given specs in a fresh directory, with the repo importable."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.delenv("CONFORMANCE_DESTINATION", raising=False)
    pytester.makeconftest(NO_SHRINK_CONFTEST)

    def run(specs: Sequence[str], *args: str, tests: Iterable[str] | None = None,
            profile: str = CATCH_PROFILE) -> Run:
        options = [f"--destination={spec}" for spec in specs]
        if tests is not None:
            options += ["-k", keyword_for(tests)]
        result = pytester.runpytest_subprocess(*options, "-p", "no:cacheprovider", f"--hypothesis-profile={profile}",
                                               *args)
        return Run(int(result.ret), result.outlines, parse_tables(result.outlines))

    return run


def rows_with(table: dict[str, tuple[str, str]], status: str) -> list[str]:
    """The clauses with this status."""
    return [clause for clause, (s, _) in table.items() if s == status]


# --- call.timeout (first: the longest run, mostly waiting) ---------------------------------------------------


def test_a_hanging_write_fails_call_timeout_and_the_run_goes_on(run_suite: RunSuite) -> None:
    """call.timeout: with a 0.5 s limit, a write that sleeps an hour fails the clause and the run ends soon."""
    case = TIMEOUT_CASE
    run = run_suite([case.spec], "--conformance-timeout=0.5")  # the whole suite
    assert run.ret == 1, run.tail()
    table = run.table(case.spec)
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
    run = run_suite([case.spec for case in cases], tests=GROUPS[group].tests())
    problems: list[str] = []
    misses: list[str] = []
    for case in cases:
        table = run.table(case.spec)
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
    table = run.table(spec)
    assert run.ret == 0, f"{rows_with(table, 'FAILED')} failed\n{run.tail(300)}"
    assert not rows_with(table, "FAILED")
    wrong = {c: table.get(c, ("missing", "")) for c in CLAUSES
             if table.get(c, ("missing", ""))[0] not in expected_statuses(registration, c)}
    assert not wrong, f"{wrong}\n{run.tail()}"
    for clause_id, reason in registration.skip.items():
        assert table[clause_id] == ("skipped", reason)


def test_bare_class_without_read_back_reports_not_checked(run_suite: RunSuite) -> None:
    """A bare class: clauses needing read_back or a directory are "not checked" with the reason, never passed."""
    run = run_suite([BARE_CLASS], "--destination-config", "directory={tmp}/x")
    table = run.table(BARE_CLASS)
    assert run.ret == 0, f"{rows_with(table, 'FAILED')} failed\n{run.tail(300)}"
    for clause in CLAUSES.values():
        status, reason = table[clause.id]
        if clause.needs:
            assert status == "not checked", (clause.id, status, reason)
            assert any(f"needs {what}" in reason for what in ("read_back", "directory_param", "a Conduit binary")), \
                (clause.id, reason)
        else:
            assert status == "passed", (clause.id, status, reason)
