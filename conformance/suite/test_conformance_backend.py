"""Clauses fault.backend-reset and fault.backend-stall: the connection to a declared backend drops, or the backend
stops answering, inside a batch, with Toxiproxy (conformance.probes.backend_proxy) between them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from conformance.contract.checks import NOT_CHECKED_PREFIX
from conformance.contract.clauses import NO_BACKEND
from conformance.execute.outcomes import Code, Outcome
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model, after_a_failed_batch
from conformance.generate.strategies import numbered
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from conformance.probes.backend_proxy import VERSION, Proxy, ToxiproxyUnavailable, shared
from conformance.suite.test_conformance_lifecycle_events import changed_config
from harness import Backend, Record, Registration, WriteError

__all__ = ["routed", "content_bytes"]

_PROXIES: dict[tuple[str, ...], Proxy] = {}
_ROUTED: dict[tuple[int, str], tuple[Registration, Registration]] = {}


def _proxy(subject: Subject, backend: Backend) -> Proxy:
    """The proxy in front of `backend` (one per registration and backend for the process), or skips (not checked)
    when Toxiproxy cannot be built or started."""
    try:
        server = shared()
    except ToxiproxyUnavailable as err:
        pytest.skip(f"{NOT_CHECKED_PREFIX}needs Toxiproxy {VERSION} ({err})")
    # A fixed address (Backend.listen) holds one proxy: registrations naming it share it (each check clears it).
    key = ("listen", backend.listen, backend.forwards_to) if backend.listen else (subject.spec, backend.address)
    proxy = _PROXIES.get(key)
    if proxy is None or proxy.server is not server:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{subject.spec}-{backend.address}-{len(_PROXIES)}")
        try:
            proxy = _PROXIES[key] = server.proxy(name, backend.forwards_to, backend.listen)
        except RuntimeError as err:
            if not backend.listen:
                raise
            # A fixed address may be taken by another process, or by this one's proxy to another upstream: the
            # clauses cannot be checked through it.
            pytest.skip(f"{NOT_CHECKED_PREFIX}the proxy in front of {backend.label} could not listen on "
                        f"{backend.listen} (Backend.listen): {err}")
    return proxy


def _backends(subject: Subject) -> tuple[Backend, ...]:
    """The registration's declared backends, or skips (not checked) without one."""
    backends = subject.registration.backends
    if not backends:
        pytest.skip(NOT_CHECKED_PREFIX + NO_BACKEND)
    return backends


@contextmanager
def routed(subject: Subject, backend: Backend, proxy: Proxy) -> Iterator[dict[str, str]]:
    """For the block, the subject talks to `backend` through `proxy`: yields the config overlay (Backend.params), or
    swaps in the registration Backend.reroute gives (made once per proxy address) and yields no overlay."""
    if backend.reroute is None:
        yield backend.overlay(subject.registration.config, proxy.listen)
        return
    original = subject.registration
    made = _ROUTED.get((id(original), proxy.listen))
    if made is None or made[0] is not original:
        made = _ROUTED[(id(original), proxy.listen)] = (original, replace(backend.reroute(proxy.listen),
                                                                          name=original.name))
    subject.registration = made[1]
    try:
        yield {}
    finally:
        subject.registration = original


def content_bytes(batch: list[Record]) -> int:
    """The bytes of the batch's keys and values: at least what any destination sends its backend for it (unless
    it compresses), so a cut below it lands inside the batch's traffic."""
    total = 0
    for record in batch:
        key = record.key
        total += len(key.bytes()) if key is not None else 0
        total += len(record.payload.after.bytes()) if record.payload.after is not None else 0
    return total


def _draw(subject: Subject, data: st.DataObject) -> tuple[list[Record], list[Record], list[Record]]:
    """A first batch written before the fault, the batch it hits, and the batch after it."""
    setup = numbered(data.draw(subject.batches(min_size=1, max_size=4), label="earlier batch"), 0)
    batch = numbered(data.draw(subject.batches(min_size=2, max_size=max(2, batch_limit())), label="batch"),
                     len(setup))
    after = numbered(data.draw(subject.batches(min_size=1, max_size=4), label="batch once the backend is back"),
                     len(setup) + len(batch))
    return setup, batch, after


def _shown(backend: Backend, proxy: Proxy) -> str:
    """The replay's line making the proxy (the config shown already points at it)."""
    note = f"  # Toxiproxy {VERSION} in front of {backend.label}"
    if backend.reroute is not None:
        note += f"; the check ran the registration Backend.reroute({proxy.listen!r}) gives"
    return (f"from conformance.probes.backend_proxy import replay_proxy; "
            f"proxy = replay_proxy({backend.forwards_to!r}, {proxy.listen!r}){note}")


def _plain(subject: Subject, overlay: dict[str, str], batches: list[list[Record]]) -> bool:
    """Whether the batches write whole and read back through the proxy without a fault (else a failure under the
    fault would say nothing of it: write.round-trip reports that)."""
    with subject.session(overlay=overlay) as s:
        if not s.configure().ok or not s.attempt("open").ok:
            return False
        model = Model()
        for batch in batches:
            outcome = s.attempt("write", batch)
            if outcome.value != len(batch):
                return False
            if s.quiet_read_back() != model.apply(batch).data:
                return False
    return True


