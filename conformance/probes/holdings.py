"""What a destination holds: open file descriptors (real, fake-filesystem and the connector process') and threads (its
own, and the connector process' OS threads: of a Go connector, whose goroutines are not visible from outside the
process, they are not compared, and the verdict says so)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from conformance.plugin._hypothesis_compat import final_replay
from conformance.probes.tree_watch import watch_fds
from harness import Driver, Registration

if TYPE_CHECKING:
    from conformance.probes.faults import FaultInjector

__all__ = ["Holdings", "PROC_FDS", "GOROUTINES_UNSEEN", "connector_fds", "connector_threads", "describe_fd",
           "open_fds", "Noting", "SessionView"]


class Noting(Protocol):
    """What Holdings notes its findings on (a Subject): read here as a protocol, so holdings imports no session."""

    leaked: bool

    @property
    def clause_id(self) -> str: ...

    @property
    def unchecked(self) -> set[str]: ...

    @property
    def registration(self) -> Registration: ...


class SessionView(Protocol):
    """What Holdings reads of a session (conformance.execute.session.Session): its driver and its subject."""

    @property
    def driver(self) -> Driver | None: ...

    @property
    def subject(self) -> Noting: ...


# Read once, at import, outside any fake filesystem.
PROC_FDS = os.path.isdir("/proc/self/fd")


def open_fds() -> set[int]:
    """The process' open file descriptors (the one listdir used is closed again, so fstat drops it)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue
        fds.add(int(name))
    return fds


def describe_fd(fd: int) -> str:
    """`fd -> target` as /proc shows it, or just the number."""
    try:
        return f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return str(fd)


def connector_fds(s: SessionView) -> dict[int, str] | None:
    """The connector process' descriptors, for destinations that run in a process of their own."""
    probe = getattr(getattr(s.driver, "destination", None), "process_fds", None)
    return probe() if callable(probe) else None


def connector_threads(s: SessionView) -> dict[int, tuple[str, int]] | None:
    """The connector process' OS threads (tid -> (name, context switches)), for destinations in a process of
    their own."""
    probe = getattr(getattr(s.driver, "destination", None), "process_threads", None)
    return probe() if callable(probe) else None


def _connector_is_go(s: SessionView) -> bool:
    probe = getattr(getattr(s.driver, "destination", None), "process_is_go", None)
    return bool(probe()) if callable(probe) else False


# The "partly" notes of teardown.releases for a connector process: what comparing its OS threads cannot see.
GOROUTINES_UNSEEN = ("goroutines are not visible from outside the process (the connector runs Go, whose runtime "
                     "keeps every OS thread it starts: its threads were not compared)")
_IDLE_THREADS = ("OS threads the connector process started stay after teardown, asleep (a runtime's pool, or a thread "
                 "blocked for good: the two are not told apart from outside the process)")

_IDLE_SEEN: set[int] = set()  # registrations (by id) whose connector process kept idle threads after a teardown


def _fake_open_files(fake_fs: Any) -> dict[int, str]:
    """Descriptors open in a pyfakefs filesystem, with their paths."""
    held = {}
    for fd, handles in enumerate(getattr(fake_fs, "open_files", None) or []):
        if handles:
            held[fd] = getattr(handles[0], "file_path", "?")
    return held


