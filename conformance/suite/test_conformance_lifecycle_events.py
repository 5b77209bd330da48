"""Clause lifecycle.events: the events Conduit sends around a connector's runs (LifecycleOnCreated, OnUpdated,
OnDeleted), made as Conduit v0.13.3 makes them (pkg/connector/destination.go): each run is a fresh destination on
the same store; OnCreated and OnUpdated come after configure and before open, OnDeleted alone before teardown."""

import os
import shutil
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from hypothesis import given, strategies as st

from conformance.execute.outcomes import Code
from conformance.execute.replay import render_records
from conformance.execute.scratch import scratch_dir
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import differences, key_bytes
from conformance.generate.strategies import numbered
from conformance.generate.witnesses import witness_records
from conformance.plugin.profiles import fraction_of_examples, suite_settings
from conformance.probes.snapshots import changed_paths, tree_snapshot
from harness import Change, Parameter, RawData, Record

__all__ = ["changed_config", "test_lifecycle_events_change_no_data"]

BATCH = 4  # records over both runs that write


def changed_config(parameters: Mapping[str, Parameter], config: Mapping[str, str]) -> dict[str, str] | None:
    """A config that differs from `config` but means the same to the destination (so the same store is written):
    a parameter's default written out, or else one given at its default left out; None when there is neither."""
    # The destination's own parameters first: the SDK's sdk.* ones change batching, which is the SDK's business.
    names = sorted(parameters, key=lambda name: (name.startswith("sdk."), name))
    for name in names:
        default = parameters[name].default
        if default not in (None, "") and name not in config:
            return {**config, name: str(default)}
    for name in names:
        if name in config and config[name] == parameters[name].default:
            return {k: v for k, v in config.items() if k != name}
    return None


