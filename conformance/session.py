"""The destination under check (Subject) and one example's run of it through the driver (Session)."""

import os
import shutil
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import event
from hypothesis.strategies import SearchStrategy

from harness import CallTimeout, Driver, RawData, Record, Registration, StructuredData, WriteError
from harness.records import Data

from .checks import ClauseFailure
from .model import Model, differences
from .replay import Call, render_snippet
from .clauses import payload_band
from .strategies import (
    as_key,
    as_payload,
    batches,
    batches_with_invalid_key,
    invalid_keys,
    json_objects,
    payloads,
    struct_json_objects,
    struct_payloads,
    valid_keys,
)

__all__ = ["Subject", "Session", "Outcome", "Code", "tree_snapshot", "changed_paths", "round_trip_labels"]


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
        self.hung = False  # after one hang, later examples wait less, so shrinking does not multiply the wait
        self.evidence: Counter[str] = Counter()  # "clause|label": what the run exercised, per clause
        self.not_applicable: dict[str, str] = {}  # clause -> why the destination itself is not what answers

    @property
    def has_invalid_keys(self) -> bool:
        """Whether the destination has invalid keys to fail a write with (a registration may say it has none by
        skipping write.invalid-key-count, as an append-only log of whole records does)."""
        return "write.invalid-key-count" not in self.registration.skip

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
        """The registration's valid keys, or SPEC's."""
        keys = self.registration.valid_keys
        return as_key(keys if keys is not None else valid_keys())

    def payloads(self) -> SearchStrategy[Data]:
        """The registration's payloads, or those its transport carries unchanged (a Struct for Conduit's protocol)."""
        if self.registration.payloads is not None:
            return as_payload(self.registration.payloads)
        return struct_payloads() if self.registration.structured_data == "protobuf-struct" else payloads()

    def structured(self) -> SearchStrategy[dict[str, Any]]:
        """JSON objects the transport carries unchanged, for structured payloads."""
        return struct_json_objects() if self.registration.structured_data == "protobuf-struct" else json_objects()

    def batches(self, min_size: int = 0, max_size: int = 8) -> SearchStrategy[list[Record]]:
        """Batches of the registration's valid keys and the payloads its transport carries."""
        return batches(self.valid_keys(), min_size=min_size, max_size=max_size, payload=self.payloads())

    def batches_with_invalid_key(self, max_size: int = 8) -> SearchStrategy[tuple[list[Record], int]]:
        """A batch whose first invalid key (of the registration's) sits at a drawn index i: (batch, i)."""
        return batches_with_invalid_key(self.valid_keys(), self.invalid_keys(), max_size=max_size,
                                        payload=self.payloads())

    def invalid_keys(self) -> SearchStrategy[Data | None]:
        """The registration's invalid keys, or SPEC's."""
        keys = self.registration.invalid_keys
        return as_key(keys if keys is not None else invalid_keys())

    @contextmanager
    def session(self, directory: Callable[[str], str] | None = None,
                overlay: Mapping[str, str] | None = None) -> Iterator["Session"]:
        """A fresh destination for one example; `directory(tmp)` overrides the directory parameter, `overlay` (a
        registration's config variant) other entries."""
        self.examples += 1
        tmp = tempfile.mkdtemp(prefix="conformance-")
        config = {k: v.replace("{tmp}", tmp) for k, v in {**self.registration.config, **(overlay or {})}.items()}
        if directory is not None and self.registration.directory_param:
            config[self.registration.directory_param] = directory(tmp)
        limit = self.timeout if not self.hung else max(self.timeout / 10, 0.05)
        session = Session(self, config, tmp, limit)
        try:
            session.start()
            yield session
        finally:
            session.close()
            shutil.rmtree(tmp, ignore_errors=True)


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
        self.unverified: list[str] = []  # round-trip evidence of whole writes not yet compared with read-back

    def start(self) -> None:
        """Creates the destination with the registration's factory (on the driver's thread)."""
        try:
            self.driver = Driver(self.subject.registration, timeout=self.limit, config=self.config)
            self.subject.saw("call returned within the limit", "call.timeout")
        except CallTimeout:
            self.subject.hung = True
            self.fail(f"the factory did not return within {self.limit:g}s", timeout=True)
        except Exception as err:
            self.fail(f"the factory raised {_describe(err)}")

    def close(self) -> None:
        """Tears the destination down if the example did not, and stops the driver."""
        if self.driver is None:
            return
        if not self.torn_down:
            try:
                self.driver.teardown()
            except Exception:
                pass  # the example is over; teardown's own clauses check its errors
        self.driver.close()

    @property
    def directory(self) -> str | None:
        """The configured directory, for registrations with a directory parameter."""
        param = self.subject.registration.directory_param
        return self.config.get(param) if param else None

    def attempt(self, method: str, *args: Any, shown: tuple[Any, ...] | None = None) -> Outcome:
        """Calls `method` on the destination and records it; an exception is returned, a hang fails the check."""
        assert self.driver is not None
        if method == "write":
            self.subject.observe(args[0])
        call = Call(method, args, shown=shown)
        self.calls.append(call)
        try:
            value = getattr(self.driver, method)(*args)
        except CallTimeout as err:
            call.outcome = "did not return"
            self.subject.hung = True
            self.fail(str(err), timeout=True)
        except Exception as err:
            self.subject.saw("call returned within the limit", "call.timeout")
            call.outcome = f"raised {_one_line(_describe(err))}"
            if method == "teardown":
                self.torn_down = True
            if method == "write" and isinstance(err, WriteError) and _valid_written(err.written, len(args[0])):
                self.subject.saw("WriteError counted", "write.count")
            return Outcome(error=err)
        self.subject.saw("call returned within the limit", "call.timeout")
        if method == "teardown":
            self.torn_down = True
        if method == "write" and args[0] and type(value) is int and value == len(args[0]):
            self.subject.saw("whole batch counted", "write.count")
            if value >= 33:
                self.subject.saw("batch of 33 records or more counted", "write.count")
        call.outcome = "" if value is None else f"returned {value!r}"
        return Outcome(value=value)

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
        try:
            held = read_back(self.config)
        except Exception as err:
            raise ClauseFailure(self.subject.clause_id, f"the registration's read_back raised {_describe(err)}",
                                self.calls, self.snippet(), spec=self.subject.spec, tmp=self.tmp) from err
        return {bytes(k): bytes(v) for k, v in held.items()}

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

    def fail(self, what: str, clause_id: str | None = None, timeout: bool = False) -> None:
        """Raises ClauseFailure for this test's clause with the calls so far and a replay snippet."""
        __tracebackhide__ = True
        raise ClauseFailure(clause_id or self.judged or self.subject.clause_id, what, self.calls, self.snippet(), timeout=timeout,
                            spec=self.subject.spec, tmp=self.tmp)


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
            if not raw.isascii():
                labels.append("non-ASCII key")
            if after is None:
                held.discard(raw)
            else:
                held.add(raw)
    return labels


def tree_snapshot(root: str) -> dict[str, tuple[str, bytes | None, float, int]]:
    """Every entry under `root`: kind, content of regular files, mtime and mode; for no-side-effect checks."""
    snapshot: dict[str, tuple[str, bytes | None, float, int]] = {}
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
