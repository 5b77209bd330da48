"""A second, independent zoo of broken destinations: each module-level Registration breaks one clause.

Written as an adversary of the suite: for every clause at least two bugs by mechanisms that differ from each
other and from tests/zoo/broken.py (a bug that fires only for one operation, size, key kind, state, second
call or error path). Each is the reference FileDestination with one thing changed, behind the default
middleware unless its clause is about the middleware. Each class docstring starts with "Breaks <clause>:".
tests/test_zoo_variants.py checks that the suite reports that clause FAILED.
"""

import asyncio
import concurrent.futures
import errno
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from harness import (
    BatchSize,
    ConfigError,
    Destination,
    DestinationMiddleware,
    LifecycleGuard,
    Operation,
    Parameter,
    ParameterType,
    RateLimit,
    RawData,
    Record,
    Registration,
    StructuredData,
    ValidationGreaterThan,
    ValidationInclusion,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
    parameters_from,
    parse_config,
)
from reference.file_destination import FileConfig, FileDestination, key_problem
from tests.zoo.reopen import (  # open.keeps-data's, kept in a module of their own (re-exported: listed in BATCHES)
    path_compaction_drops_tombstones as path_compaction_drops_tombstones,
    path_forgets_earlier_size as path_forgets_earlier_size,
    sweeps_editor_leftovers_on_open as sweeps_editor_leftovers_on_open,
)

MIB = 1024 * 1024
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_temp_numbers = itertools.count()


# --- helpers -------------------------------------------------------------------------------------------


def _factory(cls: type[Destination], *middleware: Any) -> Callable[[], Destination]:
    """A factory: a new `cls()` wrapped in `middleware` (default: the default middleware)."""

    def factory() -> Destination:
        return destination_with_middleware(cls(), *(middleware or default_destination_middleware()))

    factory.__name__ = factory.__qualname__ = f"new_{cls.__name__}"
    return factory


def _registration(factory: Callable[[], Destination], **config: str) -> Registration:
    """Like the reference's registration: directory={tmp}/out (plus `config`), read back one file per key."""
    return Registration(factory=factory, config={"directory": "{tmp}/out", **config},
                        read_back=directory_reader("directory"), directory_param="directory")


def _unlink_quietly(path: str | bytes) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _shape_ok(raw: bytes) -> bool:
    """The contract's key rules without the UTF-8 one: 1-255 bytes, no '/' or NUL, not '.' or '..'."""
    return 0 < len(raw) <= 255 and b"/" not in raw and b"\0" not in raw and raw not in (b".", b"..")


def _state_name(directory: str, suffix: str) -> str:
    """A file name unique to a configured directory, for state kept elsewhere."""
    return f"file-destination-{hashlib.sha256(directory.encode()).hexdigest()[:16]}{suffix}"


class _Knows(FileDestination):
    """The reference, remembering its directory (str and bytes with a trailing separator) and `sync`."""

    directory = ""
    base = b""
    sync = False
    opened = False

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        values = parse_config(config, FileConfig)
        self.directory = os.path.abspath(values.directory)
        self.base = os.path.join(os.fsencode(self.directory), b"")
        self.sync = values.sync

    def open(self) -> None:
        super().open()
        self.opened = True


class _Own(_Knows):
    """The reference's rules with its own write loop, split into hooks a variant overrides one at a time."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            name = self.name_of(record.key)
            if name is None:
                raise WriteError(f"record {index}: invalid key: {key_problem(record.key)}", written=index)
            try:
                self.apply(record, os.path.join(self.base, name))
            except OSError as err:
                raise self.failed(index, err) from err
        return len(records)

    def name_of(self, key: Any) -> bytes | None:
        """The file name for `key`, or None if the key is invalid."""
        return key.raw if key_problem(key) is None else None

    def apply(self, record: Record, path: bytes) -> None:
        """Stores the record's value at `path`, or removes `path` for after=None."""
        after = record.payload.after
        if after is None:
            self.remove(path)
        else:
            self.store(path, after.bytes())

    def failed(self, index: int, err: OSError) -> WriteError:
        """The WriteError for record `index`, which failed with `err`."""
        return WriteError(f"record {index}: {err.strerror or err}", written=index)

    def temp_path(self) -> bytes:
        return self.base + b".~variant-tmp-%d" % next(_temp_numbers)

    def store(self, path: bytes, data: bytes) -> None:
        """Writes a temporary file and renames it over `path`."""
        temp = self.temp_path()
        try:
            self.fill(temp, data)
            os.rename(temp, path)
        except OSError as err:
            self.discard(temp, err)
            raise

    def fill(self, temp: bytes, data: bytes) -> None:
        fd = os.open(temp, _TEMP_FLAGS, 0o644)
        try:
            _write_fully(fd, data)
            if self.sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self, temp: bytes, err: OSError) -> None:
        """Cleans up after a failed store."""
        _unlink_quietly(temp)

    def remove(self, path: bytes) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class _ExtraParameters(FileDestination):
    """The reference plus parameters of its own (EXTRA), each validated only when given."""

    EXTRA: ClassVar[dict[str, Parameter]] = {}

    def parameters(self) -> Mapping[str, Parameter]:
        return {**super().parameters(), **self.EXTRA}

    def configure(self, config: Mapping[str, str]) -> None:
        own = {k.strip(): v.strip() for k, v in config.items() if k.strip() in self.EXTRA}
        bad = {k: "; ".join(p) for k, v in own.items() if (p := self.EXTRA[k].problems(v))}
        if bad:
            raise ConfigError("invalid config: " + "; ".join(f"{k}: {m}" for k, m in bad.items()), keys=bad)
        super().configure({k: v for k, v in config.items() if k.strip() not in self.EXTRA})


# --- parameters.shape ----------------------------------------------------------------------------------


class ParametersGrowWhenOpen(_Knows):
    """Breaks parameters.shape: while open, parameters() also lists an informational `open.since` parameter."""

    def teardown(self) -> None:
        self.opened = False
        super().teardown()

    def parameters(self) -> Mapping[str, Parameter]:
        params = dict(super().parameters())
        if self.opened:
            params["open.since"] = Parameter(description="When the destination was opened (informational).")
        return params


class ParametersFailWhenTornDown(FileDestination):
    """Breaks parameters.shape: after teardown, parameters() raises (it consults the released session)."""

    closed = False

    def teardown(self) -> None:
        super().teardown()
        self.closed = True

    def parameters(self) -> Mapping[str, Parameter]:
        if self.closed:
            raise RuntimeError("the destination is closed")
        return super().parameters()


# --- parameters.defaults-valid -------------------------------------------------------------------------


class DefaultOutsideInclusion(_ExtraParameters):
    """Breaks parameters.defaults-valid: `write.mode` allows overwrite or skip, but defaults to "replace"."""

    EXTRA = {"write.mode": Parameter(description="What to do when a key's file exists: overwrite or skip.",
                                     default="replace", validations=(ValidationInclusion(("overwrite", "skip")),))}


class DefaultWrongType(_ExtraParameters):
    """Breaks parameters.defaults-valid: the duration `flush.interval` defaults to "500", which has no unit."""

    EXTRA = {"flush.interval": Parameter(description="How often buffered files are flushed.", default="500",
                                         type=ParameterType.duration)}


# --- configure.valid -----------------------------------------------------------------------------------


