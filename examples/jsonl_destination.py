"""A destination that appends every record to one JSON-lines file named by a `path` parameter.

Each record is one line `{"key": base64, "value": base64}`; a key's last line wins, and `"value": null` (a record
whose `after` is None) removes it. The file's path is a config parameter, so the registration names it with
`path_param` (not `directory_param`): open() must create the file's missing parent directories, and the open.*,
fault.* and safety.* clauses apply to the file and its parent (CONTRACT.md section 6). All of its I/O is Python's
`os` calls, which the fault injector and the audit hooks see, so every one of those clauses is checked.

Run the suite on it from the root of a checkout of this repository:

    pytest --destination=examples.jsonl_destination:registration
"""

import base64
import errno
import json
import os
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Destination,
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

__all__ = ["JsonLinesConfig", "JsonLinesFileDestination", "LOG_FLAGS", "new_jsonl_file", "read_jsonl",
           "jsonl_key_problem", "registration"]

# O_APPEND: every line goes at the end; O_NOFOLLOW: a symlink planted at the file's name is refused, not followed.
LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class JsonLinesConfig(BaseModel):
    """The JSON-lines destination's config: the file, and whether to fsync it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="The JSON-lines file; open creates its missing parent directories.")
    sync: bool = Field(False, description="Fsync the file after every record.")


def jsonl_key_problem(key: object) -> str | None:
    """Why `key` breaks CONTRACT.md's key rules (section 4), or None when it is valid (non-UTF-8 keys are kept)."""
    if not isinstance(key, RawData):
        return f"the key is {type(key).__name__}, not RawData"
    raw = key.raw
    if not 0 < len(raw) <= 255:
        return f"the key is {len(raw)} bytes long (1 to 255 allowed)"
    if b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        return f"the key {raw!r} is path-like"
    return None


def _line(record: Record) -> bytes:
    """One line: the key and the value in base64; a null value removes the key."""
    after = record.payload.after
    value = None if after is None else base64.b64encode(after.bytes()).decode()
    return json.dumps({"key": base64.b64encode(record.key.raw).decode(), "value": value}).encode() + b"\n"


def read_jsonl(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """What the file holds now: each key's last value (the registration's read_back)."""
    path = config["path"]
    if not os.path.isfile(path) or os.path.islink(path):
        return {}
    held: dict[bytes, bytes] = {}
    with open(path, "rb") as log:
        for line in log:
            if not line.endswith(b"\n"):
                raise ValueError(f"{path} ends in half a line: {line[:60]!r}")
            entry = json.loads(line)
            key = base64.b64decode(entry["key"])
            if entry["value"] is None:
                held.pop(key, None)
            else:
                held[key] = base64.b64decode(entry["value"])
    return held


class JsonLinesFileDestination(UnimplementedDestination):
    """Appends one line per record to the configured file: open creates the file's parent directories, the first
    write creates the file (refusing a symlink there) and keeps it open until teardown."""

    def __init__(self) -> None:
        self._config: JsonLinesConfig | None = None
        self._path = ""
        self._fd: int | None = None
        self._size: int | None = None  # bytes of whole lines in the file: where a failed append is cut back to

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(JsonLinesConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        self._config = parse_config(config, JsonLinesConfig)  # ConfigError naming every bad key; nothing on disk
        self._path = os.path.abspath(self._config.path)

    def open(self) -> None:
        parent = os.path.dirname(self._path)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(errno.ENOTDIR, "the file's parent exists and is not a directory", parent)
        self.make_parent(parent)  # an OSError names the directory it could not make

    def make_parent(self, parent: str) -> None:
        """Creates the file's parent directory with its missing parents."""
        os.makedirs(parent, exist_ok=True)

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            problem = jsonl_key_problem(record.key)
            if problem is not None:
                raise WriteError(f"record {index}: {problem}", written=index)  # records[:index] are in the file
            try:
                self.append(_line(record))
            except OSError as err:
                raise WriteError(f"record {index}: {err}", written=index) from err
        return len(records)

    def append(self, line: bytes) -> None:
        """Appends one whole line, or raises OSError with the file cut back to its whole lines."""
        if self._fd is None:
            fd = os.open(self._path, LOG_FLAGS, 0o644)
            try:
                if self._size is None:
                    self._size = os.fstat(fd).st_size  # what earlier runs wrote
                os.ftruncate(fd, self._size)  # drops half a line that a failed append could not cut
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        try:
            view = memoryview(line)
            while view:  # os.write may write less than it is given
                view = view[os.write(self._fd, view):]
            if self._config.sync:
                os.fsync(self._fd)
        except OSError:
            self.cut_back()
            raise
        self._size += len(line)

    def cut_back(self) -> None:
        """After a failed append: the file back to its whole lines ("written" means whole and, with sync, synced)."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self.close()  # the next append reopens the file and cuts it back first

    def close(self) -> None:
        """Closes the file if it is open."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def ack(self, position: bytes) -> None:
        """Nothing to do: a line is in the file when write returns."""

    def teardown(self) -> None:
        self.close()  # in any state, any number of times


def new_jsonl_file() -> Destination:
    """A JsonLinesFileDestination behind the default middleware."""
    return destination_with_middleware(JsonLinesFileDestination(), *default_destination_middleware())


registration = Registration(
    factory=new_jsonl_file,
    config={"path": "{tmp}/log/records.jsonl"},
    read_back=read_jsonl,
    path_param="path",
    variants=({"sync": "true"},),
)
