"""conduit-connector-kafka v0.12.1 (Conduit v0.13.3's built-in Kafka destination) against a real Kafka 4 broker
(tests/kafka.py): its verdicts, the pipeline clauses through Conduit v0.13.3, what its read-back means, and a replay
of each finding against the connector directly.

The broker comes from $CONFORMANCE_KAFKA_BOOTSTRAP (.ci/run starts one and sets it). Outside CI, without it, these
tests skip saying how to start one; under CI a missing broker fails, never skips.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import Operation, RawData, Record, StructuredData, WriteError
from harness.records import Change
from tests.kafka import BOOTSTRAP_VARIABLE, PROXIED_UPSTREAM_VARIABLE, PROXIED_VARIABLE
from tests.suite_runs import NO_LOCATION, SuiteRun, dump, expected, opened, run_suite, shared_run, table

if shutil.which("go") is None:
    pytest.skip("not checked here: `go` is not on PATH, so conduit-connector-kafka v0.12.1 cannot be built",
                allow_module_level=True)

KAFKA = "tests.conduit_kafka:upstream13_kafka"
ENGINE = ["pipeline.crash-recovery", "pipeline.delivers", "pipeline.engine-restart"]
# The per-call limit the suite runs with: a call still pending after it is one the suite reports (call.timeout).
CALL_LIMIT = 10.0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker's bootstrap address, from $CONFORMANCE_KAFKA_BOOTSTRAP."""
    address = os.environ.get(BOOTSTRAP_VARIABLE)
    if address:
        return address
    if os.environ.get("CI"):
        pytest.fail(f"{BOOTSTRAP_VARIABLE} is not set: .ci/run starts a Kafka broker and sets it, so under CI this "
                    "is a bug")
    pytest.skip(f"not checked here: {BOOTSTRAP_VARIABLE} is not set; start a broker with `python3 -m tests.kafka "
                f"start DIR` (needs Java 17 and Maven) and export the address it prints")


@pytest.fixture(scope="session")
def kafka_proxied(kafka_bootstrap: str) -> dict[str, str]:
    """The broker's proxied listener ($CONFORMANCE_KAFKA_PROXIED, $CONFORMANCE_KAFKA_PROXIED_UPSTREAM), which the
    registration declares as its backend for the fault.backend-* clauses."""
    found = {name: os.environ.get(name, "") for name in (PROXIED_VARIABLE, PROXIED_UPSTREAM_VARIABLE)}
    if all(found.values()):
        return found
    message = (f"{PROXIED_VARIABLE} and {PROXIED_UPSTREAM_VARIABLE} are not both set: `python3 -m tests.kafka env "
               "DIR` prints them for the broker started in DIR")
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run exports them, so under CI this is a bug")
    pytest.skip(f"not checked here: {message}")


@pytest.fixture(scope="module")
def kafka_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str, kafka_bootstrap: str,
              kafka_proxied: dict[str, str]) -> SuiteRun:
    """One suite run over the Kafka destination, its broker's proxied listener declared as its backend."""
    return shared_run(tmp_path_factory, worker_id, "kafka-run", (KAFKA,), ("upstream13-kafka",),
                      env={BOOTSTRAP_VARIABLE: kafka_bootstrap, **kafka_proxied})


# The connector's own: nothing guards the call order, so a second Configure or Open is accepted and Configure and
# Open after Teardown too (lifecycle.out-of-order), and a Write after Teardown never returns (call.timeout).
# write.invalid-key-count is skipped (every key is a Kafka message key); so write.recovers has nothing to recover from.
# With the broker unreachable (every connection reset) or silent, Write never returns: the producer retries without
# bound, `deliveryTimeout` being unset by default (fault.backend-reset, fault.backend-stall; docs/findings).
KAFKA_TABLE = expected({
    "failed": ["call.timeout", "fault.backend-reset", "fault.backend-stall", "lifecycle.out-of-order"],
    "not applicable": ["write.empty-batch", "write.large-payload"],
    "not checked": [*NO_LOCATION, *ENGINE, "write.recovers"],
    "skipped": ["ack.in-order", "write.invalid-key-count"],
})


