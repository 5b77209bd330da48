"""The pytest plugin: options, and the run registered when `--destination=pkg:obj` is given (inert otherwise).

At import this module loads only pytest and the standard library: a repository with its own `harness` package runs
its own tests with the plugin installed. The suite's packages (harness, hypothesis, pydantic) load once
`--destination` is seen."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.suite import SUITE_DIR

if TYPE_CHECKING:
    from conformance.plugin.budget import Budget
    from conformance.plugin.run import ConformanceRun
    from conformance.results.status import Status
    from harness import Registration

__all__ = ["ENV_VAR", "RUN_PLUGIN", "DEFAULT_TIMEOUT", "conformance_run", "shadowed_package"]

ENV_VAR = "CONFORMANCE_DESTINATION"
RUN_PLUGIN = "conformance-run"  # the name the run's plugin object is registered under
# harness.DEFAULT_TIMEOUT, spelled out so that declaring the option imports no harness (a test keeps them equal).
DEFAULT_TIMEOUT = 10.0
_OWN_PACKAGES = ("harness",)  # top-level packages of ours the run imports by name (conformance is this one)


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
                    help="a Conduit binary (v0.13 or v0.14): the pipeline.* clauses run the destination in real "
                         "Conduit pipelines; without it they are not checked")
    group.addoption("--conformance-clause", action="append", dest="conformance_clause", default=[],
                    metavar="ID,...", help="run only the checks of these clauses (ids or globs: write.*); "
                                           "repeatable; the summary lists only those")
    group.addoption("--conformance-explain", default=None, metavar="CLAUSE",
                    help="print one clause's section of the contract (CONTRACT.md) and exit")
    group.addoption("--conformance-clauses", action="store_true", default=False,
                    help="list the contract's clause ids with their rules and exit")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """The suite's hypothesis profiles, before conftests load (one may read them), when this run will use them."""
    namespace = early_config.known_args_namespace
    if _specs(getattr(namespace, "destinations", None)) or _names_our_profile(getattr(namespace, "hypothesis_profile",
                                                                                      None)):
        _register_profiles()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--conformance-clauses / --conformance-explain=CLAUSE: print from the shipped contract and exit 0."""
    from conformance.contract.clauses import CLAUSES
    from conformance.contract.document import clause_list, clause_section, unknown_clause_message

    explain = config.getoption("conformance_explain", None)
    if explain is not None and explain not in CLAUSES:
        raise pytest.UsageError(f"--conformance-explain={explain}: {unknown_clause_message(explain)}")
    if config.getoption("conformance_clauses", False) or explain is not None:
        print(clause_list() if explain is None else clause_section(explain))
        return 0
    return None


def _specs(given: list[str] | None) -> list[str]:
    """The --destination specs, or $CONFORMANCE_DESTINATION's."""
    return list(given or ([os.environ[ENV_VAR]] if os.environ.get(ENV_VAR) else []))


def _names_our_profile(profile: str | None) -> bool:
    return bool(profile) and str(profile).startswith("conformance-")


def _register_profiles() -> None:
    from conformance.plugin.profiles import register_profiles

    register_profiles()


def shadowed_package(name: str) -> str | None:
    """One line saying which file shadows our top-level package `name`, or None when `name` imports ours."""
    ours = Path(__file__).resolve().parents[2] / name
    module = sys.modules.get(name)
    if module is not None:
        where = list(getattr(module, "__path__", [])) or [os.path.dirname(getattr(module, "__file__", "") or "")]
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return f"the suite's package {name!r} is not importable (expected at {ours})"
        where = list(spec.submodule_search_locations or []) or [os.path.dirname(spec.origin or "")]
    if any(Path(w).resolve() == ours for w in where if w):
        return None
    shown = next((w for w in where if w), "?")
    shown = os.path.join(shown, "__init__.py") if os.path.exists(os.path.join(shown, "__init__.py")) else shown
    return (f"{shown} shadows the suite's own package {name!r} ({ours / '__init__.py'}); rename that package, or run "
            f"from a directory that does not put it on sys.path (`pytest` rather than `python -m pytest`)")


