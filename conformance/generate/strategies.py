"""Public hypothesis strategies for destination records, keys, payloads and batches.

Every strategy is a plain function returning a SearchStrategy, so they compose in your own tests:

    from conformance import strategies as cs
    @given(cs.batches(keys=cs.valid_keys(), max_size=20))
    def test_my_destination(batch): ...
"""

import functools
import json
import random
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from conformance.generate.witnesses import HOSTILE_METADATA_VALUES, ROUTING_METADATA_KEYS
from harness import Change, Operation, RawData, Record, StructuredData
from harness.keys import FORBIDDEN_BYTES, MAX_KEY_BYTES, RESERVED_NAMES, fits_shape
from harness.records import Data

__all__ = [
    "every_escapable_key",
    "MAX_KEY_BYTES",
    "LARGE_PAYLOAD_BYTES",
    "HUGE_PAYLOAD_BYTES",
    "valid_keys",
    "invalid_keys",
    "invalid_key_classes",
    "long_keys",
    "non_ascii_keys",
    "ESCAPABLE_KEY_CHARS",
    "escapable_keys",
    "long_escapable_keys",
    "escapable_key",
    "escapable_key_of",
    "as_payload",
    "sized_payload",
    "unspecified_keys",
    "as_key",
    "json_objects",
    "raw_payloads",
    "structured_payloads",
    "payloads",
    "struct_json_objects",
    "struct_payloads",
    "large_payloads",
    "metadata",
    "records",
    "batches",
    "batches_with_invalid_key",
    "numbered",
    "position",
    "position_index",
    "POSITION_SHAPES",
    "large_payload_origin",
    "large_payload",
]

LARGE_PAYLOAD_BYTES = 4 * 1024 * 1024
# Past 8 MiB twice over: a value cut at any power-of-two buffer up to 8 MiB, or at two of them, comes back short.
HUGE_PAYLOAD_BYTES = 2 * 8 * 1024 * 1024 + 1

_FORBIDDEN = FORBIDDEN_BYTES.decode()
_key_chars = st.characters(exclude_categories=["Cs"], exclude_characters=_FORBIDDEN)


def _fits(key: bytes) -> bool:
    return 1 <= len(key) <= MAX_KEY_BYTES and key not in RESERVED_NAMES


