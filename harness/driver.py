"""Runs one destination the way a pipeline would: one thread and event loop, a per-call time limit, acks."""

import asyncio
import concurrent.futures
import inspect
import itertools
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import WriteError
from .records import Record
from .registration import Registration

__all__ = ["Driver", "CallTimeout", "DestinationAborted", "BatchResult", "expand_tmp", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 10.0
_ids = itertools.count(1)


async def _resolved(value: Any) -> Any:
    """The value, awaited if it is awaitable (the common plain result skips the check)."""
    if value is not None and inspect.isawaitable(value):
        return await value
    return value


class CallTimeout(Exception):
    """A destination call did not return within the per-call limit (clause `call.timeout`)."""

    def __init__(self, method: str, limit: float, earlier: str | None = None) -> None:
        self.method, self.limit, self.earlier = method, limit, earlier
        if earlier:
            message = f"{method}() not attempted: the destination is still stuck in an earlier {earlier}() call"
        else:
            message = f"{method}() did not return within {limit:g}s"
        super().__init__(message)


class DestinationAborted(Exception):
    """A destination call raised SystemExit, KeyboardInterrupt or another BaseException; the run goes on."""


@dataclass(frozen=True)
class BatchResult:
    """What one `write` of a pipeline run did: records written, and the error if it stopped early."""

    written: int
    error: BaseException | None = None


def expand_tmp(config: Mapping[str, str], tmp_dir: Callable[[], str]) -> dict[str, str]:
    """The config with every `{tmp}` replaced by one fresh temporary directory (made only if needed)."""
    if not any("{tmp}" in v for v in config.values()):
        return dict(config)
    tmp = tmp_dir()
    return {k: v.replace("{tmp}", tmp) for k, v in config.items()}


async def _cancel_tasks() -> None:
    """Cancels every other task on the running loop and waits for them, as asyncio.run does at its end."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Driver:
    """Drives one destination from its registration; every call runs on the driver's own thread and loop."""

    def __init__(
        self,
        registration: Registration,
        timeout: float = DEFAULT_TIMEOUT,
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.registration = registration
        self.timeout = timeout
        self._tmp_dirs: list[str] = []
        self.config = expand_tmp(registration.config if config is None else config, self._make_tmp)
        self._stuck_in: str | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"harness-driver-{next(_ids)}", daemon=True
        )
        self._thread.start()
        self.destination: Any = None
        self.destination = self.call("factory", registration.factory)

    def _make_tmp(self) -> str:
        path = tempfile.mkdtemp(prefix="harness-")
        self._tmp_dirs.append(path)
        return path

    @property
    def thread(self) -> threading.Thread:
        """The thread every destination call runs on."""
        return self._thread

    async def _invoke(self, fn: Callable[..., Any], args: tuple[Any, ...], progress: list[int] | None) -> Any:
        if progress is None:
            return await _resolved(fn(*args))
        for arg in args:  # one call per argument, counted so the caller can tell progress from a hang
            await _resolved(fn(arg))
            progress[0] += 1
        return None

    async def _guarded(self, name: str, body: Awaitable[Any]) -> Any:
        try:
            return await body
        except Exception:
            raise
        except BaseException as err:  # never let SystemExit or KeyboardInterrupt end the run
            raise DestinationAborted(f"{name}() raised {type(err).__name__}: {err}") from err

    def _run(self, method: Callable[[], str], body: Awaitable[Any], progress: list[int] | None) -> Any:
        """Runs `body` on the driver's thread; the limit applies to each step `progress` counts."""
        future = asyncio.run_coroutine_threadsafe(self._guarded(method(), body), self._loop)
        seen = -1
        while True:
            try:
                return future.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                if progress is not None and progress[0] != seen:
                    seen = progress[0]
                    continue
                future.cancel()
                self._stuck_in = method()
                raise CallTimeout(self._stuck_in, self.timeout) from None

    def call(self, method: str, fn: Callable[..., Any], *args: Any, each: bool = False) -> Any:
        """Runs `fn(*args)` (or `fn(a)` for each a, with `each`) on the driver's thread within the limit."""
        if self._stuck_in is not None:
            raise CallTimeout(method, self.timeout, earlier=self._stuck_in)
        progress = [0] if each else None
        return self._run(lambda: method, self._invoke(fn, args, progress), progress)

    def parameters(self) -> Any:
        """The destination's `parameters()`."""
        return self.call("parameters", self.destination.parameters)

    def configure(self, config: Mapping[str, str] | None = None) -> Any:
        """`configure` with the expanded registration config, or `config`."""
        return self.call("configure", self.destination.configure, dict(self.config if config is None else config))

    def open(self) -> Any:
        """The destination's `open()`."""
        return self.call("open", self.destination.open)

    def write(self, records: Sequence[Record]) -> Any:
        """The destination's `write(records)`, returning whatever it returned."""
        return self.call("write", self.destination.write, records)

    def ack(self, position: bytes) -> Any:
        """The destination's `ack(position)`."""
        return self.call("ack", self.destination.ack, position)

    def ack_all(self, positions: Sequence[bytes]) -> None:
        """Acks each position in order in one hop to the driver's thread; the limit applies per ack."""
        if positions:
            self.call("ack", self.destination.ack, *positions, each=True)

    def teardown(self) -> Any:
        """The destination's `teardown()`."""
        return self.call("teardown", self.destination.teardown)

    def write_and_ack(self, records: Sequence[Record]) -> BatchResult:
        """Writes a batch and acks the positions it reports written, as a pipeline does, in one hop."""
        if self._stuck_in is not None:
            raise CallTimeout("write", self.timeout, earlier=self._stuck_in)
        progress = [0]
        return self._run(lambda: "write" if progress[0] == 0 else "ack",
                         self._write_then_ack(records, progress), progress)

    async def _write_then_ack(self, records: Sequence[Record], progress: list[int]) -> BatchResult:
        error: WriteError | None = None
        try:
            result = await _resolved(self.destination.write(records))
        except WriteError as err:
            result, error = min(err.written, len(records)), err
        progress[0] += 1
        if isinstance(result, bool) or not isinstance(result, int) or not 0 <= result <= len(records):
            raise TypeError(f"write() returned {result!r} for {len(records)} records; expected an int count")
        ack = self.destination.ack
        for record in records[:result]:
            await _resolved(ack(record.position))
            progress[0] += 1
        return BatchResult(result, error)

    def run(self, batches: Iterable[Sequence[Record]]) -> list[BatchResult]:
        """configure, open, write and ack every batch, teardown: one pipeline run."""
        try:
            self.configure()
            self.open()
            return [self.write_and_ack(batch) for batch in batches]
        finally:
            self.teardown()

    def close(self) -> None:
        """Cancels leftover tasks, stops the driver's thread (unless a call is stuck in it), removes its temp dirs."""
        if self._thread.is_alive() and not self._loop.is_closed():
            # Also after a timeout: a cancelled async call leaves the loop free, and a stuck sync call that
            # returns later then ends the thread instead of leaving an idle loop behind.
            limit = self.timeout if self._stuck_in is None else 0.05
            try:
                asyncio.run_coroutine_threadsafe(_cancel_tasks(), self._loop).result(timeout=limit)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                pass  # stuck in sync code, or a task that ignores cancellation
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=limit)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
        for path in self._tmp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tmp_dirs.clear()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
