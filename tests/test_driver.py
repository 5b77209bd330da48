"""The Driver: one thread and event loop per destination, `{tmp}`, per-call limits, aborts and acks."""

import asyncio
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from harness import (
    BatchResult,
    CallTimeout,
    ConfigError,
    DestinationAborted,
    Driver,
    Parameter,
    Record,
    Registration,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
)
from harness.driver import expand_tmp
from tests.batches import records


class SyncDest:
    """A sync destination that notes each call and the thread it ran on; `fail_at` makes write stop early."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threads: set[threading.Thread] = {threading.current_thread()}
        self.acked: list[bytes] = []
        self.written: list[Record] = []
        self.fail_at: int | None = None
        self.config: dict[str, str] | None = None

    def _note(self, name: str) -> None:
        self.calls.append(name)
        self.threads.add(threading.current_thread())

    def parameters(self) -> Mapping[str, Parameter]:
        self._note("parameters")
        return {}

    def configure(self, config: Mapping[str, str]) -> None:
        self._note("configure")
        self.config = dict(config)

    def open(self) -> None:
        self._note("open")

    def write(self, batch: Sequence[Record]) -> int:
        self._note("write")
        if self.fail_at is not None and self.fail_at < len(batch):
            self.written.extend(batch[: self.fail_at])
            raise WriteError("refused", written=self.fail_at)
        self.written.extend(batch)
        return len(batch)

    def ack(self, position: bytes) -> None:
        self._note("ack")
        self.acked.append(position)

    def teardown(self) -> None:
        self._note("teardown")


class AsyncDest:
    """An async destination whose open() makes a Lock, a Queue and a consumer task that write() relies on."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threads: set[threading.Thread] = {threading.current_thread()}
        self.loops: set[asyncio.AbstractEventLoop] = set()
        self.written: list[Record] = []
        self.acked: list[bytes] = []

    def _note(self, name: str) -> None:
        self.calls.append(name)
        self.threads.add(threading.current_thread())
        self.loops.add(asyncio.get_running_loop())

    async def parameters(self) -> Mapping[str, Parameter]:
        self._note("parameters")
        return {}

    async def configure(self, config: Mapping[str, str]) -> None:
        self._note("configure")

    async def open(self) -> None:
        self._note("open")
        self.lock = asyncio.Lock()
        self.queue: asyncio.Queue[Record] = asyncio.Queue()
        self.consumer = asyncio.get_running_loop().create_task(self._consume())

    async def _consume(self) -> None:
        while True:
            record = await self.queue.get()
            self.written.append(record)
            self.queue.task_done()

    async def write(self, batch: Sequence[Record]) -> int:
        self._note("write")
        async with self.lock:
            for record in batch:
                await self.queue.put(record)
            await self.queue.join()  # needs the consumer task made in open() to still run on this loop
        return len(batch)

    async def ack(self, position: bytes) -> None:
        self._note("ack")
        async with self.lock:
            self.acked.append(position)

    async def teardown(self) -> None:
        self._note("teardown")
        consumer = getattr(self, "consumer", None)
        if consumer is not None:
            consumer.cancel()


@pytest.fixture
def drivers() -> Iterator[list[Driver]]:
    """Drivers made by a test, closed after it."""
    made: list[Driver] = []
    yield made
    for driver in made:
        driver.close()


# --- {tmp} ------------------------------------------------------------------------------------


def test_tmp_is_a_fresh_directory_per_driver_removed_by_close() -> None:
    """Each Driver replaces every `{tmp}` with one new empty directory of its own; close() removes it."""
    reg = Registration(factory=SyncDest, config={"directory": "{tmp}/out", "again": "{tmp}", "plain": "x"})
    first, second = Driver(reg), Driver(reg)
    try:
        tmp = first.config["again"]
        assert first.config == {"directory": os.path.join(tmp, "out"), "again": tmp, "plain": "x"}
        assert os.path.isdir(tmp) and os.listdir(tmp) == []
        assert second.config["again"] != tmp and os.path.isdir(second.config["again"])
        assert dict(reg.config)["directory"] == "{tmp}/out"  # the registration is unchanged
    finally:
        first.close()
    assert not os.path.exists(tmp)
    assert os.path.isdir(second.config["again"])
    second.close()
    assert not os.path.exists(second.config["again"])


def test_tmp_directory_is_removed_with_contents() -> None:
    """close() removes what the destination wrote under `{tmp}` too."""
    reg = Registration(factory=SyncDest, config={"directory": "{tmp}/out"})
    with Driver(reg) as driver:
        out = driver.config["directory"]
        os.makedirs(out)
        with open(os.path.join(out, "f"), "w") as f:
            f.write("data")
    assert not os.path.exists(os.path.dirname(out))


