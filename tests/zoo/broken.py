"""Deliberately broken destinations: each module-level Registration breaks one clause of CONTRACT.md (The clauses).

Most are the reference FileDestination with one thing overridden, behind the default middleware. Each
class docstring names the clause it breaks; tests/test_zoo.py checks that the suite reports exactly that.
"""

import dataclasses
import errno
import itertools
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    BatchSize,
    Change,
    ConfigError,
    Destination,
    DestinationMiddleware,
    LifecycleGuard,
    Parameter,
    RateLimit,
    RawData,
    Record,
    Registration,
    StructuredData,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
    parameters_from,
    parse_config,
)
from reference.file_destination import FileConfig, FileDestination, key_problem
from tests.zoo.events import (  # lifecycle.events' broken destinations, kept in a module of their own
    created_marker_beside_directory,
    created_needs_directory,
    deleted_hangs,
    updated_deletes_data,
)
from tests.zoo.reopen import path_rotates_on_open, sweeps_temporary_names_on_open  # open.keeps-data's
from tests.zoo.unusual import LOG_FLAGS, JsonLinesFileDestination, read_jsonl

__all__ = [
    "empty_description", "snake_case_name", "parameters_change_after_configure",
    "default_breaks_validation",
    "rejects_own_config", "required_not_named", "required_accepted", "loose_bool", "ignores_unknown_keys",
    "mkdir_in_configure",
    "mkdir_without_parents", "clears_on_open", "not_a_directory_unnamed", "replaces_file_with_directory",
    "empty_batch_none", "empty_batch_one",
    "drops_last_record", "first_record_wins", "ignores_deletes",
    "count_off_by_one", "count_true", "value_error_on_invalid_key",
    "skips_invalid_keys", "written_always_zero", "writes_valid_around_invalid",
    "refuses_after_error",
    "mutates_metadata", "mutates_structured",
    "truncates_large_payloads", "replaces_invalid_utf8",
    "ack_expects_str",
    "second_write_after_ack_fails",
    "no_lifecycle_guard", "configure_twice_allowed",
    "teardown_raises_unopened", "teardown_twice_raises", "teardown_deletes_data",
    "hangs_on_big_batch",
    "unwritable_unnamed", "leaks_directory_fd", "leaks_flusher_thread", "leaks_socket",
    "writes_in_place", "skips_records_on_io_error",
    "checkpoint_beside_directory", "follows_symlinks",
    "path_without_parents", "path_lock_in_parent_on_open", "path_lock_beside_parent", "path_index_beside_file",
    "path_scratch_in_tmpdir", "path_follows_symlink", "path_half_line_kept",
    "created_needs_directory", "updated_deletes_data", "deleted_hangs", "created_marker_beside_directory",
    "path_rotates_on_open", "sweeps_temporary_names_on_open",
]

MIB = 1024 * 1024


def _directory_of(config: Mapping[str, str]) -> str:
    """The absolute directory a (valid) reference config names."""
    return os.path.abspath(parse_config(config, FileConfig).directory)


def _with_default_middleware(cls: type[Destination]) -> Callable[[], Destination]:
    """A factory: a new `cls()` wrapped in the default middleware, as Conduit's NewDestination."""

    def factory() -> Destination:
        return destination_with_middleware(cls(), *default_destination_middleware())

    factory.__name__ = factory.__qualname__ = f"new_{cls.__name__}"
    return factory


def _registration(factory: Callable[[], Destination], **config: str) -> Registration:
    """A registration like the reference's: config directory={tmp}/out (plus `config`), read back by file."""
    return Registration(
        factory=factory,
        config={"directory": "{tmp}/out", **config},
        read_back=directory_reader("directory"),
        directory_param="directory",
    )


def _write_each(records: Sequence[Record], write_one: Callable[[Record], None]) -> int:
    """Calls `write_one` per record; a WriteError from record i becomes WriteError(written=i)."""
    for index, record in enumerate(records):
        try:
            write_one(record)
        except WriteError as err:
            raise WriteError(f"record {index}: {err.message}", written=index) from err
    return len(records)


