"""What a written batch exercised: its coverage classes (the report's figures) and its write.round-trip evidence."""

from typing import Any

from conformance.contract.clauses import payload_band
from conformance.generate.strategies import escapable_key
from conformance.generate.witnesses import witness_key_labels
from harness import RawData, StructuredData

__all__ = ["size_class", "key_class", "payload_class", "round_trip_labels"]


def size_class(n: int) -> str:
    """A batch size's class in the coverage figures."""
    return "0" if n == 0 else "1" if n == 1 else "2-8" if n <= 8 else "9-64" if n <= 64 else ">64"


def key_class(key: Any) -> str:
    """A key's class in the coverage figures (the ways keys go wrong as paths)."""
    if key is None:
        return "none"
    if isinstance(key, StructuredData):
        return "structured"
    raw = key.raw
    if not raw:
        return "empty"
    if b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        return "path-like"
    if len(raw) > 255:
        return "over 255 bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if len(raw) >= 250:
        return "250-255 bytes"
    return "ASCII" if text.isascii() else "non-ASCII UTF-8"


def payload_class(data: Any) -> str:
    """A payload's class in the coverage figures."""
    if data is None:
        return "none (delete)"
    if isinstance(data, StructuredData):
        return "structured"
    n = len(data.raw)
    return "empty" if n == 0 else "large (>= 1 MiB)" if n >= 1 << 20 else "raw"


def round_trip_labels(batch: list[Any], held: set[bytes]) -> list[str]:
    """The write.round-trip evidence a whole batch gives once read-back matches; updates `held` (keys stored)."""
    labels = []
    for record in batch:
        key, after = record.key, record.payload.after
        operation = getattr(record.operation, "value", str(record.operation))
        labels.append(f"{operation} with after" if after is not None else f"{operation} with after=None")
        if isinstance(after, StructuredData):
            labels.append("structured payload")
        elif after is not None:
            labels.append(payload_band(len(after.raw)))
        if isinstance(key, RawData):
            raw = key.raw
            if raw in held:
                labels.append("overwrite of a written key" if after is not None else "removal of a written key")
            if 250 <= len(raw) <= 255:
                labels.append("key of 250 to 255 bytes")
            if 128 <= len(raw) <= 255 and escapable_key(raw):
                labels.append("long key of escapable characters")
            if not raw.isascii():
                labels.append("non-ASCII key")
            if after is None:
                held.discard(raw)
            else:
                held.add(raw)
    stored = [r.key.raw for r in batch if isinstance(r.key, RawData) and r.payload.after is not None]
    return labels + witness_key_labels(stored, held)
