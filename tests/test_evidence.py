"""Verdicts backed by evidence: no pass without it, no green run without checks, no suite crash on odd answers."""

import json
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from conformance.contract.clauses import CLAUSES, required_evidence
from conformance.plugin.profiles import batch_limit
from conformance.results.verdicts import verdicts
from harness import Registration
from tests.support import summary

REPO = Path(__file__).resolve().parents[1]
DEV = "--hypothesis-profile=conformance-dev"
CI = "--hypothesis-profile=conformance-ci"

OVERCOUNTS = "tests.zoo.scenarios:overcounts"

TRUNCATES = "tests.zoo.scenarios:truncates"


def test_a_check_that_passes_without_its_evidence_is_not_checked(pytester: pytest.Pytester) -> None:
    """The random round-trip check alone never writes every operation with after=None: not checked, with what
    never happened; every clause's evidence shows in the JSON report."""
    result = pytester.runpytest_subprocess("--destination=reference:registration", CI, "-p", "no:cacheprovider",
                                           "-k", "batches_read_back_as_the_model or empty_batch",
                                           "--conformance-report=r.json")
    rows = summary(result.stdout.str(), "reference:registration")
    assert rows["write.round-trip"] == "not checked", result.stdout.str()[-3000:]
    assert rows["write.empty-batch"] == "passed"
    assert "never exercised:" in result.stdout.str()
    clauses = json.loads((pytester.path / "r.json").read_text())["destinations"]["reference:registration"]["clauses"]
    assert clauses["write.empty-batch"]["evidence"] == {"empty batch written": 1}
    assert clauses["write.round-trip"]["status"] == "not checked"
    assert result.ret == 0  # write.empty-batch was checked


@pytest.mark.usefixtures("zoo_importable")
def test_every_contract_class_catches_a_class_bug_in_every_run(pytester: pytest.Pytester) -> None:
    """Payload sizes are covered by construction: truncation above 1 KiB fails write.round-trip under the
    derandomized profile and under two different seeds."""
    for seed_args in ([CI], [DEV, "--hypothesis-seed=1"], [DEV, "--hypothesis-seed=2"]):
        result = pytester.runpytest_subprocess(f"--destination={TRUNCATES}", *seed_args, "-p",
                                               "no:cacheprovider", "-k", "every_record_class")
        assert summary(result.stdout.str(), TRUNCATES)["write.round-trip"] == "FAILED"


@pytest.mark.usefixtures("zoo_importable")
def test_an_overcount_fails_its_clause_instead_of_crashing_the_suite(pytester: pytest.Pytester) -> None:
    """written=i+1 for an invalid key at i: write.invalid-key-count fails; write.recovers' check does not crash
    on it (it used to die in the model on the keyless record) and, with no valid count to recover from, has no
    evidence, and says so."""
    result = pytester.runpytest_subprocess(f"--destination={OVERCOUNTS}", DEV, "-p", "no:cacheprovider",
                                           "-k", "valid_batch_after_write_error or invalid_key_stops_the_batch_there")
    out = result.stdout.str()
    assert "ValueError" not in out and "a record without a key" not in out
    rows = summary(out, OVERCOUNTS)
    assert rows["write.invalid-key-count"] == "FAILED" and rows["write.recovers"] == "not checked"
    # What happened instead, not a guess (C-level I/O) nor only what never happened.
    assert "write()'s WriteError for a batch with an invalid key at index i did not count i records" in out
    assert "bypasses pyfakefs" not in out.split("write.recovers", 1)[1].split("\n", 1)[0]


