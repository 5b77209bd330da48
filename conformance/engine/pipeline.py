"""Real Conduit pipelines for the pipeline.* clauses: the engine process, its connectors directory, the pipeline
YAML, drain detection, killing the connector or the engine, and the evidence a failure prints.

One `Pipeline` is one example: a fresh directory holding Conduit's connectors directory (the replay source of
conformance.engine.replay_source and the destination under check, each behind a wrapper script, since Conduit execs a
file), its pipelines directory (one pipeline: replay source into the destination), its persistent store (sqlite or
badger) and its log. Conduit runs in its own process group, so that killing the engine kills its connector processes
with it, as a crash of the machine would.
"""

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.engine.accounting import read_log
from harness import Record, Registration
from harness.records import dump_records

__all__ = ["CONDUIT_ENV", "SERVE_ENV", "SEARCH_ENV", "RECEIVED_ENV", "SOURCE_NAME", "DESTINATION_NAME", "MAX_RETRIES",
           "ServeCommand", "Pipeline", "PipelineFailed", "conduit_binary", "serve_command"]

# This module needs no Conduit SDK (the `conduit` extra): the suite imports it with or without; the connectors it
# starts (conformance.engine.replay_source, conformance.engine.serve_destination) run the SDK in their own processes.
CONDUIT_ENV = "CONFORMANCE_CONDUIT"  # the fallback of --conformance-conduit
SOURCE_NAME = "conformance-replay"  # the replay source's plugin name: standalone:conformance-replay
DESTINATION_NAME = "conformance-destination"  # an in-process destination's, served by engine.serve_destination
SERVE_ENV = "CONFORMANCE_SERVE_DESTINATION"  # the spec conformance.engine.serve_destination loads
SEARCH_ENV = "CONFORMANCE_SERVE_SEARCH"  # where it imports the spec's module from (the run's directory)
# The file a served destination notes the positions it receives in, before writing them: the source waits for the
# record in flight to be noted before it kills, so the kill finds the connector holding a record it will get again.
RECEIVED_ENV = "CONFORMANCE_SERVE_RECEIVED"
# Restarts Conduit's error recovery makes before it gives up (then, with --pipelines.exit-on-degraded, it exits):
# enough for the restart after a kill, few enough that a destination failing every redelivery ends the example
# in a second instead of retrying for ever.
MAX_RETRIES = 3
_LOG_LINES = 40
_EXIT_LINES = 15  # Conduit's own lines shown when it exits on its own (its error and the stack under it)
_LINE_CHARS = 600
_RECORDS_SHOWN = 40
_VICTIMS = {"engine": "Conduit and its connectors", "destination": "the destination connector"}


class PipelineFailed(Exception):
    """The pipeline did not do what the check waited for (it stopped, or did not drain in time)."""


def conduit_binary(config: Any) -> str | None:
    """The Conduit binary: --conformance-conduit, else $CONFORMANCE_CONDUIT; None when neither is set."""
    path = config.getoption("conformance_conduit", None) if config is not None else None
    return path or os.environ.get(CONDUIT_ENV) or None


@dataclass(frozen=True)
class ServeCommand:
    """How Conduit starts the destination: a command, its extra environment, and the plugin name it reports."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = ""  # from its specification; "" until asked (`specified`)

    def specified(self) -> "ServeCommand":
        """The command with the name its specification reports (one short-lived process asks it)."""
        if self.name:
            return self
        from harness.conduit.adapter import StandaloneDestination

        destination = StandaloneDestination(list(self.argv), env=dict(self.env))
        try:
            return ServeCommand(self.argv, self.env, destination.specification.name)
        finally:
            destination.close()


def serve_command(registration: Registration, search_dir: str) -> ServeCommand | str:
    """How to run the registration's destination as a standalone connector in Conduit, or why it cannot be."""
    if registration.transport == "standalone":
        if registration.command:
            found: tuple[list[str], dict[str, str]] = (list(registration.command), dict(registration.command_env))
        elif registration.name.startswith("exec:"):
            found = (shlex.split(registration.name[len("exec:"):]), {})
        else:
            return "the registration does not name the connector's command (Registration.command)"
        argv, env = found
        if os.sep in argv[0] and not os.path.isabs(argv[0]):  # Conduit execs the wrapper from its own directory
            argv = [os.path.join(search_dir, argv[0]), *argv[1:]]
        return ServeCommand(tuple(argv), env)
    # An in-process destination is served by conformance.engine.serve_destination, which loads it by its spec again.
    module, sep, attr = registration.name.partition(":")
    if not sep or not module or not attr:
        return (f"an in-process destination is served to Conduit by loading it again by its spec "
                f"(package.module:attribute), and {registration.name!r} is not one")
    path = os.pathsep.join(p for p in (search_dir, str(Path(__file__).resolve().parents[2]),
                                       os.environ.get("PYTHONPATH")) if p)
    return ServeCommand((sys.executable, "-m", "conformance.engine.serve_destination"),
                        {SERVE_ENV: registration.name, SEARCH_ENV: search_dir, "PYTHONPATH": path}, DESTINATION_NAME)


