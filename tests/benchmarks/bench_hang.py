"""Time to a verdict for a destination whose write hangs on batches of 3 records or more (issue 11, item 3).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/bench_hang.py [--rounds 3] [--profile conformance-dev] [--repo PATH] [-- PYTEST ARGS]

Each round runs the whole suite (`python -m pytest --destination=tests.zoo.broken:hangs_on_big_batch`, default
profile, default per-call limit of 10 s) in a fresh temporary directory and measures the wall time of the process.
It prints the median, the verdicts that are not "passed" and, from the JSON report, how many calls hit the limit per
clause. `--repo PATH` runs another checkout (its harness, conformance and zoo first on PYTHONPATH), for before/after
figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["HANGS", "run_once", "main"]

REPO = Path(__file__).resolve().parents[2]

# write() never returns for a batch of 3 records or more (the zoo's call.timeout case).
HANGS = "tests.zoo.broken:hangs_on_big_batch"


def run_once(repo: Path, profile: str, extra: Sequence[str]) -> dict:
    """One run of the suite against the hanging destination: seconds, exit code, verdicts and hanging calls."""
    with tempfile.TemporaryDirectory(prefix="bench-hang-") as work:
        env = {**os.environ, "PYTHONPATH": str(repo)}
        env.pop("CI", None)
        command = [sys.executable, "-m", "pytest", f"--destination={HANGS}", "-p", "no:cacheprovider",
                   "-q", f"--hypothesis-profile={profile}", "--conformance-report=report.json", *extra]
        started = time.monotonic()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - started
        verdicts, hits = {}, {}
        report = Path(work, "report.json")
        if report.exists():
            clauses = json.loads(report.read_text())["destinations"][HANGS]["clauses"]
            verdicts = {c: row["status"] for c, row in clauses.items()}
            hits = {c: row.get("coverage", {}).get("calls that hit the limit", 0) for c, row in clauses.items()}
        return {"seconds": seconds, "returncode": done.returncode, "verdicts": verdicts, "hits": hits,
                "tail": done.stdout[-1500:]}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the rounds and prints the figures; exit 1 when the median misses the 60 s target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="conformance-dev")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to run (default: this one)")
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    runs = []
    for number in range(args.rounds):
        run = run_once(args.repo.resolve(), args.profile, args.extra)
        runs.append(run)
        print(f"round {number + 1}: {run['seconds']:.1f}s, exit {run['returncode']}, "
              f"{sum(run['hits'].values())} calls hit the limit", file=sys.stderr)
        if not run["verdicts"]:
            print(run["tail"], file=sys.stderr)
    median = statistics.median(r["seconds"] for r in runs)
    last = runs[-1]
    print(f"hanging destination (write hangs on 3+ records), {args.profile}, repo {args.repo}")
    print(f"1-minute load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
    print(f"time to verdict: median {median:.1f}s over {len(runs)} rounds ({each}); "
          f"target <= 60s: {'met' if median <= 60 else 'MISSED'}")
    failed = sorted(c for c, s in last["verdicts"].items() if s == "failed")
    print(f"failed clauses ({len(failed)}): {', '.join(failed)}")
    hits = {c: n for c, n in last["hits"].items() if n}
    print(f"calls that hit the limit: {sum(hits.values())} in all; per clause: "
          + ", ".join(f"{c} {n}" for c, n in sorted(hits.items())))
    return 0 if median <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
