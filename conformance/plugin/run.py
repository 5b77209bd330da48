"""One conformance run: its state, and the pytest hooks that act on it (registered only with --destination)."""

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pytest import junitxml
from hypothesis import settings

import harness
from conformance import __version__
from conformance.contract.checks import NOT_APPLICABLE_PREFIX, NOT_CHECKED_PREFIX, ClauseFailure
from conformance.contract.clauses import CLAUSES, DIRECTORY, READ_BACK
from conformance.engine.conduit_version import engine_version
from conformance.engine.pipeline import conduit_binary
from conformance.execute import scratch
from conformance.execute.subject import Subject
from conformance.plugin import budget as budget_clock
from conformance.plugin._hypothesis_compat import reproduce_blob
from conformance.plugin.budget import Budget
from conformance.plugin.header import destination_lines, list_checks
from conformance.plugin.probe import ProbeResult, needs_failed_step, probe
from conformance.plugin.profiles import (
    BudgetSpent,
    ShrinkStopped,
    force_seed,
    pace_examples,
    paced_reports,
    randomized_for_budget,
    run_seed,
    seed_description,
    seed_in_report,
)
from conformance.results.junit import add_verdicts
from conformance.results.report import Recorder, failure_data
from conformance.results.saved import load_saved, save_failure
from conformance.results.status import Status
from conformance.results.verdicts import SKIPPED_PREFIX
from conformance.suite import SUITE_DIR
from harness import Registration

__all__ = ["ConformanceRun", "SuiteModule"]


