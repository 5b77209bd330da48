"""A correct destination whose I/O bypasses pyfakefs (SQLite, C code): the fault clauses reach it through the FUSE
filesystem and pass, none fails (without FUSE they are not checked: tests/test_fuse_faults.py)."""

import re

import pytest

SQLITE_DESTINATION = '''
import os, sqlite3
from harness import Registration, WriteError, default_destination_middleware, destination_with_middleware
from reference import FileDestination
from reference.file_destination import key_problem


class SqliteDestination(FileDestination):
    """Keeps every key in one SQLite file in the directory: correct, but its I/O is C code."""

    def open(self):
        super().open()
        self._db = sqlite3.connect(os.path.join(os.fsdecode(self._directory), "data.db"))
        self._db.execute("create table if not exists kv (k blob primary key, v blob)")

    def write(self, records):
        for i, r in enumerate(records):
            problem = key_problem(r.key)
            if problem:
                raise WriteError(problem, written=i)
            # One transaction per record; a failed one (a full disk, an I/O error) is rolled back and counted out.
            # (Letting sqlite3's OperationalError escape instead was this destination's bug until the FUSE fault
            # filesystem reached its I/O and fault.disk-full and fault.io-error caught it.)
            try:
                with self._db:
                    if r.payload.after is None:
                        self._db.execute("delete from kv where k = ?", (r.key.raw,))
                    else:
                        self._db.execute("insert or replace into kv values (?, ?)",
                                         (r.key.raw, r.payload.after.bytes()))
            except sqlite3.Error as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def teardown(self):
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None


def read_back(config):
    path = os.path.join(config["directory"], "data.db")
    if not os.path.exists(path):
        return {}
    with sqlite3.connect(path) as db:
        return dict(db.execute("select k, v from kv"))


registration = Registration(
    factory=lambda: destination_with_middleware(SqliteDestination(), *default_destination_middleware()),
    config={"directory": "{tmp}/out"}, read_back=read_back, directory_param="directory",
    skip={"safety.no-symlink-follow": "keys are rows, not file names"},
)
'''


def test_sqlite_destination_passes_with_faults_injected_through_fuse(pytester: pytest.Pytester) -> None:
    """pyfakefs cannot inject faults into C-level I/O, the FUSE filesystem can: those clauses pass on their evidence,
    and no clause fails falsely."""
    pytester.makepyfile(sqlitedest=SQLITE_DESTINATION)
    result = pytester.runpytest_subprocess("--destination=sqlitedest:registration", "-p", "no:cacheprovider",
                                           "--hypothesis-profile=conformance-dev", timeout=600)
    out = result.stdout.str()
    assert result.ret == 0, out[-3000:]
    found = re.findall(r"^  (passed|FAILED|not checked|skipped)\s+([a-z]+\.[a-z-]+)", out, re.M)
    statuses = {clause: status for status, clause in found}
    assert statuses["fault.disk-full"] == "passed" and statuses["fault.io-error"] == "passed", out[-3000:]
    assert statuses["open.unwritable"] == "passed"
    assert statuses["write.round-trip"] == "passed" and statuses["open.keeps-existing"] == "passed"
    assert "FAILED" not in statuses.values()
