"""SQLite destination that checkpoints the last acked position in a table, parsing the position as an integer."""
from ._sqlitebase import SqliteDestination, registration_for


class Dest(SqliteDestination):
    def open(self):
        super().open()
        self.conn.execute("CREATE TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY CHECK (id = 1), pos INTEGER)")

    def ack(self, position):
        # BUG: positions are opaque bytes, not numbers
        self.conn.execute("INSERT OR REPLACE INTO acked (id, pos) VALUES (1, ?)", (int(position.decode()),))


registration = registration_for(Dest)
