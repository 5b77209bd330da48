"""The third blind audit's open_trunc, in Python: a JSON-lines log at the file a `path` parameter names, one line
`{"k": base64, "v": base64 or null}` per record (a key's last line wins, null removes it).

The bug: open() opens the file with O_TRUNC, so every restart empties the log and loses what earlier runs wrote.
Within one destination's life everything reads back right, and the lifecycle events compare read-back before open;
open.keeps-data (a second destination opened on the first one's file) catches it.
"""

import base64
import errno
import json
import os
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Parameter,
    RawData,
    Record,
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    parameters_from,
    parse_config,
)
from harness.destination import Destination

__all__ = ["LogConfig", "TruncatingLog", "read_log", "registration"]

# The bug is O_TRUNC: the rest (no symlink followed, not inherited by children) is as a careful log opens its file.
_FLAGS = os.O_CREAT | os.O_RDWR | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class LogConfig(BaseModel):
    """The log's config: the file."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="The JSON-lines file; open creates its missing parent directories.")


def read_log(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """What the log holds: each key's last value; a torn last line is no record yet."""
    try:
        with open(config["path"], "rb") as log:
            lines = log.read().split(b"\n")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    held: dict[bytes, bytes] = {}
    for line in lines[:-1]:
        entry = json.loads(line)
        key = base64.b64decode(entry["k"])
        if entry["v"] is None:
            held.pop(key, None)
        else:
            held[key] = base64.b64decode(entry["v"])
    return held


def _problem(key: object) -> str | None:
    """Why a key breaks the contract's key rules, or None."""
    if not isinstance(key, RawData):
        return f"the key is {type(key).__name__}, not raw data"
    if not 0 < len(key.raw) <= 255 or b"/" in key.raw or b"\0" in key.raw or key.raw in (b".", b".."):
        return f"invalid key {key.raw[:40]!r}"
    return None


class TruncatingLog(UnimplementedDestination):
    """Opens its log in open() and appends one line per record, cutting a failed append back to whole lines."""

    def __init__(self) -> None:
        self._path = ""
        self._fd: int | None = None
        self._size = 0

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(LogConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        self._path = os.path.abspath(parse_config(config, LogConfig).path)

    def open(self) -> None:
        parent = os.path.dirname(self._path)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(errno.ENOTDIR, "the log's parent is not a directory", parent)
        os.makedirs(parent, exist_ok=True)
        self._fd = os.open(self._path, _FLAGS, 0o644)  # the bug: O_TRUNC empties what earlier runs wrote
        self._size = os.fstat(self._fd).st_size

    def write(self, records: Sequence[Record]) -> int:
        assert self._fd is not None
        for index, record in enumerate(records):
            problem = _problem(record.key)
            if problem is not None:
                raise WriteError(f"record {index}: {problem}", written=index)
            after = record.payload.after
            line = json.dumps({"k": base64.b64encode(record.key.raw).decode(),
                               "v": None if after is None else base64.b64encode(after.bytes()).decode()}).encode()
            try:
                os.lseek(self._fd, self._size, os.SEEK_SET)
                view = memoryview(line + b"\n")
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as err:
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    pass  # the next write starts at self._size anyway
                raise WriteError(f"record {index}: {err}", written=index) from err
            self._size += len(line) + 1
        return len(records)

    def ack(self, position: bytes) -> None:
        """Nothing to do: a line is in the file when write returns."""

    def teardown(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _new() -> Destination:
    return destination_with_middleware(TruncatingLog(), *default_destination_middleware())


registration = Registration(factory=_new, config={"path": "{tmp}/log/records.jsonl"}, read_back=read_log,
                            path_param="path")
