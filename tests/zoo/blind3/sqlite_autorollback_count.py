"""BUG (fault.disk-full): SQLite (WAL mode) destination, one transaction per batch; when a statement fails it
commits what came before and reports written=i -- but on SQLITE_FULL / SQLITE_IOERR SQLite has already rolled the
whole transaction back, so records[:i] are not stored (the example checks db.in_transaction; this one does not)."""
import sqlite3

from examples.sqlite_destination import _DELETE, _UPSERT, SqliteDestination, read_sqlite
from harness import Registration, WriteError, default_destination_middleware, destination_with_middleware
from reference.file_destination import key_problem


class Dest(SqliteDestination):
    def open(self):
        super().open()
        self._db.execute("pragma journal_mode = wal")
        self._db.execute("pragma cache_size = -256")  # small cache: big batches spill to the WAL early

    def write(self, records):
        if not records:
            return 0
        db = self._db
        try:
            db.execute("begin immediate")
        except sqlite3.Error as err:
            raise WriteError(f"cannot begin: {err}", written=0) from err
        for i, record in enumerate(records):
            problem = key_problem(record.key)
            err = None
            if problem is None:
                after = record.payload.after
                try:
                    if after is None:
                        db.execute(_DELETE, (record.key.raw,))
                    else:
                        db.execute(_UPSERT, (record.key.raw, after.bytes()))
                    continue
                except sqlite3.Error as e:
                    err = e
            try:
                db.execute("commit")  # keep records[:i]
            except sqlite3.Error:
                pass  # BUG: "no transaction is active" here means SQLite rolled it all back
            raise WriteError(f"record {i}: {problem or err}", written=i) from err
        try:
            db.execute("commit")
        except sqlite3.Error as err:
            try:
                db.execute("rollback")
            except sqlite3.Error:
                pass
            raise WriteError(f"commit failed: {err}", written=0) from err
        return len(records)


def factory():
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"path": "{tmp}/db/records.sqlite"}, read_back=read_sqlite,
                            path_param="path", variants=({"sync": "true"},))
