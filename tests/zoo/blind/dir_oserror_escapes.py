"""Only key problems become WriteError; an OSError from the disk escapes write() with no count."""
from harness import WriteError

from ._common import key_problem, value_of
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            self.store(rec.key.raw, value_of(rec))  # BUG: OSError (EIO, ENOSPC) is not turned into WriteError
        return len(records)


registration = registration_for(Dest)
