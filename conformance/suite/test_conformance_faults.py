"""Clauses fault.* and open.unwritable: a full disk, I/O errors and a read-only parent, in a fake filesystem."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import WriteError
from conformance.checks import names_path
from conformance.faults import INJECTED_ERRORS, INJECTION_POINTS, FaultInjector, fake_filesystem
from conformance.model import Model
from conformance.profiles import batch_limit, suite_settings
from conformance.session import Outcome, Session, Subject, tree_snapshot
from conformance.strategies import numbered

NESTED = ["d1", "d2", "d3"]
BYPASS = ("not checked: the destination's file I/O bypasses pyfakefs (a C library or another process?), "
          "so faults cannot be injected into it")

OTHER_PROCESS = ("not checked: the connector runs in its own process, and faults are injected (with pyfakefs) "
                 "into this one")


def _require_this_process(subject: Subject) -> None:
    """Skips the check for a standalone connector, whose I/O no injector in this process can reach."""
    if subject.registration.transport == "standalone":
        pytest.skip(OTHER_PROCESS)


def _require_fake_io(s: Session, faults: FaultInjector) -> None:
    """Skips the check when the destination's directory is not in the fake filesystem (its I/O bypasses it)."""
    if s.directory is None or not os.path.isdir(s.directory) or faults.exists_on_real_disk(s.directory):
        pytest.skip(BYPASS)


def _expect_exact_prefix(s: Session, outcome: Outcome, batch: list, model: Model, what: str) -> None:
    """The write either wrote everything or raised WriteError(n) with exactly records[:n] applied."""
    if outcome.ok:
        if outcome.value != len(batch):
            s.fail(f"write() returned {outcome.value!r} for {len(batch)} records after {what}")
        model.apply(batch)
    elif isinstance(outcome.error, WriteError) and 0 <= outcome.error.written < len(batch):
        model.apply(batch[: outcome.error.written])
    else:
        s.fail(f"after {what}, write() raised {type(outcome.error).__name__}: {outcome.error}; "
               "WriteError counting the records fully written was due")
    s.expect(model, what)


def _start(s: Session, faults: FaultInjector, setup: list) -> Model:
    """Opens the destination in the fake filesystem and writes a first batch, which must work there."""
    s.setup("# run inside: with conformance.faults.fake_filesystem() as faults:")
    if not s.configure().ok or not s.attempt("open").ok:
        pytest.skip(BYPASS + f" (configure or open failed inside it: {s.calls[-1].outcome})")
    _require_fake_io(s, faults)
    written = s.attempt("write", setup)
    model = Model().apply(setup)
    held = s.read_back() if written.ok else None
    if not written.ok or held != model.data:
        # The same calls pass on the real disk (write.round-trip); here the I/O reaches something pyfakefs lacks.
        pytest.skip(BYPASS + f" (a plain write failed inside it: {s.calls[-1].outcome or 'read-back differs'})")
    return model


def _draw_batches(subject: Subject, data: st.DataObject) -> tuple[list, list]:
    """A first batch written before the fault, and the batch the fault hits."""
    setup = numbered(data.draw(subject.batches(min_size=1, max_size=4), label="earlier batch"), 0)
    batch = numbered(data.draw(subject.batches(min_size=1, max_size=batch_limit()), label="batch"),
                     len(setup))
    return setup, batch


@pytest.mark.clause("fault.disk-full")
@suite_settings()
@given(data=st.data())
def test_disk_fills_mid_batch(subject: Subject, data: st.DataObject) -> None:
    """fault.disk-full: with the disk full part-way, WriteError counts exactly the records fully written."""
    _require_this_process(subject)
    setup, batch = _draw_batches(subject, data)
    needed = sum(len(r.payload.after.bytes()) + 64 for r in batch if r.payload.after is not None)
    free = data.draw(st.integers(0, max(needed, 1)), label="bytes left free")
    with fake_filesystem() as faults, subject.session() as s:
        model = _start(s, faults, setup)
        faults.fill_disk(free)
        s.setup(f"faults.fill_disk({free})")
        outcome = s.attempt("write", batch)
        faults.unlimited_disk()
        _expect_exact_prefix(s, outcome, batch, model, f"the disk filled ({free} bytes were free)")


@pytest.mark.clause("fault.io-error")
@suite_settings()
@given(data=st.data())
def test_io_error_mid_batch(subject: Subject, data: st.DataObject) -> None:
    """fault.io-error: an EIO or EACCES at a chosen call gives WriteError counting exactly what was written."""
    _require_this_process(subject)
    setup, batch = _draw_batches(subject, data)
    point = data.draw(st.sampled_from(sorted(INJECTION_POINTS)), label="failing call")
    error = data.draw(st.sampled_from(sorted(INJECTED_ERRORS)), label="error")
    nth = data.draw(st.integers(1, 2 * len(batch) + 1), label="which call fails")
    with fake_filesystem() as faults, subject.session() as s:
        model = _start(s, faults, setup)
        faults.inject(point, INJECTED_ERRORS[error], nth)
        s.setup(f"faults.inject({point!r}, errno.{error}, nth={nth})")
        outcome = s.attempt("write", batch)
        faults.clear()
        _expect_exact_prefix(s, outcome, batch, model, f"{error} at call {nth} of {point}")


@pytest.mark.clause("open.unwritable")
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_open_reports_permission_denied(subject: Subject, depth: int) -> None:
    """open.unwritable: under a read-only parent, open raises an error naming the path and creates nothing."""
    _require_this_process(subject)
    with fake_filesystem() as faults, subject.session(
        directory=lambda tmp: os.path.join(tmp, "locked", *NESTED[:depth])
    ) as s:
        locked = os.path.join(s.tmp, "locked")
        os.makedirs(locked)
        os.chmod(locked, 0o555)
        s.setup("# run inside: with conformance.faults.fake_filesystem() as faults:")
        s.setup(f"os.makedirs({locked!r}); os.chmod({locked!r}, 0o555)")
        before = tree_snapshot(s.tmp)
        s.configure_ok()
        outcome = s.attempt("open")
        if outcome.ok:
            if not os.path.isdir(s.directory) or faults.exists_on_real_disk(s.directory):
                pytest.skip(BYPASS)
            s.fail(f"open() succeeded although {locked!r} is read-only")
        paths = {s.directory, *(os.path.join(locked, *NESTED[:i]) for i in range(1, depth + 1))}
        if not names_path(outcome.error, *paths):
            s.fail(f"open()'s error does not name the path {s.directory!r}: "
                   f"{type(outcome.error).__name__}: {outcome.error}")
        if tree_snapshot(s.tmp) != before:
            s.fail("open() created or changed something although it failed")
        os.chmod(locked, 0o755)