class OptionalKeyRequired(FileDestination):
    """Breaks configure.valid: configure reads config["sync"] directly, so a config without `sync` raises KeyError."""

    def configure(self, config: Mapping[str, str]) -> None:
        self.fsync = config["sync"].strip().lower() == "true"
        super().configure(config)


class _ShortDirectoryConfig(FileConfig):
    directory: str = Field(min_length=1, max_length=24, description="Directory that holds one file per key.")


class HiddenLengthLimit(FileDestination):
    """Breaks configure.valid: configure caps `directory` at 24 characters (undeclared), refusing the registered one."""

    def configure(self, config: Mapping[str, str]) -> None:
        parse_config(config, _ShortDirectoryConfig)
        super().configure(config)


# --- configure.required --------------------------------------------------------------------------------


class RequiredTypeError(FileDestination):
    """Breaks configure.required: a missing `directory` reaches os.path.abspath(None) and raises TypeError."""

    def configure(self, config: Mapping[str, str]) -> None:
        self.absolute = os.path.abspath(config.get("directory"))  # type: ignore[arg-type]
        super().configure(config)


class RequiredCheckedAtOpen(FileDestination):
    """Breaks configure.required: configure accepts a config without `directory`; only open() then refuses it."""

    missing = False

    def configure(self, config: Mapping[str, str]) -> None:
        if not config.get("directory", "").strip():
            self.missing = True
            return
        super().configure(config)

    def open(self) -> None:
        if self.missing:
            raise ValueError("the parameter 'directory' is required")
        super().open()


class _EmptyDefaultConfig(FileConfig):
    directory: str = Field("", description="Directory that holds one file per record key; created on open.")