class Holdings:
    """A baseline of what the process holds, taken before the session starts (and the connector's, before
    configure), and the comparison after teardown."""

    def __init__(self, faults: FaultInjector | None = None) -> None:
        self.faults = faults
        fake_fs = self.fake_fs = faults.fs if faults is not None else None
        with self._real_filesystem():
            self.fds = open_fds()
        self.threads = set(threading.enumerate())
        self.fake = _fake_open_files(fake_fs) if fake_fs is not None else {}
        self.connector: dict[int, str] | None = None
        self.connector_threads: dict[int, tuple[str, int]] | None = None
        self.connector_go = False

    def watch(self, s: SessionView) -> Holdings:
        """Takes the connector process' baseline, once the session has started it (before configure)."""
        self.s = s
        self.connector = connector_fds(s)
        self.connector_threads = connector_threads(s)
        self.connector_go = self.connector is not None and _connector_is_go(s)
        return self

    @contextmanager
    def _real_filesystem(self) -> Iterator[None]:
        """/proc as it is, with pyfakefs paused while it is read."""
        if self.faults is None:
            yield
            return
        with self.faults.real_disk():
            yield

    @contextmanager
    def excusing(self) -> Iterator[None]:
        """Adds what is opened meanwhile (by the registration's read_back, say) to the baseline."""
        with self._real_filesystem():
            fds = open_fds() if PROC_FDS else set()
        threads = set(threading.enumerate())
        try:
            yield
        finally:
            with self._real_filesystem():
                if PROC_FDS:
                    self.fds |= open_fds() - fds
            self.threads |= set(threading.enumerate()) - threads

    def leaks(self, grace: float = 1.0) -> list[str]:
        """What is held after teardown that was not before; sockets and threads get `grace` seconds (network
        libraries close sockets on their own I/O thread, a moment after teardown returns). Once a check has found a
        leak, the examples that shrink it get a tenth of that (the final replay of the minimal one, all of it)."""
        if self.s.subject.leaked and not _final_replay():
            grace /= 10
        with self._real_filesystem():
            problems = self._leaks(grace)
        if problems:
            self.s.subject.leaked = True
        return problems

    def _leaks(self, grace: float) -> list[str]:
        assert self.s.driver is not None
        problems: list[str] = []
        started = [t for t in threading.enumerate() if t not in self.threads and t is not self.s.driver.thread]
        for thread in started:
            thread.join(timeout=grace / len(started))  # a thread told to stop may take a moment to end
        running = [t.name for t in started if t.is_alive()]
        if running:
            problems.append(f"threads started by the destination still run after teardown(): {running}")
        held_before = self.fds | self.s.driver.own_fds() | watch_fds()  # the driver's and the tree watches' own
        deadline = time.monotonic() + grace
        while True:
            leaked = sorted(open_fds() - held_before)
            if time.monotonic() > deadline or not any("-> socket:" in describe_fd(fd) for fd in leaked):
                break
            time.sleep(0.02)
        if leaked:
            problems.append("file descriptors opened by the destination are still open after teardown(): "
                            + ", ".join(describe_fd(fd) for fd in leaked))
        if self.fake_fs is not None:
            fake = {fd: path for fd, path in _fake_open_files(self.fake_fs).items() if self.fake.get(fd) != path}
            if fake:
                problems.append("files opened by the destination are still open after teardown(): "
                                + ", ".join(f"{fd} -> {p}" for fd, p in sorted(fake.items())))
        if self.connector is not None:
            problems.extend(self._connector_leaks(grace))
        return problems

    def _connector_leaks(self, grace: float) -> list[str]:
        """Descriptors the connector process holds now and did not before configure."""
        assert self.connector is not None
        deadline = time.monotonic() + grace
        while True:
            after = connector_fds(self.s)
            if after is None:
                self.s.subject.unchecked.add("the connector process was gone after teardown, so its descriptors "
                                             "were not compared")
                return []
            leaked = {fd: target for fd, target in after.items() if self.connector.get(fd) != target}
            if not leaked or time.monotonic() > deadline or not any("socket:" in t for t in leaked.values()):
                break
            time.sleep(0.02)
        problems = [] if not leaked else [
            "the connector process holds descriptors after teardown() that it did not hold before configure(): "
            + ", ".join(f"{fd} -> {target}" for fd, target in sorted(leaked.items()))]
        return problems + self._connector_thread_leaks(grace)

    def _connector_thread_leaks(self, grace: float) -> list[str]:
        """OS threads of the connector process that were not there before configure and still wake up after
        teardown (a thread that ends within `grace` is not held; one asleep for good is noted, not charged)."""
        # Every check's sessions are judged on releases; the notes belong to teardown.releases' own verdict.
        own = self.s.subject.clause_id == "teardown.releases"
        if self.connector_go:
            if own:
                self.s.subject.unchecked.add(GOROUTINES_UNSEEN)
            return []
        if self.connector_threads is None:
            return []
        registration = id(self.s.subject.registration)
        if registration in _IDLE_SEEN:
            grace /= 10  # seen before: later sessions need not watch as long
        # Judged over the second half of the window: in the first, a thread that served teardown() may still be
        # on its way back to sleep.
        settled = time.monotonic() + grace / 2
        deadline = time.monotonic() + grace
        first: dict[int, tuple[str, int]] | None = None
        while True:
            now = connector_threads(self.s)
            if now is None:
                return []
            new = {tid: entry for tid, entry in now.items() if tid not in self.connector_threads}
            if not new:
                return []
            if first is None and time.monotonic() > settled:
                first = now
            if time.monotonic() > deadline and first is not None and now is not first:  # a sample after it
                break
            time.sleep(0.02)
        awake = {tid: name for tid, (name, switches) in new.items() if tid in first and switches > first[tid][1]}
        if new and not awake:
            _IDLE_SEEN.add(registration)
            if own:
                self.s.subject.unchecked.add(_IDLE_THREADS)
        if not awake:
            return []
        return ["the connector process runs OS threads after teardown() that it did not run before configure(), "
                "and they still wake up: " + ", ".join(f"{tid} ({name})" for tid, name in sorted(awake.items()))]


def _final_replay() -> bool:
    """Whether hypothesis is replaying the minimal failing example it will report."""
    try:
        return final_replay()
    except Exception:  # outside hypothesis
        return False
