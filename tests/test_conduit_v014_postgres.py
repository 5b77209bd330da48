"""conduit-connector-postgres v0.14.0 (Conduit v0.14.0's built-in Postgres destination, on Go SDK v0.14.1) against a
real PostgreSQL: its verdicts, and a replay of each failure against the connector directly, next to what changed
since v0.11.2 (Conduit v0.13.3's: tests/test_conduit_v013_postgres.py, whose database fixture this reuses).

v0.14.0 rewrote the write path: no `key` parameter (every field of a structured key is a key column), raw keys and
payloads parsed as JSON objects first, a record without a key inserted. Under CI a missing database fails, never
skips.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from harness import Operation, RawData, StructuredData, WriteError
from tests.batches import changes
from tests.postgres import DSN_VARIABLE, key, row
from tests.suite_runs import NO_LOCATION, SuiteRun, dump, expected, opened, reasons, shared_run, table

if shutil.which("go") is None:
    pytest.skip("not checked here: `go` is not on PATH, so conduit-connector-postgres v0.14.0 cannot be built",
                allow_module_level=True)

PG14 = "tests.conduit_v014:upstream14_postgres"
SDK = "github.com/conduitio/conduit-connector-sdk"
ENGINE = ["pipeline.crash-recovery", "pipeline.delivers", "pipeline.engine-restart"]


@pytest.fixture(scope="module")
def pg14_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str, postgres_dsn: str) -> SuiteRun:
    """One suite run over the Postgres destination of Conduit v0.14.0."""
    return shared_run(tmp_path_factory, worker_id, "v014-postgres-run", (PG14,), ("upstream14-postgres",),
                      env={DSN_VARIABLE: postgres_dsn})


# v0.11.2's failures, unchanged in kind: a record without `after` other than a delete is invalid SQL and a delete with
# an `after` removes the row (write.round-trip); a batch is one transaction, so an invalid key at i gives written=0
# (write.invalid-key-count); nothing guards the call order (lifecycle.out-of-order). SDK v0.14.1 reads the receive
# limit, so write.large-payload is no longer "not applicable"; the registration skips it (arbitrary bytes are no row:
# tests.conduit_v014.PG_LARGE_PAYLOAD, replayed below).
PG14_TABLE = expected({
    "failed": ["lifecycle.out-of-order", "write.invalid-key-count", "write.round-trip"],
    "not applicable": ["write.empty-batch"],
    # fault.backend-*: this registration declares no backend (v0.11.2's does, tests/test_conduit_v013_postgres.py).
    "not checked": [*NO_LOCATION, "fault.backend-reset", "fault.backend-stall"],
    "skipped": ["ack.in-order", "write.large-payload", *ENGINE],  # its table is made by a hook on configure
})


def test_postgres_connector_v0_14_0_verdicts(pg14_run: SuiteRun) -> None:
    """The verdict table (findings: postgres v0.14.0)."""
    assert table(pg14_run, PG14) == PG14_TABLE, dump(pg14_run, PG14)
    assert "syntax error at end of input" in pg14_run.output  # write.round-trip: an upsert with no column
    assert "WriteError.written=0, but the first invalid key is at index 1" in pg14_run.output
    assert "configure() is forbidden in state 'configured', so LifecycleError was due, but it returned normally" \
        in pg14_run.output
    assert reasons(pg14_run, PG14)["write.empty-batch"].startswith(f"upstream {SDK}@v0.14.1 destination.go:202: ")


# --- each failure, replayed against the connector -------------------------------------------------------------------


@pytest.fixture
def pg(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """A configured and opened Postgres v0.14.0 destination on a fresh table, its read_back and its config."""
    import tests.conduit_v014 as v014

    monkeypatch.setenv(DSN_VARIABLE, postgres_dsn)  # the registration reads it
    registration = v014.upstream14_postgres
    config = {**registration.config, "table": f"/replay-{secrets.token_hex(8)}"}
    with opened(registration, config) as destination:
        yield destination, registration.read_back, config


def test_a_delete_that_carries_an_after_removes_the_row(pg: Any) -> None:
    """write.round-trip (design, as v0.11.2): the connector follows the operation, so a delete removes the row even
    when it carries an `after`; the contract's model follows `after` alone."""
    destination, read_back, config = pg
    batch = changes((Operation.create, key("a"), row("x")), (Operation.delete, key("a"), row("y")))
    assert destination.write(batch) == 2
    assert read_back(config) == {}


