"""One example's run of a destination through the driver (Session): every call logged, failures with a replay."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from conformance.contract.checks import ClauseFailure, SetupCause
from conformance.execute.hangs import HANG_FACTOR, HANG_FLOOR
from conformance.execute.labels import round_trip_labels
from conformance.execute.outcomes import Code, Outcome, describe, one_line
from conformance.execute.replay import Call, render_snippet
from conformance.generate.model import Model, differences
from conformance.probes.holdings import Holdings
from conformance.probes.watch import SessionWatch
from harness import CallTimeout, Driver, WriteError

if TYPE_CHECKING:
    from conformance.execute.subject import Subject

__all__ = ["Session"]


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
            self.fail(f"the factory did not return within {self.limit:g}s{self._reduced(self.limit)}", timeout=True,
                      cause=SetupCause.of("factory", None))
        except Exception as err:
            self.fail(f"the factory raised {describe(err)}", cause=SetupCause.of("factory", err))

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
            setup = method in ("configure", "open") and err.earlier is None
            self.fail(f"{err}{note}", timeout=True,
                      cause=SetupCause.of("open" if method == "open" else "configure", None) if setup else None)
        except Exception as err:
            self.subject.times.returned(method, time.monotonic() - started)
            self.subject.saw("call returned within the limit", "call.timeout")
            call.outcome = f"raised {one_line(describe(err))}"
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
            self.fail(f"{method}() raised {describe(outcome.error)}", cause=_setup_cause(method, outcome.error))
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
            self.fail(f"configure() with the registered config raised {describe(outcome.error)}",
                      cause=SetupCause.of("configure", outcome.error))

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
            raise ClauseFailure(self.subject.clause_id, f"the registration's read_back raised {describe(err)}",
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
        if self.watch is not None:
            self.watch.excused()

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

    def saw(self, label: str, clause_id: str | None = None, answered: bool = False) -> None:
        """Records evidence for this test's clause (or `clause_id`); see Subject.saw."""
        self.subject.saw(label, clause_id, answered=answered)

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

    def fail(self, what: str, clause_id: str | None = None, timeout: bool = False,
             cause: SetupCause | None = None) -> NoReturn:
        """Raises ClauseFailure for this test's clause with the calls so far and a replay snippet; `cause` when the
        failure is the factory, configure() or open() failing (the report's root cause)."""
        __tracebackhide__ = True
        failure = ClauseFailure(clause_id or self.judged or self.subject.clause_id, what, self.calls, self.snippet(),
                                timeout=timeout, spec=self.subject.spec, tmp=self.tmp, cause=cause)
        self.subject.pacer.failed(error=failure)
        raise failure


def _setup_cause(method: str, error: BaseException) -> SetupCause | None:
    """The root-cause key of a configure() or open() that raised; None for any other call."""
    if method == "configure":
        return SetupCause.of("configure", error)
    return SetupCause.of("open", error) if method == "open" else None


def _valid_written(value: Any, size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size
