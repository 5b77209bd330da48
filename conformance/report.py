"""Verdicts per clause from test outcomes, and their forms: terminal table, JSON certificate, Markdown, baseline."""

import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import Registration

from .checks import NOT_CHECKED_PREFIX
from .clauses import CLAUSES

__all__ = [
    "SKIPPED_PREFIX",
    "STATUS_MARKS",
    "verdicts",
    "load_baseline",
    "markdown",
    "registration_fingerprint",
    "destination_version",
]

SKIPPED_PREFIX = "skipped by registration: "
STATUS_MARKS = {"passed": "passed", "failed": "FAILED", "known failure": "known fail", "not checked": "not checked",
                "skipped": "skipped"}
Table = dict[str, dict[str, dict[str, Any]]]


def _timeout_row(mine: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    timed_out = [r for r in mine if r["timeout"]]
    ran = [r for r in mine if r["outcome"] != "skipped"]
    status = "failed" if timed_out else ("passed" if ran else "not checked")
    reason = (f"{len(timed_out)} check(s) hit the per-call limit of {timeout:g}s" if timed_out
              else "" if ran else "no check ran")
    return {"status": status, "reason": reason, "tests": [r["nodeid"] for r in timed_out]}


def _row(tests: list[dict[str, Any]], known: bool) -> dict[str, Any]:
    failed = [r for r in tests if r["outcome"] == "failed"]
    passed = [r for r in tests if r["outcome"] == "passed"]
    skipped = [r for r in tests if r["outcome"] == "skipped"]
    if failed:
        crashes = sum(1 for r in failed if r.get("crashed"))
        status = "known failure" if known else "failed"
        reason = f"{len(failed)} of {len(tests)} check(s) failed" + (
            f" ({crashes} ended the worker process: the destination killed or crashed it)" if crashes else "")
        if known:
            reason += "; failed in the baseline too"
    elif passed:
        status = "passed"
        notes = sorted({r["unchecked"] for r in passed if r.get("unchecked")})
        if skipped:
            notes.append(f"{len(skipped)} variant(s) not checked: "
                         f"{skipped[0]['reason'].removeprefix(NOT_CHECKED_PREFIX)}")
        reason = "partly: " + "; ".join(notes) if notes else ""
        if known:
            reason = "fixed since the baseline: tighten the baseline" + (f"; {reason}" if reason else "")
    elif skipped:
        text = skipped[0]["reason"]
        status = "skipped" if text.startswith(SKIPPED_PREFIX) else "not checked"
        reason = text.removeprefix(SKIPPED_PREFIX).removeprefix(NOT_CHECKED_PREFIX)
    else:
        status, reason = "not checked", "no check was selected in this run"
    coverage: dict[str, int] = {}
    for test in tests:
        for label, count in test.get("coverage", {}).items():
            coverage[label] = coverage.get(label, 0) + count
    return {
        "status": status,
        "reason": reason,
        "examples": sum(r.get("examples", 0) for r in tests),
        "coverage": dict(sorted(coverage.items())),
        "tests": [{"nodeid": r["nodeid"], "outcome": r["outcome"], "duration": r["duration"],
                   "examples": r.get("examples", 0)} for r in tests],
    }


def verdicts(
    registrations: Sequence[Registration],
    reports: Sequence[Mapping[str, Any]],
    timeout: float,
    baseline: Mapping[str, Mapping[str, str]] | None = None,
) -> Table:
    """Per destination and clause: status (passed, failed, known failure, not checked, skipped), reason, tests."""
    table: Table = {}
    for registration in registrations:
        mine = [dict(r) for r in reports if r["destination"] == registration.name]
        known = (baseline or {}).get(registration.name, {})
        rows: dict[str, dict[str, Any]] = {}
        for clause in CLAUSES.values():
            if clause.id == "call.timeout":
                rows[clause.id] = _timeout_row(mine, timeout)
            elif clause.id in registration.skip:
                rows[clause.id] = {"status": "skipped", "reason": registration.skip[clause.id], "tests": []}
            else:
                tests = [r for r in mine if r["clause"] == clause.id]
                rows[clause.id] = _row(tests, known.get(clause.id) in ("failed", "known failure"))
        table[registration.name] = rows
    return table


def load_baseline(path: Path) -> dict[str, dict[str, str]]:
    """Destination -> clause -> status from an earlier JSON report; ValueError says what is wrong with it."""
    try:
        document = json.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON: {err}") from None
    destinations = document.get("destinations") if isinstance(document, dict) else None
    if not isinstance(destinations, dict):
        raise ValueError(f"{path} is not a conformance report (no 'destinations' object)")
    return {
        name: {clause: row.get("status", "") for clause, row in entry.get("clauses", {}).items()}
        for name, entry in destinations.items()
    }


def markdown(table: Table) -> str:
    """The clause table as Markdown, one section per destination (for GITHUB_STEP_SUMMARY)."""
    icons = {"passed": "✅", "failed": "❌", "known failure": "⚠️", "not checked": "➖", "skipped": "⏭️"}
    parts = []
    for name, rows in table.items():
        counts = {s: sum(1 for r in rows.values() if r["status"] == s) for s in icons}
        parts.append(f"### Destination conformance: `{name}`\n")
        parts.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + "\n")
        parts.append("| clause | verdict | notes |\n|---|---|---|")
        for clause_id, row in rows.items():
            reason = str(row.get("reason", "")).replace("|", "\\|")
            parts.append(f"| `{clause_id}` | {icons[row['status']]} {row['status']} | {reason} |")
        parts.append("")
    return "\n".join(parts) + "\n"


def registration_fingerprint(registration: Registration) -> str:
    """A hash of what a registration declares, so a certificate names exactly what was checked."""
    declared = {
        "config": dict(sorted(registration.config.items())),
        "directory_param": registration.directory_param,
        "read_back": getattr(registration.read_back, "__qualname__", repr(registration.read_back)),
        "factory": f"{getattr(registration.factory, '__module__', '')}.{getattr(registration.factory, '__qualname__', '')}",
        "valid_keys": repr(registration.valid_keys),
        "invalid_keys": repr(registration.invalid_keys),
        "skip": dict(sorted(registration.skip.items())),
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
