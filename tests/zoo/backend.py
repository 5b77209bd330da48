"""Destinations that write to a real server over TCP (the key-value server of tests/zoo/kv_server.py, started in a
process of its own on first use), for the fault.backend-* clauses: one correct, one broken per clause.

- `kv_correct`: one command at a time, each answered before the next, with a socket timeout; a dropped or silent
  connection gives WriteError counting the records the server confirmed, and the next write reconnects.
- `kv_trusts_sent` (breaks fault.backend-reset): sends the whole batch at once and, when the connection drops before
  the answers come, counts every record it sent as stored ("the bytes left us").
- `kv_no_timeout` (breaks fault.backend-stall): the correct destination without a socket timeout, so a server that
  stops answering blocks its write for ever.

Each registration declares the server as its backend (`harness.Backend`), through its `server` parameter.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Backend,
    Parameter,
    Record,
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    parameters_from,
    parse_config,
)

__all__ = ["KVConfig", "KVDestination", "TrustsSent", "NoTimeout", "server_address", "read_space"]

_SERVER: dict[str, Any] = {}
_LOCK = threading.Lock()


def server_address() -> str:
    """"127.0.0.1:port" of this process' key-value server, started on first use and stopped at exit."""
    with _LOCK:
        if "address" not in _SERVER:
            process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("kv_server.py"))],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = process.stdout.readline() if process.stdout else ""
            if not line.strip().isdigit():
                raise RuntimeError(f"the key-value server did not start (exit {process.poll()}, said {line!r})")
            _SERVER.update(address=f"127.0.0.1:{int(line)}", process=process)
            atexit.register(_stop, process)
        return str(_SERVER["address"])


def _stop(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _connect(address: str, timeout: float | None) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_space(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """The registration's read_back: DUMP of the config's space, asked of the server directly (never the proxy)."""
    with _connect(server_address(), 10.0) as connection, connection.makefile("rb") as answers:
        connection.sendall(f"DUMP {config['space'].encode().hex()}\n".encode())
        held: dict[bytes, bytes] = {}
        for line in answers:
            if line == b"END\n":
                return held
            key, value = line.split()
            held[bytes.fromhex(key.decode())] = b"" if value == b"-" else bytes.fromhex(value.decode())
    raise RuntimeError("the key-value server closed the connection inside a DUMP")


class KVConfig(BaseModel):
    """The key-value destinations' config."""

    model_config = ConfigDict(extra="forbid")

    server: str = Field(min_length=1, description="host:port of the key-value server.")
    space: str = Field(min_length=1, description="The key space this destination writes in.")
    timeout: float = Field(2.0, gt=0, description="Seconds a command may wait for the server's answer.")


def _command(space: str, record: Record) -> bytes:
    key = record.key.bytes().hex()  # the caller checked that there is a key
    after = record.payload.after
    if after is None:
        return f"DEL {space} {key}\n".encode()
    return f"PUT {space} {key} {after.bytes().hex() or '-'}\n".encode()


class KVDestination(UnimplementedDestination):
    """Writes each record as one command and waits for its OK before the next; reconnects after a failure."""

    timeout_seconds: bool = True  # whether the socket gets the configured timeout

    def __init__(self) -> None:
        self._config: KVConfig | None = None
        self._connection: socket.socket | None = None
        self._answers: Any = None

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(KVConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        self._config = parse_config(config, KVConfig)

    def open(self) -> None:
        self._connected()

    def _connected(self) -> socket.socket:
        assert self._config is not None
        if self._connection is None:
            self._connection = _connect(self._config.server, self._config.timeout if self.timeout_seconds else None)
            self._answers = self._connection.makefile("rb")
        return self._connection

    def _space(self) -> str:
        assert self._config is not None
        return self._config.space.encode().hex()

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            if record.key is None or not record.key.bytes():
                raise WriteError(f"record {index} has no key", written=index)
            try:
                self._connected().sendall(_command(self._space(), record))
                answer = self._answers.readline()
            except OSError as err:
                self._close()
                raise WriteError(f"record {index}: the server did not confirm it: {err}", written=index) from err
            if answer != b"OK\n":
                self._close()
                raise WriteError(f"record {index}: the server answered {answer!r}", written=index)
        return len(records)

    def ack(self, position: bytes) -> None:
        """Nothing to do: a record is stored when the server has answered OK."""

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        if connection is not None:
            connection.close()

    def teardown(self) -> None:
        self._close()


class TrustsSent(KVDestination):
    """Broken: pipelines the batch, and counts what it sent as stored when the answers do not come."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            if record.key is None or not record.key.bytes():
                raise WriteError(f"record {index} has no key", written=index)
        try:
            self._connected().sendall(b"".join(_command(self._space(), r) for r in records))
        except OSError as err:
            self._close()
            raise WriteError(f"the batch could not be sent: {err}", written=0) from err
        try:
            for _ in records:
                if self._answers.readline() != b"OK\n":
                    raise ConnectionError("no answer")
        except OSError:
            self._close()  # the bug: everything sent is taken as stored
        return len(records)


class NoTimeout(KVDestination):
    """Broken: no socket timeout, so a server that stops answering blocks the write for ever."""

    timeout_seconds = False


def _registration(cls: type[KVDestination]) -> Registration:
    address = server_address()

    def factory() -> Any:
        return destination_with_middleware(cls(), *default_destination_middleware())

    factory.__qualname__ = cls.__name__
    return Registration(factory=factory, config={"server": address, "space": "{tmp}"}, read_back=read_space,
                        backends=(Backend(address, params=("server",), name="key-value server"),))


def __getattr__(name: str) -> Registration:
    """Starts the server only when a registration is asked for."""
    classes = {"kv_correct": KVDestination, "kv_trusts_sent": TrustsSent, "kv_no_timeout": NoTimeout}
    if name in classes:
        return _registration(classes[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