def test_expand_tmp_makes_no_directory_when_unused() -> None:
    """Without `{tmp}` in any value no temporary directory is made."""
    made: list[str] = []
    assert expand_tmp({"a": "b"}, lambda: made.append("x") or "/t") == {"a": "b"}
    assert made == []
    assert expand_tmp({"a": "{tmp}/1", "b": "{tmp}/2"}, lambda: made.append("x") or "/t") == {"a": "/t/1", "b": "/t/2"}
    assert made == ["x"]


def test_configure_gets_the_expanded_config(drivers: list[Driver]) -> None:
    """configure() receives the config with `{tmp}` expanded, or the config passed in."""
    driver = Driver(Registration(factory=SyncDest, config={"d": "{tmp}"}))
    drivers.append(driver)
    driver.configure()
    assert driver.destination.config == {"d": driver.config["d"]}
    driver.configure({"other": "1"})
    assert driver.destination.config == {"other": "1"}


# --- sync and async, one thread, one loop -----------------------------------------------------


@pytest.mark.parametrize("factory", [SyncDest, AsyncDest])
def test_run_drives_a_whole_pipeline(factory: type, drivers: list[Driver]) -> None:
    """run() configures, opens, writes and acks every batch and tears down, for sync and async destinations."""
    driver = Driver(Registration(factory=factory), timeout=5)
    drivers.append(driver)
    batches = [records(3), [], records(2, start=3)]
    assert driver.run(batches) == [BatchResult(3), BatchResult(0), BatchResult(2)]
    dest = driver.destination
    assert dest.written == records(5)
    assert dest.acked == [b"p0", b"p1", b"p2", b"p3", b"p4"]
    assert dest.calls[:2] == ["configure", "open"] and dest.calls[-1] == "teardown"


@pytest.mark.parametrize("factory", [SyncDest, AsyncDest])
def test_every_call_runs_on_the_driver_thread(factory: type, drivers: list[Driver]) -> None:
    """The factory and every method run on driver.thread, a worker of the driver's own, never the caller's."""
    driver = Driver(Registration(factory=factory), timeout=5)
    drivers.append(driver)
    driver.parameters()
    driver.run([records(2), records(2, start=2)])
    assert driver.thread is not threading.current_thread()
    assert driver.destination.threads == {driver.thread}


def test_async_state_made_in_open_works_across_calls(drivers: list[Driver]) -> None:
    """A Lock, Queue and task made in open() are usable in later write/ack calls: one loop for all calls."""
    driver = Driver(Registration(factory=AsyncDest), timeout=5)
    drivers.append(driver)
    driver.configure()
    driver.open()
    for start in (0, 2, 4):
        assert driver.write(records(2, start=start)) == 2
        driver.ack_all([b"p%d" % start])
    driver.teardown()
    dest = driver.destination
    assert dest.written == records(6)
    assert len(dest.loops) == 1


def test_async_destination_under_middleware(drivers: list[Driver]) -> None:
    """An async destination wrapped in the default middleware is driven the same way, batching included."""
    made: list[AsyncDest] = []

    def factory() -> Any:
        made.append(AsyncDest())
        return destination_with_middleware(made[-1], *default_destination_middleware())

    driver = Driver(Registration(factory=factory, config={"sdk.batch.size": "2"}), timeout=5)
    drivers.append(driver)
    [inner] = made
    assert driver.run([records(5)]) == [BatchResult(5)]
    assert inner.written == records(5)
    assert inner.calls.count("write") == 3
    assert inner.threads == {driver.thread} and len(inner.loops) == 1


# --- acks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [0, 2, 4])
def test_write_and_ack_acks_exactly_the_written_records(fail_at: int, drivers: list[Driver]) -> None:
    """After a WriteError only records[:written] are acked, in order; the next batch is acked in full."""
    driver = Driver(Registration(factory=SyncDest))
    drivers.append(driver)
    driver.configure()
    driver.open()
    dest = driver.destination
    dest.fail_at = fail_at
    result = driver.write_and_ack(records(5))
    assert result.written == fail_at
    assert isinstance(result.error, WriteError) and result.error.written == fail_at
    assert dest.acked == [b"p%d" % i for i in range(fail_at)]
    dest.fail_at = None
    assert driver.write_and_ack(records(2, start=10)) == BatchResult(2)
    assert dest.acked == [b"p%d" % i for i in range(fail_at)] + [b"p10", b"p11"]


def test_write_and_ack_rejects_a_bad_count(drivers: list[Driver]) -> None:
    """A write result that is not a count in range is an error, and nothing is acked."""

    class Liar(SyncDest):
        def write(self, batch: Sequence[Record]) -> Any:
            return self.result

    for bad in (None, True, -1, 4, "3"):
        driver = Driver(Registration(factory=Liar))
        drivers.append(driver)
        driver.destination.result = bad
        with pytest.raises(TypeError, match="expected an int count"):
            driver.write_and_ack(records(3))
        assert driver.destination.acked == []


