"""What lifecycle.* charges to itself and what to another clause: a second teardown's error is teardown.idempotent's
only (CONTRACT.md: a second teardown is that clause's), so a destination that keeps the call order but fails a
second teardown passes both lifecycle clauses."""

from __future__ import annotations

import pytest

from tests.support import summary

__all__: list[str] = []

# The reference destination (its call order guarded), but a second teardown() raises (as file v0.10.1's does).
SECOND_TEARDOWN_FAILS = '''
from harness import Registration, destination_with_middleware, default_destination_middleware, directory_reader
from reference import FileDestination

class SecondTeardownFails:
    def __init__(self, inner):
        self.inner = inner
        self.teardowns = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def teardown(self):
        self.teardowns += 1
        result = self.inner.teardown()
        if self.teardowns > 1:
            raise RuntimeError("already torn down")
        return result

registration = Registration(
    factory=lambda: SecondTeardownFails(destination_with_middleware(FileDestination(),
                                                                    *default_destination_middleware())),
    config={"directory": "{tmp}/out"}, read_back=directory_reader("directory"), directory_param="directory",
)
'''


def test_a_second_teardowns_error_is_charged_to_teardown_idempotent_only(pytester: pytest.Pytester) -> None:
    """teardown.idempotent fails; lifecycle.out-of-order and lifecycle.valid-orders, whose walks make a second
    teardown too, pass."""
    pytester.makepyfile(second=SECOND_TEARDOWN_FAILS)
    result = pytester.runpytest_subprocess("--destination=second:registration", "--hypothesis-profile=conformance-ci",
                                           "-p", "no:cacheprovider", "-k",
                                           "out_of_order or valid_orders or forbidden or second_teardown",
                                           timeout=600)
    out = result.stdout.str()
    rows = summary(out, "second:registration")
    assert rows["teardown.idempotent"] == "FAILED", out[-4000:]
    assert rows["lifecycle.out-of-order"] == "passed", out[-4000:]
    assert rows["lifecycle.valid-orders"] == "passed", out[-4000:]
