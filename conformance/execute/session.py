"""The destination under check (Subject) and one example's run of it through the driver (Session)."""

import hashlib
import math
import os
import random
import shutil
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from hypothesis import event, strategies as st
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.strategies import SearchStrategy

from conformance.contract.checks import ClauseFailure
from conformance.contract.clauses import payload_band
from conformance.execute.replay import Call, render_snippet
from conformance.execute.scratch import scratch_dir
from conformance.generate.model import Model, differences, key_bytes
from conformance.generate.strategies import (
    ESCAPABLE_KEY_CHARS,
    MAX_KEY_BYTES,
    _assemble,
    as_key,
    as_payload,
    escapable_key,
    escapable_key_of,
    invalid_keys,
    json_objects,
    payloads,
    struct_json_objects,
    struct_payloads,
    valid_keys,
)
from conformance.plugin.profiles import Pacer
from conformance.probes.holdings import Holdings
from conformance.probes.watch import SessionWatch, owns_tree
from harness import CallTimeout, Driver, Operation, RawData, Record, Registration, StructuredData, WriteError
from harness.records import Data

__all__ = ["Subject", "Session", "Outcome", "Code", "CallTimes", "Snapshot", "tree_snapshot", "changed_paths",
           "round_trip_labels"]

# tree_snapshot's: path -> (kind, content of a regular file, mtime, mode)
Snapshot = dict[str, tuple[str, bytes | None, float, int]]

# Once a method of a destination has hung, a call of it may take this many times the slowest call of it that
# returned, and at least HANG_FLOOR seconds: a destination that hung is presumed to hang there again, so finding
# where costs little. Other methods keep the per-call limit.
HANG_FACTOR = 10
HANG_FLOOR = 0.2


class CallTimes:
    """One destination's calls in this process: which methods ever hung, and the slowest call that returned, per
    method."""

    def __init__(self) -> None:
        self.hung_methods: set[str] = set()
        self.slowest: dict[str, float] = {}

    @property
    def hung(self) -> bool:
        """Whether any call of the destination hung."""
        return bool(self.hung_methods)

    def limit(self, method: str, timeout: float) -> float:
        """The limit for a call of `method`: the per-call limit until a call of it first hangs."""
        if method not in self.hung_methods:
            return timeout
        return min(timeout, max(HANG_FLOOR, math.ceil(HANG_FACTOR * self.slowest.get(method, 0.0) * 100) / 100))

    def returned(self, method: str, seconds: float) -> None:
        """Notes a call that returned (or raised) after `seconds`."""
        if seconds > self.slowest.get(method, 0.0):
            self.slowest[method] = seconds


_TIMES: dict[str, CallTimes] = {}  # by destination spec: what one check learns, the next need not pay for again

# Each record of a batch is four bytes of one drawn binary: they pick its operation, its key and its payload,
# from pools drawn from the registration's strategies, or (for the contract's keys and payloads) made from the
# bytes. A batch of 64 costs hypothesis a few choices instead of thousands (each choice costs it time, which adds up
# over a run's examples), and shrinks well: its size first (drawn first), then each record's bytes towards zero, the
# simplest record (create of key b"a", or the first pool key, with an empty payload).
_OPERATIONS = tuple(Operation)
_KEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~ ()\t\n#%&+,;=@[]{}'"
_WIDE_CHARS = "éжü€𝄞中ßñ日本語🙂Ω"
_COMMON_KEYS = (b"b", b"key", b".hidden", b"with space", "ünïcödé".encode(), b"-", b"...")
_METADATA = ({"opencdc.collection": "users"}, {"x": "é"}, {"opencdc.readAt": "1700000000000000000"})
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
    else:
        alphabet = _KEY_CHARS if roll < 0.8 else _KEY_CHARS + _WIDE_CHARS
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16))).encode()
    return RawData(raw if raw not in (b".", b"..") and len(raw) <= MAX_KEY_BYTES else b"k" + raw[:200])


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


