"""The pipeline checks' source connector: it replays the suite's records into a real Conduit pipeline.

Served as a standalone connector with Conduit's official Python SDK (`python -m conformance.engine.replay_source`, which
Conduit execs through a wrapper script in its connectors directory). Its settings name two files: `records`, the
records to emit in order (`opencdc/json` lines, positions included), and `log`, where it appends one JSON line per
event: `open` (with the position Conduit resumed it at), `ack` (each position Conduit acknowledged) and `read`
(each position emitted). On Open(position) it resumes right after that record, so a pipeline restarted by Conduit
redelivers exactly what was not acknowledged: that is what makes crash recovery checkable. With `killAfter`, it
also inflicts the crash itself, once in the pipeline's life: SIGKILL to the destination's process or to Conduit's
process group, right as Conduit acknowledges the drawn record, holding back all but the next record until then
(see ReplaySource.read and ReplaySource._kill). With `killPersisted` (Conduit's log, for the engine's kill), the
kill waits for Conduit to log that it persisted the source's position after the drawn ack, then lets one more
record be acknowledged and kills at that ack: the restart resumes from a saved position and redelivers what was
acknowledged after it.

With `$CONFORMANCE_REPLAY_ANOMALY` set to `corrupt:INDEX`, the source plays a faulty engine: the record at INDEX (a
negative one counts from the end) is emitted with its `after` replaced by b"engine-corrupted", whatever
destination is behind it. Only tests set it, to show that an anomaly the control destination shows too is charged
to the engine (conformance.control), not to the connector.
"""

import asyncio
import base64
import dataclasses
import json
import os
import signal
import time
from typing import Any

import conduit
from conduit import BackoffRetry, BaseConfig, Field

from conformance.engine.pipeline import SOURCE_NAME as NAME
from harness import __version__
from harness.conduit.sdk import to_sdk_record
from harness.records import load_records

__all__ = ["NAME", "PERSISTED", "ANOMALY_ENV", "CORRUPTED", "ReplaySource", "ReplayConfig", "SPECIFICATION", "main"]

_HOLD_SECONDS = 10.0  # how long the source holds records back waiting for the kill (see ReplaySource.read)
_RECEIPT_SECONDS = 5.0  # how long the kill waits for a served destination to receive the record in flight
# How long the engine's kill waits for Conduit to persist the source's position (it flushes its store a moment after
# an ack): bounded, so a Conduit that never logs it still gets killed.
_PERSIST_SECONDS = 10.0
ANOMALY_ENV = "CONFORMANCE_REPLAY_ANOMALY"  # tests only: "corrupt:INDEX" (see the module docstring)
CORRUPTED = b"engine-corrupted"
PERSISTED = "persisted connectors"  # the message Conduit logs (at debug level) once it flushed connector states


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False




