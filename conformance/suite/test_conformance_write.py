"""Clauses write.*: counts, read-back against the model, invalid keys, recovery, no mutation, large payloads."""

import pytest
from hypothesis import given, strategies as st

from conformance.contract.clauses import OPERATIONS, OWN_NAME_KEY_EVIDENCE, PAYLOAD_BANDS, location_param
from conformance.execute.own_names import DRY_RUN_KEYS, NOT_REACHED, registration_names
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model, key_bytes
from conformance.generate.strategies import (
    HUGE_PAYLOAD_BYTES,
    LARGE_PAYLOAD_BYTES,
    every_escapable_key,
    invalid_key_classes,
    large_payloads,
    long_escapable_keys,
    long_keys,
    non_ascii_keys,
    numbered,
    records,
    sized_payload,
    unspecified_keys,
)
from conformance.generate.witnesses import witness_records
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from harness import Change, Operation, RawData, Record, StructuredData, WriteError, dump_records
from harness.records import Data


def _count_problem(result: object, error: BaseException | None, size: int) -> str | None:
    """Why a write outcome breaks write.count, or None."""
    if error is not None:
        if not isinstance(error, WriteError):
            return f"write() raised {type(error).__name__}: {error} (only WriteError may stop a write)"
        if not (isinstance(error.written, int) and 0 <= error.written < size):
            return f"WriteError.written={error.written!r} for {size} records (must be 0 <= written < {size})"
        return None
    if isinstance(result, bool) or not isinstance(result, int):
        return f"write() returned {result!r} ({type(result).__name__}), not an int"
    if result != size:
        return f"write() returned {result} for {size} records without raising WriteError"
    return None


def _expect_write_error_at(s: Session, batch: list[Record], index: int) -> None:
    outcome = s.attempt("write", batch)
    if outcome.ok:
        s.fail(f"write() returned {outcome.value!r}; record {index} has an invalid key "
               f"({batch[index].key!r}) so WriteError(written={index}) was due")
    if not isinstance(outcome.error, WriteError):
        s.fail(f"write() raised {type(outcome.error).__name__}: {outcome.error}; "
               f"expected WriteError(written={index}) for the invalid key at index {index}")
    if outcome.error.written != index:
        s.fail(f"WriteError.written={outcome.error.written}, but the first invalid key is at index {index}")


@pytest.mark.clause("write.empty-batch")
def test_empty_batch_writes_nothing(subject: Subject) -> None:
    """write.empty-batch: write([]) returns 0 and read-back stays empty."""
    with subject.session() as s:
        s.open_ready()
        result = s.ok("write", [])
        if isinstance(result, bool) or result != 0:
            s.fail(f"write([]) returned {result!r}, not 0")
        s.expect(Model(), "an empty batch")
        s.saw("empty batch written")


@pytest.mark.clause("write.round-trip")
@suite_settings()
@given(data=st.data())
def test_batches_read_back_as_the_model(subject: Subject, data: st.DataObject) -> None:
    """write.round-trip: after each batch, read-back equals the model of all batches so far."""
    with subject.session() as s:
        s.open_ready()
        model, position = Model(), 0
        for number in range(data.draw(st.integers(1, 3), label="number of batches")):
            batch = numbered(data.draw(subject.batches(max_size=batch_limit()), label="batch"), position)
            position += len(batch)
            s.write_all(batch)
            s.expect(model.apply(batch), f"batch {number + 1}")


def _distinct_keys(subject: Subject, data: st.DataObject, count: int, label: str) -> list[Data]:
    """`count` keys of the registration's valid keys, distinct as far as its keys allow (a small declared set of
    keys is reused in turn; the model follows either way). The contract's keys are always `count` distinct ones:
    a repeated key would overwrite a record class (a large payload) within its batch, and the class would go
    unread in a run whose draws happen to be short."""
    spec_keys = subject.registration.valid_keys is None
    keys = data.draw(st.lists(subject.valid_keys(), min_size=count if spec_keys else 1, max_size=count,
                              unique_by=lambda k: k.bytes() if k is not None else b""), label=label)
    return [keys[i % len(keys)] for i in range(count)]


