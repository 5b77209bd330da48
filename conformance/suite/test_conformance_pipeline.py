"""Clauses pipeline.delivers, pipeline.crash-recovery and pipeline.engine-restart: the destination in a real Conduit
pipeline (conformance.engine.pipeline), fed by a source replaying the suite's batches (engine.replay_source).

Each example starts Conduit, so these checks draw few examples and do not shrink (a shrink step would start
Conduit again: a failure says its example is not minimal); the records are the registration's, as every other
check draws them. What a run covers does not rest on chance: the kill checks are parametrized by `Plan`, each plan
run at least once per run, so every run kills the connector and the engine in a stream of distinct keys (nothing
written is rewritten later, so what a restart undoes stays undone) and in one of repeated keys, and restarts the
engine in a stream of 100 records or more (positions past two decimal digits, cycling every shape).
"""

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import pytest
from hypothesis import Phase, given, strategies as st

from conformance.contract.checks import NOT_CHECKED_PREFIX, ClauseFailure
from conformance.engine.accounting import account, held_since
from conformance.engine.control import AT_KILL, STOPPED, control_note, engine_verdict, ledger_kinds, run_control
from conformance.engine.pipeline import Pipeline, PipelineFailed, ServeCommand, conduit_binary, serve_command
from conformance.execute.subject import Subject
from conformance.generate.model import Model, differences, key_bytes
from conformance.generate.strategies import numbered
from conformance.plugin._hypothesis_compat import final_replay
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from harness import Record, Registration

__all__ = ["NO_CONDUIT", "NOT_MINIMAL", "Plan", "KILL_PLANS", "ENGINE_PLANS", "pipeline_records", "planned_records"]

NO_CONDUIT = ("needs a Conduit binary (v0.13 or v0.14) to run pipelines: pass --conformance-conduit=PATH or set "
              "$CONFORMANCE_CONDUIT")
# Conduit and two connector processes per example: a few examples, no shrinking (see the module docstring).
_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
NOT_MINIMAL = ("(This example is not minimal: pipeline examples are not shrunk, as each smaller one would start "
               "Conduit again.)")
_COMMANDS: dict[tuple[Any, ...], ServeCommand] = {}  # the destination's plugin name, asked once per command
_WIRED: dict[int, tuple[Registration, Registration]] = {}


def _examples() -> int:
    """The examples of a pipeline check: 5% of the profile's, at least 2."""
    return fraction_of_examples(0.05, minimum=2)


@dataclass(frozen=True)
class Plan:
    """One kind of kill example: how many records its stream has, whether keys repeat, and the fewest records
    acknowledged before the kill (the kill's record itself is drawn)."""

    name: str
    least: int
    most: int
    distinct: bool  # every record of a key of its own, none a delete (Subject.distinct_records)
    first_kill: int

    def __str__(self) -> str:
        return self.name


# Streams of 12 or more records: decimal positions past one digit, and every shape of position twice.
KILL_PLANS = (Plan("distinct-keys", 12, 24, True, 4), Plan("repeated-keys", 12, 24, False, 1))
ENGINE_PLANS = (*KILL_PLANS, Plan("long-stream", 100, 120, False, 1))
LONG_STREAM = 100  # records from which a stream counts as long, for the coverage


