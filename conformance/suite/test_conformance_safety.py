"""Clauses safety.*: nothing outside the configured directory changes; symlinks at keys are never followed."""

import os
import re
from contextlib import nullcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import Change, Operation, RawData, Record
from conformance.audit import created_names, recording
from conformance.faults import fake_filesystem
from conformance.profiles import batch_limit, fraction_of_examples, suite_settings
from conformance.session import Session, Subject, changed_paths, tree_snapshot
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
def test_nothing_outside_the_directory_changes(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """safety.confined: batches mixing valid and path-like hostile keys change nothing outside the directory."""
    plans = data.draw(st.lists(st.lists(st.one_of(
        st.tuples(st.just("valid"), records(subject.valid_keys(), subject.payloads())),
        st.tuples(st.sampled_from(HOSTILE_KEYS), st.booleans()),
    ), min_size=1, max_size=batch_limit()), min_size=1, max_size=3), label="batches (valid record or hostile key)")
    with subject.session(directory=_deep, overlay=variant) as s:
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


def _everywhere_outside(directory: str) -> dict:
    """The whole (fake) filesystem outside `directory`."""
    return _outside({p: v for p, v in tree_snapshot("/").items() if not p.startswith("/proc")}, directory)


@pytest.mark.clause("safety.confined")
def test_every_hostile_key_stays_inside(subject: Subject, variant: dict[str, str]) -> None:
    """safety.confined: every hostile key, written and deleted beside a valid record, changes nothing outside the
    directory: in the watched tree on the real disk and, in-process, anywhere in a fake filesystem."""
    whole = subject.registration.transport != "standalone"
    for fake in ((False, True) if whole else (False,)):
        with (fake_filesystem() if fake else nullcontext()) as faults, \
                subject.session(directory=_deep, overlay=variant) as s:
            _plant_watched_tree(s)
            if fake:
                s.setup("# run inside: with conformance.faults.fake_filesystem() as faults:")
                if not s.configure().ok or not s.attempt("open").ok or faults.exists_on_real_disk(s.directory) \
                        or not os.path.isdir(s.directory):
                    # The same calls work on the real disk (checked just before): the I/O bypasses pyfakefs.
                    subject.unchecked.add("the whole filesystem was not watched: the destination's I/O bypasses "
                                          "pyfakefs")
                    continue
            else:
                s.open_ready()
            snapshot = (lambda: _everywhere_outside(s.directory)) if fake else (
                lambda: _outside(tree_snapshot(s.tmp), s.directory))
            before, position = snapshot(), 0
            # A batch of valid records alone first: a destination's own bookkeeping after a whole write counts too.
            valid_only = numbered([Record(key=RawData(b"first"), payload=Change(after=RawData(b"inside"))),
                                   Record(key=RawData(b"second"), payload=Change())], position)
            position += len(valid_only)
            s.attempt("write", valid_only)
            after = snapshot()
            if after != before:
                s.fail("write() of valid records created, changed or removed files outside the configured "
                       f"directory{' (anywhere in the fake filesystem)' if fake else ''}: "
                       f"{changed_paths(before, after, s.tmp)[:5]}")
            for template in HOSTILE_KEYS:
                for delete in (False, True):
                    valid = Record(key=RawData(b"valid"), payload=Change(after=RawData(b"inside")))
                    batch = numbered([valid, _hostile_record(template, s.tmp, delete)], position)
                    position += len(batch)
                    s.attempt("write", batch)
                    after = snapshot()
                    if after != before:
                        s.fail(f"write() {'deleting' if delete else 'writing'} key {template!r} created, changed or "
                               f"removed files outside the configured directory"
                               f"{' (anywhere in the fake filesystem)' if fake else ''}: "
                               f"{changed_paths(before, after, s.tmp)[:5]}")
            if not fake:
                s.saw("every hostile key tried")


def _symlink_names(subject: Subject, variant: dict[str, str], key: RawData) -> set[bytes]:
    """Names the destination itself creates in its directory when writing `key` (from a dry run), and the next
    few of any numbered name, since temporary names often count up."""
    if subject.registration.transport == "standalone":
        return set()
    with subject.session(overlay=variant) as s:
        s.open_ready()
        with recording() as events:
            s.attempt("write", [Record(position=b"0", key=key, payload=Change(after=RawData(b"dry run")))])
        names = {os.fsencode(n) for n in created_names(events, s.directory)} - {key.raw}
    more = set()
    for name in names:
        digits = re.search(rb"(\d+)$", name)
        if digits:
            stem, number = name[: digits.start()], int(digits.group(1))
            more.update(stem + b"%d" % (number + step) for step in range(1, 33))
    return names | more


@pytest.mark.clause("safety.no-symlink-follow")
@suite_settings(max_examples=fraction_of_examples(0.5))
@given(data=st.data())
def test_symlink_at_a_key_is_not_followed(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """safety.no-symlink-follow: writing and deleting a key that is a symlink, with symlinks also at every name the
    destination creates itself (temporary files), leaves the links' targets alone."""
    key = data.draw(subject.valid_keys().filter(lambda k: isinstance(k, RawData)), label="key")
    target_kind = data.draw(st.sampled_from(["file", "directory", "missing file"]), label="link target")
    own_names = _symlink_names(subject, variant, key)
    for delete in (False, True):
        with subject.session(overlay=variant) as s:
            s.open_ready()
            outside = os.path.join(s.tmp, "outside")
            os.makedirs(outside)
            planted = []
            for number, name in enumerate([key.raw, *sorted(own_names)]):
                target = os.path.join(outside, f"target{number}")
                if target_kind == "file":
                    with open(target, "wb") as f:
                        f.write(b"the link's target")
                elif target_kind == "directory":
                    os.makedirs(target)
                link = os.path.join(os.fsencode(s.directory), name)
                os.symlink(target, link)
                planted.append(name)
                s.setup(f"os.symlink({target!r}, {link!r})  # target: {target_kind}")
            before = tree_snapshot(outside)
            s.attempt("write", [Record(position=b"0", operation=Operation.delete if delete else Operation.create,
                                       key=key, payload=Change(after=None if delete else RawData(b"through the link?")))])
            after = tree_snapshot(outside)
            if after != before:
                s.fail(f"{'deleting' if delete else 'writing'} key {key.raw!r}, with symlinks to a {target_kind} "
                       f"outside the directory at {planted[:4]}{' ...' if len(planted) > 4 else ''}, changed a "
                       f"link's target: {changed_paths(before, after, s.tmp)[:5]}")
            s.saw("symlink at a key removed" if delete else "symlink at a key written")
