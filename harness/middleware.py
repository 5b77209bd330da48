"""Middleware around a destination: the lifecycle guard, batching and rate limiting (CONTRACT.md section 1).

A middleware is a destination that wraps another. Its methods match the wrapped destination's kind:
where the inner method is `async def`, the wrapper returns an awaitable; otherwise a plain value.
"""

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .config import Parameter, ParameterType, ValidationGreaterThan, validate_config
from .destination import LIFECYCLE, Destination
from .errors import ConfigError, LifecycleError, WriteError
from .records import Record

__all__ = [
    "Middleware",
    "DestinationMiddleware",
    "LifecycleGuard",
    "BatchSize",
    "RateLimit",
    "destination_with_middleware",
    "default_destination_middleware",
    "is_async_method",
]

T = TypeVar("T")
Middleware = Callable[[Destination], Destination]


def is_async_method(destination: object, name: str) -> bool:
    """Whether `name` of the innermost destination under any middleware is `async def`."""
    while isinstance(destination, DestinationMiddleware):
        destination = destination.inner
    return inspect.iscoroutinefunction(getattr(destination, name, None))


async def _resolved(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine that never suspends (every awaited value was plain) to its result."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a sync destination returned an awaitable")


class DestinationMiddleware:
    """Base of a middleware: passes every call through, adds `PARAMETERS`, strips their keys from the config."""

    PARAMETERS: ClassVar[Mapping[str, Parameter]] = {}

    def __init__(self, inner: Destination) -> None:
        self.inner = inner

    def _result(self, name: str, coro: Coroutine[Any, Any, T]) -> "T | Awaitable[T]":
        """The coroutine for an async inner method, its value for a sync one."""
        return coro if is_async_method(self.inner, name) else _run_now(coro)

    def _setup(self, values: Mapping[str, str]) -> None:
        """Keep this middleware's own validated parameter values."""

    def parameters(self) -> Any:
        """The inner destination's parameters plus this middleware's."""
        return self._result("parameters", self._parameters())

    async def _parameters(self) -> dict[str, Parameter]:
        return {**(await _resolved(self.inner.parameters())), **self.PARAMETERS}

    def configure(self, config: Mapping[str, str]) -> Any:
        """Validate and keep this middleware's keys, pass the rest on."""
        if not self.PARAMETERS:
            return self.inner.configure(config)
        return self._result("configure", self._configure(config))

    async def _configure(self, config: Mapping[str, str]) -> None:
        own = {k: v for k, v in config.items() if k in self.PARAMETERS}
        rest = {k: v for k, v in config.items() if k not in self.PARAMETERS}
        try:
            self._setup(validate_config(own, self.PARAMETERS))
        except ConfigError as err:
            # Name the inner destination's bad keys too, without configuring it (no side effects).
            try:
                validate_config(rest, await _resolved(self.inner.parameters()))
            except ConfigError as inner_err:
                raise ConfigError(f"{err}; {str(inner_err).removeprefix('invalid config: ')}",
                                  keys=(*err.keys, *inner_err.keys)) from None
            raise
        await _resolved(self.inner.configure(rest))

    def open(self) -> Any:
        """Pass through."""
        return self.inner.open()

    def write(self, records: Sequence[Record]) -> Any:
        """Pass through."""
        return self.inner.write(records)

    def ack(self, position: bytes) -> Any:
        """Pass through."""
        return self.inner.ack(position)

    def teardown(self) -> Any:
        """Pass through."""
        return self.inner.teardown()

    # The optional lifecycle events pass through untouched (a no-op when the inner destination has none): Conduit
    # sends them outside the call order of section 5, so no middleware guards or batches them.
    def lifecycle_on_created(self, config: Mapping[str, str]) -> Any:
        """Pass through, or None when the inner destination has no such event."""
        return _event(self.inner, "lifecycle_on_created", config)

    def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> Any:
        """Pass through, or None when the inner destination has no such event."""
        return _event(self.inner, "lifecycle_on_updated", before, after)

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> Any:
        """Pass through, or None when the inner destination has no such event."""
        return _event(self.inner, "lifecycle_on_deleted", config)


def _event(inner: object, name: str, *args: Mapping[str, str]) -> Any:
    method = getattr(inner, name, None)
    return method(*args) if callable(method) else None


