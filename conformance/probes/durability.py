"""Which failed fsyncs a write may not pass over: those on a file the destination keeps (contract v1.4).

A failed fsync may have dropped the data of the file it was called on (PostgreSQL's fsyncgate), so a write that
reports every record written after one breaks fault.io-error, unless the destination discarded that file (a
temporary file unlinked, never renamed into place): then nothing it keeps was lost. The injectors record the file of
every failed fsync and find it again by identity, through renames, hard links and unlinks. A file linked nowhere
was discarded; a directory, or a file that was there before the batch, still linked is kept; a file the batch
created and left linked (a temporary file a failed device would not let the destination remove, say) is kept when
read-back depends on it: moved out of the way for a moment, read-back of the keys in play changes. Read-back is the
ground truth: the records counted written must be there without it.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from conformance.execute.scratch import scratch_dir
from conformance.execute.session import Session
from conformance.probes.faults import FaultInjector, Unsynced
from conformance.probes.fuse import FuseInjector

__all__ = ["kept_unsynced"]


def kept_unsynced(s: Session, faults: FaultInjector | FuseInjector, keys: Collection[bytes] | None) -> list[str]:
    """The files a failed fsync of the batch was called on that the destination keeps (their names now, or the
    path at the fsync when the file could not be identified), judged right after the batch with no fault in force.
    `keys`: the keys read-back is compared on (None: all of them). Names are shown with the example's temporary
    directory as {tmp}, as the replay shows it."""
    kept: list[str] = []
    for unsynced in faults.unsynced():
        if _kept(s, unsynced, keys):
            kept.extend(unsynced.names or (unsynced.path,))
            s.subject.coverage["failed fsyncs on a file the destination keeps"] += 1
        else:
            s.subject.coverage["failed fsyncs on a file the destination discarded (not charged)"] += 1
    return sorted({name.replace(s.tmp, "{tmp}") for name in kept})


def _kept(s: Session, unsynced: Unsynced, keys: Collection[bytes] | None) -> bool:
    """Whether the destination keeps the file: not identified, a directory, or read-back depends on it."""
    names = unsynced.names
    if names is None:
        return True
    if not names:
        return False
    if any(os.path.isdir(name) and not os.path.islink(name) for name in names):
        return True
    if not unsynced.created or s.subject.registration.read_back is None:
        return True  # a file held before the batch (a log whose last lines undo nothing visible, say) is kept
    return _held(s.quiet_read_back(), keys) != _held(_read_back_without(s, names), keys)


def _read_back_without(s: Session, names: tuple[str, ...]) -> dict[bytes, bytes] | None:
    """Read-back with every name of the file moved out of the area (into a scratch directory on the same
    filesystem), then moved back; None when read-back raises meanwhile."""
    aside = scratch_dir("conformance-unsynced-")
    moved: list[tuple[str, str]] = []
    try:
        for i, name in enumerate(names):
            place = os.path.join(aside, str(i))
            os.rename(name, place)
            moved.append((name, place))
        return s.quiet_read_back()
    finally:
        for name, place in reversed(moved):
            os.rename(place, name)
        os.rmdir(aside)


def _held(held: dict[bytes, bytes] | None, keys: Collection[bytes] | None) -> dict[bytes, bytes] | None:
    """Read-back restricted to `keys` (None: unrestricted)."""
    if held is None or keys is None:
        return held
    return {key: value for key, value in held.items() if key in keys}
