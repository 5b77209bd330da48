"""Destinations the plugin's own tests run the suite over, each for one behaviour of a run (a known failure to gate on,
a hang at teardown, an open that fails, evidence that is wrong in one way, C-level I/O) rather than a clause case.

Each is the reference FileDestination with one thing changed, behind the default middleware, registered like it
(`{tmp}/out`, read back by file); tests name them by spec, `tests.zoo.scenarios:<name>`, with the repository on
PYTHONPATH (tests/conftest.py's zoo_importable fixture).
"""

import errno
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from harness import (
    RawData,
    Record,
    Registration,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
)
from reference import FileDestination
from reference.file_destination import key_problem
from tests.zoo.broken import SkipsInvalidKeys, _registration, _with_default_middleware

__all__ = ["DropsLast", "TeardownHangs", "OpenFails", "Overcounts", "Truncates", "SecondTeardownFails", "CtorRaises",
           "SqliteInDirectory", "AlsoDrops", "drops_last", "teardown_hangs", "open_fails", "overcounts", "truncates",
           "second_teardown_fails", "sqlite_in_directory", "gated"]


class DropsLast(FileDestination):
    """Silently drops the last record of each batch (invalid keys included) and still returns len(records)."""

    def write(self, records: Sequence[Record]) -> int:
        super().write(list(records)[:-1])
        return len(records)


class TeardownHangs(FileDestination):
    """teardown() never returns (sleeps an hour): the teardown the session makes at an example's end hangs."""

    def teardown(self) -> None:
        time.sleep(3600)


class OpenFails(FileDestination):
    """open() always fails with permission denied, naming the directory."""

    def open(self) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(self._directory))


class Overcounts(FileDestination):
    """Reports written=i+1 for an invalid key at index i (the records before it are written)."""

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            raise WriteError(str(err), written=err.written + 1) from None


class Truncates(FileDestination):
    """Keeps only the first 1024 bytes of a raw payload."""

    def write(self, records: Sequence[Record]) -> int:
        cut = [r.model_copy(update={
                   "payload": r.payload.model_copy(update={"after": RawData(r.payload.after.raw[:1024])})})
               if isinstance(r.payload.after, RawData) else r for r in records]
        return super().write(cut)


class SecondTeardownFails:
    """The reference, except that a second teardown() raises (after tearing down again)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.teardowns = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def teardown(self) -> None:
        self.teardowns += 1
        self.inner.teardown()
        if self.teardowns > 1:
            raise RuntimeError("already torn down")


class CtorRaises(FileDestination):
    """A bare class whose constructor fails, as one that connects to its server there would."""

    def __init__(self) -> None:
        raise RuntimeError("cannot reach the server: connection refused")


class SqliteInDirectory(FileDestination):
    """Keeps every key in one SQLite file in the directory: correct; its I/O is C code (faults reach it by FUSE)."""

    _db: sqlite3.Connection | None = None

    def open(self) -> None:
        super().open()
        self._db = sqlite3.connect(os.path.join(os.fsdecode(self._directory), "data.db"))
        self._db.execute("create table if not exists kv (k blob primary key, v blob)")

    def write(self, records: Sequence[Record]) -> int:
        assert self._db is not None  # the middleware's lifecycle guard calls write only when open
        for i, r in enumerate(records):
            problem = key_problem(r.key)
            if problem:
                raise WriteError(problem, written=i)
            # One transaction per record; a failed one (a full disk, an I/O error) is rolled back and counted out.
            # (Letting sqlite3's OperationalError escape instead was this destination's bug until the FUSE fault
            # filesystem reached its I/O and fault.disk-full and fault.io-error caught it.)
            try:
                with self._db:
                    if r.payload.after is None:
                        self._db.execute("delete from kv where k = ?", (r.key.raw,))
                    else:
                        self._db.execute("insert or replace into kv values (?, ?)",
                                         (r.key.raw, r.payload.after.bytes()))
            except sqlite3.Error as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def teardown(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _read_sqlite(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """What SqliteInDirectory holds: key -> value."""
    path = os.path.join(config["directory"], "data.db")
    if not os.path.exists(path):
        return {}
    with sqlite3.connect(path) as db:
        return dict(db.execute("select k, v from kv"))


class AlsoDrops(SkipsInvalidKeys):
    """Skips invalid keys (breaking write.invalid-key-count) and drops each batch's last record too."""

    def write(self, records: Sequence[Record]) -> int:
        super().write(list(records)[:-1])
        return len(records)


drops_last = _registration(_with_default_middleware(DropsLast))
teardown_hangs = _registration(_with_default_middleware(TeardownHangs))
open_fails = _registration(_with_default_middleware(OpenFails))
overcounts = _registration(_with_default_middleware(Overcounts))
truncates = _registration(_with_default_middleware(Truncates))
second_teardown_fails = _registration(
    lambda: SecondTeardownFails(destination_with_middleware(FileDestination(), *default_destination_middleware())))
sqlite_in_directory = Registration(
    factory=_with_default_middleware(SqliteInDirectory), config={"directory": "{tmp}/out"}, read_back=_read_sqlite,
    directory_param="directory", skip={"safety.no-symlink-follow": "keys are rows, not file names"})
# One spec across runs whose bug changes with GATED (read at import): "skips" (the default) skips invalid keys,
# "also-drops" drops each batch's last record too (a new write.round-trip failure), "fixed" is the reference.
gated = _registration(_with_default_middleware(
    {"skips": SkipsInvalidKeys, "also-drops": AlsoDrops, "fixed": FileDestination}[os.environ.get("GATED", "skips")]))
