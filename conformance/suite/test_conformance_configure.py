"""Clauses configure.*: accepting the registered config and rejecting bad ones without side effects."""

import os
from collections.abc import Callable

import pytest
from hypothesis import given, strategies as st

from conformance.contract.checks import NOT_CHECKED_PREFIX, SetupCause
from conformance.execute.outcomes import Outcome
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.config_values import breaking_values, lookalike_spellings, valid_spellings
from conformance.plugin.profiles import suite_settings
from conformance.probes.audit import changes, recording
from conformance.probes.faults import fake_filesystem
from conformance.probes.snapshots import Snapshot, changed_paths, tree_snapshot
from harness import ConfigError, Parameter


def _expect_config_error(s: Session, outcome: Outcome, why: str) -> None:
    """Fails unless the configure outcome is a ConfigError."""
    if not isinstance(outcome.error, ConfigError):
        got = "succeeded" if outcome.ok else f"raised {type(outcome.error).__name__}, not ConfigError"
        s.fail(f"{why}, but configure() {got}")


def _describe(err: BaseException | None) -> str:
    return f"{type(err).__name__}: {err}"


def _parameters(s: Session) -> dict[str, Parameter]:
    params = s.ok("parameters")
    return {k: v for k, v in dict(params).items() if isinstance(v, Parameter)}


def _type_of(parameter: Parameter) -> str:
    return str(getattr(parameter.type, "value", parameter.type))


def _own_typed(subject: Subject, s: Session, spellings: Callable[[Parameter], list[str]]
               ) -> dict[str, tuple[str, list[str]]]:
    """Each typed parameter the destination parses itself -> (its type, `spellings` of it). A connector reached
    through an SDK (in-process or standalone) gets its sdk.* parameters from the SDK, which parses them: not the
    destination's answer, so they are left out, saying so."""
    params = sorted(_parameters(s).items())
    sdk = subject.registration.transport != "native"
    skipped = [n for n, p in params if sdk and n.startswith("sdk.") and spellings(p)]
    if skipped:
        subject.inapplicable(f"{', '.join(skipped)}: the connector SDK's own parameters, parsed by the SDK, not by "
                             "the destination")
    return {n: (_type_of(p), values) for n, p in params if n not in skipped and (values := spellings(p))}


@pytest.mark.clause("configure.valid")
def test_registered_config_is_accepted(subject: Subject) -> None:
    """configure.valid: the registered config configures without error, also with each typed parameter in every
    spelling its declared type allows (as Go parses it) that passes its validations."""
    with subject.session() as s:
        outcome = s.configure()
        if not outcome.ok:
            s.fail(f"configure() with the registered config raised {type(outcome.error).__name__}: {outcome.error}",
                   cause=SetupCause.of("configure", outcome.error))
        s.saw("registered config accepted")
        spellings = _own_typed(subject, s, valid_spellings)
    # Every spelling in every run: a parser stricter than Go's (no sign, no leading zero, no "T") is not left to chance.
    for name, (kind, values) in spellings.items():
        for value in values:
            with subject.session() as s:
                outcome = s.configure({**s.config, name: value}, shown=f"{{**driver.config, {name!r}: {value!r}}}")
                if not outcome.ok:
                    s.fail(f"{name}={value!r} is a valid {kind} (Go's parser accepts it, as Conduit does) and passes "
                           f"the parameter's validations, but configure() raised {_describe(outcome.error)}")
    subject.saw("typed parameters accepted in every valid spelling")


def _names_key(error: BaseException | None, key: str) -> bool:
    """Whether a ConfigError's message names `key` (configure.required and configure.unknown-key ask it)."""
    return key in str(error)


