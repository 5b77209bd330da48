"""Registrations for the destinations built into Conduit v0.14.0 (file v0.10.3, log v0.7.3, postgres v0.14.0; s3
v0.9.3 is in tests/conduit_s3.py), each built standalone at the version Conduit's go.mod pins (tests/go/upstream14),
on first access (tests/go_connectors.py).

They are registered as Conduit v0.13.3's are (tests/conduit_v013.py: the same read-backs, log lines and Postgres
rows, the same hooks), with nothing naming a skip for their SDK: `standalone_registration` reads each binary's Go build
info and applies the known limits of conduit-connector-sdk v0.14.1 (harness.conduit.buildinfo). One difference: postgres
v0.14.0 has no `key` parameter any more (a record's structured key names its key columns, all of them), so its config
is `url` and `table` only.
"""

from __future__ import annotations

import os
from dataclasses import replace

from harness import Registration
from harness.conduit.standalone import standalone_registration
from tests.conduit_connectors import read_opencdc_log
from tests.conduit_v013 import (
    LOG_NOT_IN_PIPELINES,
    NO_INVALID_KEYS,
    PG_NOT_IN_PIPELINES,
    _create_table,
    _go,
    _hooked,
    _pg,
    _remember_logger,
    pg_invalid_keys,
    pg_keys,
    pg_payloads,
    read_log_records,
    read_rows,
)

__all__ = ["upstream14_file", "upstream14_log", "upstream14_postgres", "PG_LARGE_PAYLOAD"]

# write.large-payload's payloads are arbitrary bytes (NUL, invalid UTF-8), which no row of columns holds: the
# connector refuses them with a WriteError (tests/test_conduit_v014_postgres.py replays it), as it refuses any raw
# payload that is not a JSON object. On v0.11.2 the clause was "not applicable" (SDK v0.13.3's 4 MiB limit).
PG_LARGE_PAYLOAD = ("a row holds the columns of a JSON object, not arbitrary bytes: the connector refuses such a "
                    "payload with a WriteError (its declared payloads are rows)")


def _postgres() -> Registration:
    from tests.postgres import DSN_VARIABLE

    dsn = os.environ.get(DSN_VARIABLE)
    if not dsn:
        raise RuntimeError(f"upstream14_postgres needs a PostgreSQL database: set {DSN_VARIABLE} (tests/postgres.py "
                           "starts a throwaway cluster)")
    _pg(dsn)  # connect now, before any check counts descriptors
    registration = standalone_registration(
        [_go("upstream14-postgres")], config={"url": dsn, "table": "{tmp}"}, read_back=read_rows(dsn),
        valid_keys=pg_keys, invalid_keys=pg_invalid_keys,
        skip={**PG_NOT_IN_PIPELINES, "write.large-payload": PG_LARGE_PAYLOAD})
    return replace(_hooked(registration, _create_table(dsn)), payloads=pg_payloads)


def __getattr__(name: str) -> Registration:
    """Builds the Go connectors only when a test asks for one."""
    if name == "upstream14_file":
        return standalone_registration([_go("upstream14-file")], config={"path": "{tmp}/records.jsonl"},
                                       read_back=read_opencdc_log("path"), path_param="path",
                                       skip={"write.invalid-key-count": NO_INVALID_KEYS})
    if name == "upstream14_log":
        return _hooked(standalone_registration([_go("upstream14-log")], config={"message": "{tmp}"},
                                               read_back=read_log_records,
                                               skip={"write.invalid-key-count": NO_INVALID_KEYS,
                                                     **LOG_NOT_IN_PIPELINES}), _remember_logger)
    if name == "upstream14_postgres":
        return _postgres()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
