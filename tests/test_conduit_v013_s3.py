"""conduit-connector-s3 v0.9.1 (Conduit v0.13.3's built-in S3 destination) against a local S3-compatible server
(moto's, tests/s3.py): its verdicts, and a replay of each failure against the connector directly, and against v0.9.3
(Conduit v0.14.0's, the same code: its verdicts are in tests/test_conduit_v014_s3.py).

Skips (outside CI) only when moto/boto3 cannot be imported or its server does not start, or when Go is missing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from harness import Operation, RawData
from harness.conduit.plugin_process import PluginError
from tests.batches import changes
from tests.s3 import ENDPOINT_VARIABLE, s3_endpoint  # noqa: F401  (the fixture)
from tests.suite_runs import NO_LOCATION, SuiteRun, dump, expected, opened, shared_run, table

if shutil.which("go") is None:
    pytest.skip("not checked here: `go` is not on PATH, so conduit-connector-s3 v0.9.1 cannot be built",
                allow_module_level=True)

S3 = "tests.conduit_s3:upstream13_s3"


@pytest.fixture(scope="module")
def s3_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str, s3_endpoint: str) -> SuiteRun:  # noqa: F811
    """One suite run over the S3 destination."""
    return shared_run(tmp_path_factory, worker_id, "v013-s3-run", (S3,), ("upstream13-s3",),
                      env={ENDPOINT_VARIABLE: s3_endpoint})


ENGINE = ["pipeline.crash-recovery", "pipeline.delivers", "pipeline.engine-restart"]
# The connector's own: a record without `after` or without a key panics (nil Data.Bytes(), format/json.go:39-40)
# and the process exits 2 (write.round-trip, write.count, write.invalid-key-count, teardown.keeps-data,
# teardown.releases, teardown.any-state); bytes that are not UTF-8 are stored as U+FFFD (write.round-trip,
# lifecycle.valid-orders, write.count's non-UTF-8 key); nothing guards the call order (lifecycle.out-of-order).
# teardown.idempotent is "not applicable" because the process died before its second teardown. write.no-mutation is
# not checked: its check writes bytes that are not UTF-8 too, and the session's "no value no record gave the key"
# invariant stops it there (charged to write.round-trip). fault.backend-stall and call.timeout: PutObject runs on
# Conduit's context with the SDK's default HTTP client, no deadline, so a silent endpoint blocks it for ever.
S3_TABLE = expected({
    "failed": ["call.timeout", "fault.backend-stall", "lifecycle.out-of-order", "lifecycle.valid-orders",
               "teardown.any-state", "teardown.keeps-data", "teardown.releases", "write.count",
               "write.invalid-key-count", "write.round-trip"],
    "not applicable": ["teardown.idempotent", "write.empty-batch", "write.large-payload"],
    "not checked": [*NO_LOCATION, *ENGINE, "write.recovers"],
    "skipped": ["ack.in-order"],
})


def test_s3_connector_v0_9_1_verdicts(s3_run: SuiteRun) -> None:
    """The verdict table (README: findings for Conduit v0.13.3's built-in destinations, S3)."""
    assert table(s3_run, S3) == S3_TABLE, dump(s3_run, S3)
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in s3_run.output
    assert "conduit-connector-s3@v0.9.1/destination/format/json.go:40" in s3_run.output
    # Bytes that are not UTF-8 come back as U+FFFD, one per undecodable sequence (the run is unshrunk: any such bytes).
    assert re.search(r"expected b'[^']*', found b'(\\xef\\xbf\\xbd)+'", s3_run.output), s3_run.output[-4000:]
    assert "configure() is forbidden in state 'configured', so LifecycleError was due, but it returned normally" \
        in s3_run.output
    # fault.backend-stall (and call.timeout): PutObject waits for ever on an endpoint that stopped answering.
    assert re.search(r"\[fault\.backend-stall\].*\n.*\[call\.timeout\] a call did not return", s3_run.output)


# --- each failure, replayed against the connector -------------------------------------------------------------------


# v0.9.3 (Conduit v0.14.0's) has the same Go code on SDK v0.14.1: every replay runs against both releases.
@pytest.fixture(params=["upstream13_s3", "upstream14_s3"], ids=["s3-v0.9.1", "s3-v0.9.3"])
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
       request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """A configured and opened S3 destination (v0.9.1, then v0.9.3) under a fresh prefix, its read_back and its
    config."""
    import tests.conduit_s3 as conduit_s3

    monkeypatch.setenv(ENDPOINT_VARIABLE, s3_endpoint)  # the registration reads it
    registration = getattr(conduit_s3, request.param)
    tmp = tempfile.mkdtemp(prefix="s3-replay-")
    config = {k: v.replace("{tmp}", tmp) for k, v in registration.config.items()}
    try:
        with opened(registration, config) as destination:
            yield destination, registration.read_back, config
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



NIL_DEREFERENCE = "panic: runtime error: invalid memory address or nil pointer dereference"


def test_a_record_without_after_kills_the_connector(s3: Any) -> None:
    """write.round-trip, write.count, teardown.keeps-data, teardown.releases, teardown.any-state (connector bug): the
    JSON format calls `r.Payload.After.Bytes()` on every record (destination/format/json.go:39), so a delete (or any
    record) without an `after` dereferences a nil interface: the process panics and exits 2 instead of writing or
    failing the batch, and every later call (teardown included) finds no process. Conduit restarts the pipeline and
    the batch comes back: a CDC source's first delete stops an S3 pipeline for good."""
    destination, read_back, config = s3
    assert destination.write(changes((Operation.create, RawData(b"a"), RawData(b"x")))) == 1
    with pytest.raises(PluginError, match=NIL_DEREFERENCE) as caught:
        destination.write(changes((Operation.delete, RawData(b"a"), None)))
    assert "destination/format/json.go:40" in str(caught.value) or "json.go:39" in str(caught.value)
    assert read_back(config) == {b"a": b"x"}  # the first batch's object is there; the delete wrote nothing
    with pytest.raises(PluginError, match="exited with code 2"):
        destination.teardown()


def test_bytes_that_are_not_utf8_are_stored_as_replacement_characters(s3: Any) -> None:
    """write.round-trip, lifecycle.valid-orders (connector bug, JSON format): `Payload` is the Go string of the
    after's bytes, and encoding/json writes invalid UTF-8 as U+FFFD, so a raw payload such as b"\\x80" is acknowledged
    and stored as b"\\xef\\xbf\\xbd": the bytes are lost, silently."""
    destination, read_back, config = s3
    assert destination.write(changes((Operation.create, RawData(b"a"), RawData(b"\x80")))) == 1
    assert read_back(config) == {b"a": b"\xef\xbf\xbd"}


def test_a_key_that_is_not_utf8_is_accepted_and_stored_changed(s3: Any) -> None:
    """write.count (connector bug, JSON format): a key outside UTF-8 (the contract leaves accepting it open, but then it
    must read back) is accepted and stored as U+FFFD, so nothing reads back under the key written."""
    destination, read_back, config = s3
    assert destination.write(changes((Operation.create, RawData(b"\x01\xff"), RawData(b"")))) == 1
    assert read_back(config) == {b"\x01\xef\xbf\xbd": b""}


def test_a_record_without_key_kills_the_connector_and_invalid_keys_are_stored(s3: Any) -> None:
    """write.invalid-key-count (connector bug): a record with no key panics (`r.Key.Bytes()` on nil,
    destination/format/json.go:40) and the process exits 2 instead of WriteError(written=i); the connector checks no
    key, so the other invalid keys (a slash, "..", empty) are acknowledged and stored."""
    destination, read_back, config = s3
    assert destination.write(changes((Operation.create, RawData(b"../x"), RawData(b"1")),
                                     (Operation.create, RawData(b".."), RawData(b"2")),
                                     (Operation.create, RawData(b""), RawData(b"3")))) == 3
    assert read_back(config) == {b"../x": b"1", b"..": b"2", b"": b"3"}
    with pytest.raises(PluginError, match=NIL_DEREFERENCE):
        destination.write(changes((Operation.create, RawData(b"a"), RawData(b"x")),
                                  (Operation.create, None, RawData(b"y"))))
    assert read_back(config) == {b"../x": b"1", b"..": b"2", b"": b"3"}  # nothing of that batch: no object


def test_a_second_configure_is_accepted(s3: Any) -> None:
    """lifecycle.out-of-order (connector, not SDK): nothing guards the call order, so a Configure when open is
    accepted (and an Open when open, and a Write after Teardown); SDK v0.13.3 guards nothing either."""
    destination, _read_back, config = s3
    destination.configure(config)  # returned normally: LifecycleError was due
