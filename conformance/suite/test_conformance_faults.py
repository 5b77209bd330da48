"""Clauses fault.* and open.unwritable: a full disk, I/O errors and a read-only parent, in a fake filesystem.

With a path parameter (one file), the file's parent directory plays the directory's part; read-back of the file is
what shows a partial record.
"""

import functools
import os

import pytest
from hypothesis import given, strategies as st

from conformance.contract.checks import NOT_CHECKED_PREFIX, names_path
from conformance.contract.clauses import NO_LOCATION, location_param
from conformance.execute.outcomes import Outcome
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model, after_a_failed_batch, differences, key_bytes
from conformance.generate.strategies import numbered
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from conformance.probes.durability import kept_unsynced
from conformance.probes.fault_backend import Injector, fault_filesystem, uses_fuse
from conformance.probes.faults import INJECTED_ERRORS, swallowed_fsync
from conformance.probes.fuse import FuseInjector
from conformance.probes.snapshots import tree_snapshot
from harness import Change, RawData, Record, WriteError

NESTED = ["d1", "d2", "d3"]
BYPASS = ("not checked: the destination's file I/O bypasses pyfakefs (a C library or another process?), "
          "so faults cannot be injected into it")

def _require_location(subject: Subject) -> None:
    """Skips (not checked) a registration that names neither a directory nor a file parameter."""
    if location_param(subject.registration) is None:
        pytest.skip(NOT_CHECKED_PREFIX + NO_LOCATION)


def _require_fake_io(s: Session, faults: Injector) -> None:
    """Skips the check when the destination's directory is not in the fake filesystem (its I/O bypasses it)."""
    if s.directory is None or not os.path.isdir(s.directory) or faults.exists_on_real_disk(s.directory):
        pytest.skip(_bypass(faults))


def _bypass(faults: Injector) -> str:
    """Why a fault check is not checked when the destination fails under the injector but not on the real disk."""
    return str(getattr(faults, "bypass_reason", BYPASS))


def _injector_name(faults: Injector) -> str:
    """How the replay enters the injector the example ran under."""
    if uses_fuse(faults):
        return "conformance.probes.fuse.fuse_filesystem()"
    return "conformance.probes.faults.fake_filesystem()"


def _fired(s: Session, faults: Injector) -> None:
    """On the FUSE mount: which calls failed, as a comment of the replay (the evidence of where the fault hit)."""
    if isinstance(faults, FuseInjector):
        fired = faults.fired_text()
        if fired:
            s.setup(f"# on the FUSE mount: {fired}")
            s.subject.coverage["faults fired on the FUSE mount"] += 1


def _expect_exact_prefix(s: Session, outcome: Outcome, batch: list[Record], model: Model, what: str,
                         device_failed: bool = False) -> None:
    """The write either wrote everything or raised WriteError(n) with records[:n] applied, nothing after
    records[n], and records[n] (the failing one) either not applied or applied whole: the contract forbids a partial
    file, and a record whose data is complete but whose durability failed may stay in place uncounted.
    `device_failed`: cleaning up was impossible, so names that are neither keys of the model nor of the batch
    (temporary files left behind) are tolerated; every key must still hold exactly its due value."""
    if outcome.ok:
        if outcome.value != len(batch):
            s.fail(f"write() returned {outcome.value!r} for {len(batch)} records after {what}")
        model.apply(batch)
    elif isinstance(outcome.error, WriteError) and 0 <= outcome.error.written < len(batch):
        held = s.read_back() if s.subject.registration.read_back is not None else None
        after_a_failed_batch(model, batch, outcome.error.written,
                             None if held is None else _relevant(held, model, batch, device_failed))
    else:
        s.fail(f"after {what}, write() raised {type(outcome.error).__name__}: {outcome.error}; "
               "WriteError counting the records fully written was due")
    if not device_failed:
        s.expect(model, what)
    elif s.subject.registration.read_back is not None:
        lines = differences(model.data, _relevant(s.read_back(), model, batch, device_failed))
        if lines:
            s.fail(f"read-back after {what} differs from the model:\n      " + "\n      ".join(lines))


