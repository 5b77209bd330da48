"""Fuzzing throughput per check: records/s and examples/s under conformance-fuzz (issue 11, item 1).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/bench_fuzz.py [--budget 60] [-k EXPR] [--workers 1,2] [--tmpdir /dev/shm] [--repo PATH]

For each worker count it runs `python -m pytest --destination=reference:registration --hypothesis-profile=
conformance-fuzz --conformance-budget=...` (with `-n N` for N > 1) in a fresh directory, with a small plugin
(-p) that writes each check's report properties (examples, and records in its `coverage`) and time to checks.json. It
prints one row per check (examples/s, records/s, mean records per batch, batches of 9 to 64 records) and the totals:
records/s for the run, per worker, and per CPU-second of the run's processes (user + system time: what one core does,
a figure that holds on a shared machine, where wall-clock rates drop with the load). `-k batches_read_back` measures
write.round-trip's main check alone; `--tmpdir /dev/shm` puts the destinations' directories on a RAM filesystem (a
slow disk otherwise dominates: the reference writes each record to a file of its own).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_once", "main"]

REPO = Path(__file__).resolve().parents[2]

# A plugin for the run (-p, so it sees every check's report; a conftest would see only its directory's).
PLUGIN = """
import json

ROWS = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        ROWS.append({"nodeid": report.nodeid, "seconds": report.duration, "props": dict(report.user_properties)})


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open("checks.json", "w") as f:
            json.dump(ROWS, f)
"""


def run_once(repo: Path, budget: float, workers: int, keyword: str | None, tmpdir: str | None) -> dict:
    """One budgeted fuzz run: per-check rows from the JUnit XML, and the run's wall time."""
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as work:
        Path(work, "bench_fuzz_rows.py").write_text(PLUGIN)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([work, str(repo)])}
        env.pop("CI", None)
        if tmpdir:
            env["TMPDIR"] = tmpdir
        command = [sys.executable, "-m", "pytest", "--destination=reference:registration", "-p", "no:cacheprovider",
                   "-p", "bench_fuzz_rows",
                   "-q", "--hypothesis-profile=conformance-fuzz", f"--conformance-budget={budget:g}s",
                   ]
        if workers > 1:
            command += ["-n", str(workers)]
        if keyword:
            command += ["-k", keyword]
        started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=budget * 10 + 300)
        wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows = []
        checks = Path(work, "checks.json")
        for check in json.loads(checks.read_text()) if checks.exists() else []:
            props = check["props"]
            if "clause" not in props:
                continue
            coverage = json.loads(props.get("coverage", "{}"))
            rows.append({"name": check["nodeid"].split("::")[-1], "clause": props["clause"],
                         "seconds": check["seconds"], "examples": int(props.get("examples", 0)),
                         "records": coverage.get("records", 0), "batches": coverage.get("batches", 0),
                         "big": coverage.get("batch size 9-64", 0)})
        return {"wall": wall, "cpu": cpu, "rows": rows, "returncode": done.returncode, "tail": done.stdout[-1500:]}


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the fuzz runs and prints the per-check table and the totals."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60, help="seconds (--conformance-budget)")
    parser.add_argument("-k", dest="keyword", default=None, help="select checks, as pytest -k")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (1: no xdist)")
    parser.add_argument("--tmpdir", default=None, help="TMPDIR for the run (e.g. /dev/shm)")
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to run (default: this one)")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"conformance-fuzz against reference:registration, budget {args.budget:g}s, repo {args.repo}, "
          f"TMPDIR={args.tmpdir or tempfile.gettempdir()}" + (f", -k {args.keyword}" if args.keyword else ""))
    for workers in (int(w) for w in args.workers.split(",")):
        run = run_once(args.repo.resolve(), args.budget, workers, args.keyword, args.tmpdir)
        if run["returncode"] not in (0, 1):
            print(run["tail"], file=sys.stderr)
        print(f"\n{workers} worker(s): wall {run['wall']:.1f}s, CPU {run['cpu']:.1f}s, exit {run['returncode']}")
        print(f"  {'check':<58} {'examples':>8} {'ex/s':>7} {'records':>8} {'rec/s':>8} {'rec/batch':>9} "
              f"{'9-64':>5}")
        for row in sorted((r for r in run["rows"] if r["records"] or r["examples"] > 1), key=lambda r: -r["records"]):
            seconds = max(row["seconds"], 1e-9)
            per_batch = row["records"] / row["batches"] if row["batches"] else 0
            print(f"  {row['name'][:58]:<58} {row['examples']:>8} {row['examples'] / seconds:>7.1f} "
                  f"{row['records']:>8} {row['records'] / seconds:>8.0f} {per_batch:>9.1f} {row['big']:>5}")
        records = sum(r["records"] for r in run["rows"])
        examples = sum(r["examples"] for r in run["rows"])
        busy = sum(r["seconds"] for r in run["rows"])
        fixed = sum(1 for r in run["rows"] if not (r["records"] or r["examples"] > 1))
        print(f"  ({fixed} checks with one example and no records not shown)")
        print(f"  total: {examples} examples, {records} records in {busy:.1f}s of checks; run: "
              f"{records / run['wall']:.0f} records/s wall ({records / run['wall'] / workers:.0f} per worker), "
              f"{records / max(run['cpu'], 1e-9):.0f} records per CPU-second")
    print(f"\n1-minute load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
