"""The reference file destination: one file per record key in a directory, meeting SPEC section 4."""

import errno
import itertools
import os
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Destination,
    Parameter,
    Record,
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
    parameters_from,
    parse_config,
)
from harness.records import RawData

__all__ = ["FileConfig", "FileDestination", "new_destination", "registration", "TEMP_PREFIX", "key_problem", "key_name"]

# Temporary files live in the target directory (so rename is atomic) under a short fixed-length name,
# so a 255-byte key still works. Readers and crash checks recognise leftovers by this prefix.
TEMP_PREFIX = b".~file-destination-tmp-"
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DOT_NAMES = (b".", b"..")
_SLASH = ord("/")
_counter = itertools.count()


def _unlink_quietly(path: bytes) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class FileConfig(BaseModel):
    """The reference destination's config."""

    model_config = ConfigDict(extra="forbid")

    directory: str = Field(min_length=1, description="Directory that holds one file per record key; created on open.")
    sync: bool = Field(False, description="Fsync each file and the directory before write returns.")


def key_problem(key: object) -> str | None:
    """Why `key` cannot name a file under SPEC's key rules, or None when it can."""
    if key is None:
        return "the key is missing (None)"
    if not isinstance(key, RawData):
        return f"the key is {type(key).__name__}, not RawData"
    raw = key.raw
    if not raw:
        return "the key is empty"
    if len(raw) > 255:
        return f"the key is {len(raw)} bytes long (at most 255)"
    if b"/" in raw or b"\0" in raw:
        return "the key contains '/' or NUL"
    if raw in _DOT_NAMES:
        return f"the key is {raw.decode()!r}"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the key is not valid UTF-8"
    return None


def key_name(key: object) -> bytes | None:
    """The file name for `key`, or None when key_problem rejects it (the fast check `write` runs per record)."""
    if type(key) is not RawData and not isinstance(key, RawData):
        return None
    raw: bytes = key.raw  # type: ignore[attr-defined]
    if (
        0 < len(raw) <= 255
        and _SLASH not in raw  # an int, not b"/": a single-byte search is ten times faster
        and 0 not in raw
        and raw not in _DOT_NAMES
        and (raw.isascii() or _is_utf8(raw))
    ):
        return raw
    return None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _make_directories(path: bytes) -> None:
    """Creates `path` and its missing parents, each with mode 0o755 before umask (as Go's os.MkdirAll)."""
    parent, name = os.path.split(path)
    if parent and name and not os.path.lexists(parent):
        _make_directories(parent)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


class FileDestination(UnimplementedDestination):
    """Writes each record's `after.bytes()` atomically to `<directory>/<key>`; `after=None` removes the file."""

    def __init__(self) -> None:
        self._config: FileConfig | None = None
        self._directory: bytes = b""
        self._base: bytes = b""  # the directory with a trailing separator, prefixed to every name
        self._temp: bytes = b""  # the prefix of temporary file paths

    def parameters(self) -> Mapping[str, Parameter]:
        """`directory` (required) and `sync`."""
        return parameters_from(FileConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        """Validates the config; touches nothing on disk."""
        self._config = parse_config(config, FileConfig)
        self._directory = os.fsencode(os.path.abspath(self._config.directory))
        self._base = os.path.join(self._directory, b"")
        self._temp = self._base + TEMP_PREFIX

    def open(self) -> None:
        """Creates the directory with its parents (0o755 before umask); refuses a path that is not a directory."""
        path = self._directory
        if os.path.lexists(path) and not os.path.isdir(path):
            raise NotADirectoryError(errno.ENOTDIR, "destination path exists and is not a directory", os.fsdecode(path))
        try:
            _make_directories(path)
        except OSError as err:
            raise type(err)(err.errno, f"cannot create destination directory: {err.strerror}", os.fsdecode(path)) from err
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "destination directory is not writable", os.fsdecode(path))

    def write(self, records: Sequence[Record]) -> int:
        """Writes every record in order; stops at the first failure with WriteError(written=i)."""
        sync = self._config is not None and self._config.sync
        base = self._base
        index, name = 0, b""
        try:
            for index, record in enumerate(records):
                name = key_name(record.key)  # type: ignore[assignment]
                if name is None:
                    raise WriteError(f"record {index}: invalid key: {key_problem(record.key)}", written=index)
                after = record.payload.after
                if after is None:
                    self._remove(base + name)
                else:
                    self._replace(base + name, after.raw if type(after) is RawData else after.bytes(), sync)
        except OSError as err:
            self._sync_directory(sync, quiet=True)
            raise WriteError(f"record {index} (key {name!r}): {err.strerror or err}", written=index) from err
        except WriteError:
            self._sync_directory(sync, quiet=True)
            raise
        self._sync_directory(sync)
        return len(records)

    def _replace(self, path: bytes, data: bytes, sync: bool) -> None:
        """Writes `data` to a temporary file, then renames it over `path` (replacing a symlink, never following it)."""
        while True:
            tmp = self._temp + b"%d" % next(_counter)
            try:
                fd = os.open(tmp, _FILE_FLAGS, 0o644)
                break
            except FileExistsError:
                continue
            except BaseException:
                _unlink_quietly(tmp)  # some filesystems leave the entry behind when creating it fails
                raise
        try:
            try:
                done = os.write(fd, data)
                if done < len(data):  # a short write: carry on from where it stopped
                    view = memoryview(data)[done:]
                    while view:
                        view = view[os.write(fd, view) :]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def _remove(self, path: bytes) -> None:
        try:
            os.unlink(path)  # unlink removes a symlink itself, not its target
        except FileNotFoundError:
            pass

    def _sync_directory(self, sync: bool, quiet: bool = False) -> None:
        """Makes renames and removals durable; `quiet` on the error path, where the first error matters."""
        if not sync:
            return
        try:
            fd = os.open(self._directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            if not quiet:
                raise

    def ack(self, position: bytes) -> None:
        """Nothing to do: every write is on disk when write returns."""

    def teardown(self) -> None:
        """Nothing held open between calls; idempotent and leaves the data alone."""
        self._config = None


def new_destination() -> Destination:
    """A FileDestination wrapped in the default middleware, as Conduit's NewDestination."""
    return destination_with_middleware(FileDestination(), *default_destination_middleware())


registration = Registration(
    factory=new_destination,
    config={"directory": "{tmp}/out"},
    read_back=directory_reader("directory"),
    directory_param="directory",
    name="reference:registration",
)
