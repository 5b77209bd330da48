"""Records the unit and connector tests write: n distinct ones, or one per (operation, key, after)."""

from typing import Any

from harness import Operation, RawData, Record
from harness.records import Change

__all__ = ["records", "changes"]


def records(n: int, start: int = 0) -> list[Record]:
    """n distinct records: position p<i>, key k<i>, for i from `start`."""
    return [Record(position=b"p%d" % i, key=RawData(b"k%d" % i)) for i in range(start, start + n)]


def changes(*items: tuple[Operation, Any, Any]) -> list[Record]:
    """One record per (operation, key, after), positions numbered from 0."""
    return [Record(position=b"%d" % i, operation=op, key=k, payload=Change(after=after))
            for i, (op, k, after) in enumerate(items)]