class LifecycleGuard(DestinationMiddleware):
    """Enforces the lifecycle table (CONTRACT.md section 5): a forbidden call raises LifecycleError, reaches nothing."""

    LEGAL: ClassVar[Mapping[str, frozenset[str]]] = LIFECYCLE

    def __init__(self, inner: Destination) -> None:
        super().__init__(inner)
        self.state = "new"

    def _expect(self, name: str) -> None:
        if name not in self.LEGAL[self.state]:
            legal = ", ".join(sorted(self.LEGAL[self.state] | {"parameters"}))
            raise LifecycleError(f"{name}() is not allowed in state {self.state!r}; allowed: {legal}")

    async def _transition(self, call: Callable[[], Any], ok: str, failed: str | None) -> Any:
        try:
            result = await _resolved(call())
        except BaseException:
            if failed is not None:
                self.state = failed
            raise
        self.state = ok
        return result

    def configure(self, config: Mapping[str, str]) -> Any:
        """Allowed when new; success moves to configured, failure stays new."""
        self._expect("configure")
        return self._result("configure", self._transition(lambda: self.inner.configure(config), "configured", None))

    def open(self) -> Any:
        """Allowed when configured; success moves to open, failure allows only teardown."""
        self._expect("open")
        return self._result("open", self._transition(self.inner.open, "open", "open failed"))

    def write(self, records: Sequence[Record]) -> Any:
        """Allowed when open; the state stays open, also after a WriteError."""
        self._expect("write")
        return self.inner.write(records)

    def ack(self, position: bytes) -> Any:
        """Allowed when open."""
        if self.state != "open":  # the common case skips the table lookup: acks are per record
            self._expect("ack")
        return self.inner.ack(position)

    def teardown(self) -> Any:
        """Allowed in every state; a second teardown does nothing."""
        if self.state == "torn down":
            return self._result("teardown", _resolved(None))
        return self._result("teardown", self._transition(self.inner.teardown, "torn down", "torn down"))


async def _write_in_chunks(
    inner: Destination,
    records: Sequence[Record],
    size: int,
    before_chunk: Callable[[int], Awaitable[None]] | None = None,
) -> Any:
    """Writes `records` in chunks of `size`, keeping the partial count relative to the whole batch."""
    if not records:  # an empty batch still reaches the destination, as it does without the middleware
        return await _resolved(inner.write(records))
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        if before_chunk is not None:
            await before_chunk(len(chunk))
        try:
            written = await _resolved(inner.write(chunk))
        except WriteError as err:
            raise WriteError(err.message, written=start + err.written) from err
        if isinstance(written, bool) or not isinstance(written, int):
            return written  # the inner destination returned no count; pass that on unchanged
        if written != len(chunk):
            return start + written
    return len(records)


class BatchSize(DestinationMiddleware):
    """`sdk.batch.size`: the inner destination gets at most that many records a call (0: no limit)."""

    PARAMETERS: ClassVar[Mapping[str, Parameter]] = {
        "sdk.batch.size": Parameter(
            description="Maximum number of records passed to one write call of the destination (0: no limit).",
            default="0",
            type=ParameterType.int,
            validations=(ValidationGreaterThan(-1),),
        )
    }

    size = 0

    def _setup(self, values: Mapping[str, str]) -> None:
        self.size = int(values["sdk.batch.size"])

    def write(self, records: Sequence[Record]) -> Any:
        """Split the batch into chunks of at most `sdk.batch.size` records."""
        if self.size <= 0 or len(records) <= self.size:
            return self.inner.write(records)
        return self._result("write", _write_in_chunks(self.inner, records, self.size))


class RateLimit(DestinationMiddleware):
    """`sdk.rate.perSecond` and `sdk.rate.burst`: a token bucket over records written."""

    PARAMETERS: ClassVar[Mapping[str, Parameter]] = {
        "sdk.rate.perSecond": Parameter(
            description="Maximum number of records written per second (0: no limit).",
            default="0",
            type=ParameterType.float,
            validations=(ValidationGreaterThan(-1),),
        ),
        "sdk.rate.burst": Parameter(
            description="Records that may be written at once above the rate (0: the rate rounded up).",
            default="0",
            type=ParameterType.int,
            validations=(ValidationGreaterThan(-1),),
        ),
    }

    rate = 0.0
    burst = 0

    def _setup(self, values: Mapping[str, str]) -> None:
        self.rate = float(values["sdk.rate.perSecond"])
        burst = int(values["sdk.rate.burst"])
        if self.rate > 0 and math.isfinite(self.rate):
            self.burst = burst if burst > 0 else math.ceil(self.rate)
            self._tokens = float(self.burst)
            self._last = time.monotonic()

    def write(self, records: Sequence[Record]) -> Any:
        """Wait for tokens before each chunk of at most `burst` records."""
        if self.burst <= 0:
            return self.inner.write(records)
        return self._result("write", _write_in_chunks(self.inner, records, self.burst, self._acquire))

    async def _acquire(self, count: int) -> None:
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < count:
            wait = (count - self._tokens) / self.rate
            if is_async_method(self.inner, "write"):
                await asyncio.sleep(wait)
            else:
                time.sleep(wait)
            self._tokens, self._last = float(count), time.monotonic()
        self._tokens -= count


def destination_with_middleware(destination: Destination, *middleware: Middleware) -> Destination:
    """Wraps `destination` so that the first middleware is the outermost, as Conduit does."""
    for wrap in reversed(middleware):
        destination = wrap(destination)
    return destination


def default_destination_middleware() -> list[Middleware]:
    """The default list: lifecycle guard, rate limiting, batching."""
    return [LifecycleGuard, RateLimit, BatchSize]
