"""The official Python SDK's destinations in-process (harness.conduit.sdk) and the wire codec (harness.conduit.wire)."""

import asyncio
from typing import Any

import conduit
import pytest
from hypothesis import given, strategies as st

from conformance.generate.strategies import records, struct_json_objects, struct_payloads, valid_keys
from harness import (
    ConfigError,
    LifecycleError,
    ParameterType,
    RawData,
    Record,
    StructuredData,
    WriteError,
    load_registration,
)
from harness.conduit.sdk import SdkDestination, from_sdk_record, sdk_registration, to_sdk_record
from harness.conduit.wire import record_from_proto, record_to_proto
from harness.records import Change
from tests.conduit_sdk.file_destination import SdkFileDestination


class Config(conduit.BaseConfig):
    """A config with each kind of field the SDK maps to a parameter."""

    directory: str = conduit.Field(description="where files go")
    mode: str = conduit.Field(default="a", description="mode", pattern="^[ab]$")
    retries: int = conduit.Field(default=3, ge=0, description="retries")


class Scripted(conduit.Destination[Config]):
    """An SDK destination whose write raises what the test puts in `raises`."""

    raises: Any = None

    async def write(self, records: list[conduit.Record]) -> None:
        if Scripted.raises is not None:
            raise Scripted.raises


def run(coro: Any) -> Any:
    """Runs one adapter call."""
    return asyncio.run(coro)


@given(records(valid_keys(), struct_payloads()))
def test_records_cross_to_the_sdk_and_back_unchanged(record: Record) -> None:
    """Our record -> conduit.Record -> our record loses nothing (keys are never None here)."""
    assert from_sdk_record(to_sdk_record(record)) == record


def test_a_missing_key_reaches_the_sdk_as_empty_bytes() -> None:
    """The SDK has no None key: an unset key is b"" on the wire, and in-process too."""
    assert to_sdk_record(Record(key=None)).key == b""


@given(records(valid_keys(), struct_payloads()))
def test_records_cross_the_wire_unchanged(record: Record) -> None:
    """opencdc.v1 encoding round-trips every record the suite generates for protocol connectors."""
    assert record_from_proto(record_to_proto(record)) == record


@given(st.integers(min_value=2**53 + 1, max_value=2**62).filter(lambda n: float(n) != n))
def test_struct_numbers_lose_precision_on_the_wire(big: int) -> None:
    """Why protocol payloads carry no numbers: a Struct turns integers into float64."""
    record = Record(key=RawData(b"k"), payload=Change(after=StructuredData({"n": big})))
    back = record_from_proto(record_to_proto(record))
    assert back.payload.after.data["n"] != big


@given(struct_json_objects())
def test_struct_payloads_hold_no_numbers(value: dict[str, Any]) -> None:
    """The Struct-safe JSON strategy never produces a number."""
    def walk(v: Any) -> None:
        assert not (isinstance(v, (int, float)) and not isinstance(v, bool))
        for item in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()):
            walk(item)
    walk(value)


def test_parameters_come_from_the_config_model_plus_sdk_batch_keys() -> None:
    """Parameters: the model's fields with their validations, plus the SDK's own sdk.batch.* keys."""
    params = SdkDestination(Scripted).parameters()
    assert {"directory", "mode", "retries", "sdk.batch.size", "sdk.batch.delay"} <= set(params)
    assert params["directory"].required
    assert params["retries"].type is ParameterType.int and params["retries"].default == "3"
    assert params["retries"].problems("-1")  # ge=0 arrives as greater-than -1
    assert params["mode"].problems("c") and not params["mode"].problems("b")


@pytest.mark.parametrize("config, named", [
    ({}, "directory"),
    ({"directory": "/x", "retries": "many"}, "retries"),
    ({"directory": "/x", "mode": "c"}, "mode"),
    ({"directory": "/x", "sdk.batch.size": "-2"}, "sdk.batch.size"),
])
def test_configure_errors_name_the_bad_key(config: dict[str, str], named: str) -> None:
    """A config the SDK would refuse raises ConfigError naming the key, and leaves the destination new."""
    destination = SdkDestination(Scripted)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as err:
        run(destination.configure(config))
    assert named in err.value.keys
    run(destination.configure({"directory": "/x"}))  # still new: a valid config is taken


def test_unknown_keys_pass_on_a_plain_base_config() -> None:
    """Upstream finding: BaseConfig ignores unknown keys (Go's ParseConfig rejects them)."""
    run(SdkDestination(Scripted).configure({"directory": "/x", "bogus": "1"}))


def opened() -> SdkDestination:
    """A configured, open adapter over Scripted."""
    destination = SdkDestination(Scripted)
    run(destination.configure({"directory": "/x"}))
    run(destination.open())
    return destination


