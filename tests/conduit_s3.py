"""The S3 destination built into Conduit v0.13.3 (conduit-connector-s3 v0.9.1, tests/go/upstream13) and the one built
into Conduit v0.14.0 (v0.9.3, tests/go/upstream14: the same Go code on SDK v0.14.1), each built standalone
(tests/go_connectors.py, `upstream13-s3`, `upstream14-s3`) and pointed at a local S3-compatible server (moto,
tests/s3.py).

The connector has no endpoint parameter; its aws-sdk-go-v2 `config` (v1.29.7) reads `AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL` from its environment, which the registration's `env` sets to $CONFORMANCE_S3_ENDPOINT. With an IP
endpoint the SDK addresses buckets path-style, which moto serves.

What the connector holds: every Write (one Conduit batch) becomes one object `<prefix>/<UnixNano>.json`, written with
PutObject, holding one JSON line per record, `{"Operation", "Position", "Payload", "Key", "Metadata"}` with `Key`
and `Payload` the Go strings of `Key.Bytes()` and `Payload.After.Bytes()` (destination/format/json.go). `format`
is `json`, the one of its two formats a reader here can decode without pyarrow (parquet stores the same fields).

Each example gets its own prefix: the config's `prefix` is the example's `{tmp}` (a fresh temp dir's path), in one
bucket made when the registration is built.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from harness import Backend, Registration
from harness.conduit.standalone import standalone_registration

__all__ = ["upstream13_s3", "upstream14_s3", "read_objects", "BUCKET", "REGION", "s3_client", "S3_CONFIG"]

BUCKET = "conformance-s3"
REGION = "us-east-1"
# moto accepts any credentials; the connector requires all four aws.* parameters.
S3_CONFIG = {"aws.bucket": BUCKET, "aws.region": REGION, "aws.accessKeyId": "conformance",
             "aws.secretAccessKey": "conformance", "format": "json", "prefix": "{tmp}"}


def _endpoint() -> str:
    from tests.s3 import ENDPOINT_VARIABLE

    endpoint = os.environ.get(ENDPOINT_VARIABLE)
    if not endpoint:
        raise RuntimeError(f"the S3 destinations need an S3-compatible server: set {ENDPOINT_VARIABLE} (tests/s3.py "
                           "starts moto's)")
    return endpoint


def s3_client(endpoint: str):  # noqa: ANN201  (a boto3 client)
    """A boto3 S3 client for `endpoint` with the registration's credentials."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=S3_CONFIG["aws.accessKeyId"],
                        aws_secret_access_key=S3_CONFIG["aws.secretAccessKey"])


def _object_order(key: str) -> tuple[int, str]:
    """An object's place in the write order: the connector names each batch's object by time.Now().UnixNano()."""
    stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
    return (int(stem) if stem.isdigit() else -1, key)


def read_objects(endpoint: str):  # noqa: ANN201  (a read_back)
    """A read_back replaying the batch objects under the config's prefix, oldest first, line by line: each record's
    `Key` -> its `Payload` (the bytes of its `after`), the key's last record winning.

    Why this is the faithful mapping: an object is exactly one acknowledged Write, in the order the connector wrote
    them (its name is the write's UnixNano), and a line keeps everything the suite's model looks at: the key's and the
    `after`'s bytes. The model follows `after` alone (a record without one removes its key), as the file and log
    read-backs do; the connector cannot store a record without `after` at all (`Payload.After.Bytes()` on a nil
    `after` panics, the process dies, nothing is written), so every stored line has one and no line removes a key: a
    delete that carries an `after` holds it, as the model says. Keys and payloads go through Go's
    `string(bytes)` and encoding/json, which turns bytes that are not UTF-8 into U+FFFD: the read-back takes the text
    as stored (UTF-8), so such a payload reads back changed, as any reader of the objects would see it.
    """

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        client = s3_client(endpoint)
        prefix = config.get("prefix", "").rstrip("/") + "/"
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=config["aws.bucket"], Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", ()))
        held: dict[bytes, bytes] = {}
        for name in sorted(keys, key=_object_order):
            body = client.get_object(Bucket=config["aws.bucket"], Key=name)["Body"].read()
            for line in body.split(b"\n"):
                if not line:
                    continue
                record = json.loads(line)
                key = record["Key"].encode("utf-8", "surrogatepass")
                held[key] = record["Payload"].encode("utf-8", "surrogatepass")
        return held

    read_back.__qualname__ = "read_objects($CONFORMANCE_S3_ENDPOINT)"
    return read_back


def _s3(connector: str) -> Registration:
    from tests.go_connectors import build

    endpoint = _endpoint()
    client = s3_client(endpoint)
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    binary = str(build(connector))

    def talking_to(url: str, spare: bool | None = None) -> Registration:
        return standalone_registration(
            [binary], config=S3_CONFIG, read_back=read_objects(endpoint), spare=spare,
            env={"AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_S3": url,
                 # No shared config or credentials files of the machine's: only what the config names.
                 "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                 "AWS_EC2_METADATA_DISABLED": "true"})

    # The server as its backend (fault.backend-*): the connector learns the endpoint from its environment, so the
    # proxy's address goes in there (reroute); read-back keeps asking moto directly.
    address = urlsplit(endpoint).netloc
    backend = Backend(address, reroute=lambda listen: talking_to(f"http://{listen}", spare=False), name="moto S3")
    return replace(talking_to(endpoint), backends=(backend,))


def __getattr__(name: str) -> Registration:
    """Builds the connector (and makes the bucket) only when a test asks for it."""
    if name in ("upstream13_s3", "upstream14_s3"):
        return _s3(name.replace("_", "-"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
