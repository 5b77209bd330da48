"""Applies a zoo variant's unified diff (tests/go/zoo/*.patch) to a copy of its base connector's files with
`git apply`, for `go build -overlay`: a variant is its base plus a few changed lines, so the patch is all a reader
needs to see its bug."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

__all__ = ["PatchError", "apply"]


class PatchError(ValueError):
    """A patch that no longer fits its base: `git apply` refused it (its message names the file and line)."""


def _git(args: list[str], cwd: pathlib.Path) -> str:
    # Its own repository, so no enclosing one (the checkout) changes how paths are read.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise PatchError(f"git {' '.join(args)} in a copy of the base: {done.stderr.strip()}")
    return done.stdout


def apply(patch: pathlib.Path, base: pathlib.Path) -> dict[str, str]:
    """{path in base: its patched text} for every file the patch changes or adds. `git apply` places a hunk by its
    context (line numbers may be off) and refuses one whose context is gone or a new file the base already has."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp, "base")
        shutil.copytree(base, copy, ignore=shutil.ignore_patterns(".git"))
        _git(["init", "-q"], copy)
        changed = [line.split("\t", 2)[2] for line in _git(["apply", "--numstat", str(patch)], copy).splitlines()]
        _git(["apply", "--whitespace=nowarn", str(patch)], copy)
        return {path: (copy / path).read_text() for path in changed}
