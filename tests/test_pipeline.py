"""The pipeline.* clauses through a real Conduit v0.13.3 and v0.14.0 (built from the module cache by
tests/go_connectors.py): the reference and the fixed Go destination pass them on both, a destination that cannot
take a redelivered record fails pipeline.crash-recovery, one that drops records fails pipeline.delivers, and a
destination reaches the same read-back in a pipeline as in the driver (issue 13, items 3 and 4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.contract.checks import NOT_CHECKED_PREFIX
from conformance.engine.accounting import account
from conformance.engine.pipeline import CONDUIT_ENV, Pipeline, ServeCommand, serve_command
from conformance.generate.model import Model
from conformance.generate.strategies import numbered
from harness import Driver, RawData, Record, Registration, StructuredData, directory_reader
from harness.records import Change, Operation
from tests.go_connectors import engine_binary
from tests.suite_runs import PIPELINE_CLAUSES, REPO_ROOT, SuiteRun, pipeline_rows, run_suite


def _suite(directory: Path, conduit: str, specs: tuple[str, ...], select: str, seed: int = 0) -> SuiteRun:
    """The pipeline checks selected by `select` (-k) over `specs`, in a subprocess, derandomized by a fixed seed
    (and no example database, so an earlier run's failure is not replayed)."""
    directory.mkdir(parents=True, exist_ok=True)
    return run_suite(directory, *specs, profile="conformance-dev", env={CONDUIT_ENV: None}, timeout=900,
                     args=(f"--hypothesis-seed={seed}", f"--conformance-conduit={conduit}", "-k", select),
                     database=None)




def test_reference_and_fixed_go_destination_pass_the_pipeline_clauses(tmp_path: Path,
                                                                     engine: tuple[str, str]) -> None:
    """Both pass every pipeline clause on each Conduit release, with the evidence each needs (a drained pipeline, a
    kill with records redelivered after it): keys, operations, payloads and positions go through Conduit as they
    are. The header and the JSON report name the release the verdicts hold for."""
    conduit, release = engine
    specs = ("reference:registration", "tests.conduit_v013:go_fixed13")
    run = _suite(tmp_path, conduit, specs, "test_pipeline_")
    assert f"conduit: {conduit}: Conduit {release} (from its Go build info; built-in connectors: " in run.output
    assert (run.report["engine"]["path"], run.report["engine"]["version"]) == (conduit, release), run.report["engine"]
    for spec in specs:
        rows = pipeline_rows(run, spec)
        assert {c: row["status"] for c, row in rows.items()} == dict.fromkeys(PIPELINE_CLAUSES, "passed"), (
            f"{spec}: {rows}\n{run.output[-8000:]}")
        assert rows["pipeline.crash-recovery"]["evidence"]["records redelivered after the kill"] >= 1
        # Every run, by construction: both kill plans, the long stream, and the accounting's counts.
        crash, engine = rows["pipeline.crash-recovery"]["coverage"], rows["pipeline.engine-restart"]["coverage"]
        for coverage in (crash, engine):
            assert coverage["kills in a stream of distinct-keys"] >= 1 and coverage["records lost"] == 0
            assert coverage["kills in a stream of repeated-keys"] >= 1 and coverage["records unexpected"] == 0
            assert coverage["records duplicated (redeliveries)"] >= 1
        assert engine["streams of 100 records or more"] >= 1
        # Killed only once Conduit had saved a position, the engine's restart resumed from it.
        assert rows["pipeline.engine-restart"]["evidence"]["resumed from a saved position"] >= 1


def test_a_destination_refusing_a_redelivered_record_fails_crash_recovery(tmp_path: Path, conduit: str) -> None:
    """An O_EXCL journal delivers, but the record in flight at the kill comes again and its file exists: EEXIST on
    every retry, Conduit gives up, and the failure shows the pipeline, what was acknowledged and the logs. (Before
    the source waited for a served destination to receive the record in flight, a loaded machine could kill before
    the connector read it, and this passed: 1 run in 6 to 8 under three busy loops on 2 cores; 0 in 10 now.)"""
    spec = "tests.pipeline_destinations:exclusive"
    run = _suite(tmp_path, conduit, (spec,), "test_pipeline_delivers or test_pipeline_recovers")
    rows = pipeline_rows(run, spec)
    assert rows["pipeline.delivers"]["status"] == "passed", run.output[-8000:]
    assert rows["pipeline.crash-recovery"]["status"] == "failed", run.output[-8000:]
    assert "[pipeline.crash-recovery]" in run.output
    assert "Conduit exited" in run.output and "error recovery gave up" in run.output
    for shown in ("plugin: \"standalone:conformance-destination\"", "Acknowledged by Conduit, in order:",
                  "Kills: the destination connector SIGKILLed with", "Destination connector's log",
                  "Records replayed by the source"):
        assert shown in run.output, shown
    assert "File exists" in run.output  # the connector's error, from Conduit's log


def test_a_destination_dropping_records_fails_delivers(tmp_path: Path, conduit: str) -> None:
    """It acks what it never wrote: once the pipeline drains, read-back misses records."""
    spec = "tests.pipeline_destinations:drops_last"
    run = _suite(tmp_path, conduit, (spec,), "test_pipeline_delivers")
    rows = pipeline_rows(run, spec)
    assert rows["pipeline.delivers"]["status"] == "failed", run.output[-8000:]
    assert "read-back after the pipeline drained differs from the model" in run.output
    assert "missing" in run.output
    assert re.search(r"Accounting \(\d+ records, (\d+) acknowledged\): lost [1-9]", run.output)  # acked, never held


def test_conduit_exiting_on_its_own_ends_each_example_with_its_status_and_log(tmp_path: Path, conduit: str) -> None:
    """The destination's process exits as it starts, so Conduit cannot load it and exits: every pipeline check
    (the engine-restart one included, which expects Conduit to die, but by its own kill) fails at once with the
    exit status and Conduit's last errors, not after waiting out its time limit."""
    spec = "tests.pipeline_destinations:exits_at_start"
    run = _suite(tmp_path, conduit, (spec,), "test_pipeline_")
    rows = pipeline_rows(run, spec)
    assert {c: row["status"] for c, row in rows.items()} == dict.fromkeys(PIPELINE_CLAUSES, "failed"), (
        run.output[-8000:])
    assert run.output.count("Conduit exited on its own (status 1) before") >= 3, run.output[-8000:]
    assert "the pipeline never started (the source was never opened)" in run.output
    assert "plugin not found" in run.output  # Conduit's own error, from its log
    assert "did not reach this within" not in run.output


@pytest.mark.parametrize("name", ["undoes_dead_writes", "bytes_checkpoint"])
def test_a_destination_losing_acknowledged_records_on_a_restart_fails_both_kill_clauses_under_any_seed(
        tmp_path: Path, conduit: str, name: str) -> None:
    """Each loses records only after an unclean exit, and only where the stream lets it show: one removes what the
    dead process wrote (invisible when a later record of the key writes it again), the other drops records whose
    position sorts as bytes at or below its checkpoint. The kill plans run a stream of distinct keys, with records
    acknowledged past a position of every shape, in every run: under two seeds, both fail pipeline.crash-recovery
    and pipeline.engine-restart, saying the example is not minimal and accounting for the records lost."""
    spec = f"tests.pipeline_destinations:{name}"
    for seed in (1, 2):
        run = _suite(tmp_path / f"seed-{seed}", conduit, (spec,), "test_pipeline_recovers or test_pipeline_survives",
                     seed=seed)
        rows = pipeline_rows(run, spec)
        # The engine's restart resumes from a saved position, so what was saved before it is not redelivered.
        assert {c: rows[c]["status"] for c in PIPELINE_CLAUSES[1:]} == dict.fromkeys(PIPELINE_CLAUSES[1:], "failed"), (
            seed, run.output[-8000:])
        assert "This example is not minimal" in run.output
        assert re.search(r"Accounting \(\d+ records, \d+ acknowledged\): lost [1-9]", run.output), run.output[-8000:]


def test_without_conduit_the_pipeline_clauses_are_not_checked(tmp_path: Path) -> None:
    """No --conformance-conduit and no $CONFORMANCE_CONDUIT: each check (and each plan) skips, saying what it
    needs."""
    env = {k: v for k, v in os.environ.items() if k not in ("CONFORMANCE_DESTINATION", CONDUIT_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--destination=reference:registration", "-p", "no:cacheprovider", "-k",
         "test_pipeline_", "-rs", "-W", "ignore"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = completed.stdout + completed.stderr
    # One delivers check, and one kill check per plan: 2 for the connector, 3 for the engine.
    assert "6 skipped" in output and NOT_CHECKED_PREFIX + "needs a Conduit binary" in output, output[-4000:]


# -- item 4: the driver and the pipeline reach the same read-back ---------------------------------------------------

# Creates, overwrites, removals, every operation, raw and structured payloads, non-ASCII keys, metadata: in two
# batches, written by the driver batch by batch and replayed by the pipeline's source as one stream.
_BATCHES = [
    [Record(operation=Operation.create, key=RawData(b"alpha"), payload=Change(after=RawData(b"1"))),
     Record(operation=Operation.snapshot, key=RawData("ключ".encode()), payload=Change(after=RawData(b"\x00\xff"))),
     Record(operation=Operation.update, key=RawData(b"alpha"), metadata={"opencdc.collection": "users"},
            payload=Change(before=RawData(b"1"), after=StructuredData({"n": 2.5, "s": "é", "l": [True, None]}))),
     Record(operation=Operation.create, key=RawData(b"gone"), payload=Change(after=RawData(b"soon removed")))],
    [Record(operation=Operation.delete, key=RawData(b"gone"), payload=Change(before=RawData(b"soon removed"))),
     Record(operation=Operation.create, key=RawData(b"empty"), payload=Change(after=RawData(b""))),
     Record(operation=Operation.update, key=RawData("ключ".encode()), payload=Change(after=RawData(b"last")))],
]


def _registration(name: str) -> Registration:
    """A registration of tests/conduit_v013.py or tests/conduit_v014.py (its connector is built on first access)."""
    import tests.conduit_v013 as v013
    import tests.conduit_v014 as v014

    return getattr(v014 if name.startswith("upstream14") else v013, name)


@pytest.mark.parametrize(("name", "engine_name"), [("go_fixed13", "conduit13"), ("upstream13_file", "conduit13"),
                                                   ("go_fixed13", "conduit14"), ("upstream14_file", "conduit14")])
def test_driver_and_pipeline_reach_the_same_read_back(tmp_path: Path, name: str, engine_name: str) -> None:
    """The same connector, the same batches: run in the driver (exec:, over the plugin protocol) and in a Conduit
    pipeline, the read-backs are equal (and equal the model), on each release with its own built-in file
    destination."""
    conduit = engine_binary(engine_name)
    registration = _registration(name)
    records = numbered([r for batch in _BATCHES for r in batch], 0)
    batches = [records[:len(_BATCHES[0])], records[len(_BATCHES[0]):]]

    for tmp in ("driver", "pipeline"):  # each run's {tmp}, which exists as the suite's does
        (tmp_path / tmp).mkdir()
    in_driver = {k: v.replace("{tmp}", str(tmp_path / "driver")) for k, v in registration.config.items()}
    with Driver(registration, config=in_driver) as driver:
        results = driver.run(batches)
    assert [r.written for r in results] == [len(b) for b in batches]
    driver_held = dict(registration.read_back(in_driver))

    in_pipeline = {k: v.replace("{tmp}", str(tmp_path / "pipeline")) for k, v in registration.config.items()}
    command = serve_command(registration, str(REPO_ROOT))
    assert isinstance(command, ServeCommand), command
    pipeline = Pipeline(conduit, str(tmp_path / "conduit"), command, in_pipeline, records)
    try:
        pipeline.start()
        pipeline.wait_drained(120)
        pipeline_held = dict(registration.read_back(in_pipeline))
    finally:
        pipeline.stop()

    assert pipeline_held == driver_held, pipeline.evidence()
    assert driver_held == Model().apply(records).data


def test_serve_command_of_each_kind() -> None:
    """exec: specs run as they are, standalone registrations by the command in their factory, in-process ones
    through conformance.engine.serve_destination; a registration without a spec cannot be served."""
    from harness import load_registration
    from harness.conduit.standalone import standalone_registration

    exec_spec = load_registration("exec:/bin/connector --flag", {})
    assert serve_command(exec_spec, "/here") == ServeCommand(("/bin/connector", "--flag"))
    made = standalone_registration(["/bin/connector", "x"], env={"A": "1"})
    assert serve_command(made, "/here") == ServeCommand(("/bin/connector", "x"), {"A": "1"})
    served = serve_command(load_registration("reference:registration"), "/here")
    assert isinstance(served, ServeCommand) and served.argv[1:] == ("-m", "conformance.engine.serve_destination")
    assert served.env["CONFORMANCE_SERVE_DESTINATION"] == "reference:registration"
    anonymous = Registration(factory=lambda: None, config={"directory": "{tmp}"},
                             read_back=directory_reader("directory"))
    assert isinstance(serve_command(anonymous, "/here"), str)


def _event(kind: str, record: Record | None = None) -> dict:
    return {"event": kind, "position": record.position if record is not None else b""}


def test_accounting_counts_each_record_against_the_acks_and_read_back() -> None:
    """Of a stream killed after two acks and redelivered from the third: the overwritten record is not observable,
    the in-flight one held at the end is recovered, a redelivered one is a duplicate (allowed), an acknowledged one
    read-back misses is lost, a value or key no record gave is unexpected; lost and unexpected break the contract."""
    def put(key: bytes, value: bytes) -> Record:
        return Record(operation=Operation.create, key=RawData(key), payload=Change(after=RawData(value)))

    records = numbered([put(b"a", b"1"), put(b"a", b"2"), put(b"b", b"1"), put(b"c", b"1")], 0)
    events = [_event("open"), *(_event("read", r) for r in records[:3]), _event("ack", records[0]),
              _event("ack", records[1]), _event("kill destination"), _event("open", records[1]),
              *(_event("read", r) for r in records[2:]), *(_event("ack", r) for r in records[2:])]
    good = account(records, events, {b"a": b"2", b"b": b"1", b"c": b"1"})
    assert (good.lost, good.unexpected, good.superseded) == ([], [], 1)
    assert good.duplicated == [records[2].position] and good.recovered == [records[2].position]
    assert not good.broken() and "lost 0, duplicated 1 (redeliveries, allowed), unexpected 0, recovered 1" in \
        good.summary()

    bad = account(records, events, {b"a": b"1", b"b": b"9", b"zz": b"?"}, received=[records[3].position] * 2)
    assert bad.lost == [records[1].position, records[2].position, records[3].position]
    assert bad.unexpected == ["b'b' = b'9'", "b'zz' (no record's key)"]
    assert bad.unexplained == [records[3].position]  # received twice, emitted once
    assert bad.broken() and "lost 3" in bad.summary() and "#1 " in bad.summary()