class Code:
    """A value that shows as the given Python source in replay snippets."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


@dataclass
class Outcome:
    """What a call did: its value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the call returned normally."""
        return self.error is None


def _size_class(n: int) -> str:
    return "0" if n == 0 else "1" if n == 1 else "2-8" if n <= 8 else "9-64" if n <= 64 else ">64"


def _key_class(key: Any) -> str:
    if key is None:
        return "none"
    if isinstance(key, StructuredData):
        return "structured"
    raw = key.raw
    if not raw:
        return "empty"
    if b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        return "path-like"
    if len(raw) > 255:
        return "over 255 bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if len(raw) >= 250:
        return "250-255 bytes"
    return "ASCII" if text.isascii() else "non-ASCII UTF-8"


def _payload_class(data: Any) -> str:
    if data is None:
        return "none (delete)"
    if isinstance(data, StructuredData):
        return "structured"
    n = len(data.raw)
    return "empty" if n == 0 else "large (>= 1 MiB)" if n >= 1 << 20 else "raw"


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _one_line(text: str, limit: int = 200) -> str:
    """The first line of `text`, cut to `limit`: a call's outcome is a comment on one line of the replay."""
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= limit and first == text else first[:limit] + " ..."


class Subject:
    """The destination under check in one test: its registration, the clause checked and the per-call limit."""

    def __init__(self, registration: Registration, clause_id: str, timeout: float) -> None:
        self.registration = registration
        self.spec = registration.name
        self.clause_id = clause_id
        self.timeout = timeout
        self.examples = 0  # sessions started: one per hypothesis example (or per step-machine run)
        self.coverage: Counter[str] = Counter()  # key and payload classes and batch sizes written
        self.unchecked: set[str] = set()  # parts of the clause this registration could not check
        self.shortfalls: set[str] = set()  # what happened instead of the evidence, for a "not checked" verdict
        self.times = _TIMES.setdefault(self.spec, CallTimes())  # after a hang, later calls wait less
        self.pacer = Pacer()  # the budget's deadline and the bounds on shrinking after a failure
        self.hung_calls: set[str] = set()  # calls (with the calls before them) that hung in this check
        self.evidence: Counter[str] = Counter()  # "clause|label": what the run exercised, per clause
        self.not_applicable: dict[str, str] = {}  # clause -> why the destination itself is not what answers
        self.leaked = False  # teardown.releases found something held: later examples wait less for it to end

    @property
    def has_invalid_keys(self) -> bool:
        """Whether the destination has invalid keys to fail a write with (a registration may say it has none by
        skipping write.invalid-key-count, as an append-only log of whole records does)."""
        return "write.invalid-key-count" not in self.registration.skip

    @property
    def hung(self) -> bool:
        """Whether the destination ever hung in this process."""
        return self.times.hung

    def hang(self, method: str, key: str | None = None) -> None:
        """Notes a call of `method` that hit its limit (after the calls `key` stands for): a failure of the example,
        and shorter limits from now on."""
        self.times.hung_methods.add(method)
        self.coverage["calls that hit the limit"] += 1
        if key is not None:
            self.hung_calls.add(key)
        self.pacer.failed(hang_limit=self.limit(method))

    def limit(self, method: str) -> float:
        """The limit for the next call of `method`."""
        return self.times.limit(method, self.timeout)

    def saw(self, label: str, clause_id: str | None = None, count: int = 1) -> None:
        """Records evidence: `label` (one of the clause's evidence labels) was exercised and held."""
        self.evidence[f"{clause_id or self.clause_id}|{label}"] += count

    def inapplicable(self, reason: str, clause_id: str | None = None) -> None:
        """Records that (part of) a clause is answered by an adapter or transport, not by the destination."""
        self.not_applicable.setdefault(clause_id or self.clause_id, reason)

    def __repr__(self) -> str:
        return f"Subject({self.spec!r}, clause={self.clause_id!r})"

    def observe(self, batch: Any) -> None:
        """Counts what a written batch exercised, for the report's coverage figures and hypothesis events."""
        if not isinstance(batch, (list, tuple)):
            return
        self.coverage["batches"] += 1
        self.coverage["records"] += len(batch)
        self.coverage[f"batch size {_size_class(len(batch))}"] += 1
        for record in batch:
            for label in (f"key: {_key_class(record.key)}", f"payload: {_payload_class(record.payload.after)}"):
                self.coverage[label] += 1
                try:
                    event(label)
                except Exception:
                    pass  # outside a hypothesis test (a replay, a state machine's teardown)

    def valid_keys(self) -> SearchStrategy[Data]:
        """The registration's valid keys, or the contract's."""
        return _valid_keys_of(self.registration)

    def payloads(self) -> SearchStrategy[Data]:
        """The registration's payloads, or those its transport carries unchanged (a Struct for Conduit's protocol)."""
        return _payloads_of(self.registration)

    def structured(self) -> SearchStrategy[dict[str, Any]]:
        """JSON objects the transport carries unchanged, for structured payloads."""
        return struct_json_objects() if self.registration.structured_data == "protobuf-struct" else json_objects()

    def batches(self, min_size: int = 0, max_size: int = 8) -> SearchStrategy[list[Record]]:
        """Batches of the registration's valid keys and the payloads its transport carries."""
        return _subject_batches(self.registration, min_size, max_size)

    def distinct_records(self, size: int) -> SearchStrategy[list[Record]]:
        """Up to `size` records (as many as the registration's keys allow, at least 2), each of a key of its own and
        none a delete: a stream in which nothing written is overwritten or removed later."""
        made = _DISTINCT.get((id(self.registration), size))
        if made is None or made[0] is not self.registration:
            record = st.builds(_assemble, st.sampled_from([o for o in Operation if o is not Operation.delete]),
                               _valid_keys_of(self.registration), st.just({}), _payloads_of(self.registration),
                               st.none())
            fresh = self.registration.valid_keys is None  # SPEC's keys: plenty of distinct ones
            strategy = st.lists(record, min_size=size if fresh else 2, max_size=size,
                                unique_by=lambda r: key_bytes(r.key))
            made = _DISTINCT[(id(self.registration), size)] = (self.registration, strategy)
        return made[1]

    def batches_with_invalid_key(self, max_size: int = 8) -> SearchStrategy[tuple[list[Record], int]]:
        """A batch whose first invalid key (of the registration's) sits at a drawn index i: (batch, i)."""
        return sized_batches_with_invalid_key(_subject_batches(self.registration, 1, max_size), self.invalid_keys())

    def invalid_keys(self) -> SearchStrategy[Data | None]:
        """The registration's invalid keys, or the contract's."""
        keys = self.registration.invalid_keys
        return as_key(keys if keys is not None else invalid_keys())

    @contextmanager
    def session(self, directory: Callable[[str], str] | None = None,
                overlay: Mapping[str, str] | None = None) -> Iterator["Session"]:
        """A fresh destination for one example; `directory(tmp)` overrides the directory parameter (with a path
        parameter, the file's parent: the file keeps its registered name), `overlay` (a registration's config
        variant) other entries."""
        self.examples += 1
        tmp = scratch_dir("conformance-")
        config = {k: v.replace("{tmp}", tmp) for k, v in {**self.registration.config, **(overlay or {})}.items()}
        if directory is not None and self.registration.directory_param:
            config[self.registration.directory_param] = directory(tmp)
        elif directory is not None and self.registration.path_param:
            name = os.path.basename(config[self.registration.path_param])
            config[self.registration.path_param] = os.path.join(directory(tmp), name)
        session = Session(self, config, tmp, self.limit("factory"))
        watch = session.watch = SessionWatch(session)
        judge = False  # the invariants are judged at the end of an example that otherwise passed
        failing = True
        try:
            watch.begin()
            session.start()
            watch.started()
            yield session
            pending = sys.exc_info()[1]  # a state machine leaves its session from teardown() while an error rises
            if isinstance(pending, Exception) and not isinstance(pending, UnsatisfiedAssumption):
                self.pacer.failed(error=pending)
            else:
                judge = True
        except UnsatisfiedAssumption:
            raise
        except Exception as err:
            self.pacer.failed(error=err)
            raise
        finally:
            try:
                session.close(judge=judge)
                failing = not judge
            finally:
                watch.end()
                shutil.rmtree(tmp, ignore_errors=True)
                if watch.env_root is not None and owns_tree(watch.env_root):
                    shutil.rmtree(watch.env_root, ignore_errors=True)
                # The run may end here (budget spent, a hang shrunk far enough), with this session's resources
                # gone; whatever the caller holds (a fake filesystem) its own exit releases.
                self.pacer.check(self.examples, failing=failing or sys.exc_info()[0] is not None)


