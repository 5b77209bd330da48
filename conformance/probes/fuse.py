"""The FUSE fault filesystem: a passthrough mount, served by a Go program in its own process, that injects faults.

It reaches what pyfakefs cannot: C code in this process (sqlite3) and connectors running in other processes. The
Go sources ship in conformance/probes/fusefs/; the first use builds them with `go build` into a cache keyed by their
hash. One mount per process, made on first use; each example gets a fresh directory in it, which the suite's
temporary directories are made under (conformance.execute.scratch), and the mount's counters and plan are reset. The
server unmounts when its stdin ends, so a controller killed outright leaves no mount behind.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import functools
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conformance.execute import scratch
from conformance.probes.faults import Unsynced

__all__ = ["FuseInjector", "FuseUnavailable", "SOURCE_DIR", "binary", "fuse_filesystem", "mounted", "unavailable",
           "unmount_all"]

SOURCE_DIR = pathlib.Path(__file__).resolve().parent / "fusefs"
BUILD_TIMEOUT = 900  # seconds: a cold build downloads go-fuse from the module proxy and compiles it
ANSWER_TIMEOUT = 60  # seconds a command's answer may take (the server answers at once unless it is gone)


class FuseUnavailable(RuntimeError):
    """The FUSE filesystem cannot be used here; the message is the reason, in a few words."""


def _cache_dir() -> pathlib.Path:
    """Where built servers are kept: $CONFORMANCE_FUSE_CACHE or ~/.cache/conformance-fuse."""
    configured = os.environ.get("CONFORMANCE_FUSE_CACHE")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".cache" / "conformance-fuse"


def _build_env() -> dict[str, str]:
    """The caller's environment with -mod=mod, so go.sum gaps are filled from the module proxy."""
    env = dict(os.environ)
    flags = [flag for flag in env.get("GOFLAGS", "").split() if not flag.startswith("-mod=")]
    env["GOFLAGS"] = " ".join([*flags, "-mod=mod"])
    return env


