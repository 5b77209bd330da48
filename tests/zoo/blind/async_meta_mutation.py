"""Async directory destination (asyncio.to_thread) that stamps each record's metadata with the time it was written."""
import asyncio
import time

from harness import WriteError

from ._common import key_problem, value_of
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    async def open(self):
        await asyncio.to_thread(super().open)

    async def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                await asyncio.to_thread(self.store, rec.key.raw, value_of(rec))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
            rec.metadata["blind.writtenAt"] = str(time.time_ns())  # BUG: mutates the caller's record
        return len(records)


registration = registration_for(Dest)
