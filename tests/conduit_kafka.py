"""The Kafka destination built into Conduit v0.13.3 (conduit-connector-kafka v0.12.1, tests/go/upstream13), built
standalone (tests/go_connectors.py, `upstream13-kafka`) and pointed at a real Kafka 4 broker (tests/kafka.py) whose
bootstrap address is $CONFORMANCE_KAFKA_BOOTSTRAP.

What the connector writes (destination/franz.go): one Kafka message per record, its key `Key.Bytes()` (a nil key is
a null message key; structured keys are their JSON), its value the whole record serialized in `sdk.record.format`
(default `opencdc/json`: `{"position", "operation", "metadata", "key", "payload": {"before", "after"}}`). It never
writes a tombstone: a delete is a message like any other, with operation "delete" in its value.

What read-back means for that append-only log (`read_topic`): the topic is consumed from its first offset to its
end, partition by partition in offset order, and each message key's last message wins. A message's value is decoded
as opencdc/json and holds the record's `after` (raw data as its bytes, structured data as canonical JSON, as the
suite's model spells them); a value without `after`, or a tombstone (null value) where a producer writes one, removes
the key, as the contract's model does for a record without `after`. A message without a key has no place in a by-key
read-back and is passed over (the same rule as the file connector's read-back).

Each example gets its own topic: `topic` is a Go template the connector executes per record, turning the example's
`{tmp}` path into a legal topic name (`/tmp/x/y` -> `tmp.x.y`); the connector creates the topic on its first write
(the broker auto-creates topics).

The broker address is read in one place, `bootstrap()`, so a proxy in front of the broker can take its place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from harness import Registration
from harness.standalone import standalone_registration
from tests.conduit_connectors import _value

__all__ = ["upstream13_kafka", "bootstrap", "read_topic", "topic_name", "KAFKA_CONFIG", "TOPIC_TEMPLATE"]

# The topic as a template over the example's {tmp}: Kafka topic names allow only [a-zA-Z0-9._-].
TOPIC_TEMPLATE = '{{ "{tmp}" | trimPrefix "/" | replace "/" "." }}'
KAFKA_CONFIG = {"topic": TOPIC_TEMPLATE}
NO_INVALID_KEYS = "every key, none included, is a Kafka message key: the connector has no invalid keys"
# How long the read-back waits for the broker's answers (it reads to the end offsets it was told, never polls idle).
READ_TIMEOUT = 30.0


def bootstrap() -> str:
    """The Kafka bootstrap address the registration and its read-back use: $CONFORMANCE_KAFKA_BOOTSTRAP."""
    from tests.kafka import BOOTSTRAP_VARIABLE

    address = os.environ.get(BOOTSTRAP_VARIABLE)
    if not address:
        raise RuntimeError(f"upstream13_kafka needs a Kafka broker: set {BOOTSTRAP_VARIABLE} (`python3 -m tests.kafka "
                           "start DIR` starts one and prints its address)")
    return address


def topic_name(config: Mapping[str, str]) -> str:
    """The topic the config's `topic` names: its template's path argument made a topic name, as the template does."""
    template = config["topic"]
    match = re.fullmatch(r'\{\{ "([^"]*)" \| trimPrefix "/" \| replace "/" "\." \}\}', template)
    if match is None:
        return template  # a static topic
    return match.group(1).removeprefix("/").replace("/", ".")


def _consumer(address: str) -> Any:
    from confluent_kafka import Consumer

    # assign() only, never subscribe(): no group membership, no committed offsets.
    return Consumer({"bootstrap.servers": address, "group.id": "conformance-read-back", "enable.auto.commit": False,
                     "enable.partition.eof": False, "allow.auto.create.topics": False})


def read_topic(address: str) -> Any:
    """A read_back consuming the config's topic from its start: each message key -> its last message's `after`."""

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        topic = topic_name(config)
        consumer = _consumer(address)
        try:
            metadata = consumer.list_topics(topic, timeout=READ_TIMEOUT).topics.get(topic)
            if metadata is None or (metadata.error is not None
                                    and metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
                return {}  # nothing written yet: the connector creates the topic on its first write
            if metadata.error is not None:
                raise KafkaException(metadata.error)
            held: dict[bytes, bytes] = {}
            for partition in sorted(metadata.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=READ_TIMEOUT)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                offset = low
                while offset < high:
                    message = consumer.poll(READ_TIMEOUT)
                    if message is None:
                        raise TimeoutError(f"Kafka read-back: no message at {topic}[{partition}]@{offset} "
                                           f"(end {high}) within {READ_TIMEOUT} s")
                    if message.error() is not None:
                        raise KafkaException(message.error())
                    offset = message.offset() + 1
                    _apply(held, message.key(), message.value(), f"{topic}[{partition}]@{message.offset()}")
            return held
        finally:
            consumer.close()

    read_back.__qualname__ = "read_topic($CONFORMANCE_KAFKA_BOOTSTRAP)"
    return read_back


def _apply(held: dict[bytes, bytes], key: bytes | None, value: bytes | None, where: str) -> None:
    """One message applied to the by-key view: its value's `after` is the key's; a tombstone or none removes it."""
    if key is None:
        return
    after = None
    if value is not None:
        try:
            record = json.loads(value)
        except ValueError as err:
            raise ValueError(f"Kafka read-back: the message at {where} is not an opencdc/json record: {err}") from None
        after = _value((record.get("payload") or {}).get("after"))
    if after is None:
        held.pop(key, None)
    else:
        held[key] = after


def _go(name: str) -> str:
    from tests.go_connectors import build

    return str(build(name))


def __getattr__(name: str) -> Registration:
    """Builds the connector only when a test asks for it."""
    if name == "upstream13_kafka":
        address = bootstrap()
        return standalone_registration([_go("upstream13-kafka")], config={"servers": address, **KAFKA_CONFIG},
                                       read_back=read_topic(address),
                                       skip={"write.invalid-key-count": NO_INVALID_KEYS})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
