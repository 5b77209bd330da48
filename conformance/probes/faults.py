"""The fault injector: a pyfakefs filesystem per example, a disk that fills up, and OSErrors at chosen calls.

pyfakefs replaces the `os`, `io`, `shutil` and `pathlib` functions that Python code calls; a destination
whose I/O goes through C (sqlite3, a native client library) or another process bypasses it, so every
fault check first verifies that the destination's files landed in the fake filesystem.
"""

import builtins
import errno
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from pyfakefs import fake_file
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_filesystem_unittest import Patcher

__all__ = ["AFTER_A_STICKY_FAULT", "FaultInjector", "active", "swallowed_fsync", "fake_filesystem", "INJECTION_POINTS",
           "INJECTED_ERRORS", "Unsynced"]

# Where an OSError can be injected, and the functions each point covers.
INJECTION_POINTS: dict[str, tuple[str, ...]] = {
    "open": ("os.open", "io.open"),
    "write": ("os.write", "file.write"),
    "rename": ("os.rename", "os.replace"),
    "fsync": ("os.fsync", "os.fdatasync"),
    "remove": ("os.unlink", "os.remove"),
}
INJECTED_ERRORS = {"EIO": errno.EIO, "EACCES": errno.EACCES}
# What else fails once a device has gone bad (a sticky fault): every call that changes the filesystem.
AFTER_A_STICKY_FAULT: tuple[str, ...] = ("os.link", "os.symlink", "os.mkdir", "os.rmdir", "os.truncate", "os.ftruncate")


def swallowed_fsync(point: str, fired: bool, returned_whole: bool, kept: Callable[[], Sequence[str]]) -> str | None:
    """Why a write that reported every record written after an fsync failed inside it breaks the contract (None
    when it did not): a failed fsync may have dropped the data it was to make durable (retrying it proves nothing),
    so the error must surface as WriteError counting the records before the one whose durability failed. `kept`:
    gives the files whose fsync failed that the destination keeps (conformance.probes.durability), asked only when
    the rest holds; a failed fsync of a file it discarded (a temporary file unlinked, never renamed into place) lost
    nothing it keeps (contract v1.4)."""
    if point != "fsync" or not fired or not returned_whole:
        return None
    files = kept()
    if not files:
        return None
    return (f"an fsync failed inside the batch on {', '.join(map(repr, files))}, which the destination keeps, yet "
            "write() reported every record written: a failed fsync must surface as WriteError counting the records "
            "before the one whose durability failed (retrying or ignoring it loses data on a real disk, as "
            "PostgreSQL's fsyncgate showed; only a file the destination discards, unlinked and never renamed into "
            "place, may fail its fsync unreported)")


class Unsynced(NamedTuple):
    """A file an fsync failed on: its path then, where it is linked now (absolute paths; empty: discarded, unlinked
    everywhere; None: not known, so counted as kept), and whether the batch created it (after the plan was set)."""

    path: str
    names: tuple[str, ...] | None
    created: bool = False


