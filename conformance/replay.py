"""Renders the calls of a failing example as a short Python snippet that replays it."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness import RawData, Record

from .strategies import large_payload_origin

__all__ = ["Call", "render_call", "render_snippet", "render_records"]


@dataclass
class Call:
    """One call made on the destination in an example, and what came of it."""

    method: str
    args: tuple[Any, ...] = ()
    outcome: str = ""
    shown: tuple[Any, ...] | None = None  # how the arguments read in a snippet, when not as their repr


def _render_data(data: Any) -> str:
    if isinstance(data, RawData) and len(data.raw) > 200:
        origin = large_payload_origin(data.raw)
        if origin is not None:
            return f"large_payload({origin[0]}, {origin[1]})"
    return repr(data)


def _render_record(record: Record) -> str:
    text = repr(record)
    for data in (record.payload.before, record.payload.after):
        if isinstance(data, RawData) and len(data.raw) > 200:
            text = text.replace(repr(data), _render_data(data))
    return text


def render_records(records: Sequence[Record], indent: str = "    ") -> str:
    """A batch as a Python list literal, one record per line."""
    if not records:
        return "[]"
    body = "".join(f"{indent}    {_render_record(r)},\n" for r in records)
    return f"[\n{body}{indent}]"


def render_call(call: Call, indent: str = "    ") -> str:
    """One driver call as a line of Python, with its outcome as a comment."""
    if call.method == "write":
        args = render_records(call.args[0], indent)
    elif call.method == "setup":
        return f"{indent}{call.args[0]}"
    else:
        args = ", ".join(repr(a) for a in (call.args if call.shown is None else call.shown))
    line = f"{indent}driver.{call.method}({args})"
    return f"{line}  # {call.outcome}" if call.outcome else line


def render_snippet(spec: str, config: Mapping[str, str] | None, calls: Sequence[Call]) -> str:
    """A runnable snippet: load the registration, replay the calls, print the read-back."""
    uses_large = any("large_payload(" in render_call(c) for c in calls if c.method == "write")
    lines = [
        "import os",
        "from harness import Change, Driver, Operation, RawData, Record, StructuredData, load_registration",
    ]
    if uses_large:
        lines.append("from conformance.strategies import large_payload")
    lines.append(f"registration = load_registration({spec!r})")
    config_arg = f", config={dict(config)!r}" if config is not None else ""
    lines.append(f"with Driver(registration{config_arg}) as driver:  # '{{tmp}}' becomes a fresh temp dir")
    lines.extend(render_call(c) for c in calls)
    lines.append("    if registration.read_back: print(registration.read_back(driver.config))")
    return "\n".join(lines)
