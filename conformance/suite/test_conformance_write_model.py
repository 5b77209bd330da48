"""Writes as one state machine: valid batches, batches with an invalid key, fault-injected batches (in-process),
acks and a final teardown, in any order; read-back equals the model after every step, and every failure names
the clause its step breaks."""

import functools
import os
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, ClassVar

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance.contract.clauses import location_param
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model, after_a_failed_batch, key_bytes
from conformance.generate.strategies import numbered
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from conformance.probes.durability import kept_unsynced
from conformance.probes.faults import INJECTED_ERRORS, INJECTION_POINTS, FaultInjector, fake_filesystem, swallowed_fsync
from conformance.probes.holdings import PROC_FDS, Holdings
from harness import WriteError


def _fake_filesystem_works(subject: Subject) -> bool:
    """Whether the destination runs inside the fake filesystem (so faults can be injected into it); asked once."""
    registration = subject.registration
    if registration.transport == "standalone" or location_param(registration) is None:
        return False
    if "fake filesystem works" not in subject.coverage:
        works = False
        with fake_filesystem() as faults, subject.session() as s:
            if s.configure().ok and s.attempt("open").ok:
                works = os.path.isdir(s.location) and not faults.exists_on_real_disk(s.location)
        subject.coverage["fake filesystem works"] = int(works)
        subject.examples -= 1  # a probe, not an example
    return bool(subject.coverage["fake filesystem works"])


def _step(method: Callable[..., None]) -> Callable[..., None]:
    """A rule that records whether it returned normally (a failed step leaves the final teardown unjudged)."""

    @functools.wraps(method)
    def step(self: "WriteModel", *args: Any, **kwargs: Any) -> None:
        self.steps_ok = False
        method(self, *args, **kwargs)
        self.steps_ok = True

    return step


