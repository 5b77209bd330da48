"""SQLite destinations with one held-out fault-handling bug each, whose file I/O is C code pyfakefs cannot see: the
fault clauses must catch them through the FUSE filesystem (tests/test_fuse_faults.py).

Each is the shipped example (examples/sqlite_destination.py) with one change:
- swallows_commit_errors: a failed commit (an fsync that failed inside it, with synchronous=FULL) is ignored and the
  batch reported written: the swallowed fsync error PostgreSQL's fsyncgate was about.
- no_journal: journal_mode=OFF, so a commit the full disk stops halfway leaves half-written pages (a partial value,
  or a malformed database) instead of being rolled back.
- counts_rolled_back: after a failed commit it reports the records it had applied as written, though SQLite rolled
  the whole transaction back: a miscount after EIO.
"""

from __future__ import annotations

from collections.abc import Sequence

from examples.sqlite_destination import SqliteDestination, read_sqlite
from harness import (
    Destination,
    Record,
    Registration,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
)

__all__ = ["counts_rolled_back", "no_journal", "swallows_commit_errors"]


class _SwallowsCommitErrors(SqliteDestination):
    """Reports every batch written even when its commit (and the fsync in it) failed."""

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            if "commit failed" in str(err):
                return len(records)  # the bug: the failed commit's error is swallowed
            raise


class _NoJournal(SqliteDestination):
    """Runs without a rollback journal, so a failed commit cannot be undone."""

    def open(self) -> None:
        super().open()
        assert self._db is not None
        self._db.execute("pragma journal_mode = off")  # the bug


class _CountsRolledBack(SqliteDestination):
    """Counts the records a failed commit had applied as written, though SQLite stored none of them."""

    def write(self, records: Sequence[Record]) -> int:
        try:
            return super().write(records)
        except WriteError as err:
            if "commit failed" in str(err) and len(records) > 1:
                raise WriteError(str(err), written=len(records) - 1) from err  # the bug: nothing was stored
            raise


def _registration(cls: type[SqliteDestination], **config: str) -> Registration:
    def factory() -> Destination:
        return destination_with_middleware(cls(), *default_destination_middleware())

    return Registration(factory=factory, config={"path": "{tmp}/db/records.sqlite", **config}, read_back=read_sqlite,
                        path_param="path")


swallows_commit_errors = _registration(_SwallowsCommitErrors, sync="true")
no_journal = _registration(_NoJournal)
counts_rolled_back = _registration(_CountsRolledBack)