def _first_invalid(records: Sequence[Record]) -> int | None:
    """The index of the first record whose key the reference rejects, or None."""
    return next((i for i, r in enumerate(records) if key_problem(r.key) is not None), None)


def _with_after(record: Record, after: RawData) -> Record:
    """A copy of `record` whose payload's `after` is `after` (the original is left alone)."""
    return record.model_copy(update={"payload": Change(before=record.payload.before, after=after)})


# --- parameters.shape ----------------------------------------------------------------------------------


class EmptyDescription(FileDestination):
    """Breaks parameters.shape: the `sync` parameter has an empty description."""

    def parameters(self) -> Mapping[str, Parameter]:
        params = dict(super().parameters())
        params["sync"] = dataclasses.replace(params["sync"], description="")
        return params


class _MaxRecordsDestination(FileDestination):
    """The reference plus a parameter limiting the records one write accepts (larger batches: WriteError)."""

    CONFIG: ClassVar[type[FileConfig]]
    NAME: ClassVar[str]

    max_records = 0

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(self.CONFIG)

    def configure(self, config: Mapping[str, str]) -> None:
        values = parse_config(config, self.CONFIG)
        super().configure({k: v for k, v in config.items() if k.strip() != self.NAME})
        self.max_records = values.max_records  # type: ignore[attr-defined]

    def write(self, records: Sequence[Record]) -> int:
        if len(records) > self.max_records:
            raise WriteError(f"a batch of {len(records)} records exceeds {self.NAME}={self.max_records}", written=0)
        return super().write(records)


class _SnakeCaseConfig(FileConfig):
    max_records: int = Field(1000, gt=0, description="Largest number of records one write call accepts.")


class SnakeCaseName(_MaxRecordsDestination):
    """Breaks parameters.shape: declares a parameter named `max_records` ('_' is not allowed in names)."""

    CONFIG = _SnakeCaseConfig
    NAME = "max_records"


class ParametersChangeAfterConfigure(FileDestination):
    """Breaks parameters.shape: after configure, `directory` shows the configured value as its default."""

    def __init__(self) -> None:
        super().__init__()
        self.configured_directory: str | None = None

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        self.configured_directory = _directory_of(config)

    def parameters(self) -> Mapping[str, Parameter]:
        params = dict(super().parameters())
        if self.configured_directory is not None:
            params["directory"] = dataclasses.replace(params["directory"], default=self.configured_directory)
        return params


# --- parameters.defaults-valid -------------------------------------------------------------------------


class _ZeroDefaultConfig(FileConfig):
    max_records: int = Field(0, gt=0, alias="max.records",
                             description="Largest number of records one write call accepts.")


class DefaultBreaksValidation(_MaxRecordsDestination):
    """Breaks parameters.defaults-valid: `max.records` defaults to "0" but must be greater than 0."""

    CONFIG = _ZeroDefaultConfig
    NAME = "max.records"


# --- configure.* ---------------------------------------------------------------------------------------


class _RenamedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: str = Field(min_length=1, description="Directory that holds one file per record key.")
    fsync: bool = Field(False, description="Fsync each file and the directory before write returns.")


class RejectsOwnConfig(FileDestination):
    """Breaks configure.valid: parameters() declares `sync`, but configure only knows it as `fsync`."""

    def configure(self, config: Mapping[str, str]) -> None:
        values = parse_config(config, _RenamedConfig)
        super().configure({"directory": values.directory, "sync": "true" if values.fsync else "false"})


class RequiredNotNamed(FileDestination):
    """Breaks configure.required: a missing `directory` raises a ConfigError that does not name it."""

    def configure(self, config: Mapping[str, str]) -> None:
        if not config.get("directory", "").strip():
            raise ConfigError("invalid config: a required parameter is missing")
        super().configure(config)


class RequiredAccepted(FileDestination):
    """Breaks configure.required: a missing `directory` silently falls back to a directory under /tmp."""

    FALLBACK: ClassVar[str] = os.path.join(tempfile.gettempdir(), "file-destination")

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure({**config, "directory": config.get("directory", "").strip() or self.FALLBACK})


