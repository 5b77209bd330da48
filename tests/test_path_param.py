"""File destinations (`Registration.path_param`): registration rules, evidence, and the verdicts of two correct ones.

The SQLite destination (tests/sqlite_destination.py) does its file I/O in C, out of reach of pyfakefs (the fault
clauses reach it through the FUSE filesystem) and of Python's audit hooks: it must pass every clause that can be
checked on it and get "not checked", with the reason, for those that cannot, never a false pass or a false failure.
The JSON-lines file of tests/zoo/unusual.py is pure Python, so every open, fault and safety clause is really checked
on it. The broken path destinations are in tests/zoo/broken.py (groups path-open, path-safety and path-faults of
tests/test_zoo.py).

The suite runs in a subprocess with the derandomized conformance-ci profile (PASS_PROFILE, tests/zoo/cases.py: these
are correct destinations) minus its shrink phase, as in tests/test_zoo.py, so no verdict depends on a seed.
"""


import pytest

from conformance.contract.clauses import (
    CLAUSES,
    NO_LOCATION,
    OWN_NAME_SYMLINK_EVIDENCE,
    PATH_SYMLINK_EVIDENCE,
    required_evidence,
    side_file,
)
from harness import Registration, UnimplementedDestination
from tests.suite_runs import REPO_ROOT, RunSuite
from tests.zoo.cases import PASS_PROFILE

__all__: list[str] = []

SQLITE = "tests.sqlite_destination:registration"
JSONL = "tests.zoo.unusual:jsonl_file"

# What the SQLite destination gets besides "passed", and a phrase of each reason: C-level I/O that the audit hooks
# do not see (the fault clauses reach it through the FUSE filesystem, tests/test_fuse_faults.py).
SQLITE_NOT_CHECKED = {
    "safety.no-symlink-follow": "no file was seen being created in the file's directory in a dry run",
}
SQLITE_PARTLY = {
    "safety.confined": "the whole filesystem was not watched",  # the watched tree on the real disk was
}
# fault.backend-* fault a server over TCP, not a location: they need a declared backend instead.
LOCATION_CLAUSES = [c for c in CLAUSES if c.split(".")[0] in ("open", "fault", "safety")
                    and not c.startswith("fault.backend-")]


# --- the registration ----------------------------------------------------------------------------------------


def test_directory_param_and_path_param_are_mutually_exclusive() -> None:
    """Naming both is refused when the Registration is made, with a message naming both."""
    with pytest.raises(TypeError, match=r"directory_param \('dir'\) and Registration\.path_param \('path'\) are "
                                        r"mutually exclusive"):
        Registration(factory=UnimplementedDestination, config={"dir": "{tmp}/d", "path": "{tmp}/f.db"},
                     directory_param="dir", path_param="path")


@pytest.mark.parametrize("config,message", [
    ({"file": "{tmp}/x.db"}, "path_param 'path' is not a key of config"),
    ({"path": "{tmp}/out/"}, "does not end in a file name"),
    ({"path": "{tmp}"}, "does not end in a file name"),
    ({"path": "{tmp}/.."}, "does not end in a file name"),
])
def test_path_param_must_name_a_file_in_config(config: dict[str, str], message: str) -> None:
    """path_param is a key of config (as directory_param must be) whose value ends in a file name."""
    with pytest.raises(TypeError, match=message):
        Registration(factory=UnimplementedDestination, config=config, path_param="path")


def test_a_path_param_registration_keeps_the_rest() -> None:
    """A valid path_param leaves directory_param unset; replacing the config (as --destination-config does) checks
    it again."""
    registration = Registration(factory=UnimplementedDestination, config={"path": "{tmp}/db/x.db"}, path_param="path")
    assert registration.directory_param is None and registration.path_param == "path"
    with pytest.raises(TypeError, match="does not end in a file name"):
        Registration(**{**vars(registration), "config": {"path": "{tmp}/db/"}})


