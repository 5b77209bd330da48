"""What became of each record of a pipeline example: the replay source's log, the values read-back may show, and
the at-least-once accounting (Jepsen's set analysis) of what Conduit acknowledged against what the destination holds."""

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.generate.model import Model, key_bytes
from harness import Record

__all__ = ["Accounting", "account", "held_since", "read_log"]


def read_log(path: str) -> list[dict[str, Any]]:
    """The events a replay source logged, positions decoded (a line cut short by a kill is left out)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            event["position"] = base64.b64decode(event.get("position", ""))
            events.append(event)
    return events


def held_since(records: Sequence[Record], acked: int) -> dict[bytes, set[bytes | None]]:
    """Per key, the values read-back may show once records[:acked] are acknowledged: the value after the last
    acknowledged record of the key, or after any later record (None: the key absent)."""
    model = Model().apply(records[:acked])
    allowed: dict[bytes, set[bytes | None]] = {}
    for record in records:
        allowed.setdefault(key_bytes(record.key), set())
    for key in allowed:
        allowed[key].add(model.data.get(key))
    for record in records[acked:]:
        model.apply([record])
        key = key_bytes(record.key)
        allowed[key].add(model.data.get(key))
    return allowed


@dataclass
class Accounting:
    """What became of each record of a pipeline example, by position (Jepsen's set analysis, for a destination
    whose read-back holds each key's latest value): the contract is at-least-once, so `lost` and `unexpected`
    break it, and so would a duplicate that no redelivery explains; redeliveries and recoveries are counted."""

    records: int = 0
    acked: int = 0  # records Conduit acknowledged to the source
    lost: list[bytes] = field(default_factory=list)  # acknowledged, and read-back holds neither it nor a later record
    unexpected: list[str] = field(default_factory=list)  # keys, or values of keys, no record gave
    duplicated: list[bytes] = field(default_factory=list)  # emitted (or received) more than once: redeliveries
    unexplained: list[bytes] = field(default_factory=list)  # received more often than the source emitted them
    recovered: list[bytes] = field(default_factory=list)  # in flight at a kill, acknowledged and held after it
    superseded: int = 0  # records whose key a later record wrote: read-back cannot show them, nor their loss

    def broken(self) -> bool:
        """Whether the accounting breaks at-least-once delivery."""
        return bool(self.lost or self.unexpected or self.unexplained)

    def summary(self) -> str:
        """One paragraph: the counts, then the first few positions of each kind that breaks the contract."""
        text = (f"Accounting ({self.records} records, {self.acked} acknowledged): lost {len(self.lost)}, "
                f"duplicated {len(self.duplicated)} (redeliveries, allowed), unexpected {len(self.unexpected)}, "
                f"recovered {len(self.recovered)}; {self.superseded} overwritten by a later record of their key "
                "(not observable)")
        if self.unexplained:
            text += f"; {len(self.unexplained)} received more often than the source emitted them"
        for label, items in (("lost", [_position(p) for p in self.lost]), ("unexpected", self.unexpected),
                             ("duplicated without a redelivery", [_position(p) for p in self.unexplained])):
            if items:
                text += f"\n      {label}: " + ", ".join(items[:10]) + (" ..." if len(items) > 10 else "")
        return text


def account(records: Sequence[Record], events: Sequence[Mapping[str, Any]], held: Mapping[bytes, bytes],
            received: Sequence[bytes] | None = None, left_behind: frozenset[bytes] = frozenset()) -> Accounting:
    """The accounting of a drained example: `events` the source's log, `held` the final read-back, `received` the
    positions a served destination noted (None for a connector's own command), `left_behind` names tolerated."""
    result = Accounting(records=len(records))
    acks = {e["position"] for e in events if e["event"] == "ack"}
    emitted: dict[bytes, int] = {}
    for e in events:
        if e["event"] == "read":
            emitted[e["position"]] = emitted.get(e["position"], 0) + 1
    got: dict[bytes, int] = {}
    for position in received or ():
        got[position] = got.get(position, 0) + 1
    # In flight at a kill: emitted before the source was opened again, not acknowledged by then.
    opens = [i for i, e in enumerate(events) if e["event"] == "open"]
    before = events[:opens[1]] if len(opens) > 1 else []
    in_flight = {e["position"] for e in before if e["event"] == "read"} - {e["position"] for e in before
                                                                          if e["event"] == "ack"}
    result.acked = sum(1 for r in records if r.position in acks)
    last: dict[bytes, int] = {}
    for i, record in enumerate(records):
        last[key_bytes(record.key)] = i
    final = Model().apply(records).data
    for i, record in enumerate(records):
        key, position = key_bytes(record.key), record.position
        if max(emitted.get(position, 0), got.get(position, 0)) > 1:
            result.duplicated.append(position)
        if got.get(position, 0) > max(emitted.get(position, 0), 1):
            result.unexplained.append(position)
        if last[key] != i:
            result.superseded += 1
            continue
        if held.get(key) == final.get(key):
            if position in in_flight and position in acks:
                result.recovered.append(position)
            continue
        values = _values_of(records, key)
        if held.get(key) not in values:
            result.unexpected.append(f"{key!r:.60} = {held.get(key)!r:.60}")
        if position in acks:
            result.lost.append(position)
    keys = {key_bytes(r.key) for r in records}
    result.unexpected += [f"{key!r:.60} (no record's key)" for key in sorted(held) if key not in keys
                          and key not in left_behind]
    return result


def _values_of(records: Sequence[Record], key: bytes) -> set[bytes | None]:
    """Every value `key` takes as the records are applied in order, absence included."""
    model = Model()
    values: set[bytes | None] = {None}
    for record in records:
        model.apply([record])
        if key_bytes(record.key) == key:
            values.add(model.data.get(key))
    return values


def _position(position: bytes) -> str:
    from conformance.generate.strategies import position_index

    index = position_index(position)
    return f"#{index} {position!r:.40}" if index is not None else f"{position!r:.40}"
