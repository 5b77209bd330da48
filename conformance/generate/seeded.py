"""Batches drawn as a few bytes per record: cheap for hypothesis to draw and to shrink (Subject.batches' strategy)."""

import random
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from conformance.generate.strategies import ESCAPABLE_KEY_CHARS, MAX_KEY_BYTES, _assemble, escapable_key_of
from conformance.generate.witnesses import WITNESS_KEYS, partners, witness_metadata
from harness import Operation, RawData, Record, StructuredData
from harness.keys import RESERVED_NAMES
from harness.records import Data

__all__ = ["sized_batches", "sized_batches_with_invalid_key"]

# Each record of a batch is four bytes of one drawn binary: they pick its operation, its key and its payload,
# from pools drawn from the registration's strategies, or (for the contract's keys and payloads) made from the
# bytes. A batch of 64 costs hypothesis a few choices instead of thousands (each choice costs it time, which adds up
# over a run's examples), and shrinks well: its size first (drawn first), then each record's bytes towards zero, the
# simplest record (create of key b"a", or the first pool key, with an empty payload).
_OPERATIONS = tuple(Operation)
_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~ ()\t\n#%&+,;=@[]{}'"
_WIDE_CHARS = "éжü€𝄞中ßñ日本語🙂Ω"
_COMMON_KEYS = (b"b", b"key", b".hidden", b"with space", "ünïcödé".encode(), b"-", b"...")
# Benign maps, then one per hostile value (in opencdc.collection and every other routing key): a destination routing
# by metadata meets traversal in ordinary batches too, not only in safety.confined's own check.
_METADATA = ({"opencdc.collection": "users"}, {"x": "é"}, {"opencdc.readAt": "1700000000000000000"},
             *witness_metadata())
_JSON_TEXT = "abcxyz é€𝄞\"\\/\n"


def _seeded_key(rest: int) -> RawData:
    """A key the contract says every destination accepts (UTF-8, 1-255 bytes, no '/' or NUL, not '.' or '..')."""
    if rest == 0:
        return RawData(b"a")
    rng = random.Random(rest)
    roll = rng.random()
    if roll < 0.15:
        return RawData(rng.choice(_COMMON_KEYS))
    if roll < 0.25:  # near the file-name limit
        text = rng.choice("kéж€𝄞") * MAX_KEY_BYTES
        return RawData(text.encode()[: rng.randint(250, MAX_KEY_BYTES)].decode("utf-8", "ignore").encode())
    if roll < 0.3:  # any code point but a surrogate, '/' or NUL
        chars = [chr(c) for c in (rng.randint(1, 0x10FFFF) for _ in range(rng.randint(1, 8)))
                 if not 0xD800 <= c <= 0xDFFF and c != 0x2F]
        raw = "".join(chars).encode() or b"z"
    elif roll < 0.4:  # characters destinations escape, at any length up to the limit: one repeated, or a mix
        size = rng.randint(1, MAX_KEY_BYTES)
        raw = (escapable_key_of(rest, size) if rng.random() < 0.5 else
               (rng.choice(ESCAPABLE_KEY_CHARS) * size).encode()[:size].decode("utf-8", "ignore").encode())
        raw = raw or b"%"
    elif roll < 0.45:  # a witness key: dot-leading, or one of a group a folding destination merges
        raw = WITNESS_KEYS[rest % len(WITNESS_KEYS)]
    else:
        alphabet = _KEY_CHARS if roll < 0.8 else _KEY_CHARS + _WIDE_CHARS
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16))).encode()
    return RawData(raw if raw not in RESERVED_NAMES and len(raw) <= MAX_KEY_BYTES else b"k" + raw[:200])


