"""Recording the run's outcomes per clause, and the reports made from them: the terminal summary, the JSON
certificate and Markdown."""

import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import settings

import harness
from conformance import __version__
from conformance.contract.checks import NOT_APPLICABLE_PREFIX, ClauseFailure
from conformance.engine.conduit_version import EngineVersion, engine_version
from conformance.engine.pipeline import conduit_binary
from conformance.execute.replay import Call, render_snippet
from conformance.results.baseline import ACCEPTED_NOT_CHECKED
from conformance.results.status import Status
from conformance.results.verdicts import RootCause, Table, find_root_cause, verdicts
from conformance.suite import SUITE_DIR
from harness import Registration

NOT_SELECTED = "no check was selected in this run"  # verdicts' reason for a clause no selected check checks

__all__ = ["Recorder", "NOT_SELECTED", "failure_data", "markdown", "registration_fingerprint", "destination_version",
           "suite_clauses"]


@dataclass
class Recorder:
    """What the run's reports said about each destination's clauses, and the reports made from that at the end."""

    registrations: list[Registration]
    timeout: float
    report_path: str | None = None
    markdown_path: str | None = None
    baseline_path: str | None = None
    baseline: dict[str, dict[str, Status]] | None = None
    started: float = field(default_factory=time.time)
    reports: list[dict[str, Any]] = field(default_factory=list)
    nothing_checked: list[str] = field(default_factory=list)  # destinations without a single checked clause
    accepted: dict[str, dict[str, str]] = field(default_factory=dict)  # the baseline's accepted_not_checked
    strict: bool = False  # --conformance-strict: a clause not checked (and not accepted) fails the run

    def record(self, report: pytest.TestReport) -> dict[str, Any] | None:
        """Keeps what the summary needs from one report (on the xdist controller too): one entry per clause the
        report is charged to, plus a "stopped" one for the check's own clause when a failure was charged elsewhere;
        returns the first entry kept."""
        props: dict[str, Any] = dict(report.user_properties)
        failure: dict[str, Any] = json.loads(props.get("failure", "{}"))  # failure_data of its first ClauseFailure
        clauses = list(dict.fromkeys(value for name, value in report.user_properties if name == "clause"))
        if not clauses:
            derived = self.from_nodeid(report.nodeid) if report.failed else None
            if derived is None:
                return None
            props.update(derived)
            clauses = [derived["clause"]]
        crashed = report.when not in ("setup", "call", "teardown")  # xdist's report for a crashed worker
        if not (crashed or report.when == "call" or (report.when == "setup" and report.outcome != "passed") or (
                report.when == "teardown" and report.outcome == "failed")):
            return None
        entry = {
            "destination": props["destination"],
            "clause": clauses[0],
            "nodeid": report.nodeid,
            # A known failure (xfail from the baseline) counts as failed; an unexpected pass as passed.
            "outcome": ("failed" if report.skipped else "passed") if hasattr(report, "wasxfail") else report.outcome,
            "reason": _skip_reason(report) if report.skipped and not hasattr(report, "wasxfail") else "",
            "examples": int(props.get("examples", 0)),
            "saved": props.get("saved", ""),
            "unchecked": props.get("unchecked", ""),
            "shortfalls": props.get("shortfalls", ""),
            "coverage": json.loads(props.get("coverage", "{}")),
            "evidence": json.loads(props.get("evidence", "{}")),
            "not_applicable": json.loads(props.get("not_applicable", "{}")),
            "timeout": props.get("call.timeout") == "failed",
            "crashed": crashed,
            "shrink": props.get("shrink", ""),
            "duration": round(report.duration, 3),
            "message": failure.get("message", "") if report.failed or hasattr(report, "wasxfail") else "",
            "cause": failure.get("cause") if report.failed or hasattr(report, "wasxfail") else None,
        }
        # Evidence, examples and the timeout are counted once per report, on its first entry.
        kept = [entry, *({**entry, "clause": clause_id, "evidence": {}, "coverage": {}, "examples": 0,
                          "timeout": False, "saved": ""} for clause_id in clauses[1:])]
        marked = props.get("marked_clause")
        if marked and marked not in clauses:
            kept.append({**entry, "clause": marked, "outcome": "stopped", "charged": clauses, "evidence": {},
                         "coverage": {}, "examples": 0, "timeout": False, "saved": ""})
        self.reports.extend(kept)
        return entry

    def from_nodeid(self, nodeid: str) -> dict[str, str] | None:
        """Destination and clause of a suite test from its node id, for reports without properties.

        A crashed xdist worker's report carries none: the item never finished on the worker.
        """
        match = re.search(r"::(test_\w+)\[(.*)\]$", nodeid)
        if not match or not Path(nodeid.split("::")[0]).name.startswith("test_conformance_"):
            return None
        clause_id = suite_clauses().get(match.group(1))
        names = [r.name for r in self.registrations
                 if match.group(2) == r.name or match.group(2).startswith(r.name + "-")]
        if clause_id is None or not names:
            return None
        return {"clause": clause_id, "destination": max(names, key=len)}

    def table(self) -> Table:
        """The verdict of every clause, per destination; a "not checked" one the baseline accepts says why."""
        table = verdicts(self.registrations, self.reports, self.timeout, self.baseline)
        for name, rows in table.items():
            for clause_id, reason in self.accepted_for(name).items():
                row = rows[clause_id]
                if row["status"] is Status.NOT_CHECKED:
                    row["reason"] = f"{row['reason']}; accepted in the baseline: {reason}".lstrip("; ")
        return table

    def accepted_for(self, name: str) -> dict[str, str]:
        """Clause -> reason of the "not checked" clauses the baseline accepts for one destination."""
        return {**self.accepted.get("*", {}), **self.accepted.get(name, {})}

    def strict_failures(self, table: Table | None = None) -> dict[str, list[str]]:
        """Per destination, its clauses not checked that the baseline does not accept (empty unless strict)."""
        if not self.strict:
            return {}
        found = {name: [c for c, row in rows.items() if row["status"] is Status.NOT_CHECKED
                        and c not in self.accepted_for(name)] for name, rows in (table or self.table()).items()}
        return {name: clauses for name, clauses in found.items() if clauses}

    def nothing_was_checked(self) -> bool:
        """Whether some destination had no clause checked at all (the run must then fail); notes which."""
        self.nothing_checked = [  # call.timeout alone says nothing of the destination
            name for name, rows in self.table().items()
            if not any(Status(r["status"]).judged for c, r in rows.items()
                       if c != "call.timeout")]
        return bool(self.nothing_checked)

    def progress_line(self, budget_seconds: float, last: dict[str, Any]) -> str:
        """The budget's progress line: elapsed time, examples of the check that just ended, failures so far."""
        elapsed = time.time() - self.started
        failures = sum(1 for r in self.reports if r["outcome"] == "failed")
        shrink = f" ({last['shrink']})" if last.get("shrink") else ""
        return (f"[{elapsed:6.0f}s of {budget_seconds:.0f}s] {last['destination']} {last['clause']}: "
                f"{last.get('examples', 0)} examples, {last['outcome']}{shrink}; failures so far: {failures}")

    def summary(self, terminalreporter: Any, config: pytest.Config, seed: int | str, budget: float | None) -> None:
        """The clause tables, saved failures, and the JSON and Markdown reports when asked for."""
        for name in self.nothing_checked:
            terminalreporter.write_line(f"conformance: no clause of {name} was checked in this run (every clause "
                                        "is not checked, not applicable or skipped); the run fails",
                                        red=True, bold=True)
        if self.baseline_path and self.baseline is None:
            terminalreporter.write_line(f"conformance: no baseline yet ({self.baseline_path} does not exist), so "
                                        "every failure fails the run; to adopt the gate with known failures, commit "
                                        f"a --conformance-report as {self.baseline_path}")
        table = self.table()
        strict = self.strict_failures(table)
        for name, rows in table.items():
            terminalreporter.section(f"destination conformance: {name}")
            registration = next(r for r in self.registrations if r.name == name)
            cause = self._root_cause_lines(terminalreporter, registration, rows)
            # Only what the run selected (-k, -m, --conformance-clause) is listed; the rest is one line.
            unselected = [c for c, row in rows.items() if row["reason"] == NOT_SELECTED]
            shown = {c: row for c, row in rows.items() if c not in unselected} or rows
            width = max(len(c) for c in shown)
            for clause_id, row in shown.items():
                reason = f"  {row['reason']}" if row["reason"] else ""
                if cause is not None and clause_id in cause.clauses:
                    reason += f": {cause.label} failed, see the root cause above"
                cuts = sorted({r["shrink"] for r in self.reports if r["destination"] == name
                               and r["clause"] == clause_id and r["outcome"] == "failed" and r.get("shrink")})
                if cuts:  # the example shown is hypothesis' smallest within the bound, maybe not the smallest there is
                    reason += f"; {'; '.join(cuts)}: the example shown may not be minimal"
                status = Status(row["status"])
                terminalreporter.write_line(f"  {status.mark:<12} {clause_id:<{width}}{reason}",
                                            red=status is Status.FAILED, green=status is Status.PASSED)
            counts = {s.value: sum(1 for r in shown.values() if r["status"] == s) for s in Status}
            terminalreporter.write_line("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
            if unselected and shown is not rows:
                terminalreporter.write_line(f"  {len(unselected)} other clauses not selected in this run (not "
                                            "checked; listed in the JSON report)")
            checked_now = [c for c in self.accepted_for(name) if rows[c]["status"] != Status.NOT_CHECKED]
            if checked_now:  # the ratchet: the certificate drops them, so a baseline made from it is tighter
                terminalreporter.write_line(f"  accepted as not checked in the baseline but checked now: "
                                            f"{', '.join(checked_now)}; drop them from {ACCEPTED_NOT_CHECKED}")
            if name in strict:
                terminalreporter.write_line(
                    f"conformance: --conformance-strict: {len(strict[name])} clause(s) of {name} not checked "
                    f"({', '.join(strict[name])}); the run fails (a baseline may accept one under "
                    f"\"{ACCEPTED_NOT_CHECKED}\" with its reason)", red=True, bold=True)
        saved = [r["saved"] for r in self.reports if r.get("saved")]
        if saved:
            terminalreporter.section("conformance failures saved as regression tests")
            for path in saved:
                terminalreporter.write_line(f"  {path}")
        conduit = conduit_binary(config)
        engine = engine_version(conduit) if conduit is not None else None  # what the pipeline.* verdicts ran on
        if self.report_path:
            path = Path(config.invocation_params.dir, self.report_path)
            path.write_text(json.dumps(self.certificate(table, seed, budget, engine), indent=2) + "\n")
            terminalreporter.write_line(f"conformance report written to {self.report_path}")
        markdown_path = self.markdown_path or os.environ.get("GITHUB_STEP_SUMMARY")
        if markdown_path:
            with open(Path(config.invocation_params.dir, markdown_path), "a", encoding="utf-8") as f:
                f.write(markdown(table, engine))

    def _root_cause_lines(self, terminalreporter: Any, registration: Registration,
                          rows: dict[str, Any]) -> RootCause | None:
        """Prints, once, the factory/configure/open failure behind most failed clauses, with one replay of it."""
        cause = find_root_cause(rows, [r for r in self.reports if r["destination"] == registration.name])
        if cause is None:
            return None
        terminalreporter.write_line(f"  {cause.line}", red=True, bold=True)
        calls = {"factory": [], "configure": [Call("configure")], "open": [Call("configure"), Call("open")]}[cause.call]
        terminalreporter.write_line("  replay it:")
        for line in render_snippet(registration.name, dict(registration.config), calls).splitlines():
            terminalreporter.write_line(f"      {line}")
        return cause

    def certificate(self, table: Table, seed: int | str, budget: float | None,
                    engine: EngineVersion | None = None) -> dict[str, Any]:
        """The JSON report: enough to rerun the same checks and compare outcomes."""
        current = settings()
        return {
            "suite_version": __version__,
            "contract_version": harness.CONTRACT_VERSION,
            "hypothesis": {
                "version": hypothesis.__version__,
                "profile": settings.get_current_profile_name(),
                "max_examples": current.max_examples,
                "derandomize": current.derandomize,
                "seed": seed,
            },
            "budget": budget,
            "per_call_limit": self.timeout,
            "baseline": self.baseline_path,
            "engine": engine.as_json() if engine is not None else None,
            "started": self.started,
            "duration": round(time.time() - self.started, 3),
            "destinations": {
                r.name: {
                    **destination_version(r),
                    "registration_sha256": registration_fingerprint(r),
                    "transport": r.transport,
                    # A Go connector's SDK module and release, and whether the suite has measured that release.
                    **({"built_with": dict(r.built_with)} if r.built_with else {}),
                    "structured_data": r.structured_data,
                    "config": dict(r.config),
                    "directory_param": r.directory_param,
                    "path_param": r.path_param,
                    "read_back": r.read_back is not None,
                    "skip": dict(r.skip),
                    "clauses": table[r.name],
                    # Carried over from the baseline while still not checked, so a report made the next baseline
                    # keeps them (and loses those checked since).
                    ACCEPTED_NOT_CHECKED: {c: reason for c, reason in self.accepted_for(r.name).items()
                                           if table[r.name][c]["status"] == Status.NOT_CHECKED},
                }
                for r in self.registrations
            },
        }


def failure_data(failure: ClauseFailure) -> dict[str, Any]:
    """What the report keeps of a check's failure: its clause, the first line of what happened, and the set-up
    call's failure behind it ([call, error], for the root cause) or None."""
    lines = failure.what.strip().splitlines()
    cause = [failure.cause.call, failure.cause.error] if failure.cause is not None else None
    return {"clause": failure.clause.id, "message": lines[0].strip() if lines else "", "cause": cause}


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


_SUITE_CLAUSES: dict[str, str] = {}


def suite_clauses() -> dict[str, str]:
    """Suite test function name -> the clause its marker names."""
    if not _SUITE_CLAUSES:
        for path in sorted(SUITE_DIR.glob("test_conformance_*.py")):
            module = importlib.import_module(f"conformance.suite.{path.stem}")
            for name, obj in vars(module).items():
                marks = [m for m in getattr(obj, "pytestmark", []) if m.name == "clause"]
                if name.startswith("test_") and marks:
                    _SUITE_CLAUSES[name] = marks[0].args[0]
    return _SUITE_CLAUSES


def markdown(table: Table, engine: EngineVersion | None = None) -> str:
    """The clause table as Markdown, one section per destination (for GITHUB_STEP_SUMMARY)."""
    parts = []
    for name, rows in table.items():
        counts = {s.value: sum(1 for r in rows.values() if r["status"] == s) for s in Status}
        parts.append(f"### Destination conformance: `{name}`\n")
        if engine is not None:
            parts.append(f"Pipelines ran on {engine.describe()}.\n")
        parts.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + "\n")
        parts.append("| clause | verdict | notes |\n|---|---|---|")
        for clause_id, row in rows.items():
            reason = str(row.get("reason", "")).replace("|", "\\|")
            status = Status(row["status"])
            parts.append(f"| `{clause_id}` | {status.icon} {status.value} | {reason} |")
        parts.append("")
    return "\n".join(parts) + "\n"


