"""Async directory destination doing its I/O on its own thread pool; after a failed write it starts a fresh pool
without shutting down the old one, whose idle worker thread lives on after teardown."""
import asyncio
import concurrent.futures

from harness import WriteError

from ._common import key_problem, value_of
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    pool = None

    async def open(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="blind-io")
        await asyncio.get_running_loop().run_in_executor(self.pool, super().open)

    async def write(self, records):
        loop = asyncio.get_running_loop()
        for i, rec in enumerate(records):
            problem = key_problem(rec.key)
            try:
                if problem:
                    raise WriteError(f"record {i}: {problem}", written=i)
                try:
                    await loop.run_in_executor(self.pool, self.store, rec.key.raw, value_of(rec))
                except OSError as err:
                    raise WriteError(f"record {i}: {err}", written=i) from err
            except WriteError:
                # BUG: "drop anything queued on the broken pool" -- the old pool is never shut down
                self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="blind-io")
                raise
        return len(records)

    async def teardown(self):
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.shutdown(wait=True)


registration = registration_for(Dest)