class LooseBool(FileDestination):
    """Breaks configure.invalid-values: `sync` is parsed loosely (anything but true/1/yes/on is false)."""

    def configure(self, config: Mapping[str, str]) -> None:
        values = dict(config)
        if "sync" in values:
            values["sync"] = "true" if values["sync"].strip().lower() in ("true", "1", "yes", "on") else "false"
        super().configure(values)


class IgnoresUnknownKeys(FileDestination):
    """Breaks configure.unknown-key: keys that are not parameters are dropped instead of rejected."""

    def configure(self, config: Mapping[str, str]) -> None:
        known = set(self.parameters())
        super().configure({k: v for k, v in config.items() if k.strip() in known})


class MkdirInConfigure(FileDestination):
    """Breaks configure.no-side-effects: configure already creates the directory."""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        os.makedirs(_directory_of(config), exist_ok=True)


# --- open.* --------------------------------------------------------------------------------------------


class _KnowsItsDirectory(FileDestination):
    """The reference, remembering its configured directory as a str."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = ""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        self.directory = _directory_of(config)


class MkdirWithoutParents(_KnowsItsDirectory):
    """Breaks open.creates-directory: uses os.mkdir, so missing parents make open fail."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            raise NotADirectoryError(errno.ENOTDIR, "destination path is not a directory", self.directory)
        if not os.path.isdir(self.directory):
            os.mkdir(self.directory, 0o755)


class ClearsOnOpen(_KnowsItsDirectory):
    """Breaks open.keeps-existing: open starts from an empty directory, deleting what was there."""

    def open(self) -> None:
        if os.path.isdir(self.directory) and not os.path.islink(self.directory):
            shutil.rmtree(self.directory)
        super().open()


class NotADirectoryUnnamed(_KnowsItsDirectory):
    """Breaks open.not-a-directory: the error for a regular file at the path does not name the path."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            raise NotADirectoryError("destination path exists and is not a directory")
        super().open()


class ReplacesFileWithDirectory(_KnowsItsDirectory):
    """Breaks open.not-a-directory: a regular file at the path is deleted and a directory made instead."""

    def open(self) -> None:
        if os.path.lexists(self.directory) and not os.path.isdir(self.directory):
            os.remove(self.directory)
        super().open()


# --- write.empty-batch ---------------------------------------------------------------------------------


class EmptyBatchNone(FileDestination):
    """Breaks write.empty-batch: write([]) returns None."""

    def write(self, records: Sequence[Record]) -> Any:
        if not records:
            return None
        return super().write(records)


class EmptyBatchOne(FileDestination):
    """Breaks write.empty-batch: write([]) returns 1."""

    def write(self, records: Sequence[Record]) -> int:
        if not records:
            return 1
        return super().write(records)


# --- write.round-trip ----------------------------------------------------------------------------------


class DropsLastRecord(FileDestination):
    """Breaks write.round-trip: the last record of each batch is checked but never written; returns len."""

    def write(self, records: Sequence[Record]) -> int:
        if not records:
            return super().write(records)
        super().write(records[:-1])
        problem = key_problem(records[-1].key)
        if problem is not None:
            raise WriteError(f"record {len(records) - 1}: invalid key: {problem}", written=len(records) - 1)
        return len(records)


class FirstRecordWins(FileDestination):
    """Breaks write.round-trip: for a key repeated in a batch, only its first record is written."""

    def write(self, records: Sequence[Record]) -> int:
        seen: set[bytes] = set()

        def write_one(record: Record) -> None:
            if key_problem(record.key) is None:
                raw = record.key.raw  # type: ignore[union-attr]
                if raw in seen:
                    return
                seen.add(raw)
            FileDestination.write(self, [record])

        return _write_each(records, write_one)


class IgnoresDeletes(FileDestination):
    """Breaks write.round-trip: records with after=None are acknowledged but their key is not removed."""

    def write(self, records: Sequence[Record]) -> int:
        def write_one(record: Record) -> None:
            if record.payload.after is None and key_problem(record.key) is None:
                return
            FileDestination.write(self, [record])

        return _write_each(records, write_one)


# --- write.count ---------------------------------------------------------------------------------------


class CountOffByOne(FileDestination):
    """Breaks write.count: a fully written non-empty batch returns len(records) - 1."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        return written - 1 if written else written


