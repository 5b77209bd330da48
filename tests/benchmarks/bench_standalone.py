"""What a standalone connector costs per example and per suite run, with and without the warm spare (issue 11, item 4).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/bench_standalone.py [--rounds 3] [--examples 30] [--connectors fixed,fixed13,sdk]
                                                [--no-suite] [--profile conformance-dev] [--repo PATH]

Connectors: `fixed` is our fixed Go file destination on conduit-connector-sdk v0.12.0, `fixed13` the same on v0.13.3
(both built by tests/go_connectors.py), `sdk` the Python SDK file destination served standalone
(tests/conduit_sdk/serve_file.py). Two measurements, each round running both variants back to back (alternating
which goes first), so that a ratio is taken within one round on a machine whose load drifts:

- per example, in this process: `--examples` times factory, configure, open, one write of 3 records, teardown, close
  through `standalone_registration`, with `spare=True` and `spare=False`; the median example and the median
  factory call;
- per suite run (unless --no-suite): `python -m pytest --destination=SPEC` in a fresh directory, with
  CONFORMANCE_SPARE=1 and CONFORMANCE_SPARE=0; wall time, and from harness.conduit.spares.spare_stats() the
  processes started and the destinations served by a spare.

`--repo PATH` runs the suite part from another checkout (its harness and conformance first on PYTHONPATH), e.g. one
from before the spare (`git archive HEAD | tar -x -C /tmp/base`), where CONFORMANCE_SPARE changes nothing.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["CONNECTORS", "example_times", "suite_once", "main"]

# name -> (how to get the command, the suite's --destination spec)
CONNECTORS: dict[str, tuple[Callable[[], list[str]], str]] = {
    "fixed": (lambda: [_go("fixed")], "tests.conduit_connectors:go_fixed"),
    "fixed13": (lambda: [_go("fixed13")], "tests.conduit_v013:go_fixed13"),
    "sdk": (lambda: [sys.executable, str(REPO / "tests" / "conduit_sdk" / "serve_file.py")],
            "tests.conduit_connectors:sdk_file_standalone"),
}

# Loaded into the suite's pytest with -p: writes the spare counters where $BENCH_STATS says.
STATS_PLUGIN = '''
import json, os

def pytest_unconfigure(config):
    try:
        from harness.conduit.spares import spare_stats
    except ImportError:  # a checkout from before the spare
        return
    with open(os.environ["BENCH_STATS"], "w") as f:
        json.dump(vars(spare_stats()), f)
'''


def _go(name: str) -> str:
    from tests.go_connectors import build

    return str(build(name))


def example_times(argv: list[str], examples: int, spare: bool, work: Path) -> tuple[float, float]:
    """Median seconds of one example (factory to close) and of its factory call, over `examples` examples."""
    from harness import RawData, Record
    from harness.conduit.spares import discard_spares
    from harness.conduit.standalone import standalone_registration
    from harness.records import Change

    registration = standalone_registration(argv, spare=spare)
    batch = [Record(position=b"%d" % i, key=RawData(b"k%d" % i), payload=Change(after=RawData(b"v"))) for i in range(3)]
    whole, factory = [], []
    try:
        for number in range(examples):
            started = time.perf_counter()
            destination = registration.factory()
            made = time.perf_counter()
            try:
                destination.configure({"directory": str(work / f"out-{number}")})
                destination.open()
                destination.write(batch)
                destination.teardown()
            finally:
                destination.close()
            whole.append(time.perf_counter() - started)
            factory.append(made - started)
    finally:
        discard_spares()
    return statistics.median(whole), statistics.median(factory)


def suite_once(repo: Path, spec: str, spare: bool, profile: str) -> dict:
    """One suite run over `spec`: seconds, exit code, the spare counters (when the checkout has them)."""
    with tempfile.TemporaryDirectory(prefix="bench-standalone-") as work:
        Path(work, "_bench_stats.py").write_text(STATS_PLUGIN)
        stats = Path(work, "stats.json")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), work]), "BENCH_STATS": str(stats),
               "CONFORMANCE_SPARE": "1" if spare else "0"}
        env.pop("CI", None)
        env.pop("CONFORMANCE_DESTINATION", None)
        command = [sys.executable, "-m", "pytest", f"--destination={spec}", "-p", "no:cacheprovider", "-p",
                   "_bench_stats", "-q", "-W", "ignore", f"--hypothesis-profile={profile}"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - started
        counters = json.loads(stats.read_text()) if stats.exists() else {}
        return {"seconds": seconds, "returncode": done.returncode, "stats": counters, "tail": done.stdout[-1500:]}


def _ratio_line(label: str, on: list[float], off: list[float], unit: str = "ms", scale: float = 1000) -> str:
    ratios = [a / b for a, b in zip(on, off, strict=True) if b]
    return (f"  {label}: spare {statistics.median(on) * scale:.1f} {unit}, no spare "
            f"{statistics.median(off) * scale:.1f} {unit}; ratio per round "
            + ", ".join(f"{r:.2f}" for r in ratios) + f" (median {statistics.median(ratios):.2f})")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the rounds and prints medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=30, help="examples per in-process measurement")
    parser.add_argument("--connectors", default="fixed,fixed13,sdk", help=f"comma-separated: {', '.join(CONNECTORS)}")
    parser.add_argument("--no-suite", action="store_true", help="only the in-process per-example figures")
    parser.add_argument("--profile", default="conformance-dev")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout the suite part runs (default: this one)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.connectors.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONNECTORS]
    if unknown:
        parser.error(f"unknown connector(s) {unknown}; known: {', '.join(CONNECTORS)}")
    commands = {name: CONNECTORS[name][0]() for name in names}  # builds the Go ones before anything is timed
    load = os.getloadavg()[0]
    print(f"bench_standalone: {args.rounds} rounds, {args.examples} examples each, profile {args.profile}; "
          f"{os.cpu_count()} CPUs, 1-minute load {load:.2f} at the start")
    for name in names:
        per_example: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        suite: dict[bool, list[dict]] = {True: [], False: []}
        with tempfile.TemporaryDirectory(prefix="bench-standalone-") as work:
            for number in range(args.rounds):
                order = (True, False) if number % 2 == 0 else (False, True)
                for spare in order:
                    per_example[spare].append(example_times(commands[name], args.examples, spare,
                                                             Path(work) / f"r{number}-{spare}"))
                if not args.no_suite:
                    for spare in order:
                        run = suite_once(args.repo.resolve(), CONNECTORS[name][1], spare, args.profile)
                        suite[spare].append(run)
                        print(f"  [{name} round {number + 1}, spare {'on' if spare else 'off'}: "
                              f"{run['seconds']:.1f}s, exit {run['returncode']}, {run['stats']}]", file=sys.stderr)
                        if run["returncode"] not in (0, 1):
                            print(run["tail"], file=sys.stderr)
        print(f"{name} ({CONNECTORS[name][1]}):")
        print(_ratio_line("per example (factory to close)", [e for e, _ in per_example[True]],
                          [e for e, _ in per_example[False]]))
        print(_ratio_line("factory call", [f for _, f in per_example[True]], [f for _, f in per_example[False]]))
        if suite[True]:
            print(_ratio_line("suite run", [r["seconds"] for r in suite[True]], [r["seconds"] for r in suite[False]],
                              unit="s", scale=1))
            last = suite[True][-1]["stats"]
            if last:
                served = last.get("taken", 0) + last.get("fresh", 0)
                print(f"  last suite run with the spare: {served} destinations, {last.get('started', 0)} processes "
                      f"started, {last.get('taken', 0)} served by a spare, {last.get('replaced', 0)} dead spares "
                      f"replaced; {suite[True][-1]['seconds'] / max(served, 1) * 1000:.0f} ms of suite per "
                      f"destination (without: {suite[False][-1]['seconds'] / max(served, 1) * 1000:.0f} ms)")
    print(f"1-minute load {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
