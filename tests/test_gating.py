"""The suite as a CI gate: Markdown summary, baseline of known failures, JSON certificate."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support import DROPS_LAST, junit_verdicts

DEV = "--hypothesis-profile=conformance-dev"
# The checks that gather write.round-trip's and write.count's whole evidence, and write.empty-batch's.
WRITE_CHECKS = ("-k", "batches_read_back or every_record_class or write_returns_a_valid_count or unspecified_keys "
                      "or empty_batch")


def statuses(report: Path, destination: str) -> dict[str, str]:
    """Clause -> status from a JSON report."""
    clauses = json.loads(report.read_text())["destinations"][destination]["clauses"]
    return {clause: row["status"] for clause, row in clauses.items()}


def test_markdown_table_goes_to_the_github_step_summary(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With GITHUB_STEP_SUMMARY set, the clause table is appended there as Markdown."""
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess("--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                                           *WRITE_CHECKS)
    assert result.ret == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert "### Destination conformance: `reference:registration`" in text
    assert "| `write.round-trip` | ✅ passed |" in text
    assert "| `fault.disk-full` | ➖ not checked | no check was selected in this run |" in text


@pytest.mark.usefixtures("zoo_importable")
def test_baseline_lets_known_failures_pass_and_catches_new_ones(pytester: pytest.Pytester) -> None:
    """Clauses failed in the baseline are known failures (exit 0); a clause failing anew fails the run."""
    first = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                          *WRITE_CHECKS, "--conformance-report=first.json")
    assert first.ret == 1
    assert statuses(pytester.path / "first.json", DROPS_LAST)["write.round-trip"] == "failed"

    again = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                          *WRITE_CHECKS, "--conformance-baseline=first.json",
                                          "--conformance-report=again.json")
    assert again.ret == 0, again.stdout.str()[-2000:]
    assert re.search(r"known fail +write\.round-trip", again.stdout.str())
    assert statuses(pytester.path / "again.json", DROPS_LAST)["write.round-trip"] == "known failure"

    baseline = json.loads((pytester.path / "first.json").read_text())
    baseline["destinations"][DROPS_LAST]["clauses"]["write.round-trip"]["status"] = "passed"
    (pytester.path / "stricter.json").write_text(json.dumps(baseline))
    stricter = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                             *WRITE_CHECKS, "--conformance-baseline=stricter.json")
    assert stricter.ret == 1


def test_a_clause_fixed_since_the_baseline_is_named(pytester: pytest.Pytester) -> None:
    """A clause that failed in the baseline and passes now says so, so the baseline can be tightened."""
    baseline = {"destinations": {"reference:registration": {"clauses": {"write.round-trip": {"status": "failed"}}}}}
    (pytester.path / "old.json").write_text(json.dumps(baseline))
    result = pytester.runpytest_subprocess("--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                                           *WRITE_CHECKS, "--conformance-baseline=old.json")
    assert result.ret == 0
    assert "fixed since the baseline: tighten the baseline" in result.stdout.str()


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read"),  # a directory where the file should be
    ("not json", "is not JSON"),
    ('{"something": 1}', "is not a conformance report"),
])
def test_bad_baseline_is_a_usage_error(pytester: pytest.Pytester, content: str | None, message: str) -> None:
    """A baseline that exists but is not a readable report stops the run with a usage error naming the file."""
    if content is None:
        (pytester.path / "base.json").mkdir()
    else:
        (pytester.path / "base.json").write_text(content)
    result = pytester.runpytest_subprocess("--destination=reference:registration", "-p", "no:cacheprovider",
                                           "--conformance-baseline=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-baseline=base.json:" in result.stderr.str() and message in result.stderr.str()


@pytest.mark.usefixtures("zoo_importable")
def test_a_missing_baseline_is_no_baseline_yet(pytester: pytest.Pytester) -> None:
    """--conformance-baseline naming a file that does not exist yet runs as without a baseline (a failure fails the
    run), with one line saying so; so CI can pass the option before the first baseline is committed."""
    passing = pytester.runpytest_subprocess("--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                                            *WRITE_CHECKS, "--conformance-baseline=conformance-baseline.json",
                                            "--conformance-report=report.json")
    assert passing.ret == 0, passing.stderr.str() + passing.stdout.str()[-2000:]
    notices = [line for line in passing.stdout.lines if "no baseline yet" in line]
    assert notices == ["conformance: no baseline yet (conformance-baseline.json does not exist), so every failure "
                       "fails the run; to adopt the gate with known failures, commit a --conformance-report as "
                       "conformance-baseline.json"]
    assert "known failure" not in statuses(pytester.path / "report.json", "reference:registration").values()
    failing = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                            *WRITE_CHECKS, "--conformance-baseline=conformance-baseline.json")
    assert failing.ret == 1
    assert re.search(r"FAILED +write\.round-trip", failing.stdout.str())
    assert not (pytester.path / "conformance-baseline.json").exists()


