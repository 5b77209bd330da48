"""The published compatibility matrix: every connector this repository checks, clause by clause, regenerated as
docs/reference/compatibility.md from the suite's JSON reports (`--conformance-report`).

Run by hand; pytest does not collect it (the name does not match test_*.py):

    python tests/benchmarks/compat_matrix.py run [--reports DIR] [--only KEY,...]   # run the suite, then the page
    python tests/benchmarks/compat_matrix.py page [--reports DIR]                   # the page from saved reports

`run` makes one suite run per connector (`pytest --destination=SPEC`, the derandomized `conformance-quick`
profile as our pinned tables use, unshrunk) with `--conformance-conduit` set to the engine of its column, writing
DIR/<key>.json (default /tmp/compat-matrix); the Go connectors and both engines are built first (tests/go_connectors
.py), PostgreSQL and moto started when $CONFORMANCE_POSTGRES_DSN / $CONFORMANCE_S3_ENDPOINT are not set. `page` reads
DIR/<key>.json for every column (a missing one is an error: the page shows every connector or none) and rewrites the
page. Each failed cell links to its entry below the table: the report's reason, the findings page's row for that
clause when the page has an anchor for it, and the command that replays the clause's checks.
"""

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = ["Column", "COLUMNS", "PAGE", "ICONS", "render", "load_reports", "what_happened", "run_all", "main"]

PAGE = REPO / "docs" / "reference" / "compatibility.md"
FINDINGS = REPO / "docs" / "findings"
PROFILE = "conformance-quick"
SLOW_CALLS = 300  # seconds: the per-call limit of every run (moto takes a 16 MiB+ payload in seconds, not in 10)
ICONS = {"passed": "✅", "failed": "❌", "known failure": "⚠️", "not checked": "➖", "not applicable": "n/a",
         "skipped": "⏭️"}
ENGINES = {"conduit13": "v0.13.3", "conduit14": "v0.14.0"}


@dataclass(frozen=True)
class Column:
    """One connector of the matrix: how the suite registers it, what it is built from, the engine its pipelines run
    on, the services it needs, and its findings page (a file name in docs/findings, or "")."""

    key: str
    label: str
    spec: str
    engine: str  # a key of ENGINES
    builds: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # "postgres", "s3"
    findings: str = ""
    args: tuple[str, ...] = field(default=())


COLUMNS: tuple[Column, ...] = (
    Column("reference", "reference (Python)", "reference:registration", "conduit14"),
    Column("python-sdk", "Python SDK file example", "tests.conduit_connectors:sdk_file_standalone", "conduit14",
           findings="python-sdk-0.1.0.dev1.md"),
    Column("fixed", "fixed Go, SDK v0.12.0", "tests.conduit_connectors:go_fixed", "conduit13", ("fixed",),
           findings="go-sdk-v0.12.0.md"),
    Column("fixed13", "fixed Go, SDK v0.13.3", "tests.conduit_v013:go_fixed13", "conduit13", ("fixed13",),
           findings="go-sdk-v0.13.3.md"),
    Column("fixed14", "fixed Go, SDK v0.14.2", "tests.conduit_connectors:go_fixed14", "conduit14", ("fixed14",),
           findings="go-sdk-v0.14.2.md"),
    Column("file13", "file v0.10.1", "tests.conduit_v013:upstream13_file", "conduit13", ("upstream13-file",),
           findings="file-v0.10.1.md"),
    Column("log13", "log v0.7.1", "tests.conduit_v013:upstream13_log", "conduit13", ("upstream13-log",),
           findings="log-v0.7.1.md"),
    Column("postgres13", "postgres v0.11.2", "tests.conduit_v013:upstream13_postgres", "conduit13",
           ("upstream13-postgres",), ("postgres",), "postgres-v0.11.2.md"),
    Column("s3-13", "s3 v0.9.1", "tests.conduit_s3:upstream13_s3", "conduit13", ("upstream13-s3",), ("s3",),
           "s3-v0.9.1.md"),
    Column("file14", "file v0.10.3", "tests.conduit_v014:upstream14_file", "conduit14", ("upstream14-file",),
           findings="file-v0.10.3.md"),
    Column("log14", "log v0.7.3", "tests.conduit_v014:upstream14_log", "conduit14", ("upstream14-log",),
           findings="log-v0.7.3.md"),
    Column("postgres14", "postgres v0.14.0", "tests.conduit_v014:upstream14_postgres", "conduit14",
           ("upstream14-postgres",), ("postgres",), "postgres-v0.14.0.md"),
    Column("s3-14", "s3 v0.9.3", "tests.conduit_s3:upstream14_s3", "conduit14", ("upstream14-s3",), ("s3",),
           "s3-v0.9.3.md"),
)
_SERVICE_ENV = {"postgres": "CONFORMANCE_POSTGRES_DSN", "s3": "CONFORMANCE_S3_ENDPOINT"}


