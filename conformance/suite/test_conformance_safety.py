"""Clauses safety.*: nothing outside the configured directory changes; symlinks at keys are never followed.

With a path parameter (one file), the confined area is the file, its side files (names in its directory beginning
with the file's name, or with a dot and the file's name) and the directories open created for them; the checks put
the file in an existing directory full of watched files, so that only the file and its side files are the
destination's. Its keys are not names, so symlinks go only where a dry run saw it create files.
"""

import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeGuard

import pytest
from hypothesis import given, strategies as st

from conformance.contract.checks import NOT_CHECKED_PREFIX, ClauseFailure
from conformance.contract.clauses import (
    NO_LOCATION,
    OWN_NAME_SYMLINK_EVIDENCE,
    PATH_SYMLINK_EVIDENCE,
    location_param,
    side_file,
)
from conformance.execute.own_names import (
    DRY_RUN_KEYS,
    NOT_REACHED,
    lifecycle_names,
    registration_names,
    with_successors,
)
from conformance.execute.scratch import scratch_dir
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.strategies import numbered, records
from conformance.generate.witnesses import witness_metadata
from conformance.plugin.profiles import batch_limit, fraction_of_examples, suite_settings
from conformance.probes.faults import fake_filesystem
from conformance.probes.snapshots import Snapshot, changed_paths, tree_snapshot
from harness import Change, Operation, RawData, Record
from harness.records import Data

# The configured directory sits several levels deep; every level has files a stray write could hit.
WATCHED_LEVELS = ["w1", "w2", "w3"]
HOSTILE_KEYS = ["../x", "../../x", "../../../x", "a/../../x", "../w3", "..", ".", "../", "x/../../../../y",
                "{tmp}/w1/abs-target", "{tmp}/w1/w2/x", "./../x", "sub/x", "x\x00y", "k" * 300]


def _require_location(subject: Subject) -> None:
    """Skips (not checked) a registration that names neither a directory nor a file parameter."""
    if location_param(subject.registration) is None:
        pytest.skip(NOT_CHECKED_PREFIX + NO_LOCATION)


NO_NAME_SEEN = (NOT_CHECKED_PREFIX + "no file was seen being created in the file's directory in a dry run of its "
                "lifecycle (a file open() makes is not one; Python's audit hooks do not see a C library's I/O, such "
                "as sqlite3's, or another process'), so there is no name to plant a symlink at")


def _deep(tmp: str) -> str:
    return os.path.join(tmp, *WATCHED_LEVELS, "dest")


def _plant_watched_tree(s: Session) -> None:
    """Files and a directory at every level around the destination directory (and, with a path parameter, in the
    file's parent directory itself, which exists before open)."""
    levels = ["", *WATCHED_LEVELS] + (["dest"] if s.path is not None else [])
    level = s.tmp
    for name in levels:
        level = os.path.join(level, name) if name else level
        os.makedirs(os.path.join(level, "y"), exist_ok=True)
        for file_name in ("x", "abs-target"):
            with open(os.path.join(level, file_name), "wb") as f:
                f.write(b"watched " + level.encode())
    s.setup(f"# around the directory: files x, abs-target and a directory y at each of "
            f"{{tmp}}, {{tmp}}/{'/'.join(levels[1:])} levels")


def _outside(snapshot: Snapshot, s: Session) -> Snapshot:
    """The snapshot without the confined area: the directory, or the file, its side files and what is in them."""
    directory = s.location
    if s.path is None:
        inside = directory + os.sep
        return {p: v for p, v in snapshot.items() if p != directory and not p.startswith(inside)}
    name, inside = os.path.basename(s.path), directory + os.sep
    kept: Snapshot = {}
    for p, v in snapshot.items():
        if p == directory:
            kept[p] = (v[0], None, 0.0, v[3])  # its mtime moves as side files come and go; kind and mode must not
        elif not (p.startswith(inside) and side_file(p[len(inside):].split(os.sep)[0], name)):
            kept[p] = v
    return kept


