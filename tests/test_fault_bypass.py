"""A correct destination whose I/O bypasses pyfakefs (SQLite, C code): fault clauses are not checked, none fail."""

import re

import pytest

SQLITE_DESTINATION = "tests.zoo.scenarios:sqlite_in_directory"


@pytest.mark.usefixtures("zoo_importable")
def test_sqlite_destination_passes_and_fault_clauses_are_not_checked(pytester: pytest.Pytester) -> None:
    """Faults cannot be injected into C-level I/O: those clauses say so, and no clause fails falsely."""
    result = pytester.runpytest_subprocess(f"--destination={SQLITE_DESTINATION}", "-p", "no:cacheprovider",
                                           "--hypothesis-profile=conformance-dev", timeout=600)
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    found = re.findall(r"^  (passed|FAILED|not checked|skipped)\s+([a-z]+\.[a-z-]+)", out, re.M)
    statuses = {clause: status for status, clause in found}
    assert statuses["fault.disk-full"] == "not checked" and statuses["fault.io-error"] == "not checked"
    assert "bypasses pyfakefs" in out
    assert statuses["write.round-trip"] == "passed" and statuses["open.keeps-existing"] == "passed"
    assert "FAILED" not in statuses.values()