def _class_payload(subject: Subject, data: st.DataObject, band: tuple[int, int] | None, label: str) -> Data:
    """A payload of the given size band (raw), or of the registration's payloads when it declares them."""
    if subject.registration.payloads is not None or band is None:
        return data.draw(subject.payloads(), label=label)
    size = data.draw(st.integers(*band), label=f"{label} size")
    return sized_payload(data.draw(st.integers(0, 2**32 - 1), label=f"{label} seed"), size)


@pytest.mark.clause("write.round-trip")
@suite_settings(max_examples=fraction_of_examples(0.2))
@given(data=st.data())
def test_every_record_class_round_trips(subject: Subject, data: st.DataObject) -> None:
    """write.round-trip: every operation with and without after, every payload size band, structured payloads,
    overwrites and removals of written keys, and long, non-ASCII and long escapable keys, in every run; with the
    contract's keys, first the witness keys (pairs equal under Unicode normalization, case folding or Windows'
    trimming, dot-leading names), each with a value of its own and hostile OpenCDC metadata."""
    spec_keys = subject.registration.valid_keys is None
    declared = subject.registration.payloads is not None  # a table or a log takes only its own payloads
    bands = [None] if declared else list(PAYLOAD_BANDS)
    keys = _distinct_keys(subject, data, len(OPERATIONS) + len(bands) + 1, "keys")
    if spec_keys:  # the contract's valid keys include these classes, so they are tried in every run
        keys += [data.draw(long_keys(), label="key of 250 to 255 bytes"),
                 data.draw(non_ascii_keys(), label="non-ASCII key"),
                 data.draw(long_escapable_keys(), label="long key of escapable characters"),
                 RawData(every_escapable_key()),  # by construction: not left to the draws of a short run
                 # Dots first: a prefix of it ("..") names the parent where a destination shards or escapes by prefix.
                 RawData(data.draw(st.sampled_from([b"...", b"..k", b"...k"]), label="key beginning with two dots"))]
    first: list[Record] = []
    for number, operation in enumerate(OPERATIONS):
        after = _class_payload(subject, data, (0, 64) if bands[0] else None, f"{operation} payload")
        first.append(Record(operation=Operation(operation), key=keys[number], payload=Change(after=after)))
    for number, band in enumerate(bands):
        after = _class_payload(subject, data, band, "banded payload")
        first.append(Record(operation=Operation.create, key=keys[len(OPERATIONS) + number],
                            payload=Change(after=after)))
    if subject.registration.payloads is None:
        first.append(Record(operation=Operation.create, key=keys[len(OPERATIONS) + len(bands)],
                            payload=Change(after=StructuredData(data.draw(subject.structured(), label="structured")))))
    first += [Record(operation=Operation.snapshot, key=key,
                     payload=Change(after=_class_payload(subject, data, (1, 1) if bands[0] else None, "payload")))
              for key in keys[len(OPERATIONS) + len(bands) + 1:]]
    # Then each operation removes (after=None) a key written above, and one written key is overwritten.
    second = [Record(operation=Operation(operation), key=keys[number], payload=Change()) for number, operation
              in enumerate(OPERATIONS)]
    second.append(Record(operation=Operation.update, key=keys[len(OPERATIONS)],
                         payload=Change(after=_class_payload(subject, data, (1, 64) if bands[0] else None,
                                                             "overwriting payload"))))
    # Deletes carrying an after set the key like any record with an after: the model follows after alone.
    third = [Record(operation=Operation.delete, key=keys[0],
                    payload=Change(after=data.draw(subject.payloads(), label="after on a delete") if declared
                                   else RawData(b"after on a delete")))]
    # A batch larger than any drawn one, where per-chunk accounting bugs show (and keys repeat within it).
    large = [Record(key=keys[i % len(keys)],
                    payload=Change(after=data.draw(subject.payloads(), label=f"payload {i} of 40") if declared
                                   else RawData(b"%d" % i))) for i in range(40)]
    # First, the contract-space witnesses (keys equal under a folding, dot-leading keys) in a batch
    # of their own: a class record whose key happens to be a witness key overwrites the witness, never the reverse.
    # Without hostile metadata: what a destination does with a record routed elsewhere by its metadata (a topic or
    # table per collection) is safety.confined's to judge, not the keys' round trip.
    witnesses = (witness_records(afters=data.draw(st.lists(subject.payloads(), min_size=1, max_size=3),
                                                  label="witness payloads") if declared else (),
                                 hostile_metadata=False)
                 if spec_keys else [])
    # The names the destination creates itself (a dry run's, once per registration) as keys, first in the batch:
    # the records after them and the batches after it must leave them holding their values.
    # (A declared key space has rules the suite cannot test a name against, so it gets none.)
    own = registration_names(subject, {}, DRY_RUN_KEYS, first[0].payload.after or RawData(b"dry run")).as_keys(
        subject) if spec_keys else []
    first = [Record(operation=Operation.create, key=RawData(name),
                    payload=Change(after=data.draw(subject.payloads(), label=f"payload of own name {name!r}")
                                   if declared else RawData(b"a record named as the destination's own file " + name)))
             for name in own] + first
    with subject.session() as s:
        s.open_ready()
        model, position = Model(), 0
        named = [("the witness batch", witnesses)] if witnesses else []
        for name, batch in named + [(f"batch {n + 1}", b) for n, b in enumerate((first, second, third, large))]:
            batch = numbered(batch, position)
            position += len(batch)
            s.write_all(batch)
            s.expect(model.apply(batch), name + (f" (its first {len(own)} keys are names the destination creates "
                                                 f"itself: {own[:4]})" if name == "batch 1" and own else ""))
        if own:
            s.saw(OWN_NAME_KEY_EVIDENCE)
        elif spec_keys and subject.registration.transport == "standalone" and location_param(subject.registration):
            subject.unchecked.add(NOT_REACHED)