class FaultInjector:
    """Controls the fake filesystem of one example: disk size and injected errors."""

    def __init__(self, patcher: Patcher) -> None:
        self.patcher = patcher
        assert patcher.fs is not None, "a FaultInjector needs a started Patcher"
        self.fs: FakeFilesystem = patcher.fs
        self.paused = 0  # real_disk() blocks entered: the real filesystem is in use meanwhile
        self.cut_code: int | None = None  # cut_at(): the errno the disk now fails with instead of ENOSPC
        self._undo: list[Callable[[], None]] = []
        self.injected = 0  # how many errors were raised so far
        self.calls: dict[str, int] = {}  # calls seen per injection point since count() or inject()
        self.disk_full = 0  # how many times the disk refused a write for lack of room
        self.broken: int | None = None  # after a sticky fault: the errno every changing call now fails with
        self.shortened = 0  # how many os.write calls wrote less than they were given (short_writes)
        # The files "remove" counts: those that held data when the batch started (keys being deleted), not the
        # destination's own temporary files, whose cleanup is not a record's change.
        self.removable: set[bytes] | None = None
        self.filling = False  # fill_disk's short writes are in place
        # The files a failed fsync was called on since the last inject() or count(): the path then, and the fake
        # file itself (None: not found), followed through renames and unlinks by identity.
        self._unsynced: list[tuple[str, Any]] = []
        self._before: dict[int, Any] = {}  # what the fake filesystem held when the plan was set, by id (kept alive)

    def stored_bytes(self) -> int:
        """What the files of the fake filesystem hold, as fill_disk measures it."""
        held = sum(os.lstat(os.path.join(root, name)).st_size for root, _, files in os.walk("/") for name in files)
        _, used, _ = self.fs.get_disk_usage()
        return max(held, used)

    def count(self) -> None:
        """Counts the calls at every injection point (without failing any), for a dry run."""
        for point in INJECTION_POINTS:
            self.inject(point, 0, 0)

    def fill_disk(self, free_bytes: int) -> None:
        """Leaves exactly `free_bytes` free. As on a real disk, an os.write that needs more than is left writes
        what fits and returns that short count; the next one fails with ENOSPC."""
        # pyfakefs accounts raw-fd writes late, so measure what the files hold as well.
        self.fs.set_disk_usage(self.stored_bytes() + free_bytes)
        if not self.filling:
            self.filling = True
            self._patch(self.patcher.fake_modules["os"], "write", self._filling, "os.write")
        if "change_disk_usage" not in vars(self.fs):
            original = self.fs.change_disk_usage

            def counting(*args: Any, **kwargs: Any) -> Any:
                try:
                    return original(*args, **kwargs)
                except OSError as err:
                    if err.errno == errno.ENOSPC and self.cut_code is not None:
                        self.injected += 1
                        raise OSError(self.cut_code, f"{os.strerror(self.cut_code)} (injected once the batch had "
                                      "stored the drawn number of bytes)") from None
                    if err.errno == errno.ENOSPC:
                        self.disk_full += 1
                    raise

            self.fs.change_disk_usage = counting  # type: ignore[method-assign]  # this filesystem's own, counting

    def unlimited_disk(self) -> None:
        """Gives the disk back its room (for teardown and read-back), and ends a cut_at()."""
        self.fs.set_disk_usage(2**40)
        self.cut_code = None

    @contextmanager
    def real_disk(self) -> Iterator[None]:
        """The real filesystem while the block runs (nested blocks keep it so until the outermost ends)."""
        if self.paused:
            self.paused += 1
            try:
                yield
            finally:
                self.paused -= 1
            return
        self.patcher.pause()
        self.paused = 1
        try:
            yield
        finally:
            self.paused = 0
            self.patcher.resume()

    def exists_on_real_disk(self, path: str) -> bool:
        """Whether `path` exists on the real disk, outside the fake filesystem."""
        with self.real_disk():
            return os.path.lexists(path)

    def cut_at(self, stored: int, code: int) -> None:
        """The device fails with `code` once `stored` more bytes are stored: the os.write crossing that point
        writes what fits and returns the short count, the next call that needs room fails (an EIO inside the
        single call a destination stores a whole batch with, as a failing disk gives it)."""
        self.cut_code = code
        self.fill_disk(stored)

    def inject(self, point: str, code: int, nth: int, sticky: bool = False) -> None:
        """Makes the nth call (1-based) of the functions at `point` raise OSError(code); nth=0 only counts.
        `sticky`: from then on, as on a device gone bad, every call at any point (but an open of an existing file
        that neither creates nor truncates it) and every other call that changes the filesystem
        (AFTER_A_STICKY_FAULT) fails with the same code, until clear()."""
        if sticky:
            for other in INJECTION_POINTS:
                if other != point:
                    self.inject(other, 0, 0)
            for label in AFTER_A_STICKY_FAULT:
                self._patch(self.patcher.fake_modules["os"], label.split(".")[1], self._failing_once_broken, label)
        self.calls[point] = 0
        self._unsynced = []
        self._before = {id(held): held for _, held in self._linked()}

        def failing(original: Callable[..., Any], label: str) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if point == "remove" and self.removable is not None and self.broken is None \
                        and _absolute(args[0] if args else kwargs.get("path")) not in self.removable:
                    return original(*args, **kwargs)
                self.calls[point] += 1
                if self.broken is not None and not (point == "open" and self._opens_only(label, args, kwargs)):
                    self.injected += 1
                    self._note_fsync(point, args, kwargs)
                    raise OSError(self.broken, f"{os.strerror(self.broken)} (the device failed earlier; {label})")
                if self.calls[point] == nth:
                    self.injected += 1
                    self._note_fsync(point, args, kwargs)
                    if sticky:
                        self.broken = code
                    raise OSError(code, f"{os.strerror(code)} (injected at {label})")
                return original(*args, **kwargs)

            return wrapper

        fake_os = self.patcher.fake_modules["os"]
        fake_io = self.patcher.fake_modules["io"]
        for label in INJECTION_POINTS[point]:
            owner_name, attr = label.split(".")
            if owner_name == "file":  # file objects resolve write() through _write_wrapper(name)
                def wrap_writes(original: Callable[..., Any], label: str) -> Callable[..., Any]:
                    def write_wrapper(file: Any, name: str) -> Callable[..., Any]:
                        return failing(original(file, name), label)

                    return write_wrapper

                self._patch(fake_file.FakeFileWrapper, "_write_wrapper", wrap_writes, label)
            else:
                owner = fake_os if owner_name == "os" else fake_io
                if hasattr(owner, attr):
                    self._patch(owner, attr, failing, label)
                if label == "io.open":  # builtins.open was bound to the fake io.open when patching began
                    self._patch(builtins, "open", failing, label)

    def _note_fsync(self, point: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Records the file a failing fsync was called on (a descriptor, or an object with fileno())."""
        if point != "fsync":
            return
        target = args[0] if args else kwargs.get("fd")
        try:
            fd = target if isinstance(target, int) else target.fileno()  # type: ignore[union-attr]
            wrapper = self.fs.get_open_file(fd)
            found = wrapper.get_object()
            path = str(getattr(found, "path", "") or "")
        except Exception:  # pyfakefs raises OSError for an unknown descriptor; anything odd: not identified
            found, path = None, ""
        self._unsynced.append((path, found))

    def unsynced(self) -> list[Unsynced]:
        """The files a failed fsync was called on in the batch, each with the names it is linked under now."""
        if not self._unsynced:
            return []
        linked: dict[int, list[str]] = {}
        for path, held in self._linked():
            linked.setdefault(id(held), []).append(path)
        return [Unsynced(path, None if found is None else tuple(linked.get(id(found), ())),
                         found is not None and id(found) not in self._before) for path, found in self._unsynced]

    def _linked(self) -> Iterator[tuple[str, Any]]:
        """Every name in the fake filesystem with the file or directory it links to."""
        for root, dirs, files in os.walk("/"):
            for name in (*dirs, *files):
                path = os.path.join(root, name)
                try:
                    yield path, self.fs.resolve(path, follow_symlinks=False)
                except OSError:
                    continue

    def files_before_the_batch(self, directory: str | None) -> None:
        """Lets the "remove" point count only removals of the files now under `directory`."""
        if directory is None:
            return
        self.removable = {_absolute(os.path.join(root, name))
                          for root, _, files in os.walk(directory) for name in files}

    def _opens_only(self, label: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether an open call changes nothing on the device (an existing file, neither created nor truncated): a
        device gone bad still opens what it holds, so a destination's reopen after a failure gets as far as the
        first call that writes (and its error path runs, descriptor cleanup included)."""
        path = args[0] if args else kwargs.get("file", kwargs.get("path"))
        if kwargs.get("dir_fd") is not None or not isinstance(path, (str, bytes, os.PathLike)):
            return False  # relative to a descriptor, or a descriptor itself: fail it, as before
        try:
            if not self.fs.isfile(os.fspath(path)):
                return False  # would create a file (or open a directory)
        except (OSError, TypeError):
            return False
        if label == "os.open":
            flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
            return isinstance(flags, int) and not flags & (os.O_TRUNC | os.O_EXCL)
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return isinstance(mode, str) and not set(mode) & {"w", "x"}

    def _failing_once_broken(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.broken is not None:
                self.injected += 1
                raise OSError(self.broken, f"{os.strerror(self.broken)} (the device failed earlier; {label})")
            return original(*args, **kwargs)

        return wrapper

    def _filling(self, original: Callable[..., Any], label: str) -> Callable[..., Any]:
        def wrapper(fd: int, data: Any, *args: Any, **kwargs: Any) -> Any:
            _, _, free = self.fs.get_disk_usage()
            view = memoryview(data).cast("B")
            if 0 < free < len(view):
                self.shortened += 1
                return original(fd, view[:free], *args, **kwargs)
            return original(fd, data, *args, **kwargs)

        return wrapper

    def short_writes(self, limit: int) -> None:
        """Makes os.write write at most `limit` bytes per call and return that count, as the kernel may (a
        signal, a pipe, a nearly full disk); a destination must call again for the rest."""
        def shortening(original: Callable[..., Any], label: str) -> Callable[..., Any]:
            def wrapper(fd: int, data: Any, *args: Any, **kwargs: Any) -> Any:
                view = memoryview(data).cast("B")
                if len(view) > limit:
                    self.shortened += 1
                    return original(fd, view[:limit], *args, **kwargs)
                return original(fd, data, *args, **kwargs)

            return wrapper

        self._patch(self.patcher.fake_modules["os"], "write", shortening, "os.write")

    def _patch(self, owner: Any, attr: str, wrap: Callable[..., Any], label: str) -> None:
        original = getattr(owner, attr)
        had_own = attr in vars(owner)
        setattr(owner, attr, wrap(original, label))

        def undo() -> None:
            if had_own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)

        self._undo.append(undo)

    def clear(self) -> None:
        """Stops injecting errors (a device gone bad works again)."""
        while self._undo:
            self._undo.pop()()
        self.broken = None
        self.filling = False
        if self.cut_code is not None:
            self.unlimited_disk()


def _absolute(path: Any) -> bytes:
    """A path argument as absolute bytes, for comparing paths however the destination spelled them."""
    try:
        return os.fsencode(os.path.abspath(os.fspath(path)))
    except TypeError:
        return b""  # a descriptor (dir_fd) or something odd: never one of the files


@contextmanager
def fake_filesystem() -> Iterator[FaultInjector]:
    """A fresh fake filesystem for one example (permissions enforced even for root), with the places a stray
    write lands in existing: the temp dir, $HOME and the working directory."""
    home, cwd = os.path.expanduser("~"), os.getcwd()
    with Patcher(allow_root_user=False) as patcher:
        for place in (tempfile.gettempdir(), home, cwd):
            os.makedirs(place, exist_ok=True)
        injector = FaultInjector(patcher)
        _ACTIVE.append(injector)
        try:
            yield injector
        finally:
            _ACTIVE.remove(injector)
            injector.clear()


_ACTIVE: list[FaultInjector] = []  # the fake filesystems entered, innermost last


def active() -> FaultInjector | None:
    """The fake filesystem the code runs in now: the innermost one entered, unless it is paused (real_disk())."""
    if _ACTIVE and not _ACTIVE[-1].paused:
        return _ACTIVE[-1]
    return None