class RequiredUnnamed(FileDestination):
    """Breaks configure.required: `directory` is declared optional with default "", and configure refuses it
    missing with "output location is not set", which does not name it (the third blind audit's Go slip)."""

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(_EmptyDefaultConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        if not parse_config(config, _EmptyDefaultConfig).directory.strip():
            raise ConfigError("invalid config: output location is not set")
        super().configure(config)


# --- configure.invalid-values --------------------------------------------------------------------------


class _LimitConfig(FileConfig):
    max_files: int = Field(100000, gt=0, alias="max.files", description="Most files the directory may hold.")


class _LooseLimitConfig(FileConfig):
    max_files: int = Field(100000, alias="max.files", description="Most files the directory may hold.")


class RangeNotEnforced(FileDestination):
    """Breaks configure.invalid-values: `max.files` is declared > 0, but 0 and negatives are taken as "no limit"."""

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(_LimitConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        self.max_files = parse_config(config, _LooseLimitConfig).max_files
        super().configure({k: v for k, v in config.items() if k.strip() != "max.files"})


class InclusionFallsBack(_ExtraParameters):
    """Breaks configure.invalid-values: `compression` declares none|gzip, but any other value falls back to none."""

    EXTRA = {"compression": Parameter(description="How values are compressed on disk.", default="none",
                                      validations=(ValidationInclusion(("none", "gzip")),))}

    def configure(self, config: Mapping[str, str]) -> None:
        value = {k.strip(): v.strip() for k, v in config.items()}.get("compression", "none")
        self.compression = value if value in ("none", "gzip") else "none"
        FileDestination.configure(self, {k: v for k, v in config.items() if k.strip() != "compression"})


# --- configure.unknown-key -----------------------------------------------------------------------------


class _DropsSomeUnknownKeys(FileDestination):
    """Rejects unknown keys naming them, except those `ignored` says to drop silently."""

    def ignored(self, key: str) -> bool:
        return False

    def configure(self, config: Mapping[str, str]) -> None:
        known = set(self.parameters())
        super().configure({k: v for k, v in config.items() if k.strip() in known or not self.ignored(k.strip())})


class UnknownKeyNotNamed(FileDestination):
    """Breaks configure.unknown-key: unknown keys are rejected, but the ConfigError only counts them."""

    def configure(self, config: Mapping[str, str]) -> None:
        unknown = [k for k in config if k.strip() not in self.parameters()]
        if unknown:
            raise ConfigError(f"invalid config: {len(unknown)} unknown parameter(s)", keys=unknown)
        super().configure(config)


class IgnoresDottedUnknownKeys(_DropsSomeUnknownKeys):
    """Breaks configure.unknown-key: unknown keys containing a dot are taken for other plugins' and dropped."""

    def ignored(self, key: str) -> bool:
        return "." in key


class IgnoresKeysOutsideAlphabet(_DropsSomeUnknownKeys):
    """Breaks configure.unknown-key: unknown keys outside [a-zA-Z0-9.] ("my-key", "my_key") are dropped silently."""

    def ignored(self, key: str) -> bool:
        return not all(c.isascii() and (c.isalnum() or c == ".") for c in key)


class AllowsSdkPrefixedKeys(_DropsSomeUnknownKeys):
    """Breaks configure.unknown-key: unknown keys starting with "sdk." are silently ignored, others rejected."""

    def ignored(self, key: str) -> bool:
        return key.startswith("sdk.")


# --- configure.no-side-effects -------------------------------------------------------------------------


class WritesConfigMarker(_Knows):
    """Breaks configure.no-side-effects: configure saves the resolved config to `<directory>.config` beside it."""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        try:
            with open(self.directory + ".config", "w") as f:
                json.dump({"directory": self.directory, "sync": self.sync}, f)
        except OSError:
            pass


class RemovesStaleTemps(_Knows):
    """Breaks configure.no-side-effects: configure deletes leftover '.~*' files in an existing directory."""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        if os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                if name.startswith(".~"):
                    _unlink_quietly(os.path.join(self.directory, name))


class ProbesParentWritability(_Knows):
    """Breaks configure.no-side-effects: configure creates and removes a probe file in the nearest existing ancestor."""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        ancestor = self.directory
        while not os.path.isdir(ancestor) and os.path.dirname(ancestor) != ancestor:
            ancestor = os.path.dirname(ancestor)
        probe = os.path.join(ancestor, ".file-destination-probe")
        try:
            with open(probe, "wb"):
                pass
            os.unlink(probe)
        except OSError:
            pass  # best effort: open() reports an unwritable directory


class LockInTmpdirOnConfigure(_Knows):
    """Breaks configure.no-side-effects: configure takes a lock file in $TMPDIR (removed again by teardown)."""

    lock = ""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        self.lock = os.path.join(tempfile.gettempdir(), _state_name(self.directory, ".lock"))
        with open(self.lock, "w") as f:
            f.write(str(os.getpid()))

    def teardown(self) -> None:
        if self.lock:
            _unlink_quietly(self.lock)
        super().teardown()


# --- open.creates-directory ----------------------------------------------------------------------------


class CreatesDirectoryOnFirstWrite(_Own):
    """Breaks open.creates-directory: open only checks the path; the directory is created by the first write."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            raise NotADirectoryError(errno.ENOTDIR, "destination path is not a directory", self.directory)

    def write(self, records: Sequence[Record]) -> int:
        os.makedirs(self.directory, exist_ok=True)
        return super().write(records)


class CreatesAtMostTwoLevels(_Knows):
    """Breaks open.creates-directory: open creates the directory and its parent, not further missing ancestors."""

    def open(self) -> None:
        parent = os.path.dirname(self.directory)
        if not os.path.isdir(parent):
            os.mkdir(parent, 0o755)
        super().open()


# --- open.keeps-existing -------------------------------------------------------------------------------


class _CleansOnOpen(_Knows):
    """Removes the directory's entries that `doomed` picks, right after opening."""

    def doomed(self, entry: os.DirEntry) -> bool:
        return False

    def open(self) -> None:
        super().open()
        for entry in list(os.scandir(self.directory)):
            if self.doomed(entry):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    _unlink_quietly(entry.path)


class RemovesEmptyFilesOnOpen(_CleansOnOpen):
    """Breaks open.keeps-existing: open deletes zero-length files, taking them for leftovers of interrupted writes."""

    def doomed(self, entry: os.DirEntry) -> bool:
        return entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size == 0


class RemovesSubdirectoriesOnOpen(_CleansOnOpen):
    """Breaks open.keeps-existing: open removes sub-directories (keys are files, so a directory is "junk")."""

    def doomed(self, entry: os.DirEntry) -> bool:
        return entry.is_dir(follow_symlinks=False)


class RemovesDotfilesOnOpen(_CleansOnOpen):
    """Breaks open.keeps-existing: open deletes every hidden file, an over-broad cleanup of its own '.~' temp files."""

    def doomed(self, entry: os.DirEntry) -> bool:
        return entry.name.startswith(".") and entry.is_file(follow_symlinks=False)


class ChmodsOnOpen(_Knows):
    """Breaks open.keeps-existing: open chmods the (existing) directory to 0o700."""

    def open(self) -> None:
        super().open()
        os.chmod(self.directory, 0o700)


# --- open.not-a-directory ------------------------------------------------------------------------------


class ParentFileUnnamed(_Knows):
    """Breaks open.not-a-directory: a regular file as a parent gives an error that does not name the path."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            raise NotADirectoryError(errno.ENOTDIR, "destination path is not a directory", self.directory)
        try:
            os.makedirs(self.directory, exist_ok=True)
        except NotADirectoryError:
            raise NotADirectoryError(errno.ENOTDIR, "a parent of the destination is not a directory") from None


class MovesFileAside(_Knows):
    """Breaks open.not-a-directory: a regular file at the path is renamed to `<path>.bak` and a directory made."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            os.rename(self.directory, self.directory + ".bak")
        super().open()


class AcceptsSymlinkOrFifo(_Knows):
    """Breaks open.not-a-directory: only a regular file is refused; a symlink to a file or a FIFO passes as existing."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and stat.S_ISREG(os.lstat(self.directory).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "destination path is a regular file", self.directory)
        try:
            os.makedirs(self.directory)
        except FileExistsError:
            pass  # already there


# --- open.unwritable -----------------------------------------------------------------------------------


class UnwritableDeferred(_Knows):
    """Breaks open.unwritable: permission denied in open is kept and returned later, by the first write."""

    deferred: OSError | None = None

    def open(self) -> None:
        try:
            super().open()
        except PermissionError as err:
            self.deferred = err

    def write(self, records: Sequence[Record]) -> int:
        if self.deferred is not None and records:
            raise WriteError(f"destination directory unusable: {self.deferred}", written=0)
        return super().write(records)


class UnwritableChmodsAncestor(_Knows):
    """Breaks open.unwritable: on permission denied, open makes the nearest existing ancestor writable and retries."""

    def open(self) -> None:
        try:
            super().open()
        except PermissionError:
            ancestor = os.path.dirname(self.directory)
            while not os.path.isdir(ancestor):
                ancestor = os.path.dirname(ancestor)
            os.chmod(ancestor, stat.S_IMODE(os.stat(ancestor).st_mode) | stat.S_IWUSR | stat.S_IXUSR)
            super().open()


class UnwritableNamesAncestor(_Knows):
    """Breaks open.unwritable: the error names the read-only ancestor, not the configured directory."""

    def open(self) -> None:
        try:
            super().open()
        except PermissionError:
            ancestor = os.path.dirname(self.directory)
            while not os.path.isdir(ancestor):
                ancestor = os.path.dirname(ancestor)
            raise PermissionError(errno.EACCES, "cannot create directories under", ancestor) from None


# --- write.empty-batch ---------------------------------------------------------------------------------


class EmptyBatchHeartbeat(_Knows):
    """Breaks write.empty-batch: write([]) returns 0 but records a heartbeat file in the directory."""

    def write(self, records: Sequence[Record]) -> int:
        if not records:
            with open(os.path.join(self.directory, ".heartbeat"), "w") as f:
                f.write("alive")
        return super().write(records)


class EmptyBatchIndexError(FileDestination):
    """Breaks write.empty-batch: write reads records[-1].position for its checkpoint first, so [] raises IndexError."""

    checkpoint = b""

    def write(self, records: Sequence[Record]) -> int:
        last = records[-1].position
        written = super().write(records)
        self.checkpoint = last
        return written


# --- write.round-trip ----------------------------------------------------------------------------------


class StructuredNotCanonical(_Own):
    """Breaks write.round-trip: structured payloads are stored as json.dumps(data), not canonical JSON."""

    def apply(self, record: Record, path: bytes) -> None:
        after = record.payload.after
        if isinstance(after, StructuredData):
            self.store(path, json.dumps(after.data).encode())
        else:
            super().apply(record, path)


class OverwriteWithoutTruncate(_Own):
    """Breaks write.round-trip: values are written over the existing file without O_TRUNC, keeping a longer tail."""

    def store(self, path: bytes, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            _write_fully(fd, data)
        finally:
            os.close(fd)


class TruncatesAt1KiB(FileDestination):
    """Breaks write.round-trip: raw payloads longer than 1024 bytes are cut to 1024 bytes."""

    def _replace(self, path: bytes, data: bytes, sync: bool) -> None:
        super()._replace(path, data[:1024], sync)


class CrashesOnAfterNoneUnlessDelete(_Own):
    """Breaks write.round-trip: only deletes may have after=None; a create/update/snapshot without one raises."""

    def apply(self, record: Record, path: bytes) -> None:
        if record.operation is Operation.delete:
            self.remove(path)
        else:
            self.store(path, record.payload.after.bytes())  # type: ignore[union-attr]  # AttributeError for None


class DeleteOfAbsentKeyRaises(_Own):
    """Breaks write.round-trip: deleting a key that was never written raises (FileNotFoundError is not ignored)."""

    def remove(self, path: bytes) -> None:
        os.unlink(path)


# --- write.count ---------------------------------------------------------------------------------------


class CountsDistinctKeys(FileDestination):
    """Breaks write.count: a whole batch returns the number of distinct keys (files touched), not of records."""

    def write(self, records: Sequence[Record]) -> int:
        super().write(records)
        return len({r.key.raw for r in records})  # type: ignore[union-attr]


class FloatCount(FileDestination):
    """Breaks write.count: the count comes out of rate arithmetic as a float (3.0 for 3 records)."""

    def write(self, records: Sequence[Record]) -> int:
        return super().write(records) * 1.0  # type: ignore[return-value]


class DropsNonUtf8KeysSilently(_Own):
    """Breaks write.count: records with non-UTF-8 keys are accepted and counted, but dropped (not written)."""

    def name_of(self, key: Any) -> bytes | None:
        if isinstance(key, RawData) and _shape_ok(key.raw):
            return key.raw
        return super().name_of(key)

    def apply(self, record: Record, path: bytes) -> None:
        if _is_utf8(record.key.raw):  # type: ignore[union-attr]
            super().apply(record, path)


class CountsLastChunkOnly(FileDestination):
    """Breaks write.count: batches are written in chunks of 16 records and only the last chunk's count is returned."""

    CHUNK: ClassVar[int] = 16

    def write(self, records: Sequence[Record]) -> int:
        written = 0
        for start in range(0, len(records), self.CHUNK):
            try:
                written = super().write(records[start:start + self.CHUNK])
            except WriteError as err:
                raise WriteError(err.message, written=start + err.written) from err
        return written


# --- write.invalid-key-count ---------------------------------------------------------------------------


class NulKeyReachesOs(_Own):
    """Breaks write.invalid-key-count: the key check forgets NUL, so the OS call on its path raises ValueError."""

    def name_of(self, key: Any) -> bytes | None:
        if isinstance(key, RawData) and _shape_ok(key.raw.replace(b"\0", b"_")) and _is_utf8(key.raw):
            return key.raw
        return super().name_of(key)


class WrittenCountsDistinctKeys(FileDestination):
    """Breaks write.invalid-key-count: WriteError.written counts the distinct keys before the invalid one."""

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            done = {r.key.raw for r in records[:err.written]}  # type: ignore[union-attr]
            raise WriteError(err.message, written=len(done)) from err


class AcceptsStructuredKeys(_Own):
    """Breaks write.invalid-key-count: StructuredData keys are written under their JSON text if it has no '/'."""

    def name_of(self, key: Any) -> bytes | None:
        if isinstance(key, StructuredData):
            name = key.bytes()
            return name if _shape_ok(name) else None
        return super().name_of(key)


class WrittenOnePastInvalid(FileDestination):
    """Breaks write.invalid-key-count: an invalid key at index i raises WriteError(written=i+1)."""

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            if key_problem(records[err.written].key) is None:
                raise
            raise WriteError(err.message, written=err.written + 1) from err


# --- write.recovers ------------------------------------------------------------------------------------


class RetriesFailedTail(FileDestination):
    """Breaks write.recovers: the valid records after a failed one are kept and written before the next batch."""

    carry: list[Record] = []

    def write(self, records: Sequence[Record]) -> int:
        carry, self.carry = self.carry, []
        if carry and records:
            super().write(carry)
        try:
            return super().write(records)
        except WriteError as err:
            self.carry = [r for r in records[err.written + 1:] if key_problem(r.key) is None]
            raise


class StaleResumeOffset(FileDestination):
    """Breaks write.recovers: the index where a batch failed is kept as a resume offset for whatever batch is next."""

    resume = 0

    def write(self, records: Sequence[Record]) -> int:
        start = self.resume
        try:
            super().write(records[start:])
        except WriteError as err:
            self.resume = start + err.written
            raise WriteError(err.message, written=start + err.written) from err
        self.resume = 0
        return len(records)


class RefusesAfterIoError(FileDestination):
    """Breaks write.recovers: after an OSError during a write every later batch is refused; invalid keys are fine."""

    broken = False

    def write(self, records: Sequence[Record]) -> int:
        if self.broken and records:
            raise WriteError("an earlier I/O error left the destination unusable", written=0)
        try:
            return super().write(records)
        except WriteError as err:
            if isinstance(err.__cause__, OSError):
                self.broken = True
            raise


# --- write.no-mutation ---------------------------------------------------------------------------------


class SortsBatchInPlace(FileDestination):
    """Breaks write.no-mutation: a batch of valid keys is sorted in place by key (stable) to group the writes."""

    def write(self, records: Sequence[Record]) -> int:
        if isinstance(records, list) and all(key_problem(r.key) is None for r in records):
            records.sort(key=lambda r: r.key.raw)  # type: ignore[union-attr]
        return super().write(records)


class AnnotatesFailedRecord(FileDestination):
    """Breaks write.no-mutation: the record that stops a batch gets metadata "file.error" set to the reason."""

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            records[err.written].metadata["file.error"] = err.message
            raise


class DropsBeforeImages(FileDestination):
    """Breaks write.no-mutation: once written, each record's payload.before is set to None in place to save memory."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        for record in records:
            if record.payload.before is not None:
                record.payload.__dict__["before"] = None
        return written


# --- write.large-payload -------------------------------------------------------------------------------


class DropsTailOfLastChunk(FileDestination):
    """Breaks write.large-payload: payloads of 1 MiB or more are written in whole 1 MiB chunks, dropping the rest."""

    def _replace(self, path: bytes, data: bytes, sync: bool) -> None:
        if len(data) >= MIB:
            data = data[: len(data) - len(data) % MIB]
        super()._replace(path, data, sync)


class NulTerminatesLarge(FileDestination):
    """Breaks write.large-payload: payloads over 1 MiB take a C-string path that stops at the first NUL byte."""

    def _replace(self, path: bytes, data: bytes, sync: bool) -> None:
        if len(data) > MIB:
            data = data.split(b"\0", 1)[0]
        super()._replace(path, data, sync)


# --- ack.in-order --------------------------------------------------------------------------------------


class AckOnlyBatchEnd(FileDestination):
    """Breaks ack.in-order: ack accepts only the last position of a written batch (a cumulative ack), else raises."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_ends: set[bytes] = set()

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        if records:
            self.batch_ends.add(records[-1].position)
        return written

    def ack(self, position: bytes) -> None:
        if position not in self.batch_ends:
            raise ValueError(f"ack {position!r} is not the end of a written batch")
        self.batch_ends.discard(position)


class AckForgetsDeletes(FileDestination):
    """Breaks ack.in-order: only records with a value are remembered as pending, so acking a delete raises KeyError."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: set[bytes] = set()

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        self.pending.update(r.position for r in records if r.payload.after is not None)
        return written

    def ack(self, position: bytes) -> None:
        self.pending.remove(position)


class AckCheckpointInDirectory(_Knows):
    """Breaks ack.in-order: ack records the acked position in a `.checkpoint` file among the data files."""

    def ack(self, position: bytes) -> None:
        with open(os.path.join(self.directory, ".checkpoint"), "wb") as f:
            f.write(position)


class AckAfterFailedWriteRaises(FileDestination):
    """Breaks ack.in-order: a batch failing part-way never registers its positions; acking its written ones raises."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: set[bytes] = set()

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)  # on WriteError, records[:written] are written but never pending
        self.pending.update(r.position for r in records)
        return written

    def ack(self, position: bytes) -> None:
        if position not in self.pending:
            raise KeyError(f"ack for a position that was never written: {position!r}")
        self.pending.discard(position)


# --- lifecycle.valid-orders ----------------------------------------------------------------------------


class WriteAfterParametersFails(_Knows):
    """Breaks lifecycle.valid-orders: parameters() rebuilds the spec and drops the open writer; the next write fails."""

    writer: dict[bytes, int] | None = None

    def open(self) -> None:
        super().open()
        self.writer = {}

    def parameters(self) -> Mapping[str, Parameter]:
        self.writer = None
        return super().parameters()

    def write(self, records: Sequence[Record]) -> int:
        if self.writer is None and self.opened:
            raise RuntimeError("no writer: the destination was not opened")
        return super().write(records)


class PartialAckBlocksWrite(FileDestination):
    """Breaks lifecycle.valid-orders: a write while the previous batch is only partly acked raises (flow control)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch: set[bytes] = set()
        self.acked = 0

    def write(self, records: Sequence[Record]) -> int:
        if 0 < self.acked < len(self.batch):
            raise RuntimeError("the previous batch is only partly acknowledged")
        written = super().write(records)
        if records:
            self.batch, self.acked = {r.position for r in records}, 0
        return written

    def ack(self, position: bytes) -> None:
        if position in self.batch:
            self.acked += 1


# --- lifecycle.out-of-order ----------------------------------------------------------------------------


class AckUnguarded(LifecycleGuard):
    """Breaks lifecycle.out-of-order: a lifecycle guard that lets ack through in every state ("acks are harmless")."""

    def ack(self, position: bytes) -> Any:
        return self.inner.ack(position)


class ReusableAfterTeardown(LifecycleGuard):
    """Breaks lifecycle.out-of-order: a lifecycle guard whose teardown returns to "new", so configure works again."""

    def teardown(self) -> Any:
        result = super().teardown()
        self.state = "new"
        return result


class ForbiddenWriteIsWriteError(LifecycleGuard):
    """Breaks lifecycle.out-of-order: a lifecycle guard that answers a write outside open with WriteError(written=0)."""

    def write(self, records: Sequence[Record]) -> Any:
        if self.state != "open":
            raise WriteError(f"write() in state {self.state!r}: nothing written", written=0)
        return super().write(records)


# --- teardown.any-state --------------------------------------------------------------------------------


class TeardownAfterFailedOpenRaises(_Knows):
    """Breaks teardown.any-state: after a failed open, teardown closes a directory descriptor that was never opened."""

    attempted = False
    fd: int | None = None

    def open(self) -> None:
        self.attempted = True
        super().open()
        self.fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def teardown(self) -> None:
        if self.attempted:
            os.close(self.fd)  # type: ignore[arg-type]  # TypeError when open failed
            self.attempted, self.fd = False, None
        super().teardown()


class TeardownRaisesStoredWriteError(FileDestination):
    """Breaks teardown.any-state: teardown re-raises the last WriteError ("flush" of a failed buffer)."""

    error: WriteError | None = None

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            self.error = err
            raise

    def teardown(self) -> None:
        super().teardown()
        if self.error is not None:
            raise RuntimeError(f"closing after a failed write: {self.error}")


# --- teardown.idempotent -------------------------------------------------------------------------------


class _Session:
    """Something open() acquires and teardown() closes."""

    def close(self) -> None:
        pass


class SessionClosedTwice(FileDestination):
    """Breaks teardown.idempotent: behind _RepeatTeardownGuard, a second teardown closes a session already None."""

    session: _Session | None = None
    opened = False

    def open(self) -> None:
        super().open()
        self.session, self.opened = _Session(), True

    def teardown(self) -> None:
        if self.opened:
            self.session.close()  # type: ignore[union-attr]  # AttributeError the second time
            self.session = None
        super().teardown()


class _RepeatTeardownGuard(LifecycleGuard):
    """A lifecycle guard that passes a repeated teardown on to the destination instead of answering it."""

    def teardown(self) -> Any:
        return self._result("teardown", self._transition(self.inner.teardown, "torn down", "torn down"))


class LogsRepeatedTeardown(DestinationMiddleware):
    """Breaks teardown.idempotent: an outer middleware whose second teardown appends a note in the directory."""

    closed = False
    directory = ""

    def configure(self, config: Mapping[str, str]) -> Any:
        self.directory = config.get("directory", "").strip()
        return self.inner.configure(config)

    def teardown(self) -> Any:
        if self.closed:
            if os.path.isdir(self.directory):
                with open(os.path.join(self.directory, ".teardown-log"), "a") as f:
                    f.write("teardown called again\n")
            return None
        self.closed = True
        return self.inner.teardown()


class SecondTeardownAfterFailedWrite(DestinationMiddleware):
    """Breaks teardown.idempotent: an outer middleware whose second teardown raises if a write had failed."""

    failed = False
    closed = False

    def write(self, records: Sequence[Record]) -> Any:
        try:
            return self.inner.write(records)
        except WriteError:
            self.failed = True
            raise

    def teardown(self) -> Any:
        if self.closed and self.failed:
            raise RuntimeError("already torn down after a failed write")
        self.closed = True
        return self.inner.teardown()


# --- teardown.releases ---------------------------------------------------------------------------------


class LeaksFdOnDelete(_Knows):
    """Breaks teardown.releases: the delete path opens a directory descriptor for fsync and never closes it."""

    directory_fd: int | None = None

    def _remove(self, path: bytes) -> None:
        super()._remove(path)
        if self.directory_fd is None:
            self.directory_fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        os.fsync(self.directory_fd)


class LeaksExecutorThread(FileDestination):
    """Breaks teardown.releases: the first write starts a thread pool (for background fsync) that is never shut down."""

    pool: concurrent.futures.ThreadPoolExecutor | None = None

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        if records:
            if self.pool is None:
                self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="variant-sync")
            self.pool.submit(lambda: None)
        return written


class LeaksTempFdOnFailedWrite(_Own):
    """Breaks teardown.releases: the temp file is opened before the key check and left open when the write fails."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            after, fd, temp = record.payload.after, None, b""
            try:
                if after is not None:
                    temp = self.temp_path()
                    fd = os.open(temp, _TEMP_FLAGS, 0o644)
                    _write_fully(fd, after.bytes())
                name = self.name_of(record.key)
                if name is None:
                    raise WriteError(f"record {index}: invalid key: {key_problem(record.key)}", written=index)
                if fd is None:
                    self.remove(os.path.join(self.base, name))
                else:
                    os.close(fd)
                    os.rename(temp, os.path.join(self.base, name))
            except (OSError, WriteError) as err:
                if temp:
                    _unlink_quietly(temp)  # the file goes, its descriptor stays open
                if isinstance(err, WriteError):
                    raise
                raise self.failed(index, err) from err
        return len(records)


class LeaksFdWhenAWriteFails(_Own):
    """Breaks teardown.releases: when os.write raises (EIO, a full disk), the temp file is removed but its
    descriptor is never closed; clean writes and invalid keys release everything."""

    def fill(self, temp: bytes, data: bytes) -> None:
        fd = os.open(temp, _TEMP_FLAGS, 0o644)
        _write_fully(fd, data)  # no try/finally: an OSError here leaves fd open
        if self.sync:
            os.fsync(fd)
        os.close(fd)


# --- teardown.keeps-data -------------------------------------------------------------------------------


class TeardownRemovesEmptyFiles(_Knows):
    """Breaks teardown.keeps-data: teardown "compacts" the directory by deleting zero-length files."""

    def teardown(self) -> None:
        if self.opened and os.path.isdir(self.directory):
            for entry in os.scandir(self.directory):
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_size == 0:
                    _unlink_quietly(entry.path)
        self.opened = False
        super().teardown()


class TeardownRollsBackUnacked(_Own):
    """Breaks teardown.keeps-data: teardown deletes the files of records whose positions were never acked."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[bytes, bytes] = {}  # path -> position of its last stored record
        self.acked: set[bytes] = set()

    def apply(self, record: Record, path: bytes) -> None:
        super().apply(record, path)
        self.last[path] = record.position

    def ack(self, position: bytes) -> None:
        self.acked.add(position)

    def teardown(self) -> None:
        for path, position in self.last.items():
            if position not in self.acked:
                _unlink_quietly(path)
        self.last.clear()
        super().teardown()


class TeardownDropsPartialBatch(_Own):
    """Breaks teardown.keeps-data: teardown deletes what a failed batch wrote before its error (a "rollback")."""

    def __init__(self) -> None:
        super().__init__()
        self.partial: list[bytes] = []

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            names = [self.name_of(r.key) for r in records[:err.written] if r.payload.after is not None]
            self.partial += [os.path.join(self.base, name) for name in names if name is not None]
            raise

    def teardown(self) -> None:
        for path in self.partial:
            _unlink_quietly(path)
        self.partial = []
        super().teardown()


# --- fault.disk-full -----------------------------------------------------------------------------------


class DiskFullCountsFailedRecord(_Own):
    """Breaks fault.disk-full: on ENOSPC the partly stored record is counted too (written=index+1)."""

    def failed(self, index: int, err: OSError) -> WriteError:
        if err.errno == errno.ENOSPC:
            return WriteError(f"record {index}: disk full", written=index + 1)
        return super().failed(index, err)


class DiskFullRollsBackBatch(_Own):
    """Breaks fault.disk-full: on ENOSPC the batch's stored files are deleted, but WriteError says written=index."""

    def write(self, records: Sequence[Record]) -> int:
        self.stored: list[bytes] = []
        return super().write(records)

    def store(self, path: bytes, data: bytes) -> None:
        super().store(path, data)
        self.stored.append(path)

    def failed(self, index: int, err: OSError) -> WriteError:
        if err.errno == errno.ENOSPC:
            for path in self.stored:
                _unlink_quietly(path)
        return super().failed(index, err)


class DiskFullLeavesTemp(_Own):
    """Breaks fault.disk-full: on ENOSPC the failing record's temporary file is kept (to resume later), not removed."""

    def discard(self, temp: bytes, err: OSError) -> None:
        if err.errno != errno.ENOSPC:
            super().discard(temp, err)


class IgnoresShortWrites(_Own):
    """Breaks fault.disk-full: each value goes out in one os.write whose count is never looked at, so a short
    write (what a nearly full disk gives) renames a truncated file into place and counts it."""

    def fill(self, temp: bytes, data: bytes) -> None:
        fd = os.open(temp, _TEMP_FLAGS, 0o644)
        try:
            os.write(fd, data)
            if self.sync:
                os.fsync(fd)
        finally:
            os.close(fd)


# --- fault.io-error ------------------------------------------------------------------------------------


class DeletesBeforeRename(_Own):
    """Breaks fault.io-error: an overwrite removes the old file first and then renames the new one in, so a
    failed rename loses the key's old value (neither the old nor the new value is left)."""

    def store(self, path: bytes, data: bytes) -> None:
        temp = self.temp_path()
        try:
            self.fill(temp, data)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            os.rename(temp, path)
        except OSError as err:
            self.discard(temp, err)
            raise


class RenameErrorLeavesTemp(_Own):
    """Breaks fault.io-error: when the rename into place fails, the temporary file is left in the directory."""

    def store(self, path: bytes, data: bytes) -> None:
        temp = self.temp_path()
        try:
            self.fill(temp, data)
        except OSError:
            _unlink_quietly(temp)
            raise
        os.rename(temp, path)


class RenameErrorIgnored(_Own):
    """Breaks fault.io-error: a failed rename is taken as done (as on some network filesystems); the record counts."""

    def store(self, path: bytes, data: bytes) -> None:
        temp = self.temp_path()
        try:
            self.fill(temp, data)
        except OSError:
            _unlink_quietly(temp)
            raise
        try:
            os.rename(temp, path)
        except OSError:
            _unlink_quietly(temp)


class FsyncErrorSwallowed(_Own):
    """Breaks fault.io-error: with sync=true an fsync error is swallowed, the file dropped and the record counted."""

    def store(self, path: bytes, data: bytes) -> None:
        temp = self.temp_path()
        durable = True
        try:
            fd = os.open(temp, _TEMP_FLAGS, 0o644)
            try:
                _write_fully(fd, data)
                try:
                    os.fsync(fd)
                except OSError:
                    durable = False
            finally:
                os.close(fd)
            if durable:
                os.rename(temp, path)
        except OSError:
            _unlink_quietly(temp)
            raise
        if not durable:
            _unlink_quietly(temp)


# --- safety.confined -----------------------------------------------------------------------------------


class DeleteChecksOnlyAbsolute(_Own):
    """Breaks safety.confined: deletes check only for absolute keys, so "../x" removes a file outside the directory."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            key = record.key
            try:
                if record.payload.after is None and isinstance(key, RawData) and key.raw and not os.path.isabs(key.raw):
                    self.remove(os.path.normpath(os.path.join(self.base, key.raw)))
                else:
                    super().write([record])
            except WriteError as err:
                raise WriteError(err.message, written=index) from err
            except (OSError, ValueError) as err:
                raise WriteError(f"record {index}: {err}", written=index) from err
        return len(records)


class BacksUpOutside(_Own):
    """Breaks safety.confined: before overwriting a key, its old value is copied to `<directory>/../.backup/`."""

    def store(self, path: bytes, data: bytes) -> None:
        if os.path.isfile(path):
            backup = os.path.join(os.path.dirname(os.fsencode(self.directory)), b".backup")
            os.makedirs(backup, exist_ok=True)
            shutil.copyfile(path, os.path.join(backup, os.path.basename(path)))
        super().store(path, data)


class _StateInHome(_Own):
    """Keeps a state file in ~/.file-destination/ (unique to the directory), removed again by teardown."""

    state = ""

    def save_state(self, content: bytes) -> None:
        folder = os.path.join(os.path.expanduser("~"), ".file-destination")
        os.makedirs(folder, exist_ok=True)
        self.state = os.path.join(folder, _state_name(self.directory, ".state"))
        with open(self.state, "wb") as f:
            f.write(content)

    def teardown(self) -> None:
        if self.state:
            _unlink_quietly(self.state)
            try:
                os.rmdir(os.path.dirname(self.state))
            except OSError:
                pass
        super().teardown()


class LockInHomeOnWrite(_StateInHome):
    """Breaks safety.confined: every write first takes a lock file in ~/.file-destination/ (removed by teardown)."""

    def write(self, records: Sequence[Record]) -> int:
        self.save_state(b"locked by pid %d" % os.getpid())
        return super().write(records)


class CheckpointInHomeAfterSuccess(_StateInHome):
    """Breaks safety.confined: a batch written whole saves its last position to ~/.file-destination/."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        if records:
            self.save_state(records[-1].position)
        return written


# --- safety.no-symlink-follow --------------------------------------------------------------------------


class InPlaceWriteFollowsLink(_Own):
    """Breaks safety.no-symlink-follow: values are written with open(path, "wb"), which writes through a symlink."""

    def store(self, path: bytes, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)


class SecureDeleteTruncates(_Own):
    """Breaks safety.no-symlink-follow: delete first truncates the file ("secure delete"), through a symlink too."""

    def remove(self, path: bytes) -> None:
        if os.path.isfile(path):
            with open(path, "r+b") as f:
                f.truncate(0)
        super().remove(path)


class FixedTempName(_Own):
    """Breaks safety.no-symlink-follow: the temporary file is always `.tmp-write`, opened without O_NOFOLLOW/O_EXCL."""

    def temp_path(self) -> bytes:
        return self.base + b".tmp-write"

    def fill(self, temp: bytes, data: bytes) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_fully(fd, data)
        finally:
            os.close(fd)


# --- value spaces: config spellings, opaque positions, long escapable keys, payloads past 8 MiB -------------


class PythonIntFlushRecords(_ExtraParameters):
    """Breaks configure.invalid-values: the int `flush.records` is parsed with Python's int(), which also takes 1_0,
    +0_5 and non-ASCII digits (٣, ５) that Go's strconv.ParseInt, and so Conduit, refuses."""

    EXTRA = {"flush.records": Parameter(description="Records buffered before the directory is synced.",
                                        default="100", type=ParameterType.int,
                                        validations=(ValidationGreaterThan(0),))}

    def configure(self, config: Mapping[str, str]) -> None:
        given = {k.strip(): v for k, v in config.items()}
        if "flush.records" in given:
            try:
                records = int(given["flush.records"])
            except ValueError:
                raise ConfigError(f"flush.records: {given['flush.records']!r} is not an int",
                                  keys=["flush.records"]) from None
            if records <= 0:
                raise ConfigError("flush.records: must be greater than 0", keys=["flush.records"])
        FileDestination.configure(self, {k: v for k, v in config.items() if k.strip() != "flush.records"})


class YamlBoolSync(FileDestination):
    """Breaks configure.invalid-values: `sync` is parsed as YAML 1.1 booleans, any case (yes, on, y, TrUe), which
    Go's strconv.ParseBool refuses; values that are no boolean at all (maybe) are still refused."""

    TRUE: ClassVar[frozenset[str]] = frozenset({"1", "t", "true", "y", "yes", "on"})
    FALSE: ClassVar[frozenset[str]] = frozenset({"0", "f", "false", "n", "no", "off"})

    def configure(self, config: Mapping[str, str]) -> None:
        values = {k: v for k, v in config.items()}
        for key, value in config.items():
            if key.strip() == "sync":
                word = value.strip().lower()
                if word not in self.TRUE | self.FALSE:
                    raise ConfigError(f"sync: {value!r} is not a boolean", keys=["sync"])
                values[key] = "true" if word in self.TRUE else "false"
        super().configure(values)


class DefaultRefusedExplicitly(_ExtraParameters):
    """Breaks parameters.defaults-valid: `compression` defaults to "none", which configure only takes as the value
    left out; written out, as Conduit's UI and config files do, it is refused (the codec table lacks it)."""

    EXTRA = {"compression": Parameter(description="How values are compressed on disk.", default="none",
                                      validations=(ValidationInclusion(("none", "gzip", "zstd")),))}
    CODECS: ClassVar[dict[str, str]] = {"gzip": "gzip", "zstd": "zstd"}

    def configure(self, config: Mapping[str, str]) -> None:
        given = {k.strip(): v.strip() for k, v in config.items()}
        if "compression" in given and given["compression"] not in self.CODECS:
            raise ConfigError(f"compression: unknown codec {given['compression']!r}", keys=["compression"])
        FileDestination.configure(self, {k: v for k, v in config.items() if k.strip() != "compression"})


class AckParsesIntPosition(FileDestination):
    """Breaks ack.in-order: ack keeps the last acked position as an int (int(position)), so a position that is not a
    decimal number (OpenCDC positions are opaque bytes: a WAL LSN, JSON, binary) raises ValueError."""

    last_acked = -1

    def ack(self, position: bytes) -> None:
        self.last_acked = int(position)


# What a Windows-safe name mapping percent-escapes: '%' itself, <>:"|?*\ and control characters.
_ESCAPED = re.compile(rb'[%<>:"|?*\\\x00-\x1f\x7f]')
_ESCAPE = re.compile(rb"%([0-9A-F]{2})")


class EscapesKeyCharacters(_Own):
    """Breaks write.round-trip: key characters a file name may not hold elsewhere (%, <>:"|?*\\, controls) are
    percent-escaped, three bytes each, so a valid key of 86 such bytes or more makes a name over NAME_MAX (255)."""

    def name_of(self, key: Any) -> bytes | None:
        if key_problem(key) is not None:
            return None
        return _ESCAPED.sub(lambda m: b"%%%02X" % m.group()[0], key.raw)


def _unescaping_reader(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """EscapesKeyCharacters' read-back: the directory's files, their names unescaped."""
    held = directory_reader("directory")(config)
    return {_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), name): value for name, value in held.items()}