@pytest.mark.usefixtures("zoo_importable")
def test_report_is_a_reproducible_certificate(pytester: pytest.Pytester) -> None:
    """The report names versions, distribution, registration hash, seed and examples; a rerun agrees."""
    args = (f"--destination={DROPS_LAST}", "--destination=reference:registration", DEV,
            "--hypothesis-seed=12345", "-p", "no:cacheprovider", *WRITE_CHECKS)
    pytester.runpytest_subprocess(*args, "--conformance-report=one.json")
    pytester.runpytest_subprocess(*args, "--conformance-report=two.json")
    one = json.loads((pytester.path / "one.json").read_text())
    assert one["hypothesis"]["seed"] == 12345 and one["hypothesis"]["version"]
    reference = one["destinations"]["reference:registration"]
    assert reference["distribution"] == "destination-conformance" and reference["version"]
    assert len(reference["registration_sha256"]) == 64
    assert reference["clauses"]["write.round-trip"]["examples"] > 1
    coverage = reference["clauses"]["write.round-trip"]["coverage"]
    assert coverage["records"] > 0 and coverage["batches"] > 0
    assert {"key: ASCII", "payload: raw"} <= set(coverage)
    for name in (DROPS_LAST, "reference:registration"):
        assert statuses(pytester.path / "one.json", name) == statuses(pytester.path / "two.json", name)


@pytest.mark.usefixtures("zoo_importable")
def test_saved_failure_replays_as_a_regression_test(pytester: pytest.Pytester) -> None:
    """A failure is saved as opencdc/json calls plus a pytest file; both replay it, and the reference passes."""
    found = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                          "-k", "batches_read_back", "--conformance-save-failures=saved")
    assert found.ret == 1
    saved = pytester.path / "saved"
    (calls,) = saved.glob("write_round_trip_*.jsonl")
    (test_file,) = saved.glob("test_write_round_trip_*.py")
    lines = [json.loads(line) for line in calls.read_text().splitlines()]
    assert lines[0]["clause"] == "write.round-trip" and lines[0]["destination"] == DROPS_LAST
    assert any(line["call"] == "write" and line["records"] for line in lines[1:])
    assert "conformance failures saved as regression tests" in found.stdout.str()

    standalone = pytester.runpytest_subprocess(str(test_file), "-p", "no:cacheprovider")
    standalone.assert_outcomes(failed=1)
    assert "[write.round-trip]" in standalone.stdout.str()

    replayed = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", f"--conformance-replay={calls}",
                                             "-p", "no:cacheprovider", "-k", "replay")
    assert replayed.ret == 1 and re.search(r"FAILED +write\.round-trip", replayed.stdout.str())
    fixed = pytester.runpytest_subprocess("--destination=reference:registration", f"--conformance-replay={calls}",
                                          "-p", "no:cacheprovider", "-k", "replay")
    assert fixed.ret == 0 and re.search(r"passed +write\.round-trip", fixed.stdout.str())