def _script(path: Path, argv: Sequence[str], env: Mapping[str, str], pid_file: Path | None = None) -> None:
    """A wrapper Conduit can exec: sets the environment, notes its pid, and execs the command (same pid)."""
    lines = ["#!/bin/sh"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    if pid_file is not None:
        lines.append(f"echo $$ >> {shlex.quote(str(pid_file))}")
    lines.append("exec " + shlex.join(argv))
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


def _yaml_string(value: str) -> str:
    # A JSON string is a YAML double-quoted scalar; Conduit expands ${VAR} in its pipeline files, so "$" is doubled.
    return json.dumps(value.replace("$", "$$"))


class Pipeline:
    """One Conduit pipeline from the replay source into the destination under check, in directory `root`."""

    def __init__(self, conduit: str, root: str, destination: ServeCommand, settings: Mapping[str, str],
                 records: Sequence[Record], db: str = "sqlite", kill: tuple[str, int] | None = None) -> None:
        self.conduit = conduit
        self.root = Path(root)
        self.destination = destination.specified()
        self.settings = dict(settings)
        self.records = list(records)
        self.db = db
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.argv: list[str] = []  # Conduit's command line, as last started
        self.kill = kill  # ("destination" or "engine", after how many acks): the source inflicts it
        self.kills: list[tuple[str, int]] = []  # what was killed, and how many records were acknowledged then
        for sub in ("connectors", "pipelines", "processors"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.records_path = self.root / "records.jsonl"
        self.records_path.write_text(dump_records(self.records), encoding="utf-8")
        self.events_path = self.root / "source-events.jsonl"
        self.log_path = self.root / "conduit.log"
        self.pids_path = self.root / "destination.pids"
        # Only a destination the suite serves notes what it receives; a connector's own command cannot.
        self.received_path = self.root / "received" if SERVE_ENV in self.destination.env else None
        repo = str(Path(__file__).resolve().parents[2])
        _script(self.root / "connectors" / "replay-source", (sys.executable, "-m", "conformance.engine.replay_source"),
                {"PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)})
        env = dict(self.destination.env)
        if self.received_path is not None:
            env[RECEIVED_ENV] = str(self.received_path)
        _script(self.root / "connectors" / "destination", self.destination.argv, env, self.pids_path)
        self.yaml = self._yaml()
        (self.root / "pipelines" / "conformance.yaml").write_text(self.yaml, encoding="utf-8")

    def _yaml(self) -> str:
        lines = ['version: "2.2"', "pipelines:", "  - id: conformance", "    status: running", "    connectors:",
                 "      - id: source", "        type: source", f"        plugin: standalone:{SOURCE_NAME}",
                 "        settings:", f"          records: {_yaml_string(str(self.records_path))}",
                 f"          log: {_yaml_string(str(self.events_path))}"]
        if self.kill is not None:
            lines += [f"          killTarget: {self.kill[0]}", f"          killAfter: \"{self.kill[1]}\"",
                      f"          killPids: {_yaml_string(str(self.pids_path))}",
                      f"          killMarker: {_yaml_string(str(self.root / 'killed'))}"]
            if self.received_path is not None:
                lines.append(f"          killReceived: {_yaml_string(str(self.received_path))}")
            if self.kill[0] == "engine":  # killed once Conduit has saved a position to resume from
                lines.append(f"          killPersisted: {_yaml_string(str(self.log_path))}")
        lines += [
                 "      - id: destination", "        type: destination",
                 f"        plugin: {_yaml_string('standalone:' + self.destination.name)}"]
        lines += ["        settings:"] + [f"          {_yaml_string(k)}: {_yaml_string(v)}"
                                         for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    # -- the engine --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts Conduit on the pipeline's store (again, after a kill: it resumes from what it persisted)."""
        self.starts += 1
        argv = [self.conduit, "run", f"--connectors.path={self.root / 'connectors'}",
                f"--pipelines.path={self.root / 'pipelines'}", f"--processors.path={self.root / 'processors'}",
                f"--config.path={self.root / 'conduit.yaml'}", f"--db.type={self.db}",
                f"--db.sqlite.path={self.root / 'conduit.db'}", f"--db.badger.path={self.root / 'badger'}",
                "--api.enabled=false", "--log.format=json", "--log.level=debug", "--pipelines.exit-on-degraded",
                "--pipelines.error-recovery.min-delay=100ms", f"--pipelines.error-recovery.max-retries={MAX_RETRIES}"]
        self.argv = argv  # for the failure's replay line
        with open(self.log_path, "ab") as log:
            log.write(f'{{"harness": "conduit start {self.starts}"}}\n'.encode())
            log.flush()
            # Its own session: killing the engine kills the connectors it started with it.
            # In the caller's directory, as the driver starts a standalone connector (relative settings agree).
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)

    def running(self) -> bool:
        """Whether the Conduit process is alive."""
        return self.process is not None and self.process.poll() is None

    def resumed_from(self) -> list[bytes]:
        """The positions the source was opened at after its first open (b'': from the start)."""
        return [e["position"] for e in self.events() if e["event"] == "open"][1:]

    def persisted_before_kill(self) -> bool:
        """Whether the source saw Conduit persist its position before it killed the engine."""
        return any(e["event"] == "persisted" for e in self.events())

    def received(self) -> list[bytes] | None:
        """The positions a served destination noted receiving, in order (with repeats); None when it notes none."""
        if self.received_path is None:
            return None
        try:
            return [base64.b64decode(line) for line in self.received_path.read_text(encoding="ascii").split()]
        except FileNotFoundError:
            return []

    def events(self) -> list[dict[str, Any]]:
        """What the replay source logged: open, read and ack events, in order."""
        return read_log(str(self.events_path))

    def acked(self) -> int:
        """How many records Conduit has acknowledged to the source: the length of the acknowledged prefix."""
        positions = {r.position: i for i, r in enumerate(self.records)}
        return max((positions.get(e["position"], -1) + 1 for e in self.events() if e["event"] == "ack"), default=0)

    def read(self) -> int:
        """How many records the source has emitted so far (counting each emission)."""
        return sum(1 for e in self.events() if e["event"] == "read")

    def wait(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        """Waits until `done()`; raises PipelineFailed at once if Conduit exits first (with its exit status and last
        log lines), or once `timeout` seconds pass."""
        end = time.monotonic() + timeout
        while not done():
            if not self.running():
                if done():  # what ended Conduit was what we waited for (the source's kill of the engine)
                    return
                raise PipelineFailed(self.exit_report(what))
            if time.monotonic() > end:
                raise PipelineFailed(f"the pipeline did not reach this within {timeout:g}s: {what}")
            time.sleep(0.005)

    def exit_report(self, what: str) -> str:
        """Why the example ends: Conduit exited on its own before `what`, with its status and last log lines."""
        code = self.process.returncode if self.process is not None else None
        status = "unknown status" if code is None else _exit_status(code)
        # Whether the source ever opened tells a pipeline that never started from one whose recovery gave up.
        if any(e["event"] == "open" for e in self.events()):
            why = f"the pipeline failed and error recovery gave up after {MAX_RETRIES} restarts"
        else:
            why = "the pipeline never started (the source was never opened)"
        lines = _log_lines(self.log_path)
        starts = [i for i, line in enumerate(lines) if '"harness": "conduit start' in line]
        # Its warnings and errors, and the lines that are no JSON (the error it exits with, as a stack).
        since = [line for line in (lines[starts[-1] + 1:] if starts else lines)
                 if '"level":"info"' not in line and '"level":"debug"' not in line]
        return (f"Conduit exited on its own ({status}) before {what}: {why}. Its last warnings and errors "
                f"(from {self.log_path}):\n" + _indent(_cut(since, _EXIT_LINES)))

    def drained(self) -> bool:
        """Whether the source has every record acknowledged since its last open (or was opened after the last
        record), and was opened again after each kill of the engine: Conduit has nothing more to deliver. (After a
        connector's kill there may be no restart: Conduit notices a dead connector only when it has a record for
        it, and the connector may have acknowledged every record before it died.)"""
        events = self.events()
        opens = [i for i, e in enumerate(events) if e["event"] == "open"]
        if len(opens) < 1 + sum(1 for target, _ in self.kills if target == "engine"):
            return False
        index = {r.position: i + 1 for i, r in enumerate(self.records)}
        last = events[opens[-1]]
        done = max([index.get(last["position"], 0)] + [index.get(e["position"], 0) for e in events[opens[-1]:]
                                                        if e["event"] == "ack"])
        return done >= len(self.records)

    def wait_drained(self, timeout: float) -> None:
        """Waits until every record is acknowledged."""
        self.wait(self.drained, f"every one of the {len(self.records)} records acknowledged", timeout)

    def killed(self) -> bool:
        """Whether the source has inflicted the pipeline's kill (its marker file exists)."""
        return (self.root / "killed").exists()

    def wait_killed(self, timeout: float) -> None:
        """Waits for the kill the source inflicts (for the engine: until Conduit and its connectors are gone), and
        notes how many records were acknowledged then."""
        assert self.kill is not None
        target = self.kill[0]
        # The source notes a connector's kill once the signal is sent; it cannot note its own group's.
        done = self.killed if target == "engine" else \
            lambda: any(e["event"].startswith("kill") for e in self.events())
        self.wait(done, f"the kill of the {target} once {self.kill[1]} records were acknowledged", timeout)
        if target == "engine":
            self._kill_group()  # reaps Conduit and waits for the connectors to be gone
        elif not any(e["event"] == "kill destination" for e in self.events()):
            raise PipelineFailed("the source found no destination connector process to kill")
        self.kills.append((target, self.acked()))

    def _kill_group(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        # The connectors are gone with it (a plugin that left the group would hold the store or a port).
        end = time.monotonic() + 5
        while any(_alive(int(p)) for p in _pids(self.pids_path)) and time.monotonic() < end:
            time.sleep(0.01)

    def stop(self) -> None:
        """Ends the engine for good (SIGKILL to its process group). The checks read back once the pipeline has
        drained, before this: an acknowledged record must already be held, and Conduit's graceful stop (SIGINT)
        sometimes waited for the Python source to stop longer than an example can afford."""
        self._kill_group()

    # -- what a failure shows ----------------------------------------------------------------------------------

    def evidence(self) -> str:
        """The pipeline YAML, the records, what Conduit acknowledged, the kills, and the logs (cut)."""
        parts = ["Pipeline (" + str(self.root / "pipelines" / "conformance.yaml") + "):", _indent(self.yaml)]
        shown = self.records[:_RECORDS_SHOWN]
        parts.append(f"Records replayed by the source ({len(self.records)}, opencdc/json):")
        parts.append(_indent(dump_records(shown) + (f"... and {len(self.records) - len(shown)} more\n"
                                                    if len(self.records) > len(shown) else "")))
        events = self.events()
        acks = [e["position"] for e in events if e["event"] == "ack"]
        opens = [e["position"] for e in events if e["event"] == "open"]
        parts.append(f"Acknowledged by Conduit, in order: {_positions(acks)}")
        parts.append(f"Source opened at: {_positions(opens)} (b'': from the start)")
        if self.kills:
            kills = [f"{_VICTIMS[target]} SIGKILLed with {acked} records acknowledged" for target, acked in self.kills]
            parts.append("Kills: " + "; ".join(kills))
        lines = _log_lines(self.log_path)
        # Debug lines are there for the kill to see Conduit persist (replay_source.PERSISTED), not for the reader.
        lines = [line for line in lines if '"level":"debug"' not in line]
        connector = [line for line in lines if '"conformance:destination"' in line and "plugin.standalone" in line]
        # Warnings and errors, without the echo of a pipeline stopping (every node's "context canceled").
        engine = [line for line in lines if line not in connector and "context canceled" not in line
                  and ('"level":"error"' in line or '"level":"warn"' in line or "harness" in line)]
        parts.append(f"Destination connector's log (last {_LOG_LINES} lines, from {self.log_path}):")
        parts.append(_indent(_cut(connector)))
        parts.append(f"Conduit's warnings and errors (last {_LOG_LINES}):")
        parts.append(_indent(_cut(engine)))
        if self.argv:
            parts.append("Replay it (the failing example's directory is kept; the source replays the same records):")
            parts.append(_indent(shlex.join(self.argv)))
        return "\n".join(parts)


def _exit_status(code: int) -> str:
    """An exit code as words: "status 1", or "signal SIGKILL" for a negative one."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is dead for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _pids(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def _positions(positions: Iterable[bytes]) -> str:
    shown = [p.decode("utf-8", "replace") for p in positions]
    return ", ".join(shown) if shown else "(none)"


def _log_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _compact(line: str) -> str:
    """A Conduit JSON log line as `level component: message; key=value ...`, without its stack and time."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "message" not in entry:
        return line
    rest = {k: v for k, v in entry.items() if k not in ("level", "component", "message", "stack", "time")}
    text = f"{entry.get('level', '?')} {entry.get('component', '-')}: {entry['message']}"
    return text + "".join(f"; {k}={v}" for k, v in rest.items())


def _cut(lines: list[str], count: int = _LOG_LINES) -> str:
    kept = [_compact(line) for line in lines[-count:]]
    text = "\n".join(line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS] + " ..." for line in kept)
    return ("... (earlier lines left out)\n" if len(lines) > len(kept) else "") + (text or "(nothing)")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())
