"""Failures saved as regression tests: the calls as JSON lines (batches in opencdc/json) and a pytest file.

A replay checks the calls against the contract itself, not against what the destination did when it
failed: every write must give a valid count, a batch of valid keys must be written whole, a batch whose
first invalid key is at i must stop there, and read-back must equal the model after every write.
"""

import base64
import hashlib
import importlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis.errors import DidNotReproduce

from conformance.contract.checks import ClauseFailure
from conformance.execute.subject import Subject
from conformance.generate.model import Model
from conformance.plugin._hypothesis_compat import reproducing
from harness import DEFAULT_TIMEOUT, RawData, WriteError, load_registration, record_from_json, record_to_json
from harness.keys import fits_shape

__all__ = ["save_failure", "replay_saved", "load_saved", "run_saved", "rerun_check", "spec_key_problem"]


def spec_key_problem(key: Any) -> str | None:
    """Why the contract's default key rules (CONTRACT.md: Keys) reject `key`, or None when they accept it (non-UTF-8
    counts as accepted)."""
    if not isinstance(key, RawData):
        return "not RawData"
    raw = key.raw
    if not fits_shape(raw):
        return "breaks SPEC's key rules"
    return None


def _relative(value: Any, tmp: str) -> Any:
    return value.replace(tmp, "{tmp}") if isinstance(value, str) and tmp else value


def _call_line(call: Any, tmp: str) -> dict[str, Any] | None:
    if call.method == "setup":
        return {"call": "setup", "source": call.args[0]}
    if call.method == "write":
        return {"call": "write", "records": [record_to_json(r) for r in call.args[0]], "outcome": call.outcome}
    if call.method == "configure":
        config = call.args[0] if call.args else None
        line: dict[str, Any] = {"call": "configure", "outcome": call.outcome}
        if config is not None:
            line["config"] = {k: _relative(v, tmp) for k, v in config.items()}
        return line
    if call.method == "ack":
        return {"call": "ack", "position": bytes(call.args[0]).hex(), "outcome": call.outcome}
    return {"call": call.method, "outcome": call.outcome}


def save_failure(directory: Path, failure: ClauseFailure, check: str | None = None,
                 args: Mapping[str, Any] | None = None, blob: tuple[str, str] | None = None) -> Path:
    """Writes the failure (the check that found it, its arguments and hypothesis' blob of the minimal example, plus
    the calls for reading) and a pytest file replaying it into `directory`; returns the pytest file."""
    lines: list[dict[str, Any]] = [{"clause": failure.clause.id, "destination": failure.spec, "what": failure.what}]
    if check is not None:
        lines[0].update(check=check, args=dict(args or {}), suite=_suite_version(),
                        hypothesis=hypothesis.__version__)
        if blob is not None:
            lines[0]["blob"] = list(blob)
    lines += [line for call in failure.calls if (line := _call_line(call, failure.tmp)) is not None]
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "_", f"{failure.clause.id}_{failure.spec}".lower()).strip("_") + f"_{digest}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{slug}.jsonl").write_text(text, encoding="utf-8")
    test = directory / f"test_{slug}.py"
    test.write_text(
        f'"""Regression test saved by the conformance suite: [{failure.clause.id}] {failure.clause.rule}"""\n\n'
        "from pathlib import Path\n\n"
        "from conformance.results.saved import replay_saved\n\n\n"
        f"def test_{slug}() -> None:\n"
        f'    """{failure.clause.id}: replays the calls that failed against {failure.spec}."""\n'
        f'    replay_saved(Path(__file__).with_name("{slug}.jsonl"))\n',
        encoding="utf-8",
    )
    return test


