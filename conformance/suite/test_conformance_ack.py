"""Clause ack.in-order: acking written positions in order."""

import pytest
from hypothesis import given, strategies as st

from conformance.execute.subject import Subject
from conformance.generate.model import Model
from conformance.generate.strategies import POSITION_SHAPES, numbered
from conformance.plugin.profiles import batch_limit, suite_settings
from harness import WriteError


@pytest.mark.clause("ack.in-order")
@suite_settings()
@given(data=st.data())
def test_acking_written_positions_in_order(subject: Subject, data: st.DataObject) -> None:
    """ack.in-order: each written record's position acks without error, and read-back does not change."""
    with subject.session() as s:
        s.open_ready()
        model, position = Model(), 0
        shapes = len(POSITION_SHAPES)
        for number in range(data.draw(st.integers(1, 3), label="number of batches")):
            # The first batch holds a record of every position shape (binary, LSN-like, JSON, long), in every run.
            least = shapes if number == 0 else 0
            batch = numbered(data.draw(subject.batches(min_size=least, max_size=max(batch_limit(), least)),
                                       label="batch"), position)
            position += len(batch)
            s.write_all(batch)
            model.apply(batch)
            for record in batch:
                s.ok("ack", record.position)
            s.expect(model, "acking the batch's positions")
            if batch:
                s.saw("written positions acked")
            if len(batch) >= shapes:
                s.saw("opaque positions of every shape acked")
        # The records a failed batch did write are written too: their positions ack like any other.
        if not subject.has_invalid_keys:
            return
        failing, index = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()), label="failing batch")
        failing = numbered(failing, position)
        outcome = s.attempt("write", failing)
        if isinstance(outcome.error, WriteError) and outcome.error.written == index:
            model.apply(failing[:index])
            for record in failing[:index]:
                s.ok("ack", record.position)
            s.expect(model, "acking the positions a failed batch wrote")
            s.saw("positions a failed batch wrote acked")