@pytest.mark.clause("configure.required")
def test_missing_required_parameter_is_named(subject: Subject) -> None:
    """configure.required: leaving out, in turn, each parameter the registered config sets raises a ConfigError
    naming it, or (never for a declared-required one) is accepted with nothing created and teardown returning."""
    with subject.session() as probe:
        declared = _parameters(probe)
        left_out = sorted(probe.config)
    if not left_out:
        subject.inapplicable("the registered config sets no parameter")
    # A parameter the registered config sets but does not declare required may still be needed (a default of "" that
    # the destination refuses): then its ConfigError must name it all the same.
    for name in left_out:
        required = name in declared and declared[name].required
        with subject.session() as s:
            config = {k: v for k, v in s.config.items() if k != name}
            before = tree_snapshot(s.tmp)
            with recording() as events:
                outcome = s.configure(config, shown=f"{{k: v for k, v in driver.config.items() if k != {name!r}}}")
            if required or not outcome.ok:
                _expect_config_error(s, outcome, f"required parameter {name!r} is missing" if required else
                                     f"configure() refused the registered config without {name!r}")
                if not _names_key(outcome.error, name):
                    s.fail(f"the ConfigError for the left-out {name!r} does not name it: {outcome.error}")
            else:  # accepted: its default applies, and configure.no-side-effects' and teardown.any-state's rules hold
                after = tree_snapshot(s.tmp)
                if after != before:
                    s.fail(f"configure() without {name!r} (accepted: its default applies) created, changed or "
                           f"removed files: {changed_paths(before, after, s.tmp)[:5]}")
                touched = changes(events)
                if touched and subject.registration.transport != "standalone":
                    s.fail(f"configure() without {name!r} (accepted: its default applies) wrote to the "
                           f"filesystem: {touched[:5]}")
                torn = s.attempt("teardown")
                if not torn.ok:
                    s.fail(f"configure() without {name!r} was accepted, but teardown() then raised "
                           f"{_describe(torn.error)}")
            if required:
                s.saw("declared-required parameter removed")
            s.saw("set parameter removed")


@pytest.mark.clause("configure.invalid-values")
@suite_settings()
@given(data=st.data())
def test_value_breaking_a_validation_is_rejected(subject: Subject, data: st.DataObject) -> None:
    """configure.invalid-values: a value breaking a parameter's type or validation raises ConfigError."""
    with subject.session() as s:
        breakable = {n: b for n, p in sorted(_parameters(s).items()) if (b := breaking_values(p)) is not None}
        if not breakable:
            subject.inapplicable("no parameter declares a type or validation that a value can break")
            return
    # Every breakable parameter in every example: which one a destination mishandles is not left to chance.
    for name in sorted(breakable):
        with subject.session() as s:
            value = data.draw(breakable[name], label=f"breaking value for {name}")
            config = {**s.config, name: value}
            outcome = s.configure(config, shown=f"{{**driver.config, {name!r}: {value!r}}}")
            _expect_config_error(s, outcome, f"{name}={value!r} breaks the parameter's declared type or validations")
            s.saw("breaking value rejected")


@pytest.mark.clause("configure.invalid-values")
def test_lookalike_of_a_declared_type_is_rejected(subject: Subject) -> None:
    """configure.invalid-values: every value that other parsers take for a parameter's declared type but Go's
    refuses (1_0, a non-ASCII digit, yes, TrUe, a duration without a unit) raises ConfigError, in every run."""
    with subject.session() as s:
        lookalikes = _own_typed(subject, s, lookalike_spellings)
    for name, (kind, values) in lookalikes.items():
        for value in values:
            with subject.session() as s:
                outcome = s.configure({**s.config, name: value}, shown=f"{{**driver.config, {name!r}: {value!r}}}")
                _expect_config_error(s, outcome, f"{name}={value!r} is not a {kind} as Go parses it (Conduit "
                                                 "refuses it)")
                s.saw("breaking value rejected")
    subject.saw("lookalikes of every declared type rejected")


UNKNOWN_KEYS = {
    "plain": st.from_regex(r"[a-z][a-zA-Z0-9]{0,15}", fullmatch=True),
    "dotted": st.from_regex(r"[a-z][a-z0-9]{0,6}(\.[a-zA-Z0-9]{1,6}){1,3}", fullmatch=True),
    "sdk.-prefixed": st.from_regex(r"sdk\.[a-z]{1,6}(\.[a-zA-Z0-9]{1,6}){0,2}", fullmatch=True),
    "outside the name alphabet": st.from_regex(r"[a-z]{1,6}[-_:/@üé][a-zA-Z0-9]{0,6}", fullmatch=True),
}


