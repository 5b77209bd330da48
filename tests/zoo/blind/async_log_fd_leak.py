"""Async JSON-lines log (asyncio.to_thread for the blocking I/O); after a failed append it drops the descriptor to
reopen on the next write, without closing it."""
import asyncio
import os

from harness import WriteError

from ._common import key_problem, write_all
from ._logbase import LogDestination, registration_for


class Dest(LogDestination):
    def append(self, line):
        self.ensure_open()
        try:
            write_all(self.fd, line)
            if self.cfg.sync:
                os.fsync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            self.fd = None  # BUG: "reopen on the next write" -- the old descriptor is never closed
            raise
        self.size += len(line)

    async def open(self):
        await asyncio.to_thread(super().open)

    async def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key, True)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                await asyncio.to_thread(self.append, self.line_for(rec))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    async def teardown(self):
        self.close()


registration = registration_for(Dest)