def load_saved(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the calls of a saved failure; ValueError names the line that is wrong."""
    header: dict[str, Any] | None = None
    calls: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON: {err}") from None
        if header is None:
            if not isinstance(entry, dict) or "clause" not in entry or "destination" not in entry:
                raise ValueError(f"{path}:{number}: not a saved failure (no clause and destination)")
            header = entry
        else:
            calls.append(entry)
    if header is None:
        raise ValueError(f"{path} is empty")
    return header, calls


def replay_saved(path: Path | str, destination: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 config: Mapping[str, str] | None = None) -> None:
    """Replays a saved failure against `destination` (default: the one saved); raises ClauseFailure if it still
    fails."""
    header, calls = load_saved(Path(path))
    registration = load_registration(destination or header["destination"], config, search_dir=os.getcwd())
    subject = Subject(registration, header["clause"], timeout)
    run_saved(subject, calls, header)


def _suite_version() -> str:
    from conformance import __version__

    return __version__


def rerun_check(subject: Subject, header: Mapping[str, Any]) -> None:
    """Runs the suite check that found a saved failure again, on its minimal example (setup included); raises
    ClauseFailure while the destination still breaks the clause, returns once it does not."""
    module_name, _, name = str(header["check"]).partition("::")
    check = getattr(importlib.import_module(module_name), name)
    if header.get("blob") and (header.get("hypothesis") != hypothesis.__version__ or
                               header.get("suite") != _suite_version()):
        raise RuntimeError(f"this failure was saved with conformance suite {header.get('suite')} and hypothesis "
                           f"{header.get('hypothesis')}; this is {_suite_version()} and {hypothesis.__version__}, "
                           "whose examples differ: save the failure again with --conformance-save-failures")
    inner = getattr(check, "hypothesis", None)
    if header.get("blob") and inner is not None:
        version, blob = header["blob"]
        try:
            with reproducing(check, version, base64.b64decode(blob)):
                check(subject=subject, **header.get("args", {}))
        except DidNotReproduce:
            return  # the minimal example no longer fails: the bug is gone
        return
    check(subject=subject, **header.get("args", {}))


def run_saved(subject: Subject, calls: list[dict[str, Any]], header: Mapping[str, Any] | None = None) -> None:
    """Replays a saved failure against `subject`: its check again when it names one, else the saved calls, each
    write checked against the contract."""
    if header is not None and header.get("check"):
        rerun_check(subject, header)
        return
    spec_keys = subject.registration.valid_keys is None and subject.registration.invalid_keys is None
    with subject.session() as s:
        model = Model()
        for entry in calls:
            kind = entry["call"]
            if kind == "setup":
                s.setup(entry["source"])
            elif kind == "configure":
                config = entry.get("config")
                if config is None:
                    if not s.configure().ok:
                        s.fail("configure() with the registered config raised")
                else:
                    s.configure({k: v.replace("{tmp}", s.tmp) for k, v in config.items()})
            elif kind == "write":
                batch = [record_from_json(r) for r in entry["records"]]
                outcome = s.attempt("write", batch)
                first_bad = (next((i for i, r in enumerate(batch) if spec_key_problem(r.key)), None)
                             if spec_keys else None)
                if outcome.ok:
                    if isinstance(outcome.value, bool) or outcome.value != len(batch):
                        s.fail(f"write() returned {outcome.value!r} for {len(batch)} records without raising")
                    if first_bad is not None:
                        s.fail(f"write() accepted record {first_bad}, whose key {batch[first_bad].key!r} SPEC rejects")
                    model.apply(batch)
                elif isinstance(outcome.error, WriteError) and 0 <= outcome.error.written < len(batch):
                    if first_bad is not None and outcome.error.written != first_bad:
                        s.fail(f"WriteError.written={outcome.error.written}, "
                               f"but the first invalid key is at {first_bad}")
                    model.apply(batch[: outcome.error.written])
                else:
                    s.fail(f"write() raised {type(outcome.error).__name__}: {outcome.error}")
                s.expect(model, "the replayed write")
            elif kind == "ack":
                s.attempt("ack", bytes.fromhex(entry["position"]))
            else:
                s.attempt(kind)
