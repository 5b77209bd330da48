"""Clauses lifecycle.*: every order the table allows works; every call it forbids raises LifecycleError."""

from collections import deque
from typing import Any, ClassVar

import pytest
from hypothesis import find, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance.contract.checks import SetupCause
from conformance.contract.clauses import FORBIDDEN_CALLS
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model, key_bytes
from conformance.generate.strategies import numbered
from conformance.plugin.profiles import suite_settings
from conformance.probes.snapshots import changed_paths, tree_snapshot
from harness import Change, LifecycleError, RawData, Record
from harness.destination import LIFECYCLE

# CONTRACT.md section 5: calls allowed in each state (parameters is allowed everywhere), as the interface states it.
LEGAL = LIFECYCLE
SMALL_BATCHES = 4


class _Machine(RuleBasedStateMachine):
    """Shared set-up: one session (a fresh destination) per test case."""

    subject: ClassVar[Subject]

    def __init__(self) -> None:
        super().__init__()
        self._context = self.subject.session()
        self.s: Session = self._context.__enter__()
        self.state = "new"
        self.model = Model()
        self.position = 0
        self.writes = 0
        self.unacked: deque[bytes] = deque()

    def teardown(self) -> None:
        self._context.__exit__(None, None, None)

    def _batch(self, data: st.DataObject) -> list[Any]:
        batch = numbered(data.draw(self.subject.batches(max_size=SMALL_BATCHES), label="batch"),
                         self.position)
        self.position += len(batch)
        return batch


class ValidOrders(_Machine):
    """lifecycle.valid-orders: walks the orders the table allows, with any interleaving of writes and acks."""

    @initialize(start=st.sampled_from(["open", "open", "configured", "new"]))
    def start(self, start: str) -> None:
        # Most walks begin open, so writes and acks interleave long enough to matter.
        if start != "new":
            self.configure()
        if start == "open":
            self.open()

    @rule()
    def parameters(self) -> None:
        self.s.ok("parameters")

    @precondition(lambda self: self.state == "new")
    @rule()
    def configure(self) -> None:
        outcome = self.s.configure()
        if not outcome.ok:
            self.s.fail(f"configure() raised {type(outcome.error).__name__}: {outcome.error}",
                        cause=SetupCause.of("configure", outcome.error))
        self.state = "configured"

    @precondition(lambda self: self.state == "configured")
    @rule()
    def open(self) -> None:
        self.s.ok("open")
        self.state = "open"
        self.s.saw("walk reached open")

    @precondition(lambda self: self.state == "open")
    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        batch = self._batch(data)
        self.s.write_all(batch)
        self.writes += 1
        self.unacked.extend(r.position for r in batch)
        self.s.expect(self.model.apply(batch), "the last write")

    @precondition(lambda self: self.state == "open" and self.unacked)
    @rule(count=st.integers(1, 4))
    def ack(self, count: int) -> None:
        for _ in range(min(count, len(self.unacked))):
            self.s.ok("ack", self.unacked.popleft())

    # Teardown in every state is teardown.any-state's; here it waits for three writes so walks get long.
    @precondition(lambda self: self.state == "open" and self.writes >= 3)
    @rule()
    def teardown_now(self) -> None:
        self.s.ok("teardown")
        self.state = "torn down"
        self.s.expect(self.model, "teardown")
        self.s.saw("walk reached torn down")

    @precondition(lambda self: self.state == "torn down")
    @rule()
    def teardown_again(self) -> None:
        # A second teardown's outcome is teardown.idempotent's to judge (its own checks, in every state), not this
        # clause's: it is made, so the walk goes on past it, and its error charged nowhere here.
        self.s.attempt("teardown")


