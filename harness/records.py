"""Records as Conduit's OpenCDC defines them, and their `opencdc/json` form."""

import base64
import builtins
import copy
import enum
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Operation",
    "RawData",
    "StructuredData",
    "Data",
    "Change",
    "Record",
    "record_to_json",
    "record_from_json",
    "dump_records",
    "load_records",
]


class Operation(str, enum.Enum):
    """What happened to the record's key at the source."""

    create = "create"
    update = "update"
    delete = "delete"
    snapshot = "snapshot"


class RawData(BaseModel):
    """Opaque bytes: `RawData(b"...")`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    raw: builtins.bytes = b""

    def __init__(self, raw: builtins.bytes = b"", /, **data: Any) -> None:
        if "raw" not in data:
            data["raw"] = raw
        super().__init__(**data)

    def bytes(self) -> builtins.bytes:
        """The raw bytes, unchanged."""
        return self.raw

    def __repr__(self) -> str:
        if len(self.raw) > 200:
            return f"RawData(<{len(self.raw)} bytes starting {self.raw[:16]!r}>)"
        return f"RawData({self.raw!r})"


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{path}: {text[:40]!r} has no UTF-8 form (lone surrogate)") from None


def _check_json_value(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} is not a finite number (JSON has no NaN or Infinity)")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} is not a string")
            _check_text(key, f"{path} key")
            _check_json_value(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_value(item, f"{path}[{index}]")
        return
    raise ValueError(f"{path}: {type(value).__name__} is not a JSON value")


class StructuredData(BaseModel):
    """A JSON object: `StructuredData({...})`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, data: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        if "data" not in kwargs:
            kwargs["data"] = {} if data is None else data
        super().__init__(**kwargs)

    @field_validator("data")
    @classmethod
    def _json_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json_value(value, "data")
        return value

    def bytes(self) -> builtins.bytes:
        """Canonical JSON: sorted keys, no spaces, UTF-8 with non-ASCII kept as is."""
        return json.dumps(
            self.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")

    def __repr__(self) -> str:
        return f"StructuredData({self.data!r})"


Data = RawData | StructuredData


class Change(BaseModel):
    """The state of the data before and after the operation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    before: Data | None = None
    after: Data | None = None

    def __repr__(self) -> str:
        parts = [f"{name}={value!r}" for name, value in (("before", self.before), ("after", self.after))
                 if value is not None]
        return f"Change({', '.join(parts)})"


class Record(BaseModel):
    """One change captured at a source, as a destination receives it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: bytes = b""
    operation: Operation = Operation.create
    metadata: dict[str, str] = Field(default_factory=dict)
    key: Data | None = None
    payload: Change = Field(default_factory=Change)

    def __repr__(self) -> str:
        """Readable and valid Python: defaults are left out, large payloads are shortened."""
        parts = [f"position={self.position!r}"]
        if self.operation is not Operation.create:
            parts.append(f"operation=Operation.{self.operation.value}")
        if self.metadata:
            parts.append(f"metadata={self.metadata!r}")
        parts.append(f"key={self.key!r}")
        parts.append(f"payload={self.payload!r}")
        return f"Record({', '.join(parts)})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _data_to_json(data: Data | None) -> Any:
    if data is None:
        return None
    if isinstance(data, RawData):
        return _b64(data.raw)
    return copy.deepcopy(data.data)  # the JSON form must not share dicts with the record


def _data_from_json(value: Any, field: str) -> Data | None:
    if value is None:
        return None
    if isinstance(value, str):
        return RawData(_unb64(value, field))
    if isinstance(value, dict):
        return StructuredData(value)
    raise ValueError(f"{field}: expected a base64 string, an object or null, got {type(value).__name__}")


def _unb64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as err:
        raise ValueError(f"{field}: not standard base64: {text[:40]!r}") from err


def record_to_json(record: Record) -> dict[str, Any]:
    """The record as Conduit's `opencdc/json` object (base64 for position and raw data)."""
    return {
        "position": _b64(record.position),
        "operation": record.operation.value,
        "metadata": dict(record.metadata),
        "key": _data_to_json(record.key),
        "payload": {
            "before": _data_to_json(record.payload.before),
            "after": _data_to_json(record.payload.after),
        },
    }


def record_from_json(obj: Mapping[str, Any]) -> Record:
    """A record from its `opencdc/json` object; raises ValueError naming the bad field."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - {"position", "operation", "metadata", "key", "payload"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    payload = obj.get("payload")
    payload = {} if payload is None else payload
    if not isinstance(payload, Mapping):
        raise ValueError("payload: expected an object")
    position = obj.get("position")
    position = "" if position is None else position
    if not isinstance(position, str):
        raise ValueError("position: expected a base64 string")
    return Record(
        position=_unb64(position, "position"),
        operation=Operation(obj.get("operation", "create")),
        metadata={} if obj.get("metadata") is None else obj["metadata"],
        key=_data_from_json(obj.get("key"), "key"),
        payload=Change(
            before=_data_from_json(payload.get("before"), "payload.before"),
            after=_data_from_json(payload.get("after"), "payload.after"),
        ),
    )


def dump_records(records: Iterable[Record]) -> str:
    """A batch as `opencdc/json` lines, one record per line."""
    return "".join(
        json.dumps(record_to_json(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records
    )


def load_records(text: str) -> list[Record]:
    """A batch from `opencdc/json` lines; raises ValueError naming the line that is wrong."""
    records: list[Record] = []
    # Split on "\n" only: str.splitlines would also split inside values at U+2028, U+2029 and U+0085,
    # which json.dumps(ensure_ascii=False) leaves unescaped. A CR before "\n" is JSON whitespace.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(record_from_json(json.loads(line)))
        except ValueError as err:  # json.JSONDecodeError and pydantic's ValidationError are ValueErrors
            raise ValueError(f"line {number}: {err}") from err
    return records