class DropsTailOver8Mib(FileDestination):
    """Breaks write.large-payload: a value is copied through one 8 MiB buffer, so what is past 8 MiB is dropped."""

    BUFFER: ClassVar[int] = 8 * MIB

    def _replace(self, path: bytes, data: bytes, sync: bool) -> None:
        super()._replace(path, data[: self.BUFFER], sync)


# --- the registrations ---------------------------------------------------------------------------------

_GUARDLESS = (RateLimit, BatchSize)  # the default middleware after its lifecycle guard

parameters_grow_when_open = _registration(_factory(ParametersGrowWhenOpen))
parameters_fail_when_torn_down = _registration(_factory(ParametersFailWhenTornDown))
default_outside_inclusion = _registration(_factory(DefaultOutsideInclusion))
default_wrong_type = _registration(_factory(DefaultWrongType))

optional_key_required = _registration(_factory(OptionalKeyRequired))
hidden_length_limit = _registration(_factory(HiddenLengthLimit))
required_type_error = _registration(_factory(RequiredTypeError))
required_checked_at_open = _registration(_factory(RequiredCheckedAtOpen))
required_unnamed = _registration(_factory(RequiredUnnamed))
range_not_enforced = _registration(_factory(RangeNotEnforced))
inclusion_falls_back = _registration(_factory(InclusionFallsBack))
unknown_key_not_named = _registration(_factory(UnknownKeyNotNamed))
ignores_dotted_unknown_keys = _registration(_factory(IgnoresDottedUnknownKeys))
ignores_keys_outside_alphabet = _registration(_factory(IgnoresKeysOutsideAlphabet))
allows_sdk_prefixed_keys = _registration(_factory(AllowsSdkPrefixedKeys))
writes_config_marker = _registration(_factory(WritesConfigMarker))
removes_stale_temps = _registration(_factory(RemovesStaleTemps))
probes_parent_writability = _registration(_factory(ProbesParentWritability))
lock_in_tmpdir_on_configure = _registration(_factory(LockInTmpdirOnConfigure))

