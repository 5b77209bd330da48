"""A correct file destination on the official Conduit Python SDK: one file per record key in a directory.

It meets the contract as far as an SDK destination can. The SDK itself enforces no call order, so the destination
keeps its own lifecycle guard; the SDK has no "None key" (an unset key arrives as b""), so an empty key is
the missing one.
"""

import enum
import errno
import itertools
import json
import os
from collections.abc import Mapping

import conduit
import pydantic

__all__ = [
    "SPECIFICATION",
    "TEMP_PREFIX",
    "FileConfig",
    "SdkFileDestination",
    "key_problem",
    "value_bytes",
]

# Temporary files live in the target directory, so the final rename is atomic. A short fixed-length prefix
# leaves room for a counter without limiting keys, which are at most 255 bytes themselves.
TEMP_PREFIX = b".~sdk-tmp-"
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DOT_NAMES = (b".", b"..")
_counter = itertools.count()

SPECIFICATION = conduit.Specification(
    name="sdk-file-destination",
    version="v0.1.0",
    author="conformance tests",
    summary="Writes each record to a file named by its key (a conformance-suite test destination).",
    description=(
        "One file per record key in the configured directory, created on open. A record's payload.after "
        "is written atomically (raw bytes as they are, structured data as canonical JSON); a record "
        "without payload.after removes its key's file. Keys must be 1 to 255 bytes without '/' or NUL "
        "and not '.' or '..'; the first record with another key stops the batch there."
    ),
)


class FileConfig(conduit.BaseConfig):
    """The SDK file destination's config: the directory that holds one file per key."""

    # The SDK's BaseConfig ignores keys it does not know (pydantic's default), so a typo in a pipeline
    # config would pass silently; forbidding extras makes Configure name the unknown key.
    model_config = pydantic.ConfigDict(extra="forbid")

    directory: str = conduit.Field(
        min_length=1,
        description="Directory that holds one file per record key; created, with its parents, on open.",
    )


class _State(enum.Enum):
    """Where the destination is in its lifecycle (CONTRACT.md: Lifecycle)."""

    NEW = "new"
    CONFIGURED = "configured"
    OPEN = "open"
    FAILED_OPEN = "unusable (open failed)"
    TORN_DOWN = "torn down"


def key_problem(key: object) -> str | None:
    """Why `key` cannot name a file, or None when it can."""
    if isinstance(key, Mapping):
        return "the key is structured data, not raw bytes"
    if not isinstance(key, bytes):
        return f"the key is {type(key).__name__}, not bytes"
    if not key:
        return "the key is empty (unset)"
    if len(key) > 255:
        return f"the key is {len(key)} bytes long (at most 255)"
    if b"/" in key:
        return "the key contains '/'"
    if b"\0" in key:
        return "the key contains NUL"
    if key in _DOT_NAMES:
        return f"the key is {key.decode()!r}"
    return None


