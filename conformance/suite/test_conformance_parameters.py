"""Clauses parameters.*: the parameter spec a destination declares."""

import re
from collections.abc import Mapping

import pytest

from conformance.execute.subject import Subject
from harness import Parameter

NAME = re.compile(r"^[a-zA-Z0-9.]+$")


def _shape_problems(params: object) -> list[str]:
    if not isinstance(params, Mapping):
        return [f"parameters() returned {type(params).__name__}, not a mapping"]
    problems = []
    for name, param in params.items():
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(f"parameter name {name!r} does not match ^[a-zA-Z0-9.]+$")
        if not isinstance(param, Parameter):
            kind = type(param).__name__
            article = "an" if kind[:1].lower() in "aeiou" else "a"
            problems.append(f"parameter {name!r} is {article} {kind}, not harness.Parameter")
        elif not param.description.strip():
            problems.append(f"parameter {name!r} has an empty description")
    return problems


@pytest.mark.clause("parameters.shape")
def test_parameters_shape_in_every_state(subject: Subject) -> None:
    """parameters.shape: valid names and descriptions, the same mapping in new, configured, open, torn down."""
    with subject.session() as s:
        answered_by = s.adapter_answers().get("parameters")
        if answered_by:
            subject.inapplicable(f"parameters() is answered by the adapter, not the destination: {answered_by}")
            return
        first = s.ok("parameters")
        problems = _shape_problems(first)
        if problems:
            s.fail("; ".join(problems))
        s.saw("read when new")
        seen = {}
        if s.configure().ok:
            seen["configured"] = s.ok("parameters")
            if s.attempt("open").ok:
                seen["open"] = s.ok("parameters")
        s.attempt("teardown")
        seen["torn down"] = s.ok("parameters")
        for state, value in seen.items():
            if value != first:
                s.fail(f"parameters() in state {state!r} differs from parameters() when new")
            s.saw(f"read when {state}")


@pytest.mark.clause("parameters.defaults-valid")
def test_defaults_satisfy_their_validations(subject: Subject) -> None:
    """parameters.defaults-valid: each default passes its own parameter's type and validations, and configure
    accepts it given explicitly."""
    with subject.session() as s:
        params = s.ok("parameters")
        bad = [f"{name}: default {p.default!r}: {'; '.join(p.problems(p.default))}"
               for name, p in dict(params).items()
               if isinstance(p, Parameter) and p.default is not None and p.problems(p.default)]
        if bad:
            s.fail("defaults break their own validations: " + " | ".join(bad))
        s.saw("parameters listed")
        defaults = {name: p.default for name, p in sorted(dict(params).items())
                    if isinstance(p, Parameter) and p.default}
    # Conduit's UI and config files write defaults out: each, given explicitly, must configure as when left out
    # (judged only where the registered config itself configures: a config it refuses is configure.valid's).
    if defaults:
        with subject.session() as s:
            if not s.configure().ok:
                pytest.skip("not checked: the registered config does not configure (configure.valid reports that), "
                            "so no default given explicitly can be judged")
    for name, default in defaults.items():
        with subject.session() as s:
            outcome = s.configure({**s.config, name: default}, shown=f"{{**driver.config, {name!r}: {default!r}}}")
            if not outcome.ok:
                s.fail(f"configure() refused {name}={default!r}, the parameter's own default, given explicitly: "
                       f"{type(outcome.error).__name__}: {outcome.error}")
    subject.saw("every default accepted given explicitly")
