"""--conformance-budget: a ceiling on examples, batch limits kept, shrinking bounded and reported, and the seed the
report names. Nothing here asserts on elapsed time (tests/benchmarks/bench_budget.py measures that)."""

import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.internal.conjecture import engine
from hypothesis.reporting import report, with_reporter

from conformance.plugin.profiles import Pacer, paced_reports
from tests.support import summary

__all__: list[str] = []

ROUND_TRIP = ("-k", "batches_read_back or every_record_class")

# A profile of the user's own, derived from the suite's (registered in a conftest, as a user would).
DERIVED_PROFILES = """
from hypothesis import settings
settings.register_profile("my-fuzz", settings.get_profile("conformance-fuzz"), max_examples=50)
settings.register_profile("my-dev", settings.get_profile("conformance-dev"), max_examples=50)
"""


def coverage(path: Path, clause: str = "write.round-trip") -> dict[str, int]:
    """A clause's coverage counts in a JSON report."""
    report_ = json.loads(path.read_text())
    return report_["destinations"]["reference:registration"]["clauses"][clause]["coverage"]


def test_a_budget_stops_the_fuzz_profile_long_before_its_max_examples(pytester: pytest.Pytester) -> None:
    """max_examples is a ceiling: with a budget of a few seconds, conformance-fuzz's 2000 examples are not all run,
    the checks end without an error (no inconsistent-data complaint from hypothesis) and the clause passes."""
    result = pytester.runpytest_subprocess("--destination=reference:registration",
                                           "--hypothesis-profile=conformance-fuzz",
                                           "--conformance-budget=4s", "-p", "no:cacheprovider",
                                           "--conformance-report=report.json", *ROUND_TRIP)
    out = result.stdout.str()
    result.assert_outcomes(passed=2)
    assert summary(out, "reference:registration")["write.round-trip"] == "passed"
    report_ = json.loads(Path(pytester.path, "report.json").read_text())
    tests = report_["destinations"]["reference:registration"]["clauses"]["write.round-trip"]["tests"]
    main = next(t for t in tests if "batches_read_back" in t["nodeid"])
    assert 0 < main["examples"] < 2000
    assert report_["budget"] == 4
    assert re.search(r"\[\s*\d+s of 4s\] reference:registration write.round-trip: \d+ examples, passed", out)


@pytest.mark.parametrize(("profile", "big"), [("conformance-fuzz", True), ("my-fuzz", True), ("my-dev", False)])
def test_a_budget_keeps_the_profile_batch_limit(pytester: pytest.Pytester, profile: str, big: bool) -> None:
    """Under a budget, the fuzz profile and a user's profile derived from it still write batches of 9 to 64 records
    (sizes are drawn evenly up to the limit, so a few dozen batches include some); one derived from the dev profile
    keeps its limit of 8."""
    pytester.makeconftest(DERIVED_PROFILES)
    pytester.runpytest_subprocess("--destination=reference:registration", f"--hypothesis-profile={profile}",
                                  "--conformance-budget=10s", "-p", "no:cacheprovider",
                                  "--conformance-report=report.json", "-k", "batches_read_back")
    counts = coverage(Path(pytester.path, "report.json"))
    assert counts["batches"] >= 10  # a budget of 10 s makes hundreds; without a batch over 8 in 10: p < 1e-8
    assert (counts.get("batch size 9-64", 0) > 0) is big
    assert counts.get("batch size >64", 0) == 0


def test_the_report_names_the_seed_every_check_used(pytester: pytest.Pytester) -> None:
    """A given --hypothesis-seed is printed in the header and recorded in the report; without one the run says
    'seed random' (no seed is forced: hypothesis would turn its example database off); a derandomized profile
    says so instead of 'seed random'."""
    result = pytester.runpytest_subprocess("--destination=reference:registration",
                                           "--hypothesis-profile=conformance-dev",
                                           "-p", "no:cacheprovider", "--conformance-report=report.json",
                                           "-k", "empty_batch")
    assert json.loads(Path(pytester.path, "report.json").read_text())["hypothesis"]["seed"] == "random"
    assert "derandomize=False), seed random (each check draws its own" in result.stdout.str()

    given_seed = pytester.runpytest_subprocess("--destination=reference:registration", "--hypothesis-seed=4242",
                                               "--hypothesis-profile=conformance-dev", "-p", "no:cacheprovider",
                                               "--conformance-report=given.json", "-k", "empty_batch")
    assert json.loads(Path(pytester.path, "given.json").read_text())["hypothesis"]["seed"] == 4242
    assert "seed 4242;" in given_seed.stdout.str()

    ci = pytester.runpytest_subprocess("--destination=reference:registration", "--hypothesis-profile=conformance-ci",
                                       "-p", "no:cacheprovider", "--conformance-report=ci.json", "-k", "empty_batch")
    assert json.loads(Path(pytester.path, "ci.json").read_text())["hypothesis"]["seed"] == "derandomized"
    header = ci.stdout.str()
    assert "derandomize=True), derandomized" in header and "seed random" not in header


