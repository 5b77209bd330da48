"""Clauses teardown.*: teardown in every state, twice, and keeping the data."""

import errno
import os
from contextlib import AbstractContextManager

import pytest
from hypothesis import given, strategies as st

from conformance.contract.clauses import location_param
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model
from conformance.generate.strategies import numbered
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from conformance.probes.faults import fake_filesystem
from conformance.probes.holdings import Holdings
from conformance.probes.snapshots import tree_snapshot
from harness import Change, RawData, Record, WriteError

STATES = ["new", "configured", "open", "after a failed open", "after a failed write"]


def _file_in_the_way(tmp: str) -> str:
    """Where the check puts a regular file once configure has returned (with path_param: the file's parent)."""
    return os.path.join(tmp, "a-regular-file")


def _reach(subject: Subject, s: Session, state: str) -> None:
    """Brings the session's destination into `state`."""
    if state == "new":
        return
    if state == "after a failed open":
        # Planted after configure (as a path goes bad between a pipeline's creation and its start): a destination
        # that checks its path in configure too reaches the failed open.
        s.configure_ok()
        path = s.location
        if os.path.lexists(path):
            pytest.skip(f"not checked: configure() made {path.replace(s.tmp, '{tmp}')!r}, where the check puts a "
                        f"regular file to make open() fail (configure.no-side-effects reports that)")
        with open(path, "wb") as f:
            f.write(b"open must fail here")
        s.setup(f"open({path!r}, 'wb').write(b'open must fail here')")
        if s.attempt("open").ok:
            pytest.skip("not checked: open() succeeded although the path is a regular file, so a failed open "
                        "cannot be reached (open.not-a-directory reports that)")
        return
    s.configure_ok()
    if state == "configured":
        return
    s.ok("open")
    if state == "after a failed write":
        # A record without a key is invalid under the contract's key rules for every destination.
        batch = [Record(position=b"0", key=None, payload=Change(after=RawData(b"x")))]
        if s.attempt("write", batch).ok:
            pytest.skip("not checked: write() accepted a record without a key, so a failed write cannot be "
                        "reached (write.invalid-key-count reports that)")


def _session(subject: Subject, state: str) -> AbstractContextManager[Session]:
    if state == "after a failed open":
        # A regular file where the directory goes (with path_param: where the file's parent directory goes).
        if location_param(subject.registration) is None:
            pytest.skip("not checked: needs directory_param or path_param to make open() fail")
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
        s.saw(f"torn down {state}")


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
        answered_by = s.adapter_answers().get("teardown")
        if answered_by:
            subject.inapplicable(f"the second teardown() is answered by the adapter: {answered_by}")
            return
        if not outcome.ok:
            s.fail(f"a second teardown() raised {type(outcome.error).__name__}: {outcome.error}")
        if tree_snapshot(s.tmp) != before or (held is not None and s.read_back() != held):
            s.fail("a second teardown() changed files or read-back")
        s.saw(f"torn down twice {state}")


@pytest.mark.clause("teardown.keeps-data")
@suite_settings()
@given(data=st.data())
def test_data_survives_teardown(subject: Subject, data: st.DataObject) -> None:
    """teardown.keeps-data: read-back after teardown equals the model of everything written."""
    with subject.session() as s:
        s.open_ready()
        model, position = Model(), 0
        for _ in range(data.draw(st.integers(1, 2), label="number of batches")):
            batch = numbered(data.draw(subject.batches(max_size=batch_limit()), label="batch"), position)
            position += len(batch)
            s.write_all(batch)
            model.apply(batch)
        # Every example ends with a batch failing part-way: what it did write must survive teardown too.
        failed = False
        if subject.has_invalid_keys:
            failing, index = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()),
                                       label="failing batch")
            outcome = s.attempt("write", numbered(failing, position))
            if not isinstance(outcome.error, WriteError) or outcome.error.written != index:
                return  # accepted whole, or no trustworthy count: write.invalid-key-count reports it
            model.apply(failing[:index])
            failed = True
        s.ok("teardown")
        s.expect(model, "teardown")
        if subject.registration.read_back is not None:
            s.saw("read back after teardown")
            if failed:
                s.saw("read back after teardown following a failed write")


@pytest.mark.clause("teardown.releases")
@suite_settings(max_examples=fraction_of_examples(0.4))
@given(data=st.data())
def test_teardown_releases_descriptors_and_threads(subject: Subject, data: st.DataObject) -> None:
    """teardown.releases: after teardown no file descriptor or thread the destination opened is left, after clean
    writes and after failed ones."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("not checked: needs /proc/self/fd to list open file descriptors")
    planned = [data.draw(subject.batches(max_size=batch_limit()), label="batch")
               for _ in range(data.draw(st.integers(0, 2), label="number of batches"))]
    failing, _ = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()), label="failing batch")
    for fail_too in (False, True):
        holdings = Holdings()
        with subject.session() as s:
            holdings.watch(s)
            s.holdings = holdings  # what read-back opens (around teardown too) is excused
            s.open_ready()
            position = 0
            for batch in planned:
                batch = numbered(batch, position)
                position += len(batch)
                s.write_all(batch)
            if fail_too and s.attempt("write", numbered(failing, position)).ok:
                continue  # no failed write to release after (write.invalid-key-count reports that)
            s.ok("teardown")
            leaks = holdings.leaks()
            if leaks:
                s.fail("; ".join(leaks))
            s.saw("released after a failed write" if fail_too else "released after writes")
    if subject.registration.transport != "standalone" and location_param(subject.registration):
        stored = Record(key=data.draw(subject.valid_keys(), label="key of the record hit by EIO"),
                        payload=Change(after=RawData(b"x" * 4096)))
        _released_after_an_io_error(subject, numbered([stored], 0))


def _released_after_an_io_error(subject: Subject, batch: list[Record]) -> None:
    """In the fake filesystem, the first write call of a batch fails with EIO; after teardown nothing may be
    held (the error paths of a destination are where descriptors leak)."""
    with fake_filesystem() as faults:
        holdings = Holdings(faults)
        with subject.session() as s:
            holdings.watch(s)
            s.holdings = holdings  # read_back's descriptors are excused
            s.setup("# run inside: with conformance.probes.faults.fake_filesystem() as faults:")
            if not s.configure().ok or not s.attempt("open").ok or s.directory is None \
                    or faults.exists_on_real_disk(s.directory):
                return  # the destination's I/O bypasses pyfakefs: nothing to inject into
            faults.inject("write", errno.EIO, 1)
            s.setup("faults.inject('write', errno.EIO, nth=1)")
            outcome = s.attempt("write", batch)
            faults.clear()
            if not faults.injected or outcome.ok:
                return  # no failed write to release after
            s.ok("teardown")
            leaks = holdings.leaks()
            if leaks:
                s.fail("after a write that failed with EIO: " + "; ".join(leaks))
            s.saw("released after an I/O error")