@pytest.mark.clause("write.round-trip")
@suite_settings(max_examples=fraction_of_examples(0.1))
@given(data=st.data())
def test_each_config_variant_round_trips(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """write.round-trip under each config variant the registration declares (the registered config too), on the
    real disk: creates, an overwrite and a removal read back as the model (variants are otherwise only run by the
    fault and safety checks, which tolerate failed writes or run in a fake filesystem)."""
    first = numbered(data.draw(subject.batches(min_size=1, max_size=batch_limit()), label="first batch"), 0)
    keys = [r.key for r in first if r.payload.after is not None] or [first[0].key]
    second = numbered([
        Record(operation=Operation.update, key=keys[0],
               payload=Change(after=data.draw(subject.payloads(), label="overwriting payload"))),
        Record(operation=Operation.delete, key=keys[-1], payload=Change()),
        *data.draw(subject.batches(max_size=4), label="more records"),
    ], len(first))
    with subject.session(overlay=variant) as s:
        s.open_ready()
        model = Model()
        for number, batch in enumerate((first, second)):
            s.write_all(batch)
            s.expect(model.apply(batch), f"batch {number + 1} with the config variant {variant!r}" if variant
                     else f"batch {number + 1}")


@pytest.mark.clause("write.count")
@suite_settings()
@given(data=st.data())
def test_write_returns_a_valid_count(subject: Subject, data: st.DataObject) -> None:
    """write.count: write returns len(records) or raises WriteError with 0 <= written < len(records)."""
    with subject.session() as s:
        s.open_ready()
        # Every example starts with a batch larger than any drawn one, where per-chunk accounting bugs show.
        large = numbered(data.draw(subject.batches(min_size=33, max_size=40), label="batch of 33 to 40 records"), 0)
        outcome = s.attempt("write", large)
        problem = _count_problem(outcome.value, outcome.error, len(large))
        if problem:
            s.fail(problem)
        position = len(large)
        for _ in range(data.draw(st.integers(1, 3), label="number of batches")):
            if data.draw(st.booleans(), label="with an invalid key"):
                batch, _index = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()), label="batch")
            else:
                batch = data.draw(subject.batches(max_size=batch_limit()), label="batch")
            batch = numbered(batch, position)
            position += len(batch)
            outcome = s.attempt("write", batch)
            problem = _count_problem(outcome.value, outcome.error, len(batch))
            if problem:
                s.fail(problem)