def _retry_the_rest(s: Session, outcome: Outcome, batch: list[Record]) -> Outcome | None:
    """After a sticky fault failed the batch: the records from the failing one on, written again with the device
    still failed, as Conduit retries a batch that failed. The destination's error paths run a second time from the
    state the first failure left (a file closed, a cut-back undone), where a leaked descriptor or a wrong count
    shows (teardown.releases, the exact prefix). Returns the two writes' outcome as one over the whole batch (None
    when the first write's outcome gives no count to go on: _expect_exact_prefix fails it)."""
    if outcome.ok or not isinstance(outcome.error, WriteError) or not 0 <= outcome.error.written < len(batch):
        return None
    done = outcome.error.written
    rest = batch[done:]
    again = s.attempt("write", rest)
    s.subject.coverage["batches retried with the device still failed"] += 1
    if again.ok:
        if again.value != len(rest):
            s.fail(f"retrying the last {len(rest)} records of a failed batch with the device still failed, write() "
                   f"returned {again.value!r}; a count of all of them or WriteError was due")
        return Outcome(value=len(batch))
    if not isinstance(again.error, WriteError) or not 0 <= again.error.written < len(rest):
        s.fail(f"retrying the last {len(rest)} records of a failed batch with the device still failed, write() raised "
               f"{type(again.error).__name__}: {again.error}; WriteError counting the records fully written was due")
    return Outcome(error=WriteError(f"{again.error.message} (after {done} records written before the retry)",
                                    written=done + again.error.written))


def _relevant(held: dict[bytes, bytes], model: Model, batch: list[Record], device_failed: bool) -> dict[bytes, bytes]:
    """Read-back without what a failed device left behind: only the model's and the batch's keys."""
    if not device_failed:
        return held
    keys = set(model.data) | {key_bytes(r.key) for r in batch}
    return {key: value for key, value in held.items() if key in keys}


def _start(s: Session, faults: Injector, setup: list[Record], variant: dict[str, str] | None = None) -> Model:
    """Opens the destination in the fake filesystem and writes a first batch, which must work there; what fails
    there but works on the real disk is pyfakefs' limit (not checked), what fails on both is the destination's."""
    s.setup(f"# run inside: with {_injector_name(faults)} as faults:")
    if not s.configure().ok or not s.attempt("open").ok:
        _fails_on_the_real_disk_too(s, faults, [setup], variant)
        # The temp dir's name is shown as {tmp}, so that the reason reads the same in every run.
        failed = s.calls[-1].outcome.replace(s.tmp, "{tmp}")
        pytest.skip(_bypass(faults) + f" (configure or open failed inside it: {failed})")
    _require_fake_io(s, faults)
    written = s.attempt("write", setup)
    model = Model().apply(setup)
    held = s.read_back() if written.ok else None
    if not written.ok or held != model.data:
        _fails_on_the_real_disk_too(s, faults, [setup], variant)
        failed = s.calls[-1].outcome.replace(s.tmp, "{tmp}") or "read-back differs"
        pytest.skip(_bypass(faults) + f" (a plain write failed inside it: {failed})")
    return model


def _fails_on_the_real_disk_too(s: Session, faults: Injector, batches: list[list[Record]],
                                variant: dict[str, str] | None) -> None:
    """Fails the check (as write.round-trip) when configure, open and the plain batches fail on the real disk too
    under the same config: a variant the registration declares must work, not be skipped as pyfakefs' limit."""
    with faults.real_disk(), s.subject.session(overlay=variant) as real:
        if real.configure().ok and real.attempt("open").ok:
            model = Model()
            for batch in batches:
                outcome = real.attempt("write", batch)
                if not outcome.ok or (s.subject.registration.read_back is not None
                                      and real.read_back() != model.apply(batch).data):
                    break
            else:
                return
        with real.judging("write.round-trip"):
            shown = f"the variant {variant!r} of the registered config" if variant else "the registered config"
            real.fail(f"with {shown}, a plain batch fails on the real disk too: "
                      f"{real.calls[-1].outcome.replace(real.tmp, '{tmp}') or 'read-back differs'}")