def _records(subject: Subject, data: st.DataObject) -> tuple[list[Record], list[Record]]:
    """Records of distinct keys, none a delete, with plain ASCII payloads (or the registration's own): what the
    events must keep, not a test of writing, so that no write.* bug stops this check. Split in the two runs'
    batches; with the contract's keys the first also holds the witness records (dot-leading keys such as .env, keys
    equal under a folding), which every event after it must keep."""
    keys = data.draw(st.lists(subject.valid_keys(), min_size=2, max_size=BATCH, unique_by=key_bytes), label="keys")
    payloads = (subject.payloads() if subject.registration.payloads is not None
                else st.text(string.ascii_letters + string.digits, max_size=64).map(lambda t: RawData(t.encode())))
    stream = [Record(key=key, payload=Change(after=data.draw(payloads, label="payload"))) for key in keys]
    first, second = stream[:len(stream) // 2], stream[len(stream) // 2:]
    if subject.registration.valid_keys is None:
        afters = (data.draw(st.lists(payloads, min_size=1, max_size=3), label="witness payloads")
                  if subject.registration.payloads is not None else ())
        first = witness_records(afters=afters) + first
    return numbered(first, 0), numbered(second, len(first))


def _shown(config: Mapping[str, str], shared: str) -> Code:
    """A config as replay source: its paths in the replay's own temporary directory."""
    spelled = {k: v.replace(shared, "{tmp}") for k, v in config.items()}
    return Code(f"{{k: v.replace('{{tmp}}', tmp) for k, v in {spelled!r}.items()}}")


@contextmanager
def _run(subject: Subject, config: Mapping[str, str], shared: str, earlier: list[str]) -> Iterator[Session]:
    """One run: a fresh destination on `config`, whose replay names the shared store {tmp} and replays the runs
    before it (each a destination of its own) as set-up."""
    with subject.session(overlay=config) as s:
        s.tmp = shared  # the store outlives this session's own directory: the replay and messages name it {tmp}
        for source in earlier:
            s.setup(source)
        yield s


def _event(s: Session, method: str, *configs: Mapping[str, str], shared: str) -> dict[bytes, bytes] | None:
    """Sends one event: it must return, leave read-back as it was just before, and change nothing beside the area.
    (Whether writes read back as the model is write.*'s to judge: the events are judged against read-back.)"""
    area = s.directory
    beside = _beside(shared, area)
    held = s.read_back() if s.subject.registration.read_back is not None else None
    outcome = s.attempt(method, *(dict(c) for c in configs), shown=tuple(_shown(c, shared) for c in configs))
    if not outcome.ok:
        s.fail(f"{method}() raised {type(outcome.error).__name__}: {outcome.error}")
    moved = changed_paths(beside, _beside(shared, area), shared)
    if moved:
        s.fail(f"{method}() changed {moved[:5]}, outside the destination's area")
    if held is not None:
        lines = differences(held, s.read_back())
        if lines:
            s.fail(f"read-back after {method}() differs from read-back just before it:\n      "
                   + "\n      ".join(lines))
    return held


def _beside(shared: str, area: str | None) -> dict[str, object]:
    """Everything in the shared store outside the destination's area (empty when no area is known)."""
    if area is None:
        return {}
    inside = os.path.normpath(area)
    return {p: v for p, v in tree_snapshot(shared).items()
            if p != shared and not (p == inside or p.startswith(inside + os.sep)) and not inside.startswith(p + os.sep)}


def _replayed(name: str, config: Mapping[str, str], shared: str, calls: list[str]) -> str:
    """A run of the replay's set-up, as one line: a destination of its own, the calls made on it."""
    shown = repr({k: v.replace(shared, "{tmp}") for k, v in config.items()})
    return f"with Driver(registration, config={shown}) as {name}: " + "; ".join(f"{name}.{c}" for c in calls)


@pytest.mark.clause("lifecycle.events")
@suite_settings(max_examples=fraction_of_examples(0.2))
@given(data=st.data())
def test_lifecycle_events_change_no_data(subject: Subject, data: st.DataObject) -> None:
    """lifecycle.events: a first start with OnCreated, a run with OnUpdated after a config change, then OnDeleted;
    every event returns and read-back stays the model's."""
    first, second = _records(subject, data)
    shared = scratch_dir("conformance-events-")
    try:
        config = {k: v.replace("{tmp}", shared) for k, v in subject.registration.config.items()}
        earlier: list[str] = []
        with _run(subject, config, shared, earlier) as s:
            s.configure_ok()
            parameters = s.ok("parameters")
            s.calls[-1].outcome = "returned the parameters"  # in full they would bury the replay
            fresh = s.directory is not None and not os.path.exists(s.directory)
            _event(s, "lifecycle_on_created", config, shared=shared)
            s.saw("OnCreated answered on a first start")
            if fresh:
                subject.coverage["OnCreated before its directory existed"] += 1
            s.ok("open")
            s.write_all(first)
            s.ok("teardown")
        earlier.append(_replayed("first", config, shared, ["configure()", "lifecycle_on_created()", "open()",
                                                           f"write({render_records(first, '        ')})",
                                                           "teardown()"]))
        after = changed_config(parameters, config)
        if after is None:
            subject.shortfalls.add("OnUpdated not sent: no parameter has a default to write out or leave out, so "
                                   "no changed config writes the same store")
            last = config
        else:
            last = after
            with _run(subject, after, shared, earlier) as s:
                outcome = s.configure(after, shown=_shown(after, shared).source)
                if not outcome.ok:
                    s.fail(f"configure() with the changed config {_shown(after, shared).source} raised "
                           f"{type(outcome.error).__name__}: {outcome.error} (configure.valid judges the config "
                           f"itself; here it stops the run that OnUpdated belongs to)")
                _event(s, "lifecycle_on_updated", config, after, shared=shared)
                s.saw("OnUpdated answered with a changed config")
                s.ok("open")
                s.write_all(second)
                s.ok("teardown")
            earlier.append(_replayed("second", after, shared, [
                f"configure({_shown(after, shared).source})", f"lifecycle_on_updated({_shown(config, shared).source})",
                "open()", f"write({render_records(second, '        ')})", "teardown()"]))
        with _run(subject, last, shared, earlier) as s:
            held = _event(s, "lifecycle_on_deleted", last, shared=shared)
            s.saw("OnDeleted answered with the last config")
            s.ok("teardown")
            if subject.registration.read_back is not None:
                s.saw("read-back unchanged across the events")
            if held is not None and subject.registration.valid_keys is None:
                missing = [r.key.bytes() for r in first if r.key is not None and r.key.bytes() not in held]
                if missing:  # write.round-trip's to judge; the events were not tried on them
                    subject.shortfalls.add(f"the witness keys were not all read back before the events "
                                           f"({len(missing)} missing, such as {missing[0]!r})")
                else:
                    s.saw("witness keys kept across the events")
    finally:
        shutil.rmtree(shared, ignore_errors=True)
