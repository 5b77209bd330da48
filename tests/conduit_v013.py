"""Registrations for Conduit v0.13.3's world, built on first access (tests/go_connectors.py): our fixed destination
ported to Go SDK v0.13.3, and the destinations built into Conduit v0.13.3 (file v0.10.1, log v0.7.1, postgres
v0.11.2), each built standalone at the version Conduit's go.mod pins (tests/go/upstream13).

None of them names a skip for its SDK: `standalone_registration` reads each binary's Go build info and applies the
known limits of conduit-connector-sdk v0.13.3 itself (harness.conduit.buildinfo).

- The log connector holds nothing a reader could query: it logs every record as JSON on its stderr. Its config sets
  `message` to the example's `{tmp}`, so each logged line names its example, and `read_back` replays the lines of
  the processes configured with that message.
- The postgres connector writes rows to the database in $CONFORMANCE_POSTGRES_DSN (tests/postgres.py), one table
  per example named by its `{tmp}`; the table has to exist before the connector writes (it never creates one), so
  the factory's destination creates it when it is configured, as an operator would before starting a pipeline.
  Keys are structured `{"id": text}`, payloads rows `{"title", "body", "flag"}`, and `read_back` selects the rows.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from harness import Backend, RawData, Registration, StructuredData, directory_reader
from harness.conduit.adapter import StandaloneDestination
from harness.conduit.standalone import standalone_registration
from tests.conduit_connectors import _value, read_opencdc_log

__all__ = [
    "go_fixed13", "upstream13_file", "upstream13_log", "upstream13_postgres",
    "read_log_records", "read_rows", "pg_keys", "pg_payloads", "pg_invalid_keys", "PG_COLUMNS", "PG_TABLE_DDL",
]

_DIRECTORY = {"directory": "{tmp}/out"}
NO_INVALID_KEYS = "an append-only log of whole records has no invalid keys"
# What a Conduit pipeline's own connector process writes, these registrations cannot read back or set up.
LOG_NOT_IN_PIPELINES = {clause: "read_back reads the log of the driver's own connector processes, not a pipeline's"
                        for clause in ("pipeline.delivers", "pipeline.crash-recovery", "pipeline.engine-restart")}
PG_NOT_IN_PIPELINES = {clause: "the table is created by a hook on the driver's configure, which a pipeline's "
                               "connector does not run" for clause in LOG_NOT_IN_PIPELINES}


def _go(name: str) -> str:
    from tests.go_connectors import build

    return str(build(name))


class _Hooked:
    """A standalone destination whose configure() first calls `hook(destination, config)`; everything else is the
    destination's own (attributes are passed through, so the suite sees the same adapter)."""

    def __init__(self, inner: StandaloneDestination, hook: Callable[[StandaloneDestination, Mapping[str, str]], None]):
        self._inner = inner
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)

    def configure(self, config: Mapping[str, str]) -> None:
        self._hook(self._inner, config)
        self._inner.configure(config)


def _hooked(
    registration: Registration, hook: Callable[[StandaloneDestination, Mapping[str, str]], None]
) -> Registration:
    """The registration with its factory's destinations wrapped in _Hooked."""
    base = registration.factory

    def factory() -> _Hooked:
        return _Hooked(base(), hook)

    factory.__qualname__ = getattr(base, "__qualname__", "factory")
    return replace(registration, factory=factory)


# --- log: records are log lines on the connector's stderr -----------------------------------------------------------

_LOGGERS: dict[str, list[Any]] = {}  # message -> the connector processes configured with it, in order
_LOGGERS_LOCK = threading.Lock()


def _remember_logger(destination: StandaloneDestination, config: Mapping[str, str]) -> None:
    with _LOGGERS_LOCK:
        _LOGGERS.setdefault(config.get("message", ""), []).append(destination.plugin)


def read_log_records(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """What the log connector "holds": the records it logged under this config's `message`, applied in order (each
    key's last `after`; a record without an `after` removes its key), read from the processes' stderr."""
    with _LOGGERS_LOCK:
        plugins = list(_LOGGERS.get(config.get("message", ""), ()))
    held: dict[bytes, bytes] = {}
    for plugin in plugins:
        for line in plugin.stderr_text().split("\n"):  # not splitlines(): a record may hold U+0085 or U+2028
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a panic or another line that is not a zerolog event
            if not isinstance(entry, dict) or "record" not in entry or entry.get("@message") != config.get("message"):
                continue
            record = entry["record"]
            key = _value(record.get("key"))
            after = _value((record.get("payload") or {}).get("after"))
            if key is None:
                continue
            if after is None:
                held.pop(key, None)
            else:
                held[key] = after
    return held


# --- postgres: rows in a table ---------------------------------------------------------------------------------------

PG_COLUMNS = ("title", "body", "flag")
PG_TABLE_DDL = 'CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, title text, body text, flag boolean)'
# Text a Postgres text column stores and a protobuf Struct carries unchanged: no NUL, no lone surrogate.
_PG_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)

pg_keys = _PG_TEXT.map(lambda s: StructuredData({"id": s}))
pg_payloads = st.fixed_dictionaries({"title": st.none() | _PG_TEXT, "body": st.none() | _PG_TEXT,
                                     "flag": st.none() | st.booleans()}).map(StructuredData)