def _plan_examples(plans: tuple[Plan, ...]) -> int:
    """Each plan's examples: the check's, shared among its plans, at least one."""
    return max(1, _examples() // len(plans))


def _command(subject: Subject, request: pytest.FixtureRequest) -> tuple[str, ServeCommand]:
    """The Conduit binary and how Conduit starts the destination; skips the check (not checked) without them."""
    conduit = conduit_binary(request.config)
    if conduit is None:
        pytest.skip(NOT_CHECKED_PREFIX + NO_CONDUIT)
    if not (os.path.isfile(conduit) and os.access(conduit, os.X_OK)):
        pytest.skip(NOT_CHECKED_PREFIX + f"the Conduit binary {conduit!r} is not an executable file")
    if subject.registration.read_back is None:
        pytest.skip(NOT_CHECKED_PREFIX + "needs read_back, which the registration does not provide")
    if importlib.util.find_spec("conduit") is None:
        pytest.skip(NOT_CHECKED_PREFIX + "the pipeline's source runs on Conduit's Python SDK, which needs the "
                                         "'conduit' extra: pip install 'destination-conformance[conduit]'")
    command = serve_command(subject.registration, str(request.config.invocation_params.dir))
    if isinstance(command, str):
        pytest.skip(NOT_CHECKED_PREFIX + command)
    key = (command.argv, tuple(sorted(command.env.items())))
    if key not in _COMMANDS:
        _COMMANDS[key] = command.specified()
    return conduit, _COMMANDS[key]


def _over_the_wire(registration: Registration) -> Registration:
    """The registration as a pipeline reaches it: Conduit carries structured data as a protobuf Struct (numbers
    become float64), whatever the destination accepts in-process; made once per registration (hypothesis keeps
    its work per strategy)."""
    if registration.structured_data == "protobuf-struct":
        return registration
    made = _WIRED.get(id(registration))
    if made is None or made[0] is not registration:
        made = _WIRED[id(registration)] = (registration, replace(registration, structured_data="protobuf-struct"))
    return made[1]


def pipeline_records(data: st.DataObject, subject: Subject, min_records: int = 1) -> list[Record]:
    """One to three of the registration's batches (with what Conduit's protocol carries unchanged), the first of
    at least `min_records`, numbered as one stream (the opaque positions of generate.strategies.position)."""
    wired = Subject(_over_the_wire(subject.registration), subject.clause_id, subject.timeout)
    records: list[Record] = []
    for index in range(data.draw(st.integers(1, 3), label="number of batches")):
        least = min_records if index == 0 else 1
        batch = data.draw(wired.batches(min_size=least, max_size=max(batch_limit(), least)), label=f"batch {index}")
        subject.observe(batch)
        records += numbered(batch, len(records))
    return records


def planned_records(data: st.DataObject, subject: Subject, plan: Plan) -> list[Record]:
    """A stream of the plan's length (fewer only when the registration's keys run out for distinct keys),
    numbered with the opaque positions from 0."""
    size = data.draw(st.integers(plan.least, plan.most), label="records in the stream")
    if plan.distinct:
        wired = Subject(_over_the_wire(subject.registration), subject.clause_id, subject.timeout)
        records = data.draw(wired.distinct_records(size), label="records of distinct keys")
        subject.observe(records)
        return numbered(records, 0)
    records = pipeline_records(data, subject, min_records=1)
    while len(records) < size:
        records += pipeline_records(data, subject, min_records=1)
    return numbered(records[:size], 0)


@contextmanager
def _example(subject: Subject, conduit: str, command: ServeCommand, records: list[Record],
             kill: tuple[str, int] | None = None, store: str = "sqlite") -> Iterator[Pipeline]:
    """A pipeline for one example, in a fresh temporary directory that also holds the destination's `{tmp}`."""
    subject.examples += 1
    tmp = tempfile.mkdtemp(prefix="conformance-pipeline-")
    config = {k: v.replace("{tmp}", tmp) for k, v in subject.registration.config.items()}
    pipeline = Pipeline(conduit, os.path.join(tmp, "conduit"), command, config, records, db=store, kill=kill)
    failing = False
    try:
        yield pipeline
    except BaseException as err:
        failing = True
        subject.pacer.failed(error=err)
        raise
    finally:
        pipeline.stop()
        if not (failing and final_replay()):  # the reported failure keeps its directory, for its replay line
            shutil.rmtree(tmp, ignore_errors=True)
        subject.pacer.check(subject.examples, failing=failing)


def _fail(subject: Subject, pipeline: Pipeline, what: str, kinds: frozenset[str] = frozenset()) -> NoReturn:
    """Raises ClauseFailure for the check's clause with the pipeline's evidence. With the anomalies `kinds`, the
    control destination runs the same example first (conformance.control): if it shows them all too, they are
    the engine's, and the check is not charged (not checked, with the engine's verdict)."""
    __tracebackhide__ = True
    note = ""
    if kinds:
        control = run_control(pipeline.conduit, pipeline.records, pipeline.kill, pipeline.db,
                              _drain_limit(subject, pipeline.records))
        engine = engine_verdict(pipeline.conduit, kinds, control)
        if engine is not None:
            subject.coverage["anomalies the control destination showed too (the engine's)"] += 1
            pytest.skip(NOT_CHECKED_PREFIX + engine)
        note = "\n" + control_note(control)
    raise ClauseFailure(subject.clause_id, f"{what}{note}\n{NOT_MINIMAL}\n{pipeline.evidence()}", spec=subject.spec,
                        tmp=str(pipeline.root.parent))


def _read_back(subject: Subject, pipeline: Pipeline) -> dict[bytes, bytes]:
    """What the destination holds now, by the registration's read_back of the pipeline's settings."""
    read_back = subject.registration.read_back
    assert read_back is not None
    try:
        held = read_back(pipeline.settings)
    except Exception as err:
        _fail(subject, pipeline, f"the registration's read_back raised {type(err).__name__}: {err}")
    return {bytes(k): bytes(v) for k, v in held.items()}


def _drain_limit(subject: Subject, records: list[Record]) -> float:
    # Start-up (Conduit, two connector processes) takes seconds; each record then costs a destination call.
    return 60.0 + subject.timeout + 0.5 * len(records)


def _wait(subject: Subject, pipeline: Pipeline, records: list[Record], after: str = "") -> None:
    """Waits for the pipeline to drain; fails the check if it stops or does not in time."""
    try:
        pipeline.wait_drained(_drain_limit(subject, records))
    except PipelineFailed as err:
        _fail(subject, pipeline, f"{err}{after}", frozenset({STOPPED}))


def _expect(subject: Subject, pipeline: Pipeline, records: list[Record], after: str,
            left_behind: frozenset[bytes] = frozenset()) -> None:
    """Fails unless read-back equals the model and the accounting keeps at-least-once delivery (no acknowledged
    record lost, nothing unexpected, a duplicate only as a redelivery); names in `left_behind` (what a killed
    process left) are ignored. The accounting's counts go to the check's coverage either way."""
    held = {k: v for k, v in _read_back(subject, pipeline).items() if k not in left_behind}
    ledger = account(records, pipeline.events(), held, pipeline.received(), left_behind)
    for label, count in (("records lost", len(ledger.lost)), ("records unexpected", len(ledger.unexpected)),
                         ("records duplicated (redeliveries)", len(ledger.duplicated)),
                         ("records recovered after a kill", len(ledger.recovered))):
        subject.coverage[label] += count
    lines = differences(Model().apply(records).data, held)
    kinds = frozenset(ledger_kinds(records, held, ledger))
    if lines:
        _fail(subject, pipeline, f"read-back after {after} differs from the model:\n      " + "\n      ".join(lines)
              + "\n" + ledger.summary(), kinds)
    if ledger.broken():
        _fail(subject, pipeline, f"after {after}, the accounting breaks at-least-once delivery:\n" + ledger.summary(),
              kinds)


def _held_at_kill(subject: Subject, pipeline: Pipeline, records: list[Record], what: str) -> frozenset[bytes]:
    """Fails unless every key holds, right after the kill, the value of its last record Conduit had acknowledged
    or of a later record (a record acknowledged before the kill was already held). Returns the names read-back
    shows that are no record's key: what the killed process left behind (a temporary file), which it had no
    chance to clean up; they are tolerated, as they are in fault.io-error once the device has failed."""
    acked = pipeline.acked()  # read after the kill: an ack still on its way was sent before it
    held = _read_back(subject, pipeline)
    allowed = held_since(records, acked)
    left_behind = frozenset(key for key in held if key not in allowed)
    if left_behind:
        subject.coverage["names a kill left behind (tolerated)"] += len(left_behind)
    wrong = []
    for key in sorted(allowed):
        value = held.get(key)
        if value not in allowed.get(key, {None}):
            last = max((i for i, r in enumerate(records[:acked]) if key_bytes(r.key) == key), default=None)
            due = "absent" if last is None else f"as record {last} (position {records[last].position!r}) left it"
            wrong.append(f"{key!r}: holds {value!r:.80}, due {due} or a later record's value")
    if wrong:
        _fail(subject, pipeline, f"right after {what}, {acked} records were acknowledged, but read-back does not "
                                 "hold them:\n      " + "\n      ".join(wrong[:10])
              + f"\nAccounting right after the kill ({len(records)} records, {acked} acknowledged): lost "
                f"{len(wrong)} (keys holding neither their last acknowledged record nor a later one)",
              frozenset({AT_KILL}))
    return left_behind


@pytest.mark.clause("pipeline.delivers")
@suite_settings(max_examples=_examples(), phases=_PHASES)
@given(data=st.data())
def test_pipeline_delivers_every_record(subject: Subject, request: pytest.FixtureRequest, data: st.DataObject) -> None:
    """pipeline.delivers: once Conduit has acknowledged every record, read-back equals the model."""
    conduit, command = _command(subject, request)
    records = pipeline_records(data, subject)
    with _example(subject, conduit, command, records) as pipeline:
        pipeline.start()
        _wait(subject, pipeline, records)
        _expect(subject, pipeline, records, "the pipeline drained")
    subject.saw("pipeline drained")


@pytest.mark.clause("pipeline.crash-recovery")
@pytest.mark.parametrize("plan", KILL_PLANS, ids=str)
@suite_settings(max_examples=_plan_examples(KILL_PLANS), phases=_PHASES)
@given(data=st.data())
def test_pipeline_recovers_from_a_connector_crash(subject: Subject, request: pytest.FixtureRequest, plan: Plan,
                                                 data: st.DataObject) -> None:
    """pipeline.crash-recovery: the destination's process is SIGKILLed as Conduit acknowledges a drawn record;
    what was acknowledged is held at the kill, and after Conduit's recovery read-back equals the model."""
    _killed_mid_stream(subject, request, data, "destination", plan)
    subject.saw("connector killed mid-stream and the pipeline recovered")


@pytest.mark.clause("pipeline.engine-restart")
@pytest.mark.parametrize("plan", ENGINE_PLANS, ids=str)
@suite_settings(max_examples=_plan_examples(ENGINE_PLANS), phases=_PHASES)
@given(data=st.data())
def test_pipeline_survives_an_engine_restart(subject: Subject, request: pytest.FixtureRequest, plan: Plan,
                                             data: st.DataObject) -> None:
    """pipeline.engine-restart: Conduit and its connectors are SIGKILLed as Conduit acknowledges a drawn record and
    Conduit is started again on its store; what was acknowledged is held at the kill, and once it drains read-back
    equals the model."""
    _killed_mid_stream(subject, request, data, "engine", plan)
    subject.saw("Conduit killed mid-stream and restarted")


def _killed_mid_stream(subject: Subject, request: pytest.FixtureRequest, data: st.DataObject, target: str,
                       plan: Plan) -> None:
    """A pipeline of the plan's stream whose source SIGKILLs the `target` (the destination, or the engine) as
    Conduit acknowledges the drawn record, with the next one in flight and the rest held back until then; then the
    checks."""
    conduit, command = _command(subject, request)
    records = planned_records(data, subject, plan)
    # At least one record acknowledged before the kill, one in flight, and one held back by the source until then.
    first = max(1, min(plan.first_kill, len(records) - 2))
    kill_at = data.draw(st.integers(first, len(records) - 2), label="records acknowledged before the kill")
    what = "the connector was killed" if target == "destination" else "Conduit was killed"
    # Conduit's two embedded stores, its default (badger) first; either must keep the source's position.
    store = "sqlite" if target == "destination" else \
        data.draw(st.sampled_from(("badger", "sqlite")), label="Conduit's persistent store")
    subject.coverage[f"pipelines on {store}"] += 1
    subject.coverage[f"kills in a stream of {plan.name}"] += 1
    if len(records) >= LONG_STREAM:
        subject.coverage[f"streams of {LONG_STREAM} records or more"] += 1
    with _example(subject, conduit, command, records, kill=(target, kill_at), store=store) as pipeline:
        pipeline.start()
        try:
            pipeline.wait_killed(_drain_limit(subject, records))
        except PipelineFailed as err:
            _fail(subject, pipeline, str(err), frozenset({STOPPED}))
        left_behind = _held_at_kill(subject, pipeline, records, what)
        if target == "engine":
            pipeline.start()
        _wait(subject, pipeline, records, f" (after {what})")
        _expect(subject, pipeline, records, f"{what} and the pipeline drained", left_behind)
        if target == "engine":
            _resumed(subject, pipeline)
        if pipeline.read() > len(records):  # the source emitted some record again after the kill
            subject.saw("records redelivered after the kill" if target == "destination" else
                        "records redelivered after the restart")


def _resumed(subject: Subject, pipeline: Pipeline) -> None:
    """After the engine's restart, the source must have been opened at a position Conduit acknowledged (so it was
    saved, and the restart resumed from it rather than from the start); without one, Conduit did not save in time,
    which is not the destination's doing: no evidence, and the coverage says so."""
    acks = {e["position"] for e in pipeline.events() if e["event"] == "ack"}
    saved = [p for p in pipeline.resumed_from() if p]
    if saved and all(p in acks for p in saved):
        subject.saw("resumed from a saved position")
    elif pipeline.persisted_before_kill():
        subject.coverage["restarts from the start though Conduit persisted a position"] += 1
    else:
        subject.coverage["restarts before Conduit persisted a position"] += 1
