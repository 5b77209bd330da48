"""Cost of the fault.backend-* checks per example, through Toxiproxy (issue 21).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/bench_backend.py [--rounds 3] [--profile conformance-quick] [SPEC ...]

SPEC defaults to the key-value zoo's correct destination (tests.zoo.backend:kv_correct); the Postgres and S3
connectors need $CONFORMANCE_POSTGRES_DSN / $CONFORMANCE_S3_ENDPOINT set (tests/postgres.py, tests/s3.py). Each
round runs `pytest --destination=SPEC --conformance-clause=fault.backend-*` in a fresh temporary directory, with
Toxiproxy already built (the first build is timed apart), and prints per clause the median of the check's wall time,
its sessions (a session is one destination from factory to teardown: the fault-free run and one per fault), and the
seconds per session; then the same for write.round-trip's checks, a baseline without a proxy.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_once", "main"]

REPO = Path(__file__).resolve().parents[2]


def run_once(spec: str, clauses: str, profile: str) -> dict[str, tuple[float, int]]:
    """One suite run over `spec` of the clauses matching `clauses`: clause -> (seconds in its checks, sessions)."""
    with tempfile.TemporaryDirectory(prefix="bench-backend-") as work:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("CI", None)
        command = [sys.executable, "-m", "pytest", f"--destination={spec}", f"--conformance-clause={clauses}",
                   "-p", "no:cacheprovider", "-q", f"--hypothesis-profile={profile}",
                   "--conformance-report=report.json", "-W", "ignore"]
        subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=3600)
        report = Path(work, "report.json")
        rows = json.loads(report.read_text())["destinations"][spec]["clauses"] if report.exists() else {}
    timed = {clause: [t for t in row.get("tests", ()) if isinstance(t, dict) and "duration" in t]
             for clause, row in rows.items()}
    return {clause: (sum(t["duration"] for t in tests), rows[clause].get("examples", 0))
            for clause, tests in timed.items() if tests}


def main() -> None:
    """Parses the arguments, builds Toxiproxy, runs the rounds and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="conformance-quick")
    parser.add_argument("specs", nargs="*", default=["tests.zoo.backend:kv_correct"])
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from conformance.probes.backend_proxy import build

    started = time.monotonic()
    build()
    print(f"Toxiproxy built or found in the cache in {time.monotonic() - started:.1f} s")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}; profile {args.profile}; {args.rounds} round(s)")
    print("| destination | clause | seconds (median) | sessions | seconds per session |")
    print("|---|---|---|---|---|")
    for spec in args.specs:
        for clauses in ("fault.backend-*", "write.round-trip"):
            rounds = [run_once(spec, clauses, args.profile) for _ in range(args.rounds)]
            for clause in sorted({c for r in rounds for c in r}):
                seconds = statistics.median(r[clause][0] for r in rounds if clause in r)
                sessions = int(statistics.median(r[clause][1] for r in rounds if clause in r))
                per = seconds / sessions if sessions else float("nan")
                print(f"| {spec} | {clause} | {seconds:.2f} | {sessions} | {per * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
