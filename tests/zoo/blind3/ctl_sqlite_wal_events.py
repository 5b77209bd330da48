"""CONTROL: SQLite destination in WAL mode (examples' one-transaction-per-batch writer) that implements all three
lifecycle events harmlessly: OnCreated validates the config only (nothing on disk yet), OnUpdated notes a path
change, OnDeleted checkpoints and truncates the WAL of an existing database (touching only the file and its
side files, and leaving every record in place)."""
import logging
import os
import sqlite3

from examples.sqlite_destination import SqliteConfig, SqliteDestination
from harness import Registration, default_destination_middleware, destination_with_middleware, parse_config

log = logging.getLogger(__name__)


class Dest(SqliteDestination):
    def open(self):
        super().open()
        self._db.execute("pragma journal_mode = wal")

    def lifecycle_on_created(self, config):
        parse_config(config, SqliteConfig)  # a config Conduit accepted must still parse

    def lifecycle_on_updated(self, before, after):
        if os.path.abspath(before.get("path", "")) != os.path.abspath(after.get("path", "")):
            log.warning("the database moved from %s to %s; the old file is left in place", before.get("path"),
                        after.get("path"))

    def lifecycle_on_deleted(self, config):
        path = os.path.abspath(config["path"])
        if not os.path.isfile(path) or os.path.islink(path):
            return
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2)
        try:
            db.execute("pragma wal_checkpoint(truncate)")
        finally:
            db.close()


def read_back(config):
    """Side-effect free: read_sqlite's read-only open of a WAL database leaves -wal/-shm files behind, and a read-write
    open creates and removes them (moving the directory's mtime). While the destination is open its -wal and -shm exist
    and a read-only connection shares them; once it is torn down everything is checkpointed into the file and no -wal
    is left, so the file is read as immutable (nothing created at all)."""
    path = os.path.abspath(config["path"])
    if not os.path.isfile(path):
        return {}
    mode = "mode=ro" if os.path.exists(path + "-wal") else "mode=ro&immutable=1"
    db = sqlite3.connect(f"file:{path}?{mode}", uri=True, timeout=5)
    try:
        try:
            rows = db.execute("select key, payload from records").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return {}
            raise
    finally:
        db.close()
    return {bytes(k): bytes(v) for k, v in rows}


def factory():
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"path": "{tmp}/db/records.sqlite"}, read_back=read_back,
                            path_param="path", variants=({"sync": "true"},))
