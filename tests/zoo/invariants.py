"""Destinations that break an invariant outside the probe named after it, and correct ones the invariants must pass.

Each broken one is caught by the invariants watched in every session (conformance/probes/watch.py), whatever check runs:
tests/test_invariants.py runs one check that is not the clause's own and expects the clause named in the
docstring. The controls are correct in ways that once tripped the suite.
"""

import asyncio
import base64
import ctypes
import ctypes.util
import json
import os
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from harness import Parameter, Record, Registration, UnimplementedDestination
from reference.file_destination import FileDestination
from tests.sqlite_destination import SqliteDestination, registration as sqlite_registration
from tests.zoo.broken import _OwnFileWrites, _path_registration, _registration, _with_default_middleware
from tests.zoo.unusual import LOG_FLAGS, JsonLinesFileDestination

__all__ = [
    "lock_beside_directory", "state_in_tmpdir", "sqlite_state_in_tmpdir", "lock_in_tmpdir", "c_lock_in_tmpdir",
    "leaks_fd_on_fsync_error", "leaks_fd_on_reopen_error",
    "compacts_mangling_keys", "swallows_fsync_error", "own_pool_left_running", "durable_rename",
    "async_to_thread",
]


class LockBesideDirectory(_OwnFileWrites):
    """Breaks safety.confined: open() creates `<directory>.lock` beside the directory; teardown removes it."""

    def open(self) -> None:
        super().open()
        os.close(os.open(self.directory + ".lock", os.O_WRONLY | os.O_CREAT, 0o644))

    def teardown(self) -> None:
        if self.directory:
            try:
                os.unlink(self.directory + ".lock")
            except FileNotFoundError:
                pass
        super().teardown()


class StateInTmpdir(_OwnFileWrites):
    """Breaks safety.confined: every write saves the last position to a state file in the temp directory."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        if records:
            with open(os.path.join(tempfile.gettempdir(), "zoo-destination.state"), "wb") as f:
                f.write(records[-1].position)
        return written


class SqliteStateInTmpdir(SqliteDestination):
    """Breaks safety.confined: open() also records itself in a bookkeeping database in $TMPDIR (sqlite3's C I/O,
    which neither pyfakefs nor audit hooks see)."""

    def open(self) -> None:
        super().open()
        state = sqlite3.connect(os.path.join(os.environ.get("TMPDIR", "/tmp"), "zoo-sqlite-state.db"))
        try:
            state.execute("CREATE TABLE IF NOT EXISTS opened (n INTEGER)")
            state.execute("INSERT INTO opened VALUES (1)")
            state.commit()
        finally:
            state.close()


class LockInTmpdir(_OwnFileWrites):
    """Breaks safety.confined: open() creates a lock file in the temp directory, teardown removes it, so nothing is
    left at the end (the third blind audit's tmpdir_lock, in Python)."""

    lock = ""

    def open(self) -> None:
        super().open()
        self.lock = os.path.join(tempfile.gettempdir(), f"zoo-{os.getpid()}.lock")
        self.create(self.lock)

    def teardown(self) -> None:
        if self.lock:
            self.unlink(self.lock)
            self.lock = ""
        super().teardown()

    def create(self, path: str) -> None:
        """Creates an empty file."""
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))

    def unlink(self, path: str) -> None:
        """Removes a file."""
        os.unlink(path)


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class CLockInTmpdir(LockInTmpdir):
    """Breaks safety.confined as LockInTmpdir does, through C calls (what an extension module's own I/O does), which
    neither audit hooks nor the look at the tree at the end see."""

    def create(self, path: str) -> None:
        fd = _LIBC.open(os.fsencode(path), os.O_WRONLY | os.O_CREAT, 0o644)
        if fd >= 0:
            _LIBC.close(fd)

    def unlink(self, path: str) -> None:
        _LIBC.unlink(os.fsencode(path))