# --- reading reports and writing the page ----------------------------------------------------------------------------


_FAILURE = re.compile(r"ClauseFailure: \[([a-z-]+\.[a-z-]+)\]")
_HAPPENED = re.compile(r"What happened: (.*)")


def what_happened(output: str) -> dict[str, str]:
    """Clause -> the first "What happened" line the run printed for a failure charged to it (the JSON report's
    reason only counts the failed checks)."""
    found: dict[str, str] = {}
    clause = None
    for line in output.splitlines():
        match = _FAILURE.search(line)
        if match:
            clause = match.group(1)
            continue
        match = _HAPPENED.search(line)
        if match and clause is not None:
            found.setdefault(clause, match.group(1).strip()[:300])
            clause = None
    return found


def load_reports(directory: Path, columns: Sequence[Column] = COLUMNS) -> dict[str, dict[str, Any]]:
    """Column key -> its JSON report (DIR/<key>.json), with `what_happened` from the run's output (DIR/<key>.txt)
    when the report has none; FileNotFoundError names every report missing."""
    missing = [str(directory / f"{c.key}.json") for c in columns if not (directory / f"{c.key}.json").is_file()]
    if missing:
        raise FileNotFoundError("no report for " + ", ".join(missing) + ": run `compat_matrix.py run` first")
    reports = {}
    for c in columns:
        report = json.loads((directory / f"{c.key}.json").read_text(encoding="utf-8"))
        output = directory / f"{c.key}.txt"
        if "what_happened" not in report and output.is_file():
            report["what_happened"] = what_happened(output.read_text(encoding="utf-8"))
        reports[c.key] = report
    return reports


def _rows(report: Mapping[str, Any], column: Column) -> dict[str, Any]:
    """The report's clause rows for the column's destination; ValueError if the report is of another one."""
    destinations = report.get("destinations", {})
    if column.spec not in destinations:
        raise ValueError(f"the report for {column.key} has no destination {column.spec!r} "
                         f"(it has {sorted(destinations)})")
    return dict(destinations[column.spec]["clauses"])


def _anchor(column: Column, clause: str) -> str:
    return f"f-{column.key}-{clause.replace('.', '-')}"


def _findings_link(column: Column, clause: str, findings_dir: Path) -> str:
    """A link to the findings page's row for the clause (`id="write-round-trip"`), else to the page, else ""."""
    if not column.findings:
        return ""
    page = findings_dir / column.findings
    slug = clause.replace(".", "-")
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    target = f"../findings/{column.findings}" + (f"#{slug}" if f'id="{slug}"' in text else "")
    return f"[{column.label} findings]({target})"


def _replay(column: Column, report: Mapping[str, Any], clause: str) -> str:
    """The command that reruns the clause's checks as the run made them."""
    parts = [f"{_SERVICE_ENV[n]}=..." for n in column.needs]
    parts += ["python -m pytest", f"--destination={column.spec}", f"--hypothesis-profile={PROFILE}",
              f"--conformance-clause={clause}"]
    engine = report.get("engine") or {}
    if clause.startswith("pipeline.") and engine:
        parts.append(f"--conformance-conduit=CONDUIT_{engine.get('version') or '?'}")
    return " ".join(parts)