def test_a_record_without_after_other_than_a_delete_is_still_invalid_sql(pg: Any) -> None:
    """write.round-trip (connector bug, still there): create, update or snapshot with no `after` upserts with an
    empty SET list, now `ON CONFLICT ("id") DO UPDATE SET ` (v0.11.2 ended it with `;`), a syntax error that fails
    the whole batch."""
    destination, read_back, config = pg
    for operation in (Operation.create, Operation.update, Operation.snapshot):
        with pytest.raises(WriteError, match="syntax error at end of input") as caught:
            destination.write(changes((Operation.create, key("a"), row("x")), (operation, key("b"), None)))
        assert caught.value.written == 0
    assert read_back(config) == {}


def test_a_batch_is_still_all_or_nothing(pg: Any) -> None:
    """write.invalid-key-count (design, as v0.11.2): one transaction per batch, so an invalid key at index i fails it
    whole with written=0 (records[:i] rolled back); the error now names the statement that failed."""
    destination, read_back, config = pg
    for bad in (None, RawData(b"k"), StructuredData({"nope": "x"})):
        with pytest.raises(WriteError) as caught:
            destination.write(changes((Operation.create, key("a"), row("x")), (Operation.create, key("b"), row("y")),
                                      (Operation.create, bad, row("z"))))
        assert caught.value.written == 0
        assert read_back(config) == {}
    assert destination.write(changes((Operation.create, key("a"), row("x")))) == 1
    assert read_back(config) == {key("a").bytes(): row("x").bytes()}


def test_a_key_of_two_columns_no_longer_kills_the_connector(pg: Any) -> None:
    """Fixed since v0.11.2 (which panicked "composite keys not yet supported"): every field of the key is a key
    column, so a key the table has no unique constraint for fails the write, and the process lives on."""
    destination, read_back, config = pg
    with pytest.raises(WriteError, match="no unique or exclusion constraint matching the ON CONFLICT"):
        destination.write(changes((Operation.create, StructuredData({"id": "a", "title": "t"}), row("x"))))
    assert destination.plugin.alive()
    assert destination.write(changes((Operation.create, key("a"), row("x")))) == 1
    assert read_back(config) == {key("a").bytes(): row("x").bytes()}


def test_a_large_raw_payload_is_refused_not_lost(pg: Any) -> None:
    """Why the registration skips write.large-payload: the clause's 4 MiB payloads are arbitrary bytes, and the
    connector, which stores a JSON object's fields as columns, refuses them with a WriteError (nothing written, the
    connector alive), as it should; the same size as a row round-trips."""
    destination, read_back, config = pg
    with pytest.raises(WriteError, match="failed to JSON unmarshal raw data: invalid character") as caught:
        destination.write(changes((Operation.create, key("a"), RawData(b"\x00\xff" * (2 << 20)))))
    assert caught.value.written == 0 and destination.plugin.alive()
    big = StructuredData({"title": "t" * (4 << 20), "body": None, "flag": False})
    assert destination.write(changes((Operation.create, key("a"), big))) == 1
    assert read_back(config) == {key("a").bytes(): big.bytes()}


def test_a_second_configure_is_accepted(pg: Any) -> None:
    """lifecycle.out-of-order (connector, not SDK): nothing guards the call order, so a Configure when open is
    accepted; SDK v0.14.1 guards nothing either."""
    destination, _read_back, config = pg
    destination.configure(config)  # returned normally: LifecycleError was due
