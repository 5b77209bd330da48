"""A failed fsync is charged only on a file the destination keeps (contract v1.4, fault.io-error): the injectors
(pyfakefs and the FUSE filesystem) follow the file a failed fsync was called on through renames, hard links and
unlinks, and conformance.probes.durability judges what read-back depends on.

The destinations here are blind-audit ones (tests/zoo/blind3): ctl_wal_compact fsyncs its compaction's temporary
file inside write and discards it when that fails (v1.3's wording charged it), jsonl_fsync_swallowed ignores a
failed fsync of its log. Suite runs use the derandomized quick profile without shrinking (tests/suite_runs.py).
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from conformance.execute.session import Session
from conformance.probes import fuse as fusefs
from conformance.probes.durability import kept_unsynced
from conformance.probes.faults import FaultInjector, Unsynced, fake_filesystem, swallowed_fsync
from tests.suite_runs import dump, run_suite

Injector = FaultInjector | fusefs.FuseInjector


@pytest.fixture(params=["pyfakefs", "fuse"])
def injector(request: pytest.FixtureRequest) -> Iterator[Callable[[], AbstractContextManager[Injector]]]:
    """Each injector in turn: a pyfakefs filesystem, or a directory on this process' FUSE mount."""
    if request.param == "pyfakefs":
        yield fake_filesystem
        return
    request.getfixturevalue("fuse_here")  # tests/conftest.py: skip without FUSE, fail under CI
    yield fusefs.fuse_filesystem
    fusefs.unmount_all()


def _area(faults: Injector) -> str:
    """A fresh directory to work in, inside the injector."""
    if isinstance(faults, fusefs.FuseInjector):
        place = os.path.join(faults.area, "work")
    else:
        place = "/work-area"
    os.makedirs(place)
    return place


def _failed_fsync(faults: Injector, path: str) -> None:
    """Writes `path` and has its fsync fail (EIO, injected), as a destination that ignores it would."""
    faults.inject("fsync", errno.EIO, 1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, b"data")
        with pytest.raises(OSError) as raised:
            os.fsync(fd)
        assert raised.value.errno == errno.EIO
    finally:
        os.close(fd)


def test_a_discarded_file_is_linked_nowhere(injector: Callable[[], AbstractContextManager[Injector]]) -> None:
    """A temporary file unlinked after its fsync failed: found under no name, even once a new file may reuse its
    inode number."""
    with injector() as faults:
        area = _area(faults)
        temp = os.path.join(area, "state.tmp")
        _failed_fsync(faults, temp)
        os.unlink(temp)
        faults.clear()
        with open(os.path.join(area, "state.tmp"), "wb") as f:  # the same name again, a new file
            f.write(b"other")
        assert faults.unsynced() == [Unsynced(temp, (), created=True)]


def test_a_file_renamed_into_place_is_found_under_its_new_name(
        injector: Callable[[], AbstractContextManager[Injector]]) -> None:
    """A temporary file renamed over the key after its fsync failed (the fsync error ignored), then hard-linked
    and its first name removed: found under the names it has now."""
    with injector() as faults:
        area = _area(faults)
        temp, key, link = (os.path.join(area, name) for name in ("k.tmp", "k", "k.bak"))
        _failed_fsync(faults, temp)
        os.rename(temp, key)
        faults.clear()
        assert faults.unsynced() == [Unsynced(temp, (key,), created=True)]
        os.link(key, link)
        os.unlink(key)
        assert faults.unsynced() == [Unsynced(temp, (link,), created=True)]


def test_a_file_held_before_the_plan_is_not_created_by_the_batch(
        injector: Callable[[], AbstractContextManager[Injector]]) -> None:
    """A log that existed when the plan was set, its fsync failed: still linked, and not the batch's."""
    with injector() as faults:
        area = _area(faults)
        log = os.path.join(area, "log")
        with open(log, "wb") as f:
            f.write(b"before\n")
        faults.inject("fsync", errno.EIO, 1)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"more\n")
            with pytest.raises(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)
        faults.clear()
        assert faults.unsynced() == [Unsynced(log, (log,), created=False)]


def test_a_new_plan_forgets_the_last_batch_failed_fsyncs(
        injector: Callable[[], AbstractContextManager[Injector]]) -> None:
    """Each batch is judged on its own failed fsyncs: inject() and count() start afresh."""
    with injector() as faults:
        area = _area(faults)
        _failed_fsync(faults, os.path.join(area, "a"))
        faults.clear()
        assert len(faults.unsynced()) == 1
        faults.count()
        assert faults.unsynced() == []