# Characters destinations escape in names (percent-encoding, Windows' forbidden <>:"|?*\\, shell and URL
# specials, control characters, spaces) and multi-byte UTF-8, which an escaping scheme may grow threefold or more.
ESCAPABLE_KEY_CHARS = ('%<>:"|?*\\ #&+,;=@[]{}!$\'()`^' + "".join(map(chr, range(1, 32))) + "\x7f"
                       + "é€𝄞中ж\u00a0\u2028")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def escapable_key(raw: bytes) -> bool:
    """Whether a key is made only of characters a destination may escape (none of URI's unreserved ASCII: letters,
    digits, -._~), so that escaping grows every byte of it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and not any(c in _UNRESERVED for c in text)


def _cut(text: str, size: int) -> bytes:
    """`text` as UTF-8 cut to at most `size` bytes at a character boundary."""
    return text.encode("utf-8")[:size].decode("utf-8", "ignore").encode("utf-8")


@functools.cache
def escapable_keys(min_bytes: int = 1, max_bytes: int = MAX_KEY_BYTES) -> SearchStrategy[bytes]:
    """Valid keys of `min_bytes` to `max_bytes` made only of ESCAPABLE_KEY_CHARS: one character repeated (a 200-byte
    key of '%') or a mix."""
    repeated = st.tuples(st.sampled_from(ESCAPABLE_KEY_CHARS), st.integers(min_bytes, max_bytes)).map(
        lambda t: _cut(t[0] * max_bytes, t[1]))
    # A mix expanded from a seed: a few choices instead of one per character.
    mixed = st.tuples(st.integers(0, 2**32 - 1), st.integers(min_bytes, max_bytes)).map(
        lambda t: escapable_key_of(t[0], t[1]))
    return st.one_of(repeated, mixed).filter(lambda k: _fits(k) and len(k) >= min_bytes)


def escapable_key_of(seed: int, size: int) -> bytes:
    """A key of escapable characters expanded from `seed`, cut to at most `size` bytes at a character boundary."""
    rng = random.Random(seed)
    return _cut("".join(rng.choice(ESCAPABLE_KEY_CHARS) for _ in range(size)), size)


def every_escapable_key() -> bytes:
    """One key of exactly MAX_KEY_BYTES holding every escapable character (repeated in turn): whatever a destination
    escapes, this key's escaped name is the longest the contract's keys can give it, in every run."""
    return _cut("".join(ESCAPABLE_KEY_CHARS) * (MAX_KEY_BYTES // len(ESCAPABLE_KEY_CHARS) + 1), MAX_KEY_BYTES)


@functools.cache
def long_escapable_keys() -> SearchStrategy[RawData]:
    """Valid keys of 128 to 255 bytes made only of escapable characters (a 200-byte key of '%'), which an escaping
    destination must still fit within NAME_MAX."""
    return escapable_keys(128, MAX_KEY_BYTES).map(RawData)


@functools.cache
def valid_keys() -> SearchStrategy[bytes]:
    """Keys the contract says every destination MUST accept: 1-255 bytes of UTF-8 with no '/' or NUL, not '.' or
    '..'."""
    common = st.sampled_from([b"a", b"b", b"key", b".hidden", b"with space", "ünïcödé".encode(), b"-", b"..."])
    text = st.text(_key_chars, min_size=1, max_size=16).map(lambda s: s.encode("utf-8")).filter(_fits)
    at_limit = st.tuples(st.sampled_from(["k", "é", "ж", "€", "𝄞"]), st.integers(MAX_KEY_BYTES - 4, MAX_KEY_BYTES)).map(
        lambda t: (t[0] * MAX_KEY_BYTES).encode("utf-8")[: t[1]].decode("utf-8", "ignore").encode("utf-8")
    ).filter(_fits)
    return st.one_of(common, text, at_limit, escapable_keys())


def invalid_key_classes() -> dict[str, SearchStrategy[Data | None]]:
    """The contract's invalid keys by class (the labels of clauses.INVALID_KEY_CLASSES), each a strategy."""
    return dict(_invalid_key_classes())


def _over_in_bytes(char: str, extra: int) -> int:
    """How many of `char` make a key over MAX_KEY_BYTES bytes yet at most MAX_KEY_BYTES characters."""
    least = MAX_KEY_BYTES // len(char.encode()) + 1
    return least + extra % (MAX_KEY_BYTES - least + 1)


@functools.cache
def _invalid_key_classes() -> tuple[tuple[str, SearchStrategy[Data | None]], ...]:
    with_slash = st.tuples(st.text(_key_chars, max_size=8), st.text(_key_chars, max_size=8)).map(
        lambda t: RawData(f"{t[0]}/{t[1]}".encode())
    )
    with_nul = st.tuples(st.text(_key_chars, max_size=8), st.text(_key_chars, max_size=8)).map(
        lambda t: RawData(f"{t[0]}\x00{t[1]}".encode())
    )
    # Multi-byte characters, at most 255 of them: over the limit in bytes, within it in characters, so a
    # destination that counts characters instead of bytes accepts it (ASCII keys cannot tell the two apart).
    too_long = st.tuples(st.sampled_from(["é", "ж", "€", "𝄞"]), st.integers(0, 1000)).map(
        lambda t: RawData((t[0] * _over_in_bytes(t[0], t[1])).encode()))
    return (
        ("none", st.just(None)),
        ("structured", json_objects(max_leaves=3).map(StructuredData)),
        ("empty", st.just(RawData(b""))),
        ("slash", st.sampled_from([RawData(b"../x"), RawData(b"/etc/passwd"), RawData(b"/")]) | with_slash),
        ("NUL", with_nul),
        ("dot", st.just(RawData(b"."))),
        ("dot-dot", st.just(RawData(b".."))),
        ("over 255 bytes", too_long),
    )


