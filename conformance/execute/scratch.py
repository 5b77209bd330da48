"""Where examples keep their temporary directories: under one root per run, which the run removes at its end, so a
destination that kills the process holding an example's directory (an xdist worker) leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile

__all__ = ["open_root", "use_root", "root", "scratch_dir", "remove_root"]

# This process's root: set once per run (by the controller, or handed to a worker), None outside a run.
_root: str | None = None


def open_root() -> str:
    """Makes the run's root in the temp directory and uses it in this process."""
    global _root
    _root = tempfile.mkdtemp(prefix="conformance-run-")
    return _root


def use_root(root: str) -> None:
    """Uses the root another process (the xdist controller) made."""
    global _root
    _root = root


def root() -> str | None:
    """This process's root, None outside a run."""
    return _root


def scratch_dir(prefix: str) -> str:
    """A new directory under the run's root (in the temp directory outside a run), also under a fake filesystem."""
    if _root is None:
        return tempfile.mkdtemp(prefix=prefix)
    os.makedirs(_root, exist_ok=True)  # a fake filesystem starts without it
    return tempfile.mkdtemp(prefix=prefix, dir=_root)


def remove_root() -> None:
    """Removes the run's root with whatever a killed process left in it."""
    global _root
    if _root is not None:
        shutil.rmtree(_root, ignore_errors=True)
        _root = None