def registration_fingerprint(registration: Registration) -> str:
    """A hash of what a registration declares, so a certificate names exactly what was checked."""
    declared = {
        "config": dict(sorted(registration.config.items())),
        "directory_param": registration.directory_param,
        "read_back": getattr(registration.read_back, "__qualname__", repr(registration.read_back)),
        "factory": f"{getattr(registration.factory, '__module__', '')}."
                   f"{getattr(registration.factory, '__qualname__', '')}",
        "valid_keys": repr(registration.valid_keys),
        "invalid_keys": repr(registration.invalid_keys),
        # As when not_applicable was a skip whose reason said so: the same registration keeps its fingerprint.
        "skip": dict(sorted({**registration.skip, **{c: NOT_APPLICABLE_PREFIX + r for c, r in
                                                     registration.not_applicable.items()}}.items())),
        "transport": registration.transport,
        "structured_data": registration.structured_data,
    }
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def destination_version(registration: Registration) -> dict[str, str | None]:
    """The module a registration comes from and the installed distribution (with version) that provides it."""
    module = registration.name.partition(":")[0] or getattr(registration.factory, "__module__", "")
    top = module.split(".")[0]
    distributions = importlib.metadata.packages_distributions().get(top, [])
    version = None
    if distributions:
        try:
            version = importlib.metadata.version(distributions[0])
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"module": module, "distribution": distributions[0] if distributions else None, "version": version,
            "python": sys.version.split()[0]}
