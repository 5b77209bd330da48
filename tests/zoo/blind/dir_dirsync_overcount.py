"""Durable directory writer: a failed directory fsync counts the record anyway (it is in place), even the last one."""
from harness import WriteError

from ._common import key_problem, value_of
from ._dirbase import DirDestination, registration_for


class DirSyncFailed(Exception):
    pass


class Dest(DirDestination):
    def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                self.store(rec.key.raw, value_of(rec))
            except DirSyncFailed as err:
                # BUG: the file is renamed into place, so "it is written": count it, also as the batch's last record
                raise WriteError(f"record {i}: directory fsync failed: {err}", written=i + 1) from err
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def sync_dir(self, d):
        try:
            super().sync_dir(d)
        except OSError as err:
            raise DirSyncFailed(str(err)) from err


registration = registration_for(Dest)
