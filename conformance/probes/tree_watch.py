"""What is created in a watched environment tree while a session runs, each entry named by the call it appeared in.

The end-of-session look at a tree ($TMPDIR, $HOME, $XDG_*) sees only what is left: a lock file open() creates and
teardown() removes is gone by then. Linux inotify sees every creation as it happens. The tree starts as a few empty
directories, so anything deeper down needs a creation in one of them first; a directory that appears is watched in
turn, so what goes into it is named too. Events are read after each call (the kernel queues them during the
syscall, so a call's own creations are all there once it has returned) and charged to that call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["TreeWatch", "unavailable", "watch_fds"]

try:  # Linux only (pyproject installs it there)
    import inotify_simple
except ImportError as err:  # pragma: no cover - other platforms
    inotify_simple = None
    _IMPORT_ERROR: str | None = f"inotify_simple cannot be imported ({err}; Linux only)"
else:
    _IMPORT_ERROR = None

# What makes a name appear or go: created, moved in, removed, moved out.
_CREATED = ("CREATE", "MOVED_TO")
_GONE = ("DELETE", "MOVED_FROM")


class _Shared:
    """The process' one inotify instance: closing one that has held watches waits for the kernel (synchronize_srcu),
    longer than a whole session takes, so sessions add and remove watches on one instance instead; each event goes to
    the watch that owns its watch descriptor."""

    def __init__(self) -> None:
        assert inotify_simple is not None
        self.inotify = inotify_simple.INotify()
        self.owners: dict[int, TreeWatch] = {}

    def pump(self) -> None:
        """Hands every queued event to the watch that owns it."""
        while True:
            events = list(self.inotify.read(timeout=0))
            if not events:
                return
            for event in events:
                if event.mask & inotify_simple.flags.Q_OVERFLOW:
                    for owner in set(self.owners.values()):
                        owner.pending.append(event)
                elif event.wd in self.owners:
                    self.owners[event.wd].pending.append(event)


_SHARED: list[_Shared] = []


def _shared() -> _Shared:
    if not _SHARED:
        _SHARED.append(_Shared())
    return _SHARED[0]


def watch_fds() -> set[int]:
    """The inotify descriptor this process holds for watched trees: the suite's, never a destination's."""
    return {shared.inotify.fileno() for shared in _SHARED}


def unavailable() -> str | None:
    """Why no tree can be watched on this platform, or None."""
    return _IMPORT_ERROR


class TreeWatch:
    """Every name created under `root` (and, later, removed) from now on, with the call it happened in."""

    def __init__(self, root: str) -> None:
        if inotify_simple is None:
            raise OSError(_IMPORT_ERROR)
        flags = inotify_simple.flags
        self._mask = (flags.CREATE | flags.MOVED_TO | flags.DELETE | flags.MOVED_FROM | flags.ONLYDIR
                      | flags.DONT_FOLLOW)
        self._flags: Any = flags
        self.root = root
        self._shared = _shared()
        self._dirs: dict[int, str] = {}  # watch descriptor -> directory, relative to root ("" for root)
        self.pending: list[Any] = []  # events the shared instance handed over, not yet charged
        self.created: dict[str, str] = {}  # relative path -> the call it first appeared in
        self.removed: dict[str, str] = {}  # relative path -> the call it last went in
        self.lost = ""  # the call during which the kernel's event queue overflowed, if it did
        self._shared.pump()  # what is queued from before is not this watch's
        for directory, _, _ in os.walk(root):
            self._add(os.path.relpath(directory, root))
        if not self._dirs:
            raise OSError(f"cannot watch {root}")

    @property
    def watching(self) -> bool:
        """Whether the watch still holds watch descriptors (until close)."""
        return bool(self._dirs)

    def _add(self, relative: str) -> None:
        relative = "" if relative == "." else relative
        try:
            wd = self._shared.inotify.add_watch(os.path.join(self.root, relative), self._mask)
        except OSError:
            return  # gone again already, or not a directory: its creation is what is reported
        self._dirs[wd] = relative
        self._shared.owners[wd] = self

    def take(self, when: str) -> None:
        """Charges every event queued since the last take to `when` (a call, as the failure names it)."""
        self._shared.pump()
        events, self.pending = self.pending, []
        for event in events:
            if event.mask & self._flags.Q_OVERFLOW:
                self.lost = self.lost or when
                continue
            parent = self._dirs.get(event.wd)
            if parent is None or not event.name:
                continue
            relative = os.path.join(parent, event.name) if parent else event.name
            names = {f.name for f in self._flags.from_mask(event.mask)}
            if names & set(_CREATED):
                self.created.setdefault(relative, when)
                self.removed.pop(relative, None)
                if "ISDIR" in names:
                    self._add(relative)
            elif names & set(_GONE) and relative in self.created:
                self.removed[relative] = when

    def forget(self) -> None:
        """Drops what appeared since the last take (someone else's doing)."""
        before = dict(self.created), dict(self.removed)
        self.take("")
        self.created, self.removed = before

    def findings(self, shown: Callable[[str], str], limit: int = 5) -> list[str]:
        """What was created, in words: `open() created $TMPDIR/x.lock (removed by teardown())`."""
        lines = []
        for relative, when in self.created.items():  # in the order they appeared
            gone = self.removed.get(relative)
            lines.append(f"{when} created {shown(relative)}" + (f" (removed by {gone})" if gone else ""))
        if self.lost:
            lines.append(f"more creations than the kernel's event queue holds, from {self.lost} on")
        return lines[:limit]

    def close(self) -> None:
        """Removes this watch's watch descriptors (the shared instance stays, for the next session)."""
        for wd in self._dirs:
            if self._shared.owners.get(wd) is self:
                del self._shared.owners[wd]
                try:
                    self._shared.inotify.rm_watch(wd)
                except OSError:
                    pass  # the directory is gone, and its watch with it
        self._dirs.clear()
        self.pending.clear()
