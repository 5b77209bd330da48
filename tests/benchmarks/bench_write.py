"""Write throughput of the reference file destination: through the Driver, called directly, and a plain loop."""

# Run by hand; pytest does not collect it (the name does not match test_*.py):
#
#     python tests/benchmarks/bench_write.py [--records 20000] [--size 1024] [--batch 100] [--rounds 5] [--dir D]
#
# Each round measures the three ways once, in a rotating order, each into a fresh temporary directory
# (sync=false, all keys distinct). Only the write loop is timed; building records, configure, open,
# teardown and removing the directory are not. The table shows the median records/second over rounds.
# The figures measure the harness's and the reference's own cost best on a RAM filesystem (--dir /dev/shm);
# on a slow or shared disk the file system's variance can swamp them (the script warns when it does).

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from harness import Change, Driver, Operation, RawData, Record
from reference import FileDestination, registration

Batches = list[list[Record]]

_PLAIN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def make_batches(count: int, size: int, batch: int) -> Batches:
    """`count` records with distinct keys and `size`-byte raw payloads, in batches of `batch`."""
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    records = [
        Record(
            position=b"%d" % i,
            operation=Operation.create,
            key=RawData(b"key-%08d" % i),
            payload=Change(after=RawData(payload)),
        )
        for i in range(count)
    ]
    return [records[i : i + batch] for i in range(0, count, batch)]


def run_driver(batches: Batches) -> float:
    """Seconds for write_and_ack of every batch through harness.Driver and new_destination()."""
    with Driver(registration) as driver:  # "{tmp}/out": a fresh temp dir, removed on close
        driver.configure()
        driver.open()
        start = time.perf_counter()
        for batch in batches:
            result = driver.write_and_ack(batch)
            if result.error is not None or result.written != len(batch):
                raise RuntimeError(f"driver write failed: {result}")
        elapsed = time.perf_counter() - start
        driver.teardown()
        check(driver.config["directory"], batches)
    return elapsed


def run_direct(batches: Batches) -> float:
    """Seconds for FileDestination.write of every batch, called directly."""
    tmp = tempfile.mkdtemp(prefix="bench-direct-")
    try:
        directory = os.path.join(tmp, "out")
        destination = FileDestination()
        destination.configure({"directory": directory})
        destination.open()
        start = time.perf_counter()
        for batch in batches:
            if destination.write(batch) != len(batch):
                raise RuntimeError("direct write returned a short count")
        elapsed = time.perf_counter() - start
        destination.teardown()
        check(directory, batches)
        return elapsed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_plain(batches: Batches) -> float:
    """Seconds for a plain loop doing the same atomic write (temp file O_EXCL, write, close, rename)."""
    tmp = tempfile.mkdtemp(prefix="bench-plain-")
    try:
        directory = os.path.join(tmp, "out")
        os.makedirs(directory, mode=0o755)
        base = os.fsencode(directory) + b"/"
        temp = base + b".tmp-"
        n = 0
        start = time.perf_counter()
        for batch in batches:
            for record in batch:
                n += 1
                tmp_path = temp + b"%d" % n
                fd = os.open(tmp_path, _PLAIN_FLAGS, 0o644)
                os.write(fd, record.payload.after.raw)
                os.close(fd)
                os.rename(tmp_path, base + record.key.raw)
        elapsed = time.perf_counter() - start
        check(directory, batches)
        return elapsed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(directory: str, batches: Batches) -> None:
    """Fails unless the directory holds exactly one file per record (so every way did the full job)."""
    names = os.listdir(directory)
    expected = sum(len(b) for b in batches)
    if len(names) != expected:
        raise RuntimeError(f"{directory}: {len(names)} files, expected {expected}")


def settle() -> None:
    """Flushes dirty pages left by earlier runs and collects garbage, so no run pays for another's."""
    os.sync()
    gc.collect()


def measure(ways: dict[str, Callable[[Batches], float]], batches: Batches, rounds: int) -> dict[str, list[float]]:
    """Records/second of each way per round; the order rotates each round."""
    total = sum(len(b) for b in batches)
    names = list(ways)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            settle()
            rates[name].append(total / ways[name](batches))
        print(f"round {r + 1}: " + ", ".join(f"{n} {rates[n][-1]:,.0f}/s" for n in names), file=sys.stderr)
    return rates


def machine() -> str:
    """A one-line description of where the figures were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    fs = ""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split() for line in f]
        tmp = os.path.realpath(tempfile.gettempdir())
        under = [m for m in mounts if tmp == m[1] or tmp.startswith(m[1].rstrip("/") + "/")]
        best = max(under, key=lambda m: len(m[1]))
        fs = f", {tempfile.gettempdir()} on {best[2]} ({best[0]})"
    except (OSError, ValueError):
        pass
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}{fs}")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints the table and the two ratios against their targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024, help="payload bytes per record")
    parser.add_argument("--batch", type=int, default=100, help="records per write call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", help="where the temporary directories go (default: the system temp dir)")
    args = parser.parse_args(argv)
    if args.dir:
        tempfile.tempdir = args.dir  # the Driver's "{tmp}" comes from tempfile.mkdtemp too

    load_before = os.getloadavg()[0]
    batches = make_batches(args.records, args.size, args.batch)
    ways = {"driver": run_driver, "direct": run_direct, "plain": run_plain}
    run_plain(batches[:5])  # warm up imports and the page cache for the temp filesystem
    rates = measure(ways, batches, args.rounds)
    median = {name: statistics.median(values) for name, values in rates.items()}

    print(f"{args.records} records of {args.size} B in batches of {args.batch}, sync=false, "
          f"median of {args.rounds} rounds")
    print(machine())
    print(f"1-minute load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'way':<8} {'median rec/s':>13} {'min':>10} {'max':>10}")
    labels = {"driver": "Driver(reference.registration).write_and_ack", "direct": "FileDestination.write",
              "plain": "plain os.open/write/close/rename loop"}
    for name in ways:
        print(f"{name:<8} {median[name]:>13,.0f} {min(rates[name]):>10,.0f} {max(rates[name]):>10,.0f}  {labels[name]}")
    noisy = [name for name in ways if max(rates[name]) > 1.25 * min(rates[name])]
    if noisy:
        print(f"warning: {', '.join(noisy)} varied by more than 25% between rounds; the ratios are unreliable "
              f"(other load, or a slow file system: try --dir /dev/shm and more --rounds)")
    ratios = [("driver/direct", median["driver"] / median["direct"], 0.95),
              ("reference/plain", median["direct"] / median["plain"], 0.90)]
    missed = False
    for label, value, target in ratios:
        ok = value >= target
        missed |= not ok
        print(f"{label:<16} {value:.3f}  (target >= {target:.2f}: {'met' if ok else 'MISSED'})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
