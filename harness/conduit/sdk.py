"""Destinations written with Conduit's official Python SDK (`conduit.Destination`), checked in the same process.

The adapter does what the SDK's own gRPC servicer does, minus the socket: parameters come from the
config model (plus the SDK's `sdk.batch.*`), the config is parsed as the SDK parses it, and a
`BatchWriteError` becomes `WriteError(written=n)` with n the first index its accounting does not
mark written. Any other exception from `write` is passed on as it is (the SDK nacks the whole batch
without a count). Calls the lifecycle forbids are passed on too (the SDK guards nothing): an error
then becomes LifecycleError. Needs the `conduit` extra.
"""

import copy
import importlib.metadata
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from harness.behaviours import Behaviour
from harness.conduit.wire import NO_ACK_REASON, STRUCT_LIMITS, parameters_from_proto
from harness.config import Parameter
from harness.destination import LIFECYCLE
from harness.errors import ConfigError, LifecycleError, WriteError
from harness.records import Change, Data, Operation, RawData, Record, StructuredData
from harness.registration import ReadBack, Registration

# isort: split
import conduit  # noqa: E402  (after .wire, which explains a missing extra)
from conduit._batch import extract_batch_config, sdk_batch_parameters  # noqa: E402  the SDK's own parsing
from conduit._introspect import resolve_config_class  # noqa: E402
from conduit.errors import ConfigValidationError, format_validation_error  # noqa: E402

__all__ = ["SdkDestination", "is_sdk_destination", "sdk_registration", "to_sdk_record", "from_sdk_record"]

_OPERATIONS = {op: conduit.Operation[op.name.upper()] for op in Operation}
_OPERATIONS_BACK = {v: k for k, v in _OPERATIONS.items()}


def is_sdk_destination(obj: object) -> bool:
    """Whether `obj` is a class subclassing the SDK's `conduit.Destination`."""
    return inspect.isclass(obj) and issubclass(obj, conduit.Destination) and obj is not conduit.Destination


def _to_sdk_data(data: Data | None) -> Any:
    if data is None:
        return None
    return data.raw if isinstance(data, RawData) else copy.deepcopy(data.data)


def _from_sdk_data(data: Any) -> Data | None:
    if data is None:
        return None
    return RawData(bytes(data)) if isinstance(data, (bytes, bytearray)) else StructuredData(dict(data))


def to_sdk_record(record: Record) -> Any:
    """Our record as a `conduit.Record`; a key of None becomes b"", as an unset key arrives over the wire."""
    return conduit.Record(
        position=record.position,
        operation=_OPERATIONS[record.operation],
        metadata=dict(record.metadata),
        key=b"" if record.key is None else _to_sdk_data(record.key),
        payload=conduit.Change(before=_to_sdk_data(record.payload.before), after=_to_sdk_data(record.payload.after)),
    )


def from_sdk_record(record: Any) -> Record:
    """A `conduit.Record` as our record."""
    return Record(
        position=record.position,
        operation=_OPERATIONS_BACK[record.operation],
        metadata=dict(record.metadata),
        key=_from_sdk_data(record.key),
        payload=Change(before=_from_sdk_data(record.payload.before), after=_from_sdk_data(record.payload.after)),
    )


async def _call(method: Any, *args: Any) -> Any:
    result = method(*args)
    return await result if inspect.isawaitable(result) else result


def _bad_keys(err: pydantic.ValidationError) -> list[str]:
    return [str(e["loc"][0]) for e in err.errors() if e.get("loc")]


