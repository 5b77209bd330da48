"""Runs one destination the way a pipeline would: one thread and event loop, a per-call time limit, acks."""

import asyncio
import ctypes
import inspect
import itertools
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import WriteError
from .records import Record
from .registration import Registration

__all__ = ["Driver", "CallTimeout", "DestinationAborted", "BatchResult", "expand_tmp", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 10.0
_ids = itertools.count(1)


class _Abandoned(BaseException):
    """Raised in a worker thread whose call the driver gave up on, so a busy loop there stops burning the CPU."""


class CallTimeout(Exception):
    """A destination call did not return within the per-call limit."""

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


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


async def _cancel_tasks() -> None:
    """Cancels every other task on the running loop and waits for them, as asyncio.run does at its end."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _raise_in(thread: threading.Thread, error: type[BaseException]) -> bool:
    """Schedules `error` in `thread` (CPython's PyThreadState_SetAsyncExc); False where that is unavailable."""
    try:
        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (AttributeError, ValueError):  # not CPython
        return False
    ident = thread.ident
    if ident is None:
        return False
    modified: int = set_async_exc(ctypes.c_ulong(ident), ctypes.py_object(error))  # the number of threads changed
    return modified == 1


class Driver:
    """Drives one destination from its registration: every call on one thread and one event loop, within a limit.

    Calls run on a worker thread of the driver's own; the caller waits for each with the per-call limit
    (`timeout`, which may be changed between calls). No signal and no timer ever interrupts the caller:
    a call that does not return is left on its thread and reported as CallTimeout.
    """

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
        self._loop: asyncio.AbstractEventLoop | None = None  # made on the first awaitable: sync destinations need none
        self._executor: ThreadPoolExecutor | None = None
        # One job at a time, handed over with two plain locks: a Future and a queue cost twice as much per call.
        self._job: Callable[[], Any] | None = None
        self._outcome: tuple[bool, Any] = (True, None)
        self._posted = threading.Lock()
        self._posted.acquire()
        self._finished = threading.Lock()
        self._finished.acquire()
        self._in_job = False  # guarded by _state: whether the worker runs a job (so an abandoned call can be stopped)
        self._state = threading.Lock()
        self._closed = False
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
        """The thread every destination call runs on."""
        return self._thread

    def _await(self, value: Any) -> Any:
        """The value, awaited on the destination's loop if it is awaitable."""
        if value is not None and inspect.isawaitable(value):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop.set_default_executor(self._new_executor())
                asyncio.set_event_loop(self._loop)
            return self._loop.run_until_complete(value)
        return value

    def _new_executor(self) -> ThreadPoolExecutor:
        """The loop's default executor (asyncio.to_thread, run_in_executor(None, ...)): the driver's, not the
        destination's, so the driver ends its threads after teardown."""
        self._executor = ThreadPoolExecutor(thread_name_prefix=f"{self._thread.name}-executor")
        return self._executor

    def _end_executor(self) -> None:
        """Ends the default executor's idle threads after teardown (a later call gets a fresh executor); a job the
        destination left running there keeps its thread, for the checks of what teardown releases to see."""
        executor, loop = self._executor, self._loop
        if executor is None or loop is None or loop.is_closed():
            return
        executor.shutdown(wait=False)
        loop.set_default_executor(self._new_executor())

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
        """The worker thread: runs each posted job and hands its outcome back, until a job of None."""
        try:
            while True:
                self._posted.acquire()
                job = self._job
                if job is None:
                    break
                with self._state:
                    self._in_job = True
                try:
                    self._outcome = (True, job())
                except BaseException as err:  # handed to the caller, which decides
                    self._outcome = (False, err)
                with self._state:
                    self._in_job = False
                self._finished.release()
        except _Abandoned:
            pass  # the driver gave up on this thread; it ends here
        finally:
            if self._loop is not None and not self._loop.is_running():
                self._loop.close()

    def _protected(self, name: Callable[[], str], body: Callable[[], Any]) -> Any:
        try:
            return body()
        except Exception:
            raise
        except BaseException as err:  # never let SystemExit or KeyboardInterrupt of a destination end the run
            raise DestinationAborted(f"{name()}() raised {type(err).__name__}: {err}") from err

    def _run(self, name: Callable[[], str], body: Callable[[], Any], progress: list[int] | None) -> Any:
        """Runs `body` on the worker within the limit, which applies to each step that `progress` counts."""
        if self._stuck_in is not None:
            raise CallTimeout(name(), self.timeout, earlier=self._stuck_in)
        self._job = lambda: self._protected(name, body)
        self._posted.release()
        seen = -1
        try:
            while not self._finished.acquire(timeout=min(self.timeout, threading.TIMEOUT_MAX)):
                if progress is not None and progress[0] != seen:
                    seen = progress[0]
                    continue
                self._stuck_in = name()
                self._abandon_call()
                self._timed_out(self._stuck_in)
        except BaseException:
            if self._stuck_in is None:  # the caller was interrupted (Ctrl-C): the call still runs on the worker
                self._stuck_in = name()
            raise
        ok, value = self._outcome
        self._outcome = (True, None)
        if ok:
            return value
        raise value

    def _timed_out(self, method: str) -> NoReturn:
        """Raises the CallTimeout of a call given up on (from this one line, so every such timeout reads alike)."""
        self._stuck_in = method
        raise CallTimeout(method, self.timeout)

    def presume_hung(self, method: str) -> NoReturn:
        """Gives up on a call of `method` without making it, for a caller that knows it hangs (the same call after
        the same calls hung before): raises CallTimeout as a call that timed out does, and later calls fail fast."""
        self._timed_out(method)

    def _abandon_call(self) -> None:
        """Stops what a call that timed out still runs: its tasks, and (CPython) Python code looping on its thread."""
        loop = self._loop
        if loop is not None and loop.is_running():  # an async call hangs: cancel it so its thread can end
            loop.call_soon_threadsafe(_cancel_all, loop)
        with self._state:  # only while the worker is inside the call: the exception lands in its code, or ours
            if self._in_job:
                _raise_in(self._thread, _Abandoned)

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
        """The destination's `teardown()`; then the loop's default executor lets its idle threads go."""
        try:
            return self.call("teardown", self.destination.teardown)
        finally:
            if self._stuck_in is None:
                self._end_executor()

    def _event(self, name: str, *args: Mapping[str, str]) -> Any:
        """A lifecycle event (harness.destination.LIFECYCLE_EVENTS): None without a call when the destination lacks
        it, as Conduit takes an unimplemented event."""
        method = getattr(self.destination, name, None)
        if not callable(method):
            return None
        return self.call(name, method, *(dict(a) for a in args))

    def lifecycle_on_created(self, config: Mapping[str, str] | None = None) -> Any:
        """The destination's `lifecycle_on_created(config)` (the expanded registration config by default)."""
        return self._event("lifecycle_on_created", self.config if config is None else config)

    def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str] | None = None) -> Any:
        """The destination's `lifecycle_on_updated(before, after)` (`after`: the expanded config by default)."""
        return self._event("lifecycle_on_updated", before, self.config if after is None else after)

    def lifecycle_on_deleted(self, config: Mapping[str, str] | None = None) -> Any:
        """The destination's `lifecycle_on_deleted(config)` (the expanded registration config by default)."""
        return self._event("lifecycle_on_deleted", self.config if config is None else config)

    def write_and_ack(self, records: Sequence[Record]) -> BatchResult:
        """Writes a batch and acks the positions it reports written, as a pipeline does, in one step."""
        progress = [0]
        result: BatchResult = self._run(lambda: "write" if progress[0] == 0 else "ack",
                                        lambda: self._write_then_ack(records, progress), progress)
        return result

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
        if not self._closed:
            self._closed = True
            if self._stuck_in is None and self._loop is not None and not self._loop.is_closed():
                try:
                    self._run(lambda: "close", lambda: self._loop and self._loop.run_until_complete(_cancel_tasks()),
                              None)
                except Exception:
                    pass  # a task that ignores cancellation
            self._job = None  # a stuck call that returns later then ends the thread too
            self._posted.release()
            self._thread.join(timeout=self.timeout if self._stuck_in is None else 0.05)
        if callable(getattr(self.destination, "close", None)):
            self.destination.close()  # stops a connector process
        for path in self._tmp_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tmp_dirs.clear()

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
