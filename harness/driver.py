"""Runs one destination the way a pipeline would: one thread and event loop, a per-call time limit, acks."""

import asyncio
import concurrent.futures
import queue
import signal
import inspect
import itertools
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import WriteError
from .records import Record
from .registration import Registration

__all__ = ["Driver", "CallTimeout", "DestinationAborted", "BatchResult", "expand_tmp", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 10.0
_ids = itertools.count(1)


class _Alarm(BaseException):
    """Raised by the SIGALRM handler inside a call that made no progress within the limit."""


class _UserInterrupt(BaseException):
    """Marks a Ctrl-C of the person running the suite, as opposed to a KeyboardInterrupt the destination raised."""


def _can_run_inline() -> bool:
    """Whether calls can run on this thread with a SIGALRM timer as the limit (main thread, timer free)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    try:
        asyncio.get_running_loop()
        return False  # inside a running loop run_until_complete is impossible
    except RuntimeError:
        pass
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)


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


def _settle(future: "concurrent.futures.Future[Any]", result: Any = None, error: BaseException | None = None) -> None:
    """Sets a job's outcome unless the caller gave up on it (timed out) already."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


async def _cancel_tasks() -> None:
    """Cancels every other task on the running loop and waits for them, as asyncio.run does at its end."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Driver:
    """Drives one destination from its registration: every call on one thread and one event loop, within a limit.

    On the main thread (as pytest and hypothesis run), calls run inline and a SIGALRM interval timer
    enforces the limit; elsewhere, or with `inline=False`, they run on a worker thread of the driver's own.
    """

    def __init__(
        self,
        registration: Registration,
        timeout: float = DEFAULT_TIMEOUT,
        config: Mapping[str, str] | None = None,
        inline: bool | None = None,
    ) -> None:
        self.registration = registration
        self.timeout = timeout
        self._tmp_dirs: list[str] = []
        self.config = expand_tmp(registration.config if config is None else config, self._make_tmp)
        self._stuck_in: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # made on the first awaitable: sync destinations need none
        self._inline = _can_run_inline() if inline is None else inline and _can_run_inline()
        if self._inline:
            self._thread = threading.current_thread()
            self._previous_handlers: tuple[Any, Any] | None = None
            self._progress: list[int] | None = None
            self._seen, self._in_call = -1, False
        else:
            self._jobs: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._serve, name=f"harness-driver-{next(_ids)}", daemon=True)
            self._thread.start()
        self.destination: Any = None
        self.destination = self.call("factory", registration.factory)

    def _make_tmp(self) -> str:
        path = tempfile.mkdtemp(prefix="harness-")
        self._tmp_dirs.append(path)
        return path

    @property
    def thread(self) -> threading.Thread:
        """The thread every destination call runs on (the caller's own, when it is the main thread)."""
        return self._thread

    @property
    def inline(self) -> bool:
        """Whether calls run on the caller's thread (limit by SIGALRM) rather than on a worker thread."""
        return self._inline

    def _await(self, value: Any) -> Any:
        """The value, awaited on the destination's loop if it is awaitable."""
        if value is not None and inspect.isawaitable(value):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                if not self._inline:
                    asyncio.set_event_loop(self._loop)
            return self._loop.run_until_complete(value)
        return value

    def own_fds(self) -> set[int]:
        """File descriptors the driver itself holds (its event loop's), as opposed to the destination's."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return set()
        fds = set()
        for holder in (getattr(loop, "_selector", None), getattr(loop, "_ssock", None), getattr(loop, "_csock", None)):
            try:
                fds.add(holder.fileno())  # type: ignore[union-attr]
            except (AttributeError, OSError, ValueError):
                pass
        return fds

    def _serve(self) -> None:
        """The worker thread: runs jobs in order, with the destination's loop as its event loop."""
        while (job := self._jobs.get()) is not None:
            body, future = job
            if future.set_running_or_notify_cancel():
                try:
                    result = body()
                except BaseException as err:  # handed to the caller, which decides
                    _settle(future, error=err)
                else:
                    _settle(future, result=result)
        if self._loop is not None:
            self._loop.close()

    def _protected(self, name: Callable[[], str], body: Callable[[], Any]) -> Any:
        try:
            return body()
        except (Exception, _Alarm, _UserInterrupt):
            raise
        except BaseException as err:  # never let SystemExit or KeyboardInterrupt of a destination end the run
            raise DestinationAborted(f"{name()}() raised {type(err).__name__}: {err}") from err

    def _run(self, name: Callable[[], str], body: Callable[[], Any], progress: list[int] | None) -> Any:
        """Runs `body` within the limit, which applies to each step that `progress` counts."""
        if self._stuck_in is not None:
            raise CallTimeout(name(), self.timeout, earlier=self._stuck_in)
        if self._inline:
            return self._run_inline(name, body, progress)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((lambda: self._protected(name, body), future))
        seen = -1
        while True:
            try:
                return future.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                if progress is not None and progress[0] != seen:
                    seen = progress[0]
                    continue
                future.cancel()
                if self._loop is not None and self._loop.is_running():  # an async call hangs: cancel it so the worker is free again
                    self._loop.call_soon_threadsafe(_cancel_all, self._loop)
                self._stuck_in = name()
                raise CallTimeout(self._stuck_in, self.timeout) from None

    def _on_alarm(self, signum: int, frame: Any) -> None:
        progress = self._progress
        if progress is not None and progress[0] != self._seen:
            self._seen = progress[0]
            return
        raise _Alarm()

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        # Inside a call, mark the Ctrl-C as the user's so it is not taken for the destination's own.
        raise _UserInterrupt() if self._in_call else KeyboardInterrupt()

    def _own_signals(self) -> None:
        """Installs this driver's SIGALRM and SIGINT handlers unless they are in place (close() restores)."""
        if signal.getsignal(signal.SIGALRM) != self._on_alarm:
            previous = (signal.signal(signal.SIGALRM, self._on_alarm), signal.signal(signal.SIGINT, self._on_interrupt))
            if self._previous_handlers is None:
                self._previous_handlers = previous

    def _restore_signals(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        if self._previous_handlers is not None and signal.getsignal(signal.SIGALRM) == self._on_alarm:
            signal.signal(signal.SIGALRM, self._previous_handlers[0])
            signal.signal(signal.SIGINT, self._previous_handlers[1])
        self._previous_handlers = None

    def _run_inline(self, name: Callable[[], str], body: Callable[[], Any], progress: list[int] | None) -> Any:
        self._own_signals()
        self._progress, self._seen, self._in_call = progress, -1, True
        signal.setitimer(signal.ITIMER_REAL, self.timeout, self.timeout)
        try:
            return self._protected(name, body)
        except _Alarm:
            self._stuck_in = name()
            raise CallTimeout(self._stuck_in, self.timeout) from None
        except _UserInterrupt:
            raise KeyboardInterrupt from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            self._in_call, self._progress = False, None

    def _invoke(self, fn: Callable[..., Any], args: tuple[Any, ...], progress: list[int] | None) -> Any:
        if progress is None:
            return self._await(fn(*args))
        for arg in args:  # one call per argument, counted so the limit applies per call
            self._await(fn(arg))
            progress[0] += 1
        return None

    def call(self, method: str, fn: Callable[..., Any], *args: Any, each: bool = False) -> Any:
        """Runs `fn(*args)` (or `fn(a)` for each a, with `each`) on the destination's thread within the limit."""
        progress = [0] if each else None
        return self._run(lambda: method, lambda: self._invoke(fn, args, progress), progress)

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
        """Writes a batch and acks the positions it reports written, as a pipeline does, in one step."""
        progress = [0]
        return self._run(lambda: "write" if progress[0] == 0 else "ack",
                         lambda: self._write_then_ack(records, progress), progress)

    def _write_then_ack(self, records: Sequence[Record], progress: list[int]) -> BatchResult:
        error: WriteError | None = None
        try:
            result = self._await(self.destination.write(records))
        except WriteError as err:
            result, error = min(err.written, len(records)), err
        progress[0] += 1
        if isinstance(result, bool) or not isinstance(result, int) or not 0 <= result <= len(records):
            raise TypeError(f"write() returned {result!r} for {len(records)} records; expected an int count")
        ack, wait = self.destination.ack, self._await
        for record in records[:result]:
            if (acked := ack(record.position)) is not None:
                wait(acked)
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
        """Cancels leftover tasks, ends the worker thread (unless a call is stuck in it), removes temp dirs."""
        abandon = getattr(self.destination, "abandon", None) if self._stuck_in is not None else None
        if callable(abandon):  # after a hang, stop what can be stopped from outside (a connector process)
            try:
                abandon()
            except Exception:
                pass
        if self._inline:
            self._restore_signals()
            if self._loop is not None and not self._loop.is_closed():
                if self._stuck_in is None:
                    try:
                        self._loop.run_until_complete(_cancel_tasks())
                    except Exception:
                        pass
                self._loop.close()
        elif self._thread.is_alive():
            limit = self.timeout if self._stuck_in is None else 0.05
            if self._stuck_in is None:
                done: concurrent.futures.Future[Any] = concurrent.futures.Future()
                self._jobs.put((lambda: self._loop and self._loop.run_until_complete(_cancel_tasks()), done))
                try:
                    done.result(timeout=limit)
                except Exception:
                    pass  # a task that ignores cancellation
            self._jobs.put(None)  # a stuck call that returns later then ends the thread too
            self._thread.join(timeout=limit)
        if callable(getattr(self.destination, "close", None)): self.destination.close()  # stops a connector process
        for path in self._tmp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tmp_dirs.clear()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