def _valid_keys_of(registration: Registration) -> SearchStrategy[Data]:
    keys = registration.valid_keys
    # as_key passes None through for invalid keys; a valid key is never None.
    return cast("SearchStrategy[Data]", as_key(keys if keys is not None else valid_keys()))


def _payloads_of(registration: Registration) -> SearchStrategy[Data]:
    if registration.payloads is not None:
        return as_payload(registration.payloads)
    return struct_payloads() if registration.structured_data == "protobuf-struct" else payloads()


_BATCHES: dict[tuple[int, int, int], tuple[Registration, SearchStrategy[list[Record]]]] = {}
_DISTINCT: dict[tuple[int, int], tuple[Registration, SearchStrategy[list[Record]]]] = {}


def _subject_batches(registration: Registration, min_size: int, max_size: int) -> SearchStrategy[list[Record]]:
    """The registration's batch strategy, made once per size range (hypothesis caches its work per strategy)."""
    made = _BATCHES.get((id(registration), min_size, max_size))
    if made is None or made[0] is not registration:
        fresh_payloads = registration.payloads is None and registration.structured_data == "json"
        strategy = sized_batches(_valid_keys_of(registration), _payloads_of(registration), min_size, max_size,
                                 fresh_keys=registration.valid_keys is None, fresh_payloads=fresh_payloads)
        made = _BATCHES[(id(registration), min_size, max_size)] = (registration, strategy)
    return made[1]


