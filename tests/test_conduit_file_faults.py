"""Upstream pins of what the FUSE fault filesystem finds in conduit-connector-file (v0.9.0 on SDK v0.12.0, v0.10.1
and v0.10.3, the releases built into Conduit v0.13.3 and v0.14.0): a write that fails part-way through a record
leaves that record's first bytes in the file, and the next record is appended to them, so the file holds a line
that is no record (fault.disk-full, fault.io-error). The suite's verdicts are pinned with each registration's table
(tests/test_conduit_connectors.py, test_conduit_v013.py, test_conduit_v014.py); these are the replays its failures
print, cut down to one record.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.probes import fuse as fusefs
from harness import RawData, Record, WriteError
from harness.conduit.standalone import standalone_registration
from harness.records import Change
from tests.conduit_connectors import FILE_RELEASES, read_opencdc_log
from tests.go_connectors import build
from tests.go_plugins import stop

# Each file connector release: its build target in tests/go_connectors.py.
RELEASES = FILE_RELEASES
pytestmark = pytest.mark.usefixtures("fuse_here")  # tests/conftest.py: skip without FUSE, fail under CI


@pytest.fixture(params=sorted(RELEASES), ids=lambda version: f"file-{version}")
def target(request: pytest.FixtureRequest) -> str:
    """The build target of one release of the file connector."""
    return RELEASES[str(request.param)]


def _record(n: int) -> Record:
    """Records of equal size: the same key and payload lengths, one-digit positions."""
    return Record(position=str(n).encode(), key=RawData(f"k{n}".encode()), payload=Change(after=RawData(b"v" * 40)))


@pytest.fixture
def opened(target: str) -> Iterator[tuple[fusefs.FuseInjector, Any, str]]:
    """The connector configured on records.jsonl in a fresh directory of the FUSE mount, opened, one record
    written: (faults, destination, path)."""
    with fusefs.fuse_filesystem() as faults:
        path = os.path.join(faults.area, "records.jsonl")
        destination: Any = standalone_registration([str(build(target))]).factory()
        try:
            destination.configure({"path": path})
            destination.open()
            assert destination.write([_record(0)]) == 1
            yield faults, destination, path
        finally:
            stop(destination)


@pytest.mark.parametrize("fault", ["disk full", "EIO inside the write"])
def test_a_write_failing_inside_a_record_leaves_its_first_bytes_in_the_file(
        opened: tuple[fusefs.FuseInjector, Any, str], fault: str) -> None:
    """fault.disk-full / fault.io-error: with room (or a device) for half of the next record, write() raises
    WriteError(written=0), but half of record 1 stays in the file, with no newline; the next batch is appended to
    it, so the file's second line is neither record: a reader of the file (read_back here) cannot parse it."""
    faults, destination, path = opened
    line = os.path.getsize(path)  # one record's line, newline included; record 1's is as long
    if fault == "disk full":
        faults.fill_disk(line // 2)
    else:
        faults.cut_at(line // 2, errno.EIO)
    with pytest.raises(WriteError) as raised:
        destination.write([_record(1)])
    assert raised.value.written == 0
    assert faults.fired, "the fault did not fire"
    faults.clear()
    faults.unlimited_disk()
    held = open(path, "rb").read()
    assert len(held) == line + line // 2 and not held.endswith(b"\n")  # half of record 1 is in the file
    with pytest.raises(ValueError, match="ends in half a line"):
        read_opencdc_log("path")({"path": path})
    assert destination.write([_record(2)]) == 1
    with pytest.raises(ValueError, match="line 2 is not a whole opencdc/json record"):
        read_opencdc_log("path")({"path": path})
