"""The blind audit's destinations (tests/zoo/blind, written from CONTRACT.md and the docs alone, never from
conformance/): every one-bug destination fails its target clause, every control passes.

Each bug destination runs only its target clause's checks (`--conformance-clause`), the controls the whole suite,
all under the derandomized quick profile without shrinking, so no verdict depends on a seed.
"""

import json
from pathlib import Path

import pytest

from tests.suite_runs import SuiteRun, dump, not_passed, run_suite

MANIFEST = json.loads((Path(__file__).parent / "zoo" / "blind" / "manifest.json").read_text())
# What the audit itself found not to be a bug (its worker thread ends once the replaced pool is collected).
NOT_A_BUG = {"blind.async_pool_leak"}
BUGS = {row["module"].removeprefix("blind."): row["target_clause"] for row in MANIFEST
        if row["kind"] == "bug" and row["module"] not in NOT_A_BUG}
# Found once the FUSE fault filesystem reached SQLite's C I/O (a finding for review, not yet judged): this control's
# read_back copies the -wal file without the -shm wal-index, so after an injected fsync EIO it reads the frames of a
# commit SQLite rolled back (the deleted key is gone), and once a later transaction reuses those frames the key is
# back: teardown.keeps-data sees the flip (write.recovers did too before this session's changes to the fault checks,
# which charge a failed fsync only for a file the destination keeps; under the derandomized draws it passes now).
FOUND_THROUGH_FUSE = {"ctl_sqlite_wal": {"teardown.keeps-data"}}
CONTROLS = sorted(row["module"].removeprefix("blind.") for row in MANIFEST if row["kind"] == "control")


def _spec(name: str) -> str:
    return f"tests.zoo.blind.{name}:registration"


@pytest.mark.parametrize("name", sorted(BUGS))
def test_a_one_bug_destination_fails_its_clause(tmp_path: Path, name: str) -> None:
    """The bug is caught by the clause the audit aimed it at."""
    clause = BUGS[name]
    run = run_suite(tmp_path, _spec(name), args=(f"--conformance-clause={clause}",))
    assert run.ret == 1, dump(run, _spec(name))
    assert not_passed(run, _spec(name)).get(clause) == "failed", dump(run, _spec(name))


@pytest.fixture(scope="module")
def controls(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """The controls through the whole suite in one run."""
    return run_suite(tmp_path_factory.mktemp("blind-controls"), *(_spec(name) for name in CONTROLS))


@pytest.mark.parametrize("name", CONTROLS)
def test_a_correct_but_unusual_destination_passes(controls: SuiteRun, name: str) -> None:
    """No clause fails, and none is left unchecked but the pipelines' (no Conduit binary here) and what the
    destination's shape cannot give (C-level I/O out of the fault injector's reach)."""
    failed = {c for c, s in not_passed(controls, _spec(name)).items() if s == "failed"}
    assert failed == FOUND_THROUGH_FUSE.get(name, set()), dump(controls, _spec(name))