def _cell_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(reports: Mapping[str, Mapping[str, Any]], columns: Sequence[Column] = COLUMNS,
           findings_dir: Path = FINDINGS) -> str:
    """The page: the columns' legend, the clause x connector table, and one entry per failure with its replay."""
    from conformance.contract.clauses import CLAUSES

    rows = {c.key: _rows(reports[c.key], c) for c in columns}
    first = reports[columns[0].key]
    lines = [
        "# Compatibility matrix",
        "",
        "Every connector this repository checks, clause by clause: one suite run each (`--conformance-report`, the "
        f"derandomized `{PROFILE}` profile), with its pipelines on the Conduit release of its column. Generated by "
        "`python tests/benchmarks/compat_matrix.py` from those JSON reports; do not edit it by hand. Suite "
        f"{first.get('suite_version', '?')}, contract {first.get('contract_version', '?')}. A failed cell links to "
        "its replay below; what each verdict means: [verdicts](../contract.md#7-verdicts).",
        "",
        "| column | connector (`--destination`) | built on | pipelines on |",
        "|---|---|---|---|",
    ]
    for c in columns:
        report = reports[c.key]
        built = report["destinations"][c.spec].get("built_with") or {}
        sdk = f"`{built['sdk_module'].rsplit('/', 1)[-1]}` {built['sdk_version']}" if built.get("sdk_version") else \
            report["destinations"][c.spec].get("transport", "")
        engine = report.get("engine") or {}
        on = f"Conduit {engine.get('version') or '(unknown release)'}" if engine else "no engine (not checked)"
        lines.append(f"| {c.label} | `{c.spec}` | {sdk} | {on} |")
    lines += ["", "| clause | " + " | ".join(c.label for c in columns) + " |",
              "|---|" + "---|" * len(columns)]
    failures: list[tuple[Column, str, dict[str, Any]]] = []
    for clause in CLAUSES:
        cells = []
        for c in columns:
            row = rows[c.key].get(clause)
            if row is None:
                cells.append("?")
                continue
            icon = ICONS.get(row["status"], row["status"])
            if row["status"] in ("failed", "known failure"):
                failures.append((c, clause, row))
                icon = f"[{icon}](#{_anchor(c, clause)})"
            cells.append(icon)
        lines.append(f"| `{clause}` | " + " | ".join(cells) + " |")
    lines += ["", "✅ passed, ❌ failed, ⚠️ known failure, ➖ not checked, n/a not applicable, ⏭️ skipped, ? not in the "
              "report. Why a clause was not checked, not applicable or skipped is in each report's `reason`.", ""]
    lines += ["## Failures and their replays", "",
              "Each replay reruns the clause's checks as the run made them, from a checkout of this repository: "
              "`...` is the service the connector needs (PostgreSQL's DSN, an S3 endpoint), `CONDUIT_vX.Y.Z` a "
              "Conduit binary of that release ([how this repository builds both]"
              "(../development/index.md#building-the-go-connectors-and-conduit)).", ""]
    if not failures:
        lines += ["None.", ""]
    for c, clause, row in failures:
        report = reports[c.key]
        link = _findings_link(c, clause, findings_dir)
        happened = (report.get("what_happened") or {}).get(clause)
        why = f"{row.get('reason', '')}; the first: {happened}" if happened else row.get("reason", "")
        lines += [f'<a id="{_anchor(c, clause)}"></a>**{c.label}**, `{clause}`: {_cell_text(why)}'
                  + (f" ({link})" if link else ""), "",
                  f"    {_replay(c, report, clause)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- running the suite ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _services(needed: set[str]) -> Iterator[dict[str, str]]:
    """The environment naming a PostgreSQL database and an S3 endpoint, started here when not given."""
    env: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if "postgres" in needed:
            from tests.postgres import DSN_VARIABLE, fresh_database, throwaway_cluster

            server = os.environ.get(DSN_VARIABLE) or stack.enter_context(throwaway_cluster())
            env[DSN_VARIABLE] = stack.enter_context(fresh_database(server))
        if "s3" in needed:
            from tests.s3 import ENDPOINT_VARIABLE, moto_server

            env[ENDPOINT_VARIABLE] = os.environ.get(ENDPOINT_VARIABLE) or stack.enter_context(moto_server())
        yield env


def run_all(directory: Path, columns: Sequence[Column] = COLUMNS) -> None:
    """One suite run per column, its report saved as DIR/<key>.json (and its output as DIR/<key>.txt)."""
    from tests.go_connectors import build
    from tests.suite_runs import run_suite

    directory.mkdir(parents=True, exist_ok=True)
    engines = {name: str(build(name)) for name in {c.engine for c in columns}}
    with _services({n for c in columns for n in c.needs}) as env:
        for c in columns:
            for target in c.builds:
                build(target)
            work = directory / c.key
            work.mkdir(exist_ok=True)
            print(f"{c.key}: {c.spec} on {ENGINES[c.engine]} ...", flush=True)
            run = run_suite(work, c.spec, env={**env, "CONFORMANCE_CONDUIT": None}, timeout=5400,
                            args=(f"--conformance-conduit={engines[c.engine]}", f"--conformance-timeout={SLOW_CALLS}",
                                  *c.args))
            (directory / f"{c.key}.txt").write_text(run.output, encoding="utf-8")
            if not run.report:
                raise RuntimeError(f"{c.key}: the run wrote no report (exit {run.ret}):\n{run.output[-4000:]}")
            (directory / f"{c.key}.json").write_text(json.dumps(run.report, indent=1) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """`run` or `page`, as the module docstring says."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "page"))
    parser.add_argument("--reports", type=Path, default=Path("/tmp/compat-matrix"))
    parser.add_argument("--only", default="", help="run only these column keys (comma-separated)")
    parser.add_argument("--page", type=Path, default=PAGE)
    options = parser.parse_args(argv)
    if options.action == "run":
        chosen = [c for c in COLUMNS if not options.only or c.key in options.only.split(",")]
        run_all(options.reports, chosen)
    options.page.write_text(render(load_reports(options.reports)), encoding="utf-8")
    print(f"wrote {options.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