def test_a_budget_run_is_not_derandomized(pytester: pytest.Pytester) -> None:
    """Each repetition must draw new examples, so a budget loads a profile derived from the derandomized one that is
    not derandomized; its name says where it comes from."""
    result = pytester.runpytest_subprocess("--destination=reference:registration",
                                           "--hypothesis-profile=conformance-ci",
                                           "--conformance-budget=2s", "-p", "no:cacheprovider",
                                           "--conformance-report=report.json", "-k", "empty_batch")
    hypothesis_ = json.loads(Path(pytester.path, "report.json").read_text())["hypothesis"]
    assert hypothesis_["profile"] == "conformance-ci-budget" and hypothesis_["derandomize"] is False
    assert hypothesis_["seed"] == "random"
    assert "budget 2s" in result.stdout.str()


def test_a_failure_found_at_the_deadline_still_gets_a_bounded_share_of_shrinking() -> None:
    """A failure found after the check's deadline gets `min_shrink` seconds of shrinking, one found earlier the rest
    of the share (at least min_shrink); the bound is hypothesis' own, and goes back after the check."""
    default = engine.MAX_SHRINKING_SECONDS
    bounds: list[float] = []
    pacer = Pacer()
    pacer.min_shrink = 3.0
    for deadline in (time.monotonic() - 10, time.monotonic() + 1000):
        pacer.deadline = deadline
        bounds.append(_bound_after_a_failure(pacer))
    pacer.finish()
    assert bounds[0] == pytest.approx(3.0)
    assert 990 < bounds[1] <= 1000
    assert engine.MAX_SHRINKING_SECONDS == default


def test_shrinking_stopped_at_its_bound_is_reported_not_hypothesis_warning() -> None:
    """Hypothesis' 'five minutes ... please report this' warning, when the Pacer set the bound, becomes the Pacer's
    note for the summary and is not passed on; other reports are."""
    seen: list[str] = []
    pacer = Pacer()
    pacer.deadline = time.monotonic()  # under a budget
    pacer.shrink_seconds = 2.5
    with with_reporter(seen.append), paced_reports(pacer):
        report("WARNING: Hypothesis has spent more than five minutes working to shrink a failing test case ...")
        report("something else")
    assert seen == ["something else"]
    assert pacer.cut == "shrinking stopped at the end of its share (2.5s)"


@pytest.mark.parametrize(("profile", "bound"), [("conformance-dev", 30.0), ("conformance-ci", 30.0),
                                                ("conformance-quick", 30.0), ("conformance-fuzz", None)])
def test_without_a_budget_the_profile_bounds_shrinking(profile: str, bound: float | None) -> None:
    """Without a budget, a failure is shrunk within the profile's bound (hypothesis' own five minutes for the fuzz
    profile), and the note says so; the bound goes back after the check."""
    from conformance.plugin.profiles import register_profiles

    register_profiles()
    default = engine.MAX_SHRINKING_SECONDS
    pacer = Pacer()
    previous = settings.get_current_profile_name()
    settings.load_profile(profile)
    try:
        bounds = [_bound_after_a_failure(pacer)]
    finally:
        settings.load_profile(previous)
    pacer.finish()
    assert pacer.shrink_seconds == bound
    assert bounds == [bound if bound is not None else default]
    assert engine.MAX_SHRINKING_SECONDS == default
    seen: list[str] = []
    with with_reporter(seen.append), paced_reports(pacer):
        report("WARNING: Hypothesis has spent more than five minutes working to shrink a failing test case ...")
    assert (pacer.cut == "shrinking stopped at the profile's bound (30.0s)") == (bound is not None)


def _bound_after_a_failure(pacer: Pacer) -> float:
    """Hypothesis' shrinking bound as it stands once `pacer` has seen a failure inside a hypothesis test."""
    bounds: list[float] = []

    @settings(max_examples=1, database=None)
    @given(st.integers())
    def fails(value: int) -> None:
        pacer.new_run()
        pacer.failed()
        bounds.append(engine.MAX_SHRINKING_SECONDS)

    fails()
    return bounds[0]


def test_the_shares_set_aside_overruns_and_one_shrink_reserve_for_the_run() -> None:
    """Each check left is planned with the mean time checks ran past their share (the example under way at the
    deadline, set-up and teardown), and the run keeps one reserve for shrinking (5 % of the budget): a failure's
    time past its share comes out of it, so failures in many checks do not each add theirs past the budget."""
    from conformance.plugin.budget import SHRINK_RESERVE, Budget

    budget = Budget(seconds=100.0, end=time.monotonic() + 100.0)
    budget.generated = {"a", "b", "c", "d"}
    budget.shrink_left = SHRINK_RESERVE * budget.seconds
    assert budget.shrink_left == pytest.approx(5.0)
    first = budget.share()
    assert first == pytest.approx((100.0 - 5.0 - 4 * 0.05) / 4, abs=0.5)
    budget.finished.add("a")
    budget.generated_took(first + 2.0, first)  # ran 2 s past its share
    assert budget.share() == pytest.approx((100.0 - 5.0 - 3 * 2.0) / 3, abs=0.5)
    budget.finished.add("b")
    budget.generated_took(first + 4.0, first, failed=True)  # shrinking a failure: out of the reserve
    assert budget.shrink_left == pytest.approx(1.0)
    assert budget.overrun_seconds == pytest.approx(2.0) and budget.generated_ran == 1
    budget.generated_took(first + 9.0, first, failed=True)
    assert budget.shrink_left == 0.0
