"""What a connector team meets first: an inert plugin next to its own packages, one block when the destination cannot
even start, and pytest's own habits (--collect-only, -k by clause id, --conformance-clause, path arguments, the
clause table as the last thing printed)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import DROPS_LAST, summary

REPO = Path(__file__).resolve().parents[1]
QUICK = "--hypothesis-profile=conformance-quick"
NO_CACHE = ("-p", "no:cacheprovider")

# A connector repository's own top-level packages, named like ours, and its own tests that use them.
OWN_HARNESS = "VERSION = 'theirs'\n"
OWN_REFERENCE = "def answer():\n    return 42\n"
OWN_TESTS = """
import harness
import reference

def test_own_harness():
    assert harness.VERSION == 'theirs'

def test_own_reference():
    assert reference.answer() == 42
"""

CTOR_RAISES = "tests.zoo.scenarios:CtorRaises"


def _own_repository(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("harness").joinpath("__init__.py").write_text(OWN_HARNESS)
    pytester.mkpydir("reference").joinpath("__init__.py").write_text(OWN_REFERENCE)
    pytester.makepyfile(test_own=OWN_TESTS)


def _section(out: str, destination: str) -> str:
    """One destination's summary section, up to the next ===== rule."""
    section = out.split(f"destination conformance: {destination}", 1)[1].split("\n", 1)[1]
    return re.split(r"^=+ .* =+$", section, maxsplit=1, flags=re.M)[0]


# -- item 2: an inert plugin ----------------------------------------------------------------------------------


