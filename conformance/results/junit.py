"""Every clause's verdict as JUnit testsuite properties (--junitxml), so a CI system reading only the XML sees the
clauses left not checked, not applicable or skipped, which have no failing test case to show them."""

from collections.abc import Iterator

import pytest
from _pytest import junitxml

from conformance.results.report import Recorder
from conformance.results.status import Status
from conformance.results.verdicts import Table

__all__ = ["VERDICT", "REASON", "verdict_properties", "add_verdicts"]

VERDICT = "verdict"  # property verdict:<destination>:<clause>, valued a Status value ("passed", "not checked", ...)
REASON = "reason"  # property reason:<destination>:<clause>, the verdict's reason, only where it has one


def verdict_properties(table: Table) -> Iterator[tuple[str, str]]:
    """(name, value) per destination and clause, in the table's order: its verdict, then its reason if any."""
    for name, rows in table.items():
        for clause_id, row in rows.items():
            yield f"{VERDICT}:{name}:{clause_id}", Status(row["status"]).value
            if row.get("reason"):
                yield f"{REASON}:{name}:{clause_id}", str(row["reason"])


def add_verdicts(config: pytest.Config, recorder: Recorder) -> None:
    """Adds the recorder's verdicts to the JUnit file's testsuite properties; junitxml writes the file in its own
    pytest_sessionfinish, so the caller's must run first (tryfirst)."""
    xml = config.stash.get(junitxml.xml_key, None)
    if xml is None:  # no --junitxml, or an xdist worker (the controller writes the file)
        return
    for name, value in verdict_properties(recorder.table()):
        xml.add_global_property(name, value)
