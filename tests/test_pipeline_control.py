"""Engine faults told from connector faults (conformance.control): an anomaly the control destination shows too,
in the same engine, store, records and kill plan, is the engine's; one it does not show is the connector's."""

from __future__ import annotations

import re
from pathlib import Path

from conformance.engine.accounting import Accounting
from conformance.engine.control import DIFFERS, LOST, STOPPED, UNEXPECTED, ControlOutcome, engine_verdict, ledger_kinds
from conformance.engine.replay_source import ANOMALY_ENV
from harness import RawData, Record
from harness.records import Change
from tests.suite_runs import pipeline_rows, run_suite

GO_FIXED13 = "tests.conduit_v013:go_fixed13"


def test_an_anomaly_is_the_engines_only_when_the_control_shows_all_of_it() -> None:
    """The verdict names the engine and what it did only when every anomaly of the connector's example is among
    the control's; one the control lacks, or none at all, is not the engine's."""
    control = ControlOutcome(frozenset({DIFFERS, UNEXPECTED}), "Accounting (3 records, 3 acknowledged): ...")
    verdict = engine_verdict("/no/such/conduit", {DIFFERS, UNEXPECTED}, control)
    assert verdict is not None and verdict.startswith("engine: Conduit (/no/such/conduit) delivered values no record "
                                                      "gave, left read-back off the model with the control")
    assert engine_verdict("/no/such/conduit", {DIFFERS, LOST}, control) is None
    assert engine_verdict("/no/such/conduit", set(), control) is None
    assert engine_verdict("/no/such/conduit", {STOPPED}, ControlOutcome(frozenset(), "clean")) is None


def test_ledger_kinds_name_each_break() -> None:
    """Read-back off the model and each kind of accounting break is an anomaly of its own."""
    records = [Record(position=b"0", key=RawData(b"k"), payload=Change(after=RawData(b"v")))]
    assert ledger_kinds(records, {b"k": b"v"}, Accounting(records=1, acked=1)) == set()
    assert ledger_kinds(records, {}, Accounting(records=1, acked=1, lost=[b"0"])) == {DIFFERS, LOST}


def _pipelines(directory: Path, conduit: str, spec: str, env: dict[str, str | None],  # noqa: F811
               select: str = "test_pipeline_delivers") -> dict[str, dict]:
    """The pipeline rows of one suite run over `spec` (the output under "output")."""
    directory.mkdir(parents=True, exist_ok=True)
    run = run_suite(directory, spec, profile="conformance-dev", timeout=900, database=None,
                    env={"CONFORMANCE_CONDUIT": None, **env},
                    args=("--hypothesis-seed=0", f"--conformance-conduit={conduit}", "-k", select))
    rows = pipeline_rows(run, spec)
    rows["output"] = {"text": run.output}
    return rows


def test_an_engine_that_corrupts_a_record_is_charged_to_the_engine(tmp_path: Path, conduit: str) -> None:  # noqa: F811
    """With a replay source playing a faulty engine (the last record's value replaced on its way), a correct Go
    connector's read-back is off, with and without a kill: the control destination shows the same, so neither
    pipeline.delivers nor pipeline.crash-recovery is charged to the connector; both are reported as the engine's,
    naming Conduit's version and what it did."""
    rows = _pipelines(tmp_path, conduit, GO_FIXED13, {ANOMALY_ENV: "corrupt:-1"},
                      "test_pipeline_delivers or test_pipeline_recovers")
    output = rows["output"]["text"]
    for clause in ("pipeline.delivers", "pipeline.crash-recovery"):
        row = rows[clause]
        assert row["status"] == "not checked", (clause, output[-8000:])
        reason = row["reason"]
        assert re.match(r"engine: Conduit v0\.13\.\d+ delivered values no record gave, left read-back off the "
                        r"model, lost acknowledged records with the control destination too ", reason), reason
        assert "engine-corrupted" in reason, reason
    assert "[pipeline." not in output  # no failure charged to the connector


def test_a_connector_bug_is_still_charged_to_the_connector(tmp_path: Path, conduit: str) -> None:  # noqa: F811
    """A destination that acks what it never wrote fails pipeline.delivers, and the failure says the control ran
    the same example cleanly."""
    spec = "tests.pipeline_destinations:drops_last"
    rows = _pipelines(tmp_path, conduit, spec, {ANOMALY_ENV: None})
    output = rows["output"]["text"]
    assert rows["pipeline.delivers"]["status"] == "failed", output[-8000:]
    assert "Control: the reference destination, served the same way in the same engine, store, records and kill " \
           "plan, showed no anomaly" in output
    assert "so the anomaly above is the connector's" in output