creates_directory_on_first_write = _registration(_factory(CreatesDirectoryOnFirstWrite))
creates_at_most_two_levels = _registration(_factory(CreatesAtMostTwoLevels))
removes_empty_files_on_open = _registration(_factory(RemovesEmptyFilesOnOpen))
removes_subdirectories_on_open = _registration(_factory(RemovesSubdirectoriesOnOpen))
removes_dotfiles_on_open = _registration(_factory(RemovesDotfilesOnOpen))
chmods_on_open = _registration(_factory(ChmodsOnOpen))
parent_file_unnamed = _registration(_factory(ParentFileUnnamed))
moves_file_aside = _registration(_factory(MovesFileAside))
accepts_symlink_or_fifo = _registration(_factory(AcceptsSymlinkOrFifo))
unwritable_deferred = _registration(_factory(UnwritableDeferred))
unwritable_chmods_ancestor = _registration(_factory(UnwritableChmodsAncestor))
unwritable_names_ancestor = _registration(_factory(UnwritableNamesAncestor))

empty_batch_heartbeat = _registration(_factory(EmptyBatchHeartbeat))
empty_batch_index_error = _registration(_factory(EmptyBatchIndexError))
structured_not_canonical = _registration(_factory(StructuredNotCanonical))
overwrite_without_truncate = _registration(_factory(OverwriteWithoutTruncate))
truncates_at_1_kib = _registration(_factory(TruncatesAt1KiB))
crashes_on_after_none_unless_delete = _registration(_factory(CrashesOnAfterNoneUnlessDelete))
delete_of_absent_key_raises = _registration(_factory(DeleteOfAbsentKeyRaises))
counts_distinct_keys = _registration(_factory(CountsDistinctKeys))
float_count = _registration(_factory(FloatCount))
drops_non_utf8_keys_silently = _registration(_factory(DropsNonUtf8KeysSilently))
counts_last_chunk_only = _registration(_factory(CountsLastChunkOnly))
nul_key_reaches_os = _registration(_factory(NulKeyReachesOs))
written_counts_distinct_keys = _registration(_factory(WrittenCountsDistinctKeys))
accepts_structured_keys = _registration(_factory(AcceptsStructuredKeys))
written_one_past_invalid = _registration(_factory(WrittenOnePastInvalid))
retries_failed_tail = _registration(_factory(RetriesFailedTail))
stale_resume_offset = _registration(_factory(StaleResumeOffset))
refuses_after_io_error = _registration(_factory(RefusesAfterIoError))
sorts_batch_in_place = _registration(_factory(SortsBatchInPlace))
annotates_failed_record = _registration(_factory(AnnotatesFailedRecord))
drops_before_images = _registration(_factory(DropsBeforeImages))
drops_tail_of_last_chunk = _registration(_factory(DropsTailOfLastChunk))
nul_terminates_large = _registration(_factory(NulTerminatesLarge))