def test_ack_all_limit_applies_per_ack(drivers: list[Driver]) -> None:
    """Many acks that each return in time succeed even when together they take longer than the limit."""

    class SlowAcks(SyncDest):
        def ack(self, position: bytes) -> None:
            time.sleep(0.05)
            super().ack(position)

    driver = Driver(Registration(factory=SlowAcks), timeout=0.3)
    drivers.append(driver)
    positions = [b"p%d" % i for i in range(10)]
    driver.ack_all(positions)
    assert driver.destination.acked == positions


# --- timeouts and aborts ----------------------------------------------------------------------


def test_hanging_sync_call_times_out_and_later_calls_fail_fast() -> None:
    """A write that never returns raises CallTimeout; later calls raise at once naming the stuck write."""
    gate = threading.Event()

    class Hangs(SyncDest):
        def write(self, batch: Sequence[Record]) -> int:
            gate.wait(30)
            return super().write(batch)

    driver = Driver(Registration(factory=Hangs), timeout=0.2)
    try:
        driver.configure()
        driver.open()
        with pytest.raises(CallTimeout) as info:
            driver.write(records(1))
        assert info.value.method == "write" and info.value.earlier is None
        assert "write() did not return within 0.2s" in str(info.value)
        for later in (lambda: driver.ack(b"p0"), driver.teardown, driver.parameters):
            with pytest.raises(CallTimeout) as info:
                later()
            assert info.value.earlier == "write"
            assert "stuck in an earlier write() call" in str(info.value)
        gate.set()
        with pytest.raises(CallTimeout):
            driver.teardown()
        assert "teardown" not in driver.destination.calls and "ack" not in driver.destination.calls
    finally:
        gate.set()
        driver.close()
    driver.thread.join(5)  # once the stuck call returns, the stop that close() queued ends the thread
    assert not driver.thread.is_alive()


def test_hanging_async_call_times_out() -> None:
    """An async open that awaits forever raises CallTimeout; the next call names it."""

    class HangsAsync(AsyncDest):
        async def open(self) -> None:
            await asyncio.Event().wait()

    driver = Driver(Registration(factory=HangsAsync), timeout=0.2)
    try:
        driver.configure()
        with pytest.raises(CallTimeout) as info:
            driver.open()
        assert info.value.method == "open"
        with pytest.raises(CallTimeout, match=r"earlier open\(\)"):
            driver.teardown()
    finally:
        driver.close()
    driver.thread.join(5)  # the awaiting coroutine returns nothing, but close() still ends the thread
    assert not driver.thread.is_alive()


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), SystemExit("bye")])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_system_exit_and_keyboard_interrupt_become_destination_aborted(
    exc: BaseException, kind: str, drivers: list[Driver]
) -> None:
    """SystemExit/KeyboardInterrupt in a destination call become DestinationAborted; the driver keeps working."""

    class Aborts(SyncDest):
        def open(self) -> None:
            raise exc

    class AbortsAsync(AsyncDest):
        async def open(self) -> None:
            raise exc

    driver = Driver(Registration(factory=Aborts if kind == "sync" else AbortsAsync), timeout=5)
    drivers.append(driver)
    driver.configure()
    with pytest.raises(DestinationAborted, match=type(exc).__name__) as info:
        driver.open()
    assert info.value.__cause__ is exc
    driver.teardown()
    assert driver.destination.calls[-1] == "teardown"
    assert driver.thread.is_alive()


def test_ordinary_exceptions_pass_through_unchanged(drivers: list[Driver]) -> None:
    """An ordinary exception from the destination reaches the caller as itself."""

    class Raises(SyncDest):
        def open(self) -> None:
            raise OSError(13, "denied", "/x")

    driver = Driver(Registration(factory=Raises))
    drivers.append(driver)
    with pytest.raises(OSError, match="denied"):
        driver.open()


def test_run_tears_down_when_configure_fails(drivers: list[Driver]) -> None:
    """run() calls teardown even when configure raises, and the error reaches the caller."""

    class BadConfig(SyncDest):
        def configure(self, config: Mapping[str, str]) -> None:
            super().configure(config)
            raise ConfigError("no", keys=["x"])

    driver = Driver(Registration(factory=BadConfig))
    drivers.append(driver)
    with pytest.raises(ConfigError):
        driver.run([records(1)])
    assert driver.destination.calls == ["configure", "teardown"]