def _parse_config_options(values: list[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"--destination-config {value!r}: expected KEY=VALUE")
        config[key.strip()] = val
    return config


def _load(config: pytest.Config, specs: list[str]) -> list[Registration]:
    from conformance.contract.behaviours import resolve
    from conformance.contract.clauses import CLAUSES
    from harness import LoadError, load_registration

    extra = _parse_config_options(config.getoption("destination_config"))
    registrations: dict[str, Registration] = {}
    for spec in specs:
        try:
            registration = load_registration(spec, extra, search_dir=str(config.invocation_params.dir))
        except LoadError as err:
            raise pytest.UsageError(f"--destination={spec}: {err}") from None
        except TypeError as err:  # Registration's own validation
            raise pytest.UsageError(f"--destination={spec}: {err}") from None
        for field_name, named in (("skip", registration.skip), ("not_applicable", registration.not_applicable),
                                  ("check", registration.check)):
            unknown = sorted(set(named) - set(CLAUSES))
            if unknown:
                raise pytest.UsageError(f"--destination={spec}: unknown clause id(s) in {field_name}: "
                                        f"{', '.join(unknown)}; known: {', '.join(CLAUSES)}")
        registrations[spec] = resolve(registration)  # what its behaviours leave out, as skips
    return list(registrations.values())


def _clause_patterns(values: list[str]) -> list[str]:
    """--conformance-clause's patterns (comma-separated, repeatable), each matching at least one clause id."""
    from fnmatch import fnmatchcase

    from conformance.contract.clauses import CLAUSES
    from conformance.contract.document import unknown_clause_message

    patterns = [p.strip() for value in values for p in value.split(",") if p.strip()]
    for pattern in patterns:
        if not any(fnmatchcase(clause_id, pattern) for clause_id in CLAUSES):
            message = unknown_clause_message(pattern) if not any(c in pattern for c in "*?[") else \
                f"matches no clause id; known: {', '.join(CLAUSES)}"
            raise pytest.UsageError(f"--conformance-clause={pattern}: {message}")
    return patterns


def _in_suite_arg(arg: str) -> bool:
    """Whether a path argument (maybe with ::node) names the suite or something in it."""
    path = Path(arg.split("::", 1)[0]).resolve()
    return path == SUITE_DIR or SUITE_DIR in path.parents


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """With --destination (or $CONFORMANCE_DESTINATION): checks the options and registers the run."""
    config.addinivalue_line("markers", "clause(id): the contract clause (CONTRACT.md section 8) a check checks")
    specs = _specs(config.getoption("destinations"))
    profile = config.getoption("hypothesis_profile", None)
    if not specs:
        if _names_our_profile(profile):
            _register_profiles()
        return
    for name in _OWN_PACKAGES:
        shadow = shadowed_package(name)
        if shadow is not None:  # before importing it: a user's own `harness` must not be mistaken for ours
            raise pytest.UsageError(f"--destination: {shadow}")
    _register_profiles()
    from hypothesis import settings

    from conformance.plugin._hypothesis_compat import registered_profiles
    from conformance.plugin.budget import process_age
    from conformance.plugin.profiles import CI_PROFILE, DEFAULT_PROFILE
    from conformance.plugin.run import ConformanceRun
    from conformance.results.report import Recorder

    if profile is not None and profile not in registered_profiles():
        known = ", ".join(registered_profiles())
        raise pytest.UsageError(f"--hypothesis-profile={profile}: no such profile; registered: {known}")
    timeout = config.getoption("conformance_timeout")
    if not timeout > 0:
        raise pytest.UsageError(f"--conformance-timeout={timeout}: must be a number of seconds above 0")
    clause_patterns = _clause_patterns(config.getoption("conformance_clause"))
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
                         save_dir=config.getoption("conformance_save_failures"), process_started=process_started,
                         clause_patterns=clause_patterns)
    config.pluginmanager.register(run, RUN_PLUGIN)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(SUITE_DIR)]
    elif not any(_in_suite_arg(arg) for arg in config.args):
        # Paths given: the user's tests there run, and the suite with them (one run, one exit status).
        run.user_paths = list(config.args)
        config.args.append(str(SUITE_DIR))


def conformance_run(config: pytest.Config) -> ConformanceRun | None:
    """The run registered for this pytest session, or None without --destination."""
    run = config.pluginmanager.get_plugin(RUN_PLUGIN)
    if run is None:
        return None
    from conformance.plugin.run import ConformanceRun

    return run if isinstance(run, ConformanceRun) else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without --destination the suite is never collected (a path to it gets nothing, not fixture errors)."""
    if conformance_run(config) is None and (collection_path == SUITE_DIR or SUITE_DIR in collection_path.parents):
        return True
    return None


def pytest_itemcollected(item: pytest.Item) -> None:
    """A check's clause id is one of its keywords, so `-k write.round-trip` selects its checks."""
    run = conformance_run(item.config)
    if run is not None:
        run.add_clause_keywords(item)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """After -k/-m: --conformance-clause, and the checks a failed probe makes pointless, are deselected."""
    run = conformance_run(config)
    if run is not None:
        run.select(items)


def _budget(value: str | None, process_started: float, workers: int) -> Budget | None:
    """--conformance-budget as a Budget, or None without one."""
    if value is None:
        return None
    from conformance.plugin.budget import Budget
    from harness import parse_duration
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as err:
        raise pytest.UsageError(f"--conformance-budget={value}: {err}") from None
    if seconds <= 0:
        raise pytest.UsageError(f"--conformance-budget={value}: must be above 0")
    return Budget.starting(seconds, process_started, workers)


def _baseline(here: Path, path: str | None) -> dict[str, dict[str, Status]] | None:
    """--conformance-baseline's known failures; None when not given or when the file does not exist yet (the
    summary says so); one that exists must be a report."""
    if not path or not os.path.lexists(Path(here, path)):
        return None
    from conformance.results.baseline import load_baseline

    try:
        return load_baseline(Path(here, path))
    except ValueError as err:
        raise pytest.UsageError(f"--conformance-baseline={path}: {err}") from None


def _accepted(here: Path, path: str | None) -> dict[str, dict[str, str]]:
    """The baseline's accepted "not checked" clauses (see load_accepted_not_checked); none without a baseline."""
    if not path or not os.path.lexists(Path(here, path)):
        return {}
    from conformance.results.baseline import load_accepted_not_checked

    try:
        return load_accepted_not_checked(Path(here, path))
    except ValueError as err:
        raise pytest.UsageError(f"--conformance-baseline={path}: {err}") from None


def _replay(here: Path, path: str) -> str:
    """A --conformance-replay file, checked and made absolute."""
    from conformance.results.saved import load_saved

    try:
        load_saved(Path(here, path))
    except (OSError, ValueError) as err:
        raise pytest.UsageError(f"--conformance-replay={path}: {err}") from None
    return str(Path(here, path))
