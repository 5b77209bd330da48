"""What lifecycle.* charges to itself and what to another clause: a second teardown's error is teardown.idempotent's
only (CONTRACT.md: a second teardown is that clause's), so a destination that keeps the call order but fails a
second teardown passes both lifecycle clauses."""

from __future__ import annotations

import pytest

from tests.support import summary

__all__: list[str] = []

# The reference destination (its call order guarded), but a second teardown() raises (as file v0.10.1's does).
SECOND_TEARDOWN_FAILS = "tests.zoo.scenarios:second_teardown_fails"


@pytest.mark.usefixtures("zoo_importable")
def test_a_second_teardowns_error_is_charged_to_teardown_idempotent_only(pytester: pytest.Pytester) -> None:
    """teardown.idempotent fails; lifecycle.out-of-order and lifecycle.valid-orders, whose walks make a second
    teardown too, pass."""
    result = pytester.runpytest_subprocess(f"--destination={SECOND_TEARDOWN_FAILS}",
                                           "--hypothesis-profile=conformance-ci", "-p", "no:cacheprovider", "-k",
                                           "out_of_order or valid_orders or forbidden or second_teardown",
                                           timeout=600)
    out = result.stdout.str()
    rows = summary(out, SECOND_TEARDOWN_FAILS)
    assert rows["teardown.idempotent"] == "FAILED", out[-4000:]
    assert rows["lifecycle.out-of-order"] == "passed", out[-4000:]
    assert rows["lifecycle.valid-orders"] == "passed", out[-4000:]
