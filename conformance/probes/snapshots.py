"""Filesystem snapshots: every entry under a root, and the paths two snapshots differ in."""

import os
import stat
from collections.abc import Mapping
from typing import Any

__all__ = ["Snapshot", "tree_snapshot", "changed_paths"]

# tree_snapshot's: path -> (kind, content of a regular file, mtime, mode)
Snapshot = dict[str, tuple[str, bytes | None, float, int]]


def tree_snapshot(root: str) -> Snapshot:
    """Every entry under `root`: kind, content of regular files, mtime and mode; for no-side-effect checks."""
    snapshot: Snapshot = {}
    if os.path.isdir(root):  # the root's own mtime moves when something is created and removed in it
        st = os.lstat(root)
        snapshot[root] = ("dir", None, st.st_mtime, st.st_mode)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                snapshot[path] = ("link", os.readlink(path).encode(), st.st_mtime, st.st_mode)
            elif stat.S_ISDIR(st.st_mode):
                snapshot[path] = ("dir", None, st.st_mtime, st.st_mode)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    snapshot[path] = ("file", f.read(), st.st_mtime, st.st_mode)
            else:
                snapshot[path] = ("other", None, st.st_mtime, st.st_mode)
    return snapshot


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any], tmp: str = "") -> list[str]:
    """Paths created, changed or removed between two snapshots, with `tmp` shown as {tmp}."""
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    return [p.replace(tmp, "{tmp}") if tmp else p for p in changed]