def test_kafka_connector_v0_12_1_verdicts(kafka_run: SuiteRun, kafka_proxied: dict[str, str]) -> None:
    """The verdict table (docs/findings/kafka-v0.12.1.md)."""
    assert table(kafka_run, KAFKA) == KAFKA_TABLE, dump(kafka_run, KAFKA)
    assert "configure() is forbidden in state 'open', so LifecycleError was due, but it returned normally" \
        in kafka_run.output
    assert "open() is forbidden in state 'open', so LifecycleError was due, but it returned normally" \
        in kafka_run.output
    assert "What happened: write() did not return within 10s" in kafka_run.output
    # The backend clauses ran through the proxy at the address the proxied listener advertises, forwarding to that
    # listener, and both failed on a write that did not return once the toxic was in place.
    listen, upstream = kafka_proxied[PROXIED_VARIABLE], kafka_proxied[PROXIED_UPSTREAM_VARIABLE]
    assert f"proxy = replay_proxy({upstream!r}, {listen!r})" in kafka_run.output
    assert f"{{'servers': {listen!r}, " in kafka_run.output
    for clause, toxic in (("fault.backend-reset", "proxy.toxic('reset_peer', 'upstream', timeout=0)"),
                          ("fault.backend-stall", "proxy.toxic('timeout', 'upstream', timeout=0); "
                                                  "proxy.toxic('timeout', 'downstream', timeout=0)")):
        failure = kafka_run.output.split(f"ClauseFailure: [{clause}] ", 1)[1].split("Replay it:", 1)[0]
        assert "What happened: write() did not return within" in failure, failure
        assert toxic in failure.split("What happened", 1)[1], failure


@pytest.fixture(scope="module")
def conduit() -> str:
    """Conduit v0.13.3, built once per source hash (tests/go_connectors.py)."""
    from tests.go_connectors import build

    return str(build("conduit13"))


def test_kafka_connector_passes_the_pipeline_clauses(tmp_path: Path, conduit: str, kafka_bootstrap: str) -> None:
    """Through a real Conduit v0.13.3, with the evidence each clause needs: the read-back of the topic (each key's
    last message) equals the model after a drained pipeline, after the connector is killed mid-stream and after
    Conduit is; the records Conduit redelivers are appended again and change no key's last value."""
    run = run_suite(tmp_path, KAFKA, profile="conformance-dev", timeout=900, database=None,
                    env={"CONFORMANCE_CONDUIT": None, BOOTSTRAP_VARIABLE: kafka_bootstrap},
                    args=("--hypothesis-seed=0", f"--conformance-conduit={conduit}", "-k", "test_pipeline_"))
    rows = {c: row for c, row in run.report.get("destinations", {}).get(KAFKA, {}).get("clauses", {}).items()
            if c in ENGINE}
    assert {c: row["status"] for c, row in rows.items()} == dict.fromkeys(ENGINE, "passed"), (
        f"{rows}\n{run.output[-8000:]}")
    assert rows["pipeline.crash-recovery"]["evidence"]["records redelivered after the kill"] >= 1
    assert rows["pipeline.engine-restart"]["evidence"]["resumed from a saved position"] >= 1
    for clause in ENGINE:
        assert rows[clause]["coverage"]["records lost"] == 0


# --- the read-back, and each finding, replayed against the connector ------------------------------------------------


@pytest.fixture
def kafka_registration(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, str]]:
    """The registration, and its config with a topic of its own."""
    import tests.conduit_kafka as conduit_kafka

    monkeypatch.setenv(BOOTSTRAP_VARIABLE, kafka_bootstrap)  # the registration reads it
    registration = conduit_kafka.upstream13_kafka
    return registration, {k: v.replace("{tmp}", f"/replay/{secrets.token_hex(8)}")
                          for k, v in registration.config.items()}


@pytest.fixture
def kafka(kafka_registration: tuple[Any, dict[str, str]]) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """A configured and opened Kafka destination on a topic of its own, its read_back and its config."""
    registration, config = kafka_registration
    with opened(registration, config) as destination:
        yield destination, registration.read_back, config


def record(i: int, key: Any, after: Any, operation: Operation = Operation.create) -> Record:
    """A record at position i; a bytes key or payload is raw data."""
    return Record(position=b"%d" % i, operation=operation,
                  key=RawData(key) if isinstance(key, bytes) else key,
                  payload=Change(after=RawData(after) if isinstance(after, bytes) else after))


def test_read_back_is_each_keys_last_after(kafka: Any) -> None:
    """The read-back of an append-only log: every message stays in the topic, and each key's last one is what the
    key holds; a structured key is its JSON, a structured payload canonical JSON (the model's spelling)."""
    destination, read_back, config = kafka
    assert destination.write([record(0, b"a", b"1"), record(1, b"b", b"2"), record(2, b"a", b"3")]) == 3
    assert destination.write([record(3, StructuredData({"id": "x"}), StructuredData({"n": 1, "m": [True]}))]) == 1
    assert read_back(config) == {b"a": b"3", b"b": b"2", b'{"id":"x"}': b'{"m":[true],"n":1}'}


