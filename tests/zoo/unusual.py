"""Correct but unusual destinations: each must pass every clause the suite checks (no false failures).

- `async_file`: every method is `async def`; writes hold an asyncio.Lock created in open.
- `memory_kv`: no files at all; an in-memory key-value store with its own read-back and key rules.
- `batched_reference`: the reference behind the default middleware with `sdk.batch.size` = 2.
- `GuardedFileDestination`: a bare class (no Registration, so no read-back and no directory parameter);
  load it with `--destination=tests.zoo.unusual:GuardedFileDestination --destination-config directory={tmp}/x`.
- `capped_values`: values are capped at 1 MiB by design, and the registration skips write.large-payload.
- `jsonl_file`: one append-only JSON-lines file named by a `path` parameter (`path_param`), in pure Python, so the
  fault injector and the audit hooks see all of its I/O; tests/test_path_param.py checks its verdicts clause by clause.
"""

import asyncio
import os
import string
from collections.abc import Mapping, Sequence

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from pydantic import BaseModel, ConfigDict, Field

from examples.jsonl_destination import (
    LOG_FLAGS,
    JsonLinesConfig,
    JsonLinesFileDestination,
    jsonl_key_problem,
    new_jsonl_file,
    read_jsonl,
    registration as jsonl_registration,
)
from harness import (
    Destination,
    LifecycleGuard,
    Parameter,
    RawData,
    Record,
    Registration,
    StructuredData,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
    parameters_from,
    parse_config,
)
from harness.records import Data
from reference.file_destination import FileConfig, FileDestination, new_destination

__all__ = [
    "AsyncFileDestination", "async_file",
    "MemoryKeyValueDestination", "STORE", "memory_kv",
    "batched_reference",
    "GuardedFileDestination",
    "CappedValuesDestination", "capped_values",
    "JsonLinesConfig", "JsonLinesFileDestination", "LOG_FLAGS", "new_jsonl_file", "read_jsonl", "jsonl_key_problem",
    "jsonl_file",
]

MIB = 1024 * 1024


# --- every method async ---------------------------------------------------------------------------------


class AsyncFileDestination(UnimplementedDestination):
    """The reference's behaviour behind `async def` methods; each write holds an asyncio.Lock made in open."""

    def __init__(self) -> None:
        self._files = FileDestination()
        self._lock: asyncio.Lock | None = None

    async def parameters(self) -> Mapping[str, Parameter]:  # type: ignore[override]
        return self._files.parameters()

    async def configure(self, config: Mapping[str, str]) -> None:  # type: ignore[override]
        self._files.configure(config)

    async def open(self) -> None:  # type: ignore[override]
        self._files.open()
        self._lock = asyncio.Lock()  # on the loop that drives this destination

    async def write(self, records: Sequence[Record]) -> int:  # type: ignore[override]
        if self._lock is None:
            raise RuntimeError("write() before open()")
        async with self._lock:
            for index, record in enumerate(records):
                try:
                    self._files.write([record])
                except WriteError as err:
                    raise WriteError(f"record {index}: {err.message}", written=index) from err
                await asyncio.sleep(0)  # let other tasks run between records
            return len(records)

    async def ack(self, position: bytes) -> None:  # type: ignore[override]
        if self._lock is None:
            raise RuntimeError("ack() before open()")
        async with self._lock:  # an ack waits for a write in progress
            pass

    async def teardown(self) -> None:  # type: ignore[override]
        self._lock = None
        self._files.teardown()

    # The optional lifecycle events, async like the rest: OnCreated prepares the directory once (before open, which
    # finds it there), OnUpdated and OnDeleted keep every record (the data is the user's, not the connector's).
    async def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        os.makedirs(os.path.abspath(parse_config(config, FileConfig).directory), exist_ok=True)

    async def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        parse_config(after, FileConfig)  # the new config is the one the next open uses

    async def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        await asyncio.sleep(0)


def new_async_file() -> Destination:
    """An AsyncFileDestination behind the default middleware."""
    return destination_with_middleware(AsyncFileDestination(), *default_destination_middleware())


async_file = Registration(
    factory=new_async_file,
    config={"directory": "{tmp}/async"},
    read_back=directory_reader("directory"),
    directory_param="directory",
)


# --- an in-memory key-value store -----------------------------------------------------------------------

# namespace -> key -> value; a module-level store, so read-back sees what any destination instance wrote.
STORE: dict[str, dict[bytes, bytes]] = {}
MAX_KV_KEY = 64
_LETTERS = string.ascii_letters


