"""The invariants watched in every session: a bug is caught by a check that is not its clause's own, and correct
destinations that once tripped the suite pass (tests/zoo/invariants.py)."""

from pathlib import Path

import pytest

from tests.suite_runs import SuiteRun, dump, not_passed, run_suite

ZOO = "tests.zoo.invariants"

# (check selected with -k, {destination: the clause it must fail}): none of the checks is the clause's own probe.
CAUGHT_ELSEWHERE = {
    "test_every_record_class_round_trips": {
        "lock_beside_directory": "safety.confined",  # open() creates <directory>.lock, teardown removes it
        "state_in_tmpdir": "safety.confined",  # Python I/O into $TMPDIR: the audit hooks of every call
        "sqlite_state_in_tmpdir": "safety.confined",  # sqlite3's C I/O into $TMPDIR: the watched tree
        "lock_in_tmpdir": "safety.confined",  # a $TMPDIR lock from open() to teardown: the audit hooks
        "c_lock_in_tmpdir": "safety.confined",  # the same through C calls: the tree watched as files appear
        "own_pool_left_running": "teardown.releases",  # a thread pool of its own, never shut down
    },
    "test_io_error_mid_batch": {
        "leaks_fd_on_fsync_error": "teardown.releases",  # path_param: a descriptor per failed fsync
        "leaks_fd_on_reopen_error": "teardown.releases",  # a reopen failing with the device still failed
        "swallows_fsync_error": "fault.io-error",  # its own clause: a failed fsync reported as written
    },
    "test_unspecified_keys_count_agrees_with_read_back": {
        "compacts_mangling_keys": "teardown.keeps-data",  # teardown re-keys non-UTF-8 keys
    },
}


@pytest.mark.parametrize("check", sorted(CAUGHT_ELSEWHERE))
def test_an_invariant_is_caught_by_any_check(tmp_path: Path, check: str) -> None:
    """Each destination fails the invariant's clause from a check written for another clause."""
    cases = CAUGHT_ELSEWHERE[check]
    run = run_suite(tmp_path, *(f"{ZOO}:{name}" for name in cases), args=("-k", check))
    assert run.ret == 1, run.output[-4000:]
    for name, clause in cases.items():
        failed = {c for c, status in not_passed(run, f"{ZOO}:{name}").items() if status == "failed"}
        assert failed == {clause}, f"{name}: {failed}\n{dump(run, f'{ZOO}:{name}')}"


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """The correct destinations, through the whole suite under the profile a gate uses."""
    return run_suite(tmp_path_factory.mktemp("controls"), f"{ZOO}:durable_rename", f"{ZOO}:async_to_thread",
                     profile="conformance-ci")


@pytest.mark.parametrize("name", ["durable_rename", "async_to_thread"])
def test_correct_destinations_pass_every_clause(controls: SuiteRun, name: str) -> None:
    """fsync, rename, fsync the directory (a failed directory fsync leaves its record whole) and
    asyncio.to_thread (the loop's default executor is the harness's) pass everything in-process."""
    spec = f"{ZOO}:{name}"
    # pipeline.* and fault.backend-* need an engine and a server over TCP: "not checked" here.
    assert {c: s for c, s in not_passed(controls, spec).items()
            if not c.startswith(("pipeline.", "fault.backend-"))} == {}, \
        dump(controls, spec)