def test_a_path_argument_does_not_give_a_silent_green_run(pytester: pytest.Pytester) -> None:
    """`pytest some/path --destination=X -k ...` whose selection keeps none of the checks (only the user's own
    tests) fails with a usage error."""
    pytester.makepyfile(test_mine="def test_mine(): pass")
    result = pytester.runpytest_subprocess("test_mine.py", "--destination=reference:registration", "-k", "test_mine",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "none of the conformance checks was collected" in result.stderr.str()


def test_a_destination_with_no_clause_checked_fails_the_run(pytester: pytest.Pytester) -> None:
    """Only checks that cannot apply (no directory parameter) ran: no clause checked, so the run fails."""
    pytester.makepyfile(bare="""
from reference import FileDestination
from harness import Registration
registration = Registration(factory=FileDestination, config={"directory": "{tmp}/out"})
""")
    result = pytester.runpytest_subprocess("--destination=bare:registration", DEV, "-p", "no:cacheprovider",
                                           "-k", "open_creates_missing_parents")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "no clause of bare:registration was checked" in result.stdout.str()


def test_verdicts_need_every_required_kind_of_evidence() -> None:
    """A passing test whose evidence lacks one label gives 'not checked' naming it; all labels give 'passed'."""
    registration = Registration(factory=object, name="d")
    required = required_evidence("fault.disk-full", registration)
    base = {"destination": "d", "clause": "fault.disk-full", "outcome": "passed", "nodeid": "t", "duration": 0,
            "examples": 3, "timeout": False, "reason": ""}
    partial = {**base, "evidence": {f"fault.disk-full|{required[0]}": 2}}
    row = verdicts([registration], [partial], 10)["d"]["fault.disk-full"]
    assert row["status"] == "not checked" and required[1] in row["reason"] and "1 of 2" in row["reason"]
    full = {**base, "evidence": {f"fault.disk-full|{label}": 1 for label in required}}
    assert verdicts([registration], [full], 10)["d"]["fault.disk-full"]["status"] == "passed"
    answered = {**partial, "not_applicable": {"fault.disk-full": "the adapter answers"}}
    assert verdicts([registration], [answered], 10)["d"]["fault.disk-full"]["status"] == "not applicable"


def test_a_check_stopped_by_another_clause_says_so_in_its_own_row() -> None:
    """A fault.disk-full check that failed on write.round-trip (charged there) leaves fault.disk-full "not checked"
    saying so, never "no check was selected in this run"."""
    registration = Registration(factory=object, name="d")
    stopped = {"destination": "d", "clause": "fault.disk-full", "outcome": "stopped", "charged": ["write.round-trip"],
               "nodeid": "test_conformance_faults.py::test_disk_full_mid_batch[d]", "duration": 0, "examples": 0,
               "timeout": False, "reason": ""}
    row = verdicts([registration], [stopped], 10)["d"]["fault.disk-full"]
    assert row["status"] == "not checked"
    assert row["reason"] == ("1 check(s) (test_disk_full_mid_batch) stopped at a failure charged to "
                             "write.round-trip before judging this clause")
    assert row["tests"] == [{"nodeid": stopped["nodeid"], "outcome": "stopped", "duration": 0, "examples": 0}]


def test_not_checked_names_what_happened_in_each_check() -> None:
    """write.recovers with both checks skipped, one because write() never raised a WriteError and one because the
    I/O bypasses pyfakefs: the reason leads with the missing WriteError (the clause's own check), not C I/O."""
    registration = Registration(factory=object, name="d")
    base = {"destination": "d", "clause": "write.recovers", "outcome": "skipped", "duration": 0, "examples": 0,
            "timeout": False}
    bypass = {**base, "nodeid": "test_conformance_faults.py::test_valid_batch_after_an_io_error[d]",
              "reason": "not checked: the destination's file I/O bypasses pyfakefs (a C library or another process?)"}
    accepted = {**base, "nodeid": "test_conformance_write.py::test_valid_batch_after_write_error[d]",
                "reason": "not checked: write() accepted a batch with an invalid key, so there was no WriteError to "
                          "recover from"}
    row = verdicts([registration], [bypass, accepted], 10)["d"]["write.recovers"]
    assert row["status"] == "not checked"
    assert row["reason"].startswith("write() accepted a batch with an invalid key, so there was no WriteError")
    passed = {**base, "outcome": "passed", "nodeid": "test_conformance_write.py::test_valid_batch_after_write_error[x]",
              "reason": ""}
    row = verdicts([registration], [bypass, passed], 10)["d"]["write.recovers"]
    assert row["status"] == "not checked" and row["reason"].startswith("never exercised: recovered after an invalid")
    assert row["reason"].endswith("not checked: the destination's file I/O bypasses pyfakefs (a C library or "
                                  "another process?)")


def test_every_clause_names_its_evidence() -> None:
    """No clause can pass on nothing: each names at least one kind of evidence (the pipeline clauses too)."""
    assert [c.id for c in CLAUSES.values() if not c.evidence] == []


def test_batch_limits_survive_derived_profiles() -> None:
    """A profile derived from conformance-fuzz (the budget's, or a user's) keeps batches of 64."""
    from conformance.plugin.profiles import register_profiles

    register_profiles()
    previous = settings.get_current_profile_name()
    try:
        settings.register_profile("conformance-test-derived", settings.get_profile("conformance-fuzz"), max_examples=3)
        settings.load_profile("conformance-test-derived")
        assert batch_limit() == 64
        settings.load_profile("conformance-ci")
        assert batch_limit() == 12
    finally:
        settings.load_profile(previous)


def test_declared_keys_raise_no_hypothesis_warning(pytester: pytest.Pytester) -> None:
    """A registration declaring valid and invalid keys does not flood the run with 'bool(...) is always True'."""
    pytester.makepyfile(declared="""
from hypothesis import strategies as st
from reference import registration as reference
from dataclasses import replace
registration = replace(reference, valid_keys=st.sampled_from([b"a", b"b"]), invalid_keys=st.just(None), name="")
""")
    result = pytester.runpytest_subprocess("--destination=declared:registration", DEV, "-p", "no:cacheprovider",
                                           "-k", "every_record_class",
                                           "-W", "error::hypothesis.errors.HypothesisWarning")
    assert "always True" not in result.stdout.str()
    assert result.ret == 0, result.stdout.str()[-2000:]


# One broken destination of the zoo per clause area: the check that finds it, and the clause it breaks.
SAVED_AREAS = [
    ("parameters.shape", "parameters_shape_in_every_state", "empty_description"),
    ("configure.unknown-key", "unknown_key_is_named", "ignores_unknown_keys"),
    ("open.keeps-existing", "open_keeps_existing_directory", "clears_on_open"),
    ("write.round-trip", "every_record_class", "drops_last_record"),
    ("ack.in-order", "acking_written_positions", "ack_expects_str"),
    ("lifecycle.out-of-order", "each_forbidden_call", "configure_twice_allowed"),
    ("teardown.keeps-data", "data_survives_teardown", "teardown_deletes_data"),
    ("fault.disk-full", "disk_fills_mid_batch", "writes_in_place"),
    ("safety.no-symlink-follow", "symlink_at_a_key_is_not_followed", "follows_symlinks"),
]


@pytest.mark.parametrize("clause_id,check,broken", SAVED_AREAS, ids=[area[0].split(".")[0] for area in SAVED_AREAS])
def test_saved_failure_fails_while_the_bug_is_there(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                    clause_id: str, check: str, broken: str) -> None:
    """In every clause area, a saved failure re-runs its check on its example, setup included: the saved test
    fails against the broken destination and the same replay passes against the fixed one (the reference)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    spec = f"tests.zoo.broken:{broken}"
    found = pytester.runpytest_subprocess(f"--destination={spec}", CI, "-p", "no:cacheprovider", "-k", check,
                                          "--conformance-save-failures=found")
    assert summary(found.stdout.str(), spec)[clause_id] == "FAILED", found.stdout.str()[-3000:]
    saved = sorted((pytester.path / "found").glob("*.jsonl"))
    headers = [json.loads(path.read_text().splitlines()[0]) for path in saved]
    assert saved and all(h["clause"] == clause_id and h["check"].endswith(check) or check in h["check"]
                         for h in headers), headers
    still_broken = pytester.runpytest_subprocess("-p", "no:cacheprovider", str(pytester.path / "found"))
    assert still_broken.ret == pytest.ExitCode.TESTS_FAILED, still_broken.stdout.str()[-3000:]
    script = (f"from conformance.results.saved import replay_saved\n"
              f"replay_saved({str(saved[0])!r}, destination='reference:registration')\nprint('FIXED')\n")
    fixed = pytester.run(sys.executable, "-c", script)
    assert "FIXED" in fixed.stdout.str(), fixed.stderr.str()[-3000:]