def value_bytes(value: object) -> bytes:
    """The file contents for a payload: bytes as they are, a Mapping as canonical JSON (as StructuredData's)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    raise TypeError(f"payload.after is {type(value).__name__}, not bytes or a mapping")


def _describe_key(key: object) -> str:
    """A short readable form of a key for error messages (long keys are cut)."""
    text = repr(key)
    return text if len(text) <= 80 else f"{text[:72]}... ({len(key) if isinstance(key, bytes) else '?'} bytes)"


def _unlink_quietly(path: bytes) -> None:
    """Removes `path` if it is there; ignores every error (cleanup on a path that is already failing)."""
    try:
        os.unlink(path)
    except OSError:
        pass


class SdkFileDestination(conduit.Destination[FileConfig]):
    """Writes each record's payload.after atomically to `<directory>/<key>`; payload.after None removes it."""

    def __init__(self) -> None:
        """A new, unconfigured destination."""
        self._state = _State.NEW
        self._directory = b""  # absolute, fixed at configure so a later chdir changes nothing

    async def configure(self, config: FileConfig) -> None:
        """Stores the config the SDK validated; touches nothing on disk."""
        self._require("configure", _State.NEW)
        self.config = config
        self._directory = os.fsencode(os.path.abspath(config.directory))
        self._state = _State.CONFIGURED

    async def open(self) -> None:
        """Creates the directory with its parents; refuses a path that exists and is not a directory."""
        self._require("open", _State.CONFIGURED)
        self._state = _State.FAILED_OPEN  # until the directory is there
        path = os.fsdecode(self._directory)
        if os.path.lexists(path) and not os.path.isdir(path):
            raise NotADirectoryError(errno.ENOTDIR, f"destination path {path!r} exists and is not a directory", path)
        try:
            os.makedirs(path, 0o755, exist_ok=True)
        except OSError as err:
            raise type(err)(err.errno, f"cannot create destination directory {path!r}: {err.strerror}", path) from err
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"destination directory {path!r} is not writable", path)
        self._state = _State.OPEN

    async def write(self, records: list[conduit.Record]) -> None:
        """Writes every record in order; stops at the first bad key or OSError with BatchWriteError(written=i)."""
        if self._state is not _State.OPEN:
            when = "after teardown" if self._state is _State.TORN_DOWN else "before open"
            # A plain exception: the SDK nacks the whole batch, and nothing of it was written.
            raise RuntimeError(f"lifecycle: write {when} (the destination is {self._state.value})")
        base = os.path.join(self._directory, b"")
        for index, record in enumerate(records):
            problem = key_problem(record.key)
            if problem is not None:
                cause = ValueError(f"record {index}: invalid key {_describe_key(record.key)}: {problem}")
                raise self._invalid_key_error(len(records), index, cause)
            after = record.payload.after
            try:
                data = None if after is None else value_bytes(after)
            except (TypeError, ValueError) as err:  # not bytes or a mapping, or a mapping JSON cannot encode
                raise conduit.BatchWriteError.partial(len(records), written=index, cause=err) from err
            path = base + record.key  # type: ignore[operator]  # key_problem made sure it is bytes
            try:
                if data is None:
                    self._remove(path)
                else:
                    self._replace(path, data)
            except OSError as err:
                raise conduit.BatchWriteError.partial(len(records), written=index, cause=err) from err

    def _invalid_key_error(self, batch_size: int, index: int, cause: ValueError) -> conduit.BatchWriteError:
        """The error for an invalid key at `index`: records before it are written, it and the rest are not."""
        return conduit.BatchWriteError.partial(batch_size, written=index, cause=cause)

    async def teardown(self) -> None:
        """Works in every state and twice; holds nothing open, so there is nothing to release."""
        self._state = _State.TORN_DOWN

    def _require(self, call: str, state: _State) -> None:
        """Raises the lifecycle error for `call` unless the destination is in `state`."""
        if self._state is not state:
            raise RuntimeError(f"lifecycle: {call} when the destination is {self._state.value} (needs {state.value})")

    def _replace(self, path: bytes, data: bytes) -> None:
        """Writes `data` to a temporary file, then renames it over `path` (replacing a symlink, never following it)."""
        temp_base = os.path.join(self._directory, TEMP_PREFIX)
        while True:
            temp = temp_base + b"%d-%d" % (os.getpid(), next(_counter))
            try:
                fd = os.open(temp, _FILE_FLAGS, 0o644)
                break
            except FileExistsError:
                continue
            except BaseException:
                _unlink_quietly(temp)  # some filesystems leave the entry behind when creating it fails
                raise
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temp, path)  # a directory at the key makes this raise (IsADirectoryError)
        except BaseException:
            _unlink_quietly(temp)
            raise

    @staticmethod
    def _remove(path: bytes) -> None:
        """Removes the file at `path` (a symlink itself, never its target); an absent file is fine."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