class WriteModel(RuleBasedStateMachine):
    """One destination per run: any sequence of valid, invalid-key and faulted batches and acks, then teardown."""

    subject: ClassVar[Subject]

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        self.faulty = _fake_filesystem_works(self.subject)
        self.faults: FaultInjector | None = self.stack.enter_context(fake_filesystem()) if self.faulty else None
        self.holdings = Holdings(self.faults)
        self.s: Session = self.stack.enter_context(self.subject.session())
        self.holdings.watch(self.s)
        self.s.holdings = self.holdings  # read_back's descriptors are excused
        self.steps_ok = True  # every step so far returned normally, so the final teardown is judged
        self.failed_writes = 0
        self.opened = False
        self.model = Model()
        self.position = 0
        self.unacked: list[bytes] = []
        # The last write raised WriteError ("key" or "io", else False): the next valid batch is write.recovers'
        self.after_error: str | bool = False

    def teardown(self) -> None:
        """The final step: teardown, then descriptors and threads are back at their baseline (teardown.releases),
        also after failed and faulted writes, and read-back still equals the model (teardown.keeps-data)."""
        try:
            if self.steps_ok and self.s.driver is not None and self.opened and PROC_FDS:
                with self.s.judging("teardown.any-state"):
                    self.s.ok("teardown")
                with self.s.judging("teardown.releases"):
                    leaks = self.holdings.leaks()
                    if leaks:
                        self.s.fail(f"after {self.failed_writes} failed write(s): " + "; ".join(leaks))
                    if self.failed_writes:
                        self.s.saw("released after a failed write", "teardown.releases")
                with self.s.judging("teardown.keeps-data"):
                    self.s.expect(self.model, "teardown")
        finally:
            self.stack.close()

    def _number(self, batch: list[Any]) -> list[Any]:
        batch = numbered(batch, self.position)
        self.position += len(batch)
        return batch

    @initialize()
    @_step
    def open(self) -> None:
        if self.faults is not None:
            self.s.setup("# run inside: with conformance.probes.faults.fake_filesystem() as faults:")
        self.s.open_ready()
        self.opened = True
        if self.faults is not None and (self.faults.exists_on_real_disk(self.s.location)
                                        or not os.path.isdir(self.s.location)):
            self.faulty = False  # the destination's I/O bypasses pyfakefs: no fault rule

    @rule(data=st.data())
    @_step
    def valid_batch(self, data: st.DataObject) -> None:
        batch = self._number(data.draw(self.subject.batches(max_size=batch_limit()), label="valid batch"))
        with self.s.judging("write.recovers" if self.after_error else "write.round-trip"):
            self.s.write_all(batch)
            self.s.expect(self.model.apply(batch), "a valid batch" + (" after a WriteError" if self.after_error
                                                                        else ""))
        if self.after_error and batch:
            self.s.saw("recovered after an invalid key" if self.after_error == "key" else
                       "recovered after an I/O error", "write.recovers")
        self.after_error = self.after_error if not batch else False
        self.unacked.extend(r.position for r in batch)

    @precondition(lambda self: self.subject.has_invalid_keys)
    @rule(data=st.data())
    @_step
    def batch_with_an_invalid_key(self, data: st.DataObject) -> None:
        batch, index = data.draw(self.subject.batches_with_invalid_key(max_size=batch_limit()),
                                 label="batch with an invalid key")
        batch = self._number(batch)
        with self.s.judging("write.invalid-key-count"):
            outcome = self.s.attempt("write", batch)
            if not isinstance(outcome.error, WriteError) or outcome.error.written != index:
                got = "it returned" if outcome.ok else f"it raised {type(outcome.error).__name__}: {outcome.error}"
                self.s.fail(f"the first invalid key is at index {index}, so WriteError(written={index}) was due, "
                            f"but {got}")
            self.s.expect(self.model.apply(batch[:index]), f"a WriteError at index {index}")
        self.unacked.extend(r.position for r in batch[:index])
        self.after_error = "key"
        self.failed_writes += 1

    @precondition(lambda self: self.faulty)
    @rule(data=st.data(), point=st.sampled_from(sorted(INJECTION_POINTS)), nth=st.integers(1, 6))
    @_step
    def batch_with_an_io_error(self, data: st.DataObject, point: str, nth: int) -> None:
        assert self.faults is not None
        batch = self._number(data.draw(self.subject.batches(min_size=1, max_size=batch_limit()),
                                       label="batch hit by an I/O error"))
        self.faults.files_before_the_batch(self.s.directory)
        self.faults.inject(point, INJECTED_ERRORS["EIO"], nth)
        self.s.setup(f"faults.inject({point!r}, errno.EIO, nth={nth})")
        injected = self.faults.injected
        try:
            outcome = self.s.attempt("write", batch)
        finally:
            fired = self.faults.injected > injected
            self.faults.clear()
            self.s.setup("faults.clear()")
        faulty = self.faults
        with self.s.judging("fault.io-error"):
            swallowed = swallowed_fsync(point, fired, outcome.ok, lambda: kept_unsynced(
                self.s, faulty, set(self.model.data) | {key_bytes(r.key) for r in batch}))
            if swallowed:
                self.s.fail(swallowed)
            if outcome.ok and outcome.value == len(batch):
                written = len(batch)
            elif isinstance(outcome.error, WriteError) and isinstance(outcome.error.written, int) \
                    and 0 <= outcome.error.written < len(batch):
                written = outcome.error.written
                self.after_error = "io"
                self.failed_writes += 1
            else:
                self.s.fail(f"after EIO at call {nth} of {point}, write() "
                            f"{'returned ' + repr(outcome.value) if outcome.ok else 'raised ' + repr(outcome.error)}; "
                            "WriteError counting the records fully written was due")
            after_a_failed_batch(self.model, batch, written, self.s.read_back()
                                 if self.subject.registration.read_back is not None else None)
            self.s.expect(self.model, f"EIO at call {nth} of {point}")
        self.unacked.extend(r.position for r in batch[:written])

    @precondition(lambda self: self.unacked)
    @rule(count=st.integers(1, 8))
    @_step
    def ack(self, count: int) -> None:
        with self.s.judging("ack.in-order"):
            for _ in range(min(count, len(self.unacked))):
                self.s.ok("ack", self.unacked.pop(0))
            self.s.expect(self.model, "acks")


@pytest.mark.clause("write.round-trip")
def test_writes_as_a_state_machine(subject: Subject) -> None:
    """write.round-trip (and write.invalid-key-count, write.recovers, fault.io-error, ack.in-order for their
    steps): any sequence of valid, invalid-key and faulted batches and acks keeps read-back equal to the model."""
    named = type(f"WriteModel[{subject.spec}]", (WriteModel,), {"subject": subject})
    run_state_machine_as_test(named, settings=suite_settings(max_examples=fraction_of_examples(0.4)))
