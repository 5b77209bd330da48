"""Does --conformance-budget hold? Wall time of budgeted runs against the reference (issue 11, item 2).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/bench_budget.py [--rounds 1] [--only NAME[,NAME]] [--scale 1.0] [--repo PATH]

Three runs, each in a fresh temporary directory, each `python -m pytest --destination=reference:registration`:

    suite-dev    --conformance-budget=60s, the whole suite, default profile (conformance-dev)
    check-fuzz   --conformance-budget=40s, one check (write.round-trip's batches_read_back), conformance-fuzz
    suite-fuzz   --conformance-budget=60s, the whole suite, conformance-fuzz

For each it prints the wall time of the process, the run as the JSON report times it (from configure to the
summary) and the overrun against the budget (target: within 5 %, plus the time to print). `--scale 0.5` halves
the budgets for a quicker look; `--repo PATH` runs another checkout (for before/after figures).
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

__all__ = ["SCENARIOS", "run_once", "main"]

REPO = Path(__file__).resolve().parents[2]

# name -> (budget seconds, pytest arguments)
SCENARIOS: dict[str, tuple[float, tuple[str, ...]]] = {
    "suite-dev": (60, ("--hypothesis-profile=conformance-dev",)),
    "check-fuzz": (40, ("--hypothesis-profile=conformance-fuzz", "-k", "batches_read_back")),
    "suite-fuzz": (60, ("--hypothesis-profile=conformance-fuzz",)),
}


def run_once(repo: Path, budget: float, args: Sequence[str], timeout: float) -> dict:
    """One budgeted run: wall seconds, the report's duration, exit code and the failed clauses."""
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as work:
        env = {**os.environ, "PYTHONPATH": str(repo)}
        env.pop("CI", None)
        command = [sys.executable, "-m", "pytest", "--destination=reference:registration", "-p", "no:cacheprovider",
                   "-q", f"--conformance-budget={budget:g}s", "--conformance-report=report.json", *args]
        started = time.monotonic()
        try:
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"wall": time.monotonic() - started, "run": None, "returncode": None, "failed": [], "tail": ""}
        wall = time.monotonic() - started
        report = Path(work, "report.json")
        run, failed = None, []
        if report.exists():
            data = json.loads(report.read_text())
            run = data["duration"]
            clauses = data["destinations"]["reference:registration"]["clauses"]
            failed = sorted(c for c, row in clauses.items() if row["status"] == "failed")
        return {"wall": wall, "run": run, "returncode": done.returncode, "failed": failed, "tail": done.stdout[-1500:]}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the scenarios and prints one line each; exit 1 when a median wall time overruns by more than 5 %."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenario names")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget (0.5: half as long)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to run (default: this one)")
    parser.add_argument("--give-up", type=float, default=900, help="seconds after which a run is stopped")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    missed = False
    lines = []
    for name in args.only.split(","):
        budget, extra = SCENARIOS[name]
        budget *= args.scale
        runs = []
        for number in range(args.rounds):
            run = run_once(args.repo.resolve(), budget, extra, args.give_up)
            runs.append(run)
            shown = "stopped" if run["returncode"] is None else f"{run['wall']:.1f}s"
            print(f"{name} round {number + 1}: {shown}, exit {run['returncode']}", file=sys.stderr)
            if run["returncode"] not in (0, None):
                print(run["tail"], file=sys.stderr)
        wall = statistics.median(r["wall"] for r in runs)
        reported = [r["run"] for r in runs if r["run"] is not None]
        run_time = statistics.median(reported) if reported else float("nan")
        over = (wall - budget) / budget * 100
        ok = all(r["returncode"] is not None for r in runs) and wall <= budget * 1.05 + 5
        missed |= not ok
        failed = runs[-1]["failed"]
        lines.append(f"{name:<11} budget {budget:5.0f}s  wall {wall:6.1f}s ({over:+5.1f} %)  run {run_time:6.1f}s  "
                     f"{'ok' if ok else 'OVERRUN'}" + (f"  failed: {', '.join(failed)}" if failed else ""))
    print(f"--conformance-budget against reference:registration, repo {args.repo}, median of {args.rounds} round(s)")
    print(f"1-minute load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    print("\n".join(lines))
    print("(wall: the whole pytest process, start-up and printing included; run: configure to summary, as the "
          "report times it; ok: wall within 5 % of the budget plus 5 s to start and print)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