@functools.cache
def long_keys() -> SearchStrategy[RawData]:
    """Valid keys of 250 to 255 bytes (ASCII or multi-byte UTF-8), near the file-name limit."""
    return st.tuples(st.sampled_from(["k", "é", "ж", "€", "𝄞"]), st.integers(250, MAX_KEY_BYTES)).map(
        lambda t: RawData((t[0] * MAX_KEY_BYTES).encode("utf-8")[: t[1]].decode("utf-8", "ignore").encode("utf-8"))
    ).filter(lambda k: 250 <= len(k.raw) <= MAX_KEY_BYTES)


@functools.cache
def non_ascii_keys() -> SearchStrategy[RawData]:
    """Valid keys with characters outside ASCII."""
    return st.text(st.sampled_from("éжü€𝄞中ß"), min_size=1, max_size=8).map(lambda s: RawData(s.encode("utf-8")))


@functools.cache
def invalid_keys() -> SearchStrategy[Data | None]:
    """Keys the contract says every destination MUST reject with the partial count."""
    return st.one_of([strategy for _, strategy in _invalid_key_classes()])


@functools.cache
def unspecified_keys() -> SearchStrategy[RawData]:
    """Keys the contract leaves open (not valid UTF-8): a destination MAY accept or reject them, consistently."""
    return (
        st.binary(min_size=1, max_size=32)
        .filter(fits_shape)
        .map(lambda b: b + b"\xff")
        .map(RawData)
    )


@functools.cache
def as_key(strategy: SearchStrategy[Any]) -> SearchStrategy[Data | None]:
    """A key strategy whose bytes values become RawData (registrations may give bytes or Data)."""
    return strategy.map(lambda k: RawData(bytes(k)) if isinstance(k, (bytes, bytearray)) else k)


