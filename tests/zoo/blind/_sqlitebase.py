"""A correct SQLite key-value destination (path_param); bug modules subclass it and change one thing."""

import datetime
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    parameters_from,
    parse_config,
)

from ._common import key_problem, make_parent, value_of


class SqliteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="The SQLite database file; its parent is created on open.")
    journal: Literal["delete", "wal"] = Field("delete", description="SQLite journal mode.")
    busy: datetime.timedelta = Field(datetime.timedelta(seconds=5), alias="busy.timeout",
                                     description="How long to wait for a locked database.")


def read_db(config: Mapping[str, str]):
    """Reads a copy of the database (and its -wal), so that reading never adds -wal/-shm files beside it."""
    path = config["path"]
    if not os.path.isfile(path):
        return {}
    scratch = tempfile.mkdtemp(prefix="blind-readback-")
    copy = os.path.join(scratch, "copy.sqlite")
    shutil.copyfile(path, copy)
    if os.path.isfile(path + "-wal"):
        shutil.copyfile(path + "-wal", copy + "-wal")
    conn = sqlite3.connect(copy)
    try:
        try:
            rows = conn.execute("SELECT k, v FROM kv").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise
        return {bytes(k): bytes(v) for k, v in rows}
    finally:
        conn.close()
        shutil.rmtree(scratch, ignore_errors=True)


class SqliteDestination(UnimplementedDestination):
    Config = SqliteConfig
    allow_non_utf8 = True

    def __init__(self):
        self.cfg = None
        self.path = ""
        self.conn = None

    def parameters(self):
        return parameters_from(self.Config)

    def configure(self, config):
        self.cfg = parse_config(config, self.Config)
        self.path = os.path.abspath(self.cfg.path)

    def open(self):
        make_parent(self.path)
        if os.path.lexists(self.path) and not os.path.isfile(self.path):
            raise IsADirectoryError(21, "database path is not a regular file", self.path)
        self.conn = sqlite3.connect(self.path, timeout=self.cfg.busy.total_seconds(), isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute(f"PRAGMA journal_mode={self.cfg.journal}")
        self.conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")

    def write(self, records: Sequence):
        for i, rec in enumerate(records):
            problem = self.key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                self.store(rec.key.raw, value_of(rec))
            except (sqlite3.Error, OSError) as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def key_problem(self, key):
        return key_problem(key, self.allow_non_utf8)

    def store(self, raw, value):
        if value is None:
            self.conn.execute("DELETE FROM kv WHERE k = ?", (raw,))
        else:
            self.conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (raw, value))

    def ack(self, position):
        pass

    def teardown(self):
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.close()


def registration_for(cls, config_extra=None, **kw):
    def factory():
        return destination_with_middleware(cls(), *default_destination_middleware())
    return Registration(factory=factory, config={"path": "{tmp}/db/kv.sqlite", **(config_extra or {})},
                        read_back=read_db, path_param="path", **kw)