class CountTrue(FileDestination):
    """Breaks write.count: a fully written non-empty batch returns True instead of its length."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        return True if written else written


class ValueErrorOnInvalidKey(FileDestination):
    """Breaks write.count: an invalid key raises ValueError (after writing the records before it), not WriteError."""

    def write(self, records: Sequence[Record]) -> int:
        index = _first_invalid(records)
        if index is None:
            return super().write(records)
        super().write(records[:index])
        raise ValueError(f"record {index}: invalid key: {key_problem(records[index].key)}")


# --- write.invalid-key-count ---------------------------------------------------------------------------


class SkipsInvalidKeys(FileDestination):
    """Breaks write.invalid-key-count: records with invalid keys are skipped and the rest written; returns len."""

    def write(self, records: Sequence[Record]) -> int:
        super().write([r for r in records if key_problem(r.key) is None])
        return len(records)


class WrittenAlwaysZero(FileDestination):
    """Breaks write.invalid-key-count: a batch with an invalid key is refused whole, WriteError(written=0)."""

    def write(self, records: Sequence[Record]) -> int:
        index = _first_invalid(records)
        if index is not None:
            raise WriteError(f"record {index}: invalid key: {key_problem(records[index].key)}", written=0)
        return super().write(records)


class WritesValidAroundInvalid(FileDestination):
    """Breaks write.invalid-key-count: every valid record is written, also those after the first invalid key."""

    def write(self, records: Sequence[Record]) -> int:
        index = _first_invalid(records)
        super().write([r for r in records if key_problem(r.key) is None])
        if index is not None:
            raise WriteError(f"record {index}: invalid key: {key_problem(records[index].key)}", written=index)
        return len(records)


# --- write.recovers ------------------------------------------------------------------------------------


class RefusesAfterError(FileDestination):
    """Breaks write.recovers: after one WriteError, every later non-empty batch fails with WriteError(written=0)."""

    failed = False

    def write(self, records: Sequence[Record]) -> int:
        if self.failed and records:
            raise WriteError("an earlier write failed; the destination refuses further writes", written=0)
        try:
            return super().write(records)
        except WriteError:
            self.failed = True
            raise


# --- write.no-mutation ---------------------------------------------------------------------------------


class MutatesMetadata(FileDestination):
    """Breaks write.no-mutation: each record's metadata gets "file.written" = "true"."""

    def write(self, records: Sequence[Record]) -> int:
        for record in records:
            record.metadata["file.written"] = "true"
        return super().write(records)


class MutatesStructured(FileDestination):
    """Breaks write.no-mutation: StructuredData payloads get a "_written_by" field added in place (and written)."""

    def write(self, records: Sequence[Record]) -> int:
        for record in records:
            if isinstance(record.payload.after, StructuredData):
                record.payload.after.data.setdefault("_written_by", "file-destination")
        return super().write(records)


# --- write.large-payload -------------------------------------------------------------------------------


class TruncatesLargePayloads(FileDestination):
    """Breaks write.large-payload: payloads are cut to their first 1 MiB."""

    def write(self, records: Sequence[Record]) -> int:
        return super().write([
            _with_after(r, RawData(r.payload.after.bytes()[:MIB]))
            if r.payload.after is not None and len(r.payload.after.bytes()) > MIB else r
            for r in records
        ])


class ReplacesInvalidUtf8(FileDestination):
    """Breaks write.large-payload: payloads over 64 KiB go through a text path (UTF-8, errors='replace')."""

    THRESHOLD: ClassVar[int] = 64 * 1024

    def write(self, records: Sequence[Record]) -> int:
        return super().write([
            _with_after(r, RawData(r.payload.after.bytes().decode("utf-8", "replace").encode("utf-8")))
            if r.payload.after is not None and len(r.payload.after.bytes()) > self.THRESHOLD else r
            for r in records
        ])