@pytest.mark.clause("write.count")
@suite_settings()
@given(data=st.data())
def test_unspecified_keys_count_agrees_with_read_back(subject: Subject, data: st.DataObject) -> None:
    """write.count: a non-UTF-8 key may be accepted or rejected, but count and read-back agree."""
    if subject.registration.valid_keys is not None:
        pytest.skip("not checked: the registration declares its own keys, so SPEC's unspecified keys do not apply")
    with subject.session() as s:
        s.open_ready()
        batch = data.draw(subject.batches(min_size=1, max_size=batch_limit()), label="batch")
        index = data.draw(st.integers(0, len(batch) - 1), label="index of the non-UTF-8 key")
        batch[index] = batch[index].model_copy(update={"key": data.draw(unspecified_keys(), label="key")})
        batch = numbered(batch, 0)
        outcome = s.attempt("write", batch)
        problem = _count_problem(outcome.value, outcome.error, len(batch))
        if problem:
            s.fail(problem)
        # Only the non-UTF-8 key's own fate is this check's business; the other keys are write.round-trip's.
        if isinstance(outcome.error, WriteError) and outcome.error.written != index:  # else _count_problem failed
            s.fail(f"WriteError.written={outcome.error.written}, but the only key it may reject "
                   f"(non-UTF-8) is at index {index}")
        if subject.registration.read_back is None:
            subject.unchecked.add("read-back not compared: the registration provides no read_back")
            s.saw("non-UTF-8 key's count and read-back agree")
            return
        key = key_bytes(batch[index].key)
        expected = Model().apply(batch if outcome.ok else batch[:index]).data.get(key)
        held = s.read_back().get(key)
        if held != expected:
            verdict = "accepted" if outcome.ok else f"rejected (WriteError at index {index})"
            s.fail(f"the non-UTF-8 key {key!r} was {verdict}, but read-back holds "
                   f"{'nothing' if held is None else repr(held[:40])} for it instead of "
                   f"{'nothing' if expected is None else repr(expected[:40])}")
        s.saw("non-UTF-8 key's count and read-back agree")


@pytest.mark.clause("write.invalid-key-count")
@suite_settings()
@given(data=st.data())
def test_invalid_key_stops_the_batch_there(subject: Subject, data: st.DataObject) -> None:
    """write.invalid-key-count: WriteError(written=i) at the first invalid key; read-back holds records[:i]."""
    with subject.session() as s:
        s.open_ready()
        batch, index = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()),
                                 label="batch and invalid index")
        batch = numbered(batch, 0)
        _expect_write_error_at(s, batch, index)
        s.expect(Model().apply(batch[:index]), f"a WriteError at index {index}")


@pytest.mark.clause("write.invalid-key-count")
@suite_settings(max_examples=fraction_of_examples(0.2))
@given(data=st.data())
def test_every_invalid_key_class_stops_the_batch(subject: Subject, data: st.DataObject) -> None:
    """write.invalid-key-count: every kind of invalid key, at index 0 and at a later index, in every run."""
    declared = subject.registration.invalid_keys
    classes = {"declared invalid": subject.invalid_keys()} if declared is not None else invalid_key_classes()
    for kind, keys in classes.items():
        for where in ("index 0", "a later index"):
            valid = data.draw(subject.batches(min_size=1, max_size=4), label=f"valid records around a {kind} key")
            bad = data.draw(keys, label=f"{kind} key")
            index = 0 if where == "index 0" else len(valid)
            filler = valid[0] if valid else Record(key=RawData(b"k"), payload=Change(after=RawData(b"v")))
            batch = numbered([*valid[:index], filler.model_copy(update={"key": bad}), *valid[index:]], 0)
            with subject.session() as s:
                s.open_ready()
                _expect_write_error_at(s, batch, index)
                s.expect(Model().apply(batch[:index]), f"a WriteError at index {index}")
                s.saw(f"{kind} key rejected at {where}")