def _seeded_json(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value as json_objects() draws them: finite floats, big ints, unicode, a little nesting."""
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**70), 2**70) if rng.random() < 0.2 else rng.randint(-1000, 1000)
    if kind == 3:
        return rng.uniform(-1e6, 1e6) if rng.random() < 0.7 else rng.choice((0.0, -0.0, 1e300, 5e-324))
    if kind in (4, 5):
        return "".join(rng.choice(_JSON_TEXT) for _ in range(rng.randint(0, 12)))
    if kind == 6:
        return [_seeded_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return _seeded_object(rng, depth + 1)


def _seeded_object(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    return {"".join(rng.choice(_JSON_TEXT) for _ in range(rng.randint(0, 8))): _seeded_json(rng, depth)
            for _ in range(rng.randint(0, 3))}


def _seeded_payload(pick: int, rest: int, afters: list[Data]) -> Data:
    """A payload from a record's bytes: one of the drawn pool's (a registration's declared payloads, or those its
    transport carries) or, without a pool (the contract's payloads), raw bytes (empty, one byte, up to 64, up to 256)
    or a JSON object."""
    if afters:
        return afters[rest % len(afters)]
    if pick == 0 or rest == 0:
        return RawData(b"")
    if pick == 1:
        return RawData(bytes([rest & 255]))
    if pick in (2, 3):
        size = 2 + rest % 63 if pick == 2 else 65 + rest % 192
        return RawData(random.Random(rest).randbytes(size))
    return StructuredData(_seeded_object(random.Random(rest)))


def _code(word: int, salt: int, index: int) -> int:
    """A record's 32 bits from its four drawn bytes, the batch's salt and its index: spread evenly (hypothesis draws
    many zero words, which would all be one record), and 0 (the simplest record) when bytes and salt are zero."""
    if word == 0 and salt == 0:
        return 0
    word = ((word ^ salt) + index * 0x9E3779B9) & 0xFFFFFFFF
    word = ((word ^ (word >> 16)) * 0x7FEB352D) & 0xFFFFFFFF
    word = ((word ^ (word >> 15)) * 0x846CA68B) & 0xFFFFFFFF
    return word ^ (word >> 16)


def _seeded_record(code: int, keys: list[Data], afters: list[Data], fresh_keys: bool) -> Record:
    """The record four bytes stand for; `keys` grows by the fresh keys it makes, so later records overwrite them."""
    operation = _OPERATIONS[code & 3]
    pick_key, pick_after, extra, rest = (code >> 2) & 7, (code >> 5) & 7, (code >> 8) & 15, code >> 12
    if fresh_keys and (pick_key >= 5 or not keys):
        key: Data = _seeded_key(rest)
        keys.append(key)
        # A witness key brings its group into the pool, so later records of the batch write its equivalents.
        keys.extend(RawData(partner) for partner in partners(key.bytes())[:2])
    else:
        key = keys[(pick_key + rest) % len(keys)]
    after = _seeded_payload(pick_after, rest, afters)
    before = after if extra == 15 else None
    meta = dict(_METADATA[rest % len(_METADATA)]) if extra in (13, 14) else {}
    return _assemble(operation, key, meta, after, before)


@st.composite
def sized_batches(draw: st.DrawFn, keys: SearchStrategy[Any], payload: SearchStrategy[Data], min_size: int,
                  max_size: int, fresh_keys: bool, fresh_payloads: bool) -> list[Record]:
    """A batch whose size is drawn first (sizes spread up to max_size, and shrinking cuts the size early), each
    record from four drawn bytes; keys repeat, so overwrites and removals happen. With `fresh_keys` (the contract's
    keys) and `fresh_payloads` (the contract's payloads, JSON objects included) the bytes make keys and payloads;
    otherwise they pick from pools drawn from the registration's strategies."""
    size = draw(st.integers(min_size, max_size), label="batch size")
    if size == 0:
        return []
    pool = [] if fresh_keys else list(draw(st.lists(keys, min_size=1, max_size=3), label="key pool"))
    afters = [] if fresh_payloads else draw(st.lists(payload, min_size=1, max_size=3), label="payload pool")
    salt = draw(st.integers(0, 2**32 - 1), label="salt")
    codes = draw(st.binary(min_size=4 * size, max_size=4 * size), label="records")
    return [_seeded_record(_code(int.from_bytes(codes[4 * i:4 * i + 4], "little"), salt, i), pool, afters,
                           fresh_keys) for i in range(size)]


@st.composite
def sized_batches_with_invalid_key(draw: st.DrawFn, batch: SearchStrategy[list[Record]],
                                   invalid: SearchStrategy[Any]) -> tuple[list[Record], int]:
    """A batch (of at least one record) whose first invalid key sits at a drawn index i: (batch, i)."""
    records_ = draw(batch, label="valid records")
    index = draw(st.integers(0, len(records_) - 1), label="invalid key index")
    records_[index] = records_[index].model_copy(update={"key": draw(invalid, label="invalid key")})
    return records_, index
