"""The names a destination creates for itself in its area, from a dry run of a whole lifecycle.

A destination's own files (temporary files, compaction targets, locks, journals) share its area with the user's
keys and with whatever a symlink planted there points to. A dry run makes every call of a destination's life
(configure, OnCreated, open, a write with an overwrite and a delete, ack, teardown; with `events`, a second run with
OnUpdated and a third with OnDeleted) and records, through audit hooks (conformance.probes.audit), every path its
Python code opens for writing, creates, renames or links inside the area, in whichever call; transient names
(created then renamed away or removed) are seen too, which a snapshot taken afterwards never shows. The checks use
them twice: safety.no-symlink-follow plants symlinks at them, write.round-trip writes records under them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conformance.contract.checks import ClauseFailure
from conformance.contract.clauses import location_param
from conformance.execute.scratch import scratch_dir
from conformance.generate.model import key_bytes
from conformance.generate.strategies import numbered
from conformance.plugin._hypothesis_compat import bound_shrinking
from conformance.probes.audit import created_paths, recording
from harness import Change, Operation, RawData, Record
from harness.keys import key_problem
from harness.records import Data

if TYPE_CHECKING:
    from conformance.execute.session import Session
    from conformance.execute.subject import Subject

__all__ = ["OwnNames", "lifecycle_names", "registration_names", "with_successors", "DRY_RUN_KEYS", "NOT_REACHED"]

# Why a connector process' own names are not known: its file calls are beyond this process' audit hooks (the FUSE
# mount, which sees them, does not report the names it creates).
NOT_REACHED = ("names the destination creates itself not reached: a connector process' file calls are beyond "
               "audit hooks")

# The contract's keys the registration-wide dry run writes (a declared key space brings its own, drawn).
DRY_RUN_KEYS = (RawData(b"dry-run-a"), RawData(b"dry-run-b"))


@dataclass(frozen=True)
class OwnNames:
    """What a dry run saw: each path (relative to the area, bytes) with the first call that created it."""

    by_call: Mapping[bytes, str]
    in_process: bool  # False: a connector process, whose file calls audit hooks do not see

    @property
    def names(self) -> frozenset[bytes]:
        """Every path relative to the area, nested ones included."""
        return frozenset(self.by_call)

    def as_keys(self, subject: Subject) -> list[bytes]:
        """The names directly in the area that are valid keys under the registration's key rules, with the next
        number of a numbered one (a counter's next temporary name); none for a declared key space, whose rules
        the suite cannot test a name against."""
        if subject.registration.valid_keys is not None:
            return []
        names = {n for n in self.by_call if b"/" not in n}
        return sorted(n for n in with_successors(names, 1) if key_problem(n) is None)


def with_successors(names: set[bytes] | frozenset[bytes], count: int) -> set[bytes]:
    """`names` and the next `count` of any name ending in a number (temporary names often count up)."""
    more: set[bytes] = set(names)
    for name in names:
        digits = re.search(rb"(\d+)$", name)
        if digits:
            stem, number = name[: digits.start()], int(digits.group(1))
            more.update(stem + b"%d" % (number + step) for step in range(1, count + 1))
    return more


def _records(keys: Sequence[Data], payload: Data) -> list[list[Record]]:
    """The dry run's batches: every key written, then the first overwritten and the last removed."""
    first = [Record(key=k, payload=Change(after=payload)) for k in keys]
    second = [Record(operation=Operation.update, key=keys[0], payload=Change(after=payload)),
              Record(operation=Operation.delete, key=keys[-1], payload=Change())]
    return [numbered(first, 0), numbered(second, len(first))]


def lifecycle_names(subject: Subject, variant: Mapping[str, str], keys: Sequence[Data], payload: Data,
                    place: Callable[[str], str] | None = None, events: bool = False) -> OwnNames:
    """Runs a whole lifecycle writing `keys` (in `place`, which the caller reuses so that a name derived from the
    area's path is the same again) and returns every name it created in the area, except the keys themselves
    (for a directory destination, a key is a name). A dry run judges nothing: a failure in it (another clause's,
    which that clause's own check finds) ends the dry run with the names seen so far."""
    in_process = subject.registration.transport != "standalone"
    if location_param(subject.registration) is None or not in_process:
        return OwnNames({}, in_process)  # no area, or one whose file calls audit hooks cannot see (NOT_REACHED)
    root = None if place is not None else scratch_dir("conformance-own-names-")
    where = place or (lambda tmp: os.path.join(str(root), "dest"))
    seen: dict[bytes, str] = {}

    def call(s: Session, method: str, *args: object) -> None:
        with recording() as events_seen:
            try:
                s.attempt(method, *args)
            finally:  # a call that failed (another clause's finding) still made what it made
                for path in sorted(created_paths(events_seen, s.location)):
                    seen.setdefault(path, method)

    batches = _records(keys, payload)
    acks = [[("ack", (r.position,)) for r in batch] for batch in batches]
    runs: list[list[tuple[str, tuple[object, ...]]]] = [[
        ("configure", ()), ("lifecycle_on_created", ()), ("open", ()), ("write", (batches[0],)), *acks[0],
        ("write", (batches[1],)), *acks[1], ("teardown", ())]]
    if events:  # Conduit's later runs on the same store: OnUpdated before open, OnDeleted alone before teardown
        runs.append([("configure", ()), ("lifecycle_on_updated", ()), ("open", ()), ("write", (batches[0],)),
                     ("teardown", ())])
        runs.append([("lifecycle_on_deleted", ()), ("teardown", ())])
    pacer = subject.pacer
    paced = (pacer.failed_at, pacer.shrink_seconds, pacer.last_failure, pacer.hangs_at_failure)
    # Its sessions never end the check's run (a budget's deadline met inside it would end the example before the
    # check wrote anything): the deadline is the check's, for its own sessions.
    deadline, pacer.deadline = pacer.deadline, None
    try:
        for run in runs:
            with subject.session(directory=where, overlay=variant) as s:
                for method, args in run:
                    if method.startswith("lifecycle_on_"):
                        args = (s.config,) * (2 if method == "lifecycle_on_updated" else 1)
                    call(s, method, *args)
    except ClauseFailure:
        # Not the example's failure: the pace of the check goes on as before it (its budget, its shrinking).
        pacer.failed_at, pacer.shrink_seconds, pacer.last_failure, pacer.hangs_at_failure = paced
        bound_shrinking(paced[1])
    finally:
        pacer.deadline = deadline
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    if subject.registration.path_param is None:
        for key in keys:
            seen.pop(key_bytes(key), None)
    return OwnNames(seen, in_process)


_CACHE: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[object, OwnNames]] = {}


def registration_names(subject: Subject, variant: Mapping[str, str], keys: Sequence[Data],
                       payload: Data) -> OwnNames:
    """The registration's own names under `variant`, from one dry run of a whole lifecycle with its events, made
    once per registration and variant in this process (`keys` and `payload`: the first caller's)."""
    cache_key = (id(subject.registration), tuple(sorted(variant.items())))
    made = _CACHE.get(cache_key)
    if made is None or made[0] is not subject.registration:
        made = _CACHE[cache_key] = (subject.registration,
                                    lifecycle_names(subject, variant, keys, payload, events=True))
    return made[1]