class _Session:
    """What kept_unsynced uses of a Session: read-back of a log of put/delete lines, the coverage, the temp dir."""

    def __init__(self, log: str) -> None:
        self.tmp = os.path.dirname(log)
        self.log = log
        self.subject = SimpleNamespace(registration=SimpleNamespace(read_back=self.quiet_read_back),
                                       coverage=Counter[str]())

    def quiet_read_back(self, config: object = None) -> dict[bytes, bytes]:
        held: dict[bytes, bytes] = {}
        if os.path.exists(self.log):
            for line in Path(self.log).read_bytes().splitlines():
                op, key, *value = line.split(b" ")
                if op == b"put":
                    held[key] = value[0]
                else:
                    held.pop(key, None)
        return held


@pytest.mark.parametrize("before", [True, False])
def test_a_file_read_back_cannot_tell_apart_is_kept_only_if_it_was_there_before(before: bool) -> None:
    """A log whose failed fsync came after a delete: read-back is the same with the log moved aside (the key is
    absent either way), yet a log held before the batch is kept (losing its last line brings the key back); a file
    the batch created that read-back does not depend on (a leftover) is not. The log is moved back afterwards."""
    with fake_filesystem() as faults:
        area = _area(faults)
        log = os.path.join(area, "log")
        if before:
            Path(log).write_bytes(b"put a 1\n")
        faults.inject("fsync", errno.EIO, 1)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"del a\n")
            with pytest.raises(OSError):
                os.fsync(fd)
        finally:
            os.close(fd)
        faults.clear()
        session = _Session(log)
        kept = kept_unsynced(cast(Session, session), faults, {b"a"})
        assert kept == (["{tmp}/log"] if before else [])
        assert os.listdir(area) == ["log"] and session.quiet_read_back() == {}
        label = "keeps" if before else "discarded (not charged)"
        assert session.subject.coverage[f"failed fsyncs on a file the destination {label}"] == 1


def test_only_a_kept_file_is_charged() -> None:
    """swallowed_fsync asks for the kept files only once the write returned whole after an fsync fault fired."""
    asked: list[int] = []

    def kept(files: list[str]) -> Callable[[], list[str]]:
        return lambda: asked.append(1) or files

    assert swallowed_fsync("fsync", True, True, kept([])) is None
    message = swallowed_fsync("fsync", True, True, kept(["{tmp}/db/log"]))
    assert message is not None and "'{tmp}/db/log'" in message and "which the destination keeps" in message
    assert swallowed_fsync("fsync", True, False, kept(["x"])) is None  # WriteError: nothing swallowed
    assert swallowed_fsync("write", True, True, kept(["x"])) is None
    assert len(asked) == 2


def test_a_discarded_compaction_file_is_not_charged(tmp_path: Path) -> None:
    """ctl_wal_compact (compact=1) fsyncs its compaction's temporary file inside write; when that fsync fails it
    removes the file (or, on a device gone bad, leaves it, read by nothing) and the records stay in the WAL:
    fault.io-error passes, with the discarded fsyncs on the record."""
    spec = "tests.zoo.blind3.ctl_wal_compact:registration"
    run = run_suite(tmp_path, spec, args=("--conformance-clause=fault.io-error",))
    assert run.verdicts(spec)["fault.io-error"] == "passed", dump(run, spec)
    coverage = run.report["destinations"][spec]["clauses"]["fault.io-error"]["coverage"]
    assert coverage.get("failed fsyncs on a file the destination discarded (not charged)", 0) > 0, coverage
    assert "failed fsyncs on a file the destination keeps" not in coverage, coverage


def test_a_failed_fsync_of_the_kept_log_is_charged(tmp_path: Path) -> None:
    """jsonl_fsync_swallowed ignores a failed fsync of its log, the file it keeps: fault.io-error fails, naming it."""
    spec = "tests.zoo.blind3.jsonl_fsync_swallowed:registration"
    run = run_suite(tmp_path, spec, args=("--conformance-clause=fault.io-error",))
    assert run.verdicts(spec)["fault.io-error"] == "failed", dump(run, spec)
    assert "an fsync failed inside the batch on '{tmp}/log/records.jsonl', which the destination keeps" in run.output