class OutOfOrder(_Machine):
    """lifecycle.out-of-order: any call in any state; forbidden ones must raise LifecycleError and change nothing."""

    @rule(method=st.sampled_from(["parameters", "configure", "configure (invalid)", "open", "write", "ack",
                                  "teardown"]), data=st.data())
    def call(self, method: str, data: st.DataObject) -> None:
        name = method.split(" ")[0]
        if _gone(self.s):
            return  # the process died on a panic the adapter answers for (the SDK's own): nothing more reaches it
        if name == "parameters":
            self.s.ok("parameters")
        elif name in LEGAL[self.state]:
            self._legal(method, data)
        else:
            self._forbidden(name, data)

    def _legal(self, method: str, data: st.DataObject) -> None:
        s = self.s
        if method == "configure":
            outcome = s.configure()
            if not outcome.ok:
                s.fail(f"configure() raised {type(outcome.error).__name__}: {outcome.error}",
                       cause=SetupCause.of("configure", outcome.error))
            self.state = "configured"
        elif method == "configure (invalid)":
            key = "conformance.unknown.key"
            outcome = s.configure({**s.config, key: "1"}, shown=f"{{**driver.config, {key!r}: '1'}}")
            if outcome.ok:  # configure.unknown-key reports this; here it only moves the state on
                self.state = "configured"
        elif method == "open":
            s.ok("open")
            self.state = "open"
        elif method == "write":
            batch = self._batch(data)
            s.write_all(batch)
            self.unacked.extend(r.position for r in batch)
            self.model.apply(batch)
        elif method == "ack":
            if self.unacked:
                s.ok("ack", self.unacked.popleft())
        elif method == "teardown" and self.state == "torn down":
            s.attempt("teardown")  # a second teardown's error is teardown.idempotent's only (see teardown_again)
        elif method == "teardown":
            s.ok("teardown")
            self.state = "torn down"

    def _forbidden(self, name: str, data: st.DataObject) -> None:
        s = self.s
        before = tree_snapshot(s.tmp)
        if name == "configure":
            outcome = s.configure()
        elif name == "write":
            outcome = s.attempt("write", self._batch(data))
        elif name == "ack":
            outcome = s.attempt("ack", self.unacked[0] if self.unacked else b"0")
        else:
            outcome = s.attempt(name)
        answered_by = s.adapter_answers().get(name)
        if answered_by:
            s.subject.inapplicable(f"{name}() is answered by the adapter, not the connector: {answered_by}")
            return
        if not isinstance(outcome.error, LifecycleError):
            got = "it returned normally" if outcome.ok else f"it raised {type(outcome.error).__name__}: {outcome.error}"
            s.fail(f"{name}() is forbidden in state {self.state!r}, so LifecycleError was due, but {got}")
        if tree_snapshot(s.tmp) != before:
            s.fail(f"the forbidden {name}() in state {self.state!r} changed files")
        if self.state == "open":
            s.expect(self.model, f"the forbidden {name}()")
        s.saw(f"{name} when {self.state}")


def _gone(s: Session) -> bool:
    """Whether the adapter answers every lifecycle call itself (the connector process is gone for a reason that is
    not the connector's): then no later call says anything of the connector."""
    return {"configure", "open", "write", "teardown"} <= set(s.adapter_answers())


def _run(machine: type[_Machine], subject: Subject) -> None:
    # The class name carries the destination so each destination gets its own example-database key.
    named = type(f"{machine.__name__}[{subject.spec}]", (machine,), {"subject": subject})
    run_state_machine_as_test(named, settings=suite_settings())


@pytest.mark.clause("lifecycle.valid-orders")
def test_valid_orders(subject: Subject) -> None:
    """lifecycle.valid-orders: stateful walk over allowed call orders."""
    _run(ValidOrders, subject)


@pytest.mark.clause("lifecycle.out-of-order")
def test_out_of_order_calls(subject: Subject) -> None:
    """lifecycle.out-of-order: stateful walk making forbidden calls between allowed ones."""
    _run(OutOfOrder, subject)


