"""A correct destination whose I/O bypasses pyfakefs (SQLite, C code): its faults go through the FUSE filesystem."""

import re

import pytest

SQLITE_DESTINATION = "tests.zoo.scenarios:sqlite_in_directory"


@pytest.mark.usefixtures("zoo_importable")
def test_sqlite_destination_passes_with_faults_injected_through_fuse(pytester: pytest.Pytester) -> None:
    """pyfakefs cannot inject faults into C-level I/O, the FUSE filesystem can: those clauses pass on their evidence,
    and no clause fails falsely."""
    result = pytester.runpytest_subprocess(f"--destination={SQLITE_DESTINATION}", "-p", "no:cacheprovider",
                                           "--hypothesis-profile=conformance-dev", timeout=600)
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    found = re.findall(r"^  (passed|FAILED|not checked|skipped)\s+([a-z]+\.[a-z-]+)", out, re.M)
    statuses = {clause: status for status, clause in found}
    assert statuses["fault.disk-full"] == "passed" and statuses["fault.io-error"] == "passed", out[-3000:]
    assert statuses["open.unwritable"] == "passed"
    assert statuses["write.round-trip"] == "passed" and statuses["open.keeps-existing"] == "passed"
    assert "FAILED" not in statuses.values()