def _judge(s: Session, outcome: Outcome, batch: list[Record], model: Model, what: str) -> bool:
    """The rule after a fault: the whole batch counted and held, or WriteError counting what the backend holds;
    whether the write raised (the fault reached the destination)."""
    if outcome.ok:
        if outcome.value != len(batch):
            s.fail(f"write() returned {outcome.value!r} for {len(batch)} records after {what}")
        model.apply(batch)
    elif isinstance(outcome.error, WriteError) and 0 <= outcome.error.written < len(batch):
        after_a_failed_batch(model, batch, outcome.error.written, s.read_back())
    else:
        s.fail(f"after {what}, write() raised {type(outcome.error).__name__}: {outcome.error}; WriteError counting "
               "the records the backend holds was due")
    s.expect(model, what)
    return not outcome.ok


@pytest.mark.clause("fault.backend-reset")
@pytest.mark.usefixtures("stall_hangs_stay_here")
@suite_settings(max_examples=fraction_of_examples(0.25))
@given(data=st.data())
def test_connection_drops_inside_a_batch(subject: Subject, data: st.DataObject) -> None:
    """fault.backend-reset: the connection resets at the batch's first byte, and drops once a drawn number of its
    bytes has passed; the count matches read-back, and the next batch is stored once the backend is back."""
    for backend in _backends(subject):
        proxy = _proxy(subject, backend)
        setup, batch, later = _draw(subject, data)
        size = content_bytes(batch)
        cut = data.draw(st.integers(1, max(1, size - 1)), label="bytes of the batch passed before the drop")
        faults: list[tuple[str, dict[str, int], str]] = [
            ("reset_peer", {"timeout": 0}, "connection reset at the batch's first byte"),
            ("limit_data", {"bytes": cut}, "connection dropped after part of the batch was sent")]
        with routed(subject, backend, proxy) as overlay:
            proxy.clear()
            if not _plain(subject, overlay, [setup, batch, later]):
                return  # no evidence from this example: the batches fail without a fault
            for kind, attributes, label in faults:
                with subject.session(overlay=overlay) as s:
                    try:
                        s.setup(_shown(backend, proxy))
                        s.open_ready()
                        s.write_all(setup)
                        model = Model().apply(setup)
                        s.expect(model, "the batch written before the fault")
                        proxy.toxic(kind, "upstream", **attributes)
                        s.setup(f"proxy.toxic({kind!r}, 'upstream', "
                                f"{', '.join(f'{k}={v}' for k, v in attributes.items())})  # {backend.label}")
                        outcome = s.attempt("write", batch)
                    finally:
                        proxy.clear()
                    s.setup("proxy.clear()  # the backend is reachable again")
                    raised = _judge(s, outcome, batch, model, f"{kind} {attributes} between the destination and "
                                                              f"{backend.label}")
                    if raised:
                        s.saw(label)
                    again = s.attempt("write", later)
                    if again.value != len(later):
                        shown = f"returned {again.value!r}" if again.ok else f"raised {again.error!r}"
                        s.fail(f"once {backend.label} was reachable again (the {kind} toxic removed), the next batch "
                               f"of {len(later)} records was not stored: write() {shown}")
                    s.expect(model.apply(later), f"the batch written once {backend.label} was reachable again")
                    if raised:
                        s.saw("batch stored once the backend was back")


class _Stall:
    """One stalled session's parts: the session, and the proxy that silences the backend when `now()` is called."""

    def __init__(self, s: Session, proxy: Proxy, backend: Backend) -> None:
        self.s, self.proxy, self.backend = s, proxy, backend

    def now(self, when: str) -> None:
        """The backend stops answering, both ways: what the destination sends never arrives, so the server neither
        answers nor, its request done, closes the connection (an HTTP server would, and that is a reset, not a
        stall)."""
        self.proxy.toxic("timeout", "upstream", timeout=0)
        self.proxy.toxic("timeout", "downstream", timeout=0)
        self.s.setup(f"{STALL_SOURCE}  # {self.backend.label} stops answering {when}")

    def has(self, event: str) -> bool:
        """Whether the destination implements the lifecycle event (the driver sends none it lacks)."""
        driver = self.s.driver
        return driver is not None and callable(getattr(driver.destination, event, None))


STALL_SOURCE = "proxy.toxic('timeout', 'upstream', timeout=0); proxy.toxic('timeout', 'downstream', timeout=0)"


def _writes(stall: _Stall, setup: list[Record], batch: list[Record]) -> None:
    """A batch, the stall, the next batch, and the pipeline's retry of it (a reconnect path), then teardown."""
    s = stall.s
    s.open_ready()
    s.write_all(setup)
    stall.now("between batches")
    failed = not s.attempt("write", batch).ok  # a hang fails the clause with the call's limit
    if failed:
        s.saw("write failed with the backend stalled")
    s.attempt("write", batch)
    if failed:
        s.saw("write retried after a failure with the backend stalled")
    s.attempt("teardown")
    s.saw("torn down with the backend stalled")