@pytest.mark.clause("lifecycle.valid-orders")
@suite_settings()
@given(data=st.data())
def test_valid_orders_write_ack_write(subject: Subject, data: st.DataObject) -> None:
    """lifecycle.valid-orders: a fixed walk (write, ack, write, write, acks, write, teardown), the machine's seed."""
    with subject.session() as s:
        s.open_ready()
        unacked: deque[bytes] = deque()
        model, position, acked = Model(), 0, False
        for number, step in enumerate(["write", "ack", "write", "write", "ack", "ack", "write"]):
            if step == "write":
                batch = numbered(data.draw(subject.batches(min_size=1, max_size=SMALL_BATCHES),
                                           label=f"batch {number}"), position)
                position += len(batch)
                s.write_all(batch)
                unacked.extend(r.position for r in batch)
                s.expect(model.apply(batch), f"step {number + 1} (write)")
            elif unacked:
                s.ok("ack", unacked.popleft())
                acked = True
            if step == "write" and number > 0 and acked:
                s.saw("write after ack")
        s.ok("teardown")
        s.expect(model, "teardown")
        s.saw("walk reached open")
        s.saw("walk reached torn down")


def _two_records(subject: Subject) -> tuple[Record, Record]:
    """Two records of distinct keys the registration accepts, the same in every run (the simplest ones)."""
    spec_style = subject.registration.valid_keys is None and subject.registration.payloads is None
    if spec_style:
        return (Record(key=RawData(b"before"), payload=Change(after=RawData(b"held"))),
                Record(key=RawData(b"forbidden"), payload=Change(after=RawData(b"must not land"))))
    keys = find(st.lists(subject.valid_keys(), min_size=2, max_size=2, unique_by=key_bytes), lambda _: True,
                settings=settings(database=None, derandomize=True))
    payload = find(subject.payloads(), lambda _: True, settings=settings(database=None, derandomize=True))
    return tuple(Record(key=key, payload=Change(after=payload)) for key in keys)  # type: ignore[return-value]


def _reach(s: Session, state: str) -> Model:
    """Brings a fresh destination into `state` by allowed calls; returns the model of what it holds."""
    model = Model()
    if state == "new":
        return model
    s.configure_ok()
    if state == "configured":
        return model
    s.ok("open")
    batch = numbered([_two_records(s.subject)[0]], 0)
    s.write_all(batch)
    model.apply(batch)
    if state == "torn down":
        s.ok("teardown")
    return model


@pytest.mark.clause("lifecycle.out-of-order")
@pytest.mark.parametrize("state,call", FORBIDDEN_CALLS, ids=[f"{c}-when-{st_}" for st_, c in FORBIDDEN_CALLS])
def test_each_forbidden_call(subject: Subject, state: str, call: str) -> None:
    """lifecycle.out-of-order: each call the table forbids, in each state, raises LifecycleError and changes
    nothing (every pair in every run; the state machine above mixes them with allowed calls)."""
    with subject.session() as s:
        model = _reach(s, state)
        before = tree_snapshot(s.tmp)
        if call == "configure":
            outcome = s.configure()
        elif call == "write":
            outcome = s.attempt("write", numbered([_two_records(s.subject)[1]], 1))
        elif call == "ack":
            outcome = s.attempt("ack", b"0")
        else:
            outcome = s.attempt(call)
        answered_by = s.adapter_answers().get(call)
        if answered_by:
            s.subject.inapplicable(f"{call}() is answered by the adapter, not the connector: {answered_by}")
            s.saw(f"{call} when {state}", answered=True)
            return
        if not isinstance(outcome.error, LifecycleError):
            got = "it returned normally" if outcome.ok else f"it raised {type(outcome.error).__name__}: {outcome.error}"
            s.fail(f"{call}() is forbidden in state {state!r}, so LifecycleError was due, but {got}")
        after = tree_snapshot(s.tmp)
        if after != before:
            s.fail(f"the forbidden {call}() in state {state!r} changed files: "
                   f"{changed_paths(before, after, s.tmp)[:5]}")
        if state in ("open", "torn down"):
            s.expect(model, f"the forbidden {call}()")
        s.saw(f"{call} when {state}")
