"""The conformance plugin as a user meets it: options, collection, header, summary, reports, usage errors."""

import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.contract.clauses import CLAUSES
from harness import CONTRACT_VERSION, __version__
from tests.support import DROPS_LAST, junit_verdicts, report_verdicts, summary

REPO = Path(__file__).resolve().parents[1]
DEV = "--hypothesis-profile=conformance-dev"


# write() never returns for a batch of 3 records or more.
HANGS = "tests.zoo.broken:hangs_on_big_batch"


def run_pytest_script(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Runs the `pytest` console script in `cwd`, as a user types it (the cwd is not put on sys.path)."""
    script = Path(sys.executable).with_name("pytest")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_reference_passes_every_checked_clause_from_an_empty_directory(tmp_path: Path) -> None:
    """The README's first command: the reference passes, the header and the summary say so per clause."""
    result = run_pytest_script(tmp_path, "--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                               "--conformance-report=report.json", f"--junitxml={tmp_path / 'junit.xml'}")
    assert result.returncode == 0, result.stdout[-3000:]
    out = result.stdout
    assert f"conformance suite {__version__}, contract {CONTRACT_VERSION}; hypothesis profile 'conformance-dev'" in out
    assert "destination reference:registration:" in out
    assert "parameters: directory (required), sync, sdk.batch.size" in out
    rows = summary(out, "reference:registration")
    assert rows["write.round-trip"] == "passed"
    assert rows["lifecycle.out-of-order"] == "passed"
    assert rows["fault.disk-full"] == "passed" and rows["safety.confined"] == "passed"
    engine = {c for c in rows if c.startswith(("pipeline.", "fault.backend-"))}
    assert {rows[c] for c in rows if c not in engine} == {"passed"} and set(rows) == set(CLAUSES)
    assert {rows[c] for c in engine} == {"not checked"}  # they need a Conduit engine, or a backend over TCP

    report = json.loads((tmp_path / "report.json").read_text())
    clauses = report["destinations"]["reference:registration"]["clauses"]
    assert report["contract_version"] == CONTRACT_VERSION and report["hypothesis"]["profile"] == "conformance-dev"
    assert clauses["write.invalid-key-count"]["status"] == "passed"
    assert clauses["write.invalid-key-count"]["tests"][0]["outcome"] == "passed"
    assert clauses["teardown.releases"]["status"] == "passed" and clauses["teardown.releases"]["tests"]

    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    props = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert props and all(p.get("destination") == "reference:registration" for p in props)
    assert {"write.round-trip", "configure.required", "lifecycle.valid-orders"} <= {p["clause"] for p in props}
    assert junit_verdicts(tmp_path / "junit.xml") == report_verdicts(report)  # every clause's, "not checked" too


@pytest.mark.usefixtures("zoo_importable")
def test_failure_names_clause_shows_records_and_a_replay_that_runs(pytester: pytest.Pytester) -> None:
    """A broken destination fails write.round-trip with the rule, readable records and a working replay."""
    result = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                           "-k", "batches_read_back or write_returns_a_valid_count")
    assert result.ret == 1
    out = result.stdout.str()
    rows = summary(out, DROPS_LAST)
    assert rows["write.round-trip"] == "FAILED"
    assert rows["write.count"] != "FAILED"  # the count is right; only read-back shows the loss
    assert "[write.round-trip] After a successful batch, read-back maps each key" in out
    assert "missing    b'" in out
    assert "driver.write([" in out and "Record(position=b'0'" in out
    after = out.split("Replay it:", 1)[1].splitlines()[1:]
    end = next(i for i, line in enumerate(after) if "if registration.read_back" in line)
    code = textwrap.dedent("\n".join(line.removeprefix("E").rstrip() for line in after[: end + 1]))
    scratch = pytester.path / "scratch"
    scratch.mkdir()
    replay = subprocess.run([sys.executable, "-c", code], cwd=pytester.path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": f"{pytester.path}{os.pathsep}{REPO}",
                                 "TMPDIR": str(scratch)})
    assert replay.returncode == 0, replay.stderr
    assert "write -> 1" in replay.stdout and "read-back: {" in replay.stdout
    assert list(scratch.iterdir()) == []  # the replay removed its temporary directory


def test_a_replay_snippet_removes_its_temporary_directory(tmp_path: Path) -> None:
    """A replay removes the directory it made for '{tmp}', also when the calls left a read-only directory in it."""
    from conformance.execute.replay import Call, render_snippet

    calls = [Call("setup", ("os.makedirs('{tmp}/locked/inner'); os.chmod('{tmp}/locked', 0o555)",)),
             Call("configure"), Call("open")]
    code = render_snippet("reference:registration", {"directory": "{tmp}/out"}, calls)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    replay = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)})
    assert replay.returncode == 0, replay.stderr
    assert "open -> None" in replay.stdout
    assert list(scratch.iterdir()) == []