class Session:
    """One example: a driver over a fresh destination, a log of every call, and checks that fail with a replay."""

    def __init__(self, subject: Subject, config: dict[str, str], tmp: str, limit: float) -> None:
        self.subject = subject
        self.config = config
        self.tmp = tmp
        self.limit = limit
        self.calls: list[Call] = []
        self.driver: Driver | None = None
        self.torn_down = False
        self.judged: str | None = None  # the clause failures name while judging() another clause's part
        self.held: set[bytes] = set()  # keys whole writes have stored so far (for round-trip evidence)
        # Once the destination has hung, each call is known by a digest of the calls up to it (kept incrementally),
        # so a call that hung is not made again after the same calls; sessions begun before that keep none.
        self._keyed = subject.hung
        self._digest = hashlib.blake2b(digest_size=16)
        self._digested = 0
        self.unverified: list[str] = []  # round-trip evidence of whole writes not yet compared with read-back
        self.holdings: Holdings | None = None  # a check's own baseline: what read_back opens is excused from it
        self.watch: SessionWatch | None = None  # the invariants watched in every session (Subject.session sets it)
        self.link_targets: str | None = None  # where the symlinks a check planted point: writes there follow them

    def start(self) -> None:
        """Creates the destination with the registration's factory (on the driver's thread)."""
        try:
            self.driver = Driver(self.subject.registration, timeout=self.limit, config=self.config)
            self.subject.saw("call returned within the limit", "call.timeout")
        except CallTimeout:
            self.subject.hang("factory")
            self.fail(f"the factory did not return within {self.limit:g}s{self._reduced(self.limit)}", timeout=True)
        except Exception as err:
            self.fail(f"the factory raised {_describe(err)}")

    def close(self, judge: bool = False) -> None:
        """Tears the destination down if the example did not, and stops the driver; with `judge` (the example
        otherwise passed), the session's invariants are judged first (teardown's own errors are its clauses')."""
        if self.driver is None:
            return
        try:
            if not self.torn_down and not self.driver_stuck:
                before = self.watch.before_teardown() if judge and self.watch is not None else None
                timed_out: CallTimeout | None = None
                try:
                    self.driver.timeout = self.subject.limit("teardown")
                    self.driver.teardown()
                    returned = True
                except CallTimeout as err:
                    returned, timed_out = False, err
                except Exception:
                    returned = False  # the example is over; teardown's own clauses check its errors
                if timed_out is not None:
                    # Never swallowed: a hang is call.timeout's failure, even in the teardown that ends an example.
                    self.calls.append(Call("teardown", (), outcome="did not return"))
                    self.subject.hang("teardown")
                    if judge:
                        self.fail(f"{timed_out} (the teardown that ends the example){self._reduced(timed_out.limit)}",
                                  timeout=True)
                self.torn_down = True
                if returned and judge and self.watch is not None:
                    self.calls.append(Call("teardown", ()))
                    self.watch.after_teardown(before)
            if judge and self.watch is not None and not self.driver_stuck:
                self.watch.judge_end()
        finally:
            self.driver.close()

    @property
    def driver_stuck(self) -> bool:
        """Whether a call is still stuck in the destination (nothing more can be asked of it)."""
        return self.driver is None or getattr(self.driver, "_stuck_in", None) is not None

    @property
    def directory(self) -> str | None:
        """The configured directory, for registrations with a directory parameter; with a path parameter, the
        file's parent directory, which plays the directory's part in the open, fault and safety checks."""
        param = self.subject.registration.directory_param
        if param:
            return self.config.get(param)
        return os.path.dirname(os.path.abspath(self.path)) if self.path else None

    @property
    def location(self) -> str:
        """`directory`, for the checks that run only for registrations with a directory or path parameter (they skip
        the others first)."""
        directory = self.directory
        assert directory is not None, "a check that needs a directory or path parameter ran without one"
        return directory

    @property
    def path(self) -> str | None:
        """The configured file, for registrations with a path parameter."""
        param = self.subject.registration.path_param
        return self.config.get(param) if param else None

    def attempt(self, method: str, *args: Any, shown: tuple[Any, ...] | None = None) -> Outcome:
        """Calls `method` on the destination and records it; an exception is returned, a hang fails the check."""
        assert self.driver is not None
        if method == "write":
            self.subject.observe(args[0])
        call = Call(method, args, shown=shown)
        self.calls.append(call)
        limit = self.driver.timeout = self.subject.limit(method)
        key = self._calls_key() if self._keyed else None
        presumed = key is not None and key in self.subject.hung_calls
        started = time.monotonic()
        before_teardown = self.watch.before_teardown() if method == "teardown" and self.watch is not None else None
        try:
            if presumed:  # a hanging call is a finding: the same call after the same calls is not waited for again
                self.driver.presume_hung(method)
            with self.watch.call(method, args) if self.watch is not None else ExitStack():
                value = getattr(self.driver, method)(*args)  # what the call did to files is judged once it is over
        except CallTimeout as err:
            call.outcome = "did not return"
            note = self._reduced(limit) if err.earlier is None else ""
            if presumed:
                self.subject.coverage["hanging calls not made again"] += 1
                self.subject.pacer.failed(hang_limit=limit, made=False)
                note += "; this same call, after the same calls, hung earlier in this check, so it was not made again"
            else:
                self.subject.hang(method, key)
            self.fail(f"{err}{note}", timeout=True)
        except Exception as err:
            self.subject.times.returned(method, time.monotonic() - started)
            self.subject.saw("call returned within the limit", "call.timeout")
            call.outcome = f"raised {_one_line(_describe(err))}"
            if self.watch is not None:
                self.watch.judge_call(method)
            if method == "teardown":
                self.torn_down = True
            if method == "write" and isinstance(err, WriteError) and _valid_written(err.written, len(args[0])):
                self.subject.saw("WriteError counted", "write.count")
            return Outcome(error=err)
        self.subject.times.returned(method, time.monotonic() - started)
        self.subject.saw("call returned within the limit", "call.timeout")
        call.outcome = "" if value is None else f"returned {value!r}"
        if self.watch is not None:
            self.watch.judge_call(method)
            self.watch.returned(method)
        if method == "teardown":
            self.torn_down = True
            if self.watch is not None:
                self.watch.after_teardown(before_teardown)
        if method == "write" and args[0] and type(value) is int and value == len(args[0]):
            self.subject.saw("whole batch counted", "write.count")
            if value >= 33:
                self.subject.saw("batch of 33 records or more counted", "write.count")
        return Outcome(value=value)

    def _calls_key(self) -> str:
        """A digest of the calls so far (set-up steps included) without the example's temporary directory: equal for
        equal examples."""
        for call in self.calls[self._digested:]:
            self._digest.update(f"{call.method}{call.args!r}\n".replace(self.tmp, "{tmp}").encode())
        self._digested = len(self.calls)
        return self._digest.hexdigest()

    def _reduced(self, limit: float) -> str:
        """Why a limit is below the per-call limit, for the failure message; "" when it is not."""
        if limit >= self.subject.timeout:
            return ""
        return (f" (the limit once a call of the method has hung: {HANG_FACTOR} times the slowest call of it that "
                f"returned, at least {HANG_FLOOR:g}s; the per-call limit is {self.subject.timeout:g}s)")

    def ok(self, method: str, *args: Any, shown: tuple[Any, ...] | None = None) -> Any:
        """Calls `method` and fails the check if it raises."""
        outcome = self.attempt(method, *args, shown=shown)
        if outcome.error is not None:
            self.fail(f"{method}() raised {_describe(outcome.error)}")
        return outcome.value

    def configure(self, config: Mapping[str, str] | None = None, shown: str | None = None) -> Outcome:
        """configure with the session's config, or `config` (shown in replays as the source `shown`)."""
        if config is None:
            return self.attempt("configure")
        return self.attempt("configure", dict(config), shown=(Code(shown or repr(dict(config))),))

    def write_all(self, batch: list[Any]) -> None:
        """Writes a batch that must be written whole: write returns exactly len(batch)."""
        value = self.ok("write", batch)
        if isinstance(value, bool) or not isinstance(value, int) or value != len(batch):
            self.fail(f"write() returned {value!r} for a batch of {len(batch)} records without raising WriteError")
        self.unverified.extend(round_trip_labels(batch, self.held))

    def configure_ok(self) -> None:
        """configure with the registered config, which must succeed."""
        outcome = self.configure()
        if outcome.error is not None:
            self.fail(f"configure() with the registered config raised {_describe(outcome.error)}")

    def open_ready(self) -> None:
        """configure and open, both of which must succeed."""
        self.configure_ok()
        self.ok("open")

    def setup(self, source: str) -> None:
        """Records a line of set-up code for the replay snippet."""
        self.calls.append(Call("setup", (source.replace(self.tmp, "{tmp}"),)))

    def read_back(self) -> dict[bytes, bytes]:
        """What the destination holds now, by key, from the registration's read_back."""
        read_back = self.subject.registration.read_back
        assert read_back is not None
        try:  # what read_back opens is the harness's, not the destination's
            with self.excusing():
                held = read_back(self.config)
        except Exception as err:
            raise ClauseFailure(self.subject.clause_id, f"the registration's read_back raised {_describe(err)}",
                                self.calls, self.snippet(), spec=self.subject.spec, tmp=self.tmp) from err
        return {bytes(k): bytes(v) for k, v in held.items()}

    def quiet_read_back(self) -> dict[bytes, bytes] | None:
        """Read-back, or None when it raises (the checks that need it report that)."""
        try:
            return self.read_back()
        except ClauseFailure:
            return None

    @contextmanager
    def excusing(self) -> Iterator[None]:
        """What opens meanwhile (read-back) joins every baseline of what the destination holds."""
        with ExitStack() as stack:
            for holdings in {id(h): h for h in (self.holdings, self.watch.holdings if self.watch else None)
                             if h is not None}.values():
                stack.enter_context(holdings.excusing())
            yield

    def expect(self, model: Model, after: str) -> None:
        """Fails unless read-back equals the model."""
        if self.subject.registration.read_back is None:
            self.subject.unchecked.add("read-back not compared: the registration provides no read_back")
            return
        lines = differences(model.data, self.read_back())
        if lines:
            self.fail(f"read-back after {after} differs from the model:\n      " + "\n      ".join(lines))
        for label in self.unverified:
            self.subject.saw(label, "write.round-trip")
        self.unverified.clear()

    def saw(self, label: str, clause_id: str | None = None) -> None:
        """Records evidence for this test's clause (or `clause_id`)."""
        self.subject.saw(label, clause_id)

    def adapter_answers(self) -> dict[str, str]:
        """Methods that an adapter (SDK or plugin protocol) answers itself in the current state, with why."""
        answers = getattr(getattr(self.driver, "destination", None), "adapter_answers", None)
        try:
            return dict(answers()) if callable(answers) else {}
        except Exception:
            return {}

    def snippet(self) -> str:
        """The replay snippet for the calls so far."""
        # Always spelled out: a spec like exec:CMD or a bare class does not carry --destination-config.
        config = {k: v.replace(self.tmp, "{tmp}") for k, v in self.config.items()} if self.config else None
        return render_snippet(self.subject.spec, config, self.calls)

    @contextmanager
    def judging(self, clause_id: str) -> Iterator[None]:
        """Failures inside name `clause_id`: a check that also exercises another clause's part keeps attribution."""
        previous, self.judged = self.judged, clause_id
        try:
            yield
        finally:
            self.judged = previous

    def fail(self, what: str, clause_id: str | None = None, timeout: bool = False) -> NoReturn:
        """Raises ClauseFailure for this test's clause with the calls so far and a replay snippet."""
        __tracebackhide__ = True
        failure = ClauseFailure(clause_id or self.judged or self.subject.clause_id, what, self.calls, self.snippet(),
                                timeout=timeout, spec=self.subject.spec, tmp=self.tmp)
        self.subject.pacer.failed(error=failure)
        raise failure