@dataclass(eq=False)  # a plugin object: pluggy hashes it
class ConformanceRun:
    """What the plugin knows in one pytest run with --destination, and its hooks."""

    config: pytest.Config
    registrations: list[Registration]
    timeout: float
    recorder: Recorder
    budget: Budget | None = None
    replays: list[str] = field(default_factory=list)  # --conformance-replay files, absolute
    save_dir: str | None = None
    process_started: float = 0.0  # wall-clock start of this process (the xdist controller's, on a worker)
    seed: int | None = None  # hypothesis' seed for the run when given; None when random or derandomized
    clause_patterns: list[str] = field(default_factory=list)  # --conformance-clause globs; empty: every clause
    user_paths: list[str] = field(default_factory=list)  # path arguments whose tests run together with the suite
    probes: dict[str, ProbeResult] = field(default_factory=dict)  # registration name -> what the probe found
    listed: list[tuple[str, str]] = field(default_factory=list)  # (clause, check) selected, for --collect-only

    # -- start -----------------------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """The run's profile and seed, once every plugin has configured hypothesis (its own plugin loads
        --hypothesis-profile after our pytest_configure) and before the suite's modules take their settings."""
        if self.budget is not None:
            randomized_for_budget()
        workerinput = getattr(session.config, "workerinput", None)
        if workerinput is not None and workerinput.get("conformance_scratch"):
            scratch.use_root(workerinput["conformance_scratch"])
        else:
            scratch.open_root()
        self.seed = run_seed(session.config)
        force_seed(self.seed)  # the seed the report names is the one every check uses, as --hypothesis-seed does
        if session.config.option.collectonly:
            return
        if workerinput is not None and "conformance_probes" in workerinput:  # the controller probed once for all
            self.probes = {name: ProbeResult(step, message, timeout) for name, (step, message, timeout)
                           in workerinput["conformance_probes"].items()}
        else:
            self.probes = {r.name: probe(r, self.timeout) for r in self.registrations}
            if self.config.pluginmanager.has_plugin("dsession"):  # xdist's controller collects nothing itself
                self._record_probe_failures({})

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hands each xdist worker the controller's seed (so all use the one the report names) and start time (so
        the budget ends for all at once), and the run's scratch root (so the controller removes what a killed worker
        left)."""
        node.workerinput["conformance_seed"] = self.seed
        node.workerinput["conformance_started"] = self.process_started
        node.workerinput["conformance_scratch"] = scratch.root()
        node.workerinput["conformance_probes"] = {name: (p.step, p.message, p.timeout)
                                                  for name, p in self.probes.items()}

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        current = settings()
        budget = f"; budget {self.budget.seconds:g}s" if self.budget is not None else ""
        lines = [
            f"conformance suite {__version__}, contract {harness.CONTRACT_VERSION}; hypothesis profile "
            f"{settings.get_current_profile_name()!r} (max_examples={current.max_examples}, "
            f"derandomize={current.derandomize}), {seed_description(self.seed)}; per-call limit "
            f"{self.timeout:g}s{budget}",
        ]
        for registration in self.registrations:
            lines.extend(destination_lines(registration, self.probes.get(registration.name), self.timeout))
        conduit = conduit_binary(config)
        if conduit is not None:  # the engine the pipeline.* verdicts hold for
            lines.append(f"conduit: {conduit}: {engine_version(conduit).describe()}")
        if self.user_paths:
            lines.append(f"also running your tests in: {' '.join(self.user_paths)} (with the suite, one exit status)")
        if self.clause_patterns:
            lines.append(f"clauses selected: {', '.join(self.clause_patterns)}")
        return lines

    # -- collection ------------------------------------------------------------------------------------------

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        if collection_path.parent == SUITE_DIR and collection_path.name == "test_conformance_replay.py":
            return True if not self.replays else None  # replays only with --conformance-replay
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
        if _in_suite(module_path):
            return SuiteModule.from_parent(parent, path=module_path)
        return None

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
        if not _in_suite(file_path):
            return None
        if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")):
            return None  # the python plugin collects it, through pytest_pycollect_makemodule above
        return SuiteModule.from_parent(parent, path=file_path)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "registration" not in metafunc.fixturenames:
            return
        if "replay_file" in metafunc.fixturenames:
            metafunc.parametrize("replay_file", self.replays, ids=[Path(r).name for r in self.replays])
        if "variant" in metafunc.fixturenames:
            # Fault and safety checks run under the registered config and under each declared variant of it.
            pairs = [(r, dict(v)) for r in self.registrations for v in ({}, *r.variants)]
            ids = [r.name + "".join(f"-{k}={val}" for k, val in v.items()) for r, v in pairs]
            metafunc.parametrize(("registration", "variant"), pairs, ids=ids, scope="session")
            return
        metafunc.parametrize("registration", self.registrations, ids=[r.name for r in self.registrations],
                             scope="session")

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and isinstance(callspec.params.get("replay_file"), str):
                header, _ = load_saved(Path(callspec.params["replay_file"]))
                item.add_marker(pytest.mark.clause(header["clause"]))
        for item in items:
            clause_id = _clause_of(item)
            callspec = getattr(item, "callspec", None)
            registration = callspec.params.get("registration") if callspec else None
            if clause_id is None or not isinstance(registration, Registration):
                continue
            item.user_properties.append(("clause", clause_id))
            item.user_properties.append(("destination", registration.name))
            if clause_id in registration.skip:
                item.add_marker(pytest.mark.skip(reason=SKIPPED_PREFIX + registration.skip[clause_id]))
                continue
            if clause_id in registration.not_applicable:
                item.add_marker(pytest.mark.skip(reason=NOT_APPLICABLE_PREFIX + registration.not_applicable[clause_id]))
                continue
            for need in CLAUSES[clause_id].needs:
                if need == READ_BACK and registration.read_back is None:
                    item.add_marker(pytest.mark.skip(reason=NOT_CHECKED_PREFIX + "needs read_back, which the "
                                                     "registration does not provide"))
                elif need == DIRECTORY and registration.directory_param is None:
                    item.add_marker(pytest.mark.skip(reason=NOT_CHECKED_PREFIX + "needs directory_param, which the "
                                                     "registration does not name"))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not hasattr(session.config, "workerinput") and not self._probe_failures() and not any(
            SUITE_DIR in Path(str(item.path)).parents for item in session.items
        ):
            # A CI gate must never go green without having checked anything (a failed probe fails the run itself).
            raise pytest.UsageError(
                "--destination is given but none of the conformance checks was collected (-k, -m or "
                "--conformance-clause deselected them all); select at least one check")
        if self.budget is not None:
            # Generated checks share the budget; fixed ones run once, and their time is set aside as they come.
            self.budget.plan([item for item in session.items if _clause_of(item)])

    def add_clause_keywords(self, item: pytest.Item) -> None:
        """Adds a check's clause id (and its area, `write`) to its keywords, for -k."""
        clause_id = _clause_of(item)
        if clause_id is not None:
            item.extra_keyword_matches.add(clause_id)

    def select(self, items: list[pytest.Item]) -> None:
        """Deselects (after -k/-m) the checks outside --conformance-clause and those a failed probe makes pointless;
        the latter's clauses fail with the probe's failure as their root cause."""
        keep: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        pointless: dict[str, set[str]] = {}  # registration name -> clauses deselected for its failed probe
        for item in items:
            clause_id = _clause_of(item)
            callspec = getattr(item, "callspec", None)
            registration = callspec.params.get("registration") if callspec else None
            if clause_id is None or not isinstance(registration, Registration):
                keep.append(item)  # the user's own tests, when a path was given
            elif self.clause_patterns and not any(fnmatch.fnmatchcase(clause_id, p) for p in self.clause_patterns):
                dropped.append(item)
            elif self._stopped_by_probe(registration, clause_id):
                dropped.append(item)
                if not registration.omits(clause_id):
                    pointless.setdefault(registration.name, set()).add(clause_id)
            else:
                keep.append(item)
        if dropped:
            self.config.hook.pytest_deselected(items=dropped)
            items[:] = keep
        if self.config.option.collectonly:
            self.listed = [(c, item.nodeid) for item in items if (c := _clause_of(item)) is not None]
        if not hasattr(self.config, "workerinput"):
            self._record_probe_failures(pointless)

    def _record_probe_failures(self, pointless: dict[str, set[str]]) -> None:
        """One failed outcome per clause a failed probe stopped, carrying its message (the summary's root cause)."""
        xdist = self.config.pluginmanager.has_plugin("dsession")  # no items here: every clause that needs the step
        for registration in self.registrations:
            result = self.probes.get(registration.name)
            if result is None or not result.failed:
                continue
            clauses = pointless.get(registration.name, set())
            if xdist:
                clauses = {c for c in CLAUSES if self._stopped_by_probe(registration, c) and not registration.omits(c)
                           and (not self.clause_patterns
                                or any(fnmatch.fnmatchcase(c, p) for p in self.clause_patterns))}
            for clause_id in sorted(clauses, key=list(CLAUSES).index):
                self.recorder.reports.append(_probe_entry(registration.name, clause_id, result))

    def _stopped_by_probe(self, registration: Registration, clause_id: str) -> bool:
        """Whether the failed probe of `registration` makes the checks of `clause_id` pointless; pipeline.* checks
        without a Conduit binary skip at once (not checked), so they stay."""
        result = self.probes.get(registration.name)
        if result is None or not needs_failed_step(clause_id, result):
            return False
        return not clause_id.startswith("pipeline.") or conduit_binary(self.config) is not None

    def _probe_failures(self) -> list[str]:
        """The registrations whose probe failed."""
        return [name for name, result in self.probes.items() if result.failed]

    # -- running ---------------------------------------------------------------------------------------------

    @pytest.fixture
    def subject(self, registration: Registration, request: pytest.FixtureRequest) -> Subject:
        """The destination under check, for the clause the test is marked with."""
        marker = request.node.get_closest_marker("clause")
        return Subject(registration, marker.args[0] if marker else "call.timeout", self.timeout)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        """Times each check whole (set-up, teardown and reporting included, which its share does not cover), for
        the budget's plan of the checks left."""
        started = budget_clock.clock()
        try:
            return (yield)
        finally:
            budget = self.budget
            if budget is not None and _clause_of(item) is not None:
                took = budget_clock.clock() - started
                if item.nodeid in budget.generated:
                    budget.generated_took(took, item.stash.get(_SHARE, 0.0), item.stash.get(_FAILED, False))
                else:
                    budget.fixed_took(took)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        subject = getattr(item, "funcargs", {}).get("subject")
        if not isinstance(subject, Subject):
            return (yield)
        started = budget_clock.clock()
        pacer = subject.pacer
        pace_examples(item)
        budget = self.budget
        budgeted = budget is not None and item.nodeid in budget.generated
        share = budget.share() if budget is not None and budgeted else 0.0
        if budget is not None and budgeted:
            item.stash[_SHARE] = share
            pacer.deadline = started + share
            pacer.min_shrink = budget.shrink_left  # a failure found at the deadline still gets this to shrink
        pacer.new_run()
        try:
            with paced_reports(pacer):
                try:
                    result = yield
                except BudgetSpent:
                    result = None
                except ShrinkStopped as stop:  # a hang, shrunk as far as MAX_HANGS more hanging calls allowed
                    raise stop.failure.with_traceback(stop.failure.__traceback__) from None
                # A budgeted run repeats the check with fresh random examples until its share is spent; a failure in
                # any repetition is the check's failure, shrunk within its own bounded share.
                repetition = 0
                while budgeted and pacer.generated and budget_clock.clock() < (pacer.deadline or 0.0):
                    repetition += 1
                    force_seed(self.seed, repetition)
                    pacer.new_run()
                    try:
                        item.runtest()
                    except BudgetSpent:
                        break
                    except ShrinkStopped as stop:
                        raise stop.failure.with_traceback(stop.failure.__traceback__) from None
            return result
        finally:
            force_seed(self.seed)
            item.stash[_FAILED] = pacer.failed_at is not None
            pacer.finish()
            if pacer.cut:
                item.user_properties.append(("shrink", pacer.cut))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        subject = getattr(item, "funcargs", {}).get("subject")
        if call.when == "call" and isinstance(subject, Subject):
            report.user_properties.extend(_subject_properties(subject))
        if report.failed and call.excinfo is not None and _clause_of(item) is not None:
            self._charge(item, report, call.excinfo.value)
        if call.excinfo is not None:
            first = next((e for e in _failures(call.excinfo.value) if isinstance(e, ClauseFailure)), None)
            if first is not None:  # the report's message and root cause, as data (it crosses from xdist workers)
                report.user_properties.append(("failure", json.dumps(failure_data(first))))
        if call.when == "call" and call.excinfo is not None:
            failures = [e for e in _failures(call.excinfo.value) if isinstance(e, ClauseFailure)]
            if any(e.timeout for e in failures):
                report.user_properties.append(("call.timeout", "failed"))
            if self.save_dir and failures:
                saved = self._save(item, failures[0], call.excinfo.value)
                report.user_properties.append(("saved", str(saved)))
                report.sections.append(("conformance", f"failure saved as a regression test: {saved}"))
        return report

    def _charge(self, item: pytest.Item, report: pytest.TestReport, error: BaseException) -> None:
        """Charges a failure to the clauses its ClauseFailures name (the check's own clause when none does): they
        become the report's and the JUnit test case's clause properties, and the failure is a known failure (xfail)
        only when every one of them failed in the baseline."""
        marked = _clause_of(item)
        charged = list(dict.fromkeys(e.clause.id for e in _failures(error) if isinstance(e, ClauseFailure)))
        charged = charged or [str(marked)]
        # The test case keeps every clause charged so far (a teardown error after a failed call adds its own).
        before = [str(value) for name, value in item.user_properties if name == "clause"]  # clause ids, set below
        first = item.stash.get(_CHARGED, None) is None
        clauses = list(dict.fromkeys(charged if first else [*before, *charged]))
        item.stash[_CHARGED] = clauses
        for props in (item.user_properties, report.user_properties):
            props[:] = [(name, value) for name, value in props if name not in ("clause", "marked_clause")]
            props.extend(("clause", clause_id) for clause_id in clauses)
            if marked not in clauses:  # the check stopped before it could judge its own clause
                props.append(("marked_clause", marked))
        callspec = getattr(item, "callspec", None)
        registration = callspec.params.get("registration") if callspec else None
        known = (self.recorder.baseline or {}).get(getattr(registration, "name", ""), {})
        if all(known.get(clause_id) in (Status.FAILED, Status.KNOWN_FAILURE) for clause_id in charged):
            report.outcome = "skipped"  # as pytest's own xfail: counted as xfailed, and the run does not fail
            report.wasxfail = f"known failure of {', '.join(charged)} in the baseline"

    def _save(self, item: pytest.Item, failure: ClauseFailure, error: BaseException) -> Path:
        """Saves a failure as its calls plus a pytest file replaying it (--conformance-save-failures)."""
        callspec = getattr(item, "callspec", None)
        args = {k: v for k, v in (callspec.params if callspec else {}).items() if k not in ("registration",)}
        function = getattr(item, "function", None)
        check = f"{function.__module__}::{function.__name__}" if function is not None and \
            function.__module__.startswith("conformance.suite.") and "replay_file" not in args else None
        return save_failure(Path(item.config.invocation_params.dir, str(self.save_dir)), failure, check=check,
                            args=args, blob=reproduce_blob(_failures(error)))

    # -- reporting -------------------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.budget is not None and (report.when == "teardown" or report.outcome != "passed"):
            self.budget.finished.add(report.nodeid)  # the budget's shares count what is left
        self._junit_classname(report)
        entry = self.recorder.record(report)
        if self.budget is not None and entry is not None and report.when == "call":
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.ensure_newline()
                reporter.write_line(self.recorder.progress_line(self.budget.seconds, entry))

    def _junit_classname(self, report: pytest.TestReport) -> None:
        """A suite test's JUnit classname is conformance.<area> of its clause (conformance.write), whatever its node
        id holds (an installed suite's is a path into site-packages)."""
        xml = self.config.stash.get(junitxml.xml_key, None)
        if xml is None or report.when == "teardown":  # junitxml may have closed the test case by then
            return
        # The check's own clause, from its name (a crashed worker's report carries no properties), or its marker's.
        props = dict(report.user_properties)
        clause_id = (self.recorder.from_nodeid(report.nodeid) or {}).get("clause") or props.get("marked_clause") \
            or props.get("clause")
        if clause_id in CLAUSES:
            # record_testreport keeps attributes already set, so this survives every later report of the test.
            xml.node_reporter(report).add_attribute("classname", f"conformance.{CLAUSES[clause_id].area}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput") or session.config.option.collectonly:
            return
        add_verdicts(session.config, self.recorder)
        if self._probe_failures() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            table = self.recorder.table()  # a clause the baseline knows to fail does not fail the run
            if any(row["status"] is Status.FAILED for name in self._probe_failures() for row in table[name].values()):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
                return
        if exitstatus != 0:
            return
        if self.recorder.nothing_was_checked() or self.recorder.strict_failures():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> Any:
        """The clause tables after everything else pytest prints at the end (failures, the short summary), so
        they are the last thing above pytest's closing line."""
        result = yield
        if hasattr(config, "workerinput"):
            return result
        terminalreporter.ensure_newline()  # else the first line under the section's rule would be an empty one
        if config.option.collectonly:
            list_checks(terminalreporter, self.listed)
            return result
        self.recorder.summary(terminalreporter, config, seed_in_report(self.seed),
                              self.budget.seconds if self.budget is not None else None)
        return result

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if not hasattr(config, "workerinput"):  # the workers have stopped: their examples' directories can go
            scratch.remove_root()


