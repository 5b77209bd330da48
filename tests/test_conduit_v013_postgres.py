"""conduit-connector-postgres v0.11.2 (Conduit v0.13.3's built-in Postgres destination) against a real PostgreSQL 15:
its verdicts, and a replay of each failure against the connector directly.

The database comes from $CONFORMANCE_POSTGRES_DSN (.ci/run starts a throwaway cluster and sets it); without it a
cluster of our own is started for the session (tests/postgres.py). Under CI a missing database fails, never skips.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from harness import Operation, RawData, StructuredData, WriteError
from harness.conduit.plugin_process import PluginError
from tests.batches import changes
from tests.postgres import DSN_VARIABLE, key, row
from tests.suite_runs import NO_LOCATION, SuiteRun, dump, expected, opened, shared_run, table

PG = "tests.conduit_v013:upstream13_postgres"
ENGINE = ["pipeline.crash-recovery", "pipeline.delivers", "pipeline.engine-restart"]


@pytest.fixture(scope="module")
def pg_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str, postgres_dsn: str) -> SuiteRun:
    """One suite run over the Postgres destination."""
    return shared_run(tmp_path_factory, worker_id, "v013-postgres-run", (PG,), ("upstream13-postgres",),
                      env={DSN_VARIABLE: postgres_dsn})


_COMMON = {
    "not applicable": ["write.empty-batch", "write.large-payload"],
    "not checked": NO_LOCATION,
    "skipped": ["ack.in-order", *ENGINE],  # its table is made by a hook on the driver's configure
}
# The connector's own: a record without `after` other than a delete is invalid SQL and a delete with an `after`
# removes the row (write.round-trip); a batch is one transaction, so an invalid key at i gives written=0
# (write.invalid-key-count); nothing guards the call order (lifecycle.out-of-order).
# fault.backend-reset: its one connection is never reopened after a drop; fault.backend-stall (and call.timeout): a
# write waits for ever on a server that stopped answering (docs/findings/postgres-v0.11.2.md).
PG_TABLE = expected({**_COMMON, "failed": ["call.timeout", "fault.backend-reset", "fault.backend-stall",
                                           "lifecycle.out-of-order", "write.invalid-key-count", "write.round-trip"]})

# A developer's database on a unix socket has no TCP address for the proxy: the backend clauses are not checked.
PG_TABLE_UNIX_SOCKET = expected({**_COMMON, "failed": ["lifecycle.out-of-order", "write.invalid-key-count",
                                                       "write.round-trip"],
                                 "not checked": [*NO_LOCATION, "fault.backend-reset", "fault.backend-stall"]})


def test_postgres_connector_v0_11_2_verdicts(pg_run: SuiteRun, postgres_dsn: str) -> None:
    """The verdict table (README: findings for Conduit v0.13.3's built-in destinations)."""
    from tests.conduit_v013 import pg_url

    over_tcp = bool(pg_url(postgres_dsn)[1])
    assert table(pg_run, PG) == (PG_TABLE if over_tcp else PG_TABLE_UNIX_SOCKET), dump(pg_run, PG)
    assert 'ERROR: syntax error at or near ";"' in pg_run.output  # write.round-trip: an upsert with no column
    assert "WriteError.written=0, but the first invalid key is at index 1" in pg_run.output
    assert "configure() is forbidden in state 'configured', so LifecycleError was due, but it returned normally" \
        in pg_run.output
    if not over_tcp:
        return
    # fault.backend-reset's failure is there; its error text depends on which statement the reset met (pgx).
    assert "[fault.backend-reset]" in pg_run.output
    assert re.search(r"\[fault\.backend-stall\].*\n.*\[call\.timeout\] a call did not return", pg_run.output)
    assert "proxy = replay_proxy(" in pg_run.output


# --- each failure, replayed against the connector -------------------------------------------------------------------


@pytest.fixture
def pg(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """A configured and opened Postgres destination on a fresh table, its read_back and its config."""
    import tests.conduit_v013 as v013

    monkeypatch.setenv(DSN_VARIABLE, postgres_dsn)  # the registration reads it
    registration = v013.upstream13_postgres
    # A table of its own, named as the suite names them (a temp dir's path); pytest's tmp_path is too long for one.
    config = {**registration.config, "table": f"/replay-{secrets.token_hex(8)}"}
    with opened(registration, config) as destination:
        yield destination, registration.read_back, config





def test_a_delete_that_carries_an_after_removes_the_row(pg: Any) -> None:
    """write.round-trip (design, not a bug): the connector follows the operation, so a delete removes the row even
    when it carries an `after`; the contract's model follows `after` alone (README: choices where CONTRACT.md is
    silent)."""
    destination, read_back, config = pg
    batch = changes((Operation.create, key("a"), row("x")), (Operation.delete, key("a"), row("y")))
    assert destination.write(batch) == 2
    assert read_back(config) == {}  # the model holds {"id":"a"} -> {"title":"y",...}


def test_a_record_without_after_other_than_a_delete_is_invalid_sql(pg: Any) -> None:
    """write.round-trip (connector bug): create, update or snapshot with no `after` (or an empty one) upserts with
    an empty SET list, `ON CONFLICT ("id") DO UPDATE SET;`, a syntax error that fails the whole batch."""
    destination, read_back, config = pg
    for operation in (Operation.create, Operation.update, Operation.snapshot):
        with pytest.raises(WriteError, match='syntax error at or near ";"') as caught:
            destination.write(changes((Operation.create, key("a"), row("x")), (operation, key("b"), None)))
        assert caught.value.written == 0
    assert read_back(config) == {}  # the batch's transaction rolled back, the valid record before it too


def test_a_batch_is_all_or_nothing(pg: Any) -> None:
    """write.invalid-key-count (design): a batch runs in one transaction, so an invalid key at index i fails it
    whole with written=0 (records[:i] rolled back) where the contract wants WriteError(written=i) with them
    stored. Conduit then nacks valid records too; nothing is lost or written twice."""
    destination, read_back, config = pg
    for bad in (None, RawData(b"k"), StructuredData({"nope": "x"})):
        with pytest.raises(WriteError) as caught:
            destination.write(changes((Operation.create, key("a"), row("x")), (Operation.create, key("b"), row("y")),
                                      (Operation.create, bad, row("z"))))
        assert caught.value.written == 0
        assert read_back(config) == {}
    assert destination.write(changes((Operation.create, key("a"), row("x")))) == 1  # and the next batch works
    assert read_back(config) == {key("a").bytes(): row("x").bytes()}


def test_a_raw_payload_is_refused(pg: Any) -> None:
    """Why raw payloads fail (suite false positive where the suite writes them to a registration that declares
    payloads): the connector needs a JSON object, so raw bytes that are not one fail the batch."""
    destination, _read_back, _config = pg
    with pytest.raises(WriteError, match="failed to get payload: invalid character"):
        destination.write(changes((Operation.create, key("a"), RawData(b"x"))))


def test_a_key_of_two_columns_kills_the_connector(pg: Any) -> None:
    """Connector bug (found reading its code; its invalid keys in the registration leave it out, so one crash does
    not fail every clause): a structured key with two fields panics instead of failing the write."""
    destination, _read_back, _config = pg
    with pytest.raises(PluginError, match="panic: composite keys not yet supported"):
        destination.write(changes((Operation.create, StructuredData({"id": "a", "title": "t"}), row("x"))))


def test_a_second_configure_is_accepted(pg: Any) -> None:
    """lifecycle.out-of-order (connector, not SDK): nothing guards the call order, so Configure when open (and
    after Teardown) is accepted; SDK v0.13.3 guards nothing either."""
    destination, _read_back, config = pg
    destination.configure(config)  # returned normally: LifecycleError was due


def test_a_dropped_connection_is_never_reopened(pg: Any, postgres_dsn: str) -> None:
    """fault.backend-reset (connector bug): Open makes one pgx.Conn (destination.go:53) and nothing reconnects it,
    so after the connection to PostgreSQL drops, every later write fails (`conn closed`) although the server is
    reachable again; the write the drop hit is counted truthfully (written=0, nothing held)."""
    import tests.conduit_v013 as v013
    from conformance.probes.backend_proxy import ToxiproxyUnavailable, shared

    _destination, read_back, config = pg
    url, backends = v013.pg_url(postgres_dsn)
    if not backends:
        pytest.skip("not checked here: the database is reached over a unix socket, and a proxy needs TCP")
    try:
        proxy = shared().proxy(f"replay-pg-{secrets.token_hex(4)}", backends[0].address)
    except ToxiproxyUnavailable as err:
        pytest.skip(f"not checked here: {err}")
    proxied = {**config, **backends[0].overlay({"url": url}, proxy.listen)}
    with opened(v013.upstream13_postgres, proxied) as destination:
        assert destination.write(changes((Operation.create, key("a"), row("x")))) == 1
        proxy.toxic("reset_peer", "upstream", timeout=0)
        with pytest.raises(WriteError) as dropped:
            destination.write(changes((Operation.create, key("b"), row("y")), (Operation.create, key("c"), row("z"))))
        assert dropped.value.written == 0
        proxy.clear()
        assert read_back(proxied) == {key("a").bytes(): row("x").bytes()}  # the dropped batch rolled back whole
        with pytest.raises(WriteError, match="conn closed") as again:
            destination.write(changes((Operation.create, key("d"), row("w"))))
        assert again.value.written == 0