@functools.cache
def as_payload(strategy: SearchStrategy[Any]) -> SearchStrategy[Data]:
    """A payload strategy whose bytes become RawData and dicts StructuredData (registrations may give either)."""
    def convert(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return RawData(bytes(value))
        return StructuredData(value) if isinstance(value, dict) else value

    return strategy.map(convert)


def sized_payload(seed: int, size: int) -> RawData:
    """A raw payload of exactly `size` bytes expanded from `seed` (cheap for large sizes; NUL and invalid UTF-8
    appear from 4 bytes on)."""
    return large_payload(seed, size) if size >= 4 else RawData(random.Random(seed).randbytes(size))


@functools.cache
def json_objects(max_leaves: int = 6) -> SearchStrategy[dict[str, Any]]:
    """JSON objects with finite floats, big ints, unicode and nesting, as StructuredData holds."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=max_leaves,
    )
    return st.dictionaries(st.text(max_size=8), values, max_size=3)


@functools.cache
def raw_payloads(max_size: int = 256) -> SearchStrategy[RawData]:
    """Raw payloads of arbitrary bytes, empty included."""
    return st.binary(max_size=max_size).map(RawData)


@functools.cache
def structured_payloads() -> SearchStrategy[StructuredData]:
    """Structured payloads (JSON objects)."""
    return json_objects().map(StructuredData)


@functools.cache
def payloads(max_size: int = 256) -> SearchStrategy[Data]:
    """Raw or structured payloads."""
    return st.one_of(raw_payloads(max_size), structured_payloads())


# Strings every JSON encoder spells alike: Go escapes <, > and & and U+2028/9; control characters vary.
_struct_text = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="<>&\u2028\u2029"),
                       max_size=12)
# Object keys every encoder also orders alike: Conduit's Go encoder (goccy/go-json) sorts keys by their encoded
# form, quotes included, so a key ordered against a character up to '"' (space, !, ") or an escape moves.
_struct_keys = st.text(st.characters(exclude_categories=("Cs", "Cc"),
                                     exclude_characters=' !"\\<>&\u2028\u2029'), max_size=8)


@functools.cache
def struct_json_objects(max_leaves: int = 6) -> SearchStrategy[dict[str, Any]]:
    """JSON objects a protobuf Struct carries unchanged and any encoder writes alike: no numbers (Struct makes
    them float64, which Go writes as 5 and Python as 5.0), no characters whose escaping varies, and keys that
    sort the same by their characters as by their encoded form."""
    values = st.recursive(
        st.one_of(st.none(), st.booleans(), _struct_text),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_struct_keys, inner, max_size=3),
        max_leaves=max_leaves,
    )
    return st.dictionaries(_struct_keys, values, max_size=3)


@functools.cache
def struct_payloads(max_size: int = 256) -> SearchStrategy[Data]:
    """Raw payloads, or structured ones that cross Conduit's protocol (a protobuf Struct) unchanged."""
    return st.one_of(raw_payloads(max_size), struct_json_objects().map(StructuredData))


_LARGE_ORIGINS: dict[tuple[int, bytes], tuple[int, int]] = {}


def large_payload(seed: int, size: int) -> RawData:
    """The large payload expanded from (seed, size): random bytes beginning with NUL and invalid UTF-8."""
    data = bytearray(random.Random(seed).randbytes(size))
    data[:4] = b"\x00\xff\xfe\x00"  # NUL and invalid UTF-8 in every large payload
    raw = bytes(data)
    if len(_LARGE_ORIGINS) > 1024:
        _LARGE_ORIGINS.clear()
    _LARGE_ORIGINS[(len(raw), raw[:64])] = (seed, size)
    return RawData(raw)


def large_payload_origin(data: bytes) -> tuple[int, int] | None:
    """The (seed, size) a large_payloads() value was expanded from, for replay snippets."""
    return _LARGE_ORIGINS.get((len(data), data[:64]))


@functools.cache
def large_payloads(
    min_size: int = LARGE_PAYLOAD_BYTES, max_size: int = LARGE_PAYLOAD_BYTES + 65536
) -> SearchStrategy[RawData]:
    """Payloads of several MiB of random bytes (with NUL and invalid UTF-8), drawn as a seed and a size."""
    return st.builds(large_payload, st.integers(0, 2**32 - 1), st.integers(min_size, max_size))


@functools.cache
def metadata() -> SearchStrategy[dict[str, str]]:
    """Record metadata: a small map of str to str; Conduit's standard keys often, with hostile values (traversal,
    absolute paths, odd characters, 300 bytes) as often as text."""
    keys = st.sampled_from([*ROUTING_METADATA_KEYS, "opencdc.readAt", "x"]) | st.text(max_size=8)
    values = st.sampled_from(HOSTILE_METADATA_VALUES) | st.text(max_size=12)
    return st.just({}) | st.dictionaries(keys, values, min_size=1, max_size=2)


def _assemble(operation: Operation, key: Data | None, meta: dict[str, str], after: Data, before: Data | None) -> Record:
    """A record whose payload fits its operation: deletes have no after; only updates and deletes a before."""
    return Record(
        operation=operation,
        metadata=meta,
        key=key,
        payload=Change(
            before=before if operation in (Operation.update, Operation.delete) else None,
            after=None if operation is Operation.delete else after,
        ),
    )


@functools.cache
def records(
    keys: SearchStrategy[Any] | None = None, payload: SearchStrategy[Data] | None = None
) -> SearchStrategy[Record]:
    """One record: any operation (deletes have after=None), a key from `keys`, a payload from `payload`."""
    payload = payload if payload is not None else payloads()
    return st.builds(_assemble, st.sampled_from(Operation), as_key(keys if keys is not None else valid_keys()),
                     metadata(), payload, st.none() | payload)


@functools.cache
def _key_pools(key_strategy: SearchStrategy[Any]) -> SearchStrategy[list[Any]]:
    return st.lists(key_strategy, min_size=1, max_size=3)


@functools.cache
def _batch_items(key_strategy: SearchStrategy[Any], payload: SearchStrategy[Data] | None, min_size: int,
                 max_size: int) -> SearchStrategy[list[tuple[int, Record]]]:
    # Each item: -1 keeps the record's own key; 0..2 reuses a key of the pool, so keys repeat often.
    return st.lists(st.tuples(st.integers(-1, 2), records(key_strategy, payload)), min_size=min_size, max_size=max_size)


@st.composite
def batches(
    draw: st.DrawFn,
    keys: SearchStrategy[Any] | None = None,
    min_size: int = 0,
    max_size: int = 8,
    payload: SearchStrategy[Data] | None = None,
) -> list[Record]:
    """A batch of records whose keys repeat often (so overwrites and deletes of written keys happen)."""
    key_strategy = as_key(keys if keys is not None else valid_keys())
    pool = draw(_key_pools(key_strategy), label="key pool")
    items = draw(_batch_items(key_strategy, payload, min_size, max_size), label="batch")
    return [record if slot < 0 else record.model_copy(update={"key": pool[slot % len(pool)]}) for slot, record in items]


@st.composite
def batches_with_invalid_key(
    draw: st.DrawFn,
    keys: SearchStrategy[Any] | None = None,
    invalid: SearchStrategy[Any] | None = None,
    max_size: int = 8,
    payload: SearchStrategy[Data] | None = None,
) -> tuple[list[Record], int]:
    """A batch whose first invalid key sits at a chosen index i; returns (batch, i)."""
    batch = draw(batches(keys=keys, min_size=1, max_size=max_size, payload=payload), label="valid records")
    index = draw(st.integers(0, len(batch) - 1), label="invalid key index")
    bad_key = draw(as_key(invalid if invalid is not None else invalid_keys()), label="invalid key")
    batch[index] = batch[index].model_copy(update={"key": bad_key})
    return batch, index


# OpenCDC positions are opaque bytes a source makes up (a WAL LSN, a JSON offset, a binary token): every shape comes
# round once in each POSITION_SHAPES consecutive indexes, so any batch of that many records carries all of them.
POSITION_SHAPES = ("decimal", "binary", "LSN-like", "JSON", "long", "UUID-like")
_LONG_POSITION_TAIL = bytes(range(256)) + b"checkpoint" * 24


def position(index: int) -> bytes:
    """The opaque position of the record at `index` of a session's stream: unique per index, never empty, and
    decimal only for one index in POSITION_SHAPES (the first record's is b"0")."""
    shape = index % len(POSITION_SHAPES)
    if shape == 0:
        return b"%d" % index
    if shape == 1:  # NUL and bytes that are not UTF-8
        return b"\x00\xff" + index.to_bytes(8, "big") + b"\xfe"
    if shape == 2:  # as Postgres writes a WAL location
        return b"%X/%X" % (index >> 24, 0x16B3748 + (index & 0xFFFFFF))
    if shape == 3:
        return b'{"offset":%d,"partition":0,"topic":"events"}' % index
    if shape == 4:  # every byte value, past what a short fixed-size buffer holds
        return b"long:%d:" % index + _LONG_POSITION_TAIL
    return b"%08x-0000-4000-8000-%012x" % (index & 0xFFFFFFFF, index)


def position_index(value: bytes) -> int | None:
    """The index whose position() `value` is, or None: for helpers that order records by their place in the stream
    (a destination itself must not parse positions)."""
    try:
        if value.isdigit():
            index = int(value)
        elif value[:2] == b"\x00\xff" and len(value) == 11:
            index = int.from_bytes(value[2:10], "big")
        elif value.startswith(b"{"):
            index = int(json.loads(value)["offset"])
        elif value.startswith(b"long:"):
            index = int(value.split(b":")[1])
        elif b"/" in value:
            high, low = value.split(b"/")
            index = (int(high, 16) << 24) + int(low, 16) - 0x16B3748
        else:
            index = int(value.rsplit(b"-", 1)[1], 16)
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return index if index >= 0 and position(index) == value else None


def numbered(batch: Sequence[Record], start: int) -> list[Record]:
    """The batch with unique opaque positions position(start), position(start + 1), ... (positions come from the
    source, and a destination must not parse them)."""
    return [r.model_copy(update={"position": position(start + i)}) for i, r in enumerate(batch)]
