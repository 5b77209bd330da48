"""What `Specify` answers for a connector executable, known once per executable (same files, sizes, mtimes,
environment), and where an executable is."""

import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.conduit.plugin_process import environment_key
from harness.config import Parameter

__all__ = ["Specification", "SPECIFICATIONS", "SPECIFICATIONS_LOCK", "executable_identity", "executable_path"]


@dataclass(frozen=True)
class Specification:
    """What `Specify` answered: the connector's name, version, author and destination parameters."""

    name: str
    version: str
    author: str
    summary: str = ""
    description: str = ""
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name} {self.version} by {self.author}"


SPECIFICATIONS: dict[tuple[Any, ...], "Specification"] = {}
SPECIFICATIONS_LOCK = threading.Lock()


def executable_identity(argv: Sequence[str], env: Mapping[str, str] | None) -> tuple[Any, ...] | None:
    """What `Specify`'s answer depends on: the command, each file it names (path, size, mtime, inode) and the
    environment; None when the executable cannot be found (then nothing is cached)."""
    files = []
    for index, arg in enumerate(argv):
        path = (arg if os.sep in arg else shutil.which(arg)) if index == 0 else arg
        try:
            status = os.stat(path) if path else None
        except (OSError, ValueError):
            status = None
        if status is None or not os.path.isfile(path or ""):
            if index == 0:
                return None
            continue
        files.append((index, os.path.realpath(path or ""), status.st_size, status.st_mtime_ns, status.st_ino))
    return tuple(argv), tuple(files), environment_key(env)


def executable_path(argv: Sequence[str]) -> str | None:
    """The path of the command's executable (looked up on PATH when it names no directory), or None."""
    return argv[0] if os.sep in argv[0] else shutil.which(argv[0])
