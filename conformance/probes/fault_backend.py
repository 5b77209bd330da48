"""Which fault injector an example runs under: pyfakefs where it sees the destination's I/O, FUSE where it cannot.

pyfakefs (conformance.probes.faults) is fast and needs nothing, but sees only I/O made through Python's os and io
in this process. A standalone connector (another process) and a destination whose I/O bypasses it (C code such as
sqlite3, found by a probe: configure and open inside a fake filesystem) get the FUSE filesystem
(conformance.probes.fuse) instead; where FUSE cannot be used, the check is not checked, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance.contract.clauses import location_param
from conformance.execute.subject import Subject
from conformance.probes.faults import FaultInjector, fake_filesystem
from conformance.probes.fuse import FuseInjector, FuseUnavailable, fuse_filesystem, unavailable

__all__ = ["Injector", "NEEDS_FUSE", "OTHER_PROCESS", "fault_filesystem", "needs_fuse", "uses_fuse"]

Injector = FaultInjector | FuseInjector
NEEDS_FUSE = "not checked: needs FUSE ({reason}), as the destination's I/O is out of pyfakefs' reach ({why})"
PROBED = "fake filesystem works"
OTHER_PROCESS = ("not checked: the connector runs in its own process, and names no directory or file the FUSE fault "
                 "filesystem could be put under")  # the probe's coverage key, shared with write_model's


def _fake_filesystem_works(subject: Subject) -> bool:
    """Whether configure and open work inside a fake filesystem with the destination's directory in it; asked once
    per clause."""
    if PROBED not in subject.coverage:
        works = False
        with fake_filesystem() as faults, subject.session() as s:
            if s.configure().ok and s.attempt("open").ok and s.location:
                works = os.path.isdir(s.location) and not faults.exists_on_real_disk(s.location)
        subject.coverage[PROBED] = int(works)
        subject.examples -= 1  # a probe, not an example
    return bool(subject.coverage[PROBED])


def needs_fuse(subject: Subject) -> str | None:
    """Why the destination's faults must be injected through FUSE (None: pyfakefs sees its I/O, or there is no
    directory or file to put on a mount)."""
    if location_param(subject.registration) is None:
        if subject.registration.transport == "standalone":
            pytest.skip(OTHER_PROCESS)
        return None
    if subject.registration.transport == "standalone":
        return "the connector runs in its own process"
    if os.environ.get("CONFORMANCE_FAULTS", "") == "fuse":
        return "CONFORMANCE_FAULTS=fuse"
    if not _fake_filesystem_works(subject):
        return "its file I/O bypasses Python's os and io, as C code does"
    return None


def uses_fuse(faults: Injector) -> bool:
    """Whether the example runs on the FUSE mount."""
    return isinstance(faults, FuseInjector)


@contextmanager
def fault_filesystem(subject: Subject) -> Iterator[Injector]:
    """The fault injector for one example of `subject`: pyfakefs, or FUSE where pyfakefs cannot see the I/O; where
    FUSE is needed but unavailable, skips as not checked with the reason."""
    why = needs_fuse(subject)
    if why is None:
        with fake_filesystem() as faults:
            yield faults
        return
    reason = unavailable()
    if reason is not None:
        pytest.skip(NEEDS_FUSE.format(reason=reason, why=why))
    context = fuse_filesystem()
    try:
        mounted: FuseInjector = context.__enter__()
    except FuseUnavailable as err:
        pytest.skip(NEEDS_FUSE.format(reason=err, why=why))
    try:
        yield mounted
    except BaseException as err:
        if not context.__exit__(type(err), err, err.__traceback__):
            raise
    else:
        context.__exit__(None, None, None)
