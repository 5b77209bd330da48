"""SQLite destination writing each batch in one transaction and recording the batch's last position: an empty batch
raises IndexError."""
import sqlite3

from harness import WriteError

from ._common import value_of
from ._sqlitebase import SqliteDestination, registration_for


class Dest(SqliteDestination):
    def open(self):
        super().open()
        self.conn.execute("CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY, last BLOB)")

    def write(self, records):
        last = records[-1].position  # BUG: an empty batch has no last record
        for i, rec in enumerate(records):
            problem = self.key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                self.store(rec.key.raw, value_of(rec))
            except (sqlite3.Error, OSError) as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        self.conn.execute("INSERT OR REPLACE INTO meta (id, last) VALUES (1, ?)", (last,))
        return len(records)


registration = registration_for(Dest)
