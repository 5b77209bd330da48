"""The reference destination survives SIGKILL at random moments while writing with `sync=true`.

A child process (forked from the warm server in tests/crash_writer.py) writes batches of records whose
keys come from a small pool, so every file is overwritten many times; payloads are self-describing (key,
run, seq, size, digest) and a pure function of (run, seq). After each `write` returns, the child appends
the batch's (run, seq, key) to a journal and fsyncs it, so the journal lists only records that `write`
promised. The test kills the child with SIGKILL at a random moment, reaps it, then checks the directory:

1. every file that is not a temporary one is a pool key holding exactly one complete payload that was
   sent (it parses, its digest holds, its key is the file name, and it equals the bytes sent for its
   (run, seq), a record that run reached);
2. files named with TEMP_PREFIX are leftovers, never data: read-back shows them only under their
   temporary names, and no key of the pool can be taken for one;
3. every record the journal lists is present: each key's file holds that record or a later one.

Directories are reused across rounds, so every child also starts on leftovers of an earlier kill.
Each group of rounds runs in its own test, so `-n 2` spreads them over both workers.
"""

import importlib.util
import json
import os
import random
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import directory_reader
from reference import TEMP_PREFIX

if os.name != "posix":
    pytest.skip("SIGKILL and fork are POSIX only", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent
WRITER_SCRIPT = Path(__file__).resolve().parent / "crash_writer.py"
_spec = importlib.util.spec_from_file_location("crash_writer", WRITER_SCRIPT)
assert _spec is not None and _spec.loader is not None
cw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cw)

SEED = int(os.environ.get("CRASH_TEST_SEED", "20240611"))
GROUPS = 4
ROUNDS_PER_GROUP = 60  # 240 kills in all
DIRECTORIES_PER_GROUP = 3
REPLY_LIMIT = 60.0  # seconds for the server to answer; only a hung server ever reaches it
JOURNAL_LIMIT = 30.0  # seconds to wait for a writer's first journal entry before killing it anyway
read_back = directory_reader("directory")