ack_only_batch_end = _registration(_factory(AckOnlyBatchEnd))
ack_forgets_deletes = _registration(_factory(AckForgetsDeletes))
ack_checkpoint_in_directory = _registration(_factory(AckCheckpointInDirectory))
ack_after_failed_write_raises = _registration(_factory(AckAfterFailedWriteRaises))
write_after_parameters_fails = _registration(_factory(WriteAfterParametersFails))
partial_ack_blocks_write = _registration(_factory(PartialAckBlocksWrite))
ack_unguarded = _registration(_factory(FileDestination, AckUnguarded, *_GUARDLESS))
reusable_after_teardown = _registration(_factory(FileDestination, ReusableAfterTeardown, *_GUARDLESS))
forbidden_write_is_write_error = _registration(_factory(FileDestination, ForbiddenWriteIsWriteError, *_GUARDLESS))

teardown_after_failed_open_raises = _registration(_factory(TeardownAfterFailedOpenRaises))
teardown_raises_stored_write_error = _registration(_factory(TeardownRaisesStoredWriteError))
session_closed_twice = _registration(_factory(SessionClosedTwice, _RepeatTeardownGuard, *_GUARDLESS))
logs_repeated_teardown = _registration(_factory(FileDestination, LogsRepeatedTeardown,
                                                *default_destination_middleware()))