def test_close_stops_the_thread() -> None:
    """close() ends the driver's worker thread when no call is stuck."""
    driver = Driver(Registration(factory=SyncDest))
    driver.run([records(1)])
    driver.close()
    assert not driver.thread.is_alive()


def test_close_cancels_tasks_left_by_an_async_destination() -> None:
    """close() cancels tasks the destination left running (no teardown) and ends the worker thread."""
    driver = Driver(Registration(factory=AsyncDest), timeout=5)
    driver.configure()
    driver.open()
    consumer = driver.destination.consumer
    assert not consumer.done()
    driver.close()
    assert consumer.cancelled()
    assert not driver.thread.is_alive()


# --- no signal, no timer: the caller's thread is never interrupted ---------------------------------


def test_the_driver_sets_no_signal_handler_and_no_timer() -> None:
    """Neither a call, nor a hang, nor close touches SIGALRM, SIGINT or the interval timer: nothing can raise in the
    caller's code (pytest's, hypothesis', the suite's) between or during destination calls."""
    import signal

    gate = threading.Event()

    class Hangs(SyncDest):
        def write(self, batch: Sequence[Record]) -> int:
            gate.wait(30)
            return super().write(batch)

    before = (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT))
    driver = Driver(Registration(factory=Hangs), timeout=0.2)
    try:
        driver.configure()
        driver.open()
        assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before
        with pytest.raises(CallTimeout):
            driver.write(records(1))
        assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        gate.set()
        driver.close()
    assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == before


def test_drivers_closed_out_of_order_still_time_out() -> None:
    """Closing an older driver first never leaves a newer one without its limit."""
    gate = threading.Event()

    class Hangs(SyncDest):
        def write(self, batch: Sequence[Record]) -> int:
            gate.wait(30)
            return super().write(batch)

    first = Driver(Registration(factory=SyncDest), timeout=5)
    second = Driver(Registration(factory=Hangs), timeout=0.2)
    try:
        first.run([records(1)])
        second.configure()
        second.open()
        first.close()
        with pytest.raises(CallTimeout):
            second.write(records(1))
    finally:
        gate.set()
        first.close()
        second.close()


def test_a_busy_loop_left_by_a_timeout_is_stopped() -> None:
    """A call that spins in Python code is stopped on its own thread once the driver gives up on it (CPython), so
    abandoned calls do not keep eating the CPU; close() twice is harmless."""
    spinning = threading.Event()

    class Spins(SyncDest):
        def write(self, batch: Sequence[Record]) -> int:
            spinning.set()
            while True:
                pass

    driver = Driver(Registration(factory=Spins), timeout=0.2)
    try:
        driver.configure()
        driver.open()
        with pytest.raises(CallTimeout):
            driver.write(records(1))
        assert spinning.is_set()
    finally:
        driver.close()
        driver.close()
    driver.thread.join(5)
    assert not driver.thread.is_alive()


def test_a_call_presumed_to_hang_is_not_made_and_reads_like_a_timeout() -> None:
    """presume_hung() raises the CallTimeout a call that timed out raises, without calling the destination; later
    calls fail fast naming it, and close() still ends the idle worker thread."""
    driver = Driver(Registration(factory=SyncDest), timeout=5)
    try:
        driver.configure()
        with pytest.raises(CallTimeout) as info:
            driver.presume_hung("write")
        assert str(info.value) == "write() did not return within 5s" and info.value.earlier is None
        with pytest.raises(CallTimeout, match=r"earlier write\(\)"):
            driver.teardown()
        assert driver.destination.calls == ["configure"]
    finally:
        driver.close()
    driver.thread.join(5)
    assert not driver.thread.is_alive()


def test_user_ctrl_c_during_a_call_stops_the_run() -> None:
    """A SIGINT arriving during a call is the user's Ctrl-C: KeyboardInterrupt, not DestinationAborted."""
    import os
    import signal

    class Interrupted(SyncDest):
        def open(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)

    # The user's Ctrl-C is Python's default SIGINT handler; an earlier test in this worker process may have left
    # another one in place (seen only under xdist, in the full run).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    driver = Driver(Registration(factory=Interrupted), timeout=5)
    try:
        driver.configure()
        with pytest.raises(KeyboardInterrupt):
            driver.open()
    finally:
        driver.close()
        signal.signal(signal.SIGINT, previous)


def test_driver_made_off_the_main_thread_works_the_same() -> None:
    """A driver made on another thread runs calls on its own worker thread too."""
    made: list[Driver] = []
    maker = threading.Thread(target=lambda: made.append(Driver(Registration(factory=SyncDest), timeout=5)))
    maker.start()
    maker.join()
    driver = made[0]
    try:
        assert driver.run([records(2)]) == [BatchResult(2)]
        assert driver.destination.threads == {driver.thread}
    finally:
        driver.close()