def _hostile_record(template: str, tmp: str, delete: bool) -> Record:
    key = RawData(template.replace("{tmp}", tmp).encode())
    return Record(operation=Operation.delete if delete else Operation.create, key=key,
                  payload=Change(after=None if delete else RawData(b"escaped")))


@pytest.mark.clause("safety.confined")
@suite_settings()
@given(data=st.data())
def test_nothing_outside_the_directory_changes(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """safety.confined: batches mixing valid and path-like hostile keys change nothing outside the directory."""
    _require_location(subject)
    plans = data.draw(st.lists(st.lists(st.one_of(
        st.tuples(st.just("valid"), records(subject.valid_keys(), subject.payloads())),
        st.tuples(st.sampled_from(HOSTILE_KEYS), st.booleans()),
    ), min_size=1, max_size=batch_limit()), min_size=1, max_size=3), label="batches (valid record or hostile key)")
    with subject.session(directory=_deep, overlay=variant) as s:
        _plant_watched_tree(s)
        s.open_ready()
        before = _outside(tree_snapshot(s.tmp), s)
        position = 0
        for plan in plans:
            batch = numbered([item if isinstance(item, Record) else _hostile_record(kind, s.tmp, item)
                              for kind, item in plan], position)
            position += len(batch)
            s.attempt("write", batch)
            after = _outside(tree_snapshot(s.tmp), s)
            changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
            if changed:
                s.fail(f"write() created, changed or removed files outside {_area(s)}: "
                       f"{[p.replace(s.tmp, '{tmp}') for p in changed][:5]}")


def _area(s: Session) -> str:
    """The confined area, in words, for failure messages."""
    if s.path is None:
        return "the configured directory"
    name = os.path.basename(s.path)
    return f"the file {s.path.replace(s.tmp, '{tmp}')!r} and its side files ({name}*, .{name}*)"


def _everywhere_outside(s: Session) -> Snapshot:
    """The whole (fake) filesystem outside the confined area."""
    return _outside({p: v for p, v in tree_snapshot("/").items() if not p.startswith("/proc")}, s)


@pytest.mark.clause("safety.confined")
def test_every_hostile_key_stays_inside(subject: Subject, variant: dict[str, str]) -> None:
    """safety.confined: every hostile key, written and deleted beside a valid record, changes nothing outside the
    directory: in the watched tree on the real disk and, in-process, anywhere in a fake filesystem."""
    _require_location(subject)
    whole = subject.registration.transport != "standalone"
    for fake in ((False, True) if whole else (False,)):
        with (fake_filesystem() if fake else nullcontext()) as faults, \
                subject.session(directory=_deep, overlay=variant) as s:
            _plant_watched_tree(s)
            if faults is not None:
                s.setup("# run inside: with conformance.probes.faults.fake_filesystem() as faults:")
                if not s.configure().ok or not s.attempt("open").ok or faults.exists_on_real_disk(s.location) \
                        or not os.path.isdir(s.location):
                    # The same calls work on the real disk (checked just before): the I/O bypasses pyfakefs.
                    subject.unchecked.add("the whole filesystem was not watched: the destination's I/O bypasses "
                                          "pyfakefs")
                    continue
            else:
                s.open_ready()
            snapshot: Callable[[], Snapshot] = (
                (lambda: _everywhere_outside(s)) if fake else (lambda: _outside(tree_snapshot(s.tmp), s)))
            before, position = snapshot(), 0
            # A batch of valid records alone first: a destination's own bookkeeping after a whole write counts too.
            # A key beginning with two dots too: a prefix of it ("..") is the parent, where sharding by prefix lands.
            valid_only = numbered([Record(key=RawData(b"first"), payload=Change(after=RawData(b"inside"))),
                                   Record(key=RawData(b"...k"), payload=Change(after=RawData(b"inside"))),
                                   Record(key=RawData(b"second"), payload=Change())], position)
            position += len(valid_only)
            s.attempt("write", valid_only)
            after = snapshot()
            if after != before:
                s.fail(f"write() of valid records created, changed or removed files outside {_area(s)}"
                       f"{' (anywhere in the fake filesystem)' if fake else ''}: "
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
                               f"removed files outside {_area(s)}"
                               f"{' (anywhere in the fake filesystem)' if fake else ''}: "
                               f"{changed_paths(before, after, s.tmp)[:5]}")
            if not fake:
                s.saw("every hostile key tried")
            _hostile_metadata_stays_inside(s, snapshot, before, position, fake)


def _hostile_metadata_stays_inside(s: Session, snapshot: Callable[[], Snapshot], before: Snapshot, position: int,
                                   fake: bool) -> None:
    """Valid keys written and deleted with every hostile value in every routing metadata key (a destination may
    route by opencdc.collection): nothing outside the area changes."""
    for metadata in witness_metadata(s.tmp):
        for delete in (False, True):
            record = Record(operation=Operation.delete if delete else Operation.create, key=RawData(b"routed"),
                            metadata=metadata, payload=Change(after=None if delete else RawData(b"inside")))
            s.attempt("write", numbered([record], position))
            position += 1
            after = snapshot()
            if after != before:
                value = metadata["opencdc.collection"].replace(s.tmp, "{tmp}")
                s.fail(f"write() {'deleting' if delete else 'writing'} a valid key whose metadata holds "
                       f"{value[:40]!r}{'...' if len(value) > 40 else ''} in opencdc.collection (and every routing "
                       f"metadata key) created, changed or removed files outside {_area(s)}"
                       f"{' (anywhere in the fake filesystem)' if fake else ''}: "
                       f"{changed_paths(before, after, s.tmp)[:5]}")
    if not fake:
        s.saw("every hostile metadata value tried")


def _is_raw(key: Data) -> TypeGuard[RawData]:
    return isinstance(key, RawData)


def _symlink_names(subject: Subject, variant: dict[str, str], key: RawData,
                   place: Callable[[str], str]) -> set[bytes]:
    """Paths (relative to the area) the destination itself creates in a whole lifecycle, in any call: from a dry run
    writing `key` in the same place (a name derived from the key or the area's path recurs), and the registration's
    own dry run with the lifecycle events (conformance.execute.own_names); with the next few of any numbered name,
    since temporary names often count up."""
    if subject.registration.transport == "standalone":
        subject.unchecked.add(NOT_REACHED)
        return set()
    payload = RawData(b"dry run")  # the check writes a raw value too: links are about names, not payloads
    names = set(lifecycle_names(subject, variant, [key], payload, place=place).names)
    names |= registration_names(subject, variant, _dry_run_keys(subject, key), payload).names
    if subject.registration.path_param is None:
        names.discard(key.raw)  # planted anyway, as the key
    return with_successors(names, 32)


def _dry_run_keys(subject: Subject, key: RawData) -> list[Data]:
    """The keys of the registration-wide dry run: the contract's fixed ones, or (a declared key space) the drawn key."""
    return list(DRY_RUN_KEYS) if subject.registration.valid_keys is None else [key]


@pytest.mark.clause("safety.no-symlink-follow")
@suite_settings(max_examples=fraction_of_examples(0.5))
@given(data=st.data())
def test_symlink_at_a_key_is_not_followed(subject: Subject, variant: dict[str, str], data: st.DataObject) -> None:
    """safety.no-symlink-follow: writing and deleting a key that is a symlink, with symlinks also at every name the
    destination creates itself in any call of its life (temporary files, compaction targets: a dry run's), then ack
    and teardown, leaves the links' targets alone; with a path parameter, whose keys are not names, the symlinks go
    at the names it creates only."""
    _require_location(subject)
    key = data.draw(subject.valid_keys().filter(_is_raw), label="key")
    kinds = ["file", "directory", "missing file"]
    drawn_kind = data.draw(st.sampled_from(kinds), label="link target")
    # A link to a file shows a write through it best: every run plants one, whatever the draws.
    target_kind = "file" if not subject.coverage["symlink target: file"] else drawn_kind
    subject.coverage[f"symlink target: {target_kind}"] += 1
    # One directory path for the dry run and both writes: a temporary name derived from the full path (a hash of
    # it, say) is then the same name in all three, so a symlink is waiting there too.
    shared = os.path.join(scratch_dir("conformance-links-"), "dest")
    place = lambda tmp: shared  # noqa: E731
    own_names = _symlink_names(subject, variant, key, place)
    shutil.rmtree(shared, ignore_errors=True)
    by_path = subject.registration.path_param is not None
    if by_path and not own_names:
        pytest.skip(NO_NAME_SEEN)
    # Links before the write at every name not there yet (the key's too), and again before ack and teardown at the
    # names the write did not leave; then a write with no link in its way, so that what comes after it (a
    # compaction at teardown) runs even where the write refuses a link at the file it creates.
    for delete, early in ((False, True), (True, True), (False, False)):
        shutil.rmtree(shared, ignore_errors=True)
        with subject.session(directory=place, overlay=variant) as s:
            s.open_ready()
            outside = s.link_targets = os.path.join(s.tmp, "outside")
            os.makedirs(outside)
            planted: list[bytes] = []
            if early:
                _plant(s, ([] if by_path else [key.raw]) + sorted(own_names - {key.raw}), target_kind, planted)
                if by_path and not planted:
                    pytest.skip(NO_NAME_SEEN)
            before = tree_snapshot(outside)
            record = Record(position=b"0", operation=Operation.delete if delete else Operation.create, key=key,
                            payload=Change(after=None if delete else RawData(b"through the link?")))
            written = s.attempt("write", [record]).ok
            doing = "deleting" if delete else "writing"
            _unchanged(s, before, outside, planted, target_kind, f"{doing} key {key.raw!r}")
            # The rest of its life: a name made only at ack or teardown (a compaction's) has its link too.
            _plant(s, sorted(own_names - {key.raw}), target_kind, planted)
            before = tree_snapshot(outside)
            if written:
                s.attempt("ack", b"0")
            # What the session watches at teardown (read-back kept) may break because a link was followed: then the
            # link is the finding, reported first.
            failure: ClauseFailure | None = None
            try:
                s.attempt("teardown")
            except ClauseFailure as err:
                failure = err
            _unchanged(s, before, outside, planted, target_kind,
                       f"after {doing} key {key.raw!r}, ack() and teardown()")
            if failure is not None:
                raise failure
            if early and by_path:
                s.saw(PATH_SYMLINK_EVIDENCE[1] if delete else PATH_SYMLINK_EVIDENCE[0])
            elif early:
                s.saw("symlink at a key removed" if delete else "symlink at a key written")
            if set(planted) - {key.raw}:
                s.saw(OWN_NAME_SYMLINK_EVIDENCE)


def _plant(s: Session, names: list[bytes], target_kind: str, planted: list[bytes]) -> None:
    """Plants a symlink to a fresh target outside the area at each name not there now (a name open() made is the
    destination's data or lock; a nested name goes only into a directory that exists)."""
    directory = os.fsencode(s.location)
    outside = s.link_targets
    assert outside is not None
    for name in names:
        link = os.path.join(directory, name)
        if os.path.lexists(link) or not os.path.isdir(os.path.dirname(link)):
            continue
        target = os.path.join(outside, f"target{len(planted)}")
        if target_kind == "file":
            with open(target, "wb") as f:
                f.write(b"the link's target")
        elif target_kind == "directory":
            os.makedirs(target)
        os.symlink(target, link)
        planted.append(name)
        s.setup(f"os.symlink({target!r}, {link!r})  # target: {target_kind}")


def _unchanged(s: Session, before: Snapshot, outside: str, planted: list[bytes], target_kind: str,
               doing: str) -> None:
    """Fails unless the links' targets are as they were."""
    after = tree_snapshot(outside)
    if after != before:
        shown = f"{planted[:4]}{' ...' if len(planted) > 4 else ''}"
        s.fail(f"{doing}, with symlinks to a {target_kind} outside the directory at {shown}, changed a link's "
               f"target: {changed_paths(before, after, s.tmp)[:5]}")
