"""The destination under check in one test (Subject): its evidence, coverage, limits and sessions."""

import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from hypothesis import event
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.strategies import SearchStrategy

from conformance.contract.evidence import EvidenceKey, check_declared
from conformance.execute.hangs import call_times
from conformance.execute.labels import key_class, payload_class, size_class
from conformance.execute.scratch import scratch_dir
from conformance.execute.session import Session
from conformance.generate.registered import batches_of, distinct_records_of, payloads_of, valid_keys_of
from conformance.generate.seeded import sized_batches_with_invalid_key
from conformance.generate.strategies import as_key, invalid_keys, json_objects, struct_json_objects
from conformance.plugin.profiles import Pacer
from conformance.probes.watch import SessionWatch, owns_tree
from harness import Record, Registration
from harness.records import Data

__all__ = ["Subject"]


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
        self.times = call_times(self.spec)  # after a hang, later calls wait less
        self.pacer = Pacer()  # the budget's deadline and the bounds on shrinking after a failure
        self.hung_calls: set[str] = set()  # calls (with the calls before them) that hung in this check
        self.evidence: Counter[str] = Counter()  # EvidenceKey.encode(): what the run exercised, per clause
        self.not_applicable: dict[str, str] = {}  # clause -> why the destination itself is not what answers
        self.leaked = False  # teardown.releases found something held: later examples wait less for it to end

    @property
    def has_invalid_keys(self) -> bool:
        """Whether the destination has invalid keys to fail a write with (a registration may say it has none by
        skipping write.invalid-key-count, as an append-only log of whole records does)."""
        return not self.registration.omits("write.invalid-key-count")

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

    def saw(self, label: str, clause_id: str | None = None, count: int = 1, answered: bool = False) -> None:
        """Records evidence: `label` (one the clause declares) was exercised and held; `answered`: an adapter, not
        the destination, answered that part."""
        key = EvidenceKey(clause_id or self.clause_id, label, answered)
        check_declared(key)
        self.evidence[key.encode()] += count

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
        self.coverage[f"batch size {size_class(len(batch))}"] += 1
        for record in batch:
            for label in (f"key: {key_class(record.key)}", f"payload: {payload_class(record.payload.after)}"):
                self.coverage[label] += 1
                try:
                    event(label)
                except Exception:
                    pass  # outside a hypothesis test (a replay, a state machine's teardown)

    def valid_keys(self) -> SearchStrategy[Data]:
        """The registration's valid keys, or the contract's."""
        return valid_keys_of(self.registration)

    def payloads(self) -> SearchStrategy[Data]:
        """The registration's payloads, or those its transport carries unchanged (a Struct for Conduit's protocol)."""
        return payloads_of(self.registration)

    def structured(self) -> SearchStrategy[dict[str, Any]]:
        """JSON objects the transport carries unchanged, for structured payloads."""
        return struct_json_objects() if self.registration.structured_data == "protobuf-struct" else json_objects()

    def batches(self, min_size: int = 0, max_size: int = 8) -> SearchStrategy[list[Record]]:
        """Batches of the registration's valid keys and the payloads its transport carries."""
        return batches_of(self.registration, min_size, max_size)

    def distinct_records(self, size: int) -> SearchStrategy[list[Record]]:
        """Up to `size` records (as many as the registration's keys allow, at least 2), each of a key of its own and
        none a delete: a stream in which nothing written is overwritten or removed later."""
        return distinct_records_of(self.registration, size)

    def batches_with_invalid_key(self, max_size: int = 8) -> SearchStrategy[tuple[list[Record], int]]:
        """A batch whose first invalid key (of the registration's) sits at a drawn index i: (batch, i)."""
        return sized_batches_with_invalid_key(batches_of(self.registration, 1, max_size), self.invalid_keys())

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