second_teardown_after_failed_write = _registration(_factory(FileDestination, SecondTeardownAfterFailedWrite,
                                                            *default_destination_middleware()))
leaks_fd_on_delete = _registration(_factory(LeaksFdOnDelete))
leaks_executor_thread = _registration(_factory(LeaksExecutorThread))
leaks_temp_fd_on_failed_write = _registration(_factory(LeaksTempFdOnFailedWrite))
leaks_fd_when_a_write_fails = _registration(_factory(LeaksFdWhenAWriteFails))
teardown_removes_empty_files = _registration(_factory(TeardownRemovesEmptyFiles))
teardown_rolls_back_unacked = _registration(_factory(TeardownRollsBackUnacked))
teardown_drops_partial_batch = _registration(_factory(TeardownDropsPartialBatch))

disk_full_counts_failed_record = _registration(_factory(DiskFullCountsFailedRecord))
disk_full_rolls_back_batch = _registration(_factory(DiskFullRollsBackBatch))
disk_full_leaves_temp = _registration(_factory(DiskFullLeavesTemp))
ignores_short_writes = _registration(_factory(IgnoresShortWrites))
deletes_before_rename = _registration(_factory(DeletesBeforeRename))
rename_error_leaves_temp = _registration(_factory(RenameErrorLeavesTemp))
rename_error_ignored = _registration(_factory(RenameErrorIgnored))
fsync_error_swallowed = _registration(_factory(FsyncErrorSwallowed), sync="true")
delete_checks_only_absolute = _registration(_factory(DeleteChecksOnlyAbsolute))
backs_up_outside = _registration(_factory(BacksUpOutside))
lock_in_home_on_write = _registration(_factory(LockInHomeOnWrite))
checkpoint_in_home_after_success = _registration(_factory(CheckpointInHomeAfterSuccess))
in_place_write_follows_link = _registration(_factory(InPlaceWriteFollowsLink))
secure_delete_truncates = _registration(_factory(SecureDeleteTruncates))
fixed_temp_name = _registration(_factory(FixedTempName))

