"""Destinations that break the pipeline.* clauses and pass the in-driver ones that matter to them, for
tests/test_pipeline.py. Each is served to Conduit through conformance.engine.serve_destination (by its spec).

- `exclusive`: journals every record into its own file, named by (a digest of) the record's position and created
  with O_EXCL (all of a batch's files first), as a log segmented by offset would. Each position arrives once in a
  pipeline that does not fail, so it delivers; but after a crash Conduit redelivers the records that were in flight,
  whose files already exist: EEXIST, every retry, so the pipeline never recovers (pipeline.crash-recovery fails).
  Writing a record takes a while (a slow disk), so a kill finds a batch being written.
- `drops_last`: acks every record but writes nothing for the last of each batch (Conduit hands a standalone
  destination small batches, so most records are lost): pipeline.delivers fails.
- `undoes_dead_writes`: notes the keys of each batch before writing it, and forgets them at a clean teardown; at
  Open, finding notes a dead process left, it removes those keys' files as writes it cannot vouch for. But Conduit
  acknowledged them: after an unclean exit, records are lost (pipeline.crash-recovery and engine-restart fail),
  unless a later record of the same key writes the file again, which is why a stream of distinct keys catches it.
- `bytes_checkpoint`: keeps the greatest position it has written as its checkpoint, comparing positions as bytes,
  and after an unclean exit drops what it receives at or below it (meaning to drop redeliveries). Positions are
  opaque: b"10" < b"9", b"{..." sorts above every other shape, so records are dropped that were never written.
- `exits_at_start`: served to Conduit, its process exits (status 3) as it is made: the pipeline never starts, and
  Conduit exits on its own; each pipeline check must end its example at once, saying so.
"""

import base64
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence

from conformance.engine.pipeline import SERVE_ENV
from conformance.generate.strategies import position_index
from harness import Registration, WriteError, default_destination_middleware, destination_with_middleware
from harness.records import Record
from harness.registration import directory_reader
from reference import FileDestination

__all__ = ["exclusive", "drops_last", "exits_at_start", "undoes_dead_writes", "bytes_checkpoint", "EXIT_STATUS",
           "ExclusiveJournal", "read_journal"]

# Seconds between creating a record's file and filling it: longer than an ack takes to reach the source (which
# inflicts the kill), so the kill finds the record in flight with its file created, even on a loaded machine.
_SLOW_DISK = 0.05


