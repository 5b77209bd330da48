"""The fault injector: a pyfakefs filesystem per example, a disk that fills up, and OSErrors at chosen calls.

pyfakefs replaces the `os`, `io`, `shutil` and `pathlib` functions that Python code calls; a destination
whose I/O goes through C (sqlite3, a native client library) or another process bypasses it, so every
fault check first verifies that the destination's files landed in the fake filesystem.
"""

import builtins
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyfakefs import fake_file
from pyfakefs.fake_filesystem_unittest import Patcher

__all__ = ["FaultInjector", "fake_filesystem", "INJECTION_POINTS", "INJECTED_ERRORS"]

# Where an OSError can be injected, and the functions each point covers.
INJECTION_POINTS: dict[str, tuple[str, ...]] = {
    "open": ("os.open", "io.open"),
    "write": ("os.write", "file.write"),
    "rename": ("os.rename", "os.replace"),
    "fsync": ("os.fsync", "os.fdatasync"),
}
INJECTED_ERRORS = {"EIO": errno.EIO, "EACCES": errno.EACCES}


class FaultInjector:
    """Controls the fake filesystem of one example: disk size and injected errors."""

    def __init__(self, patcher: Patcher) -> None:
        self.patcher = patcher
        self.fs = patcher.fs
        self._undo: list[Callable[[], None]] = []
        self.injected = 0  # how many errors were raised so far
        self.calls: dict[str, int] = {}  # calls seen per injection point since count() or inject()
        self.disk_full = 0  # how many times the disk refused a write for lack of room

    def stored_bytes(self) -> int:
        """What the files of the fake filesystem hold, as fill_disk measures it."""
        held = sum(os.lstat(os.path.join(root, name)).st_size for root, _, files in os.walk("/") for name in files)
        return max(held, self.fs.get_disk_usage().used)

    def count(self) -> None:
        """Counts the calls at every injection point (without failing any), for a dry run."""
        for point in INJECTION_POINTS:
            self.inject(point, 0, 0)

    def fill_disk(self, free_bytes: int) -> None:
        """Leaves exactly `free_bytes` free: the write that needs more fails with ENOSPC."""
        # pyfakefs accounts raw-fd writes late, so measure what the files hold as well.
        self.fs.set_disk_usage(self.stored_bytes() + free_bytes)
        if "change_disk_usage" not in vars(self.fs):
            original = self.fs.change_disk_usage

            def counting(*args: Any, **kwargs: Any) -> Any:
                try:
                    return original(*args, **kwargs)
                except OSError as err:
                    if err.errno == errno.ENOSPC:
                        self.disk_full += 1
                    raise

            self.fs.change_disk_usage = counting

    def unlimited_disk(self) -> None:
        """Gives the disk back its room (for teardown and read-back)."""
        self.fs.set_disk_usage(2**40)

    def exists_on_real_disk(self, path: str) -> bool:
        """Whether `path` exists on the real disk, outside the fake filesystem."""
        self.patcher.pause()
        try:
            return os.path.lexists(path)
        finally:
            self.patcher.resume()

    def inject(self, point: str, code: int, nth: int) -> None:
        """Makes the nth call (1-based) of the functions at `point` raise OSError(code); nth=0 only counts."""
        self.calls[point] = 0

        def failing(original: Callable[..., Any], label: str) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.calls[point] += 1
                if self.calls[point] == nth:
                    self.injected += 1
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
        """Stops injecting errors."""
        while self._undo:
            self._undo.pop()()


@contextmanager
def fake_filesystem() -> Iterator[FaultInjector]:
    """A fresh fake filesystem for one example (permissions enforced even for root), with the places a stray
    write lands in existing: the temp dir, $HOME and the working directory."""
    home, cwd = os.path.expanduser("~"), os.getcwd()
    with Patcher(allow_root_user=False) as patcher:
        for place in (tempfile.gettempdir(), home, cwd):
            os.makedirs(place, exist_ok=True)
        injector = FaultInjector(patcher)
        try:
            yield injector
        finally:
            injector.clear()
