"""What a destination should hold after a sequence of writes: a dict of key bytes to value bytes."""

from collections.abc import Iterable, Mapping, Sequence

from harness import RawData, Record
from harness.records import Data

__all__ = ["Model", "key_bytes", "differences", "after_a_failed_batch"]


def key_bytes(key: Data | None) -> bytes:
    """How a key appears in read-back: raw bytes as they are, structured keys as canonical JSON."""
    if key is None:
        raise ValueError("a record without a key has no place in read-back")
    return key.raw if isinstance(key, RawData) else key.bytes()


class Model:
    """The expected read-back: each key maps to the after.bytes() of its last record; after=None removes it."""

    def __init__(self, initial: Mapping[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(initial or {})

    def apply(self, records: Iterable[Record]) -> "Model":
        """Applies records in order and returns self."""
        for record in records:
            key = key_bytes(record.key)
            if record.payload.after is None:
                self.data.pop(key, None)
            else:
                self.data[key] = record.payload.after.bytes()
        return self

    def copy(self) -> "Model":
        """An independent copy."""
        return Model(self.data)


def after_a_failed_batch(model: Model, batch: Sequence[Record], written: int,
                         held: Mapping[bytes, bytes] | None) -> Model:
    """What a batch that raised WriteError(written) may leave, the one rule every check uses: records[:written]
    applied and nothing after records[written], which itself is either absent or whole (its data complete, its
    durability failed). Applies the batch to `model` that way, choosing "whole" only when read-back `held` shows
    it, and returns `model`."""
    without = model.copy().apply(batch[:written])
    if held is not None and written < len(batch):
        whole = without.copy().apply(batch[written:written + 1])
        if whole.data != without.data and dict(held) == whole.data:
            model.data = whole.data
            return model
    model.data = without.data
    return model


def _preview(value: bytes) -> str:
    return repr(value) if len(value) <= 60 else f"<{len(value)} bytes starting {value[:24]!r}>"


def differences(expected: Mapping[bytes, bytes], actual: Mapping[bytes, bytes], limit: int = 10) -> list[str]:
    """Readable lines saying how `actual` read-back differs from `expected` (empty when equal)."""
    lines: list[str] = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            lines.append(f"missing    {key!r}: expected {_preview(expected[key])}")
        elif key not in expected:
            lines.append(f"unexpected {key!r}: holds {_preview(actual[key])}")
        elif expected[key] != actual[key]:
            lines.append(f"different  {key!r}: expected {_preview(expected[key])}, found {_preview(actual[key])}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines
