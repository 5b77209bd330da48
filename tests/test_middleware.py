"""The default middleware: lifecycle guard (CONTRACT.md: Lifecycle), batching and rate limiting (CONTRACT.md: The
interface)."""

import asyncio
import inspect
import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

import harness.middleware as middleware_module
from harness import (
    BatchSize,
    ConfigError,
    LifecycleError,
    LifecycleGuard,
    Parameter,
    RateLimit,
    Record,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
)
from tests.batches import records

KINDS = ["sync", "async"]
MIDDLEWARE_KEYS = {"sdk.batch.size", "sdk.rate.perSecond", "sdk.rate.burst"}


class Recorder:
    """A sync destination that records every call that reaches it.

    `configure` fails with ConfigError when the config holds the key "bad"; `open` fails when `fail_open`.
    `write` calls `on_write(records)` when given, and otherwise writes everything.
    """

    def __init__(self, fail_open: bool = False, on_write: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_open = fail_open
        self.on_write = on_write

    def parameters(self) -> Mapping[str, Parameter]:
        self.calls.append(("parameters",))
        return {"dir": Parameter(description="A directory.")}

    def configure(self, config: Mapping[str, str]) -> None:
        self.calls.append(("configure", dict(config)))
        if "bad" in config:
            raise ConfigError("bad is bad", keys=["bad"])

    def open(self) -> None:
        self.calls.append(("open",))
        if self.fail_open:
            raise OSError("cannot open")

    def write(self, records: Sequence[Record]) -> int:
        self.calls.append(("write", list(records)))
        if self.on_write is not None:
            return self.on_write(list(records))
        return len(records)

    def ack(self, position: bytes) -> None:
        self.calls.append(("ack", position))

    def teardown(self) -> None:
        self.calls.append(("teardown",))

    def names(self) -> list[str]:
        """The names of the calls that reached this destination."""
        return [call[0] for call in self.calls]

    def chunks(self) -> list[list[Record]]:
        """The batches `write` received."""
        return [call[1] for call in self.calls if call[0] == "write"]


class AsyncRecorder(Recorder):
    """The same destination with every method `async def`."""

    async def parameters(self) -> Mapping[str, Parameter]:  # type: ignore[override]
        await asyncio.sleep(0)
        return Recorder.parameters(self)

    async def configure(self, config: Mapping[str, str]) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        Recorder.configure(self, config)

    async def open(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        Recorder.open(self)

    async def write(self, records: Sequence[Record]) -> int:  # type: ignore[override]
        await asyncio.sleep(0)
        return Recorder.write(self, records)

    async def ack(self, position: bytes) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        Recorder.ack(self, position)

    async def teardown(self) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        Recorder.teardown(self)


def make(kind: str, **kwargs: Any) -> Recorder:
    """A recorder of the given kind."""
    return (AsyncRecorder if kind == "async" else Recorder)(**kwargs)


def stack(inner: Recorder) -> Any:
    """`inner` wrapped in the default middleware, as a factory returns it."""
    return destination_with_middleware(inner, *default_destination_middleware())


async def _await(value: Any) -> Any:
    return await value


def call(destination: Any, kind: str, method: str, *args: Any) -> Any:
    """Calls `method`; an async destination must return an awaitable (run here), a sync one a plain value."""
    result = getattr(destination, method)(*args)
    if kind == "async":
        assert inspect.isawaitable(result), f"{method} of an async destination returned {result!r}"
        return asyncio.run(_await(result))
    assert not inspect.isawaitable(result), f"{method} of a sync destination returned an awaitable"
    return result



# --- lifecycle guard --------------------------------------------------------------------------

LEGAL = {
    "new": {"parameters", "configure", "teardown"},
    "configure failed": {"parameters", "configure", "teardown"},
    "configured": {"parameters", "open", "teardown"},
    "open": {"parameters", "write", "ack", "teardown"},
    "write failed": {"parameters", "write", "ack", "teardown"},
    "open failed": {"parameters", "teardown"},
    "torn down": {"parameters", "teardown"},
}
ARGS: dict[str, tuple[Any, ...]] = {
    "parameters": (),
    "configure": ({},),
    "open": (),
    "write": (records(1),),
    "ack": (b"p0",),
    "teardown": (),
}


def reach(state: str, kind: str) -> tuple[Any, Recorder]:
    """A fresh stacked destination driven into `state`, and its inner recorder."""
    fail_write = lambda recs: (_ for _ in ()).throw(WriteError("no", written=0))  # noqa: E731
    inner = make(kind, fail_open=(state == "open failed"), on_write=fail_write if state == "write failed" else None)
    d = stack(inner)
    if state == "configure failed":
        with pytest.raises(ConfigError):
            call(d, kind, "configure", {"bad": "1"})
    if state in ("configured", "open", "open failed", "write failed"):
        call(d, kind, "configure", {})
    if state in ("open", "write failed"):
        call(d, kind, "open")
    if state == "open failed":
        with pytest.raises(OSError):
            call(d, kind, "open")
    if state == "write failed":
        with pytest.raises(WriteError):
            call(d, kind, "write", records(1))
        inner.on_write = None
    if state == "torn down":
        call(d, kind, "teardown")
    return d, inner


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", list(ARGS))
@pytest.mark.parametrize("state", list(LEGAL))
def test_lifecycle_table(state: str, method: str, kind: str) -> None:
    """Every method in every state: legal calls reach the inner destination, illegal ones raise and reach nothing."""
    d, inner = reach(state, kind)
    before = list(inner.calls)
    if method in LEGAL[state]:
        call(d, kind, method, *ARGS[method])
        new_calls = inner.calls[len(before):]
        if state == "torn down" and method == "teardown":
            assert new_calls == []  # a second teardown is a no-op
        else:
            assert [c[0] for c in new_calls] == [method]
    else:
        with pytest.raises(LifecycleError, match=rf"{method}\(\).*not allowed"):
            call(d, kind, method, *ARGS[method])
        assert inner.calls == before


@pytest.mark.parametrize("kind", KINDS)
def test_failed_configure_stays_new(kind: str) -> None:
    """After a ConfigError the destination is still new: open is refused, a good configure then works."""
    d, inner = reach("configure failed", kind)
    with pytest.raises(LifecycleError):
        call(d, kind, "open")
    call(d, kind, "configure", {})
    call(d, kind, "open")
    assert call(d, kind, "write", records(2)) == 2
    assert inner.names()[-3:] == ["configure", "open", "write"]


@pytest.mark.parametrize("kind", KINDS)
def test_failed_open_allows_only_teardown(kind: str) -> None:
    """After open raised, write, ack, open and configure are refused; teardown reaches the destination."""
    d, inner = reach("open failed", kind)
    for method in ("write", "ack", "open", "configure"):
        with pytest.raises(LifecycleError):
            call(d, kind, method, *ARGS[method])
    call(d, kind, "teardown")
    assert inner.names()[-2:] == ["open", "teardown"]


@pytest.mark.parametrize("kind", KINDS)
def test_teardown_twice_calls_inner_once(kind: str) -> None:
    """A second teardown succeeds without reaching the inner destination."""
    d, inner = reach("open", kind)
    call(d, kind, "teardown")
    call(d, kind, "teardown")
    call(d, kind, "teardown")
    assert inner.names().count("teardown") == 1


@pytest.mark.parametrize("kind", KINDS)
def test_write_error_keeps_state_open(kind: str) -> None:
    """After a WriteError the next batch is passed on and acks are allowed."""
    d, inner = reach("write failed", kind)
    assert call(d, kind, "write", records(3)) == 3
    call(d, kind, "ack", b"p0")
    assert inner.names()[-2:] == ["write", "ack"]


def test_lifecycle_error_message_names_state_and_allowed_calls() -> None:
    """The LifecycleError says which call, in which state, and what is allowed there."""
    d = LifecycleGuard(Recorder())
    with pytest.raises(LifecycleError) as info:
        d.write(records(1))
    message = str(info.value)
    assert "write()" in message and "'new'" in message
    assert "configure" in message and "teardown" in message and "parameters" in message


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_works_in_every_state(kind: str) -> None:
    """parameters() returns the inner parameters plus the middleware's, the same in every state."""
    seen = []
    for state in LEGAL:
        d, _ = reach(state, kind)
        params = call(d, kind, "parameters")
        assert set(params) == {"dir"} | MIDDLEWARE_KEYS
        seen.append(params)
    assert all(p == seen[0] for p in seen)


# --- config passing ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_middleware_keys_are_stripped_before_inner_configure(kind: str) -> None:
    """The inner destination gets only its own keys; the middleware keep theirs."""
    inner = make(kind)
    d = stack(inner)
    call(d, kind, "configure", {"dir": "/x", "sdk.batch.size": "2", "sdk.rate.perSecond": "0", "sdk.rate.burst": "0"})
    assert inner.calls[-1] == ("configure", {"dir": "/x"})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("key", "value"),
    [("sdk.batch.size", "-1"), ("sdk.batch.size", "two"), ("sdk.rate.perSecond", "fast"), ("sdk.rate.burst", "1.5")],
)
def test_bad_middleware_value_is_a_config_error(kind: str, key: str, value: str) -> None:
    """A bad middleware value raises ConfigError naming it, never configures the inner, and leaves the state new."""
    inner = make(kind)
    d = stack(inner)
    with pytest.raises(ConfigError) as info:
        call(d, kind, "configure", {key: value})
    assert key in info.value.keys and key in str(info.value)
    assert "configure" not in inner.names()
    with pytest.raises(LifecycleError):
        call(d, kind, "open")


@pytest.mark.parametrize("kind", KINDS)
def test_bad_middleware_and_inner_keys_are_named_together(kind: str) -> None:
    """A bad middleware value and an unknown inner key are both named in one ConfigError."""
    inner = make(kind)
    d = stack(inner)
    with pytest.raises(ConfigError) as info:
        call(d, kind, "configure", {"sdk.batch.size": "x", "sdk.rate.burst": "-5", "bogus": "1", "dir": "/ok"})
    assert set(info.value.keys) == {"sdk.batch.size", "sdk.rate.burst", "bogus"}
    for key in ("sdk.batch.size", "sdk.rate.burst", "bogus"):
        assert key in str(info.value)
    assert "configure" not in inner.names()


def test_each_middleware_adds_its_parameters() -> None:
    """BatchSize and RateLimit each add their own parameters, with defaults that pass their validations."""
    batch = BatchSize(Recorder()).parameters()
    rate = RateLimit(Recorder()).parameters()
    assert set(batch) == {"dir", "sdk.batch.size"}
    assert set(rate) == {"dir", "sdk.rate.perSecond", "sdk.rate.burst"}
    for params in (batch, rate):
        for name, param in params.items():
            assert param.description, name
            if param.default is not None:
                assert param.problems(param.default) == [], name


# --- batching ---------------------------------------------------------------------------------


def configured(kind: str, config: Mapping[str, str], **kwargs: Any) -> tuple[Any, Recorder]:
    """A stacked destination, configured with `config` and opened."""
    inner = make(kind, **kwargs)
    d = stack(inner)
    call(d, kind, "configure", dict(config))
    call(d, kind, "open")
    return d, inner


@pytest.mark.parametrize("kind", KINDS)
def test_batch_size_splits_into_chunks(kind: str) -> None:
    """With sdk.batch.size=3, 8 records reach the inner destination as 3+3+2, in order."""
    d, inner = configured(kind, {"sdk.batch.size": "3"})
    batch = records(8)
    assert call(d, kind, "write", batch) == 8
    assert [len(c) for c in inner.chunks()] == [3, 3, 2]
    assert sum(inner.chunks(), []) == batch


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", ["0", ""])
def test_batch_size_zero_or_unset_passes_batch_whole(kind: str, size: str) -> None:
    """Without a limit the batch is passed on in one call."""
    d, inner = configured(kind, {"sdk.batch.size": size})
    assert call(d, kind, "write", records(50)) == 50
    assert [len(c) for c in inner.chunks()] == [50]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_is_passed_on(kind: str) -> None:
    """An empty batch still reaches the destination once and returns 0."""
    d, inner = configured(kind, {"sdk.batch.size": "3", "sdk.rate.perSecond": "5"})
    assert call(d, kind, "write", []) == 0
    assert inner.chunks() == [[]]


def failing_at(index: int | None) -> Any:
    """An on_write that fails at the record with overall index `index` (None: never)."""
    seen = [0]

    def on_write(chunk: list[Record]) -> int:
        start = seen[0]
        seen[0] += len(chunk)
        if index is not None and start <= index < start + len(chunk):
            raise WriteError("record refused", written=index - start)
        return len(chunk)

    return on_write


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=8),
    total=st.integers(min_value=1, max_value=30),
    fail=st.none() | st.integers(min_value=0, max_value=29),
    kind=st.sampled_from(KINDS),
)
def test_batch_partial_count_is_relative_to_whole_batch(size: int, total: int, fail: int | None, kind: str) -> None:
    """A WriteError(written=k) in chunk j becomes written = j*N + k; later chunks are never sent."""
    if fail is not None and fail >= total:
        fail = None
    d, inner = configured(kind, {"sdk.batch.size": str(size)}, on_write=failing_at(fail))
    batch = records(total)
    if fail is None:
        assert call(d, kind, "write", batch) == total
    else:
        with pytest.raises(WriteError) as info:
            call(d, kind, "write", batch)
        n = size if size > 0 else total
        j, k = divmod(fail, n)
        assert info.value.written == j * n + k == fail
        assert len(inner.chunks()) == j + 1
    chunks = inner.chunks()
    if size > 0:
        assert all(1 <= len(c) <= size for c in chunks)
    else:
        assert len(chunks) == 1
    sent = sum(chunks, [])
    assert sent == batch[: len(sent)]  # contiguous, in order, nothing skipped or repeated