class KeyValueConfig(BaseModel):
    """The key-value destination's config."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(min_length=1, description="Key space in the in-memory store that receives the records.")


def kv_key_problem(key: object) -> str | None:
    """Why `key` is not a key of the store (1 to 64 ASCII letters), or None."""
    if not isinstance(key, RawData):
        return f"the key is {type(key).__name__}, not RawData"
    raw = key.raw
    if not 1 <= len(raw) <= MAX_KV_KEY:
        return f"the key is {len(raw)} bytes long (1 to {MAX_KV_KEY})"
    if not (raw.isascii() and raw.isalpha()):
        return "the key has characters other than ASCII letters"
    return None


class MemoryKeyValueDestination(UnimplementedDestination):
    """Keeps each record's `after.bytes()` under its key in STORE[namespace]; no directory, no files."""

    def __init__(self) -> None:
        self._namespace: str | None = None
        self._table: dict[bytes, bytes] | None = None

    def parameters(self) -> Mapping[str, Parameter]:
        return parameters_from(KeyValueConfig)

    def configure(self, config: Mapping[str, str]) -> None:
        self._namespace = parse_config(config, KeyValueConfig).namespace

    def open(self) -> None:
        assert self._namespace is not None
        self._table = STORE.setdefault(self._namespace, {})

    def write(self, records: Sequence[Record]) -> int:
        if self._table is None:
            raise RuntimeError("write() before open()")
        for index, record in enumerate(records):
            problem = kv_key_problem(record.key)
            if problem is not None:
                raise WriteError(f"record {index}: invalid key: {problem}", written=index)
            key = record.key.raw  # type: ignore[union-attr]
            if record.payload.after is None:
                self._table.pop(key, None)
            else:
                self._table[key] = record.payload.after.bytes()
        return len(records)

    def ack(self, position: bytes) -> None:
        """Nothing to do: the store holds every write as soon as write returns."""

    def teardown(self) -> None:
        self._table = None


def read_memory_kv(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """What STORE holds for the configured namespace."""
    return dict(STORE.get(config["namespace"].strip(), {}))


def kv_valid_keys() -> SearchStrategy[bytes]:
    """1 to 64 ASCII letters."""
    return st.text(_LETTERS, min_size=1, max_size=MAX_KV_KEY).map(str.encode)


def kv_invalid_keys() -> SearchStrategy[Data | None]:
    """None, StructuredData, empty, too long, or with any character that is not an ASCII letter."""
    letters = st.text(_LETTERS, max_size=8)
    other = st.characters(exclude_characters=_LETTERS, exclude_categories=("Cs",))
    with_other = st.tuples(letters, other, letters).map(lambda t: RawData("".join(t).encode("utf-8")))
    too_long = st.integers(MAX_KV_KEY + 1, 4 * MAX_KV_KEY).map(lambda n: RawData(b"k" * n))
    structured = st.dictionaries(st.text(max_size=4), st.integers(), max_size=2).map(StructuredData)
    return st.one_of(st.just(None), st.just(RawData(b"")), with_other, too_long, structured)


def new_memory_kv() -> Destination:
    """A MemoryKeyValueDestination behind the default middleware."""
    return destination_with_middleware(MemoryKeyValueDestination(), *default_destination_middleware())


memory_kv = Registration(
    factory=new_memory_kv,
    config={"namespace": "kv:{tmp}"},
    read_back=read_memory_kv,
    valid_keys=kv_valid_keys(),
    invalid_keys=kv_invalid_keys(),
)


# --- the reference with batching ------------------------------------------------------------------------

batched_reference = Registration(
    factory=new_destination,
    config={"directory": "{tmp}/out", "sdk.batch.size": "2"},
    read_back=directory_reader("directory"),
    directory_param="directory",
)


# --- a bare class ---------------------------------------------------------------------------------------


class GuardedFileDestination(LifecycleGuard):
    """A destination class loaded as is: the reference FileDestination under the lifecycle guard only."""

    def __init__(self) -> None:
        super().__init__(FileDestination())


# --- a registration with a skip -------------------------------------------------------------------------


class CappedValuesDestination(FileDestination):
    """The reference, except that a payload over 1 MiB stops the batch there with WriteError."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            if record.payload.after is not None and len(record.payload.after.bytes()) > MIB:
                super().write(records[:index])
                raise WriteError(f"record {index}: the payload is over the 1 MiB cap", written=index)
        return super().write(records)


def new_capped_values() -> Destination:
    """A CappedValuesDestination behind the default middleware."""
    return destination_with_middleware(CappedValuesDestination(), *default_destination_middleware())


CAP_REASON = "values are capped at 1 MiB by design; larger payloads are rejected with WriteError"

capped_values = Registration(
    factory=new_capped_values,
    config={"directory": "{tmp}/out"},
    read_back=directory_reader("directory"),
    directory_param="directory",
    skip={"write.large-payload": CAP_REASON},
)


# --- one file named by a path parameter -----------------------------------------------------------------

# The shipped example, examples/jsonl_destination.py, is the one the tests check (what users copy).
jsonl_file = jsonl_registration
