"""An SQLite destination configured with a file path: one table of key -> payload, through the stdlib sqlite3.

It is registered with `path_param="path"`, so open() must create the database file's missing parent directories and
the open.*, fault.* and safety.* clauses apply to the file and its parent (CONTRACT.md section 6). Keys follow the
contract's default rules (section 4), payloads are stored as the bytes of `after`, and each batch is one transaction:
a batch that stops at record i commits exactly records[:i].

sqlite3 does its file I/O in C, where neither pyfakefs nor Python's audit hooks reach: fault.disk-full and
fault.io-error inject their faults through the FUSE filesystem (conformance/probes/fuse.py), safety.no-symlink-follow is
*not checked* for it, and safety.confined is checked on the real disk only; tests/test_path_param.py pins the
verdicts clause by clause.

The destination itself is the shipped example, examples/sqlite_destination.py: the tests check what users copy.
"""

from examples.sqlite_destination import (
    SqliteConfig,
    SqliteDestination,
    new_sqlite_destination,
    read_sqlite,
    registration,
)

__all__ = ["SqliteConfig", "SqliteDestination", "new_sqlite_destination", "read_sqlite", "registration"]