# --- ack.in-order --------------------------------------------------------------------------------------


class AckExpectsStr(FileDestination):
    """Breaks ack.in-order: written positions are kept as str, so acking the bytes position raises KeyError."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: set[str] = set()

    def write(self, records: Sequence[Record]) -> int:
        try:
            written = super().write(records)
        except WriteError as err:
            self.pending.update(r.position.decode("utf-8", "replace") for r in records[:err.written])
            raise
        self.pending.update(r.position.decode("utf-8", "replace") for r in records[:written])
        return written

    def ack(self, position: bytes) -> None:
        if position not in self.pending:  # type: ignore[comparison-overlap]
            raise KeyError(f"ack for a position that was never written: {position!r}")
        self.pending.discard(position)  # type: ignore[arg-type]


# --- lifecycle.* ---------------------------------------------------------------------------------------


class SecondWriteAfterAckFails(FileDestination):
    """Breaks lifecycle.valid-orders: the second non-empty write after an ack raises RuntimeError."""

    writes_since_ack: int | None = None

    def ack(self, position: bytes) -> None:
        self.writes_since_ack = 0

    def write(self, records: Sequence[Record]) -> int:
        if records and self.writes_since_ack is not None:
            self.writes_since_ack += 1
            if self.writes_since_ack >= 2:
                raise RuntimeError("the write buffer was handed back on ack and is closed")
        return super().write(records)


class ConfigureTwiceGuard(LifecycleGuard):
    """Breaks lifecycle.out-of-order: a lifecycle guard that also allows configure when already configured."""

    LEGAL = {**LifecycleGuard.LEGAL, "configured": frozenset({"configure", "open", "teardown"})}


def new_configure_twice_allowed() -> Destination:
    """The reference under the default middleware, with ConfigureTwiceGuard in place of the lifecycle guard."""
    return destination_with_middleware(FileDestination(), ConfigureTwiceGuard, RateLimit, BatchSize)


# --- teardown.* ----------------------------------------------------------------------------------------


class TeardownRaisesUnopened(FileDestination):
    """Breaks teardown.any-state: teardown raises unless open succeeded first."""

    opened = False

    def open(self) -> None:
        super().open()
        self.opened = True

    def teardown(self) -> None:
        if not self.opened:
            raise RuntimeError("teardown before open: nothing to close")
        super().teardown()


class ClosesPoolOnce(DestinationMiddleware):
    """Breaks teardown.idempotent: an outer middleware whose second teardown raises (its pool is already closed)."""

    closed = False

    def teardown(self) -> Any:
        if self.closed:
            raise RuntimeError("connection pool already closed")
        self.closed = True
        return self.inner.teardown()


def new_teardown_twice_raises() -> Destination:
    """The reference under ClosesPoolOnce, outside the default middleware."""
    return destination_with_middleware(FileDestination(), ClosesPoolOnce, *default_destination_middleware())


class TeardownDeletesData(_KnowsItsDirectory):
    """Breaks teardown.keeps-data: teardown removes the directory it opened, with everything written."""

    opened = False

    def open(self) -> None:
        super().open()
        self.opened = True

    def teardown(self) -> None:
        if self.opened:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.opened = False
        super().teardown()


# --- call.timeout --------------------------------------------------------------------------------------


class HangsOnBigBatch(FileDestination):
    """Breaks call.timeout: write never returns (sleeps an hour) for a batch of more than 2 records."""

    def write(self, records: Sequence[Record]) -> int:
        if len(records) > 2:
            time.sleep(3600)
        return super().write(records)


# --- open.unwritable -----------------------------------------------------------------------------------


class UnwritableUnnamed(_KnowsItsDirectory):
    """Breaks open.unwritable: permission denied while creating the directory is reported without the path."""

    def open(self) -> None:
        try:
            super().open()
        except PermissionError:
            raise PermissionError("permission denied: cannot create the destination directory") from None


# --- teardown.releases ---------------------------------------------------------------------------------


class LeaksSocket(FileDestination):
    """Breaks teardown.releases: open connects a socket pair (a "connection") that teardown never closes."""

    connection: Any = None

    def open(self) -> None:
        super().open()
        self.connection = socket.socketpair()


class LeaksDirectoryFd(_KnowsItsDirectory):
    """Breaks teardown.releases: open keeps a descriptor of the directory (for sync=true) that teardown never closes."""

    directory_fd: int | None = None
    sync = False

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        self.sync = parse_config(config, FileConfig).sync

    def open(self) -> None:
        super().open()
        self.directory_fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        if self.sync and self.directory_fd is not None and records:
            os.fsync(self.directory_fd)
        return written


class LeaksFlusherThread(FileDestination):
    """Breaks teardown.releases: open starts a background flusher thread that teardown never stops."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()
        self.ticks = 0

    def open(self) -> None:
        super().open()
        threading.Thread(target=self._flush_loop, name="zoo-flusher", daemon=True).start()

    def _flush_loop(self) -> None:
        while not self.stop.wait(0.05):
            self.ticks += 1


