"""Verdict statuses are one enum: each keeps its text through the JSON report and the baseline read from it, and
each has its terminal mark and Markdown icon."""

import json
from pathlib import Path

import pytest

from conformance.results.baseline import load_baseline
from conformance.results.report import markdown
from conformance.results.status import Status
from conformance.results.verdicts import STATUS_MARKS


@pytest.mark.parametrize("status", list(Status))
def test_a_status_round_trips_through_the_json_report_and_the_baseline(status: Status, tmp_path: Path) -> None:
    """The JSON report writes a status as its text; a baseline made from that report reads the same member."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"destinations": {"d": {"clauses": {"write.count": {"status": status}}}}}))
    assert json.loads(report.read_text())["destinations"]["d"]["clauses"]["write.count"]["status"] == status.value
    assert load_baseline(report) == {"d": {"write.count": status}}
    assert load_baseline(report)["d"]["write.count"] is status


def test_a_baseline_leaves_out_a_status_it_does_not_know(tmp_path: Path) -> None:
    """A status no verdict can have matches nothing, as before statuses were an enum."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"destinations": {"d": {"clauses": {"write.count": {"status": "flaky"},
                                                                     "write.recovers": {}}}}}))
    assert load_baseline(report) == {"d": {}}


def test_every_status_is_written_as_its_text() -> None:
    """Formatting, the terminal marks and the Markdown table show each status by its text, icon or mark."""
    assert [f"{s}" for s in Status] == [s.value for s in Status] == [str(s) for s in Status]
    assert STATUS_MARKS == {"passed": "passed", "failed": "FAILED", "known failure": "known fail",
                            "not checked": "not checked", "not applicable": "n/a", "skipped": "skipped"}
    table = {"d": {f"c.{i}": {"status": s, "reason": ""} for i, s in enumerate(Status)}}
    text = markdown(table)
    for i, status in enumerate(Status):
        assert f"| `c.{i}` | {status.icon} {status.value} |" in text
    assert "1 passed, 1 failed, 1 known failure, 1 not checked, 1 not applicable, 1 skipped" in text
    assert [s for s in Status if s.judged] == [Status.PASSED, Status.FAILED, Status.KNOWN_FAILURE]
