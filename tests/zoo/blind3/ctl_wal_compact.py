"""CONTROL: one-file destination with a write-ahead log and compaction. Records are appended to the side file
<path>.wal (one JSON line each, fsynced with sync=true); once the WAL grows past a threshold (and at teardown) it is
compacted: the merged state is written to <path>.tmp, fsynced, renamed over <path>, and the WAL is cut to empty.
read-back = the snapshot at <path> with the WAL replayed on top.

With compact=1 it compacts inside every write; when the temporary file's fsync fails it is removed (the records stay
in the WAL) and write reports every record written. Contract v1.3's fault.io-error charged that; v1.4 charges only a
failed fsync of a file the destination keeps (tests/test_fsync_kept.py)."""
import base64
import errno
import json
import os

from pydantic import BaseModel, ConfigDict, Field

from examples.jsonl_destination import jsonl_key_problem
from harness import (
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    parameters_from,
    parse_config,
)

FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="The snapshot file; its WAL is <path>.wal beside it.")
    sync: bool = Field(False, description="Fsync every WAL record.")
    compact: int = Field(64, gt=0, description="Compact after this many WAL records.")


def _line(key: bytes, value):
    return json.dumps({"k": base64.b64encode(key).decode(),
                       "v": None if value is None else base64.b64encode(value).decode()}).encode() + b"\n"


def _load(path: str, held: dict, wal: bool):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    good = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # a torn tail of the WAL: not written
        e = json.loads(line)
        k = base64.b64decode(e["k"])
        if e["v"] is None:
            held.pop(k, None)
        else:
            held[k] = base64.b64decode(e["v"])
        good += len(line)
    return good


def read_back(config):
    path = os.path.abspath(config["path"])
    held = {}
    if os.path.isfile(path) and not os.path.islink(path):
        _load(path, held, False)
    if os.path.isfile(path + ".wal") and not os.path.islink(path + ".wal"):
        _load(path + ".wal", held, True)
    return held


class Dest(UnimplementedDestination):
    def __init__(self):
        self._c = None
        self._path = ""
        self._fd = None
        self._size = None
        self._count = 0

    def parameters(self):
        return parameters_from(Config)

    def configure(self, config):
        self._c = parse_config(config, Config)
        self._path = os.path.abspath(self._c.path)

    def open(self):
        parent = os.path.dirname(self._path)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(errno.ENOTDIR, "the file's parent is not a directory", parent)
        os.makedirs(parent, exist_ok=True)

    def _wal(self):
        if self._fd is None:
            fd = os.open(self._path + ".wal", FLAGS, 0o644)
            try:
                if self._size is None:
                    self._size = _load(self._path + ".wal", {}, True)
                os.ftruncate(fd, self._size)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    def _append(self, line):
        fd = self._wal()
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            if self._c.sync:
                os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                self._close()
            raise
        self._size += len(line)
        self._count += 1

    def _compact(self):
        """Snapshot := snapshot + WAL, atomically; then the WAL is cut to empty. A failure leaves both as they were
        (the WAL replays on top of either snapshot to the same state)."""
        held = {}
        _load(self._path, held, False)
        _load(self._path + ".wal", held, True)
        tmp = self._path + ".tmp"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            try:
                data = b"".join(_line(k, v) for k, v in held.items())
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self._path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        fd = self._wal()
        os.ftruncate(fd, 0)
        self._size = 0
        self._count = 0

    def write(self, records):
        for i, record in enumerate(records):
            problem = jsonl_key_problem(record.key)
            if problem is not None:
                raise WriteError(f"record {i}: {problem}", written=i)
            after = record.payload.after
            try:
                self._append(_line(record.key.raw, None if after is None else after.bytes()))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        if self._count >= self._c.compact:
            try:
                self._compact()
            except OSError:
                pass  # the WAL still holds everything: compaction is retried later
        return len(records)

    def _close(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def ack(self, position):
        pass

    def teardown(self):
        try:
            if self._fd is not None and self._count:
                self._compact()
        except OSError:
            pass
        finally:
            self._close()


def factory():
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"path": "{tmp}/db/state.jsonl"}, read_back=read_back,
                            path_param="path", variants=({"sync": "true"}, {"compact": "1"}))