def test_a_delete_is_a_message_not_a_tombstone(kafka: Any, kafka_bootstrap: str) -> None:
    """The connector writes a delete as a message whose value is the whole record (operation "delete"), never a
    tombstone: the read-back follows `after` (none removes the key, one carried by a delete is held, as the model
    says), and a tombstone a producer writes (null value) removes its key too."""
    from confluent_kafka import Producer

    import tests.conduit_kafka as conduit_kafka

    destination, read_back, config = kafka
    batch = [record(0, b"a", b"1"), record(1, b"b", b"2"), record(2, b"a", None, Operation.delete),
             record(3, b"b", b"kept", Operation.delete)]
    assert destination.write(batch) == 4
    assert read_back(config) == {b"b": b"kept"}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(conduit_kafka.topic_name(config), key=b"b", value=None)
    assert producer.flush(30) == 0
    assert read_back(config) == {}


def test_a_refused_record_mid_batch_is_misreported(kafka: Any) -> None:
    """Connector bug (destination/franz.go, Produce): a batch is produced whole, and the count is the index of the
    first error in the order the producer's callbacks ran, not in the batch. A record over `batchBytes` (1000012) at
    index 1 is refused at once, before record 0 is acknowledged: WriteError(written=0) "failed to produce record 0",
    yet records 0 and 2 are in the topic. The contract's written=n means records[:n] written and none after."""
    destination, read_back, config = kafka
    batch = [record(0, b"a", b"x"), record(1, b"big", b"y" * 1_500_000), record(2, b"c", b"z")]
    with pytest.raises(WriteError, match="MESSAGE_TOO_LARGE") as caught:
        destination.write(batch)
    assert caught.value.written < 2
    held = read_back(config)
    assert held[b"c"] == b"z"  # written although it comes after the refused record
    assert held[b"a"] == b"x" and b"big" not in held


