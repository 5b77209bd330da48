"""Engine faults told from connector faults, for the pipeline.* clauses.

When a pipeline example shows an anomaly (a record lost, a value no record gave, a duplicate no redelivery explains,
read-back off the model, less held at a kill than was acknowledged, a pipeline that stops), the same example runs
again in the same engine and conditions (the same Conduit binary, store, records and kill plan) into a control
destination known to be correct: the reference, served as a connector (conformance.engine.serve_destination). An anomaly
the control shows too is the engine's, and the check reports it as such ("engine: Conduit v0.13.3 ..."), not as the
connector's failure; one the control does not show stays the connector's. The control runs only for an example that
fails, once (its outcome is kept for the same example's replay), so a passing connector costs no extra pipeline.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from conformance.engine.accounting import Accounting, account, held_since
from conformance.engine.pipeline import Pipeline, PipelineFailed, serve_command
from conformance.generate.model import Model, differences
from harness import Record, load_registration
from harness.records import dump_records

__all__ = ["CONTROL_SPEC", "AT_KILL", "STOPPED", "DIFFERS", "LOST", "UNEXPECTED", "UNEXPLAINED", "ControlOutcome",
           "ledger_kinds", "run_control", "engine_version", "engine_verdict", "control_note"]

CONTROL_SPEC = "reference:registration"  # the control destination: the reference, which meets the whole contract
# The anomalies, as a verdict names what the engine did.
AT_KILL = "held less at the kill than it had acknowledged"
STOPPED = "stopped before every record was acknowledged"
DIFFERS = "left read-back off the model"
LOST = "lost acknowledged records"
UNEXPECTED = "delivered values no record gave"
UNEXPLAINED = "duplicated records without a redelivery"


@dataclass(frozen=True)
class ControlOutcome:
    """What the control destination's run of an example showed: its anomalies, and in words what happened."""

    kinds: frozenset[str]
    summary: str


def ledger_kinds(records: Sequence[Record], held: Mapping[bytes, bytes], ledger: Accounting) -> set[str]:
    """The anomalies of a drained example: read-back against the model, and the accounting's breaks."""
    kinds = set()
    if differences(Model().apply(records).data, dict(held)):
        kinds.add(DIFFERS)
    for kind, found in ((LOST, ledger.lost), (UNEXPECTED, ledger.unexpected), (UNEXPLAINED, ledger.unexplained)):
        if found:
            kinds.add(kind)
    return kinds


@cache
def engine_version(conduit: str) -> str:
    """The engine as a verdict names it: "Conduit v0.13.3" (from `conduit --version`), or its path."""
    try:
        out = subprocess.run([conduit, "--version"], capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    return f"Conduit {out[0]}" if out and out[0].startswith("v") else f"Conduit ({conduit})"


_OUTCOMES: dict[str, ControlOutcome] = {}


def _example_key(conduit: str, records: Sequence[Record], kill: tuple[str, int] | None, store: str) -> str:
    digest = hashlib.blake2b(f"{conduit}\0{kill}\0{store}\0".encode(), digest_size=16)
    digest.update(dump_records(records).encode())
    return digest.hexdigest()


def run_control(conduit: str, records: Sequence[Record], kill: tuple[str, int] | None, store: str,
                limit: float) -> ControlOutcome:
    """Runs the example into the control destination (once per example: a replay of it reuses the outcome)."""
    key = _example_key(conduit, records, kill, store)
    if key not in _OUTCOMES:
        _OUTCOMES[key] = _run(conduit, list(records), kill, store, limit)
    return _OUTCOMES[key]


def _run(conduit: str, records: list[Record], kill: tuple[str, int] | None, store: str,
         limit: float) -> ControlOutcome:
    registration = load_registration(CONTROL_SPEC)
    assert registration.read_back is not None
    command = serve_command(registration, os.getcwd())
    assert not isinstance(command, str), command
    tmp = tempfile.mkdtemp(prefix="conformance-control-")
    config = {k: v.replace("{tmp}", tmp) for k, v in registration.config.items()}
    pipeline = Pipeline(conduit, os.path.join(tmp, "conduit"), command, config, records, db=store, kill=kill)
    kinds: set[str] = set()
    left_behind: frozenset[bytes] = frozenset()
    try:
        pipeline.start()
        if kill is not None:
            pipeline.wait_killed(limit)
            acked = pipeline.acked()
            held = registration.read_back(config)
            allowed = held_since(records, acked)
            left_behind = frozenset(k for k in held if k not in allowed)
            if any(held.get(k) not in values for k, values in allowed.items()):
                kinds.add(AT_KILL)
            if kill[0] == "engine":
                pipeline.start()
        pipeline.wait_drained(limit)
        held = {k: v for k, v in registration.read_back(config).items() if k not in left_behind}
        ledger = account(records, pipeline.events(), held, pipeline.received(), left_behind)
        kinds |= ledger_kinds(records, held, ledger)
        summary = ledger.summary()
    except PipelineFailed as err:
        kinds.add(STOPPED)
        summary = str(err).splitlines()[0]
    finally:
        pipeline.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return ControlOutcome(frozenset(kinds), summary)


def engine_verdict(conduit: str, kinds: Iterable[str], control: ControlOutcome) -> str | None:
    """The engine's verdict when the control shows every anomaly the connector's example showed; else None."""
    seen = set(kinds)
    if not seen or not seen <= control.kinds:
        return None
    return (f"engine: {engine_version(conduit)} {', '.join(sorted(seen))} with the control destination too (the "
            f"reference, served the same way, in the same pipeline, store, records and kill plan: "
            f"{_one_line(control.summary)}), so this is not charged to the connector")


def control_note(control: ControlOutcome) -> str:
    """What a connector's failure says of the control, which did not show the same anomalies."""
    shown = ", ".join(sorted(control.kinds)) if control.kinds else "no anomaly"
    return (f"Control: the reference destination, served the same way in the same engine, store, records and kill "
            f"plan, showed {shown} ({_one_line(control.summary)}), so the anomaly above is the connector's.")


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
