"""Verdicts per clause from the run's recorded outcomes and their evidence, and the root cause behind most
failures."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.contract.checks import NOT_APPLICABLE_PREFIX, NOT_CHECKED_PREFIX
from conformance.contract.clauses import CLAUSES, required_evidence
from conformance.contract.evidence import EvidenceKey
from conformance.results.status import PARTLY, Status
from harness import Registration

__all__ = [
    "SKIPPED_PREFIX",
    "STATUS_MARKS",
    "Table",
    "verdicts",
    "RootCause",
    "find_root_cause",
    "root_cause",
]

SKIPPED_PREFIX = "skipped by registration: "
STATUS_MARKS = {status.value: status.mark for status in Status}  # the terminal's marks, by status
Table = dict[str, dict[str, dict[str, Any]]]


def _keys(mine: list[dict[str, Any]], clause_id: str) -> dict[EvidenceKey, int]:
    """Evidence counts for one clause, summed over every test of the destination."""
    counts: dict[EvidenceKey, int] = {}
    for report in mine:
        for text, count in report.get("evidence", {}).items():
            key = EvidenceKey.decode(text)
            if key.clause == clause_id:
                counts[key] = counts.get(key, 0) + int(count)
    return counts


def _evidence(mine: list[dict[str, Any]], clause_id: str) -> dict[str, int]:
    """Evidence counts for one clause by label, as the reports show them (an adapter's answers "n/a:<label>")."""
    shown = {(f"n/a:{key.label}" if key.answered else key.label): n for key, n in _keys(mine, clause_id).items()}
    return dict(sorted(shown.items()))


def _shortfall(required: Sequence[str], counts: Mapping[str, int], examples: int) -> str:
    """What never happened in the run, with counts, for a "not checked" verdict."""
    missing = [label for label in required if not counts.get(label)]
    shown = "; ".join(missing[:6]) + (f"; and {len(missing) - 6} more" if len(missing) > 6 else "")
    seen = sum(1 for label in required if counts.get(label))
    return (f"never exercised: {shown} ({seen} of {len(required)} required kinds of evidence seen, over "
            f"{examples} example(s))")


def _stopped(tests: list[dict[str, Any]]) -> str:
    """What stopped this clause's checks before they judged it: a failure charged to another clause, or ""."""
    stopped = [r for r in tests if r["outcome"] == "stopped"]
    if not stopped:
        return ""
    names = sorted({r["nodeid"].split("::")[-1].split("[")[0] for r in stopped})
    charged = sorted({c for r in stopped for c in r.get("charged", [])})
    return (f"{len(stopped)} check(s) ({', '.join(names)}) stopped at a failure charged to {', '.join(charged)} "
            "before judging this clause")


def _skip_reasons(clause_id: str, skipped: list[dict[str, Any]]) -> str:
    """Every distinct reason the clause's checks were skipped for, its own area's checks first: with several checks,
    the first one's reason alone could blame what only another one met (C-level I/O, when write() never even
    raised the WriteError to recover from)."""
    own = f"test_conformance_{clause_id.split('.')[0]}.py"
    ordered = sorted(skipped, key=lambda r: r["nodeid"].split("::")[0].rsplit("/", 1)[-1] != own)
    texts = (r["reason"].removeprefix(SKIPPED_PREFIX).removeprefix(NOT_CHECKED_PREFIX).removeprefix(
        NOT_APPLICABLE_PREFIX) for r in ordered)
    return "; ".join(dict.fromkeys(texts))


def _timeout_row(mine: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    timed_out = [r for r in mine if r["timeout"]]
    counts = _evidence(mine, "call.timeout")
    returned = counts.get("call returned within the limit", 0)
    status = Status.FAILED if timed_out else (Status.PASSED if returned else Status.NOT_CHECKED)
    reason = (f"{len(timed_out)} check(s) hit the per-call limit of {timeout:g}s" if timed_out
              else "" if returned else "no call of the destination returned in this run (no check ran, or the "
                                         "factory failed every time)")
    return {"status": status, "reason": reason, "evidence": counts, "tests": [r["nodeid"] for r in timed_out]}


def _row(clause_id: str, registration: Registration, tests: list[dict[str, Any]], mine: list[dict[str, Any]],
         known: bool) -> dict[str, Any]:
    failed = [r for r in tests if r["outcome"] == "failed"]
    passed = [r for r in tests if r["outcome"] == "passed"]
    skipped = [r for r in tests if r["outcome"] == "skipped"]
    stopped = _stopped(tests)  # checks of this clause that failed on another clause first
    listed, tests = tests, [r for r in tests if r["outcome"] != "stopped"]
    counts = _evidence(mine, clause_id)
    by_adapter = {key.label for key in _keys(mine, clause_id) if key.answered}
    inapplicable = sorted({r["not_applicable"][clause_id] for r in mine if clause_id in r.get("not_applicable", {})})
    examples = sum(r.get("examples", 0) for r in tests)
    if failed:
        crashes = sum(1 for r in failed if r.get("crashed"))
        status = Status.KNOWN_FAILURE if known else Status.FAILED
        reason = f"{len(failed)} of {len(tests)} check(s) failed" + (
            f" ({crashes} ended the worker process: the destination killed or crashed it)" if crashes else "")
        if known:
            reason += "; failed in the baseline too"
    elif passed and all("test_replay_saved_failure" in r["nodeid"] for r in passed):
        # --conformance-replay: the saved failure no longer reproduces; a replay gathers no evidence of its own.
        status = Status.PASSED
        reason = "replay of a saved failure only: it no longer fails (the clause's own evidence was not gathered in " \
                 "this run)"
    elif passed:
        # A label an adapter answered for (not the destination) neither counts as evidence nor leaves the clause
        # unchecked, and the verdict says which part was not applicable.
        answered = [label for label in required_evidence(clause_id, registration)
                    if not counts.get(label) and label in by_adapter]
        required = [label for label in required_evidence(clause_id, registration) if label not in answered]
        if not required and answered:
            status, reason = Status.NOT_APPLICABLE, "; ".join(inapplicable) or "an adapter answers every part"
        elif any(not counts.get(label) for label in required):
            # No evidence, no pass: the clause was not really exercised in this run.
            if inapplicable:
                status, reason = Status.NOT_APPLICABLE, "; ".join(inapplicable)
            else:
                # What stopped the checks that gather the missing evidence, when some were skipped.
                why = "; ".join(filter(None, [*sorted({r["shortfalls"] for r in passed if r.get("shortfalls")}),
                                              _skip_reasons(clause_id, skipped)]))
                status, reason = Status.NOT_CHECKED, _shortfall(required, counts, examples) + (
                    f"; {stopped}" if stopped else "") + (f"; not checked: {why}" if why else "")
        else:
            status = Status.PASSED
            notes = sorted({r["unchecked"] for r in passed if r.get("unchecked")})
            notes += [f"not applicable: {text}" for text in inapplicable]
            if answered:
                notes.append(f"{len(answered)} part(s) answered by an adapter: {', '.join(answered[:4])}")
            if stopped:
                notes.append(stopped)
            if skipped:
                notes.append(f"{len(skipped)} variant(s) not checked: {_skip_reasons(clause_id, skipped)}")
            reason = PARTLY + "; ".join(notes) if notes else ""
        if known:
            reason = "fixed since the baseline: tighten the baseline" + (f"; {reason}" if reason else "")
    elif skipped:
        text = skipped[0]["reason"]
        status = Status.SKIPPED if text.startswith(SKIPPED_PREFIX) else Status.NOT_CHECKED
        if text.startswith(NOT_APPLICABLE_PREFIX):
            status = Status.NOT_APPLICABLE
        reason = _skip_reasons(clause_id, skipped)
        if stopped:
            reason += f"; {stopped}"
    elif stopped:
        status, reason = Status.NOT_CHECKED, stopped
    else:
        status, reason = Status.NOT_CHECKED, "no check was selected in this run"
    coverage: dict[str, int] = {}
    for test in tests:
        for label, count in test.get("coverage", {}).items():
            coverage[label] = coverage.get(label, 0) + count
    return {
        "status": status,
        "reason": reason,
        "examples": examples,
        "evidence": counts,
        "coverage": dict(sorted(coverage.items())),
        "tests": [{"nodeid": r["nodeid"], "outcome": r["outcome"], "duration": r["duration"],
                   "examples": r.get("examples", 0)} for r in listed],
    }


def verdicts(
    registrations: Sequence[Registration],
    reports: Sequence[Mapping[str, Any]],
    timeout: float,
    baseline: Mapping[str, Mapping[str, Status]] | None = None,
) -> Table:
    """Per destination and clause: status (a Status), reason, evidence counts, tests."""
    table: Table = {}
    for registration in registrations:
        mine = [dict(r) for r in reports if r["destination"] == registration.name]
        known = (baseline or {}).get(registration.name, {})
        rows: dict[str, dict[str, Any]] = {}
        for clause in CLAUSES.values():
            if clause.id == "call.timeout":
                rows[clause.id] = _timeout_row(mine, timeout)
            elif clause.id in registration.not_applicable:  # an SDK limit (harness.conduit.buildinfo), say
                rows[clause.id] = {"status": Status.NOT_APPLICABLE, "reason": registration.not_applicable[clause.id],
                                   "tests": []}
            elif clause.id in registration.skip:
                # A skip whose reason starts "not applicable: " is reported as that verdict.
                reason = registration.skip[clause.id]
                status = Status.NOT_APPLICABLE if reason.startswith(NOT_APPLICABLE_PREFIX) else Status.SKIPPED
                rows[clause.id] = {"status": status, "reason": reason.removeprefix(NOT_APPLICABLE_PREFIX), "tests": []}
            else:
                tests = [r for r in mine if r["clause"] == clause.id]
                rows[clause.id] = _row(clause.id, registration, tests, mine,
                                       known.get(clause.id) in (Status.FAILED, Status.KNOWN_FAILURE))
        table[registration.name] = rows
    return table


@dataclass(frozen=True)
class RootCause:
    """The one failure behind most failed clauses of a destination: its factory, configure() or open() failing."""

    call: str  # "factory", "configure" or "open"
    error: str  # the exception type, or "did not return"
    message: str  # one failure's "What happened:" line, e.g. "open() raised PermissionError: [Errno 13] ..."
    clauses: tuple[str, ...]  # the failed clauses it explains
    failed: int  # failed clauses in all

    @property
    def label(self) -> str:
        """The failing call as the summary names it: "the factory", "configure()" or "open()"."""
        return "the factory" if self.call == "factory" else f"{self.call}()"

    @property
    def line(self) -> str:
        """The summary's headline."""
        which = (f"all {self.failed} failed clauses" if len(self.clauses) == self.failed
                 else f"{len(self.clauses)} of the {self.failed} failed clauses")
        return f"root cause: {which} failed because {self.message}"


def find_root_cause(rows: Mapping[str, Mapping[str, Any]], reports: Sequence[Mapping[str, Any]]) -> RootCause | None:
    """The failure of the factory, configure() or open() behind most (more than half, and at least 3) of the failed
    clauses in `rows` (one destination's verdicts), from the "cause" ([call, error], ClauseFailure.cause) of the
    `reports` their tests produced."""
    failed = [clause for clause, row in rows.items() if row.get("status") in (Status.FAILED, Status.KNOWN_FAILURE)]
    explained: dict[tuple[str, str], list[str]] = {}
    messages: dict[tuple[str, str], str] = {}
    for clause in failed:
        tests = rows[clause].get("tests", [])
        nodeids = {t["nodeid"] if isinstance(t, Mapping) else t for t in tests}
        for report in reports:
            found = report.get("cause") if report.get("outcome") == "failed" else None
            cause = (str(found[0]), str(found[1])) if found else None
            if cause is not None and report.get("nodeid") in nodeids:
                if clause not in explained.setdefault(cause, []):
                    explained[cause].append(clause)
                messages.setdefault(cause, report["message"])
    if not explained:
        return None
    cause, clauses = max(explained.items(), key=lambda item: len(item[1]))
    if len(clauses) < 3 or 2 * len(clauses) <= len(failed):
        return None
    return RootCause(cause[0], cause[1], messages[cause], tuple(clauses), len(failed))


def root_cause(rows: Mapping[str, Mapping[str, Any]], reports: Sequence[Mapping[str, Any]]) -> str | None:
    """One line naming the failure of the factory, configure() or open() behind most failed clauses, or None."""
    found = find_root_cause(rows, reports)
    return found.line if found is not None else None
