"""Child side of tests/test_reference_crash.py: writes records through the reference until SIGKILLed.

`python tests/crash_writer.py --serve` is a small fork server: it imports the harness and the reference
once, prints a ready line, then takes one JSON command per stdin line and answers with one JSON line:

    {"cmd": "start", "directory": D, "journal": J, "run": R}  -> {"pid": P}
        forks a writer: it configures the reference ({"directory": D, "sync": "true"}), opens it and writes
        batches of run R's records forever; after each `write` returns it appends one line per record of the
        batch ("<run> <seq> <key hex>") to journal J and fsyncs it. The writer never exits on its own
        (it waits once it has written MAX_RECORDS), so its pid stays ours until it is reaped.
    {"cmd": "reap"}  -> {"status": S}
        waits for that writer (the test has SIGKILLed it) and returns its raw wait status.

Forking from one warm process makes a round cost a fork instead of a fresh interpreter and its imports,
so the test can afford hundreds of kills. The server exits at stdin EOF, killing a writer still running,
and a writer whose server is gone exits too, so nothing outlives the test.

The records are a pure function of (run, seq), shared with the test through `expected_payload`, so the
test can tell a complete payload that was sent from a torn, stale or foreign one.
"""

import hashlib
import json
import os
import random
import signal
import sys
import time
import traceback

KEYS = (b"k0", b"k1", b"k2", b"k3", b"k4", "kl\u00fcc-5".encode(), "\u043a\u043b\u044e\u0447-6".encode())
MAX_SIZE = 64 * 1024  # filler sizes are 0 .. MAX_SIZE - 1
MAX_RECORDS = 200_000
MAX_BATCH = 6
MAGIC = b"CRASHREC1"
DIGEST_SIZE = 16
TRAILER = b"|END"


def _seed_bytes(run: int, seq: int) -> bytes:
    return hashlib.blake2b(b"%d/%d" % (run, seq), digest_size=16).digest()


def key_of(run: int, seq: int) -> bytes:
    """The key record `seq` of run `run` is written to: one of a small pool, so files are overwritten often."""
    return KEYS[_seed_bytes(run, seq)[0] % len(KEYS)]


def expected_payload(run: int, seq: int) -> bytes:
    """The exact bytes sent for record (run, seq): a header naming key, run, seq and filler size, the filler
    (deterministic, arbitrary bytes), a digest of all that, and a trailer, so a torn copy never parses."""
    seed = _seed_bytes(run, seq)
    size = int.from_bytes(seed[1:4], "big") % MAX_SIZE
    filler = (seed * (size // len(seed) + 1))[:size]
    body = b"%s|%s|%d|%d|%d|" % (MAGIC, key_of(run, seq).hex().encode(), run, seq, size) + filler
    return body + b"|" + hashlib.blake2b(body, digest_size=DIGEST_SIZE).hexdigest().encode() + TRAILER


def parse_payload(data: bytes) -> tuple[bytes, int, int]:
    """(key, run, seq) of a complete payload; ValueError says what is wrong with a torn or foreign one."""
    if not data:
        raise ValueError("empty file")
    if not data.startswith(MAGIC + b"|"):
        raise ValueError(f"does not start with the record header: {data[:40]!r}")
    fields = data.split(b"|", 5)
    if len(fields) < 6:
        raise ValueError(f"truncated header: {data[:80]!r}")
    _, key_hex, run_text, seq_text, size_text, rest = fields
    try:
        key, run, seq, size = bytes.fromhex(key_hex.decode("ascii")), int(run_text), int(seq_text), int(size_text)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"malformed header: {data[:80]!r}") from None
    tail = 1 + 2 * DIGEST_SIZE + len(TRAILER)
    if len(rest) != size + tail:
        raise ValueError(f"{len(data)} bytes: filler of {len(rest) - tail} bytes, header says {size} (torn write?)")
    body = data[: len(data) - tail]
    digest = hashlib.blake2b(body, digest_size=DIGEST_SIZE).hexdigest().encode()
    if data[len(body):] != b"|" + digest + TRAILER:
        raise ValueError("digest or trailer does not match the content (torn or mixed write?)")
    return key, run, seq


def parse_journal(data: bytes) -> list[tuple[int, int, bytes]]:
    """(run, seq, key) of every complete journal line; a torn last line (killed mid-append) is left out."""
    entries = []
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is incomplete
        run, seq, key_hex = line.split(b" ")
        entries.append((int(run), int(seq), bytes.fromhex(key_hex.decode("ascii"))))
    return entries


# --- the writer and the fork server ---------------------------------------------------------------


def _write_forever(directory: str, journal: str, run: int, server: int) -> None:
    import reference
    from harness import Change, Driver, Operation, RawData, Record

    # A generous call limit: a slow fsync on a loaded machine must not end the writer before the kill.
    driver = Driver(reference.registration, config={"directory": directory, "sync": "true"}, timeout=3600)
    driver.configure()
    driver.open()
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    sizes = random.Random(run)
    seq = 0
    while seq < MAX_RECORDS:
        if os.getppid() != server:
            os._exit(3)  # the server (and so the test) is gone
        batch = range(seq, seq + sizes.randint(1, MAX_BATCH))
        records = [
            Record(position=b"%d/%d" % (run, s), operation=Operation.update, key=RawData(key_of(run, s)),
                   payload=Change(after=RawData(expected_payload(run, s))))
            for s in batch
        ]
        result = driver.write_and_ack(records)
        if result.error is not None or result.written != len(records):
            raise AssertionError(f"write of records {batch} failed: {result}")
        # Only now, with write returned, are these records promised to be on disk.
        os.write(fd, b"".join(b"%d %d %s\n" % (run, s, key_of(run, s).hex().encode()) for s in batch))
        os.fsync(fd)
        seq = batch.stop
    while os.getppid() == server:  # never exit on our own: the test SIGKILLs this pid
        time.sleep(0.05)
    os._exit(3)


def _child(command: dict, server: int) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.close(0)
        _write_forever(command["directory"], command["journal"], command["run"], server)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def _answer(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve() -> None:
    import harness  # noqa: F401  (warm the imports the writers use, once)
    import reference  # noqa: F401

    server = os.getpid()
    pid = None
    _answer({"ready": server})
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "start":
                if pid is not None:
                    raise RuntimeError("start while a writer is still unreaped")
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(command, server)
                    os._exit(1)  # not reached
                _answer({"pid": pid})
            elif command["cmd"] == "reap":
                if pid is None:
                    raise RuntimeError("reap without a writer")
                _, status = os.waitpid(pid, 0)
                pid = None
                _answer({"status": status})
            else:
                raise RuntimeError(f"unknown command {command!r}")
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit("usage: crash_writer.py --serve")
    serve()