python_int_flush_records = _registration(_factory(PythonIntFlushRecords))
yaml_bool_sync = _registration(_factory(YamlBoolSync))
default_refused_explicitly = _registration(_factory(DefaultRefusedExplicitly))
ack_parses_int_position = _registration(_factory(AckParsesIntPosition))
escapes_key_characters = Registration(factory=_factory(EscapesKeyCharacters), config={"directory": "{tmp}/out"},
                                      read_back=_unescaping_reader, directory_param="directory")
drops_tail_over_8_mib = _registration(_factory(DropsTailOver8Mib))


# --- lifecycle.events ------------------------------------------------------------------------------------


class DeletedRemovesData(FileDestination):
    """Breaks lifecycle.events: OnDeleted "cleans up what the connector owns", every file it wrote included."""

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        directory = os.path.abspath(parse_config(config, FileConfig).directory)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


class _EventsNotImplemented(FileDestination):
    """A base declaring the events, each left to raise until a subclass implements it."""

    def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        raise NotImplementedError("lifecycle_on_created")


class CreatedNotImplemented(_EventsNotImplemented):
    """Breaks lifecycle.events: inherits an OnCreated that raises NotImplementedError (an absent event is a no-op;
    one that raises fails the connector's first start in Conduit)."""


class UpdatedAwaitsForever(FileDestination):
    """Breaks lifecycle.events: an async OnUpdated awaits an event that only the next open would set."""

    def __init__(self) -> None:
        super().__init__()
        self._opened: asyncio.Event | None = None

    async def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        self._opened = asyncio.Event()
        await self._opened.wait()


deleted_removes_data = _registration(_factory(DeletedRemovesData))
created_not_implemented = _registration(_factory(CreatedNotImplemented))
updated_awaits_forever = _registration(_factory(UpdatedAwaitsForever))
