"""The FUSE fault filesystem (conformance/probes/fuse.py): faults reach I/O pyfakefs cannot see, and no mount is left.

The suite runs (tests/suite_runs.py: a subprocess, the derandomized quick profile, no shrinking, so no verdict
depends on a seed) target the fault clauses with --conformance-clause: the SQLite example (C I/O in this process)
and our fixed Go connector (another process) get a verdict with evidence for each, and SQLite destinations with a
held-out fault-handling bug (tests/zoo/sqlite_faults.py) fail them. Where FUSE cannot be used, the clauses say so.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.probes import fuse as fusefs
from tests.go_connectors import build
from tests.suite_runs import REPO_ROOT, dump, reasons, run_suite

SQLITE = "tests.sqlite_destination:registration"
GO_FIXED14 = "tests.conduit_connectors:go_fixed14"
FAULT_CLAUSES = ("fault.disk-full", "fault.io-error", "open.unwritable", "write.recovers")
TARGETS = tuple(f"--conformance-clause={c}" for c in FAULT_CLAUSES)
TARGETS_CLAUSES = FAULT_CLAUSES[:2]
SQLITE_BUGS = ("swallows_commit_errors", "no_journal", "counts_rolled_back")
pytestmark = pytest.mark.usefixtures("fuse_here")  # tests/conftest.py: skip without FUSE, fail under CI


def _mounts_under(path: Path) -> list[str]:
    """Mounts at or below `path` in the mount table."""
    return [line for line in Path("/proc/mounts").read_text().splitlines()
            if len(line.split()) > 1 and line.split()[1].startswith(str(path))]


@pytest.fixture
def mounts_here(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a suite run whose mounts go under `tmp_path`; none is left there after it (other
    processes' mounts, xdist's other worker say, are elsewhere)."""
    place = tmp_path / "mounts"
    place.mkdir()
    yield {"CONFORMANCE_FUSE_DIR": str(place)}
    assert _mounts_under(place) == []
    assert list(place.iterdir()) == []  # mount points and backing directories removed too


@pytest.fixture
def own_mount() -> Iterator[None]:
    """This process' mount is stopped after the test, and gone from the mount table."""
    yield
    server = fusefs._server
    fusefs.unmount_all()
    if server is not None:
        assert not fusefs.mounted(server.mountpoint) and not os.path.exists(server.mountpoint)


# --- the filesystem itself, in this process ------------------------------------------------------------------


