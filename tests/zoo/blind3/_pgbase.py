"""The PostgreSQL destinations' shared piece: a correct destination (one transaction per batch, every round trip
under a client-side deadline, a reconnect with a connect timeout after an error) that each module changes in one
method, and its registration on the database $CONFORMANCE_POSTGRES_DSN names (tests/postgres.py)."""

from __future__ import annotations

import gc
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from harness import (
    Backend,
    Parameter,
    ParameterType,
    Record,
    Registration,
    UnimplementedDestination,
    ValidationRequired,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    validate_config,
)
from reference.file_destination import key_problem
from tests.postgres import DSN_VARIABLE

__all__ = ["PGDestination", "pg_registration", "deadline", "table_of"]

PARAMS = {
    "url": Parameter(description="PostgreSQL connection URL.", type=ParameterType.string,
                     validations=(ValidationRequired(),)),
    "namespace": Parameter(description="Names this destination's table.", type=ParameterType.string,
                           validations=(ValidationRequired(),)),
}


def table_of(namespace: str) -> str:
    """The table a namespace names."""
    return "kv_" + hashlib.sha1(namespace.encode()).hexdigest()[:24]


@contextmanager
def deadline(conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
    """Cuts the connection's socket when the block takes longer than `seconds` (libpq has no client-side timeout
    on a statement)."""

    def cut() -> None:
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


class PGDestination(UnimplementedDestination):
    """Keys and values as bytea in a table of its own; a batch is one transaction (written=0 on any server error)."""

    TIMEOUT = 3.0

    def __init__(self) -> None:
        self._url = ""
        self._table = ""
        self._conn: psycopg.Connection[Any] | None = None

    def parameters(self) -> Mapping[str, Parameter]:
        return PARAMS

    def configure(self, config: Mapping[str, str]) -> None:
        values = validate_config(config, PARAMS)
        self._url = values["url"]
        self._table = table_of(values["namespace"])

    def raw_connect(self) -> psycopg.Connection[Any]:
        """A new connection; a server that does not answer the startup makes it fail after a connect timeout."""
        return psycopg.connect(self._url, connect_timeout=int(self.TIMEOUT), autocommit=True)

    def connect(self) -> psycopg.Connection[Any]:
        conn = self.raw_connect()
        try:
            with deadline(conn, self.TIMEOUT):
                conn.execute(f"create table if not exists {self._table} (key bytea primary key, value bytea not null)")
        except Exception:
            conn.close()
            raise
        return conn

    def open(self) -> None:
        try:
            self._conn = self.connect()
        except psycopg.Error as err:
            raise OSError(f"cannot connect to PostgreSQL: {err}") from err

    def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def statements(self, records: Sequence[Record]) -> Iterator[tuple[str, tuple[bytes, ...]]]:
        upsert = (f"insert into {self._table} (key, value) values (%s, %s) "
                  "on conflict (key) do update set value = excluded.value")
        delete = f"delete from {self._table} where key = %s"
        for record in records:
            after = record.payload.after
            yield (delete, (record.key.raw,)) if after is None else (upsert, (record.key.raw, after.bytes()))

    def write(self, records: Sequence[Record]) -> int:
        valid = len(records)
        problem = None
        for index, record in enumerate(records):
            problem = key_problem(record.key)
            if problem is not None:
                valid = index
                break
        if valid:
            try:
                if self._conn is None:
                    self._conn = self.connect()
                with deadline(self._conn, self.TIMEOUT), self._conn.transaction(), self._conn.cursor() as cur:
                    for sql, args in self.statements(records[:valid]):
                        cur.execute(sql, args)
            except psycopg.Error as err:
                self.drop()
                raise WriteError(f"batch not stored: {err}", written=0) from err
        if problem is not None:
            raise WriteError(f"record {valid}: {problem}", written=valid)
        return len(records)

    def ack(self, position: bytes) -> None:
        """Nothing to do: a batch is stored when its transaction committed."""

    def teardown(self) -> None:
        self.drop()
        # psycopg (3.3) leaves the socket of a connect that timed out in a reference cycle: collect it now, or it
        # stays open until the garbage collector happens to run (teardown.releases sees it).
        gc.collect()


def _database() -> tuple[str, str, str]:
    """(the DSN, the server's host:port, a URL of the database through that address, password kept)."""
    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        raise RuntimeError(f"the PostgreSQL destinations need a database: set {DSN_VARIABLE} (tests/postgres.py "
                           "starts a throwaway cluster)")
    info = conninfo_to_dict(dsn)
    host = str(info.get("host") or "")
    if not host or host.startswith("/") or "," in host:
        raise RuntimeError(f"{DSN_VARIABLE} names no TCP server ({host or 'a unix socket'}): the fault proxy of "
                           "fault.backend-* needs one")
    address = f"{host}:{info.get('port') or 5432}"
    user = quote(str(info.get("user") or "postgres"), safe="")
    password = f":{quote(str(info['password']), safe='')}" if info.get("password") else ""
    database = quote(str(info.get("dbname") or "postgres"), safe="")
    return dsn, address, f"postgresql://{user}{password}@{address}/{database}?sslmode=disable"


def pg_registration(cls: Callable[[], PGDestination], name: str) -> Registration:
    """`cls()` behind the default middleware on the database $CONFORMANCE_POSTGRES_DSN names, the server declared as
    its backend; read_back selects the namespace's table directly (never through the proxy)."""
    dsn, address, url = _database()

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        table = table_of(config["namespace"])
        with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
            row = conn.execute("select to_regclass(%s)", (table,)).fetchone()
            if row is None or row[0] is None:
                return {}
            rows = conn.execute(f"select key, value from {table}").fetchall()
        return {bytes(k): bytes(v) for k, v in rows}

    def factory() -> Any:
        return destination_with_middleware(cls(), *default_destination_middleware())

    factory.__qualname__ = getattr(cls, "__name__", name)
    return Registration(factory=factory, config={"url": url, "namespace": "{tmp}"}, read_back=read_back,
                        backends=(Backend(address, params=("url",), name="PostgreSQL"),))