def _count(path: str, text: str) -> int:
    """How many lines of the file at `path` contain `text` (0 when it is missing)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if text in line)
    except FileNotFoundError:
        return 0


class ReplayConfig(BaseConfig):
    """Where the records to replay are, and where to log what Conduit did with them."""

    records: str = Field(description="File of opencdc/json lines: the records to emit, in order.")
    log: str = Field(description="File the source appends its open, read and ack events to (JSON lines).")
    killAfter: int = Field(default=-1, description="Kill once this many records are acknowledged (and hold back "
                                                   "all but the next one until then); -1: never.")
    killTarget: str = Field(default="", description="What to kill: 'destination' (the latest live pid in "
                                                    "killPids) or 'engine' (this process group: Conduit).")
    killPids: str = Field(default="", description="File of the destination's pids, one a line.")
    killMarker: str = Field(default="", description="File created by the one kill of the pipeline's life.")
    killReceived: str = Field(default="", description="File a served destination notes received positions in: "
                                                      "the kill waits for the record in flight to be noted.")
    killPersisted: str = Field(default="", description="Conduit's log: the engine's kill waits until Conduit logs "
                                                       "that it persisted connector states after the drawn ack.")


class ReplaySource(conduit.Source[ReplayConfig]):
    """Emits the records of its `records` file after the position it is opened at, and logs every ack."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.counts: dict[bytes, int] = {}
        self.killed = False
        self.saved = False  # the engine's kill: Conduit has persisted a position, so one more record may be acked
        self.next = 0
        self._log: Any = None

    def _event(self, kind: str, position: bytes) -> None:
        # One line per event, flushed at once: the harness reads the log while the pipeline runs, and a kill
        # must not lose what was logged before it.
        self._log.write(json.dumps({"event": kind, "position": _b64(position), "pid": os.getpid()}) + "\n")
        self._log.flush()

    async def open(self, position: bytes | None) -> None:
        with open(self.config.records, encoding="utf-8") as f:
            records = load_records(f.read())
        self.records = [to_sdk_record(r) for r in records]
        anomaly = os.environ.get(ANOMALY_ENV, "")
        if anomaly.startswith("corrupt:") and self.records:
            index = int(anomaly.split(":", 1)[1]) % len(self.records)
            record = self.records[index]
            self.records[index] = dataclasses.replace(
                record, payload=conduit.Change(before=record.payload.before, after=CORRUPTED))
        self.counts = {r.position: i + 1 for i, r in enumerate(self.records)}  # records up to and with each position
        self._log = open(self.config.log, "a", encoding="utf-8")
        self.killed = bool(self.config.killMarker) and os.path.exists(self.config.killMarker)
        self.next = 0
        if position:
            if position not in self.counts:
                raise ValueError(f"Conduit opened the replay source at position {position!r}, which it never emitted")
            self.next = self.counts[position]
        self._event("open", position or b"")

    async def read(self) -> Any:
        if self.next >= len(self.records):
            raise BackoffRetry()  # drained: the harness stops Conduit once every position is acked
        # Before the kill, the source holds back what follows the record being written when it comes: so the kill
        # always leaves records to redeliver, even when the destination acknowledges faster than the kill lands.
        # Bounded, so that a destination that never acknowledges cannot keep Conduit from stopping the source.
        held = time.monotonic() + _HOLD_SECONDS
        while 0 < self.config.killAfter and self._hold_from() <= self.next and not self.killed \
                and time.monotonic() < held:
            await asyncio.sleep(0.002)
        record = self.records[self.next]
        self.next += 1
        self._event("read", record.position)
        return record

    async def ack(self, position: bytes) -> None:
        self._event("ack", position)
        acked = self.counts.get(position, 0)
        if self.config.killAfter <= 0 or acked < self.config.killAfter or self.killed:
            return
        if self.config.killPersisted and not self.saved:
            # The engine's kill comes in two steps: once Conduit has saved a position, the source lets one more
            # record be acknowledged (not yet saved: Conduit flushes a moment later) and the next be in flight,
            # and kills at that ack, so the restart resumes from the saved position and redelivers after it.
            await self._await_persisted()
            self.saved = True
            return
        await self._await_received()
        self._kill()

    def _hold_from(self) -> int:
        """The index of the first record held back until the kill (the one after the record in flight)."""
        after = int(self.config.killAfter)  # the SDK's config class is untyped
        if self.config.killPersisted:
            return after + (2 if self.saved else 0)
        return after + 1

    async def _await_received(self) -> None:
        """Waits (bounded) until the destination noted the record in flight, so the kill finds it received: a
        destination that cannot take it again then shows it (without the wait, a loaded machine can kill before
        the connector read anything past the acked batch)."""
        in_flight = self._hold_from() - 1
        if not self.config.killReceived or self.killed or in_flight >= len(self.records):
            return
        wanted = _b64(self.records[in_flight].position)
        deadline = time.monotonic() + _RECEIPT_SECONDS
        while time.monotonic() < deadline:
            try:
                with open(self.config.killReceived, encoding="ascii") as f:
                    if wanted in f.read().split():
                        return
            except FileNotFoundError:
                pass
            await asyncio.sleep(0.002)

    async def _await_persisted(self) -> None:
        """Waits (bounded) until Conduit logs a flush of its connector states after this ack, so the engine's kill
        finds a saved position to resume from (Conduit sends the ack, then queues the position to persist; any flush
        after the ack stores a position at least one record in)."""
        seen = _count(self.config.killPersisted, PERSISTED)
        deadline = time.monotonic() + _PERSIST_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if _count(self.config.killPersisted, PERSISTED) > seen:
                self._event("persisted", b"")
                return

    def _kill(self) -> None:
        """The crash the pipeline checks inflict, here because here is where it is precise: right as Conduit
        acknowledges the drawn record, while the destination has later ones in flight. Once per pipeline (the
        marker file survives the restart)."""
        try:
            os.close(os.open(self.config.killMarker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return
        finally:
            self.killed = True
        if self.config.killTarget == "engine":
            self._event("kill engine", b"")
            os.killpg(os.getpgid(0), signal.SIGKILL)  # Conduit, its connectors, and this process
        with open(self.config.killPids, encoding="ascii") as f:
            pids = [int(p) for p in f.read().split()]
        for pid in reversed(pids):  # the latest started that is alive: the pipeline's (earlier ones were asked
            if _zombie(pid):        # for the specification and are gone)
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self._event("kill destination", str(pid).encode())
            return
        self._event("kill: no destination process", b"")

    async def teardown(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


SPECIFICATION = conduit.Specification(
    name=NAME, summary="Replays the conformance suite's records.",
    description="Emits the records of a file in order, resuming after the position it is opened at, and logs "
                "what Conduit acknowledges; the source of the conformance suite's pipeline.* checks.",
    version=f"v{__version__}", author="destination-conformance",
)


def main() -> None:
    """Serves the replay source over Conduit's plugin protocol."""
    conduit.serve(SPECIFICATION, source=ReplaySource)


if __name__ == "__main__":
    main()