class ExclusiveJournal(FileDestination):
    """One O_EXCL file per record position in the directory; read_journal replays them in position order."""

    def write(self, records: Sequence[Record]) -> int:
        directory = self._directory  # type: ignore[attr-defined]  # set by FileDestination.open
        # The whole batch's files are created first (a segment reserved per offset), so every record the connector
        # received before a kill has its file, whether or not its turn to be filled came.
        files = []
        try:
            for record in records:
                # Positions are opaque and may be long: the file is named by a digest of it (it is still one per
                # position, so a redelivered record finds its file there).
                name = os.path.join(directory, b"%s.rec" % hashlib.sha256(record.position).hexdigest().encode())
                try:
                    files.append(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                except OSError as err:
                    raise WriteError(f"cannot create {name!r}: {err}", written=0) from err
            for fd, record in zip(files, records, strict=True):
                time.sleep(_SLOW_DISK)
                after = record.payload.after
                entry = {"position": base64.b64encode(record.position).decode(),
                         "key": base64.b64encode(record.key.bytes()).decode(),  # type: ignore[union-attr]
                         "after": None if after is None else base64.b64encode(after.bytes()).decode()}
                os.write(fd, json.dumps(entry).encode())
        finally:
            for fd in files:
                os.close(fd)
        return len(records)


def read_journal(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """The journal's records applied in stream order (a file a kill left empty is a record not written); the order
    comes from the suite's own positions (generate.strategies.position_index), which only the test may decode."""
    held: dict[bytes, bytes] = {}
    entries = []
    for content in directory_reader("directory")(config).values():
        try:
            entry = json.loads(content)
        except ValueError:
            continue
        entries.append((position_index(base64.b64decode(entry["position"])), entry))
    for _, entry in sorted(entries, key=lambda item: -1 if item[0] is None else item[0]):
        key = base64.b64decode(entry["key"])
        if entry["after"] is None:
            held.pop(key, None)
        else:
            held[key] = base64.b64decode(entry["after"])
    return held


class DropsLast(FileDestination):
    """Writes all but the last record of each batch, and says it wrote them all."""

    def write(self, records: Sequence[Record]) -> int:
        super().write(list(records)[:-1])
        return len(records)


exclusive = Registration(factory=ExclusiveJournal, config={"directory": "{tmp}/out"}, read_back=read_journal,
                         directory_param="directory")
drops_last = Registration(
    factory=lambda: destination_with_middleware(DropsLast(), *default_destination_middleware()),
    config={"directory": "{tmp}/out"}, read_back=directory_reader("directory"), directory_param="directory")


EXIT_STATUS = 3  # what exits_at_start's served process exits with


class ExitsAtStart(FileDestination):
    """A file destination whose served process exits as the destination is made (in the driver it works)."""

    def __init__(self) -> None:
        if os.environ.get(SERVE_ENV):  # only in the process conformance.engine.serve_destination runs for Conduit
            os._exit(EXIT_STATUS)
        super().__init__()


exits_at_start = Registration(factory=ExitsAtStart, config={"directory": "{tmp}/out"},
                              read_back=directory_reader("directory"), directory_param="directory")


def _beside(directory: bytes, suffix: bytes) -> bytes:
    """A file next to the output directory (inside it, read-back would show it)."""
    return directory.rstrip(b"/") + suffix


class UndoesDeadWrites(FileDestination):
    """Removes, at Open, the files of the keys an earlier process noted and never closed (see the module)."""

    def open(self) -> None:
        super().open()
        notes = _beside(self._directory, b".session")  # type: ignore[attr-defined]
        try:
            with open(notes, "rb") as f:
                lines = f.read().split()
        except FileNotFoundError:
            lines = []
        dead = []
        for line in lines:
            try:
                dead.append(bytes.fromhex(line.decode()))
            except ValueError:
                continue  # a line the kill cut short
        for key in dead:
            try:
                os.unlink(os.path.join(self._directory, key))  # type: ignore[attr-defined]
            except FileNotFoundError:
                pass
        with open(notes, "wb"):  # this process' notes, empty so far
            pass

    def write(self, records: Sequence[Record]) -> int:
        with open(_beside(self._directory, b".session"), "ab") as f:  # type: ignore[attr-defined]
            f.write(b"".join(r.key.bytes().hex().encode() + b"\n" for r in records))  # type: ignore[union-attr]
        return super().write(records)

    def teardown(self) -> None:
        if self._config is not None:  # type: ignore[attr-defined]
            try:
                os.unlink(_beside(self._directory, b".session"))  # type: ignore[attr-defined]
            except FileNotFoundError:
                pass
        super().teardown()


class BytesCheckpoint(FileDestination):
    """Skips, after an unclean exit, records whose position is at or below its checkpoint as bytes."""

    def open(self) -> None:
        super().open()
        self._checkpoint = _beside(self._directory, b".checkpoint")  # type: ignore[attr-defined]
        try:
            with open(self._checkpoint, "rb") as f:
                self._last: bytes | None = f.read()  # left by a process that did not tear down
        except FileNotFoundError:
            self._last = None
        self._skip_to = self._last

    def write(self, records: Sequence[Record]) -> int:
        fresh = [r for r in records if self._skip_to is None or r.position > self._skip_to]
        super().write(fresh)  # raises WriteError if a record fails
        for record in fresh:
            if self._last is None or record.position > self._last:
                self._last = record.position
        if self._last is not None:  # replaced whole, so a kill never leaves it torn
            with open(self._checkpoint + b".tmp", "wb") as f:
                f.write(self._last)
            os.replace(self._checkpoint + b".tmp", self._checkpoint)
        return len(records)

    def teardown(self) -> None:
        if self._config is not None:  # type: ignore[attr-defined]
            try:
                os.unlink(self._checkpoint)
            except (AttributeError, FileNotFoundError):
                pass
        super().teardown()


undoes_dead_writes = Registration(factory=UndoesDeadWrites, config={"directory": "{tmp}/out"},
                                  read_back=directory_reader("directory"), directory_param="directory")
bytes_checkpoint = Registration(factory=BytesCheckpoint, config={"directory": "{tmp}/out"},
                                read_back=directory_reader("directory"), directory_param="directory")
