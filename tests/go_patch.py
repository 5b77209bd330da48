"""Applies a zoo variant's unified diff (tests/go/zoo/*.patch) to its base connector's files, for `go build -overlay`:
a variant is its base plus a few changed lines, so the patch is all a reader needs to see its bug."""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass, field

__all__ = ["FilePatch", "apply", "parse"]

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


@dataclass
class FilePatch:
    """One file's part of a patch: its path in the base directory (None for a new file) and its hunks."""

    old: str | None
    new: str
    hunks: list[list[str]] = field(default_factory=list)  # each hunk's body lines, with their ' ', '-', '+' prefix


def _name(header: str) -> str | None:
    """The path a `--- a/x` or `+++ b/x` header names, without its a/ or b/ prefix (None for /dev/null)."""
    path = header[4:].split("\t")[0].strip()
    if path == "/dev/null":
        return None
    return path.split("/", 1)[1] if path.startswith(("a/", "b/")) else path


def parse(text: str, source: str) -> list[FilePatch]:
    """The file patches of a unified diff; free text before the first `---` line (a description) is skipped."""
    files: list[FilePatch] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        hunk = _HUNK.match(line)
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            new = _name(lines[i + 1])
            if new is None:
                raise ValueError(f"{source}: deleting a file ({line}) is not supported")
            files.append(FilePatch(_name(line), new))
            i += 2
        elif hunk:
            if not files:
                raise ValueError(f"{source}:{i + 1}: a hunk before any `--- a/FILE` / `+++ b/FILE` header")
            # The header's counts say where the hunk ends: (-l,s: s lines of the old file; +l,s: of the new).
            old, new_count = (int(n) if n is not None else 1 for n in hunk.groups())
            body: list[str] = []
            i += 1
            while old or new_count:
                if i == len(lines):
                    raise ValueError(f"{source}: the hunk {line!r} ends early")
                # An editor may strip the space of an empty context line.
                text_line = lines[i] or " "
                kind = text_line[0]
                if kind not in " -+" or (kind in " -" and not old) or (kind in " +" and not new_count):
                    raise ValueError(f"{source}:{i + 1}: does not fit the hunk {line!r}: {lines[i]!r}")
                old -= kind in " -"
                new_count -= kind in " +"
                body.append(text_line)
                i += 1
            files[-1].hunks.append(body)
        elif line.startswith("\\"):
            raise ValueError(f"{source}:{i + 1}: a file without a final newline is not supported")
        elif files and line.strip():
            raise ValueError(f"{source}:{i + 1}: neither a file header nor a hunk: {line!r}")
        else:
            i += 1  # the description, or a blank line
    if not files or not all(f.hunks for f in files):
        raise ValueError(f"{source}: no `--- a/FILE` / `+++ b/FILE` header with hunks after it")
    return files


def _find(lines: list[str], block: list[str]) -> list[int]:
    """Where block occurs in lines, as start indexes."""
    return [i for i in range(len(lines) - len(block) + 1) if lines[i:i + len(block)] == block]


def apply(patch: pathlib.Path, base: pathlib.Path) -> dict[str, str]:
    """{path in base: its patched text} for every file the patch changes or adds. A hunk is placed where its context
    and removed lines occur, exactly and only once, so a base edit elsewhere in the file leaves the patch valid and
    one that touches those lines is an error naming the hunk, never a silent misplacement."""
    result: dict[str, str] = {}
    for file in parse(patch.read_text(), str(patch)):
        target = base / file.new
        if file.old is None:
            if target.exists():
                raise ValueError(f"{patch}: adds {file.new}, which {base} already has")
            lines: list[str] = []
        else:
            lines = (base / file.old).read_text().splitlines()
        for number, hunk in enumerate(file.hunks, 1):
            old = [line[1:] for line in hunk if line[0] in " -"]
            new = [line[1:] for line in hunk if line[0] in " +"]
            if not old:
                if lines:
                    raise ValueError(f"{patch}: hunk {number} of {file.new} has no context to place it by")
                lines = new
                continue
            found = _find(lines, old)
            if len(found) != 1:
                where = "is not" if not found else f"is {len(found)} times"
                raise ValueError(f"{patch}: hunk {number} of {file.new} does not apply: its context and removed lines "
                                 f"{where} in {base / (file.old or file.new)}; remake the patch "
                                 "(tests/go/zoo/README.md)")
            lines[found[0]:found[0] + len(old)] = new
        result[file.new] = "\n".join(lines) + "\n"
    return result