@pytest.mark.parametrize("error, written", [
    (lambda n: conduit.BatchWriteError(n, written=1), 1),
    (lambda n: conduit.BatchWriteError.partial(n, written=0, cause=OSError("disk")), 0),
    (lambda n: conduit.BatchWriteError(n, success={0, 2}, failures={1: ValueError("bad")}), 1),
])
def test_batch_write_error_becomes_write_error_at_the_first_unwritten_index(error: Any, written: int) -> None:
    """BatchWriteError's accounting gives the count: the first index it does not mark written."""
    destination = opened()
    batch = [Record(position=b"%d" % i, key=RawData(b"k%d" % i)) for i in range(3)]
    Scripted.raises = error(len(batch))
    try:
        with pytest.raises(WriteError) as err:
            run(destination.write(batch))
    finally:
        Scripted.raises = None
    assert err.value.written == written


def test_other_exceptions_pass_through_without_a_count() -> None:
    """Any other exception is the SDK's whole-batch nack: passed on as it is (write.count reports it)."""
    destination = opened()
    Scripted.raises = RuntimeError("boom")
    try:
        with pytest.raises(RuntimeError, match="boom"):
            run(destination.write([Record(key=RawData(b"k"))]))
    finally:
        Scripted.raises = None


def test_forbidden_calls_are_passed_on_and_their_errors_become_lifecycle_errors() -> None:
    """No guard of ours: an SDK destination without one accepts a write before open; one with one refuses."""
    bare = SdkDestination(Scripted)
    assert run(bare.write([Record(key=RawData(b"k"))])) == 1  # the SDK enforces no order
    guarded = SdkDestination(SdkFileDestination)
    with pytest.raises(LifecycleError, match="write"):
        run(guarded.write([Record(key=RawData(b"k"))]))
    with pytest.raises(LifecycleError):
        guarded.ack(b"0")


def test_adapter_answers_ack_and_parameters_and_passes_on_the_rest() -> None:
    """ack and parameters are the adapter's (an SDK destination has neither); a second teardown and the calls after
    teardown reach the destination, whose own guard answers."""
    torn_down: list[int] = []

    class Counting(SdkFileDestination):
        async def teardown(self) -> None:
            torn_down.append(1)
            await super().teardown()

    destination = SdkDestination(Counting)
    assert set(destination.adapter_answers()) == {"ack"}
    assert destination.parameters() == destination.parameters() and destination.parameters()["directory"].required
    with pytest.raises(LifecycleError, match=r"^adapter: ack\(\) in state new"):
        destination.ack(b"0")
    run(destination.teardown())
    run(destination.teardown())
    assert torn_down == [1, 1]
    with pytest.raises(LifecycleError, match="lifecycle: configure when the destination is torn down"):
        run(destination.configure({"directory": "/x"}))
    with pytest.raises(LifecycleError, match="lifecycle: write after teardown"):
        run(destination.write([Record(key=RawData(b"k"))]))
    assert set(destination.adapter_answers()) == {"ack"}


def test_sdk_destination_classes_are_recognised_by_the_loader() -> None:
    """--destination=module:Class with a conduit.Destination subclass takes the SDK in-process path."""
    registration = load_registration("tests.conduit_sdk.file_destination:SdkFileDestination", {"directory": "{tmp}"})
    assert registration.transport == "sdk in-process"
    assert registration.structured_data == "protobuf-struct"
    assert "in-process: tests.conduit_sdk.file_destination.SdkFileDestination" in registration.describe()


def test_sdk_registration_refuses_other_classes() -> None:
    """sdk_registration is for conduit.Destination subclasses only."""
    with pytest.raises(TypeError, match="not a subclass of conduit.Destination"):
        sdk_registration(dict)


def test_sdk_servicer_enforces_no_call_order() -> None:
    """Upstream pin: the SDK's own DestinationPlugin servicer writes and acks a Run batch sent before Configure."""
    from conduit.destination import _DestinationServicer
    from connector.v2 import destination_pb2

    from harness.conduit.wire import records_to_proto

    written: list[int] = []

    class Recording(Scripted):
        async def write(self, records: list[conduit.Record]) -> None:
            written.append(len(records))

    servicer = _DestinationServicer(Recording(), Config)

    async def requests() -> Any:
        yield destination_pb2.Destination.Run.Request(records=records_to_proto([Record(position=b"1",
                                                                                       key=RawData(b"k"))]))

    async def acks() -> list[Any]:
        return [ack async for response in servicer.Run(requests(), None) for ack in response.acks]

    answered = run(acks())
    assert written == [1] and [(a.position, a.error) for a in answered] == [(b"1", "")]
