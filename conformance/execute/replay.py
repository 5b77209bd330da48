"""Renders the calls of a failing example as a short Python snippet that replays it."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.generate.strategies import large_payload_origin
from harness import RawData, Record

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
    if isinstance(record.key, RawData) and repr(record.key) != f"RawData({record.key.raw!r})":
        text = text.replace(repr(record.key), f"RawData({record.key.raw!r})")  # keys in full: a replay needs them
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


FAKE_FILESYSTEM = "# run inside: with conformance.probes.faults.fake_filesystem() as faults:"


def _runnable(call: Call, indent: str) -> list[str]:
    """A call as statements that go on after it raises (printing what it raised), so the replay runs to its end."""
    if call.method == "setup":
        source = str(call.args[0])
        if source == FAKE_FILESYSTEM:
            return []
        source = source.replace("b'{tmp}", "os.fsencode(tmp) + b'").replace("'{tmp}", "tmp + '")
        return [f"{indent}{source}"]
    line = render_call(Call(call.method, call.args, "", call.shown), indent + "    ").lstrip()
    return [f"{indent}try:", f"{indent}    print({call.method!r}, '->', {line})" + (
        f"  # {call.outcome}" if call.outcome else ""),
            f"{indent}except Exception as err:", f"{indent}    print({call.method!r}, 'raised', repr(err))"]


def render_snippet(spec: str, config: Mapping[str, str] | None, calls: Sequence[Call]) -> str:
    """A runnable snippet (`python file.py` from any directory): load the registration, set up what the check
    set up (in a fake filesystem when the check used one), replay the calls (going on after one that raises),
    and print the read-back."""
    uses_large = any("large_payload(" in render_call(c) for c in calls if c.method == "write")
    fake = any(c.method == "setup" and c.args and c.args[0] == FAKE_FILESYSTEM for c in calls)
    lines = [
        "import errno, os, tempfile",
        "from harness import Change, Driver, Operation, RawData, Record, StructuredData, load_registration",
    ]
    if uses_large:
        lines.append("from conformance.generate.strategies import large_payload")
    if fake:
        lines.append("from conformance.probes.faults import fake_filesystem")
    lines.append(f"registration = load_registration({spec!r})")
    indent = "    "
    if fake:
        lines.append("with fake_filesystem() as faults:  # faults (a full disk, I/O errors) are injected in it")
        indent = "        "
    inner = indent[4:]
    # Removed at the end, also when a check left it read-only; a failed removal does not hide the replay's output.
    lines.append(f"{inner}with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:  # '{{tmp}}' in the "
                 "check's config and paths")
    inner, indent = indent, indent + "    "
    config_arg = ""
    if config is not None:
        lines.append(f"{inner}config = {{k: v.replace('{{tmp}}', tmp) for k, v in {dict(config)!r}.items()}}")
        config_arg = ", config=config"
    lines.append(f"{inner}with Driver(registration{config_arg}) as driver:")
    for call in calls:
        lines.extend(_runnable(call, indent))
    lines.append(f"{indent}if registration.read_back: print('read-back:', registration.read_back(driver.config))")
    return "\n".join(lines)
