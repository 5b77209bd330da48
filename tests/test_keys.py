"""The key rules are written once (harness.keys); the reference destination and the suite's saved failures and
generators follow them."""

import pytest
from hypothesis import given, settings, strategies as st

from conformance.generate.strategies import unspecified_keys, valid_keys
from conformance.results.saved import spec_key_problem
from harness import RawData
from harness.keys import fits_shape, key_problem
from reference.file_destination import key_name, key_problem as reference_key_problem


@pytest.mark.parametrize(("raw", "problem"), [
    (b"", "the key is empty"), (b"k" * 256, "the key is 256 bytes long (at most 255)"),
    (b"a/b", "the key contains '/' or NUL"), (b"a\0", "the key contains '/' or NUL"), (b".", "the key is '.'"),
    (b"..", "the key is '..'"), (b"\xff", "the key is not valid UTF-8"), (b"k" * 255, None), (b"...", None),
])
def test_each_rule_says_why(raw: bytes, problem: str | None) -> None:
    """Each rule has its own reason; the reference destination gives the same one; the shape ignores UTF-8."""
    assert key_problem(raw) == problem
    assert reference_key_problem(RawData(raw)) == problem
    assert fits_shape(raw) == (problem in (None, "the key is not valid UTF-8"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.sampled_from([b".", b"..", b"/", b"\0", b"k" * 255, b"k" * 256]))
def test_the_reference_and_saved_failures_agree_with_the_rules(raw: bytes) -> None:
    """The reference's fast path, its reasons and the saved failures' check all say what harness.keys says."""
    assert (key_name(RawData(raw)) is not None) == (key_problem(raw) is None)
    assert (spec_key_problem(RawData(raw)) is None) == fits_shape(raw)


@settings(max_examples=200, deadline=None)
@given(valid=valid_keys(), unspecified=unspecified_keys())
def test_generated_keys_keep_the_rules(valid: bytes, unspecified: RawData) -> None:
    """The suite's valid keys keep every rule; its unspecified keys keep the shape and break only UTF-8."""
    assert key_problem(valid) is None
    assert key_problem(unspecified.raw) == "the key is not valid UTF-8"