def _source_hash(go: str) -> str:
    """A digest of the server's sources and the Go toolchain: equal digests build equal binaries."""
    version = subprocess.run([go, "env", "GOVERSION", "GOOS", "GOARCH"], capture_output=True, text=True,
                             env=_build_env(), timeout=120)
    digest = hashlib.sha256(version.stdout.encode())
    for path in sorted(p for p in SOURCE_DIR.iterdir() if p.suffix == ".go" or p.name in ("go.mod", "go.sum")):
        digest.update(f"{path.name}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:24]


@functools.cache
def binary() -> pathlib.Path:
    """The built server (built now unless the cache holds one for these sources); FuseUnavailable if it cannot be."""
    go = shutil.which("go")
    if go is None:
        raise FuseUnavailable("no Go toolchain (`go`) to build the FUSE filesystem")
    if not (SOURCE_DIR / "main.go").is_file():
        raise FuseUnavailable(f"the FUSE filesystem's sources are missing ({SOURCE_DIR})")
    directory = _cache_dir()
    built = directory / f"fusefs-{_source_hash(go)}"
    if built.is_file():
        return built
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{built.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait, then use theirs
        if built.is_file():
            return built
        temp = directory / f".{built.name}.{os.getpid()}.tmp"
        try:
            result = subprocess.run([go, "build", "-trimpath", "-buildvcs=false", "-o", str(temp), "."],
                                    cwd=SOURCE_DIR, capture_output=True, text=True, env=_build_env(),
                                    timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise FuseUnavailable(f"building the FUSE filesystem took over {BUILD_TIMEOUT} s") from exc
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            raise FuseUnavailable(f"building the FUSE filesystem failed: {lines[-1]}")
        os.replace(temp, built)
    return built


def _mounts() -> str:
    """The mount table."""
    try:
        return pathlib.Path("/proc/mounts").read_text()
    except OSError:
        return ""


def mounted(path: str) -> bool:
    """Whether `path` is a mount point now."""
    return any(line.split()[1] == path for line in _mounts().splitlines() if len(line.split()) > 1)


class _Server:
    """The Go server of this process' mount, and the JSON lines it is driven with."""

    def __init__(self) -> None:
        # $CONFORMANCE_FUSE_DIR: where the mount point and its backing directory go (the temp dir by default).
        place = os.environ.get("CONFORMANCE_FUSE_DIR") or None
        self.mountpoint = tempfile.mkdtemp(prefix="conformance-fuse-mnt-", dir=place)
        self.backing = tempfile.mkdtemp(prefix="conformance-fuse-data-", dir=place)
        self.lock = threading.Lock()
        self.examples = 0
        try:
            self.process = subprocess.Popen(
                [str(binary()), "-backing", self.backing, "-mount", self.mountpoint, "-cleanup"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as err:
            self._remove_dirs()
            raise FuseUnavailable(f"the FUSE filesystem did not start: {err}") from err
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if not ready.strip().startswith("{"):
            assert self.process.stderr is not None
            self.process.wait(timeout=ANSWER_TIMEOUT)
            lines = self.process.stderr.read().strip().splitlines() or [f"exit {self.process.returncode}"]
            self._remove_dirs()
            raise FuseUnavailable(f"mounting failed: {lines[-1].removeprefix('fusefs: ')}")

    def command(self, **fields: Any) -> dict[str, Any]:
        """Sends one command and returns the state the server answers with."""
        assert self.process.stdin is not None and self.process.stdout is not None
        with self.lock:
            self.process.stdin.write(json.dumps(fields) + "\n")
            self.process.stdin.flush()
            answer = json.loads(self.process.stdout.readline() or '{"error": "the FUSE server exited"}')
        if "error" in answer:
            raise RuntimeError(f"the FUSE filesystem refused {fields}: {answer['error']}")
        state: dict[str, Any] = answer["state"]
        return state

    def stop(self) -> None:
        """Unmounts (lazily if something still holds a file in it) and removes the mount's directories."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()  # the server unmounts when its stdin ends
                self.process.wait(timeout=ANSWER_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if mounted(self.mountpoint):  # the server died before it could unmount
            subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
        self._remove_dirs()

    def _remove_dirs(self) -> None:
        if not mounted(self.mountpoint):
            shutil.rmtree(self.mountpoint, ignore_errors=True)
        shutil.rmtree(self.backing, ignore_errors=True)


_server: _Server | None = None
_failure: str | None = None  # why the server could not be started in this process, once it failed


def unavailable() -> str | None:
    """Why FUSE cannot be used here (None when it can): the platform, /dev/fuse, the Go toolchain, the mount."""
    if os.environ.get("CONFORMANCE_FUSE", "").lower() in ("0", "off", "no"):
        return "disabled by CONFORMANCE_FUSE=" + os.environ["CONFORMANCE_FUSE"]
    if not sys.platform.startswith("linux"):
        return f"FUSE is used on Linux only, this is {sys.platform}"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        _start()
    except FuseUnavailable as err:
        return str(err)
    return None


def _start() -> _Server:
    """This process' server, started on first use."""
    global _server, _failure
    if _failure is not None:
        raise FuseUnavailable(_failure)
    if _server is None or _server.process.poll() is not None:
        try:
            _server = _Server()
        except FuseUnavailable as err:
            _failure = str(err)
            raise
        atexit.register(unmount_all)
    return _server


def unmount_all() -> None:
    """Stops this process' server and removes its mount (at exit, and for tests)."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None


class FuseInjector:
    """The plan interface of conformance.probes.faults.FaultInjector, carried out by the FUSE filesystem."""

    bypass_reason = ("not checked: on the FUSE mount, configure, open or a plain write failed that works on the "
                     "real disk")

    def __init__(self, server: _Server, area: str) -> None:
        self.server = server
        self.area = area  # this example's directory in the mount
        self.state: dict[str, Any] = server.command(cmd="reset")
        self.paused = 0

    def _send(self, **fields: Any) -> None:
        self.state = self.server.command(**fields)

    def _refresh(self) -> dict[str, Any]:
        self.state = self.server.command(cmd="state")
        return self.state

    @property
    def calls(self) -> dict[str, int]:
        """Calls seen per injection point since count() or inject()."""
        return dict(self._refresh()["calls"])

    @property
    def injected(self) -> int:
        """How many calls failed because of the plan."""
        return int(self._refresh()["injected"])

    @property
    def disk_full(self) -> int:
        """How many writes the full disk refused."""
        return int(self._refresh()["disk_full"])

    @property
    def shortened(self) -> int:
        """How many writes stored less than they were given."""
        return int(self._refresh()["shortened"])

    @property
    def fired(self) -> list[dict[str, Any]]:
        """The calls that failed because of the plan: op, its call number (0: a write at the full disk), path, errno."""
        return list(self._refresh()["fired"])

    def fired_text(self) -> str:
        """The calls that failed, as a replay comment shows them."""
        return "; ".join(f"{errno.errorcode.get(f['errno'], f['errno'])} at {f['op']}"
                         f"{' call ' + str(f['n']) if f['n'] else ''} on {f['path']!r}" for f in self.fired[:3])

    def unsynced(self) -> list[Unsynced]:
        """The files a failed fsync was called on in the batch, each with the names it is linked under now (found
        by inode on the backing directory; the server holds each open, so its inode number is not reused)."""
        found = self.server.command(cmd="unsynced").get("unsynced") or []
        if not found:
            return []
        backing = self._backing(self.area)
        linked: dict[tuple[int, int], list[str]] = {}
        for root, dirs, files in os.walk(backing):
            for name in (*dirs, *files):
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                mounted_at = os.path.join(self.server.mountpoint, os.path.relpath(os.path.join(root, name),
                                                                                  self.server.backing))
                linked.setdefault((st.st_dev, st.st_ino), []).append(mounted_at)
        return [Unsynced(os.path.join(self.server.mountpoint, u["path"]),
                         tuple(linked.get((u["dev"], u["ino"]), ())) if u["ino"] else None, bool(u.get("created")))
                for u in found]

    def stored_bytes(self) -> int:
        """What the files of this example hold (read on the backing directory, so no call is counted)."""
        return sum(os.lstat(os.path.join(root, name)).st_size
                   for root, _, files in os.walk(self._backing(self.area)) for name in files)

    def _backing(self, path: str) -> str:
        return os.path.join(self.server.backing, os.path.relpath(path, self.server.mountpoint))

    def count(self) -> None:
        """Counts the calls at every injection point (failing none), for a dry run."""
        self._send(cmd="inject", op="", nth=0, errno=0)

    def fill_disk(self, free_bytes: int) -> None:
        """Leaves `free_bytes` free: a write that needs more stores what fits (a short count), the next fails ENOSPC."""
        self._send(cmd="limit", free=free_bytes, errno=errno.ENOSPC)

    def unlimited_disk(self) -> None:
        """Gives the disk back its room."""
        self._send(cmd="unlimited")

    def cut_at(self, stored: int, code: int) -> None:
        """The device fails with `code` once `stored` more bytes are stored (a short write first)."""
        self._send(cmd="limit", free=stored, errno=code)

    def inject(self, point: str, code: int, nth: int, sticky: bool = False) -> None:
        """Makes the nth call at `point` fail with `code`; sticky: every changing call fails from then on."""
        self._send(cmd="inject", op=point, nth=nth, errno=code, sticky=sticky)

    def short_writes(self, limit: int) -> None:
        """Makes a write store at most `limit` bytes and return that count."""
        self._send(cmd="shortwrites", limit=limit)

    def files_before_the_batch(self, directory: str | None) -> None:
        """Lets "remove" count only removals of the files now under `directory`."""
        if directory is None:
            return
        self._send(cmd="removable", paths=[os.path.relpath(os.path.join(root, name), self.server.backing)
                                           for root, _, files in os.walk(self._backing(directory)) for name in files])

    def clear(self) -> None:
        """Stops injecting errors and gives the disk its room back."""
        self._send(cmd="clear")

    @contextmanager
    def real_disk(self) -> Iterator[None]:
        """New scratch directories on the real disk, outside the mount, while the block runs."""
        saved = scratch.root()
        assert saved is not None, "real_disk() is used inside fuse_filesystem(), which sets the scratch root"
        self.paused += 1
        try:
            scratch.use_root(_OUTSIDE[-1] if _OUTSIDE else tempfile.gettempdir())
            yield
        finally:
            self.paused -= 1
            scratch.use_root(saved)

    def exists_on_real_disk(self, path: str) -> bool:
        """Whether `path` escaped the mount: nothing under it does."""
        inside = os.path.commonpath([os.path.abspath(path), self.server.mountpoint]) == self.server.mountpoint
        return not inside and os.path.lexists(path)


_OUTSIDE: list[str] = []  # the scratch roots in use outside the mount, innermost last


@contextmanager
def fuse_filesystem() -> Iterator[FuseInjector]:
    """A fresh directory on the FUSE mount for one example, under which the example's scratch directories are made;
    FuseUnavailable (with the reason) where FUSE cannot be used."""
    reason = unavailable()
    if reason is not None:
        raise FuseUnavailable(reason)
    server = _start()
    server.examples += 1
    area = os.path.join(server.mountpoint, f"example-{os.getpid()}-{server.examples}")
    os.mkdir(area)
    outside = scratch.root()
    _OUTSIDE.append(outside or tempfile.gettempdir())
    scratch.use_root(area)
    injector = FuseInjector(server, area)
    try:
        yield injector
    finally:
        _OUTSIDE.pop()
        if outside is not None:
            scratch.use_root(outside)
        else:
            scratch.remove_root()  # leaves _root unset, as it was; the area itself is removed just below
        try:
            server.command(cmd="reset")
        finally:
            shutil.rmtree(injector._backing(area), ignore_errors=True)