@pytest.mark.clause("write.recovers")
@suite_settings()
@given(data=st.data())
def test_valid_batch_after_write_error(subject: Subject, data: st.DataObject) -> None:
    """write.recovers: after a WriteError the next valid batch is written whole."""
    with subject.session() as s:
        s.open_ready()
        bad, index = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()), label="failing batch")
        bad = numbered(bad, 0)
        outcome = s.attempt("write", bad)
        if outcome.ok:
            pytest.skip("not checked: write() accepted a batch with an invalid key, so there was no WriteError "
                        "to recover from (write.invalid-key-count reports that)")
        if not isinstance(outcome.error, WriteError) or outcome.error.written != index:
            # No WriteError with a count to recover from: write.count and write.invalid-key-count report it, and
            # without a trustworthy count the model of what is held is unknown, so this example gives no evidence.
            subject.shortfalls.add(
                f"write() raised {type(outcome.error).__name__}, not WriteError, for a batch with an invalid key, so "
                "there was no WriteError to recover from" if not isinstance(outcome.error, WriteError) else
                "write()'s WriteError for a batch with an invalid key at index i did not count i records, so what "
                "it held was unknown and no recovery was judged")
            return
        good = numbered(data.draw(subject.batches(min_size=1, max_size=batch_limit()),
                                  label="next batch"), len(bad))
        s.write_all(good)
        s.expect(Model().apply(bad[:index]).apply(good), "the valid batch that followed a WriteError")
        s.saw("recovered after an invalid key")


@pytest.mark.clause("write.no-mutation")
@suite_settings()
@given(data=st.data())
def test_write_leaves_records_unchanged(subject: Subject, data: st.DataObject) -> None:
    """write.no-mutation: every record passed to write is equal, field by field, after the call: after a valid
    batch and after one with an invalid key (the error path), in every example."""
    with subject.session() as s:
        s.open_ready()
        whole = data.draw(subject.batches(min_size=1, max_size=batch_limit()), label="batch")
        # Every field set, in every run: a record with metadata and a before image (a destination may drop it).
        key = data.draw(subject.valid_keys(), label="key of the record with every field")
        whole = numbered([*whole, Record(operation=Operation.update, key=key, metadata={"opencdc.collection": "c"},
                                         payload=Change(before=RawData(b"before"), after=RawData(b"after")))], 0)
        failing, _ = data.draw(subject.batches_with_invalid_key(max_size=batch_limit()), label="failing batch")
        failing = numbered(failing, len(whole))
        for batch, label in ((whole, "records unchanged after a valid batch"),
                             (failing, "records unchanged after a batch with an invalid key")):
            before = [dump_records([r]) for r in batch]  # text, so no snapshot shares a dict with a record
            ids = [id(r) for r in batch]
            s.attempt("write", batch)
            if [id(r) for r in batch] != ids:
                s.fail("write() replaced records in the list it was given")
            for index, (record, old) in enumerate(zip(batch, before, strict=True)):
                if dump_records([record]) != old:
                    s.fail(f"write() changed record {index}: was {old.strip()}, now {dump_records([record]).strip()}")
            s.saw(label)


@pytest.mark.clause("write.large-payload")
@suite_settings(max_examples=fraction_of_examples(0.1))
@given(data=st.data())
def test_large_payloads_round_trip(subject: Subject, data: st.DataObject) -> None:
    """write.large-payload: payloads of 4 MiB and more with NUL and invalid UTF-8 read back exactly, and in every
    example one past 16 MiB (the last record, so it is what its key holds)."""
    with subject.session() as s:
        s.open_ready()
        batch = data.draw(st.lists(records(subject.valid_keys(), payload=large_payloads()), min_size=1, max_size=2),
                          label="batch of large payloads")
        batch = [r if r.payload.after is not None else r.model_copy(update={"payload": r.payload.model_copy(
            update={"after": data.draw(large_payloads(), label="payload")})}) for r in batch]
        huge = data.draw(large_payloads(HUGE_PAYLOAD_BYTES, HUGE_PAYLOAD_BYTES + 65536), label="payload past 16 MiB")
        batch.append(Record(key=data.draw(subject.valid_keys(), label="key of the payload past 16 MiB"),
                            payload=Change(after=huge)))
        batch = numbered(batch, 0)
        s.write_all(batch)
        s.expect(Model().apply(batch), "a batch of large payloads")
        if any(r.payload.after is not None and len(r.payload.after.bytes()) >= LARGE_PAYLOAD_BYTES for r in batch):
            s.saw("payload of 4 MiB or more round-tripped")
        s.saw("payload of 16 MiB+1 B or more round-tripped")