def _draw_batches(subject: Subject, data: st.DataObject) -> tuple[list[Record], list[Record]]:
    """A first batch written before the fault, and the batch the fault hits (at least two records that store
    something, so the fault can land before the first and after some)."""
    setup = numbered(data.draw(subject.batches(min_size=1, max_size=4), label="earlier batch"), 0)
    batch = data.draw(subject.batches(min_size=0, max_size=batch_limit()), label="batch")
    storing = [r for r in batch if r.payload.after is not None and r.payload.after.bytes()]
    for extra in range(max(0, 2 - len(storing))):
        key = data.draw(subject.valid_keys(), label="key of a record that stores something")
        batch.append(Record(key=key, payload=Change(after=RawData(b"stored %d" % extra))))
    # A large value in every batch: a destination that streams big values in place is hit inside one.
    if subject.registration.payloads is None:
        size = data.draw(st.sampled_from([(64 << 10) + 1, (256 << 10) + 1]), label="size of the large value")
        key = data.draw(subject.valid_keys(), label="key of the large value")
        at = data.draw(st.integers(0, len(batch)), label="where the large value goes")
        batch.insert(at, Record(key=key, payload=Change(after=RawData(bytes(range(256)) * (size // 256) + b"L"))))
    # An overwrite and a removal of keys the earlier batch wrote, so a fault can hit a change to existing data.
    existing = [r.key for r in setup if r.payload.after is not None]
    if existing:
        at = data.draw(st.integers(0, len(batch)), label="where the overwrite goes")
        batch.insert(at, Record(key=existing[0], payload=Change(after=RawData(b"overwritten"))))
        at = data.draw(st.integers(0, len(batch)), label="where the removal goes")
        batch.insert(at, Record(key=existing[-1], payload=Change(after=None)))
    return setup, numbered(batch, len(setup))


def _variant(subject: Subject, variant: dict[str, str]) -> None:
    """Records which config variant the example ran under, for the report."""
    subject.coverage[f"variant: {variant or 'registered config'}"] += 1


def _dry_run(subject: Subject, variant: dict[str, str], setup: list[Record],
             batch: list[Record]) -> tuple[dict[str, int], int]:
    """Writes the batch once without faults: the calls it makes at each injection point and the bytes it stores."""
    with fault_filesystem(subject) as faults, subject.session(overlay=variant) as s:
        _start(s, faults, setup, variant)
        stored = faults.stored_bytes()
        faults.files_before_the_batch(s.directory)
        faults.count()
        outcome = s.attempt("write", batch)
        calls = dict(faults.calls)
        faults.clear()
        if not outcome.ok:
            _fails_on_the_real_disk_too(s, faults, [setup, batch], variant)
            return {}, 0  # it fails only in the fake filesystem: nothing to inject into
        return calls, faults.stored_bytes() - stored


def _credit(s: Session, outcome: Outcome, fired: bool, batch: list[Record], before: str, after: str,
            stored: bool = False) -> None:
    """Evidence for a fault that fired inside the batch: whether records that store something were stored before it
    (records before the first such one, deletes of absent keys say, store nothing). `stored`: the disk took some of
    the batch's bytes before it failed (the room left or the cut was above zero), so a destination that stores a
    batch all or nothing (one transaction) and rolled it back was hit after some of it was stored too."""
    if not fired or not isinstance(outcome.error, WriteError):  # any other outcome failed _expect_exact_prefix
        return
    first = next((i for i, r in enumerate(batch) if r.payload.after is not None and r.payload.after.bytes()),
                 len(batch))
    s.saw(before if outcome.error.written <= first and not stored else after)


@pytest.mark.clause("fault.disk-full")
@suite_settings(max_examples=fraction_of_examples(0.5))
@given(data=st.data())
def test_disk_fills_mid_batch(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """fault.disk-full: with the disk full part-way, WriteError counts exactly the records fully written; the
    room left is drawn below what a dry run of the same batch stored, so the disk fills inside the batch."""
    _require_location(subject)
    _variant(subject, variant)
    setup, batch = _draw_batches(subject, data)
    _, needed = _dry_run(subject, variant, setup, batch)
    if needed <= 1:
        return  # nothing of the batch to fill the disk with (no evidence, so no pass from this example)
    later = data.draw(st.integers(1, needed - 1), label="bytes left free once some of the batch is stored")
    # Full before anything of the batch is stored, part-way through it, and one byte short of all of it.
    for free in sorted({0, later, needed - 1}):
        with fault_filesystem(subject) as faults, subject.session(overlay=variant) as s:
            model = _start(s, faults, setup, variant)
            faults.fill_disk(free)
            s.setup(f"faults.fill_disk({free})  # the batch stored {needed} bytes in a dry run")
            outcome = s.attempt("write", batch)
            _fired(s, faults)
            faults.unlimited_disk()
            _expect_exact_prefix(s, outcome, batch, model, f"the disk filled ({free} bytes were free)")
            _credit(s, outcome, faults.disk_full > 0, batch, "disk filled before the batch's first record was stored",
                    "disk filled after some of the batch was stored", stored=free > 0)
            subject.coverage["short writes at the full disk"] += faults.shortened


@pytest.mark.clause("fault.io-error")
# A quarter of the examples: each injects at every call point the batch used, four ways (some 25 writes), so every
# point is covered in every example and the check still makes the most writes of any.
@suite_settings(max_examples=fraction_of_examples(0.25))
@given(data=st.data())
def test_io_error_mid_batch(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """fault.io-error: an EIO or EACCES at a call the batch really makes (counted in a dry run) gives WriteError
    counting exactly what was written: at the first and last call of every point the batch used, and as a sticky
    fault at a drawn and the last call of each."""
    _require_location(subject)
    _variant(subject, variant)
    setup, batch = _draw_batches(subject, data)
    calls, needed = _dry_run(subject, variant, setup, batch)
    used = sorted(point for point, count in calls.items() if count)
    if not used:
        return  # no call to inject into (no evidence, so no pass from this example)
    error = data.draw(st.sampled_from(sorted(INJECTED_ERRORS)), label="error")
    # Inside a call too: the device fails once a drawn number of the batch's bytes, and once all but its last byte,
    # are stored (a short write first), so a destination that stores a whole batch in one call is hit after some
    # of its records are whole, as well as before.
    cuts = sorted({data.draw(st.integers(1, needed - 1), label="bytes stored before the device fails"), needed - 1}) \
        if needed > 1 else []
    for cut in cuts:
        with fault_filesystem(subject) as faults, subject.session(overlay=variant) as s:
            model = _start(s, faults, setup, variant)
            faults.files_before_the_batch(s.directory)
            faults.cut_at(cut, INJECTED_ERRORS[error])
            s.setup(f"faults.cut_at({cut}, errno.{error})  # the batch stored {needed} bytes in a dry run")
            outcome = s.attempt("write", batch)
            fired = faults.injected > 0
            _fired(s, faults)
            faults.clear()
            _expect_exact_prefix(s, outcome, batch, model, f"{error} once {cut} of the batch's bytes were stored")
            subject.coverage["injected inside a call"] += faults.injected
            _credit(s, outcome, fired, batch, "error injected before the batch's first record was stored",
                    "error injected after some of the batch was stored", stored=True)
    # At every point the batch used: one fault at its first and at its last call, and a sticky fault (the device
    # stays failed: every later call that changes the filesystem fails too, so undoing and cleaning up fail as
    # well) at a drawn call and at the last one.
    plan = set()
    for used_point in used:
        later = data.draw(st.integers(1, calls[used_point]), label=f"which call of {used_point} starts a sticky fault")
        plan |= {(used_point, 1, False), (used_point, calls[used_point], False),
                 (used_point, later, True), (used_point, calls[used_point], True)}
    for point, nth, sticky in sorted(plan):
        with fault_filesystem(subject) as faults, subject.session(overlay=variant) as s:
            model = _start(s, faults, setup, variant)
            faults.files_before_the_batch(s.directory)
            faults.inject(point, INJECTED_ERRORS[error], nth, sticky=sticky)
            s.setup(f"faults.inject({point!r}, errno.{error}, nth={nth}{', sticky=True' if sticky else ''})  "
                    f"# the batch made {calls[point]} such calls in a dry run")
            outcome = s.attempt("write", batch)
            fired = faults.injected > 0
            retried = _retry_the_rest(s, outcome, batch) if sticky and fired else None
            _fired(s, faults)
            faults.clear()
            # Judged before the model takes the batch: the keys in play are the model's and the batch's.
            swallowed = swallowed_fsync(point, fired, outcome.ok, functools.partial(
                kept_unsynced, s, faults, set(model.data) | {key_bytes(r.key) for r in batch}))
            if swallowed:
                s.fail(swallowed)
            kind = "a sticky " if sticky else ""
            again = ", then the rest of the batch retried with the device still failed" if retried else ""
            _expect_exact_prefix(s, retried or outcome, batch, model, f"{kind}{error} at call {nth} of {point}{again}",
                                 device_failed=sticky)
            subject.coverage[f"injected at {point}"] += faults.injected
            _credit(s, outcome, faults.injected > 0, batch, "error injected before the batch's first record was stored",
                    "error injected after some of the batch was stored")
            if sticky and faults.injected and not outcome.ok:
                s.saw("device kept failing after the error")



@pytest.mark.clause("write.recovers")
@suite_settings(max_examples=fraction_of_examples(0.4))
@given(data=st.data())
def test_valid_batch_after_an_io_error(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """write.recovers: after a WriteError from an injected I/O error (at a call the batch really makes), the next
    valid batch is written whole."""
    _variant(subject, variant)
    setup, batch = _draw_batches(subject, data)
    calls, _ = _dry_run(subject, variant, setup, batch)
    used = sorted(point for point, count in calls.items() if count)
    if not used:
        return  # no call to inject into (no evidence from this example)
    point = data.draw(st.sampled_from(used), label="failing call")
    nth = data.draw(st.integers(1, calls[point]), label="which call fails")
    recovery = numbered(data.draw(subject.batches(min_size=1, max_size=4), label="batch after the error"),
                        len(setup) + len(batch))
    with fault_filesystem(subject) as faults, subject.session(overlay=variant) as s:
        model = _start(s, faults, setup, variant)
        faults.files_before_the_batch(s.directory)
        faults.inject(point, INJECTED_ERRORS["EIO"], nth)
        s.setup(f"faults.inject({point!r}, errno.EIO, nth={nth})")
        outcome = s.attempt("write", batch)
        faults.clear()
        s.setup("faults.clear()")
        if outcome.ok or not isinstance(outcome.error, WriteError) or not 0 <= outcome.error.written < len(batch):
            return  # nothing to recover from, or no count to trust: fault.io-error reports that
        after_a_failed_batch(model, batch, outcome.error.written,
                             s.read_back() if s.subject.registration.read_back is not None else None)
        s.write_all(recovery)
        s.expect(model.apply(recovery), "the valid batch that followed an injected I/O error")
        s.saw("recovered after an I/O error")


@pytest.mark.clause("open.unwritable")
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_open_reports_permission_denied(subject: Subject, depth: int) -> None:
    """open.unwritable: under a read-only parent, open raises an error naming the path and creates nothing."""
    _require_location(subject)
    with fault_filesystem(subject) as faults, subject.session(
        directory=lambda tmp: os.path.join(tmp, "locked", *NESTED[:depth])
    ) as s:
        locked = os.path.join(s.tmp, "locked")
        os.makedirs(locked)
        os.chmod(locked, 0o555)
        s.setup(f"# run inside: with {_injector_name(faults)} as faults:")
        s.setup(f"os.makedirs({locked!r}); os.chmod({locked!r}, 0o555)")
        before = tree_snapshot(s.tmp)
        s.configure_ok()
        outcome = s.attempt("open")
        if outcome.error is None:
            if faults.exists_on_real_disk(s.location):
                pytest.skip(_bypass(faults))
            if not os.path.isdir(s.location):
                s.fail(f"open() succeeded although {locked!r} is read-only, and did not create {s.directory!r}")
            s.fail(f"open() succeeded although {locked!r} is read-only")
        paths = {s.location, *(os.path.join(locked, *NESTED[:i]) for i in range(1, depth + 1))}
        if s.path is not None:
            paths.add(s.path)
        if not names_path(outcome.error, *paths):
            s.fail(f"open()'s error does not name the path {s.directory!r}: "
                   f"{type(outcome.error).__name__}: {outcome.error}")
        if tree_snapshot(s.tmp) != before:
            s.fail("open() created or changed something although it failed")
        s.saw("refused under a read-only parent")
        os.chmod(locked, 0o755)