def test_injected_faults_reach_c_level_io_and_say_which_call_fired(own_mount: None) -> None:
    """An EIO planned at the first fsync fails sqlite3's commit (C code), and the fired call is reported."""
    import sqlite3

    with fusefs.fuse_filesystem() as faults:
        path = os.path.join(faults.area, "x.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("pragma synchronous = full")
        db.execute("create table t (v)")
        faults.inject("fsync", errno.EIO, 1)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            db.execute("insert into t values (1)")
        db.close()
        fired = faults.fired
        assert [(f["op"], f["n"], f["errno"]) for f in fired] == [("fsync", 1, errno.EIO)]
        assert fired[0]["path"].endswith("x.db-journal") or fired[0]["path"].endswith("x.db")


def test_a_full_disk_writes_short_first_then_refuses(own_mount: None) -> None:
    """With 10 bytes free, a 25-byte write stores 10 and returns 10; the next fails ENOSPC; the counters show it."""
    with fusefs.fuse_filesystem() as faults:
        fd = os.open(os.path.join(faults.area, "f"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            faults.fill_disk(10)
            assert os.write(fd, b"x" * 25) == 10
            with pytest.raises(OSError) as raised:
                os.write(fd, b"x" * 25)
            assert raised.value.errno == errno.ENOSPC
        finally:
            os.close(fd)
        assert (faults.shortened, faults.disk_full) == (1, 1)


def test_a_sticky_fault_fails_every_later_change_and_clear_ends_it(own_mount: None) -> None:
    """After a sticky EIO at the first open, mkdir fails too, until clear()."""
    with fusefs.fuse_filesystem() as faults:
        faults.inject("open", errno.EIO, 1, sticky=True)
        with pytest.raises(OSError, match="Input/output"):
            open(os.path.join(faults.area, "a"), "wb").close()
        with pytest.raises(OSError, match="Input/output"):
            os.mkdir(os.path.join(faults.area, "d"))
        faults.clear()
        os.mkdir(os.path.join(faults.area, "d"))


def test_a_failed_device_still_opens_an_existing_file_but_truncates_nothing(own_mount: None) -> None:
    """Once broken, opening an existing file without O_TRUNC runs (as in pyfakefs); truncating it fails."""
    with fusefs.fuse_filesystem() as faults:
        path = os.path.join(faults.area, "a")
        with open(path, "wb") as f:
            f.write(b"a")
        faults.inject("open", errno.EIO, 1, sticky=True)
        with pytest.raises(OSError, match="Input/output"):
            open(os.path.join(faults.area, "b"), "wb").close()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            with pytest.raises(OSError, match="Input/output"):
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)
        with pytest.raises(OSError, match="Input/output"):
            os.open(path, os.O_WRONLY | os.O_TRUNC)
        faults.clear()
        with open(path, "rb") as f:
            assert f.read() == b"a"


def test_a_read_only_directory_refuses_root(own_mount: None) -> None:
    """open.unwritable on a machine that runs as root: the mount refuses changes under a directory without write
    permission, as the kernel does for any other user."""
    with fusefs.fuse_filesystem() as faults:
        locked = os.path.join(faults.area, "locked")
        os.mkdir(locked)
        os.chmod(locked, 0o555)
        with pytest.raises(PermissionError):
            os.mkdir(os.path.join(locked, "d1"))
        os.chmod(locked, 0o755)


def test_a_killed_controller_leaves_no_mount() -> None:
    """The server unmounts when its controller dies without cleaning up (SIGKILL), even with a file held open."""
    script = textwrap.dedent("""
        import os, signal
        from conformance.probes import fuse as fusefs
        with fusefs.fuse_filesystem() as faults:
            held = open(os.path.join(faults.area, "held"), "wb")
            print(faults.server.mountpoint, faults.server.process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    mountpoint, pid = child.stdout.readline().split()
    server = os.pidfd_open(int(pid))  # the server outlives its parent; its exit is the event to wait for
    try:
        assert child.wait() == -signal.SIGKILL
        select.select([server], [], [])  # readable once the server has exited, after unmounting
    finally:
        os.close(server)
    assert not fusefs.mounted(mountpoint)
    assert not os.path.exists(mountpoint)


# --- the suite over destinations whose I/O pyfakefs cannot see ----------------------------------------------


@pytest.mark.parametrize("spec", [SQLITE, GO_FIXED14])
def test_c_io_and_standalone_destinations_get_fault_verdicts_with_evidence(tmp_path: Path, spec: str,
                                                                         mounts_here: dict[str, str]) -> None:
    """The SQLite example and our fixed Go connector pass every fault clause (not "not checked")."""
    if spec == GO_FIXED14:
        build("fixed14")
    run = run_suite(tmp_path, spec, args=TARGETS, env=mounts_here)
    verdicts = run.verdicts(spec)
    assert {c: verdicts[c] for c in FAULT_CLAUSES} == dict.fromkeys(FAULT_CLAUSES, "passed"), dump(run, spec)
    assert run.ret == 0, dump(run, spec)


@pytest.mark.parametrize("spec,failing", [
    *((f"tests.zoo.sqlite_faults:{name}", ("fault.disk-full", "fault.io-error")) for name in SQLITE_BUGS),
    ("tests.zoo.go_faults:go_inplace", ("fault.disk-full", "fault.io-error")),
    ("tests.zoo.go_faults:go_overcounts", ("fault.disk-full", "fault.io-error")),
    ("tests.zoo.go_faults:go_dropsfsync", ("fault.io-error",)),  # no fsync fails on a full disk
])
def test_held_out_fault_bugs_are_caught_through_the_filesystem(tmp_path: Path, spec: str, failing: tuple[str, ...],
                                                               mounts_here: dict[str, str]) -> None:
    """A swallowed fsync error, a partial value or half-written commit left by a full disk, a miscount after EIO, in
    C I/O (SQLite) or another process (Go): the clause fails, found under the FUSE injector."""
    if spec.startswith("tests.zoo.go_faults:"):
        build("fixed14-" + spec.split(":go_")[1])
    run = run_suite(tmp_path, spec, args=TARGETS[:2], env=mounts_here)
    verdicts = run.verdicts(spec)
    assert {c for c in TARGETS_CLAUSES if verdicts[c] == "failed"} == set(failing), dump(run, spec)
    assert "with conformance.probes.fuse.fuse_filesystem() as faults:" in run.output  # the replay names the injector
    assert run.ret == 1


def test_without_fuse_the_clauses_say_why_and_strict_fails(tmp_path: Path, mounts_here: dict[str, str]) -> None:
    """With FUSE unavailable (disabled here), each fault clause is "not checked: needs FUSE (<reason>)" on one line,
    and --conformance-strict fails the run on them."""
    run = run_suite(tmp_path, SQLITE, args=(*TARGETS, "--conformance-strict"),
                    env={**mounts_here, "CONFORMANCE_FUSE": "off"})
    why = reasons(run, SQLITE)
    for clause in ("fault.disk-full", "fault.io-error", "open.unwritable"):
        assert run.verdicts(SQLITE)[clause] == "not checked", dump(run, SQLITE)
        assert "needs FUSE (disabled by CONFORMANCE_FUSE=off)" in why[clause] and "\n" not in why[clause], why
    assert run.ret != 0 and "--conformance-strict" in run.output
