"""Records and parameters in Conduit's wire form (`opencdc.v1`, `config.v1`), via the official SDK's stubs.

Needs the `conduit` extra (`pip install '.[conduit]'`). Structured data travels as
`google.protobuf.Struct`, so every number becomes a float64: `STRUCT_LIMITS` says so, and the
conformance suite generates structured payloads that a Struct carries unchanged.
"""

from collections.abc import Iterable, Mapping
from typing import Any, Final

from harness.config import (
    Parameter,
    ParameterType,
    Validation,
    ValidationExclusion,
    ValidationGreaterThan,
    ValidationInclusion,
    ValidationLessThan,
    ValidationRegex,
    ValidationRequired,
)
from harness.records import Change, Data, Operation, RawData, Record, StructuredData

try:
    import conduit._grpc  # noqa: F401  (puts the SDK's generated stubs on sys.path)

    # isort: split
    from config.v1 import parameter_pb2  # type: ignore[import-not-found]
    from google.protobuf import struct_pb2
    from google.protobuf.json_format import MessageToDict
    from opencdc.v1 import opencdc_pb2  # type: ignore[import-not-found]
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"checking Conduit connectors needs the 'conduit' extra: pip install 'destination-conformance[conduit]' "
        f"(missing: {err.name})"
    ) from err

__all__ = [
    "STRUCT_LIMITS",
    "NO_ACK_REASON",
    "record_to_proto",
    "record_from_proto",
    "records_to_proto",
    "parameter_from_proto",
    "parameters_from_proto",
]

STRUCT_LIMITS: Final = "protobuf-struct"
"""Registration.structured_data for connectors reached over Conduit's protocol: Struct numbers are float64."""

NO_ACK_REASON = ("Conduit's destination protocol has no ack from the pipeline (acks flow from the connector to "
                 "Conduit), so ack() is the adapter's own no-op and there is nothing of the connector's to check")

_OPERATIONS = {
    Operation.create: opencdc_pb2.OPERATION_CREATE,
    Operation.update: opencdc_pb2.OPERATION_UPDATE,
    Operation.delete: opencdc_pb2.OPERATION_DELETE,
    Operation.snapshot: opencdc_pb2.OPERATION_SNAPSHOT,
}
_OPERATIONS_BACK = {v: k for k, v in _OPERATIONS.items()}


def _data_to_proto(data: Data | None) -> Any:
    if data is None:
        return opencdc_pb2.Data()  # neither oneof set: Go reads it as a nil Data
    if isinstance(data, RawData):
        return opencdc_pb2.Data(raw_data=data.raw)
    struct = struct_pb2.Struct()
    struct.update(data.data)
    return opencdc_pb2.Data(structured_data=struct)


def _data_from_proto(data: Any) -> Data | None:
    which = data.WhichOneof("data")
    if which == "raw_data":
        return RawData(data.raw_data)
    if which == "structured_data":
        return StructuredData(MessageToDict(data.structured_data))
    return None


def record_to_proto(record: Record) -> Any:
    """The record as an `opencdc.v1.Record` message."""
    return opencdc_pb2.Record(
        position=record.position,
        operation=_OPERATIONS[record.operation],
        metadata=dict(record.metadata),
        key=_data_to_proto(record.key),
        payload=opencdc_pb2.Change(before=_data_to_proto(record.payload.before),
                                   after=_data_to_proto(record.payload.after)),
    )


def records_to_proto(records: Iterable[Record]) -> list[Any]:
    """A batch as `opencdc.v1.Record` messages."""
    return [record_to_proto(r) for r in records]


def record_from_proto(message: Any) -> Record:
    """A record from an `opencdc.v1.Record` message (structured numbers come back as floats)."""
    return Record(
        position=message.position,
        operation=_OPERATIONS_BACK.get(message.operation, Operation.create),
        metadata=dict(message.metadata),
        key=_data_from_proto(message.key),
        payload=Change(before=_data_from_proto(message.payload.before),
                       after=_data_from_proto(message.payload.after)),
    )


_TYPES = {
    parameter_pb2.Parameter.TYPE_STRING: ParameterType.string,
    parameter_pb2.Parameter.TYPE_INT: ParameterType.int,
    parameter_pb2.Parameter.TYPE_FLOAT: ParameterType.float,
    parameter_pb2.Parameter.TYPE_BOOL: ParameterType.bool,
    parameter_pb2.Parameter.TYPE_FILE: ParameterType.file,
    parameter_pb2.Parameter.TYPE_DURATION: ParameterType.duration,
}


def _number(text: str, name: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"parameter {name!r}: {what} bound {text!r} is not a number") from None


def parameter_from_proto(name: str, message: Any) -> Parameter:
    """Our Parameter from a `config.v1.Parameter`; raises ValueError naming a validation it cannot read."""
    V = parameter_pb2.Validation
    validations: list[Validation] = []
    included: list[str] = []
    for v in message.validations:
        if v.type == V.TYPE_REQUIRED:
            validations.append(ValidationRequired())
        elif v.type == V.TYPE_GREATER_THAN:
            validations.append(ValidationGreaterThan(_number(v.value, name, "greater-than")))
        elif v.type == V.TYPE_LESS_THAN:
            validations.append(ValidationLessThan(_number(v.value, name, "less-than")))
        elif v.type == V.TYPE_INCLUSION:
            # Go joins the list with commas into one validation; the Python SDK sends one per value.
            included.extend(v.value.split(","))
        elif v.type == V.TYPE_EXCLUSION:
            validations.append(ValidationExclusion(tuple(v.value.split(","))))
        elif v.type == V.TYPE_REGEX:
            validations.append(ValidationRegex(v.value))
        else:
            raise ValueError(f"parameter {name!r}: unknown validation type {v.type}")
    if included:
        validations.append(ValidationInclusion(tuple(dict.fromkeys(included))))
    return Parameter(
        description=message.description,
        default=message.default or None,  # the wire has no "no default" but ""
        type=_TYPES.get(message.type, ParameterType.string),
        validations=tuple(validations),
    )


def parameters_from_proto(params: Mapping[str, Any]) -> dict[str, Parameter]:
    """Our parameters from a `map<string, config.v1.Parameter>`."""
    return {name: parameter_from_proto(name, message) for name, message in params.items()}
