"""Mutation testing of the conformance suite: how many mutants of a shipped destination does it kill?

# Run by hand; pytest does not collect it (the name does not match test_*.py), and CI never runs it:
#
#     pip install cosmic-ray
#     python tests/benchmarks/bench_mutation.py [--target reference|sqlite|jsonl] [--workers 2] [--inner-n 0]
#                                               [--timeout 900] [--out FILE.json] [--work DIR] [--limit N]
#                                               [--sample N] [--only m001,m002] [--skip-baseline] [--pytest-arg ARG ...]
#
# Cosmic Ray (https://github.com/sixty-north/cosmic-ray) enumerates the mutants of the target's file
# (reference/file_destination.py, examples/sqlite_destination.py or examples/jsonl_destination.py;
# `cosmic-ray init`: one work item per operator occurrence) and applies each one in turn. --sample N tests
# an evenly spaced N of the pending mutants (every k-th by id), for a first estimate when CPU is short.
# (mutmut 3 cannot: it only runs pytest in-process on the project's own tests, with no custom
# test command.) The test command is the conformance suite against the mutant (here the reference's),
#
#     python -m pytest --destination=reference:registration -p no:cacheprovider -q -x \
#         --hypothesis-profile=conformance-ci
#
# (plus any --pytest-arg, e.g. --pytest-arg=-k --pytest-arg="not test_x" to leave out a check that fails on
# the unmutated reference while the suite is being changed), run from a fresh temp directory that holds only a
# conftest.py dropping hypothesis' shrink phase (-x stops at the first failing check either way, so shrinking
# only costs time); a mutant is killed when that exits non-zero (or outlives --timeout). The run never touches
# the checkout: harness/, reference/, conformance/ and examples/ are copied once, at the start, into one snapshot per
# worker under the work directory, mutants are applied there, and the suite imports that snapshot (PYTHONPATH
# comes before the editable install's finder). So the numbers are those of the checkout as it was when the run
# started. An unmutated baseline must pass first.
#
# Per mutant it prints: id, line, the diff in one line, killed/survived, and for killed ones the clause(s)
# the run's summary table reported FAILED. It writes every result to a JSON file (default
# mutation-results.json in the work directory). The cosmic-ray session (session.sqlite in the work
# directory) keeps finished mutants: rerunning with the same --work resumes where it stopped.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from queue import Queue

REPO = Path(__file__).resolve().parents[2]
TARGETS = {  # --target: the file mutated, and the registration the suite runs against
    "reference": (Path("reference") / "file_destination.py", "reference:registration"),
    "sqlite": (Path("examples") / "sqlite_destination.py", "examples.sqlite_destination:registration"),
    "jsonl": (Path("examples") / "jsonl_destination.py", "examples.jsonl_destination:registration"),
}
TARGET, DESTINATION = TARGETS["reference"]  # set from --target in main(), and in the suite runs from --destination
# conformance/CONTRACT.md links ../CONTRACT.md; the examples import reference (the SQLite one its key rules)
COPIED = ("harness", "reference", "conformance", "examples", "CONTRACT.md")
SUITE_FLAGS = ["-p", "no:cacheprovider", "-q", "-x", "--hypothesis-profile=conformance-ci"]
NO_SHRINK_CONFTEST = """
from hypothesis import Phase, settings

_profile = settings.get_profile("conformance-ci")
settings.register_profile("conformance-ci", _profile, phases=tuple(p for p in _profile.phases if p is not Phase.shrink))
"""
CLAUSE_LINE = re.compile(r"^\s+FAILED\s+([a-z]+\.[a-z0-9.-]+)", re.M)  # "  FAILED       write.round-trip   ..."
SUMMARY_LINE = re.compile(r"^\s*\d+ passed, \d+ failed,.*$", re.M)


# --- the test command (run by cosmic-ray for each mutant) --------------------------------------------


def suite(destination: str) -> list[str]:
    """The suite's pytest arguments against the registration `destination`."""
    return [f"--destination={destination}", *SUITE_FLAGS]


