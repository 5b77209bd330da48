"""What the invariants watched in every session cost per example (issue 18): run by hand, never in the test run.

    python tests/benchmarks/bench_invariants.py [--rounds 9] [--sessions 200]

Each round opens `--sessions` sessions of the reference destination (configure, open, one write of 8 records,
teardown), once with every watcher on and once with each one switched off in turn, and prints the median cost per
session of each: confinement (audit hooks around every call, the watched environment tree), the tree watched with
inotify as files appear (part of confinement), releases (descriptor and thread baseline and comparison), keeping
data and no partial value (two read-backs around teardown). Then the cost of the inotify watch alone on a connector
process' two-directory tree (made, read after each of 5 calls and once more, closed).
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from unittest import mock

from conformance.execute.subject import Subject
from conformance.generate.strategies import numbered
from conformance.probes import watch
from conformance.probes.tree_watch import TreeWatch
from harness import Change, RawData, Record
from harness.process_env import make_tree
from reference import registration

__all__ = ["main"]

BATCH = numbered([Record(key=RawData(b"k%d" % i), payload=Change(after=RawData(b"v" * 64))) for i in range(8)], 0)


def _sessions(count: int) -> float:
    """Seconds per session of `count` sessions of the reference."""
    subject = Subject(registration, "write.round-trip", 10.0)
    started = time.perf_counter()
    for _ in range(count):
        with subject.session() as s:
            s.open_ready()
            s.write_all(BATCH)
            s.ok("teardown")
    return (time.perf_counter() - started) / count


def _off(name: str) -> Callable[[], ExitStack]:
    """A context switching one watcher off."""
    def stack() -> ExitStack:
        patches = ExitStack()
        if name == "confinement":
            patches.enter_context(mock.patch.object(watch.SessionWatch, "begin", lambda self: None))
            patches.enter_context(mock.patch.object(watch.SessionWatch, "judge_call", lambda self, m: None))
        elif name == "tree watch":
            patches.enter_context(mock.patch.object(watch.SessionWatch, "_watch_tree", lambda self, root: None))
        elif name == "releases":
            patches.enter_context(mock.patch.object(watch, "PROC_FDS", False))
        elif name == "read-backs":
            patches.enter_context(mock.patch.object(watch.SessionWatch, "before_teardown", lambda self: None))
        return patches
    return stack


def main() -> None:
    """Prints the median cost per session with every watcher, and what switching each off saves."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sessions", type=int, default=200)
    args = parser.parse_args()
    variants = {"all watchers": ExitStack, **{f"without {n}": _off(n) for n in ("confinement", "tree watch",
                                                                               "releases", "read-backs")}}
    results: dict[str, list[float]] = {name: [] for name in variants}
    _sessions(20)  # warm up: imports, the audit hook's installation
    for _ in range(args.rounds):
        for name, make in variants.items():
            with make():
                results[name].append(_sessions(args.sessions))
    base = statistics.median(results["all watchers"])
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:<24} {median * 1e3:8.3f} ms per session   ({(base - median) * 1e6:+8.1f} µs of it)")
    print(f"inotify on a process tree {_process_tree_watch(args.sessions) * 1e6:8.1f} µs of CPU per session")


def _process_tree_watch(count: int) -> float:
    """CPU seconds per session of the inotify watch on an empty connector-process tree (tmp/, home/): made, read
    before and after each of 5 calls and once more, removed."""
    with tempfile.TemporaryDirectory() as root:
        make_tree(root)
        times = []
        for _ in range(5):
            started = time.process_time()  # CPU time, user and system: the load of other jobs does not count
            for _ in range(count):
                tree = TreeWatch(root)
                for method in ("configure", "open", "write", "write", "teardown"):
                    tree.take("between calls")
                    tree.take(f"{method}()")
                tree.take("after teardown()")
                tree.close()
            times.append((time.process_time() - started) / count)
    return statistics.median(times)


if __name__ == "__main__":
    main()
