"""An SQLite destination configured with a file path: one table of key -> payload, through the stdlib sqlite3.

It is registered with `path_param="path"`, so open() must create the database file's missing parent directories and
the open.*, fault.* and safety.* clauses apply to the file and its parent (CONTRACT.md section 6). Keys follow the
contract's default rules (section 4), payloads are stored as the bytes of `after`, and each batch is one transaction:
a batch that stops at record i commits exactly records[:i].

sqlite3 does its file I/O in C, where neither pyfakefs nor Python's audit hooks reach, so fault.disk-full,
fault.io-error and safety.no-symlink-follow are *not checked* for it, and safety.confined is checked on the real disk
only.

Run the suite on it from the root of a checkout of this repository:

    pytest --destination=examples.sqlite_destination:registration
"""

import errno
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

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
    parameters_from,
    parse_config,
)
from reference.file_destination import key_problem

__all__ = ["SqliteConfig", "SqliteDestination", "new_sqlite_destination", "read_sqlite", "registration"]

_CREATE = "create table if not exists records (key blob primary key, payload blob not null)"
_UPSERT = "insert into records (key, payload) values (?, ?) on conflict (key) do update set payload = excluded.payload"
_DELETE = "delete from records where key = ?"


class SqliteConfig(BaseModel):
    """The SQLite destination's config: the database file, and how hard a commit syncs."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="SQLite database file; open creates it and its missing parent "
                                                "directories.")
    sync: bool = Field(False, description="Commit with synchronous=FULL (fsync) instead of OFF.")


class SqliteDestination(UnimplementedDestination):
    """Keeps each key's last `after.bytes()` in the table `records` of one SQLite file; a null `after` deletes it."""

    def __init__(self) -> None:
        self._config: SqliteConfig | None = None
        self._path = ""
        self._db: sqlite3.Connection | None = None

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(SqliteConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        self._config = parse_config(config, SqliteConfig)  # ConfigError naming every bad key; nothing on disk
        self._path = os.path.abspath(self._config.path)

    def open(self) -> None:
        assert self._config is not None
        parent = os.path.dirname(self._path)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(errno.ENOTDIR, "the database's parent exists and is not a directory", parent)
        os.makedirs(parent, exist_ok=True)  # an OSError names the directory it could not make
        try:
            # Autocommit mode (isolation_level=None): write() opens and commits its own transaction per batch. The
            # driver may tear down from another thread than the one that opened, hence check_same_thread=False.
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:  # sqlite3's message ("unable to open database file") names no path
            raise OSError(errno.EIO, f"cannot open the SQLite database: {err}", self._path) from err
        try:
            db.execute(f"pragma synchronous = {'full' if self._config.sync else 'off'}")
            db.execute(_CREATE)
        except sqlite3.Error as err:
            db.close()
            raise OSError(errno.EIO, f"cannot set up the SQLite database: {err}", self._path) from err
        self._db = db

    def write(self, records: Sequence[Record]) -> int:
        if not records:
            return 0  # not even a transaction: an empty batch changes nothing
        db = self._db
        assert db is not None  # the lifecycle guard lets write through only when open
        try:
            db.execute("begin immediate")
        except sqlite3.Error as err:
            raise WriteError(f"cannot start a transaction: {err}", written=0) from err
        failure: tuple[str, sqlite3.Error | None] | None = None  # why the batch stopped, and SQLite's error
        applied = 0
        for index, record in enumerate(records):
            problem = key_problem(record.key)
            if problem is not None:
                failure = (f"record {index}: {problem}", None)
                break
            after = record.payload.after
            try:
                if after is None:
                    db.execute(_DELETE, (record.key.raw,))
                else:
                    db.execute(_UPSERT, (record.key.raw, after.bytes()))
            except sqlite3.Error as err:  # the statement is undone; the transaction too if SQLite says so
                failure = (f"record {index}: {err}", err)
                break
            applied = index + 1
        if not db.in_transaction:
            applied = 0  # SQLite rolled the whole transaction back (a full disk, an I/O error)
        else:
            try:
                db.execute("commit")
            except sqlite3.Error as err:
                _rollback(db)
                raise WriteError(f"commit failed, nothing of the batch is stored: {err}", written=0) from err
        if failure is not None:
            raise WriteError(failure[0], written=applied) from failure[1]
        if applied != len(records):  # only when SQLite dropped the transaction without an error
            raise WriteError("the transaction was rolled back", written=0)
        return len(records)

    def ack(self, position: bytes) -> None:
        """Nothing to do: a record is committed when write returns."""

    def teardown(self) -> None:
        if self._db is not None:  # in any state, any number of times
            db, self._db = self._db, None
            db.close()


def _rollback(db: sqlite3.Connection) -> None:
    try:
        db.execute("rollback")
    except sqlite3.Error:
        pass  # no transaction left to roll back


def read_sqlite(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """What the database holds now, by key (the registration's read_back); opened read-only, never created, unless a
    commit that failed midway (a device error) left a hot journal: only a writer can roll that back, as the
    destination's next open would, so the database is then opened read-write."""
    path = os.path.abspath(config["path"])
    if not os.path.isfile(path):
        return {}
    for mode in ("ro", "rw"):
        db = sqlite3.connect(Path(path).as_uri() + f"?mode={mode}", uri=True)
        try:
            rows = db.execute("select key, payload from records").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}  # created, but open() failed before the table was
            if mode == "ro" and "readonly database" in str(err):
                continue  # a hot journal to roll back
            raise
        finally:
            db.close()
        return {bytes(key): bytes(payload) for key, payload in rows}
    raise AssertionError("unreachable: the read-write attempt returns or raises")


def new_sqlite_destination() -> Destination:
    """A SqliteDestination behind the default middleware."""
    return destination_with_middleware(SqliteDestination(), *default_destination_middleware())


registration = Registration(
    factory=new_sqlite_destination,
    config={"path": "{tmp}/db/records.sqlite"},
    read_back=read_sqlite,
    path_param="path",
    variants=({"sync": "true"},),
)
