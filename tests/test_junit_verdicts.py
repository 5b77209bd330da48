"""--junitxml carries every clause's verdict and reason as testsuite properties, equal to the JSON report's, also
under xdist, so a CI system reading only the XML sees a clause left not checked."""

import json

import pytest

from conformance.contract.clauses import CLAUSES
from conformance.results.status import Status
from tests.support import junit_verdicts, report_verdicts

REFERENCE = "reference:registration"


def test_junit_carries_every_verdict_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of a few clauses under -n 2 without Conduit: the JUnit file lists every clause of the contract with
    the JSON report's verdict and reason, including the pipeline clauses not checked (no Conduit) and the clauses not
    selected."""
    monkeypatch.delenv("CONFORMANCE_CONDUIT", raising=False)  # the pipeline clauses must stay unchecked
    result = pytester.runpytest_subprocess(f"--destination={REFERENCE}", "--conformance-clause=configure.*,pipeline.*",
                                           "--hypothesis-profile=conformance-quick", "-p", "no:cacheprovider",
                                           "-n", "2", "--junitxml=junit.xml", "--conformance-report=report.json")
    assert result.ret == 0, result.stdout.str()[-3000:]
    junit = junit_verdicts(pytester.path / "junit.xml")
    assert junit == report_verdicts(json.loads((pytester.path / "report.json").read_text()))
    rows = junit[REFERENCE]
    assert set(rows) == set(CLAUSES)
    assert rows["configure.required"] == (Status.PASSED.value, "")
    pipeline = [c for c in CLAUSES if c.startswith("pipeline.")]
    assert pipeline and all(rows[c][0] == Status.NOT_CHECKED.value and "Conduit" in rows[c][1] for c in pipeline)
    assert rows["write.round-trip"] == (Status.NOT_CHECKED.value, "no check was selected in this run")