class SuiteModule(pytest.Module):
    """A suite module collected whatever the user's python_files/python_functions/python_classes say."""

    def funcnamefilter(self, name: str) -> bool:
        return name.startswith("test_")

    def classnamefilter(self, name: str) -> bool:
        return False


def _in_suite(path: Path) -> bool:
    return path.parent == SUITE_DIR and path.name.startswith("test_conformance_") and path.suffix == ".py"


def _clause_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("clause")
    return marker.args[0] if marker else None


def _subject_properties(subject: Subject) -> Iterator[tuple[str, str]]:
    """What a check's subject saw, as report properties (they cross from xdist workers to the controller)."""
    yield "examples", str(subject.examples)
    if subject.unchecked:
        yield "unchecked", "; ".join(sorted(subject.unchecked))
    if subject.shortfalls:
        yield "shortfalls", "; ".join(sorted(subject.shortfalls))
    if subject.coverage:
        yield "coverage", json.dumps(dict(subject.coverage), sort_keys=True)
    if subject.evidence:
        yield "evidence", json.dumps(dict(subject.evidence), sort_keys=True)
    if subject.not_applicable:
        yield "not_applicable", json.dumps(subject.not_applicable, sort_keys=True)


def _failures(exc: BaseException) -> Iterator[BaseException]:
    yield exc
    for inner in getattr(exc, "exceptions", ()):
        yield from _failures(inner)


_SHARE = pytest.StashKey[float]()  # the budget's share given to a check that draws examples
_FAILED = pytest.StashKey[bool]()  # whether a check's examples failed (its time past the share was shrinking)
_CHARGED = pytest.StashKey[list[str]]()  # the clauses an item's failures were charged to

def _probe_entry(name: str, clause_id: str, result: ProbeResult) -> dict[str, Any]:
    """A recorded outcome for a clause whose checks the failed probe stopped (the Recorder's entry shape)."""
    return {"destination": name, "clause": clause_id, "nodeid": f"conformance-probe[{name}]::{clause_id}",
            "outcome": "failed", "reason": "", "examples": 0, "saved": "", "unchecked": "", "coverage": {},
            "evidence": {}, "not_applicable": {}, "timeout": result.timeout, "crashed": False, "shrink": "",
            "duration": 0.0, "message": result.message,
            "cause": [result.step, "did not return" if result.timeout else result.error] if result.step else None}