def _broker_connections(pid: int, port: int) -> int:
    """How many established TCP connections process `pid` has to `port` on this machine (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    count = 0
    with open(f"/proc/{pid}/net/tcp") as table_:
        for line in table_.readlines()[1:]:
            fields = line.split()  # remote address is fields[2] (hex ip:port), state fields[3] (01: established)
            if int(fields[2].split(":")[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def _settled(pid: int, port: int, at_most: int) -> int:
    """The connection count once it is at most `at_most`, or the last count after 30 s."""
    deadline = time.monotonic() + 30
    count = _broker_connections(pid, port)
    while count > at_most and time.monotonic() < deadline:
        time.sleep(0.1)
        count = _broker_connections(pid, port)
    return count


def test_a_second_open_leaks_the_first_client(kafka: Any, kafka_bootstrap: str) -> None:
    """Connector bug (destination.go, Open; lifecycle.out-of-order): Open makes a new producer without closing the
    one it has, and Teardown closes only the last, so the first producer's connections to the broker outlive
    Teardown (SDK v0.13.3 does not stop a second Open)."""
    destination, _read_back, _config = kafka
    pid, port = destination.plugin.process.pid, int(kafka_bootstrap.rsplit(":", 1)[1])
    assert destination.write([record(0, b"a", b"1")]) == 1
    one = _broker_connections(pid, port)
    assert one >= 1
    destination.open()
    assert destination.write([record(1, b"a", b"2")]) == 1
    assert _broker_connections(pid, port) > one
    destination.teardown()
    # Closing is asynchronous: wait until the second producer's connections are gone, then the first's remain.
    assert _settled(pid, port, at_most=one) >= 1, "every connection closed: the first producer was closed too"


def test_a_write_after_teardown_never_returns(kafka_registration: tuple[Any, dict[str, str]]) -> None:
    """Connector bug (call.timeout): after Teardown closed the producer, Write hands the record to the closed client,
    which buffers it for good (no delivery timeout is set), and the call never returns; nothing reaches the topic.
    Conduit itself does not write after Teardown. (The call never ends: the wait below only bounds ours.)"""
    registration, config = kafka_registration
    destination = registration.factory()
    destination.configure(config)
    destination.open()
    assert destination.write([record(0, b"a", b"1")]) == 1
    destination.teardown()
    outcome: list[object] = []

    def write() -> None:
        try:
            outcome.append(destination.write([record(1, b"b", b"2")]))
        except Exception as err:  # noqa: BLE001  (what it raised is the outcome)
            outcome.append(err)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(CALL_LIMIT)
    assert thread.is_alive(), f"write() after teardown ended: {outcome}"
    assert registration.read_back(config) == {b"a": b"1"}
    destination.close()  # ends the process, and with it the pending call
    thread.join(60)


def test_the_readiness_probe_tells_a_broker_from_a_closed_port(kafka_bootstrap: str) -> None:
    """tests/kafka.py waits for an ApiVersions answer, not an open port: the broker answers, a closed port does not."""
    from tests.kafka import _free_port, api_versions

    host, port = kafka_bootstrap.rsplit(":", 1)
    assert api_versions(host, int(port))
    assert not api_versions("127.0.0.1", _free_port())


def test_the_shipped_example_registers_a_kafka_connector(kafka_bootstrap: str, kafka_proxied: dict[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/kafka_connector.py, as the guide runs it ($CONFORMANCE_CONNECTOR, $CONFORMANCE_KAFKA_BOOTSTRAP):
    it configures the connector on a topic of the example's own and reads back what was written; with the proxied
    listener's two variables it declares the broker as its backend, and without them none."""
    from harness import load_registration
    from tests.go_connectors import build

    monkeypatch.setenv("CONFORMANCE_CONNECTOR", str(build("upstream13-kafka")))
    monkeypatch.setenv(BOOTSTRAP_VARIABLE, kafka_bootstrap)
    for name in kafka_proxied:
        monkeypatch.delenv(name, raising=False)
    assert load_registration("examples.kafka_connector:registration").backends == ()
    for name, value in kafka_proxied.items():
        monkeypatch.setenv(name, value)
    registration = load_registration("examples.kafka_connector:registration")
    assert registration.config["servers"] == kafka_bootstrap
    assert [(b.address, b.params, b.listen, b.forwards_to) for b in registration.backends] == [
        (kafka_bootstrap, ("servers",), kafka_proxied[PROXIED_VARIABLE], kafka_proxied[PROXIED_UPSTREAM_VARIABLE])]
    config = {k: v.replace("{tmp}", f"/example/{secrets.token_hex(8)}") for k, v in registration.config.items()}
    assert registration.read_back is not None and registration.read_back(config) == {}  # no topic yet
    with opened(registration, config) as destination:
        assert destination.write([record(0, b"k", b"v")]) == 1
    assert registration.read_back(config) == {b"k": b"v"}


def test_a_write_blocks_while_the_broker_is_unreachable(kafka_run: SuiteRun, kafka_proxied: dict[str, str],
                                                        kafka_registration: tuple[Any, dict[str, str]]) -> None:
    """Connector bug (fault.backend-reset, fault.backend-stall): with every connection to the broker reset, Write
    neither raises nor returns; the producer retries until the broker is reachable again (`deliveryTimeout` unset:
    no bound), and only then returns with the batch stored. Through the proxied listener, after the suite run (which
    holds the proxy's fixed address while it runs). (The wait below only bounds ours.)"""
    from conformance.probes.backend_proxy import replay_proxy

    registration, config = kafka_registration
    backend = registration.backends[0]
    assert (backend.listen, backend.forwards_to) == (kafka_proxied[PROXIED_VARIABLE],
                                                     kafka_proxied[PROXIED_UPSTREAM_VARIABLE])
    proxy = replay_proxy(backend.forwards_to, backend.listen)
    try:
        with opened(registration, {**config, **backend.overlay(config, backend.listen)}) as destination:
            assert destination.write([record(0, b"a", b"1")]) == 1
            proxy.toxic("reset_peer", "upstream", timeout=0)
            outcome: list[object] = []

            def write() -> None:
                try:
                    outcome.append(destination.write([record(1, b"b", b"2"), record(2, b"c", b"3")]))
                except Exception as err:  # noqa: BLE001  (what it raised is the outcome)
                    outcome.append(err)

            thread = threading.Thread(target=write, daemon=True)
            thread.start()
            thread.join(CALL_LIMIT)
            assert thread.is_alive(), f"write() with the broker unreachable ended: {outcome}"
            proxy.clear()
            thread.join(120)
            assert outcome == [2]
        assert registration.read_back(config) == {b"a": b"1", b"b": b"2", b"c": b"3"}
    finally:
        proxy.server.call("DELETE", f"/proxies/{proxy.name}")
