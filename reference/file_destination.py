"""The reference file destination: one file per record key in a directory, meeting every clause of CONTRACT.md."""

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
    keys,
    parameters_from,
    parse_config,
)
from harness.records import RawData

__all__ = ["FileConfig", "FileDestination", "new_destination", "registration", "TEMP_PREFIX", "key_problem", "key_name"]

# Temporary files live in the target directory (so rename is atomic) under a short fixed-length name,
# so a 255-byte key still works. Readers and crash checks recognise leftovers by this prefix.
TEMP_PREFIX = b".~file-destination-tmp-"
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DOT_NAMES = keys.RESERVED_NAMES
_SLASH = ord("/")
_counter = itertools.count()


def _write_rest(fd: int, data: bytes, done: int) -> None:
    """After a short write of `done` bytes, carries on from where it stopped."""
    view = memoryview(data)[done:]
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(path: bytes) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _StillApplied(Exception):
    """A record's directory fsync failed and so did undoing the record: it is in place."""

    def __init__(self, error: OSError, undo_error: OSError) -> None:
        super().__init__(error, undo_error)
        self.error, self.undo_error = error, undo_error


class FileConfig(BaseModel):
    """The reference destination's config."""

    model_config = ConfigDict(extra="forbid")

    directory: str = Field(min_length=1, description="Directory that holds one file per record key; created on open.")
    sync: bool = Field(False, description="Fsync each file and the directory before write returns.")


def key_problem(key: object) -> str | None:
    """Why `key` cannot name a file under the contract's key rules, or None when it can."""
    if key is None:
        return "the key is missing (None)"
    if not isinstance(key, RawData):
        return f"the key is {type(key).__name__}, not RawData"
    return keys.key_problem(key.raw)


def key_name(key: object) -> bytes | None:
    """The file name for `key`, or None when key_problem rejects it (the fast check `write` runs per record)."""
    if type(key) is not RawData and not isinstance(key, RawData):
        return None
    raw: bytes = key.raw
    if (
        0 < len(raw) <= keys.MAX_KEY_BYTES
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
            raise type(err)(err.errno, f"cannot create destination directory: {err.strerror}",
                            os.fsdecode(path)) from err
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "destination directory is not writable", os.fsdecode(path))

    def write(self, records: Sequence[Record]) -> int:
        """Writes every record in order; stops at the first failure with WriteError(written=i).

        With sync=true each record is made durable (file, then directory) before the next one starts, and a
        record whose directory fsync fails is undone, so `written` always counts exactly what reads back.
        """
        sync = self._config is not None and self._config.sync
        replace, remove = self._replace, (self._remove_synced if sync else self._remove)
        base = self._base
        index, name = 0, b""
        try:
            for index, record in enumerate(records):
                name = key_name(record.key)  # type: ignore[assignment]
                if name is None:
                    raise WriteError(f"record {index}: invalid key: {key_problem(record.key)}", written=index)
                after = record.payload.after
                if after is None:
                    remove(base + name)
                else:
                    replace(base + name, after.raw if type(after) is RawData else after.bytes(), sync)
        except _StillApplied as stuck:
            # The directory fsync failed and undoing the record failed too, so record `index` is in place. Count
            # it when we may; as the last record it stays uncounted (a retry rewrites the same value).
            written = index + 1 if index + 1 < len(records) else index
            raise WriteError(f"record {index} (key {name!r}): {stuck.error.strerror or stuck.error}; undoing it "
                             f"failed: {stuck.undo_error.strerror or stuck.undo_error}",
                             written=written) from stuck.error
        except OSError as err:
            raise WriteError(f"record {index} (key {name!r}): {err.strerror or err}", written=index) from err
        return len(records)

    def _new_temp(self) -> tuple[bytes, int]:
        """Creates a fresh temporary file (O_EXCL, never through a symlink) and returns its path and descriptor."""
        while True:
            tmp = self._temp + b"%d" % next(_counter)
            try:
                return tmp, os.open(tmp, _FILE_FLAGS, 0o644)
            except FileExistsError:
                continue
            except BaseException:
                _unlink_quietly(tmp)  # some filesystems leave the entry behind when creating it fails
                raise

    def _replace(self, path: bytes, data: bytes, sync: bool) -> None:
        """Writes `data` to a temporary file, then renames it over `path` (replacing a symlink, never following it);
        with `sync`, durably and undoably (`_replace_synced`)."""
        if sync:
            return self._replace_synced(path, data)
        tmp, fd = self._new_temp()
        try:
            try:
                done = os.write(fd, data)
                if done < len(data):
                    _write_rest(fd, data, done)
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

    def _backup(self, path: bytes) -> bytes | None:
        """Keeps what is at `path` reachable under a temporary name (a hard link, of a symlink itself rather than
        its target) so the record can be undone; None when nothing is there."""
        while True:
            backup = self._temp + b"%d" % next(_counter)
            try:
                os.link(path, backup, follow_symlinks=False)
                return backup
            except FileExistsError:
                continue
            except FileNotFoundError:
                return None

    def _replace_synced(self, path: bytes, data: bytes) -> None:
        """`_replace` with fsyncs; undone (old file back, or the new one removed) if the directory fsync fails."""
        tmp, fd = self._new_temp()
        try:
            try:
                done = os.write(fd, data)
                if done < len(data):
                    _write_rest(fd, data, done)
                os.fsync(fd)
            finally:
                os.close(fd)
            backup = self._backup(path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        try:
            os.rename(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            if backup is not None:
                _unlink_quietly(backup)
            raise
        self._commit(path, backup)

    def _remove_synced(self, path: bytes) -> None:
        """`_remove`, then the directory fsync; undone (the file put back) if that fails."""
        backup = self._backup(path)
        if backup is None:
            return  # nothing there: nothing changes
        try:
            os.unlink(path)
        except BaseException:
            _unlink_quietly(backup)
            raise
        self._commit(path, backup)

    def _commit(self, path: bytes, backup: bytes | None) -> None:
        """Fsyncs the directory after `path` changed; on failure puts back `backup` (or removes `path` when there
        was nothing before) and raises, or raises _StillApplied if that fails too. Drops the backup on success."""
        try:
            self._sync_directory()
        except OSError as err:
            try:
                if backup is None:
                    os.unlink(path)
                else:
                    os.rename(backup, path)
            except OSError as undo_error:
                if backup is not None:
                    _unlink_quietly(backup)
                raise _StillApplied(err, undo_error) from err
            raise
        if backup is not None:
            _unlink_quietly(backup)

    def _sync_directory(self) -> None:
        """Makes renames and removals in the directory durable."""
        fd = os.open(self._directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

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
    variants=({"sync": "true"},),
)