@pytest.mark.usefixtures("zoo_importable")
def test_a_hang_is_a_timeout_failure_and_the_run_goes_on(pytester: pytest.Pytester) -> None:
    """call.timeout: a write that never returns fails its clause and the other clauses still get verdicts."""
    result = pytester.runpytest_subprocess(f"--destination={HANGS}", DEV, "-p", "no:cacheprovider",
                                           "--conformance-timeout=2", "-k", "batches_read_back or empty_batch",
                                           timeout=300)
    out = result.stdout.str()
    rows = summary(out, HANGS)
    assert result.ret == 1
    assert rows["call.timeout"] == "FAILED" and rows["write.round-trip"] == "FAILED"
    assert rows["write.empty-batch"] == "passed"
    assert "[call.timeout]" in out and "write() did not return within" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--destination=nocolon"], "malformed destination spec 'nocolon'"),
        (["--destination=no_such_module_xyz:thing"], "cannot import module 'no_such_module_xyz'"),
        (["--destination=reference:nothing_here"], "module 'reference' has no attribute 'nothing_here'; it has:"),
        (["--destination=reference:TEMP_PREFIX"], "not a Registration, destination class or factory"),
        (["--destination=reference:FileDestination", "--destination-config", "novalue"],
         "--destination-config 'novalue': expected KEY=VALUE"),
        (["--destination=badskip:registration"], "unknown clause id(s) in skip: write.speed"),
        (["--destination=reference:registration", "--hypothesis-profile=nope"],
         "--hypothesis-profile=nope: no such profile"),
        (["--destination=reference:registration", "--conformance-timeout=0"], "must be a number of seconds above 0"),
    ],
)
def test_bad_input_is_a_usage_error_with_one_clear_line(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    """Bad plugin input ends with pytest's usage-error exit code and a message naming what was wrong."""
    pytester.makepyfile(badskip="from reference import registration as r\nimport dataclasses\n"
                                "registration = dataclasses.replace(r, skip={'write.speed': 'too slow'})\n")
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert message in err
    assert "Traceback" not in err + result.stdout.str()


def test_user_collection_settings_do_not_hide_the_suite(pytester: pytest.Pytester) -> None:
    """The suite is collected even when the user's ini renames test files, functions and classes."""
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\npython_classes = Check*\n")
    result = pytester.runpytest_subprocess("--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                                           "-k", "empty_batch or configure_touches")
    assert result.ret == 0
    result.assert_outcomes(passed=4)  # write.empty-batch's check and configure.no-side-effects' three


def test_without_destination_the_plugin_stays_out_of_the_way(pytester: pytest.Pytester) -> None:
    """A normal run of the user's own tests collects only them and prints no conformance section."""
    pytester.makepyfile(test_mine="def test_mine():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "destination conformance" not in result.stdout.str()


def test_without_destination_a_path_to_the_suite_collects_nothing(pytester: pytest.Pytester) -> None:
    """The run's hooks are registered only with --destination: the suite's own directory, named as a path, is not
    collected (no "fixture 'registration' not found" errors), and no run object exists."""
    from conformance.suite import SUITE_DIR

    result = pytester.runpytest_subprocess(str(SUITE_DIR), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()[-2000:]
    assert "error" not in result.stdout.str().lower()
    assert "destination conformance" not in result.stdout.str()


def test_bare_class_reports_what_it_cannot_check(pytester: pytest.Pytester) -> None:
    """A bare class has no read-back: those clauses are 'not checked' with the reason, never passed."""
    result = pytester.runpytest_subprocess("--destination=reference:FileDestination", "--destination-config",
                                           "directory={tmp}/x", DEV, "-p", "no:cacheprovider", "-k", "write")
    out = result.stdout.str()
    rows = summary(out, "reference:FileDestination")
    assert rows["write.round-trip"] == "not checked"
    assert rows["write.large-payload"] == "not checked"
    assert "needs read_back, which the registration does not provide" in out
    assert rows["write.count"] == "passed"


def test_environment_variable_names_the_destination(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFORMANCE_DESTINATION stands in for --destination."""
    monkeypatch.setenv("CONFORMANCE_DESTINATION", "reference:registration")
    result = pytester.runpytest_subprocess(DEV, "-p", "no:cacheprovider", "-k", "empty_batch")
    assert result.ret == 0
    assert summary(result.stdout.str(), "reference:registration")["write.empty-batch"] == "passed"


@pytest.mark.usefixtures("zoo_importable")
def test_xdist_gives_the_same_verdicts(pytester: pytest.Pytester) -> None:
    """Under -n 2 the summary table equals the one of a plain run."""
    args = (f"--destination={DROPS_LAST}", "--destination=reference:registration",
            "--hypothesis-profile=conformance-quick", "-p", "no:cacheprovider", "-k", "write or configure")
    plain = pytester.runpytest_subprocess(*args)
    spread = pytester.runpytest_subprocess(*args, "-n", "2")
    for name in (DROPS_LAST, "reference:registration"):
        assert summary(plain.stdout.str(), name) == summary(spread.stdout.str(), name)
    assert summary(spread.stdout.str(), DROPS_LAST)["write.round-trip"] == "FAILED"


OPEN_FAILS = "tests.zoo.scenarios:open_fails"


@pytest.mark.usefixtures("zoo_importable")
def test_a_common_root_cause_is_named_once_with_one_replay(pytester: pytest.Pytester) -> None:
    """When open() fails the same way for most clauses, the section's first line says so once, with one replay that
    runs; every clause is still listed, and its row points to the root cause instead of repeating it."""
    from conformance.contract.clauses import CLAUSES

    result = pytester.runpytest_subprocess(f"--destination={OPEN_FAILS}", DEV, "-p", "no:cacheprovider")
    assert result.ret == 1
    out = result.stdout.str()
    section = out.split(f"destination conformance: {OPEN_FAILS}", 1)[1].split("\n", 1)[1]
    # The section ends at the next "=== ... ===" rule; under CI=1 pytest's short summary repeats whole messages.
    section = re.split(r"^=+ .* =+$", section, maxsplit=1, flags=re.M)[0]
    lines = section.splitlines()
    rows = summary(out, OPEN_FAILS)
    failed_clauses = sum(1 for status in rows.values() if status == "FAILED")
    assert lines[0].startswith(
        f"  root cause: all {failed_clauses} failed clauses failed because open() raised PermissionError: ")
    assert section.count("root cause:") == 1
    assert set(rows) == set(CLAUSES)
    failed = [line for line in lines if line.startswith("  FAILED ")]
    assert len(failed) >= 10 and all(line.endswith("open() failed, see the root cause above") for line in failed)
    assert not any("PermissionError" in line for line in failed)
    assert rows["configure.valid"] == "passed" and rows["write.round-trip"] == "FAILED"

    start = next(i for i, line in enumerate(lines) if line.startswith("  replay it"))
    replay = [line[6:] for line in lines[start + 1:] if line.startswith("      ")]
    assert section.count("load_registration(") == 1
    ran = subprocess.run([sys.executable, "-c", "\n".join(replay)], cwd=pytester.path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": f"{pytester.path}{os.pathsep}{REPO}"})
    assert ran.returncode == 0, ran.stderr
    assert "open raised PermissionError" in ran.stdout, ran.stdout


def test_root_cause_needs_most_failures_to_share_it() -> None:
    """root_cause() names a set-up failure only when it explains more than half (and at least 3) failed clauses; it
    groups failures by the cause their ClauseFailure carries, never by their wording."""
    from conformance.results.verdicts import root_cause

    def rows_and_reports(failures: dict[str, tuple[str, list[str] | None]]) -> tuple[dict, list]:
        rows = {c: {"status": "failed", "tests": [{"nodeid": f"t::{c}"}]} for c in failures}
        rows["configure.valid"] = {"status": "passed", "tests": [{"nodeid": "t::ok"}]}
        reports = [{"nodeid": f"t::{c}", "outcome": "failed", "clause": c, "message": m, "cause": cause}
                   for c, (m, cause) in failures.items()]
        return rows, reports

    denied = ("open() raised PermissionError: [Errno 13] Permission denied: '/x'", ["open", "PermissionError"])
    other = ("read-back differs", None)
    assert root_cause(*rows_and_reports({"a.a": denied, "b.b": denied, "c.c": denied, "d.d": other})) \
        == f"root cause: 3 of the 4 failed clauses failed because {denied[0]}"
    assert root_cause(*rows_and_reports({"a.a": denied, "b.b": denied, "c.c": ("x", None), "d.d": other})) is None
    assert root_cause(*rows_and_reports({"a.a": denied, "b.b": denied})) is None
    # A message worded like a set-up failure is not one unless its failure says so.
    worded = (denied[0], None)
    assert root_cause(*rows_and_reports({"a.a": worded, "b.b": worded, "c.c": worded})) is None
    hang = ("the factory did not return within 10s", ["factory", "did not return"])
    assert root_cause(*rows_and_reports({"a.a": hang, "b.b": hang, "c.c": hang})) == \
        f"root cause: all 3 failed clauses failed because {hang[0]}"