def run_suite(src: Path, inner_n: int, extra: list[str]) -> int:
    """Runs the conformance suite against the snapshot `src` from a fresh empty directory; its exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(src)  # before site-packages, so the snapshot shadows the editable install
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant of the same size and mtime must never load a stale .pyc
    command = [sys.executable, "-m", "pytest", *suite(DESTINATION), *(["-n", str(inner_n)] if inner_n else []), *extra]
    empty = tempfile.mkdtemp(prefix="mutant-run-")
    # Killed or survived does not depend on shrinking (-x stops at the first failing check), so skip it.
    Path(empty, "conftest.py").write_text(NO_SHRINK_CONFTEST)
    try:
        sys.stdout.flush()
        return subprocess.run(command, cwd=empty, env=env, stderr=subprocess.STDOUT).returncode
    finally:
        shutil.rmtree(empty, ignore_errors=True)


# --- the driver ----------------------------------------------------------------------------------------


def snapshot(destination: Path) -> None:
    """Copies the packages the suite imports into `destination` (no caches, symlinks kept)."""
    destination.mkdir(parents=True)
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)


def suite_command(src: Path, inner_n: int, extra: list[str]) -> str:
    """The test command cosmic-ray runs (it splits it with shlex and runs it without a shell)."""
    return shlex.join([sys.executable, str(Path(__file__).resolve()), "--run-suite", "--src", str(src),
                       "--destination", DESTINATION, "--inner-n", str(inner_n),
                       *(f"--pytest-arg={arg}" for arg in extra)])


def one_line_diff(diff: str) -> str:
    """The removed and added lines of a unified diff, stripped, as `old -> new`."""
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return f"{' / '.join(removed)}  ->  {' / '.join(added)}"


def verdict(result) -> tuple[str, list[str], str]:  # noqa: ANN001 (a cosmic_ray WorkResult)
    """(outcome, failed clauses, the suite's summary line or why there is none) of one result."""
    output = result.output or ""
    summary = SUMMARY_LINE.findall(output)
    note = summary[-1].strip() if summary else (output.strip().splitlines() or [""])[-1][:200]
    if result.worker_outcome.value != "normal":
        return result.worker_outcome.value, [], note  # "no-test" (nothing to mutate) or "exception"
    if output == "timeout":
        return "timeout", [], "the suite outlived --timeout"
    if result.test_outcome.value == "survived":
        return "survived", [], note
    if result.test_outcome.value == "incompetent":
        return "incompetent", [], note
    return "killed", sorted(set(CLAUSE_LINE.findall(output))), note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="reference", help="the file to mutate")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once (one snapshot each)")
    parser.add_argument("--inner-n", type=int, default=0, help="pytest-xdist workers inside each suite run (0: none)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a suite run counts as killed")
    parser.add_argument("--work", type=Path, help="work directory (snapshots, session); reusing one resumes it")
    parser.add_argument("--out", type=Path, help="results JSON (default: WORK/mutation-results.json)")
    parser.add_argument("--limit", type=int, help="test at most this many pending mutants (a quick look)")
    parser.add_argument("--sample", type=int, help="test an evenly spaced sample of this many pending mutants")
    parser.add_argument("--only", help="test only these mutant ids, comma-separated (e.g. an earlier run's survivors)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="resuming a work directory whose snapshot already passed: no unmutated run first")
    parser.add_argument("--pytest-arg", action="append", default=[], help="extra argument for the suite run")
    parser.add_argument("--run-suite", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--destination", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global TARGET, DESTINATION
    TARGET, DESTINATION = TARGETS[args.target]
    if args.destination:
        DESTINATION = args.destination
    if args.run_suite:
        return run_suite(args.src, args.inner_n, args.pytest_arg)

    try:
        import attrs
        from cosmic_ray.mutating import mutate_and_test
        from cosmic_ray.work_db import WorkDB, use_db
    except ImportError:
        print("needs cosmic-ray: pip install cosmic-ray", file=sys.stderr)
        return 2

    work = (args.work or Path(tempfile.mkdtemp(prefix="bench-mutation-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    session, out = work / "session.sqlite", (args.out or work / "mutation-results.json").resolve()
    sources = [work / f"src{k}" for k in range(max(1, args.workers))]
    original = work / "original.py"  # the unmutated target, to undo a mutant left in place by a killed run
    for src in sources:
        if not src.exists():
            snapshot(src)
        if not original.exists():
            shutil.copy2(src / TARGET, original)
        shutil.copy2(original, src / TARGET)
    print(f"work directory {work}; snapshot of {REPO} ({', '.join(COPIED)})", flush=True)

    # The unmutated snapshot must pass, and the suite must import it rather than the checkout.
    module = DESTINATION.split(":")[0]
    check = subprocess.run([sys.executable, "-c", f"import {module} as t, harness, conformance.plugin as p; "
                            "print(t.__file__, harness.__file__, p.__file__)"],
                           cwd=tempfile.gettempdir(), capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(sources[0]), "PYTHONDONTWRITEBYTECODE": "1"})
    if check.returncode or any(not path.startswith(str(sources[0])) for path in check.stdout.split()):
        print(f"the snapshot is not what the suite imports: {check.stdout}{check.stderr}", file=sys.stderr)
        return 2
    started = time.monotonic()
    command = shlex.split(suite_command(sources[0], args.inner_n, args.pytest_arg))
    baseline = subprocess.run(["true"] if args.skip_baseline and session.exists() else command,
                              capture_output=True, text=True)
    summary = SUMMARY_LINE.findall(baseline.stdout)
    print(f"baseline ({time.monotonic() - started:.0f}s): {summary[-1].strip() if summary else 'skipped'}", flush=True)
    if baseline.returncode:
        print(f"the unmutated {TARGET} fails the suite (exit {baseline.returncode}); nothing to measure:\n"
              + baseline.stdout[-3000:], file=sys.stderr)
        return 2

    if not session.exists():  # cosmic-ray's own enumeration of the mutants, relative to the snapshot
        config = work / "cosmic-ray.toml"
        config.write_text(
            "[cosmic-ray]\n"
            f'module-path = "{TARGET.as_posix()}"\n'
            f"timeout = {args.timeout}\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(suite_command(sources[0], args.inner_n, args.pytest_arg))}\n"
            '[cosmic-ray.distributor]\nname = "local"\n'
        )
        subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=sources[0], check=True)

    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.work_items, key=lambda item: (tuple(item.mutations[0].start_pos),
                                                        item.mutations[0].operator_name, item.mutations[0].occurrence))
        ids = {item.job_id: f"m{n:03d}" for n, item in enumerate(items, 1)}
        only = set(args.only.split(",")) if args.only else None
        pending = sorted((item for item in db.pending_work_items if only is None or ids[item.job_id] in only),
                         key=lambda item: ids[item.job_id])
        if args.sample and len(pending) > args.sample:  # evenly spaced, so every part of the file is sampled
            pending = [pending[k * len(pending) // args.sample] for k in range(args.sample)]
        pending = pending[: args.limit]
        print(f"{len(items)} mutants of {TARGET}; {len(items) - len(db.completed_work_items)} pending, "
              f"testing {len(pending)} with {len(sources)} worker(s)", flush=True)

        free: Queue = Queue()
        for src in sources:
            free.put(src)
        lock = threading.Lock()

        def test(item):  # noqa: ANN001, ANN202
            src = free.get()
            try:
                mutations = [attrs.evolve(m, module_path=src / m.module_path) for m in item.mutations]
                began = time.monotonic()
                result = mutate_and_test(mutations, suite_command(src, args.inner_n, args.pytest_arg), args.timeout)
                return item, result, time.monotonic() - began
            finally:
                free.put(src)

        done = 0
        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            for future in as_completed([pool.submit(test, item) for item in pending]):
                item, result, seconds = future.result()
                with lock:
                    db.set_result(item.job_id, result)
                    done += 1
                    outcome, clauses, note = verdict(result)
                    mutation = item.mutations[0]
                    why = ", ".join(clauses) if clauses else note if outcome == "killed" else ""
                    print(f"[{done}/{len(pending)}] {ids[item.job_id]} line {mutation.start_pos[0]} "
                          f"{outcome}{f' ({why})' if why else ''} {seconds:.0f}s | "
                          f"{one_line_diff(result.diff or '')}", flush=True)

        results = []
        for item, result in sorted(db.completed_work_items, key=lambda pair: ids[pair[0].job_id]):
            mutation = item.mutations[0]
            outcome, clauses, note = verdict(result)
            results.append({
                "id": ids[item.job_id], "job_id": item.job_id, "operator": mutation.operator_name,
                "occurrence": mutation.occurrence, "line": mutation.start_pos[0], "column": mutation.start_pos[1],
                "function": mutation.definition_name, "diff": one_line_diff(result.diff or ""),
                "outcome": outcome, "failed_clauses": clauses, "summary": note,
            })
    counts = {k: sum(r["outcome"] == k for r in results) for k in dict.fromkeys(
        ["killed", "survived", "timeout", *(r["outcome"] for r in results)])}
    out.write_text(json.dumps({"target": str(TARGET), "suite": suite(DESTINATION) + args.pytest_arg,
                               "total": len(items),
                               "tested": len(results), "counts": counts, "mutants": results}, indent=1) + "\n")
    print(f"{len(items)} mutants, {len(results)} tested: "
          + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + f"; results in {out}")
    for r in results:
        if r["outcome"] == "survived":
            print(f"  survived {r['id']} line {r['line']}: {r['diff']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
