"""The Kafka destination built into Conduit v0.13.3 (conduit-connector-kafka v0.12.1, tests/go/upstream13), built
standalone (tests/go_connectors.py, `upstream13-kafka`) and pointed at a real Kafka 4 broker (tests/kafka.py).

What the connector writes (destination/franz.go): one Kafka message per record, its key `Key.Bytes()` (a nil key is
a null message key; structured keys are their JSON), its value the whole record serialized in `sdk.record.format`
(default `opencdc/json`). It never writes a tombstone: a delete is a message like any other, with operation
"delete" in its value. The read-back, and what it means for an append-only log, is the shipped example's
(examples/kafka_connector.py): each message key's last message's `after`, consumed with confluent-kafka.

The broker address is read in one place, `bootstrap()` ($CONFORMANCE_KAFKA_BOOTSTRAP), for the registration and its
read-back alike. The fault.backend-* clauses reach the broker through Toxiproxy on its second, proxied listener
(`proxied_backends()`, from $CONFORMANCE_KAFKA_PROXIED and $CONFORMANCE_KAFKA_PROXIED_UPSTREAM; tests/kafka.py).
"""

from __future__ import annotations

from dataclasses import replace

from examples.kafka_connector import TOPIC_TEMPLATE, bootstrap, proxied_backends, read_topic, topic_name
from harness import Registration
from harness.conduit.standalone import standalone_registration

__all__ = ["upstream13_kafka", "bootstrap", "read_topic", "topic_name", "KAFKA_CONFIG", "NO_INVALID_KEYS"]

KAFKA_CONFIG = {"topic": TOPIC_TEMPLATE}
NO_INVALID_KEYS = "every key, none included, is a Kafka message key: the connector has no invalid keys"


def _go(name: str) -> str:
    from tests.go_connectors import build

    return str(build(name))


def __getattr__(name: str) -> Registration:
    """Builds the connector only when a test asks for it."""
    if name == "upstream13_kafka":
        address = bootstrap()
        registration = standalone_registration([_go("upstream13-kafka")], config={"servers": address, **KAFKA_CONFIG},
                                               read_back=read_topic(address),
                                               skip={"write.invalid-key-count": NO_INVALID_KEYS})
        return replace(registration, backends=proxied_backends(address))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