@pytest.mark.parametrize("kind", KINDS)
def test_short_count_in_a_chunk_is_passed_on(kind: str) -> None:
    """An inner chunk written short without an error makes write return the short total, and stops there."""
    counts = iter([3, 1, 3])
    d, inner = configured(kind, {"sdk.batch.size": "3"}, on_write=lambda chunk: next(counts))
    assert call(d, kind, "write", records(9)) == 4
    assert [len(c) for c in inner.chunks()] == [3, 3]


@pytest.mark.parametrize("kind", KINDS)
def test_non_int_count_in_a_chunk_is_passed_on(kind: str) -> None:
    """A chunk result that is not an int is passed on unchanged for write.count to catch."""
    d, _ = configured(kind, {"sdk.batch.size": "2"}, on_write=lambda chunk: None)
    assert call(d, kind, "write", records(5)) is None


# --- rate limiting ----------------------------------------------------------------------------


class FakeClock:
    """monotonic/sleep that advance only when slept on; records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock in place of harness.middleware's time and asyncio.sleep (no real waiting)."""
    fake = FakeClock()
    monkeypatch.setattr(middleware_module, "time", types.SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    monkeypatch.setattr(middleware_module, "asyncio", types.SimpleNamespace(sleep=fake.async_sleep))
    return fake


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_chunks_by_burst_and_waits(kind: str, clock: FakeClock) -> None:
    """At 10/s with burst 2, five records go as 2+2+1, waiting 0.2 s and then 0.1 s."""
    d, inner = configured(kind, {"sdk.rate.perSecond": "10", "sdk.rate.burst": "2"})
    assert call(d, kind, "write", records(5)) == 5
    assert [len(c) for c in inner.chunks()] == [2, 2, 1]
    assert clock.sleeps == pytest.approx([0.2, 0.1])


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_refills_over_time(kind: str, clock: FakeClock) -> None:
    """After enough (fake) time has passed, a burst-sized batch goes without waiting."""
    d, _ = configured(kind, {"sdk.rate.perSecond": "10", "sdk.rate.burst": "4"})
    call(d, kind, "write", records(4))
    assert clock.sleeps == []
    call(d, kind, "write", records(4))
    assert clock.sleeps == pytest.approx([0.4])
    clock.now += 60
    call(d, kind, "write", records(4))
    assert clock.sleeps == pytest.approx([0.4])


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_default_burst_is_rate_rounded_up(kind: str, clock: FakeClock) -> None:
    """sdk.rate.burst 0 means the rate rounded up: 2.5/s gives chunks of 3."""
    d, inner = configured(kind, {"sdk.rate.perSecond": "2.5"})
    call(d, kind, "write", records(7))
    assert [len(c) for c in inner.chunks()] == [3, 3, 1]
    assert len(clock.sleeps) == 2 and all(s > 0 for s in clock.sleeps)


@pytest.mark.parametrize("kind", KINDS)
def test_no_rate_means_no_limit(kind: str, clock: FakeClock) -> None:
    """sdk.rate.perSecond 0 (the default) never splits or waits, whatever the burst."""
    d, inner = configured(kind, {"sdk.rate.burst": "1"})
    call(d, kind, "write", records(20))
    assert [len(c) for c in inner.chunks()] == [20]
    assert clock.sleeps == []


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_with_batch_size_and_write_error(kind: str, clock: FakeClock) -> None:
    """Burst and batch size combine to the smaller chunk, and a WriteError's count stays whole-batch."""
    d, inner = configured(
        kind, {"sdk.rate.perSecond": "100", "sdk.rate.burst": "4", "sdk.batch.size": "3"}, on_write=failing_at(9)
    )
    with pytest.raises(WriteError) as info:
        call(d, kind, "write", records(12))
    assert info.value.written == 9
    assert [len(c) for c in inner.chunks()] == [3, 1, 3, 1, 3]  # rate chunks 4+4+4, each split 3+1