def test_both_parameters_stop_the_run_with_a_usage_error(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the plugin the same mistake is a usage error (exit 4) naming both parameters."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makepyfile(both="""
from dataclasses import replace
from tests.sqlite_destination import registration as sqlite
registration = replace(sqlite, config={**sqlite.config, "directory": "{tmp}/d"}, directory_param="directory")
""")
    result = pytester.runpytest_subprocess("--destination=both:registration", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "directory_param ('directory') and Registration.path_param ('path') are mutually exclusive" \
        in result.stderr.str()


# --- the rules behind the checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("name,own", [
    ("records.sqlite", True), ("records.sqlite-journal", True), ("records.sqlite-wal", True),
    ("records.sqlite-shm", True), ("records.sqlite.tmp", True), (".records.sqlite.lock", True),
    ("records.idx", False), ("records", False), ("LOCK", False), (".records", False), ("x-records.sqlite", False),
])
def test_side_files_begin_with_the_file_name(name: str, own: bool) -> None:
    """A side file's name begins with the file's name, or with a dot and the file's name; nothing else is one."""
    assert side_file(name, "records.sqlite") is own


def test_evidence_for_a_path_param_registration() -> None:
    """With path_param, symlinks go where the destination creates files (not at keys), and every other clause asks
    what it asks of a directory destination (the failed-open states too: a file where the parent goes fails open)."""
    by_path = Registration(factory=UnimplementedDestination, config={"path": "{tmp}/f"}, path_param="path")
    by_directory = Registration(factory=UnimplementedDestination, config={"d": "{tmp}/d"}, directory_param="d")
    assert required_evidence("safety.no-symlink-follow", by_path) == PATH_SYMLINK_EVIDENCE
    assert not set(required_evidence("safety.no-symlink-follow", by_directory)) & set(PATH_SYMLINK_EVIDENCE)
    assert any("failed open" in label for label in required_evidence("teardown.any-state", by_path))
    for clause_id in CLAUSES:
        if clause_id != "safety.no-symlink-follow":
            assert required_evidence(clause_id, by_path) == required_evidence(clause_id, by_directory), clause_id


# --- the suite on file destinations --------------------------------------------------------------------------


def test_sqlite_and_jsonl_file_destinations_get_honest_verdicts(run_suite: RunSuite) -> None:
    """The whole suite: SQLite passes every clause that can be checked on it and names why the rest cannot be; the
    JSON-lines file passes every clause, the open, fault and safety ones fully (no part left unchecked)."""
    run = run_suite([SQLITE, JSONL], profile=PASS_PROFILE)
    report = run.report
    assert run.ret == 0, run.tail(200)
    problems = []
    sqlite, jsonl = run.summary(SQLITE), run.summary(JSONL)
    for clause_id in CLAUSES:
        status, reason = sqlite[clause_id]
        if clause_id.startswith("pipeline."):
            wanted = ("not checked", "needs a Conduit binary")
        elif clause_id.startswith("fault.backend-"):
            wanted = ("not checked", "no backend declared")
        elif clause_id in SQLITE_NOT_CHECKED:
            wanted = ("not checked", SQLITE_NOT_CHECKED[clause_id])
        elif clause_id in SQLITE_PARTLY:
            wanted = ("passed", SQLITE_PARTLY[clause_id])
        else:
            wanted = ("passed", "")
        if status != wanted[0] or wanted[1] not in reason or (not wanted[1] and reason):
            problems.append(f"sqlite {clause_id}: {status} {reason!r}, expected {wanted}")
        status, reason = jsonl[clause_id]
        wanted_status = "not checked" if clause_id.startswith(("pipeline.", "fault.backend-")) else "passed"
        if status != wanted_status or (clause_id in LOCATION_CLAUSES and reason):
            problems.append(f"jsonl {clause_id}: {status} {reason!r}, expected {wanted_status} with no reason")
    assert not problems, "\n".join(problems) + "\n\n" + run.tail(120)
    clauses = report["destinations"][JSONL]["clauses"]
    # Its file is made by the first write and its own names reached through teardown: links there too.
    assert set(clauses["safety.no-symlink-follow"]["evidence"]) == {*PATH_SYMLINK_EVIDENCE, OWN_NAME_SYMLINK_EVIDENCE}
    assert clauses["fault.io-error"]["coverage"].get("injected at fsync"), "the sync variant's fsync was never faulted"
    assert clauses["write.recovers"]["evidence"].get("recovered after an I/O error")


def test_a_registration_without_a_location_is_not_checked_there(run_suite: RunSuite) -> None:
    """Neither directory_param nor path_param: every open, fault and safety clause is "not checked", saying so."""
    run = run_suite(["tests.zoo.unusual:memory_kv"], "-k", "conformance_open or conformance_faults or "
                    "conformance_safety or registered_config_is_accepted", profile=PASS_PROFILE)
    table = run.summary("tests.zoo.unusual:memory_kv")
    for clause_id in LOCATION_CLAUSES:
        assert table[clause_id] == ("not checked", NO_LOCATION), (clause_id, table[clause_id])
    assert table["configure.valid"][0] == "passed"


def test_teardown_after_a_failed_open_is_checked_with_path_param(run_suite: RunSuite) -> None:
    """A regular file where the file's parent directory goes makes open() fail, so teardown.* is checked in every
    state with path_param too (not "partly: needs directory_param"); the report names the path_param."""
    run = run_suite([SQLITE], "-k", "teardown", profile=PASS_PROFILE)
    report = run.report
    table = run.summary(SQLITE)
    for clause_id in ("teardown.any-state", "teardown.idempotent"):
        assert table[clause_id] == ("passed", ""), (clause_id, table[clause_id])
    evidence = report["destinations"][SQLITE]["clauses"]["teardown.any-state"]["evidence"]
    assert evidence.get("torn down after a failed open")
    assert report["destinations"][SQLITE]["path_param"] == "path"
    assert report["destinations"][SQLITE]["directory_param"] is None