# --- fault.* and safety.*: an own write loop, one value per file -----------------------------------------


_temp_names = itertools.count()


class _OwnFileWrites(_KnowsItsDirectory):
    """The reference's key rules with its own write loop; `store` and `remove` handle one value."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            problem = key_problem(record.key)
            if problem is not None:
                raise WriteError(f"record {index}: invalid key: {problem}", written=index)
            path = os.path.join(self.directory, record.key.raw.decode("utf-8"))  # type: ignore[union-attr]
            after = record.payload.after
            try:
                if after is None:
                    self.remove(path)
                else:
                    self.store(path, after.bytes())
            except OSError as err:
                if self.skips(err):
                    continue
                raise WriteError(f"record {index}: {err}", written=index) from err
        return len(records)

    def skips(self, error: OSError) -> bool:
        """Whether a record whose storing raised `error` is passed over (never, here)."""
        return False

    def store(self, path: str, data: bytes) -> None:
        """Writes `data` to a temporary file in the directory, then renames it to `path`."""
        temp = os.path.join(self.directory, f".~zoo-tmp-{next(_temp_names)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            self.rename(temp, path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise

    def rename(self, temp: str, path: str) -> None:
        """Moves the finished temporary file into place."""
        os.rename(temp, path)

    def remove(self, path: str) -> None:
        """Deletes the value at `path`; an absent one is fine."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class WritesInPlace(_OwnFileWrites):
    """Breaks fault.disk-full: values are written straight into their file, so a full disk leaves it partial."""

    def store(self, path: str, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)


class SkipsRecordsOnIoError(_OwnFileWrites):
    """Breaks fault.io-error: a record that fails with EIO or EACCES is skipped and the batch goes on."""

    def skips(self, error: OSError) -> bool:
        return error.errno in (errno.EIO, errno.EACCES)


class CheckpointBesideDirectory(_OwnFileWrites):
    """Breaks safety.confined: each write records its last position in `<directory>.checkpoint`, outside it."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        if records:
            try:
                with open(self.directory + ".checkpoint", "wb") as f:
                    f.write(records[-1].position)
            except OSError:
                pass  # best effort: the records are written
        return written


class FollowsSymlinks(_OwnFileWrites):
    """Breaks safety.no-symlink-follow: the key's path is resolved first, so a symlink at a key is followed."""

    def store(self, path: str, data: bytes) -> None:
        super().store(os.path.realpath(path), data)

    def remove(self, path: str) -> None:
        super().remove(os.path.realpath(path))


# --- one file named by a path parameter (the JSON-lines file of tests.zoo.unusual, with one bug) ----------------


def _path_registration(cls: type[Destination], **config: str) -> Registration:
    """A registration like tests.zoo.unusual.jsonl_file's: path={tmp}/log/records.jsonl, with the sync variant."""
    return Registration(
        factory=_with_default_middleware(cls),
        config={"path": "{tmp}/log/records.jsonl", **config},
        read_back=read_jsonl,
        path_param="path",
        variants=({"sync": "true"},),
    )


