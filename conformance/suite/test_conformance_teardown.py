"""Clauses teardown.*: teardown in every state, twice, and keeping the data."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import Change, RawData, Record
from conformance.model import Model
from conformance.profiles import batch_limit, suite_settings
from conformance.session import Session, Subject, tree_snapshot
from conformance.strategies import batches, numbered

STATES = ["new", "configured", "open", "after a failed open", "after a failed write"]


def _file_in_the_way(tmp: str) -> str:
    path = os.path.join(tmp, "a-regular-file")
    with open(path, "wb") as f:
        f.write(b"open must fail here")
    return path


def _reach(subject: Subject, s: Session, state: str) -> None:
    """Brings the session's destination into `state`."""
    if state == "new":
        return
    outcome = s.configure()
    if not outcome.ok:
        s.fail(f"configure() with the registered config raised {type(outcome.error).__name__}: {outcome.error}")
    if state == "configured":
        return
    if state == "after a failed open":
        if s.attempt("open").ok:
            s.fail(f"open() succeeded although {s.directory!r} is a regular file; cannot reach a failed open")
        return
    s.ok("open")
    if state == "after a failed write":
        # A record without a key is invalid under SPEC's key rules for every destination.
        batch = [Record(position=b"0", key=None, payload=Change(after=RawData(b"x")))]
        if s.attempt("write", batch).ok:
            s.fail("write() accepted a record without a key; cannot reach a failed write")


def _session(subject: Subject, state: str):
    if state == "after a failed open":
        if not subject.registration.directory_param:
            pytest.skip("not checked: needs directory_param to make open() fail")
        return subject.session(directory=_file_in_the_way)
    return subject.session()


@pytest.mark.clause("teardown.any-state")
@pytest.mark.parametrize("state", STATES)
def test_teardown_in_every_state(subject: Subject, state: str) -> None:
    """teardown.any-state: teardown returns normally from each state of the lifecycle."""
    with _session(subject, state) as s:
        _reach(subject, s, state)
        outcome = s.attempt("teardown")
        if not outcome.ok:
            s.fail(f"teardown() {state} raised {type(outcome.error).__name__}: {outcome.error}")


@pytest.mark.clause("teardown.idempotent")
@pytest.mark.parametrize("state", STATES)
def test_second_teardown_does_nothing(subject: Subject, state: str) -> None:
    """teardown.idempotent: a second teardown returns normally and changes nothing."""
    with _session(subject, state) as s:
        _reach(subject, s, state)
        s.attempt("teardown")
        before = tree_snapshot(s.tmp)
        held = s.read_back() if subject.registration.read_back else None
        outcome = s.attempt("teardown")
        if not outcome.ok:
            s.fail(f"a second teardown() raised {type(outcome.error).__name__}: {outcome.error}")
        if tree_snapshot(s.tmp) != before or (held is not None and s.read_back() != held):
            s.fail("a second teardown() changed files or read-back")


@pytest.mark.clause("teardown.keeps-data")
@suite_settings()
@given(data=st.data())
def test_data_survives_teardown(subject: Subject, data: st.DataObject) -> None:
    """teardown.keeps-data: read-back after teardown equals the model of everything written."""
    with subject.session() as s:
        s.open_ready()
        model, position = Model(), 0
        for _ in range(data.draw(st.integers(1, 2), label="number of batches")):
            batch = numbered(data.draw(batches(subject.valid_keys(), max_size=batch_limit()), label="batch"), position)
            position += len(batch)
            s.write_all(batch)
            model.apply(batch)
        s.ok("teardown")
        s.expect(model, "teardown")