def test_importing_the_plugin_loads_none_of_the_suite_packages() -> None:
    """The pytest11 entry point's module (and the package) import only pytest and the standard library."""
    code = ("import sys, conformance, conformance.plugin\n"
            "print(sorted(m for m in ('harness', 'hypothesis', 'pydantic', 'reference', 'conformance.plugin.run') "
            "if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_default_timeout_option_matches_the_driver() -> None:
    """The option's default is spelled out in the plugin (so declaring it imports no harness): the driver's."""
    from conformance.plugin import DEFAULT_TIMEOUT
    from harness import DEFAULT_TIMEOUT as DRIVER_DEFAULT

    assert DEFAULT_TIMEOUT == DRIVER_DEFAULT


@pytest.mark.parametrize("load", [(), ("-p", "no:conformance", "-p", "conformance.plugin")],
                         ids=["entry-point", "-p"])
def test_a_repository_with_its_own_harness_runs_its_own_tests(pytester: pytest.Pytester, load: tuple[str, ...]) -> None:
    """`python -m pytest` in a repository whose own top-level `harness` and `reference` shadow ours runs its own
    tests unchanged, with the plugin loaded by its entry point or by -p (a fresh interpreter)."""
    _own_repository(pytester)
    result = pytester.runpytest_subprocess(*load, *NO_CACHE)
    assert result.ret == 0, result.stdout.str()[-2000:] + result.stderr.str()[-2000:]
    result.assert_outcomes(passed=2)
    assert "conformance" not in result.stdout.str().lower().replace("destination-conformance", "")


def test_with_destination_a_shadowing_harness_is_one_usage_error_line(pytester: pytest.Pytester) -> None:
    """With --destination, a `harness` that is not ours stops the run at once, one line naming both files."""
    _own_repository(pytester)
    result = pytester.runpytest_subprocess("--destination=reference:registration", *NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    lines = [line for line in err.splitlines() if "shadows" in line]
    assert len(lines) == 1, err
    assert str(pytester.path / "harness" / "__init__.py") in lines[0]
    assert str(REPO / "harness" / "__init__.py") in lines[0]
    assert "Traceback" not in err + result.stdout.str()


# -- item 3: fail fast, one block -----------------------------------------------------------------------------


@pytest.mark.usefixtures("zoo_importable")
def test_a_raising_constructor_is_one_block_and_no_check_runs(pytester: pytest.Pytester) -> None:
    """The factory fails in the probe: the header says so, no check runs, the summary names the root cause once
    with a replay, every clause a check would have failed is FAILED pointing to it, and the run fails."""
    result = pytester.runpytest_subprocess(f"--destination={CTOR_RAISES}", "--destination-config",
                                           "directory={tmp}/x", QUICK, *NO_CACHE, "--conformance-report=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "  probe: FAILED: the factory raised RuntimeError: cannot reach the server" in out
    # Only the pipeline checks are left: without a Conduit binary they skip at once (not checked).
    assert set(re.findall(r"^(test_conformance_\w+\.py) ", out, re.M)) == {"test_conformance_pipeline.py"}, out
    assert "= FAILURES =" not in out and "Traceback" not in out
    section = _section(out, CTOR_RAISES)
    assert section.count("root cause:") == 1 and section.count("load_registration(") == 1
    report = json.loads((pytester.path / "r.json").read_text())
    clauses = report["destinations"][CTOR_RAISES]["clauses"]
    failed = sum(1 for row in clauses.values() if row["status"] == "failed")
    assert f"root cause: all {failed} failed clauses failed because the factory raised RuntimeError" in section
    rows = summary(out, CTOR_RAISES)
    assert rows["write.round-trip"] == "FAILED" and rows["parameters.shape"] == "FAILED"
    assert {rows[c] for c in rows if c.startswith("pipeline.")} == {"not checked"}  # no Conduit binary given
    assert len(out.splitlines()) < 80
    assert clauses["write.count"]["status"] == "failed"


def test_a_config_typo_runs_only_the_checks_that_do_not_need_configure(pytester: pytest.Pytester) -> None:
    """configure() rejects the registered config in the probe: the parameters.* and configure.* checks still run
    (configure.valid fails, the clause the typo breaks); the checks that need an opened destination are not run and
    their clauses fail with the typo as the one root cause."""
    result = pytester.runpytest_subprocess("--destination=reference:FileDestination", "--destination-config",
                                           "pth={tmp}/x", QUICK, *NO_CACHE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    probe_line = next(line for line in out.splitlines() if line.startswith("  probe: FAILED: "))
    assert "configure() with the registered config raised" in probe_line and "'pth'" in probe_line
    section = _section(out, "reference:FileDestination")
    assert section.count("root cause:") == 1
    rows = summary(out, "reference:FileDestination")
    assert rows["configure.valid"] == "FAILED" and rows["parameters.defaults-valid"] in ("passed", "not checked")
    assert re.search(r"FAILED +write\.round-trip +1 of 1 check\(s\) failed: configure\(\) failed, see the root "
                     r"cause above", section)
    assert "test_conformance_write" not in out  # not one write check ran
    assert len(out.splitlines()) < 200


def test_probe_rule_keeps_parameters_and_configure_checks() -> None:
    """Which clauses a failed probe step stops: every one for the factory; all but parameters.* and configure.* for
    configure and open; call.timeout is never a check of its own."""
    from conformance.contract.clauses import CLAUSES
    from conformance.plugin.probe import ProbeResult, needs_failed_step

    def stopped(step: str) -> set[str]:
        return {c for c in CLAUSES if needs_failed_step(c, ProbeResult(step, f"{step} failed"))}

    assert stopped("factory") == set(CLAUSES) - {"call.timeout"}
    kept = {c for c in CLAUSES if c.split(".")[0] in ("parameters", "configure")} | {"call.timeout"}
    assert stopped("configure") == stopped("open") == set(CLAUSES) - kept
    assert not any(needs_failed_step(c, ProbeResult(None, "")) for c in CLAUSES)


# -- item 4: pytest's own habits ------------------------------------------------------------------------------


def test_collect_only_lists_checks_by_clause_and_exits_0(pytester: pytest.Pytester) -> None:
    """--co -q with --destination lists the checks with their clause ids, runs no probe and prints no verdicts."""
    from conformance.results.report import suite_clauses

    result = pytester.runpytest_subprocess("--destination=reference:registration", "--co", "-q", *NO_CACHE)
    assert result.ret == 0, result.stdout.str()[-2000:]
    out = result.stdout.str()
    assert re.search(r"^write\.round-trip +test_conformance_write\.py::test_\w+\[reference:registration", out, re.M)
    assert "destination conformance:" not in out and "probe" not in out
    listed = re.findall(r"^([a-z]+\.[a-z-]+) +(test_conformance_\w+\.py::.+)$", out, re.M)
    clauses = set(suite_clauses().values())  # every clause some check is marked with: none is left out
    assert {c for c, _ in listed} == clauses
    assert f"\n{len(listed)} checks of {len(clauses)} clauses selected\n" in out


def test_k_selects_by_clause_id_and_the_summary_lists_only_it(pytester: pytest.Pytester) -> None:
    """-k write.empty-batch selects that clause's check; the table lists it (and call.timeout) and one line for the
    rest, not a row per unselected clause."""
    from conformance.contract.clauses import CLAUSES

    result = pytester.runpytest_subprocess("--destination=reference:registration", "-k", "write.empty-batch", QUICK,
                                           *NO_CACHE)
    assert result.ret == 0, result.stdout.str()[-3000:]
    out = result.stdout.str()
    rows = summary(out, "reference:registration")
    assert rows == {"write.empty-batch": "passed", "call.timeout": "passed"}
    assert f"\n  {len(CLAUSES) - len(rows)} other clauses not selected in this run" in out
    assert "no check was selected in this run" not in out


def test_conformance_clause_selects_by_glob(pytester: pytest.Pytester) -> None:
    """--conformance-clause takes ids and globs, comma-separated; an unknown one is a usage error."""
    from conformance.contract.clauses import CLAUSES

    result = pytester.runpytest_subprocess("--destination=reference:registration", "--conformance-clause",
                                           "parameters.*,configure.valid", QUICK, *NO_CACHE)
    assert result.ret == 0, result.stdout.str()[-3000:]
    rows = summary(result.stdout.str(), "reference:registration")
    expected = {c for c in CLAUSES if c.startswith("parameters.")} | {"configure.valid", "call.timeout"}
    assert set(rows) == expected and set(rows.values()) == {"passed"}
    bad = pytester.runpytest_subprocess("--destination=reference:registration", "--conformance-clause=write.speed",
                                        *NO_CACHE)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-clause=write.speed" in bad.stderr.str()


def test_a_path_argument_runs_those_tests_and_the_suite(pytester: pytest.Pytester) -> None:
    """`pytest sub --destination=X` runs the user's tests in sub/ and the suite together, and the header says so;
    a failing test of the user's fails the run like a failed clause does."""
    sub = pytester.mkdir("sub")
    (sub / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    args = ("sub", "--destination=reference:registration", "--conformance-clause=write.empty-batch", QUICK, *NO_CACHE)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    out = result.stdout.str()
    assert "also running your tests in: sub (with the suite, one exit status)" in out
    assert re.search(r"^sub/test_mine\.py \.", out, re.M)
    assert summary(out, "reference:registration")["write.empty-batch"] == "passed"
    (sub / "test_mine.py").write_text("def test_mine():\n    assert False\n")
    assert pytester.runpytest_subprocess(*args).ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.usefixtures("zoo_importable")
def test_under_ci_the_clause_table_is_printed_last(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CI set (pytest's short summary then prints whole messages), the clause table still comes after
    everything pytest prints at the end, followed only by pytest's closing line."""
    monkeypatch.setenv("CI", "1")
    result = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", QUICK, *NO_CACHE,
                                           "--conformance-clause=write.round-trip")
    assert result.ret == 1
    lines = result.stdout.str().rstrip().splitlines()
    table = next(i for i, line in enumerate(lines) if f"destination conformance: {DROPS_LAST}" in line)
    assert any("short test summary info" in line for line in lines[:table])
    after = lines[table + 1:]
    assert all(line.startswith("  ") for line in after[:-1]), after
    failed = sum(1 for line in lines[:table] if line.startswith("FAILED "))  # the short summary's, one per test
    assert failed and re.match(rf"^=+ {failed} failed\b.* =+$", after[-1])