def test_without_replay_files_the_replay_check_is_not_collected(pytester: pytest.Pytester) -> None:
    """The replay check appears only with --conformance-replay: a plain run has no skipped placeholder."""
    result = pytester.runpytest_subprocess("--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                                           "-k", "replay or empty_batch")
    result.assert_outcomes(passed=1)


def test_malformed_replay_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A replay file that is not a saved failure stops the run naming the file and the line."""
    (pytester.path / "bad.jsonl").write_text('{"no": "header"}\n')
    result = pytester.runpytest_subprocess("--destination=reference:registration", "--conformance-replay=bad.jsonl",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-replay=bad.jsonl:" in result.stderr.str() and "bad.jsonl:1" in result.stderr.str()


# The budget's clock moves a fixed step per reading in these runs (tests/budget_clock.py): what a budget buys does not
# depend on the machine's load (under load, a real 4 s went to start-up and one example).
BUDGET_CLOCK = ("-p", "tests.budget_clock")


@pytest.mark.usefixtures("zoo_importable")
def test_budget_spends_the_time_on_more_examples_and_reports_progress(pytester: pytest.Pytester) -> None:
    """--conformance-budget repeats generated checks until their share is spent, with a progress line each."""
    result = pytester.runpytest_subprocess("--destination=reference:registration", DEV, "-p", "no:cacheprovider",
                                           *BUDGET_CLOCK, "-k", "batches_read_back or valid_orders or empty_batch",
                                           "--conformance-budget=6s", "--conformance-report=budget.json",
                                           timeout=600)
    assert result.ret == 0
    out = result.stdout.str()
    assert re.search(r"\[ +\d+s of 6s\] reference:registration write\.round-trip: \d+ examples, passed; "
                     r"failures so far: 0", out)
    clauses = json.loads((pytester.path / "budget.json").read_text())["destinations"]["reference:registration"]
    assert clauses["clauses"]["write.round-trip"]["examples"] > 25  # more than one run of the dev profile
    assert clauses["clauses"]["write.empty-batch"]["examples"] == 1  # fixed checks run once


@pytest.mark.usefixtures("zoo_importable")
def test_budget_failure_is_found_and_shrunk(pytester: pytest.Pytester) -> None:
    """A failure found in any repetition of a budgeted check fails the check with its minimal example."""
    result = pytester.runpytest_subprocess(f"--destination={DROPS_LAST}", DEV, "-p", "no:cacheprovider",
                                           *BUDGET_CLOCK, "-k", "batches_read_back", "--conformance-budget=4s",
                                           timeout=600)
    assert result.ret == 1
    assert "failures so far: 1" in result.stdout.str()
    assert "Record(position=b'0', key=RawData(b'a'), payload=Change(after=RawData(b'')))" in result.stdout.str()


@pytest.mark.parametrize("budget", ["ten minutes", "0s"])
def test_bad_budget_is_a_usage_error(pytester: pytest.Pytester, budget: str) -> None:
    """A budget that is not a positive Go duration stops the run naming it."""
    result = pytester.runpytest_subprocess("--destination=reference:registration", f"--conformance-budget={budget}",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--conformance-budget={budget}:" in result.stderr.str()


# A zoo destination whose write skips invalid keys (breaking write.invalid-key-count) under one spec across runs:
# GATED=also-drops makes it drop each batch's last record too (a new write.round-trip failure); GATED=fixed is the
# reference. Its state-machine check (marked write.round-trip) fails on write.invalid-key-count.
GATED = "tests.zoo.scenarios:gated"
QUICK = "--hypothesis-profile=conformance-quick"  # derandomized: the state machine finds the same failure each run
CHARGED_ELSEWHERE = ("-k", "writes_as_a_state_machine or invalid_key_stops or every_invalid_key_class "
                           "or batches_read_back")


def gated_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The suite over the gated destination, with the repository importable (for tests.zoo)."""
    return pytester.runpytest_subprocess(f"--destination={GATED}", QUICK, "-p", "no:cacheprovider",
                                         *CHARGED_ELSEWHERE, *args)


@pytest.fixture
def gated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zoo_importable: None) -> pytest.Pytester:
    """A pytester with the repository on PYTHONPATH (zoo_importable) and GATED's bug chosen by no environment."""
    monkeypatch.delenv("GATED", raising=False)
    return pytester


