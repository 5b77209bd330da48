"""Clauses configure.*: accepting the registered config and rejecting bad ones without side effects."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import ConfigError, Parameter
from conformance.profiles import suite_settings
from conformance.session import Outcome, Session, Subject, tree_snapshot
from conformance.strategies import breaking_values


def _expect_config_error(s: Session, outcome: Outcome, why: str) -> None:
    """Fails unless the configure outcome is a ConfigError."""
    if not isinstance(outcome.error, ConfigError):
        got = "succeeded" if outcome.ok else f"raised {type(outcome.error).__name__}, not ConfigError"
        s.fail(f"{why}, but configure() {got}")


def _parameters(s: Session) -> dict[str, Parameter]:
    params = s.ok("parameters")
    return {k: v for k, v in dict(params).items() if isinstance(v, Parameter)}


@pytest.mark.clause("configure.valid")
def test_registered_config_is_accepted(subject: Subject) -> None:
    """configure.valid: the registered config configures without error."""
    with subject.session() as s:
        outcome = s.configure()
        if not outcome.ok:
            s.fail(f"configure() with the registered config raised {type(outcome.error).__name__}: {outcome.error}")


@pytest.mark.clause("configure.required")
def test_missing_required_parameter_is_named(subject: Subject) -> None:
    """configure.required: dropping each required parameter raises ConfigError naming it."""
    with subject.session() as probe:
        required = [n for n, p in _parameters(probe).items() if p.required and n in probe.config]
    for name in required:
        with subject.session() as s:
            config = {k: v for k, v in s.config.items() if k != name}
            outcome = s.configure(config, shown=f"{{k: v for k, v in driver.config.items() if k != {name!r}}}")
            _expect_config_error(s, outcome, f"required parameter {name!r} is missing")
            if name not in str(outcome.error):
                s.fail(f"the ConfigError for missing {name!r} does not name it: {outcome.error}")


@pytest.mark.clause("configure.invalid-values")
@suite_settings()
@given(data=st.data())
def test_value_breaking_a_validation_is_rejected(subject: Subject, data: st.DataObject) -> None:
    """configure.invalid-values: a value breaking a parameter's type or validation raises ConfigError."""
    with subject.session() as s:
        breakable = {n: b for n, p in sorted(_parameters(s).items()) if (b := breaking_values(p)) is not None}
        if not breakable:
            return
        name = data.draw(st.sampled_from(sorted(breakable)), label="parameter")
        value = data.draw(breakable[name], label="breaking value")
        config = {**s.config, name: value}
        outcome = s.configure(config, shown=f"{{**driver.config, {name!r}: {value!r}}}")
        _expect_config_error(s, outcome, f"{name}={value!r} breaks the parameter's declared type or validations")


@pytest.mark.clause("configure.unknown-key")
@suite_settings()
@given(data=st.data())
def test_unknown_key_is_named(subject: Subject, data: st.DataObject) -> None:
    """configure.unknown-key: a key that is not a parameter raises ConfigError naming it."""
    with subject.session() as s:
        known = set(_parameters(s))
        key = data.draw(st.from_regex(r"[a-z][a-zA-Z0-9.]{0,15}", fullmatch=True).filter(lambda k: k not in known),
                        label="unknown key")
        outcome = s.configure({**s.config, key: "1"}, shown=f"{{**driver.config, {key!r}: '1'}}")
        _expect_config_error(s, outcome, f"{key!r} is not a parameter")
        if key not in str(outcome.error):
            s.fail(f"the ConfigError does not name the unknown key {key!r}: {outcome.error}")


@pytest.mark.clause("configure.no-side-effects")
def test_configure_touches_nothing(subject: Subject) -> None:
    """configure.no-side-effects: nothing in the temp tree or read-back changes, no directory appears."""
    with subject.session() as s:
        before_tree = tree_snapshot(s.tmp)
        before = s.read_back() if subject.registration.read_back else None
        s.configure()
        if tree_snapshot(s.tmp) != before_tree:
            s.fail("configure() created, changed or removed files: the temp tree differs "
                   f"({sorted(set(tree_snapshot(s.tmp)) ^ set(before_tree))[:5]})")
        if before is not None and s.read_back() != before:
            s.fail("configure() changed what read-back shows")
