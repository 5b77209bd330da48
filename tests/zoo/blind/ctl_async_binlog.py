"""CONTROL: async binary log (length-prefixed frames) whose blocking I/O runs on its own one-thread pool, shut down
at teardown; parameters of int, duration, float and bool types with defaults."""
import asyncio
import concurrent.futures
import datetime

from pydantic import Field

from harness import WriteError

from ._common import key_problem, value_of
from ._logbase import LogConfig, LogDestination, registration_for
from .binlog_offset_early import frame, read_binlog


class Config(LogConfig):
    queue: int = Field(8, gt=0, le=1024, alias="queue.depth", description="Records queued per flush.")
    interval: datetime.timedelta = Field(datetime.timedelta(seconds=1), alias="flush.interval",
                                         description="Longest time between flushes.")
    slack: float = Field(0.25, ge=0.0, lt=1.0, alias="preallocate.slack", description="Unused; kept for tuning.")


class Dest(LogDestination):
    Config = Config
    pool = None

    def line_for(self, rec):
        return frame(rec.key.raw, value_of(rec))

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def open(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="binlog")
        await self.run(LogDestination.open, self)

    async def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key, True)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                await self.run(self.append, self.line_for(rec))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    async def ack(self, position):
        return None

    async def teardown(self):
        pool, self.pool = self.pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self.close)
            pool.shutdown(wait=True)
        else:
            self.close()


registration = registration_for(Dest, read_back=read_binlog, name="records.blog")
