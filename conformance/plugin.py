"""The pytest plugin: options, and the run registered when `--destination=pkg:obj` is given (inert otherwise)."""

import os
import time
from pathlib import Path

import pytest
from hypothesis import settings

from harness import DEFAULT_TIMEOUT, LoadError, Registration, load_registration, parse_duration

from .budget import Budget, process_age
from .clauses import CLAUSES
from .profiles import CI_PROFILE, DEFAULT_PROFILE, register_profiles
from .report import Recorder
from .run import ConformanceRun
from .saved import load_saved
from .suite import SUITE_DIR
from .verdicts import load_accepted_not_checked, load_baseline

__all__ = ["ENV_VAR", "RUN_PLUGIN", "conformance_run"]

ENV_VAR = "CONFORMANCE_DESTINATION"
RUN_PLUGIN = "conformance-run"  # the name the run's plugin object is registered under

register_profiles()  # at import, so that --hypothesis-profile=conformance-ci resolves


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
    group.addoption("--conformance-strict", action="store_true", default=False,
                    help="fail the run when a clause is not checked, unless the baseline's \"accepted_not_checked\" "
                         "names it with a reason")
    group.addoption("--conformance-conduit", default=None, metavar="PATH",
                    help="a Conduit binary (v0.13.x): the pipeline.* clauses run the destination in real Conduit "
                         "pipelines; without it they are not checked")
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
    """With --destination (or $CONFORMANCE_DESTINATION): checks the options and registers the run."""
    config.addinivalue_line("markers", "clause(id): the contract clause (CONTRACT.md section 8) a check checks")
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
    here = config.invocation_params.dir
    workerinput = getattr(config, "workerinput", None)
    # The budget counts from the start of the process (of the xdist controller): start-up is part of the run.
    process_started = float(workerinput.get("conformance_started", 0.0)) if workerinput else 0.0
    process_started = process_started or time.time() - process_age()
    budget = _budget(config.getoption("conformance_budget"), process_started,
                     int(workerinput.get("workercount", 1)) if workerinput else 1)
    baseline_path = config.getoption("conformance_baseline")
    recorder = Recorder(registrations, timeout, report_path=config.getoption("conformance_report"),
                        markdown_path=config.getoption("conformance_markdown"), baseline_path=baseline_path,
                        baseline=_baseline(here, baseline_path), accepted=_accepted(here, baseline_path),
                        strict=config.getoption("conformance_strict"))
    run = ConformanceRun(config, registrations, timeout, recorder, budget=budget,
                         replays=[_replay(here, path) for path in config.getoption("conformance_replay")],
                         save_dir=config.getoption("conformance_save_failures"), process_started=process_started)
    config.pluginmanager.register(run, RUN_PLUGIN)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(SUITE_DIR)]


def conformance_run(config: pytest.Config) -> ConformanceRun | None:
    """The run registered for this pytest session, or None without --destination."""
    run = config.pluginmanager.get_plugin(RUN_PLUGIN)
    return run if isinstance(run, ConformanceRun) else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without --destination the suite is never collected (a path to it gets nothing, not fixture errors)."""
    if conformance_run(config) is None and (collection_path == SUITE_DIR or SUITE_DIR in collection_path.parents):
        return True
    return None


def _budget(value: str | None, process_started: float, workers: int) -> Budget | None:
    """--conformance-budget as a Budget, or None without one."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as err:
        raise pytest.UsageError(f"--conformance-budget={value}: {err}") from None
    if seconds <= 0:
        raise pytest.UsageError(f"--conformance-budget={value}: must be above 0")
    return Budget.starting(seconds, process_started, workers)


def _baseline(here: Path, path: str | None) -> dict[str, dict[str, str]] | None:
    """--conformance-baseline's known failures; None when not given or when the file does not exist yet (the
    summary says so); one that exists must be a report."""
    if not path or not os.path.lexists(Path(here, path)):
        return None
    try:
        return load_baseline(Path(here, path))
    except ValueError as err:
        raise pytest.UsageError(f"--conformance-baseline={path}: {err}") from None


def _accepted(here: Path, path: str | None) -> dict[str, dict[str, str]]:
    """The baseline's accepted "not checked" clauses (see load_accepted_not_checked); none without a baseline."""
    if not path or not os.path.lexists(Path(here, path)):
        return {}
    try:
        return load_accepted_not_checked(Path(here, path))
    except ValueError as err:
        raise pytest.UsageError(f"--conformance-baseline={path}: {err}") from None


def _replay(here: Path, path: str) -> str:
    """A --conformance-replay file, checked and made absolute."""
    try:
        load_saved(Path(here, path))
    except (OSError, ValueError) as err:
        raise pytest.UsageError(f"--conformance-replay={path}: {err}") from None
    return str(Path(here, path))