def _valid_written(value: Any, size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def round_trip_labels(batch: list[Any], held: set[bytes]) -> list[str]:
    """The write.round-trip evidence a whole batch gives once read-back matches; updates `held` (keys stored)."""
    labels = []
    for record in batch:
        key, after = record.key, record.payload.after
        operation = getattr(record.operation, "value", str(record.operation))
        labels.append(f"{operation} with after" if after is not None else f"{operation} with after=None")
        if isinstance(after, StructuredData):
            labels.append("structured payload")
        elif after is not None:
            labels.append(payload_band(len(after.raw)))
        if isinstance(key, RawData):
            raw = key.raw
            if raw in held:
                labels.append("overwrite of a written key" if after is not None else "removal of a written key")
            if 250 <= len(raw) <= 255:
                labels.append("key of 250 to 255 bytes")
            if 128 <= len(raw) <= 255 and escapable_key(raw):
                labels.append("long key of escapable characters")
            if not raw.isascii():
                labels.append("non-ASCII key")
            if after is None:
                held.discard(raw)
            else:
                held.add(raw)
    return labels


def tree_snapshot(root: str) -> Snapshot:
    """Every entry under `root`: kind, content of regular files, mtime and mode; for no-side-effect checks."""
    snapshot: Snapshot = {}
    if os.path.isdir(root):  # the root's own mtime moves when something is created and removed in it
        st = os.lstat(root)
        snapshot[root] = ("dir", None, st.st_mtime, st.st_mode)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                snapshot[path] = ("link", os.readlink(path).encode(), st.st_mtime, st.st_mode)
            elif stat.S_ISDIR(st.st_mode):
                snapshot[path] = ("dir", None, st.st_mtime, st.st_mode)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    snapshot[path] = ("file", f.read(), st.st_mtime, st.st_mode)
            else:
                snapshot[path] = ("other", None, st.st_mtime, st.st_mode)
    return snapshot


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any], tmp: str = "") -> list[str]:
    """Paths created, changed or removed between two snapshots, with `tmp` shown as {tmp}."""
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    return [p.replace(tmp, "{tmp}") if tmp else p for p in changed]
