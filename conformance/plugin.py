"""The pytest plugin: `pytest --destination=pkg:obj` collects the shipped suite and reports per clause."""

import ast
import base64
import fnmatch
import functools
import importlib
import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.core
import pytest
from hypothesis import settings
from hypothesis.errors import UnsatisfiedAssumption

import harness
from harness import DEFAULT_TIMEOUT, Driver, LoadError, Registration, load_registration, parse_duration

from . import __version__
from .checks import NOT_CHECKED_PREFIX, ClauseFailure
from .clauses import CLAUSES, DIRECTORY, READ_BACK
from .profiles import CI_PROFILE, DEFAULT_PROFILE, BudgetSpent, ShrinkStopped, paced_reports, register_profiles
from .replay import Call, render_snippet
from .report import (
    SKIPPED_PREFIX,
    STATUS_MARKS,
    RootCause,
    destination_version,
    find_root_cause,
    load_baseline,
    markdown,
    registration_fingerprint,
    verdicts,
)
from .saved import load_saved, save_failure
from .session import Subject

SUITE_DIR = Path(__file__).parent / "suite"
ENV_VAR = "CONFORMANCE_DESTINATION"

register_profiles()  # at import, so that --hypothesis-profile=conformance-ci resolves


@dataclass
class _State:
    """What the plugin knows in one pytest run."""

    registrations: list[Registration]
    timeout: float
    report_path: str | None
    markdown_path: str | None = None
    save_dir: str | None = None
    budget: float | None = None  # seconds for the whole run
    budget_end: float = 0.0  # monotonic time the budget runs out
    process_started: float = 0.0  # wall-clock start of this process (the xdist controller's, on a worker)
    progress: Any = None  # the terminal reporter, for the budget's progress line
    seed: int | None = None  # hypothesis' seed for the run when given; None when random or derandomized
    workers: int = 1  # xdist workers sharing the checks (the budget is per worker, run side by side)
    generated: set[str] = field(default_factory=set)  # node ids of the checks that draw examples
    fixed_count: int = 0  # how many others there are (they run once)
    finished: set[str] = field(default_factory=set)  # node ids of the checks done (here: on this worker)
    fixed_ran: int = 0
    fixed_seconds: float = 0.0  # time the fixed checks that ran took
    replays: list[str] = field(default_factory=list)
    baseline_path: str | None = None
    baseline: dict[str, dict[str, str]] | None = None
    started: float = field(default_factory=time.time)
    reports: list[dict[str, Any]] = field(default_factory=list)
    nothing_checked: list[str] = field(default_factory=list)  # destinations without a single checked clause


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "destination conformance suite")
    group.addoption("--destination", action="append", dest="destinations", default=[], metavar="SPEC",
                    help="destination to check: package.module:attribute (a Registration, destination class, "
                         "Conduit Python SDK destination class or factory), or exec:COMMAND (a standalone Conduit "
                         f"connector, over the plugin protocol); repeatable; falls back to ${ENV_VAR}")
    group.addoption("--destination-config", action="append", dest="destination_config", default=[],
                    metavar="KEY=VALUE", help="config entry for the destination ('{tmp}' becomes a fresh temp "
                                              "dir); repeatable")
    group.addoption("--conformance-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"per-call time limit for destination calls (default {DEFAULT_TIMEOUT:g})")
    group.addoption("--conformance-report", default=None, metavar="FILE.json",
                    help="write the per-clause verdicts, versions, seed and timings as JSON")
    group.addoption("--conformance-markdown", default=None, metavar="FILE.md",
                    help="append the clause table as Markdown (default: $GITHUB_STEP_SUMMARY when set)")
    group.addoption("--conformance-budget", default=None, metavar="DURATION",
                    help="fuzz for about this long (Go syntax: 90s, 10m, 1h30m): each selected check gets its share "
                         "of what is left and starts no example after it (max_examples is a ceiling); a failure is "
                         "shrunk within a bounded share; a progress line after each check")
    group.addoption("--conformance-save-failures", default=None, metavar="DIR",
                    help="save each failure as its calls (opencdc/json batches) plus a pytest file replaying it")
    group.addoption("--conformance-replay", action="append", default=[], metavar="FILE.jsonl",
                    help="replay a saved failure through the same checks; repeatable")
    group.addoption("--conformance-baseline", default=None, metavar="FILE.json",
                    help="an earlier --conformance-report: clauses that failed there are known failures and do "
                         "not fail the run; new failures do")
    group.addoption("--conformance-explain", default=None, metavar="CLAUSE",
                    help="print one clause's section of the contract (CONTRACT.md) and exit")
    group.addoption("--conformance-clauses", action="store_true", default=False,
                    help="list the contract's clause ids with their rules and exit")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--conformance-clauses / --conformance-explain=CLAUSE: print from the shipped contract and exit 0."""
    from .contract import clause_list, clause_section, unknown_clause_message

    explain = config.getoption("conformance_explain", None)
    if explain is not None and explain not in CLAUSES:
        raise pytest.UsageError(f"--conformance-explain={explain}: {unknown_clause_message(explain)}")
    if config.getoption("conformance_clauses", False) or explain is not None:
        print(clause_list() if explain is None else clause_section(explain))
        return 0
    return None


def _parse_config_options(values: list[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"--destination-config {value!r}: expected KEY=VALUE")
        config[key.strip()] = val
    return config


def _load(config: pytest.Config, specs: list[str]) -> list[Registration]:
    extra = _parse_config_options(config.getoption("destination_config"))
    registrations: dict[str, Registration] = {}
    for spec in specs:
        try:
            registration = load_registration(spec, extra, search_dir=str(config.invocation_params.dir))
        except LoadError as err:
            raise pytest.UsageError(f"--destination={spec}: {err}") from None
        except TypeError as err:  # Registration's own validation
            raise pytest.UsageError(f"--destination={spec}: {err}") from None
        unknown = sorted(set(registration.skip) - set(CLAUSES))
        if unknown:
            raise pytest.UsageError(f"--destination={spec}: unknown clause id(s) in skip: {', '.join(unknown)}; "
                                    f"known: {', '.join(CLAUSES)}")
        registrations[spec] = registration
    return list(registrations.values())


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(id): the contract clause (SPEC section 4) a conformance test checks")
    specs = config.getoption("destinations") or ([os.environ[ENV_VAR]] if os.environ.get(ENV_VAR) else [])
    if not specs:
        return
    profile = config.getoption("hypothesis_profile", None)
    if profile is not None and profile not in settings._profiles:
        known = ", ".join(sorted(settings._profiles))
        raise pytest.UsageError(f"--hypothesis-profile={profile}: no such profile; registered: {known}")
    timeout = config.getoption("conformance_timeout")
    if not timeout > 0:
        raise pytest.UsageError(f"--conformance-timeout={timeout}: must be a number of seconds above 0")
    registrations = _load(config, specs)
    if profile is None:
        settings.load_profile(CI_PROFILE if os.environ.get("CI") else DEFAULT_PROFILE)
    budget = config.getoption("conformance_budget")
    if budget is not None:
        try:
            budget_seconds = parse_duration(budget).total_seconds()
        except ValueError as err:
            raise pytest.UsageError(f"--conformance-budget={budget}: {err}") from None
        if budget_seconds <= 0:
            raise pytest.UsageError(f"--conformance-budget={budget}: must be above 0")
    baseline_path = config.getoption("conformance_baseline")
    baseline = None
    if baseline_path and os.path.lexists(Path(config.invocation_params.dir, baseline_path)):
        # A missing file is "no baseline yet" (the summary says so); one that exists must be a report.
        try:
            baseline = load_baseline(Path(config.invocation_params.dir, baseline_path))
        except ValueError as err:
            raise pytest.UsageError(f"--conformance-baseline={baseline_path}: {err}") from None
    state = _State(registrations, timeout, config.getoption("conformance_report"),
                   markdown_path=config.getoption("conformance_markdown"), baseline_path=baseline_path,
                   baseline=baseline)
    state.save_dir = config.getoption("conformance_save_failures")
    state.budget = budget_seconds if budget is not None else None
    workerinput = getattr(config, "workerinput", None)
    # The budget counts from the start of the process (of the xdist controller): start-up is part of the run.
    state.process_started = float(workerinput.get("conformance_started", 0.0)) if workerinput else 0.0
    state.process_started = state.process_started or time.time() - _process_age()
    state.budget_end = time.monotonic() + (state.process_started + (state.budget or 0.0) - time.time())
    if workerinput is not None:
        state.workers = max(1, int(workerinput.get("workercount", 1)))
    if workerinput is None and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_ToWorkers(state), "conformance-to-workers")
    for replay in config.getoption("conformance_replay"):
        try:
            load_saved(Path(config.invocation_params.dir, replay))
        except (OSError, ValueError) as err:
            raise pytest.UsageError(f"--conformance-replay={replay}: {err}") from None
        state.replays.append(str(Path(config.invocation_params.dir, replay)))
    config.stash[_STATE] = state
    config.pluginmanager.register(_Reporter(state), "conformance-reporter")
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(SUITE_DIR)]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The run's profile and seed, once every plugin has configured hypothesis (its own plugin loads
    --hypothesis-profile after our pytest_configure) and before the suite's modules take their settings."""
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    if state.budget is not None and settings().derandomize:
        # Each repetition must draw new examples: a derandomized profile would repeat itself. Derived from the
        # current profile, the budget's keeps its batch limit (profiles.batch_limit follows the parents).
        name = f"{settings.get_current_profile_name()}-budget"
        settings.register_profile(name, settings(), derandomize=False)
        settings.load_profile(name)
    state.seed = _run_seed(session.config)
    if state.seed is not None and hasattr(hypothesis.core, "global_force_seed"):
        # The seed the report names is the one every check uses, as --hypothesis-seed does.
        hypothesis.core.global_force_seed = state.seed


class SuiteModule(pytest.Module):
    """A suite module collected whatever the user's python_files/python_functions/python_classes say."""

    def funcnamefilter(self, name: str) -> bool:
        return name.startswith("test_")

    def classnamefilter(self, name: str) -> bool:
        return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent == SUITE_DIR and collection_path.name == "test_conformance_replay.py":
        state = config.stash.get(_STATE, None)
        return True if state is None or not state.replays else None  # replays only with --conformance-replay
    return None


def _in_suite(path: Path) -> bool:
    return path.parent == SUITE_DIR and path.name.startswith("test_conformance_") and path.suffix == ".py"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if _in_suite(module_path):
        return SuiteModule.from_parent(parent, path=module_path)
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if not _in_suite(file_path):
        return None
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")):
        return None  # the python plugin collects it, through pytest_pycollect_makemodule above
    return SuiteModule.from_parent(parent, path=file_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "registration" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash.get(_STATE, None)
    if "replay_file" in metafunc.fixturenames:
        replays = state.replays if state else []
        metafunc.parametrize("replay_file", replays, ids=[Path(r).name for r in replays])
    registrations = state.registrations if state else []
    if "variant" in metafunc.fixturenames:
        # Fault and safety checks run under the registered config and under each declared variant of it.
        pairs = [(r, dict(v)) for r in registrations for v in ({}, *r.variants)]
        ids = [r.name + "".join(f"-{k}={val}" for k, val in v.items()) for r, v in pairs]
        metafunc.parametrize(("registration", "variant"), pairs, ids=ids, scope="session")
        return
    metafunc.parametrize("registration", registrations, ids=[r.name for r in registrations], scope="session")


@pytest.fixture
def subject(registration: Registration, request: pytest.FixtureRequest) -> Subject:
    """The destination under check, for the clause the test is marked with."""
    marker = request.node.get_closest_marker("clause")
    state = request.config.stash[_STATE]
    return Subject(registration, marker.args[0] if marker else "call.timeout", state.timeout)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    state = item.config.stash.get(_STATE, None)
    subject = getattr(item, "funcargs", {}).get("subject")
    if state is None or not isinstance(subject, Subject):
        return (yield)
    started = time.monotonic()
    pacer = subject.pacer
    _pace_examples(item)
    budgeted = state.budget is not None and item.nodeid in state.generated
    if budgeted:
        pacer.deadline = started + _share(state)
        pacer.min_shrink = 0.05 * state.budget  # a failure found at the deadline still gets this to shrink
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
            while budgeted and pacer.generated and time.monotonic() < (pacer.deadline or 0.0):
                repetition += 1
                _reseed(state, repetition)
                pacer.new_run()
                try:
                    item.runtest()
                except BudgetSpent:
                    break
                except ShrinkStopped as stop:
                    raise stop.failure.with_traceback(stop.failure.__traceback__) from None
        return result
    finally:
        _reseed(state, 0)
        pacer.finish()
        if pacer.cut:
            item.user_properties.append(("shrink", pacer.cut))
        if state.budget is not None and not budgeted:
            state.fixed_ran += 1
            state.fixed_seconds += time.monotonic() - started


def _pace_examples(item: pytest.Item) -> None:
    """Wraps a @given check's examples (once per function) so its Pacer sees each start and each failure."""
    handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None or getattr(inner, "_conformance_paced", False):
        return

    @functools.wraps(inner)
    def paced(*args: Any, **kwargs: Any) -> Any:
        subject = kwargs.get("subject")
        if not isinstance(subject, Subject):
            return inner(*args, **kwargs)
        subject.pacer.check(subject.examples)  # nothing is held yet: the run may end here
        try:
            return inner(*args, **kwargs)
        except UnsatisfiedAssumption:
            raise
        except Exception as err:
            subject.pacer.failed(error=err)
            raise

    paced._conformance_paced = True  # type: ignore[attr-defined]
    handle.inner_test = paced


def _share(state: _State) -> float:
    """Seconds for the check about to run: what is left of the budget, less what the remaining fixed checks are
    expected to take, over the generated checks left (per worker under xdist)."""
    generated_done = len(state.finished & state.generated)
    generated_left = max(1, math.ceil(len(state.generated) / state.workers) - generated_done)
    fixed_left = max(0, math.ceil(state.fixed_count / state.workers) - (len(state.finished) - generated_done))
    fixed_each = state.fixed_seconds / state.fixed_ran if state.fixed_ran else 0.05
    left = state.budget_end - time.monotonic() - fixed_left * fixed_each
    return max(0.0, left / generated_left)


def _reseed(state: _State, repetition: int) -> None:
    """Gives a budget's repetition its own seed (derived from the run's), or puts the run's back (0)."""
    if state.seed is not None and hasattr(hypothesis.core, "global_force_seed"):
        hypothesis.core.global_force_seed = state.seed + 1_000_003 * repetition


def _run_seed(config: pytest.Config) -> int | None:
    """The run's hypothesis seed: --hypothesis-seed, or the controller's under xdist; None when none is given or
    the profile is derandomized (each check's seed then comes from its name)."""
    if settings().derandomize:
        return None
    given = _seed(config)
    if isinstance(given, int):
        return given
    if given is not None:  # hypothesis takes a non-numeric seed as it is; keep an int for the report
        return int.from_bytes(str(given).encode()[:8].ljust(8, b"\0"), "big")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("conformance_seed") is not None:
        return int(workerinput["conformance_seed"])
    # No seed given: none is forced, because hypothesis turns its example database off under a forced seed, and
    # the database is what replays a failure on the next run (and shares it between machines).
    return None


def _process_age() -> float:
    """Seconds since this process started (from /proc on Linux); 0 where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: start time, in ticks
    except (OSError, ValueError, IndexError):
        return 0.0


class _ToWorkers:
    """Hands each xdist worker the controller's seed (so all use the one the report names) and start time (so
    the budget ends for all at once)."""

    def __init__(self, state: _State) -> None:
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["conformance_seed"] = self.state.seed
        node.workerinput["conformance_started"] = self.state.process_started


def _generated(item: pytest.Item) -> bool:
    """Whether a check draws examples: a @given test, or one that runs a hypothesis state machine."""
    obj = getattr(item, "obj", None)
    if obj is None:
        return False
    if hasattr(obj, "hypothesis"):
        return True
    names = set(getattr(getattr(obj, "__code__", None), "co_names", ()))
    if "run_state_machine_as_test" in names:
        return True
    helpers = (getattr(obj, "__globals__", {}).get(name) for name in names)  # e.g. lifecycle's _run(machine, ...)
    return any("run_state_machine_as_test" in getattr(getattr(h, "__code__", None), "co_names", ()) for h in helpers)


def _clause_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("clause")
    return marker.args[0] if marker else None


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None and not hasattr(session.config, "workerinput") and not any(
        SUITE_DIR in Path(str(item.path)).parents for item in session.items
    ):
        # A CI gate must never go green without having checked anything.
        raise pytest.UsageError(
            "--destination is given but none of the conformance checks was collected (a path argument, -k or -m "
            "deselected them all); run `pytest --destination=...` without paths, or select at least one check")
    if state is not None and state.budget is not None:
        # Generated checks share the budget; fixed ones run once, and their time is set aside as they come.
        state.generated = {i.nodeid for i in session.items if _clause_of(i) and _generated(i)}
        state.fixed_count = sum(1 for i in session.items if _clause_of(i)) - len(state.generated)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
        state = config.stash.get(_STATE, None)
        known = (state.baseline or {}).get(registration.name, {}).get(clause_id) if state else None
        if known in ("failed", "known failure"):
            item.add_marker(pytest.mark.xfail(reason=f"known failure of {clause_id} in the baseline", strict=False))
        for need in CLAUSES[clause_id].needs:
            if need == READ_BACK and registration.read_back is None:
                item.add_marker(pytest.mark.skip(reason=NOT_CHECKED_PREFIX + "needs read_back, which the "
                                                 "registration does not provide"))
            elif need == DIRECTORY and registration.directory_param is None:
                item.add_marker(pytest.mark.skip(reason=NOT_CHECKED_PREFIX + "needs directory_param, which the "
                                                 "registration does not name"))


def _failures(exc: BaseException) -> Iterator[BaseException]:
    yield exc
    for inner in getattr(exc, "exceptions", ()):
        yield from _failures(inner)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    subject = getattr(item, "funcargs", {}).get("subject")
    if call.when == "call" and isinstance(subject, Subject):
        report.user_properties.append(("examples", str(subject.examples)))
        if subject.unchecked:
            report.user_properties.append(("unchecked", "; ".join(sorted(subject.unchecked))))
        if subject.coverage:
            report.user_properties.append(("coverage", json.dumps(dict(subject.coverage), sort_keys=True)))
        if subject.evidence:
            report.user_properties.append(("evidence", json.dumps(dict(subject.evidence), sort_keys=True)))
        if subject.not_applicable:
            report.user_properties.append(("not_applicable", json.dumps(subject.not_applicable, sort_keys=True)))
    if call.when == "call" and call.excinfo is not None:
        failures = [e for e in _failures(call.excinfo.value) if isinstance(e, ClauseFailure)]
        if failures:  # a check may find a breach of another clause than its own; the failure names it
            report.user_properties.append(("failed_clause", failures[0].clause.id))
        if any(e.timeout for e in failures):
            report.user_properties.append(("call.timeout", "failed"))
        save_dir = item.config.getoption("conformance_save_failures", None)
        if save_dir and failures:
            callspec = getattr(item, "callspec", None)
            args = {k: v for k, v in (callspec.params if callspec else {}).items() if k not in ("registration",)}
            function = getattr(item, "function", None)
            check = f"{function.__module__}::{function.__name__}" if function is not None and \
                function.__module__.startswith("conformance.suite.") and "replay_file" not in args else None
            saved = save_failure(Path(item.config.invocation_params.dir, save_dir), failures[0], check=check,
                                 args=args, blob=_blob(call.excinfo.value))
            report.user_properties.append(("saved", str(saved)))
            report.sections.append(("conformance", f"failure saved as a regression test: {saved}"))
    return report


_BLOB = re.compile(r"@reproduce_failure\('([^']+)', (b'[^']*')\)")


def _blob(error: BaseException) -> tuple[str, str] | None:
    """Hypothesis' version and blob of the minimal failing example (base64), from the notes it adds."""
    for failure in _failures(error):
        for note in getattr(failure, "__notes__", []):
            match = _BLOB.search(note)
            if match:
                return match.group(1), base64.b64encode(ast.literal_eval(match.group(2))).decode()
    return None


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _suite_clauses() -> dict[str, str]:
    """Suite test function name -> the clause its marker names."""
    if not _SUITE_CLAUSES:
        for path in sorted(SUITE_DIR.glob("test_conformance_*.py")):
            module = importlib.import_module(f"conformance.suite.{path.stem}")
            for name, obj in vars(module).items():
                marks = [m for m in getattr(obj, "pytestmark", []) if m.name == "clause"]
                if name.startswith("test_") and marks:
                    _SUITE_CLAUSES[name] = marks[0].args[0]
    return _SUITE_CLAUSES


_SUITE_CLAUSES: dict[str, str] = {}


def _from_nodeid(state: _State, nodeid: str) -> dict[str, str] | None:
    """Destination and clause of a suite test from its node id, for reports without properties.

    A crashed xdist worker's report carries none: the item never finished on the worker.
    """
    match = re.search(r"::(test_\w+)\[(.*)\]$", nodeid)
    if not match or not Path(nodeid.split("::")[0]).name.startswith("test_conformance_"):
        return None
    clause_id = _suite_clauses().get(match.group(1))
    names = [r.name for r in state.registrations
             if match.group(2) == r.name or match.group(2).startswith(r.name + "-")]
    if clause_id is None or not names:
        return None
    return {"clause": clause_id, "destination": max(names, key=len)}


def _record(state: _State, report: pytest.TestReport) -> None:
    """Keeps what the summary needs from one report (on the xdist controller too)."""
    props = dict(report.user_properties)
    if "clause" not in props:
        derived = _from_nodeid(state, report.nodeid) if report.failed else None
        if derived is None:
            return
        props.update(derived)
    crashed = report.when not in ("setup", "call", "teardown")  # xdist's report for a crashed worker
    if crashed or report.when == "call" or (report.when == "setup" and report.outcome != "passed") or (
        report.when == "teardown" and report.outcome == "failed"
    ):
        failed_clause = props.get("failed_clause") if report.failed else None
        state.reports.append({
            "destination": props["destination"],
            "clause": failed_clause or props["clause"],
            "nodeid": report.nodeid,
            # A known failure (xfail from the baseline) counts as failed; an unexpected pass as passed.
            "outcome": ("failed" if report.skipped else "passed") if hasattr(report, "wasxfail") else report.outcome,
            "reason": _skip_reason(report) if report.skipped and not hasattr(report, "wasxfail") else "",
            "examples": int(props.get("examples", 0)),
            "saved": props.get("saved", ""),
            "unchecked": props.get("unchecked", ""),
            "coverage": json.loads(props.get("coverage", "{}")),
            "evidence": json.loads(props.get("evidence", "{}")),
            "not_applicable": json.loads(props.get("not_applicable", "{}")),
            "timeout": props.get("call.timeout") == "failed",
            "crashed": crashed,
            "shrink": props.get("shrink", ""),
            "duration": round(report.duration, 3),
            "message": _what_happened(report) if report.failed else "",
        })


def _progress(state: _State, last: dict[str, Any]) -> None:
    """The budget's progress line: elapsed time, examples of the check that just ended, failures so far."""
    if state.progress is None:
        return
    elapsed = time.time() - state.started
    failures = sum(1 for r in state.reports if r["outcome"] == "failed")
    state.progress.ensure_newline()
    shrink = f" ({last['shrink']})" if last.get("shrink") else ""
    state.progress.write_line(
        f"[{elapsed:6.0f}s of {state.budget:.0f}s] {last['destination']} {last['clause']}: "
        f"{last.get('examples', 0)} examples, {last['outcome']}{shrink}; failures so far: {failures}")


class _Reporter:
    """Collects outcomes per clause during the run and prints the summary after it."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" or report.outcome != "passed":
            self.state.finished.add(report.nodeid)  # the budget's shares count what is left
        _record(self.state, report)
        if self.state.budget is not None and report.when == "call" and self.state.reports:
            _progress(self.state, self.state.reports[-1])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.state.progress = session.config.pluginmanager.get_plugin("terminalreporter")

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        _summary(self.state, terminalreporter, config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput") or exitstatus != 0:
            return
        table = verdicts(self.state.registrations, self.state.reports, self.state.timeout, self.state.baseline)
        unchecked = [name for name, rows in table.items()  # call.timeout alone says nothing of the destination
                     if not any(r["status"] in ("passed", "failed", "known failure") for c, r in rows.items()
                                if c != "call.timeout")]
        if unchecked:
            self.state.nothing_checked = unchecked
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    current = settings()
    seed = f"seed {state.seed}" if state.seed is not None else \
        "derandomized (no seed: each check's examples follow from its name)" if settings().derandomize else \
        "seed random (each check draws its own; failures replay from the example database)"
    budget = f"; budget {state.budget:g}s" if state.budget is not None else ""
    lines = [
        f"conformance suite {__version__}, contract {harness.CONTRACT_VERSION}; hypothesis profile "
        f"{settings.get_current_profile_name()!r} (max_examples={current.max_examples}, "
        f"derandomize={current.derandomize}), {seed}; per-call limit {state.timeout:g}s{budget}",
    ]
    for registration in state.registrations:
        lines.append(f"destination {registration.name}:")
        lines.append(f"  path: {_describe_path(registration)}")
        lines.append(f"  config: {dict(registration.config)}")
        lines.append(f"  read_back: {getattr(registration.read_back, '__qualname__', None) or 'none'}; "
                     f"directory_param: {registration.directory_param or 'none'}; keys: "
                     f"{'declared by the registration' if registration.valid_keys is not None else 'SPEC defaults'}")
        if registration.skip:
            lines.append(f"  skip: {dict(registration.skip)}")
        lines.append(f"  parameters: {_parameter_names(registration, state.timeout)}")
    return lines


def _describe_path(registration: Registration) -> str:
    """How the suite reaches the destination: native, SDK in-process, or standalone (with its specification)."""
    if registration.describe is None:
        return registration.transport
    try:
        return registration.describe()
    except Exception as err:
        return f"{registration.transport} ({type(err).__name__}: {err})"


def _parameter_names(registration: Registration, timeout: float) -> str:
    try:
        with Driver(registration, timeout=timeout) as driver:
            params = driver.parameters()
            try:
                driver.teardown()
            except Exception:
                pass
        return ", ".join(f"{n}{' (required)' if getattr(p, 'required', False) else ''}" for n, p in dict(params).items())
    except Exception as err:
        return f"unavailable ({type(err).__name__}: {err})"


def _summary(state: _State, terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    for name in state.nothing_checked:
        terminalreporter.write_line(f"conformance: no clause of {name} was checked in this run (every clause is "
                                    "not checked, not applicable or skipped); the run fails", red=True, bold=True)
    if state.baseline_path and state.baseline is None:
        terminalreporter.write_line(f"conformance: no baseline yet ({state.baseline_path} does not exist), so every "
                                    "failure fails the run; to adopt the gate with known failures, commit a "
                                    f"--conformance-report as {state.baseline_path}")
    table = verdicts(state.registrations, state.reports, state.timeout, state.baseline)
    for name, rows in table.items():
        terminalreporter.section(f"destination conformance: {name}")
        registration = next(r for r in state.registrations if r.name == name)
        cause = _root_cause_lines(terminalreporter, registration, rows, state.reports)
        width = max(len(c) for c in rows)
        for clause_id, row in rows.items():
            reason = f"  {row['reason']}" if row["reason"] else ""
            if cause is not None and clause_id in cause.clauses:
                reason += f": {cause.label} failed, see the root cause above"
            cuts = sorted({r["shrink"] for r in state.reports if r["destination"] == name
                           and r["clause"] == clause_id and r["outcome"] == "failed" and r.get("shrink")})
            if cuts:  # the example shown is hypothesis' smallest within the bound, maybe not the smallest there is
                reason += f"; {'; '.join(cuts)}: the example shown may not be minimal"
            terminalreporter.write_line(f"  {STATUS_MARKS[row['status']]:<12} {clause_id:<{width}}{reason}",
                                        red=row["status"] == "failed", green=row["status"] == "passed")
        counts = {s: sum(1 for r in rows.values() if r["status"] == s) for s in STATUS_MARKS}
        terminalreporter.write_line("  " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    saved = [r["saved"] for r in state.reports if r.get("saved")]
    if saved:
        terminalreporter.section("conformance failures saved as regression tests")
        for path in saved:
            terminalreporter.write_line(f"  {path}")
    if state.report_path:
        path = Path(config.invocation_params.dir, state.report_path)
        path.write_text(json.dumps(_certificate(state, table, config), indent=2) + "\n")
        terminalreporter.write_line(f"conformance report written to {state.report_path}")
    markdown_path = state.markdown_path or os.environ.get("GITHUB_STEP_SUMMARY")
    if markdown_path:
        with open(Path(config.invocation_params.dir, markdown_path), "a", encoding="utf-8") as f:
            f.write(markdown(table))


_WHAT_HAPPENED = re.compile(r"What happened: (.*)")


def _what_happened(report: pytest.TestReport) -> str:
    """The first line of a ClauseFailure's "What happened:" text in a failed report, or ""."""
    match = _WHAT_HAPPENED.search(str(report.longrepr or ""))
    return match.group(1).strip() if match else ""


def _root_cause_lines(terminalreporter: Any, registration: Registration, rows: dict[str, Any],
                      reports: list[dict[str, Any]]) -> RootCause | None:
    """Prints, once, the factory/configure/open failure behind most failed clauses, with one replay of it."""
    cause = find_root_cause(rows, [r for r in reports if r["destination"] == registration.name])
    if cause is None:
        return None
    terminalreporter.write_line(f"  {cause.line}", red=True, bold=True)
    calls = {"factory": [], "configure": [Call("configure")], "open": [Call("configure"), Call("open")]}[cause.call]
    terminalreporter.write_line("  replay it:")
    for line in render_snippet(registration.name, dict(registration.config), calls).splitlines():
        terminalreporter.write_line(f"      {line}")
    return cause


def _seed(config: pytest.Config) -> int | str | None:
    """--hypothesis-seed as given (hypothesis takes digits as an int seed)."""
    seed = config.getoption("hypothesis_seed", None)
    return int(seed) if isinstance(seed, str) and seed.isdigit() else seed


def _certificate(state: _State, table: dict[str, Any], config: pytest.Config) -> dict[str, Any]:
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
            "seed": state.seed if state.seed is not None else "derandomized" if settings().derandomize else "random",
        },
        "budget": state.budget,
        "per_call_limit": state.timeout,
        "baseline": state.baseline_path,
        "started": state.started,
        "duration": round(time.time() - state.started, 3),
        "destinations": {
            r.name: {
                **destination_version(r),
                "registration_sha256": registration_fingerprint(r),
                "transport": r.transport,
                "structured_data": r.structured_data,
                "config": dict(r.config),
                "directory_param": r.directory_param,
                "read_back": r.read_back is not None,
                "skip": dict(r.skip),
                "clauses": table[r.name],
            }
            for r in state.registrations
        },
    }
