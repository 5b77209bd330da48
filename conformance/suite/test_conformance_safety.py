"""Clauses safety.*: nothing outside the configured directory changes; symlinks at keys are never followed."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import Change, Operation, RawData, Record
from conformance.profiles import batch_limit, suite_settings
from conformance.session import Session, Subject, tree_snapshot
from conformance.strategies import numbered, records

# The configured directory sits several levels deep; every level has files a stray write could hit.
WATCHED_LEVELS = ["w1", "w2", "w3"]
HOSTILE_KEYS = ["../x", "../../x", "../../../x", "a/../../x", "../w3", "..", ".", "../", "x/../../../../y",
                "{tmp}/w1/abs-target", "{tmp}/w1/w2/x", "./../x", "sub/x", "x\x00y", "k" * 300]


def _deep(tmp: str) -> str:
    return os.path.join(tmp, *WATCHED_LEVELS, "dest")


def _plant_watched_tree(s: Session) -> None:
    """Files and a directory at every level around the destination directory."""
    level = s.tmp
    for name in ["", *WATCHED_LEVELS]:
        level = os.path.join(level, name) if name else level
        os.makedirs(os.path.join(level, "y"), exist_ok=True)
        for file_name in ("x", "abs-target"):
            with open(os.path.join(level, file_name), "wb") as f:
                f.write(b"watched " + level.encode())
    s.setup(f"# around the directory: files x, abs-target and a directory y at each of "
            f"{{tmp}}, {{tmp}}/{'/'.join(WATCHED_LEVELS)} levels")


def _outside(snapshot: dict, directory: str) -> dict:
    inside = directory + os.sep
    return {p: v for p, v in snapshot.items() if p != directory and not p.startswith(inside)}


def _hostile_record(template: str, tmp: str, delete: bool) -> Record:
    key = RawData(template.replace("{tmp}", tmp).encode())
    return Record(operation=Operation.delete if delete else Operation.create, key=key,
                  payload=Change(after=None if delete else RawData(b"escaped")))


@pytest.mark.clause("safety.confined")
@suite_settings()
@given(data=st.data())
def test_nothing_outside_the_directory_changes(subject: Subject, data: st.DataObject) -> None:
    """safety.confined: batches mixing valid and path-like hostile keys change nothing outside the directory."""
    plans = data.draw(st.lists(st.lists(st.one_of(
        st.tuples(st.just("valid"), records(subject.valid_keys(), subject.payloads())),
        st.tuples(st.sampled_from(HOSTILE_KEYS), st.booleans()),
    ), min_size=1, max_size=batch_limit()), min_size=1, max_size=3), label="batches (valid record or hostile key)")
    with subject.session(directory=_deep) as s:
        _plant_watched_tree(s)
        s.open_ready()
        before = _outside(tree_snapshot(s.tmp), s.directory)
        position = 0
        for plan in plans:
            batch = numbered([item if kind == "valid" else _hostile_record(kind, s.tmp, item)
                              for kind, item in plan], position)
            position += len(batch)
            s.attempt("write", batch)
            after = _outside(tree_snapshot(s.tmp), s.directory)
            changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
            if changed:
                s.fail("write() created, changed or removed files outside the configured directory: "
                       f"{[p.replace(s.tmp, '{tmp}') for p in changed][:5]}")


@pytest.mark.clause("safety.no-symlink-follow")
@suite_settings()
@given(data=st.data())
def test_symlink_at_a_key_is_not_followed(subject: Subject, data: st.DataObject) -> None:
    """safety.no-symlink-follow: writing or deleting a key that is a symlink leaves the link's target alone."""
    key = data.draw(subject.valid_keys().filter(lambda k: isinstance(k, RawData)), label="key")
    target_kind = data.draw(st.sampled_from(["file", "directory", "missing file"]), label="link target")
    delete = data.draw(st.booleans(), label="delete the key")
    with subject.session() as s:
        s.open_ready()
        outside = os.path.join(s.tmp, "outside")
        os.makedirs(outside)
        target = os.path.join(outside, "target")
        if target_kind == "file":
            with open(target, "wb") as f:
                f.write(b"the link's target")
        elif target_kind == "directory":
            os.makedirs(target)
        link = os.path.join(os.fsencode(s.directory), key.raw)
        os.symlink(target, link)
        s.setup(f"os.symlink({target!r}, {link!r})  # target: {target_kind}")
        before = tree_snapshot(outside)
        s.attempt("write", [Record(position=b"0", operation=Operation.delete if delete else Operation.create,
                                   key=key, payload=Change(after=None if delete else RawData(b"through the link?")))])
        after = tree_snapshot(outside)
        if after != before:
            changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
            s.fail(f"{'deleting' if delete else 'writing'} key {key.raw!r}, a symlink to a {target_kind} outside "
                   f"the directory, changed the target: {[p.replace(s.tmp, '{tmp}') for p in changed]}")