class PathWithoutParents(JsonLinesFileDestination):
    """Breaks open.creates-directory: the file's parent is made with os.mkdir, so a missing grandparent fails."""

    def make_parent(self, parent: str) -> None:
        if not os.path.isdir(parent):
            os.mkdir(parent)


class PathLockInParentOnOpen(JsonLinesFileDestination):
    """Breaks open.keeps-existing: open takes a lock file named LOCK in the file's directory, which is not its own
    (a name not beginning with the file's), and truncates whatever LOCK was there."""

    def open(self) -> None:
        super().open()
        with open(os.path.join(os.path.dirname(self._path), "LOCK"), "wb") as lock:
            lock.write(str(os.getpid()).encode())


class PathLockBesideParent(JsonLinesFileDestination):
    """Breaks safety.confined: each write refreshes a lock file in the parent's parent directory."""

    def write(self, records: Sequence[Record]) -> int:
        parent = os.path.dirname(self._path)
        lock = os.path.join(os.path.dirname(parent), os.path.basename(parent) + ".lock")
        try:
            with open(lock, "wb") as f:
                f.write(str(os.getpid()).encode())
        except OSError:
            pass  # best effort
        return super().write(records)


class PathIndexBesideFile(JsonLinesFileDestination):
    """Breaks safety.confined: each write rewrites an index named after the file's stem (records.idx beside
    records.jsonl), so an unrelated file of that name in the directory is truncated."""

    def write(self, records: Sequence[Record]) -> int:
        written = super().write(records)
        index = os.path.splitext(self._path)[0] + ".idx"
        try:
            # O_NOFOLLOW: a symlink planted at the index is refused, so only the confinement bug shows.
            fd = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            try:
                os.write(fd, b"%d\n" % (self._size or 0))
            finally:
                os.close(fd)
        except OSError:
            pass  # best effort: the records are written
        return written


class PathScratchInTmpdir(JsonLinesFileDestination):
    """Breaks safety.confined: each batch is staged in a scratch file in $TMPDIR, kept until teardown (only the
    fake filesystem, which sees all of it, watches $TMPDIR)."""

    def write(self, records: Sequence[Record]) -> int:
        self._scratch = os.path.join(tempfile.gettempdir(), f"zoo-jsonl-scratch-{os.getpid()}-{id(self)}")
        try:
            with open(self._scratch, "wb") as f:
                f.write(b"".join(r.position for r in records))
        except OSError:
            pass  # best effort
        return super().write(records)

    def teardown(self) -> None:
        super().teardown()
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            try:
                os.unlink(scratch)
            except OSError:
                pass


class PathFollowsSymlink(JsonLinesFileDestination):
    """Breaks safety.no-symlink-follow: every append opens the file with open(path, "ab"), which follows a symlink
    planted at its name."""

    def append(self, line: bytes) -> None:
        with open(self._path, "ab") as log:
            log.write(line)
        self._size = (self._size or 0) + len(line)


class PathHalfLineKept(JsonLinesFileDestination):
    """Breaks fault.disk-full: a line goes out in two writes (the record, then its newline) and a failed append is
    not cut back, so a disk that fills between them leaves half a line in the file."""

    def append(self, line: bytes) -> None:
        if self._fd is None:
            self._fd = os.open(self._path, LOG_FLAGS, 0o644)
        for part in (line[:-1], line[-1:]):
            view = memoryview(part)
            while view:
                view = view[os.write(self._fd, view):]
        if self._config.sync:
            os.fsync(self._fd)


# --- the registrations ---------------------------------------------------------------------------------

empty_description = _registration(_with_default_middleware(EmptyDescription))
snake_case_name = _registration(_with_default_middleware(SnakeCaseName))
parameters_change_after_configure = _registration(_with_default_middleware(ParametersChangeAfterConfigure))
default_breaks_validation = _registration(_with_default_middleware(DefaultBreaksValidation), **{"max.records": "1000"})