def junit_clauses(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Test name -> its (name, value) properties about clauses, from a JUnit file."""
    cases = ET.parse(path).getroot().iter("testcase")
    return {case.get("name", ""): [(p.get("name", ""), p.get("value", "")) for p in case.iter("property")
                                   if p.get("name") in ("clause", "marked_clause")] for case in cases}


def test_a_failure_charged_to_another_clause_is_gated_by_that_clause(gated: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A check marked write.round-trip that fails on write.invalid-key-count: after a baseline run, the gated run
    agrees with the clause table (exit 0, the failure xfailed), and JUnit names the charged clause; a new failure of
    another clause fails the run; a clause fixed since the baseline is named."""
    first = gated_run(gated, "--conformance-report=conformance-baseline.json")
    assert first.ret == 1
    rows = statuses(gated.path / "conformance-baseline.json", GATED)
    assert rows["write.invalid-key-count"] == "failed" and rows["write.round-trip"] != "failed"
    out = first.stdout.str()
    assert "test_writes_as_a_state_machine) stopped at a failure charged to write.invalid-key-count" in out

    monkeypatch.setenv("CI", "true")
    again = gated_run(gated, "--conformance-baseline=conformance-baseline.json", "--junitxml=junit.xml")
    assert again.ret == 0, again.stdout.str()[-3000:]
    assert "0 failed, 1 known failure" in again.stdout.str()
    assert not [line for line in again.outlines if line.startswith("FAILED ")]
    again.assert_outcomes(passed=1, xfailed=3)
    props = junit_clauses(gated.path / "junit.xml")
    machine = next(v for k, v in props.items() if k.startswith("test_writes_as_a_state_machine"))
    assert machine == [("clause", "write.invalid-key-count"), ("marked_clause", "write.round-trip")]
    # A stable classname, conformance.<area>, whatever path the suite's node ids hold.
    assert {case.get("classname") for case in ET.parse(gated.path / "junit.xml").getroot().iter("testcase")} == {
        "conformance.write"}
    # The testsuite's verdicts: the baseline's failure is a known failure there too.
    assert junit_verdicts(gated.path / "junit.xml")[GATED]["write.invalid-key-count"][0] == "known failure"

    monkeypatch.setenv("GATED", "also-drops")
    worse = gated_run(gated, "--conformance-baseline=conformance-baseline.json")
    assert worse.ret == 1
    assert re.search(r"FAILED +write\.round-trip", worse.stdout.str())
    assert re.search(r"known fail +write\.invalid-key-count", worse.stdout.str())

    monkeypatch.setenv("GATED", "fixed")
    fixed = gated_run(gated, "--conformance-baseline=conformance-baseline.json")
    assert fixed.ret == 0
    assert re.search(r"passed +write\.invalid-key-count +fixed since the baseline: tighten the baseline",
                     fixed.stdout.str())


def test_a_failure_charged_to_another_clause_is_gated_by_it_under_xdist(gated: pytest.Pytester) -> None:
    """The same under -n 2: the gated run exits 0, with the failures xfailed on the workers."""
    first = gated_run(gated, "-n", "2", "--conformance-report=conformance-baseline.json")
    assert first.ret == 1
    again = gated_run(gated, "-n", "2", "--conformance-baseline=conformance-baseline.json")
    assert again.ret == 0, again.stdout.str()[-3000:]
    assert "0 failed, 1 known failure" in again.stdout.str()
    again.assert_outcomes(passed=1, xfailed=3)


def test_strict_fails_on_a_clause_not_checked_unless_the_baseline_accepts_it(pytester: pytest.Pytester) -> None:
    """--conformance-strict: a clause not checked fails the run with one line naming it; the baseline's
    accepted_not_checked (clause -> reason, top level or per destination) accepts it, and a report made with that
    baseline carries the accepted clauses still not checked."""
    from conformance.contract.clauses import CLAUSES

    args = ("--destination=reference:registration", DEV, "-p", "no:cacheprovider", "-k", "empty_batch",
            "--conformance-strict")
    plain = pytester.runpytest_subprocess(*args[:-1])
    assert plain.ret == 0  # without --conformance-strict, write.empty-batch checked is enough
    strict = pytester.runpytest_subprocess(*args)
    assert strict.ret == 1
    lines = [line for line in strict.outlines if "--conformance-strict:" in line]
    unchecked = [c for c in CLAUSES if c not in ("write.empty-batch", "call.timeout")]
    assert len(lines) == 1 and lines[0].startswith(
        f"conformance: --conformance-strict: {len(unchecked)} clause(s) of reference:registration not checked "
        "(parameters.shape, ")

    accepted = {c: "not this run's business" for c in unchecked if c != "fault.io-error"}
    baseline = {"accepted_not_checked": accepted, "destinations": {"reference:registration": {
        "clauses": {}, "accepted_not_checked": {"fault.io-error": "sqlite3 I/O is in C"}}}}
    (pytester.path / "base.json").write_text(json.dumps(baseline))
    gated = pytester.runpytest_subprocess(*args, "--conformance-baseline=base.json", "--conformance-report=r.json")
    assert gated.ret == 0, gated.stdout.str()[-3000:]
    assert re.search(r"not checked +fault\.io-error +no check was selected in this run; accepted in the baseline: "
                     r"sqlite3 I/O is in C", gated.stdout.str())
    report = json.loads((pytester.path / "r.json").read_text())["destinations"]["reference:registration"]
    assert report["accepted_not_checked"] == {**accepted, "fault.io-error": "sqlite3 I/O is in C"}

    del baseline["destinations"]["reference:registration"]["accepted_not_checked"]
    (pytester.path / "base.json").write_text(json.dumps(baseline))
    tighter = pytester.runpytest_subprocess(*args, "--conformance-baseline=base.json")
    assert tighter.ret == 1
    assert [line for line in tighter.outlines if "--conformance-strict:" in line] == [
        "conformance: --conformance-strict: 1 clause(s) of reference:registration not checked (fault.io-error); the "
        'run fails (a baseline may accept one under "accepted_not_checked" with its reason)']


@pytest.mark.parametrize(("accepted", "message"), [
    ({"fault.io-eror": "typo"}, "names 'fault.io-eror', which is not a clause id"),
    ({"fault.io-error": ""}, "accepted_not_checked.fault.io-error needs a reason"),
    (["fault.io-error"], "accepted_not_checked must be an object of clause id -> reason"),
])
def test_a_bad_accepted_not_checked_is_a_usage_error(pytester: pytest.Pytester, accepted: object,
                                                     message: str) -> None:
    """An accepted_not_checked naming an unknown clause, or without a reason, stops the run naming the baseline."""
    (pytester.path / "base.json").write_text(json.dumps({"accepted_not_checked": accepted, "destinations": {}}))
    result = pytester.runpytest_subprocess("--destination=reference:registration", "-p", "no:cacheprovider",
                                           "--conformance-baseline=base.json", "--conformance-strict")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-baseline=base.json:" in result.stderr.str() and message in result.stderr.str()
