"""CONTROL: an async key-value client (every method `async def`) with a small pool of asyncio stream connections to
the repository's key-value server: each batch borrows one connection, every request runs under asyncio.wait_for,
a connection that failed is aborted and never returned to the pool, and teardown aborts whatever the pool holds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from harness import Parameter, Record, UnimplementedDestination, WriteError, parameters_from, parse_config
from reference.file_destination import key_problem
from tests.zoo.backend import KVConfig
from tests.zoo.blind3._kvbase import kv_registration

__all__ = ["AsyncPool"]

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _command(space: str, record: Record) -> bytes:
    key = record.key.bytes().hex()  # the caller checked the key
    after = record.payload.after
    if after is None:
        return f"DEL {space} {key}\n".encode()
    return f"PUT {space} {key} {after.bytes().hex() or '-'}\n".encode()


class AsyncPool(UnimplementedDestination):
    """Batches over pooled connections, each request under a deadline."""

    POOL = 3

    def __init__(self) -> None:
        self._config: KVConfig | None = None
        self._idle: list[Connection] = []

    async def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(KVConfig)

    async def configure(self, config: Mapping[str, str]) -> None:
        self._config = parse_config(config, KVConfig)

    async def _connect(self) -> Connection:
        assert self._config is not None
        host, port = self._config.server.rsplit(":", 1)
        return await asyncio.wait_for(asyncio.open_connection(host, int(port)), self._config.timeout)

    async def open(self) -> None:
        self._idle.append(await self._connect())

    async def _request(self, connection: Connection, data: bytes) -> None:
        assert self._config is not None
        reader, writer = connection
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self._config.timeout)
        answer = await asyncio.wait_for(reader.readline(), self._config.timeout)
        if answer != b"OK\n":
            raise ConnectionError(f"the server answered {answer!r}")

    @staticmethod
    def _abort(connection: Connection) -> None:
        connection[1].transport.abort()

    async def write(self, records: Sequence[Record]) -> int:
        assert self._config is not None
        space = self._config.space.encode().hex()
        connection: Connection | None = None
        try:
            for index, record in enumerate(records):
                problem = key_problem(record.key)  # the contract's key rules (section 4)
                if problem is not None:
                    raise WriteError(f"record {index}: {problem}", written=index)
                try:
                    if connection is None:
                        connection = self._idle.pop() if self._idle else await self._connect()
                    await self._request(connection, _command(space, record))
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as err:
                    if connection is not None:
                        self._abort(connection)
                        connection = None
                    raise WriteError(f"record {index}: {err!r}", written=index) from err
        finally:
            if connection is not None:
                if len(self._idle) < self.POOL:
                    self._idle.append(connection)
                else:
                    self._abort(connection)
        return len(records)

    async def ack(self, position: bytes) -> None:
        """Nothing to do: a record is stored when the server has answered OK."""

    async def teardown(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            self._abort(connection)
        for connection in idle:  # abort closes the socket on the loop's next turn: wait for it
            try:
                await asyncio.wait_for(connection[1].wait_closed(), 1)
            except Exception:
                pass


def __getattr__(name: str) -> Any:
    """Starts the server only when the registration is asked for."""
    if name == "registration":
        return kv_registration(AsyncPool, "ctl_kv_async_pool")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