def _idle_teardown(stall: _Stall, setup: list[Record], batch: list[Record]) -> None:
    """A batch, the stall while the destination is idle with its connection open, teardown."""
    s = stall.s
    s.open_ready()
    s.write_all(setup)
    stall.now("while the destination is idle")
    s.attempt("teardown")
    s.saw("torn down idle with the backend stalled")


def _acks(stall: _Stall, setup: list[Record], batch: list[Record]) -> None:
    """A batch, the stall while the destination is idle, each written position acked in order, teardown."""
    s = stall.s
    s.open_ready()
    s.write_all(setup)
    stall.now("while the destination is idle")
    for record in setup:
        s.attempt("ack", record.position)
    # Over Conduit's protocol acks flow from the connector, so the adapter answers ack(): no evidence of the connector.
    s.saw("ack answered with the backend stalled", answered="ack" in s.adapter_answers())
    s.attempt("teardown")


def _first_start(stall: _Stall, setup: list[Record], batch: list[Record]) -> None:
    """As Conduit starts a new connector: configure, the stall, OnCreated, open, teardown."""
    s = stall.s
    s.configure_ok()
    stall.now("after configure")
    if stall.has("lifecycle_on_created"):
        s.attempt("lifecycle_on_created")
        s.saw("OnCreated answered with the backend stalled")
    s.attempt("open")
    s.saw("open answered with the backend stalled")
    s.attempt("teardown")


def _updated(stall: _Stall, setup: list[Record], batch: list[Record]) -> None:
    """As Conduit starts a connector whose config changed: configure with it, the stall, OnUpdated, teardown."""
    s = stall.s
    if not stall.has("lifecycle_on_updated"):
        return
    parameters = s.ok("parameters")
    s.calls[-1].outcome = "returned the parameters"  # in full they would bury the replay
    after = changed_config(parameters, s.config)
    if after is None:
        return  # no changed config writes the same store (lifecycle.events says so)
    shown = Code(f"{{k: v.replace('{{tmp}}', tmp) for k, v in {_in_tmp(after, s.tmp)!r}.items()}}")
    if not s.configure(after, shown=shown.source).ok:
        return  # configure.valid judges the config itself
    stall.now("after configure")
    s.attempt("lifecycle_on_updated", dict(s.config), after, shown=(Code("config"), shown))
    s.saw("OnUpdated answered with the backend stalled")
    s.attempt("teardown")


def _deleted(stall: _Stall, setup: list[Record], batch: list[Record]) -> None:
    """As Conduit deletes a connector: the stall, OnDeleted with the last config alone, teardown."""
    s = stall.s
    if not stall.has("lifecycle_on_deleted"):
        return
    stall.now("before the connector is deleted")
    s.attempt("lifecycle_on_deleted")
    s.saw("OnDeleted answered with the backend stalled")
    s.attempt("teardown")


def _in_tmp(config: dict[str, str], tmp: str) -> dict[str, str]:
    return {k: v.replace(tmp, "{tmp}") for k, v in config.items()}


# Every call of the lifecycle under a stall, each sequence in a destination of its own, in every example: a call
# that fails (as a write must) often drops the connection, so what comes after it would have nothing to wait on.
STALLED_SEQUENCES: tuple[Callable[[_Stall, list[Record], list[Record]], None], ...] = (
    _writes, _idle_teardown, _acks, _first_start, _updated, _deleted)


@pytest.fixture
def stall_hangs_stay_here(subject: Subject) -> Iterator[None]:
    """A write that hangs because the suite silenced or cut off the backend says nothing of calls with the backend
    answering: once the backend check is over, the destination's later checks get the per-call limit again (not the
    shorter one kept for a method that hung), so their verdicts do not hang on this one's."""
    hung = set(subject.times.hung_methods)
    yield
    subject.times.hung_methods.intersection_update(hung)


@pytest.mark.clause("fault.backend-stall")
@pytest.mark.usefixtures("stall_hangs_stay_here")
@suite_settings(max_examples=fraction_of_examples(0.1))
@given(data=st.data())
def test_backend_stops_answering(subject: Subject, data: st.DataObject) -> None:
    """fault.backend-stall: with everything the backend sends swallowed, every call returns or raises within the
    per-call limit: a write and its retry, ack and teardown (each after a batch, the backend stalling while the
    destination was idle), and, each in a destination of its own as Conduit sends them, the lifecycle events and
    open."""
    for backend in _backends(subject):
        proxy = _proxy(subject, backend)
        setup, batch, _ = _draw(subject, data)
        with routed(subject, backend, proxy) as overlay:
            proxy.clear()
            if not _plain(subject, overlay, [setup, batch]):
                return  # no evidence from this example: the batches fail without a fault
            for sequence in STALLED_SEQUENCES:
                with subject.session(overlay=overlay) as s:
                    s.setup(_shown(backend, proxy))
                    try:
                        sequence(_Stall(s, proxy, backend), setup, batch)
                    finally:
                        proxy.clear()