class LeaksFdOnFsyncError(JsonLinesFileDestination):
    """Breaks teardown.releases: a failed fsync drops the descriptor without closing it (path_param, sync)."""

    def append(self, line: bytes) -> None:
        try:
            super().append(line)
        except OSError:
            self._fd = None  # forgotten, never closed: the next append opens another
            raise

    def cut_back(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass


class LeaksFdOnReopenError(JsonLinesFileDestination):
    """Breaks teardown.releases: when reopening the file after a failed cut-back closed it, a failing ftruncate
    leaves the new descriptor open (path_param; examples/jsonl_destination.py's mutant m119). Only a write retried
    while the device is still failing reaches that path."""

    def append(self, line: bytes) -> None:
        if self._fd is None and self._path:
            fd = os.open(self._path, LOG_FLAGS, 0o644)
            if self._size is None:
                self._size = os.fstat(fd).st_size
            os.ftruncate(fd, self._size)  # raising here forgets fd, never closed
            self._fd = fd
        super().append(line)


class CompactsMangling(JsonLinesFileDestination):
    """Breaks teardown.keeps-data: teardown compacts the log, re-keying by the key decoded as UTF-8 with
    replacement, so a key that is not UTF-8 comes back changed."""

    def teardown(self) -> None:
        self.close()
        if not self._path or not os.path.isfile(self._path):
            return
        latest: dict[str, str | None] = {}
        with open(self._path, "rb") as f:
            for line in f:
                entry = json.loads(line)
                latest[base64.b64decode(entry["key"]).decode("utf-8", "replace")] = entry["value"]
        with open(self._path, "wb") as f:
            for key, value in latest.items():
                f.write(json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": value}).encode() + b"\n")
        self._size = None


def _fsync_file(path: str) -> None:
    """Fsyncs a finished file (through a descriptor of its own: the writing one is closed by then)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SwallowsFsyncError(_OwnFileWrites):
    """Breaks fault.io-error: the temporary file is fsynced before the rename, and a failed fsync is ignored (the
    record is reported written, though the data may never reach the disk)."""

    def rename(self, temp: str, path: str) -> None:
        try:
            _fsync_file(temp)
        except OSError:
            pass  # "it is in the page cache anyway"
        os.rename(temp, path)


class DurableRename(_OwnFileWrites):
    """Correct: writes a temporary file, fsyncs it, renames it over the key and fsyncs the directory. A failed
    directory fsync comes after the rename, so the failing record is left whole (and uncounted)."""

    def rename(self, temp: str, path: str) -> None:
        _fsync_file(temp)
        os.rename(temp, path)
        directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class AsyncToThread(UnimplementedDestination):
    """Correct: an async destination that offloads the reference's blocking I/O with asyncio.to_thread, the idiom
    Python's documentation recommends (the loop's default executor is the harness's)."""

    def __init__(self) -> None:
        self.inner = FileDestination()

    def parameters(self) -> Mapping[str, Parameter]:
        return self.inner.parameters()

    async def configure(self, config: Mapping[str, str]) -> None:
        self.inner.configure(config)

    async def open(self) -> None:
        await asyncio.to_thread(self.inner.open)

    async def write(self, records: Sequence[Record]) -> int:
        return await asyncio.to_thread(self.inner.write, records)

    async def ack(self, position: bytes) -> None:
        return None

    async def teardown(self) -> None:
        await asyncio.to_thread(self.inner.teardown)


class OwnPoolLeftRunning(AsyncToThread):
    """Breaks teardown.releases: a thread pool of its own, never shut down."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-own-pool")

    async def write(self, records: Sequence[Record]) -> int:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.inner.write, records)


lock_beside_directory = _registration(_with_default_middleware(LockBesideDirectory))
state_in_tmpdir = _registration(_with_default_middleware(StateInTmpdir))
sqlite_state_in_tmpdir = Registration(
    factory=_with_default_middleware(SqliteStateInTmpdir),
    config=dict(sqlite_registration.config),
    read_back=sqlite_registration.read_back,
    path_param=sqlite_registration.path_param,
)
lock_in_tmpdir = _registration(_with_default_middleware(LockInTmpdir))
c_lock_in_tmpdir = _registration(_with_default_middleware(CLockInTmpdir))
leaks_fd_on_fsync_error = _path_registration(LeaksFdOnFsyncError)
leaks_fd_on_reopen_error = _path_registration(LeaksFdOnReopenError)
compacts_mangling_keys = _path_registration(CompactsMangling)
swallows_fsync_error = _registration(_with_default_middleware(SwallowsFsyncError))
durable_rename = _registration(_with_default_middleware(DurableRename))
async_to_thread = _registration(_with_default_middleware(AsyncToThread))
own_pool_left_running = _registration(_with_default_middleware(OwnPoolLeftRunning))
