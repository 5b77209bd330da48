"""--junitxml carries every clause's verdict and reason as testsuite properties, equal to the JSON report's, also
under xdist, so a CI system reading only the XML sees a clause left not checked."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance.contract.clauses import CLAUSES
from conformance.results.status import Status

__all__ = ["junit_verdicts", "report_verdicts"]

REFERENCE = "reference:registration"


def junit_verdicts(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Destination -> clause -> (verdict, reason) from a JUnit file's testsuite properties."""
    props = [(p.get("name", ""), p.get("value", "")) for suite in ET.parse(path).getroot().iter("testsuite")
             for p in suite.findall("properties/property")]
    names = [name for name, _ in props]
    assert len(names) == len(set(names)), "a verdict or reason property is repeated"
    values = dict(props)
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for name, value in props:
        kind, _, rest = name.partition(":")
        if kind == "verdict":
            destination, _, clause_id = rest.rpartition(":")
            found.setdefault(destination, {})[clause_id] = (value, values.get(f"reason:{rest}", ""))
    assert {name.partition(":")[2] for name in names if name.startswith("reason:")} <= \
        {f"{d}:{c}" for d, rows in found.items() for c in rows}, "a reason without its verdict"
    return found


def report_verdicts(report: dict[str, Any]) -> dict[str, dict[str, tuple[str, str]]]:
    """The same from a --conformance-report JSON file's rows."""
    return {name: {c: (row["status"], row.get("reason", "")) for c, row in d["clauses"].items()}
            for name, d in report["destinations"].items()}


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
