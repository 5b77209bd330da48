"""A destination that hangs: the hang is a finding, shrunk within a bounded number of calls that hit the limit.

Nothing here asserts on elapsed time (tests/benchmarks/bench_hang.py measures that); the runs use the derandomized
conformance-ci profile, so no verdict depends on a seed.
"""

import json
import re
from pathlib import Path

import pytest

from conformance.plugin.profiles import MAX_HANGS
from tests.support import summary

__all__: list[str] = []

# write() never returns for a batch of 3 records or more; smaller batches are written as the reference writes them.
HANGS_ON_THREE = "tests.zoo.broken:hangs_on_big_batch"

CI = "--hypothesis-profile=conformance-ci"


def hanging_writes(section: str) -> list[int]:
    """Record counts of the writes that did not return, in a failure's minimal example."""
    calls = section.split("Calls (the minimal example hypothesis found):", 1)[1].split("Replay it:", 1)[0]
    return [body.count("Record(") for body in re.findall(r"driver\.write\(\[\n(.*?)\]\)  # did not return", calls,
                                                          re.S)]


def failure_sections(out: str) -> dict[str, str]:
    """The failure text of each failed test, by test name."""
    parts = re.split(r"\n_{3,} (test_\w+)\[[^\]]*\] _{3,}\n", out)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.usefixtures("zoo_importable")
def test_a_hang_is_shrunk_to_three_records_within_a_bounded_number_of_hanging_calls(pytester: pytest.Pytester) -> None:
    """call.timeout: a write that hangs on batches of 3 or more fails write.round-trip and call.timeout, with a
    minimal example whose hanging write holds exactly 3 records; the first hang costs the per-call limit, later
    writes (in this check and the next) the shortened limit of a method that has hung, and shrinking stops after
    MAX_HANGS more calls hit it."""
    result = pytester.runpytest_subprocess(f"--destination={HANGS_ON_THREE}", CI, "-p", "no:cacheprovider",
                                           "--conformance-timeout=2", "--conformance-report=report.json",
                                           "-k", "batches_read_back or write_leaves_records_unchanged", timeout=300)
    out = result.stdout.str()
    assert result.ret == 1, out[-3000:]
    rows = summary(out, HANGS_ON_THREE)
    assert rows["call.timeout"] == "FAILED"
    assert rows["write.round-trip"] == "FAILED" and rows["write.no-mutation"] == "FAILED"

    sections = failure_sections(out)
    first, second = sections["test_batches_read_back_as_the_model"], sections["test_write_leaves_records_unchanged"]
    assert hanging_writes(first) == [3]
    assert min(hanging_writes(second)) >= 3
    # The first hang of the run costs the per-call limit; once the destination has hung, calls get a short one.
    assert "the limit once a call of the method has hung" in first + second
    assert "write() did not return within 2s" not in second

    report = json.loads(Path(pytester.path, "report.json").read_text())
    clauses = report["destinations"][HANGS_ON_THREE]["clauses"]
    for clause in ("write.round-trip", "write.no-mutation"):
        hit = clauses[clause]["coverage"]["calls that hit the limit"]
        assert 1 <= hit <= 1 + MAX_HANGS, (clause, hit)


def test_a_destination_that_never_hangs_keeps_the_full_limit(pytester: pytest.Pytester) -> None:
    """Without a hang, no limit is shortened and nothing is counted as hitting it."""
    result = pytester.runpytest_subprocess("--destination=reference:registration", CI, "-p", "no:cacheprovider",
                                           "--conformance-report=report.json", "-k", "batches_read_back")
    result.assert_outcomes(passed=1)
    report = json.loads(Path(pytester.path, "report.json").read_text())
    coverage = report["destinations"]["reference:registration"]["clauses"]["write.round-trip"]["coverage"]
    assert "calls that hit the limit" not in coverage


# teardown() never returns once configured: the teardown the session makes at an example's end hangs.
TEARDOWN_HANGS = "tests.zoo.scenarios:teardown_hangs"


@pytest.mark.usefixtures("zoo_importable")
def test_a_teardown_that_hangs_at_an_examples_end_is_never_swallowed(pytester: pytest.Pytester) -> None:
    """call.timeout: the teardown the session makes when an example did not tear down hits the limit; that fails
    call.timeout with the call named, instead of passing silently."""
    result = pytester.runpytest_subprocess(f"--destination={TEARDOWN_HANGS}", CI, "-p", "no:cacheprovider",
                                           "--conformance-timeout=1", "-k", "registered_config_is_accepted",
                                           timeout=300)
    out = result.stdout.str()
    assert result.ret == 1, out[-3000:]
    assert summary(out, TEARDOWN_HANGS)["call.timeout"] == "FAILED"
    assert "teardown() did not return within 1s (the teardown that ends the example)" in out
