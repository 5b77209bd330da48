"""Clauses open.*: creating the configured directory, keeping what exists, refusing what is not a directory."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import names_path
from conformance.profiles import fraction_of_examples, suite_settings
from conformance.session import Subject, tree_snapshot

NESTED = ["d1", "d2", "d3"]


@pytest.mark.clause("open.creates-directory")
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_open_creates_missing_parents(subject: Subject, depth: int) -> None:
    """open.creates-directory: a directory `depth` levels below an existing one is created by open."""
    with subject.session(directory=lambda tmp: os.path.join(tmp, *NESTED[:depth])) as s:
        s.open_ready()
        if not os.path.isdir(s.directory):
            s.fail(f"open() returned but {s.directory!r} is not a directory")


@pytest.mark.clause("open.keeps-existing")
@pytest.mark.parametrize("depth", [1, 2, 3])
@suite_settings(max_examples=fraction_of_examples(0.4))
@given(files=st.dictionaries(st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,11}", fullmatch=True).filter(
    lambda n: n not in (".", "..")), st.binary(max_size=64), max_size=4))
def test_open_keeps_existing_directory(subject: Subject, depth: int, files: dict[str, bytes]) -> None:
    """open.keeps-existing: an existing directory, its files and a sub-directory are untouched by open."""
    with subject.session(directory=lambda tmp: os.path.join(tmp, *NESTED[:depth])) as s:
        os.makedirs(os.path.join(s.directory, "sub"))
        s.setup(f"os.makedirs({os.path.join(s.directory, 'sub')!r})")
        for name, content in {**files, "sub/inner": b"inner"}.items():
            with open(os.path.join(s.directory, name), "wb") as f:
                f.write(content)
            s.setup(f"open({os.path.join(s.directory, name)!r}, 'wb').write({content!r})")
        before = tree_snapshot(s.tmp)
        s.open_ready()
        after = tree_snapshot(s.tmp)
        # New entries are the destination's business; what existed must be left as it was.
        changed = sorted(p for p in before if before[p][0] != "dir" and before[p] != after.get(p))
        changed += sorted(p for p in before if before[p][0] == "dir" and after.get(p, ("gone",))[0] != "dir")
        if changed:
            s.fail(f"open() changed or removed what already existed: {[p.replace(s.tmp, '{tmp}') for p in changed][:5]}")


@pytest.mark.clause("open.not-a-directory")
@pytest.mark.parametrize("where", ["file at the path", "file at the path, nested", "file as a parent"])
def test_open_refuses_a_regular_file(subject: Subject, where: str) -> None:
    """open.not-a-directory: a regular file at the path (or as a parent) makes open raise naming the path."""
    def place(tmp: str) -> str:
        if where == "file at the path":
            return os.path.join(tmp, "target")
        if where == "file at the path, nested":
            return os.path.join(tmp, "d1", "d2", "target")
        return os.path.join(tmp, "target", "below")

    with subject.session(directory=place) as s:
        file_path = s.directory if where != "file as a parent" else os.path.dirname(s.directory)
        os.makedirs(os.path.dirname(file_path), exist_ok=True)
        with open(file_path, "wb") as f:
            f.write(b"not a directory")
        s.setup(f"os.makedirs({os.path.dirname(file_path)!r}, exist_ok=True)")
        s.setup(f"open({file_path!r}, 'wb').write(b'not a directory')")
        before = tree_snapshot(s.tmp)
        s.configure_ok()
        outcome = s.attempt("open")
        if outcome.ok:
            s.fail(f"open() succeeded although {file_path!r} is a regular file")
        if not names_path(outcome.error, s.directory, file_path):
            s.fail(f"open()'s error does not name the path {s.directory!r}: {type(outcome.error).__name__}: "
                   f"{outcome.error}")
        if tree_snapshot(s.tmp) != before:
            s.fail("open() created or changed something although it failed")
