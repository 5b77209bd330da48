"""What a destination's own Python code opens, renames and removes, seen through the interpreter's audit hooks.

Audit hooks (PEP 578) see every `open`/`os.open`, `os.rename`/`os.replace`, `os.remove`, `os.mkdir` and
`os.symlink` made by Python code in this process, on the real disk or a fake one, whatever module made it.
A hook cannot be removed once added, so one hook is installed on first use and records only inside
`recording()`.
"""

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["recording", "Event", "created_names", "changes"]

Event = tuple[str, tuple[Any, ...]]

_WATCHED = {"open", "os.rename", "os.remove", "os.mkdir", "os.symlink", "os.link", "os.rmdir", "os.truncate",
            "os.chmod", "shutil.rmtree"}
_active: list[list[Event]] = []
_lock = threading.Lock()
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _active and event in _WATCHED:
        _active[-1].append((event, args))


@contextmanager
def recording() -> Iterator[list[Event]]:
    """Records the watched events raised while the block runs (all threads of this process)."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
    events: list[Event] = []
    _active.append(events)
    try:
        yield events
    finally:
        _active.remove(events)


def _path(value: Any) -> str | None:
    if isinstance(value, int) or value is None:
        return None
    try:
        return os.fsdecode(value)
    except TypeError:
        return None


def created_names(events: list[Event], directory: str) -> set[str]:
    """Names directly in `directory` that the events opened for writing, created, renamed or linked."""
    names: set[str] = set()
    for event, args in events:
        candidates: list[Any] = []
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing:
                candidates.append(path)
        elif event in ("os.rename", "os.link", "os.symlink") and len(args) >= 2:
            candidates.extend(args[:2])
        elif event == "os.mkdir" and args:
            candidates.append(args[0])
        for candidate in candidates:
            path = _path(candidate)
            if path and os.path.dirname(os.path.abspath(path)) == os.path.abspath(directory):
                names.add(os.path.basename(path))
    return names


_CHANGING = {"os.rename", "os.remove", "os.mkdir", "os.symlink", "os.link", "os.rmdir", "os.truncate", "os.chmod",
             "shutil.rmtree"}


def changes(events: list[Event]) -> list[str]:
    """The events that create, change or remove something on disk, one readable line each (opens for reading
    and writes to /dev are left out)."""
    lines = []
    for event, args in events:
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            shown = _path(path)
            if writing and shown and not shown.startswith("/dev/"):
                lines.append(f"open({shown!r}, {mode or flags!r})")
        elif event in _CHANGING:
            lines.append(f"{event}({', '.join(repr(_path(a) or a) for a in args[:2])})")
    return lines