rejects_own_config = _registration(_with_default_middleware(RejectsOwnConfig), sync="false")
required_not_named = _registration(_with_default_middleware(RequiredNotNamed))
required_accepted = _registration(_with_default_middleware(RequiredAccepted))
loose_bool = _registration(_with_default_middleware(LooseBool))
ignores_unknown_keys = _registration(_with_default_middleware(IgnoresUnknownKeys))
mkdir_in_configure = _registration(_with_default_middleware(MkdirInConfigure))

mkdir_without_parents = _registration(_with_default_middleware(MkdirWithoutParents))
clears_on_open = _registration(_with_default_middleware(ClearsOnOpen))
not_a_directory_unnamed = _registration(_with_default_middleware(NotADirectoryUnnamed))
replaces_file_with_directory = _registration(_with_default_middleware(ReplacesFileWithDirectory))

empty_batch_none = _registration(_with_default_middleware(EmptyBatchNone))
empty_batch_one = _registration(_with_default_middleware(EmptyBatchOne))

drops_last_record = _registration(_with_default_middleware(DropsLastRecord))
first_record_wins = _registration(_with_default_middleware(FirstRecordWins))
ignores_deletes = _registration(_with_default_middleware(IgnoresDeletes))

count_off_by_one = _registration(_with_default_middleware(CountOffByOne))
count_true = _registration(_with_default_middleware(CountTrue))
value_error_on_invalid_key = _registration(_with_default_middleware(ValueErrorOnInvalidKey))

skips_invalid_keys = _registration(_with_default_middleware(SkipsInvalidKeys))
written_always_zero = _registration(_with_default_middleware(WrittenAlwaysZero))
writes_valid_around_invalid = _registration(_with_default_middleware(WritesValidAroundInvalid))

refuses_after_error = _registration(_with_default_middleware(RefusesAfterError))

mutates_metadata = _registration(_with_default_middleware(MutatesMetadata))
mutates_structured = _registration(_with_default_middleware(MutatesStructured))

truncates_large_payloads = _registration(_with_default_middleware(TruncatesLargePayloads))
replaces_invalid_utf8 = _registration(_with_default_middleware(ReplacesInvalidUtf8))

ack_expects_str = _registration(_with_default_middleware(AckExpectsStr))

second_write_after_ack_fails = _registration(_with_default_middleware(SecondWriteAfterAckFails))
no_lifecycle_guard = _registration(FileDestination)  # bare: no middleware at all, so no lifecycle guard
configure_twice_allowed = _registration(new_configure_twice_allowed)

teardown_raises_unopened = _registration(_with_default_middleware(TeardownRaisesUnopened))
teardown_twice_raises = _registration(new_teardown_twice_raises)
teardown_deletes_data = _registration(_with_default_middleware(TeardownDeletesData))

hangs_on_big_batch = _registration(_with_default_middleware(HangsOnBigBatch))

unwritable_unnamed = _registration(_with_default_middleware(UnwritableUnnamed))
leaks_directory_fd = _registration(_with_default_middleware(LeaksDirectoryFd))
leaks_flusher_thread = _registration(_with_default_middleware(LeaksFlusherThread))
leaks_socket = _registration(_with_default_middleware(LeaksSocket))

writes_in_place = _registration(_with_default_middleware(WritesInPlace))
skips_records_on_io_error = _registration(_with_default_middleware(SkipsRecordsOnIoError))
checkpoint_beside_directory = _registration(_with_default_middleware(CheckpointBesideDirectory))
follows_symlinks = _registration(_with_default_middleware(FollowsSymlinks))

path_without_parents = _path_registration(PathWithoutParents)
path_lock_in_parent_on_open = _path_registration(PathLockInParentOnOpen)
path_lock_beside_parent = _path_registration(PathLockBesideParent)
path_index_beside_file = _path_registration(PathIndexBesideFile)
path_scratch_in_tmpdir = _path_registration(PathScratchInTmpdir)
path_follows_symlink = _path_registration(PathFollowsSymlink)
path_half_line_kept = _path_registration(PathHalfLineKept)
