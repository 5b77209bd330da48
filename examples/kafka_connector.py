"""A Kafka destination connector (Conduit's own, conduit-connector-kafka, or yours), checked as a standalone executable
over Conduit's plugin protocol against a real Kafka broker, with a read-back that consumes the topic.

    CONFORMANCE_CONNECTOR=bin/kafka-connector CONFORMANCE_KAFKA_BOOTSTRAP=127.0.0.1:9092 \\
        pytest --destination=examples.kafka_connector:registration

It needs the `conduit` extra and confluent-kafka (`pip install confluent-kafka`). What read-back means for an
append-only log: the topic is consumed from its first offset to its end, partition by partition in offset order,
and each message key's last message is what the key holds. A message's value is decoded as an `opencdc/json` record
(the connector's default `sdk.record.format`) and holds the record's `after`: raw data as its bytes, structured data
as canonical JSON (how the suite's model spells it). A value without `after`, or a tombstone (a null value, where a
connector writes one for a delete), removes the key, as the contract's model does for a record without `after`. A
message without a key has no place in a by-key read-back and is passed over.

Each example gets its own topic: `topic` is a Go template (conduit-connector-kafka executes it per record) turning
the example's `{tmp}` path into a legal topic name (`/tmp/x/y` -> `tmp.x.y`); the connector creates the topic on
its first write, which the broker allows by default (`auto.create.topics.enable`).

For the fault.backend-* clauses (Toxiproxy between the connector and the broker), set $CONFORMANCE_KAFKA_PROXIED
and $CONFORMANCE_KAFKA_PROXIED_UPSTREAM: the broker needs a second listener whose advertised address is where the
proxy is to listen (the first), forwarding to that listener's port (the second), since a Kafka client reconnects to
the advertised address and would bypass a proxy in front of the bootstrap port alone. `proxied_backends()` declares
it (tests/kafka.py starts a broker so).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness import Backend

__all__ = ["BOOTSTRAP_VAR", "CONNECTOR_VAR", "PROXIED_VAR", "PROXIED_UPSTREAM_VAR", "proxied_backends",
           "TOPIC_TEMPLATE", "bootstrap", "topic_name", "read_topic", "opencdc_data",
           "registration"]

BOOTSTRAP_VAR = "CONFORMANCE_KAFKA_BOOTSTRAP"
CONNECTOR_VAR = "CONFORMANCE_CONNECTOR"
PROXIED_VAR = "CONFORMANCE_KAFKA_PROXIED"
PROXIED_UPSTREAM_VAR = "CONFORMANCE_KAFKA_PROXIED_UPSTREAM"
# Kafka topic names allow only [a-zA-Z0-9._-]: the example's {tmp} path with its slashes made dots.
TOPIC_TEMPLATE = '{{ "{tmp}" | trimPrefix "/" | replace "/" "." }}'
_TEMPLATE = re.compile(r'\{\{ "([^"]*)" \| trimPrefix "/" \| replace "/" "\." \}\}')
# How long the read-back waits for one answer of the broker (it reads up to the end offsets it was told).
READ_TIMEOUT = 30.0


def bootstrap() -> str:
    """The broker's bootstrap address (host:port) from $CONFORMANCE_KAFKA_BOOTSTRAP; a clear error without it."""
    address = os.environ.get(BOOTSTRAP_VAR, "")
    if not address:
        raise RuntimeError(f"set {BOOTSTRAP_VAR} to the bootstrap address (host:port) of the Kafka broker to write to")
    return address


def proxied_backends(address: str) -> tuple[Backend, ...]:
    """The broker as a Registration backend when $CONFORMANCE_KAFKA_PROXIED and $CONFORMANCE_KAFKA_PROXIED_UPSTREAM
    name its proxied listener (none otherwise): the proxy listens at the address that listener advertises and
    forwards to it, and a config's `servers` naming `address` is pointed at the proxy instead."""
    from harness import Backend

    listen, upstream = os.environ.get(PROXIED_VAR, ""), os.environ.get(PROXIED_UPSTREAM_VAR, "")
    if not listen and not upstream:
        return ()
    if not listen or not upstream:
        raise RuntimeError(f"set both {PROXIED_VAR} (the address the broker's proxied listener advertises) and "
                           f"{PROXIED_UPSTREAM_VAR} (that listener's own address), or neither")
    return (Backend(address, params=("servers",), listen=listen, upstream=upstream,
                    name="Kafka broker"),)


def _connector() -> str:
    """The connector executable named by $CONFORMANCE_CONNECTOR, made absolute; a clear error without it."""
    path = os.path.abspath(os.environ.get(CONNECTOR_VAR, "") or ".")
    if not os.environ.get(CONNECTOR_VAR) or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise RuntimeError(f"set {CONNECTOR_VAR} to the path of the Kafka connector executable to check "
                           f"(now {os.environ.get(CONNECTOR_VAR)!r})")
    return path


def topic_name(config: Mapping[str, str]) -> str:
    """The topic the config's `topic` names: TOPIC_TEMPLATE's result for its path, or a static topic as it is."""
    match = _TEMPLATE.fullmatch(config["topic"])
    return match.group(1).removeprefix("/").replace("/", ".") if match else config["topic"]


def opencdc_data(value: Any) -> bytes | None:
    """opencdc/json data as the suite's model spells it: raw data is a base64 string, structured data an object
    (canonical JSON: sorted keys, no spaces)."""
    if value is None:
        return None
    if isinstance(value, str):
        return base64.b64decode(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
        after = opencdc_data((record.get("payload") or {}).get("after"))
    if after is None:
        held.pop(key, None)
    else:
        held[key] = after


def read_topic(address: str) -> Callable[[Mapping[str, str]], dict[bytes, bytes]]:
    """A read_back consuming the config's topic on the broker at `address` from its start: key -> last `after`."""

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

        topic = topic_name(config)
        # assign() only, never subscribe(): no group membership, nothing committed.
        consumer = Consumer({"bootstrap.servers": address, "group.id": "conformance-read-back",
                             "enable.auto.commit": False, "allow.auto.create.topics": False})
        try:
            metadata = consumer.list_topics(topic, timeout=READ_TIMEOUT).topics.get(topic)
            if metadata is None or (metadata.error is not None
                                    and metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
                return {}  # nothing written yet: the topic is created by the first write
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

    read_back.__qualname__ = f"read_topic({address!r})"
    return read_back


def __getattr__(name: str) -> Any:
    """`registration`, built when the suite asks for it (it needs both environment variables)."""
    if name == "registration":
        from harness.conduit.standalone import standalone_registration

        address = bootstrap()
        registration = standalone_registration(
            [_connector()], config={"servers": address, "topic": TOPIC_TEMPLATE}, read_back=read_topic(address),
            skip={"write.invalid-key-count": "every key, none included, is a Kafka message key: no key is invalid"})
        return replace(registration, backends=proxied_backends(address))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
