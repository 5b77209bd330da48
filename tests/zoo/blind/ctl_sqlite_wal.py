"""CONTROL: SQLite key-value destination in WAL mode (side files -wal and -shm), with a duration parameter."""
from ._sqlitebase import SqliteDestination, registration_for


class Dest(SqliteDestination):
    pass


registration = registration_for(Dest, config_extra={"journal": "wal", "busy.timeout": "2500ms"})
