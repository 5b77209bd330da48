"""What the FUSE fault filesystem costs per example, against pyfakefs (issue 21).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/bench_fuse.py [--rounds 3] [--examples 40] [--no-suite]

Two measurements, each round running both injectors back to back (alternating which goes first), so that a ratio is
taken within one round on a machine whose load drifts:

- per example, in this process: `--examples` times enter the injector, then the example's file work (make a
  directory, write 3 files of 4 KiB through a temporary file, fsync and rename each, remove one), a dry-run count
  and an injected EIO at the last write; the median example, with fake_filesystem() and with fuse_filesystem();
- per suite run (unless --no-suite): the fault clauses (fault.disk-full, fault.io-error, open.unwritable,
  write.recovers) on the JSON-lines example destination (pure Python: pyfakefs by default) with and without
  CONFORMANCE_FAULTS=fuse, and on the SQLite example (C I/O: FUSE), under the derandomized quick profile; wall time.

The first FUSE use in a process starts the server (and builds it if the cache has none): that is timed apart.
"""

import argparse
import errno
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["example", "example_times", "suite_once", "main"]

CLAUSES = ("fault.disk-full", "fault.io-error", "open.unwritable", "write.recovers")


def example(faults: Any, root: str) -> None:
    """One example's file work under an injector: a dry run counting calls, then an EIO at the last write."""
    directory = os.path.join(root, "out")
    os.makedirs(directory, exist_ok=True)

    def batch() -> None:
        for i in range(3):
            temp = os.path.join(directory, f".k{i}.tmp")
            fd = os.open(temp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                os.write(fd, bytes(4096))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, os.path.join(directory, f"k{i}"))
        os.unlink(os.path.join(directory, "k0"))

    faults.count()
    batch()
    writes = faults.calls["write"]
    faults.inject("write", errno.EIO, writes)
    try:
        batch()
    except OSError:
        pass
    faults.clear()


def example_times(make: Callable[[], AbstractContextManager[Any]], examples: int) -> list[float]:
    """Seconds per example (entering and leaving the injector included)."""
    times = []
    for _ in range(examples):
        start = time.perf_counter()
        with make() as faults:
            root = getattr(faults, "area", None) or tempfile.mkdtemp(prefix="bench-fuse-")
            example(faults, root)
        times.append(time.perf_counter() - start)
    return times


def suite_once(spec: str, env: dict[str, str]) -> float:
    """Wall seconds of the fault clauses on one destination in a fresh directory."""
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", f"--destination={spec}", "-p", "no:cacheprovider", "-q",
                        "--hypothesis-profile=conformance-quick", "-W", "ignore",
                        *(f"--conformance-clause={c}" for c in CLAUSES)],
                       cwd=directory, env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True,
                       check=False)
        return time.perf_counter() - start


def _alternate(round_: int, pair: list[tuple[str, Callable[[], Any]]]) -> Iterator[tuple[str, Any]]:
    for name, run in (pair if round_ % 2 == 0 else pair[::-1]):
        yield name, run()


def main() -> None:
    """Prints the per-example medians and the suite times, round by round."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--no-suite", action="store_true")
    args = parser.parse_args()

    from conformance.probes import fuse as fusefs
    from conformance.probes.faults import fake_filesystem

    start = time.perf_counter()
    reason = fusefs.unavailable()  # builds (unless cached) and mounts
    if reason is not None:
        sys.exit(f"FUSE unavailable: {reason}")
    print(f"first use (build if not cached, start, mount): {time.perf_counter() - start:.3f} s")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    for round_ in range(args.rounds):
        medians = dict(_alternate(round_, [
            ("pyfakefs", lambda: statistics.median(example_times(fake_filesystem, args.examples))),
            ("fuse", lambda: statistics.median(example_times(fusefs.fuse_filesystem, args.examples))),
        ]))
        print(f"round {round_ + 1}: per example, median: pyfakefs {medians['pyfakefs'] * 1000:.2f} ms, "
              f"FUSE {medians['fuse'] * 1000:.2f} ms (x{medians['fuse'] / medians['pyfakefs']:.1f})")
    fusefs.unmount_all()
    if args.no_suite:
        return
    for round_ in range(args.rounds):
        times = dict(_alternate(round_, [
            ("jsonl pyfakefs", lambda: suite_once("examples.jsonl_destination:registration", {})),
            ("jsonl FUSE", lambda: suite_once("examples.jsonl_destination:registration",
                                              {"CONFORMANCE_FAULTS": "fuse"})),
            ("sqlite FUSE", lambda: suite_once("examples.sqlite_destination:registration", {})),
        ]))
        print(f"round {round_ + 1}: fault clauses, wall: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
              + f"; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