# What the connector cannot store a row under: no key, raw bytes that are not a JSON object, an unknown column.
# (A key of two columns is invalid too, but it kills the process: pinned on its own, see tests/test_conduit_v013.py.)
pg_invalid_keys = st.one_of(
    st.none(),
    st.sampled_from([RawData(b""), RawData(b"k"), RawData(b"[1]"), RawData(b'"id"')]),
    _PG_TEXT.map(lambda s: StructuredData({"nope": s})),
)

_PG_LOCK = threading.RLock()  # _pg() takes it too, inside the callers that hold it
_PG: dict[str, Any] = {}


def _pg(dsn: str) -> Any:
    """This process' connection to the test database (autocommit), opened once: before the checks look at our open
    descriptors (teardown.releases), never during one."""
    import psycopg

    with _PG_LOCK:
        connection = _PG.get(dsn)
        if connection is None or connection.closed:
            connection = _PG[dsn] = psycopg.connect(dsn, autocommit=True)
        return connection


def _table(name: str) -> Any:
    from psycopg import sql

    if len(name.encode()) > 63:  # Postgres would cut the identifier, and two examples' tables could collide
        raise ValueError(f"table name {name!r} is longer than Postgres' 63 bytes: set a shorter TMPDIR")
    return sql.Identifier(name)


def _create_table(dsn: str) -> Callable[[StandaloneDestination, Mapping[str, str]], None]:
    def hook(_destination: StandaloneDestination, config: Mapping[str, str]) -> None:
        from psycopg import sql

        table = config.get("table", "")
        if table.startswith("/"):  # our {tmp}; a config the suite broke on purpose gets no table
            with _PG_LOCK:
                _pg(dsn).execute(sql.SQL(PG_TABLE_DDL).format(table=_table(table)))

    return hook


def read_rows(dsn: str) -> Callable[[Mapping[str, str]], dict[bytes, bytes]]:
    """A read_back selecting the rows of the config's table: {"id": id} -> {"title", "body", "flag"}, both as
    canonical JSON (how the suite's model spells a structured key and payload)."""
    import psycopg
    from psycopg import sql

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        query = sql.SQL("SELECT id, title, body, flag FROM {table}").format(table=_table(config["table"]))
        with _PG_LOCK:
            try:
                rows = _pg(dsn).execute(query).fetchall()
            except psycopg.errors.UndefinedTable:
                return {}  # not configured yet
        return {StructuredData({"id": id_}).bytes(): StructuredData(dict(zip(PG_COLUMNS, values, strict=True))).bytes()
                for id_, *values in rows}

    read_back.__qualname__ = "read_rows($CONFORMANCE_POSTGRES_DSN)"
    return read_back


def _postgres() -> Registration:
    from tests.postgres import DSN_VARIABLE

    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        raise RuntimeError(f"upstream13_postgres needs a PostgreSQL database: set {DSN_VARIABLE} (tests/postgres.py "
                           "starts a throwaway cluster)")
    _pg(dsn)  # connect now, before any check counts descriptors
    url, backends = pg_url(dsn)
    registration = standalone_registration(
        [_go("upstream13-postgres")], config={"url": url, "table": "{tmp}", "key": "id"}, read_back=read_rows(dsn),
        valid_keys=pg_keys, invalid_keys=pg_invalid_keys, skip=PG_NOT_IN_PIPELINES)
    return replace(_hooked(registration, _create_table(dsn)), payloads=pg_payloads, backends=backends)


def pg_url(dsn: str) -> tuple[str, tuple[Backend, ...]]:
    """The connector's `url` for `dsn`, and the server as its backend when it is reached over TCP: then the url is
    spelled postgresql://user@host:port/db, so that the suite can point it at a fault proxy (fault.backend-*); a
    unix socket's DSN is kept as it is, with no backend (those clauses are then not checked)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    host = str(info.get("host") or "")
    if not host or host.startswith("/") or "," in host:
        return dsn, ()
    address = f"{host}:{info.get('port') or 5432}"
    user = quote(str(info.get("user") or "postgres"), safe="")
    url = f"postgresql://{user}@{address}/{quote(str(info.get('dbname') or 'postgres'), safe='')}?sslmode=disable"
    return url, (Backend(address, params=("url",), name="PostgreSQL"),)


def __getattr__(name: str) -> Registration:
    """Builds the Go connectors only when a test asks for one."""
    if name == "go_fixed13":
        return standalone_registration([_go("fixed13")], config=_DIRECTORY, read_back=directory_reader("directory"),
                                       directory_param="directory")
    if name == "upstream13_file":
        return standalone_registration([_go("upstream13-file")], config={"path": "{tmp}/records.jsonl"},
                                       read_back=read_opencdc_log("path"), path_param="path",
                                       skip={"write.invalid-key-count": NO_INVALID_KEYS})
    if name == "upstream13_log":
        return _hooked(standalone_registration([_go("upstream13-log")], config={"message": "{tmp}"},
                                               read_back=read_log_records,
                                               skip={"write.invalid-key-count": NO_INVALID_KEYS,
                                                     **LOG_NOT_IN_PIPELINES}), _remember_logger)
    if name == "upstream13_postgres":
        return _postgres()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