class SdkDestination:
    """An SDK destination class adapted to our interface, one instance per adapter."""

    transport = "sdk in-process"

    def __init__(self, destination_class: type) -> None:
        self.config_class = resolve_config_class(destination_class, conduit.Destination)
        self.inner = destination_class()
        self._state = "new"
        self.parameters()  # a config model the SDK cannot describe fails here, in the factory

    def __repr__(self) -> str:
        return f"SdkDestination({type(self.inner).__qualname__})"

    def _allows(self, method: str) -> bool:
        """Whether the lifecycle (CONTRACT.md: Lifecycle) allows `method` now (tracked only to read errors, never to
        refuse a call)."""
        return method in LIFECYCLE[self._state]

    def adapter_answers(self) -> dict[str, str]:
        """Each call whose answer comes from this adapter, not from the destination's code, with the reason (the
        same in every state; everything else is passed on to the destination as it is)."""
        # parameters() is not listed: the adapter derives it from the destination's own config class with the SDK's
        # functions, as the SDK's Specify does, so its names and descriptions are the destination's declaration.
        return {"ack": "an SDK destination has no ack (Conduit's destination protocol has none from the pipeline); "
                       "the adapter answers ack() itself: None while open, LifecycleError otherwise"}

    def parameters(self) -> Mapping[str, Parameter]:
        """The SDK's `sdk.batch.*` parameters plus those of the destination's config model (derived on every call)."""
        return parameters_from_proto({**sdk_batch_parameters(), **conduit.to_parameters(self.config_class)})

    async def configure(self, config: Mapping[str, str]) -> None:
        """Parses as the SDK does (its batch keys, then the model), then calls the destination's configure."""
        allowed = self._allows("configure")
        try:
            _, remaining = extract_batch_config(dict(config))
            parsed = self.config_class.model_validate(remaining)
            await _call(self.inner.configure, parsed)
        except ConfigValidationError as err:
            if not allowed:
                raise LifecycleError(f"configure() in state {self._state}: {err}") from err
            raise ConfigError(str(err), keys=[f.field for f in err.errors]) from err
        except pydantic.ValidationError as err:
            if not allowed:
                raise LifecycleError(f"configure() in state {self._state}: {err}") from err
            raise ConfigError(format_validation_error(err), keys=_bad_keys(err)) from err
        except Exception as err:
            if not allowed:
                raise LifecycleError(f"configure() in state {self._state}: {type(err).__name__}: {err}") from err
            raise ConfigError(f"configure failed: {type(err).__name__}: {err}") from err
        if allowed:
            self._state = "configured"

    async def open(self) -> None:
        """The destination's open."""
        allowed = self._allows("open")
        try:
            await _call(self.inner.open)
        except Exception as err:
            if not allowed:
                raise LifecycleError(f"open() in state {self._state}: {type(err).__name__}: {err}") from err
            self._state = "open failed"
            raise
        if allowed:
            self._state = "open"

    async def write(self, records: Sequence[Record]) -> int:
        """The destination's write; BatchWriteError becomes WriteError(written=first index not written)."""
        allowed = self._allows("write")
        batch = [to_sdk_record(r) for r in records]
        try:
            await _call(self.inner.write, batch)
        except conduit.BatchWriteError as err:
            written = min(set(range(len(batch))) - set(err.success), default=len(batch))
            if not allowed:
                raise LifecycleError(f"write() in state {self._state}: {err}") from err
            if written >= len(batch):
                # Every index marked written, yet an error: the SDK acks all of them.
                return len(batch)
            raise WriteError(str(err), written=written) from err
        except Exception as err:
            if not allowed:
                raise LifecycleError(f"write() in state {self._state}: {type(err).__name__}: {err}") from err
            raise
        return len(records)

    def ack(self, position: bytes) -> None:
        """Nothing to pass on (an SDK destination has no ack); LifecycleError outside open."""
        if not self._allows("ack"):
            raise LifecycleError(f"adapter: ack() in state {self._state}: acks exist only while open (an SDK "
                                 f"destination has no ack, so the adapter answers)")

    async def teardown(self) -> None:
        """The destination's teardown (called again on a second teardown, as the SDK would)."""
        self._state = "torn down"
        await _call(self.inner.teardown)

    # The lifecycle events, dispatched as the SDK's servicer does (on_created, on_updated, on_deleted; the SDK's
    # base class makes each a no-op).
    async def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        """The destination's on_created(config)."""
        await _call(self.inner.on_created, dict(config))

    async def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        """The destination's on_updated(before, after)."""
        await _call(self.inner.on_updated, dict(before), dict(after))

    async def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        """The destination's on_deleted(config)."""
        await _call(self.inner.on_deleted, dict(config))


def sdk_registration(
    destination_class: type,
    *,
    config: Mapping[str, str] | None = None,
    read_back: ReadBack | None = None,
    directory_param: str | None = None,
    valid_keys: Any = None,
    invalid_keys: Any = None,
    skip: Mapping[str, str] | None = None,
    name: str = "",
) -> Registration:
    """A Registration for a `conduit.Destination` subclass, checked in-process."""
    if not is_sdk_destination(destination_class):
        raise TypeError(f"{destination_class!r} is not a subclass of conduit.Destination")

    def factory() -> SdkDestination:
        return SdkDestination(destination_class)

    factory.__qualname__ = f"SdkDestination({destination_class.__qualname__})"
    where = f"{destination_class.__module__}.{destination_class.__qualname__}"
    return Registration(
        factory=factory,
        config=dict(config or {}),
        read_back=read_back,
        directory_param=directory_param,
        valid_keys=valid_keys,
        invalid_keys=invalid_keys,
        skip=dict(skip or {}),
        behaviours={Behaviour.NO_ACK_FROM_PIPELINE: NO_ACK_REASON},
        name=name,
        structured_data=STRUCT_LIMITS,
        transport="sdk in-process",
        describe=lambda: (f"Conduit Python SDK {importlib.metadata.version('conduit-connector-sdk')}, "
                          f"in-process: {where}"),
    )