class WriterServer:
    """The fork server of crash_writer.py, spoken to one JSON line at a time."""

    def __init__(self, log: Path) -> None:
        self.log = log
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen([sys.executable, str(WRITER_SCRIPT), "--serve"], cwd=REPO, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self._buffer = b""
        self.pid = self._reply()["ready"]

    def _reply(self) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + REPLY_LIMIT
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                pytest.fail(f"crash_writer server did not answer within {REPLY_LIMIT:g}s\n{self.log_tail()}")
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"crash_writer server exited (status {self.proc.wait()})\n{self.log_tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _send(self, **command: object) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        return self._reply()

    def start(self, directory: Path, journal: Path, run: int) -> int:
        return self._send(cmd="start", directory=str(directory), journal=str(journal), run=run)["pid"]

    def reap(self) -> int:
        return self._send(cmd="reap")["status"]

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace")
        return "writer stderr:\n" + (text[-4000:] or "(empty)")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # at EOF the server kills and reaps a writer it still has, then exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def server(tmp_path: Path):
    writer_server = WriterServer(tmp_path / "writer-stderr.log")
    try:
        yield writer_server
    finally:
        writer_server.close()


class DirectoryState:
    """What the test knows of one reused directory: the runs started on it and the records promised."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent_bound: dict[int, int] = {}  # run -> no record with seq >= this was sent
        self.promised: dict[bytes, tuple[int, int]] = {}  # key -> (run, seq) of its last journaled record
        self.temps: set[bytes] = set()  # temporary files left by earlier kills


def _journal_size(journal: Path) -> int:
    try:
        return journal.stat().st_size
    except FileNotFoundError:
        return 0


def _kill_at_random(pid: int, journal: Path, rng: random.Random) -> None:
    """Lets the writer run for a random while, then SIGKILLs it; most kills land amid later writes."""
    try:
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0, 0.03))  # from the fork: some kills land before or during open
        else:
            deadline = time.monotonic() + JOURNAL_LIMIT
            while _journal_size(journal) == 0 and time.monotonic() < deadline:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.02))  # then some more writes, overwriting keys
    finally:
        os.kill(pid, signal.SIGKILL)  # the server reaps only when asked, so this pid is still the writer's


def _take_journal(state: DirectoryState, journal: Path, run: int, where: str) -> int:
    """Adds the round's journal to what the directory promises; returns how many records it lists."""
    entries = cw.parse_journal(journal.read_bytes()) if journal.exists() else []
    for index, (entry_run, seq, key) in enumerate(entries):
        assert (entry_run, seq, key) == (run, index, cw.key_of(run, index)), f"{where}: journal line {index} is wrong"
        state.promised[key] = (run, seq)
    # At most one batch beyond the journal was written: the one in flight, or one whose entry was cut off.
    state.sent_bound[run] = len(entries) + cw.MAX_BATCH
    return len(entries)


def _check_directory(state: DirectoryState, where: str) -> int:
    """Checks 1-3 on the directory after a kill; returns how many temporary files the kill left."""
    directory = os.fsencode(state.path)
    names = os.listdir(directory) if os.path.isdir(directory) else []
    temps = {name for name in names if name.startswith(TEMP_PREFIX)}
    found: dict[bytes, tuple[int, int]] = {}
    for name in sorted(set(names) - temps):
        assert name in cw.KEYS, f"{where}: file {name!r} is neither a key that was written nor a temporary file"
        path = os.path.join(directory, name)
        assert stat.S_ISREG(os.lstat(path).st_mode), f"{where}: {name!r} is not a regular file"
        with open(path, "rb") as f:
            data = f.read()
        try:
            key, run, seq = cw.parse_payload(data)
        except ValueError as err:  # check 1: torn, empty or foreign content
            pytest.fail(f"{where}: file {name!r} ({len(data)} bytes) is not one complete payload: {err}")
        assert key == name, f"{where}: file {name!r} holds the payload of key {key!r}"
        assert run in state.sent_bound and seq < state.sent_bound[run], (
            f"{where}: file {name!r} holds record {(run, seq)}, which was never sent to this directory")
        assert cw.key_of(run, seq) == name and data == cw.expected_payload(run, seq), (
            f"{where}: file {name!r} does not hold exactly the bytes sent for record {(run, seq)}")
        found[name] = (run, seq)

    # Check 2: temporary files are never data. The pool has no key a temporary name could shadow, and the
    # harness's read-back shows each leftover under its own temporary name and every key with its payload.
    assert not any(key.startswith(TEMP_PREFIX) for key in cw.KEYS)
    shown = read_back({"directory": str(state.path)})
    shown_keys = {name for name in shown if not name.startswith(TEMP_PREFIX)}
    assert shown_keys == set(found), f"{where}: read-back shows keys {sorted(shown_keys)}, files {sorted(found)}"
    assert all(shown[name] == cw.expected_payload(*found[name]) for name in shown_keys)
    assert {name for name in shown if name.startswith(TEMP_PREFIX)} <= temps

    # Check 3: every record whose batch write returned is present, or a later record of its key.
    for key, promised in sorted(state.promised.items()):
        assert key in found, f"{where}: key {key!r} is missing, but write returned for its record {promised}"
        assert found[key] >= promised, (
            f"{where}: key {key!r} holds record {found[key]}, older than {promised} whose write returned")
    left, state.temps = len(temps - state.temps), temps
    return left


@pytest.mark.parametrize("group", range(GROUPS))
def test_sigkill_mid_write_keeps_files_whole(group: int, server: WriterServer, tmp_path: Path) -> None:
    rng = random.Random(SEED * 1000 + group)
    states = [DirectoryState(tmp_path / f"dir{i}" / "out") for i in range(DIRECTORIES_PER_GROUP)]
    first_run = rng.randrange(1, 10**6) * 1000  # run ids rise, so later runs' records are later
    rounds_with_journal = rounds_leaving_temps = 0
    for index in range(ROUNDS_PER_GROUP):
        state = states[index % DIRECTORIES_PER_GROUP]
        run = first_run + index
        journal = tmp_path / f"journal-{run}.log"
        where = f"seed {SEED} group {group} round {index} (run {run}, {state.path})"
        pid = server.start(state.path, journal, run)
        _kill_at_random(pid, journal, rng)
        status = server.reap()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"{where}: the writer ended before the kill (wait status {status})\n{server.log_tail()}")
        journaled = _take_journal(state, journal, run, where)
        rounds_with_journal += journaled > 0
        rounds_leaving_temps += _check_directory(state, where) > 0
    print(f"group {group}: {ROUNDS_PER_GROUP} kills, {rounds_with_journal} after a write returned, "
          f"{rounds_leaving_temps} left a temporary file")
    # Not a timing check: most rounds wait for a journal entry before killing, so check 3 had work to do.
    assert rounds_with_journal > 0
