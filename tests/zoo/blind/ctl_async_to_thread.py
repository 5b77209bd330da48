"""CONTROL: async directory destination doing every blocking call through asyncio.to_thread."""
import asyncio

from harness import WriteError

from ._common import key_problem, value_of
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    async def configure(self, config):
        super().configure(config)

    async def open(self):
        await asyncio.to_thread(DirDestination.open, self)

    async def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                await asyncio.to_thread(self.store, rec.key.raw, value_of(rec))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    async def ack(self, position):
        await asyncio.sleep(0)

    async def teardown(self):
        pass


registration = registration_for(Dest)
