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

__all__ = ["recording", "Event", "created_names", "created_paths", "changes", "changed_paths"]

Event = tuple[str, tuple[Any, ...]]

_WATCHED = {"open", "os.rename", "os.remove", "os.mkdir", "os.symlink", "os.link", "os.rmdir", "os.truncate",
            "os.chmod", "shutil.rmtree"}
_active: list[list[Event]] = []
_lock = threading.Lock()
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _active and event in _WATCHED:
        for events in _active:  # nested recordings (a check's own around the session's per-call one) all see it
            events.append((event, args))


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


def created_paths(events: list[Event], directory: str) -> set[bytes]:
    """Paths inside `directory` (relative to it, nested ones too) that the events opened for writing, created,
    renamed (either name) or linked."""
    area = os.path.abspath(directory)
    found: set[bytes] = set()
    for event, args in events:
        candidates: list[Any] = []
        if event == "open" and len(args) >= 3 and _writing(args[1], args[2]):
            candidates.append(args[0])
        elif event in ("os.rename", "os.link") and len(args) >= 2:
            candidates.extend(args[:2])
        elif event in ("os.symlink", "os.mkdir") and args:
            candidates.append(args[1] if event == "os.symlink" and len(args) >= 2 else args[0])
        for candidate in candidates:
            path = _path(candidate)
            if path and os.path.isabs(path):
                relative = os.path.relpath(os.path.normpath(path), area)
                if relative != "." and not relative.startswith(".." + os.sep) and relative != "..":
                    found.add(os.fsencode(relative))
    return found


def _writing(mode: Any, flags: Any) -> bool:
    return (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)))


def changed_paths(events: list[Event]) -> list[tuple[str, str, bool]]:
    """(what, path, whether it creates a directory) for every path the events create, change or remove: opens
    for writing, renames (both names), removals, links, directories, truncation and mode changes."""
    found: list[tuple[str, str, bool]] = []
    for event, args in events:
        paths: list[Any] = []
        if event == "open" and len(args) >= 3:
            if _writing(args[1], args[2]):
                paths.append(args[0])
            what = "opened for writing"
        elif event in ("os.rename", "os.link", "os.symlink"):
            paths.extend(args[:2] if event != "os.symlink" else args[1:2])
            what = {"os.rename": "renamed", "os.link": "linked", "os.symlink": "made a symlink at"}[event]
        elif event in _CHANGING and args:
            paths.append(args[0])
            what = {"os.remove": "removed", "os.mkdir": "made the directory", "os.rmdir": "removed the directory",
                    "os.truncate": "truncated", "os.chmod": "changed the mode of",
                    "shutil.rmtree": "removed the tree"}.get(event, event)
        for candidate in paths:
            path = _path(candidate)
            if path:
                found.append((what, path, event == "os.mkdir"))
    return found


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