@pytest.mark.clause("configure.unknown-key")
@suite_settings()
@given(data=st.data())
def test_unknown_key_is_named(subject: Subject, data: st.DataObject) -> None:
    """configure.unknown-key: a key that is not a parameter, of every kind, raises ConfigError naming it."""
    for kind, keys in UNKNOWN_KEYS.items():
        with subject.session() as s:
            known = set(_parameters(s))
            key = data.draw(keys.filter(lambda k: k not in known), label=f"{kind} unknown key")  # noqa: B023  drawn at once
            outcome = s.configure({**s.config, key: "1"}, shown=f"{{**driver.config, {key!r}: '1'}}")
            _expect_config_error(s, outcome, f"{key!r} is not a parameter")
            if not _names_key(outcome.error, key):
                s.fail(f"the ConfigError does not name the unknown key {key!r}: {outcome.error}")
            s.saw(f"{kind} unknown key")


def _everything_outside_proc() -> Snapshot:
    return {p: v for p, v in tree_snapshot("/").items() if not p.startswith("/proc")}


# What a destination might take for its own leftovers (common temporary-file spellings) must survive configure too.
EXISTING = {"existing": b"kept", ".hidden": b"kept", "stale.tmp": b"kept", ".tmp-1": b"kept", ".~stale-1": b"kept",
            "backup~": b"kept", "#autosave#": b"kept", "empty": b""}


@pytest.mark.clause("configure.no-side-effects")
@pytest.mark.parametrize("directory", ["missing", "existing with files"])
def test_configure_touches_nothing(subject: Subject, directory: str) -> None:
    """configure.no-side-effects: nothing in the temp tree or read-back changes, no directory appears, and no
    file is opened for writing, created, renamed or removed (a probe that cleans up after itself included)."""
    with subject.session() as s:
        if directory != "missing":
            if s.directory is None:
                pytest.skip(NOT_CHECKED_PREFIX + "needs directory_param to put files where the destination writes")
            os.makedirs(s.directory, exist_ok=True)  # with path_param, the file's parent may be {tmp} itself
            s.setup(f"os.makedirs({s.directory!r}, exist_ok=True)")
            for name, content in EXISTING.items():
                with open(os.path.join(s.directory, name), "wb") as f:
                    f.write(content)
                s.setup(f"open({os.path.join(s.directory, name)!r}, 'wb').write({content!r})")
        before_tree = tree_snapshot(s.tmp)
        before = s.read_back() if subject.registration.read_back else None
        with recording() as events:
            s.configure()
        after_tree = tree_snapshot(s.tmp)
        if after_tree != before_tree:
            s.fail("configure() created, changed or removed files: "
                   f"{changed_paths(before_tree, after_tree, s.tmp)[:5]}")
        if before is not None and s.read_back() != before:
            s.fail("configure() changed what read-back shows")
        touched = changes(events)
        if touched and subject.registration.transport != "standalone":
            s.fail(f"configure() wrote to the filesystem, even if it undid it: {touched[:5]}")
        s.saw("configure watched")


@pytest.mark.clause("configure.no-side-effects")
def test_configure_touches_nothing_anywhere(subject: Subject) -> None:
    """configure.no-side-effects: in a fake filesystem, nothing anywhere ($TMPDIR, $HOME, cwd) changes."""
    if subject.registration.transport == "standalone":
        pytest.skip(NOT_CHECKED_PREFIX + "the connector runs in its own process, which the fake filesystem of "
                    "this one cannot watch (the temp tree check still runs)")
    with fake_filesystem(), subject.session() as s:
        s.setup("# run inside: with conformance.probes.faults.fake_filesystem() as faults:")
        before = _everything_outside_proc()
        outcome = s.configure()
        after = _everything_outside_proc()
        if after != before:
            s.fail("configure() created, changed or removed files outside its directory: "
                   f"{changed_paths(before, after, s.tmp)[:5]}")
        if outcome.ok:
            s.saw("configure watched")
