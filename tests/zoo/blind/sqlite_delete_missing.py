"""SQLite destination that treats deleting a key that is not there as an error ("row not found")."""
from ._sqlitebase import SqliteDestination, registration_for


class Dest(SqliteDestination):
    def store(self, raw, value):
        if value is None:
            cur = self.conn.execute("DELETE FROM kv WHERE k = ?", (raw,))
            if cur.rowcount == 0:  # BUG: removing a missing key is not an error in the contract
                raise OSError(2, "no row to delete for key", raw.decode("utf-8", "replace"))
        else:
            self.conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (raw, value))


registration = registration_for(Dest)
