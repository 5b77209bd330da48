"""Clauses open.*: creating the configured directory, keeping what exists, refusing what is not a directory, and
keeping what a previous destination on the same location wrote (a restart).

With a path parameter (one file), the file's parent directory plays the directory's part: open creates it with its
parents, keeps what is already in it (adding only the file and its side files) and refuses a parent that is not a
directory.
"""

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from hypothesis import given, strategies as st

from conformance.contract.checks import NOT_CHECKED_PREFIX, names_path
from conformance.contract.clauses import (
    NO_LOCATION,
    NOT_A_DIRECTORY_KINDS,
    OPERATIONS,
    REOPEN_EVIDENCE,
    location_param,
    side_file,
)
from conformance.execute.own_names import DRY_RUN_KEYS, registration_names
from conformance.execute.replay import render_records
from conformance.execute.scratch import scratch_dir
from conformance.execute.session import Session
from conformance.execute.subject import Subject
from conformance.generate.model import Model, differences, key_bytes
from conformance.generate.strategies import every_escapable_key, long_keys, non_ascii_keys, numbered
from conformance.plugin.profiles import fraction_of_examples, suite_settings
from conformance.probes.snapshots import changed_paths, tree_snapshot
from harness import Change, Operation, RawData, Record, StructuredData
from harness.keys import key_problem
from harness.records import Data

__all__ = ["TEMPORARY_LOOKING_KEYS", "keys_like_own_names"]

NESTED = ["d1", "d2", "d3"]


def _require_location(subject: Subject) -> None:
    """Skips (not checked) a registration that names neither a directory nor a file parameter."""
    if location_param(subject.registration) is None:
        pytest.skip(NOT_CHECKED_PREFIX + NO_LOCATION)


def _paths(s: Session, *more: str) -> tuple[str, ...]:
    """The paths an error of open() may name: the directory, the file (with a path parameter) and `more`."""
    return tuple(p for p in (s.directory, s.path, *more) if p)


@pytest.mark.clause("open.creates-directory")
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_open_creates_missing_parents(subject: Subject, depth: int) -> None:
    """open.creates-directory: a directory (with a path parameter, the file's parent) `depth` levels below an
    existing one is created by open."""
    _require_location(subject)
    with subject.session(directory=lambda tmp: os.path.join(tmp, *NESTED[:depth])) as s:
        s.open_ready()
        if not os.path.isdir(s.location):
            s.fail(f"open() returned but {s.directory!r} is not a directory")
        if s.path is not None and os.path.isdir(s.path):
            s.fail(f"open() made a directory at the file's path {s.path!r}")
        s.saw(f"created at depth {depth}")


MODES = st.sampled_from([0o600, 0o640, 0o644, 0o444, 0o755])


@pytest.mark.clause("open.keeps-existing")
@pytest.mark.parametrize("depth", [1, 2, 3])
@suite_settings(max_examples=fraction_of_examples(0.4))
@given(files=st.dictionaries(st.from_regex(r"[a-zA-Z0-9_.][a-zA-Z0-9_.~-]{0,11}", fullmatch=True).filter(
    lambda n: n not in (".", "..")), st.tuples(st.binary(max_size=64), MODES), max_size=4),
    directory_mode=st.sampled_from([0o700, 0o750, 0o775]))
def test_open_keeps_existing_directory(subject: Subject, depth: int, files: dict[str, tuple[bytes, int]],
                                       directory_mode: int) -> None:
    """open.keeps-existing: an existing directory, its files and a sub-directory are untouched by open,
    down to their modes; with a path parameter, open adds nothing to the file's parent but the file and side files."""
    _require_location(subject)
    with subject.session(directory=lambda tmp: os.path.join(tmp, *NESTED[:depth])) as s:
        os.makedirs(os.path.join(s.location, "sub"))
        s.setup(f"os.makedirs({os.path.join(s.location, 'sub')!r})")
        # Hidden, empty and temporary-looking files are there in every example: a cleanup on open must spare them.
        always = {".hidden": (b"hidden", 0o600), "empty": (b"", 0o644), "stale.tmp": (b"tmp?", 0o644),
                  "sub/inner": (b"inner", 0o640)}
        planted = {**files, **always}
        if s.path is not None:  # the file and its side files are the destination's own: only other files go there
            name = os.path.basename(s.path)
            planted = {n: v for n, v in planted.items() if not side_file(n.split("/")[0], name)}
        for name, (content, mode) in planted.items():
            path = os.path.join(s.location, name)
            with open(path, "wb") as f:
                f.write(content)
            os.chmod(path, mode)
            s.setup(f"open({path!r}, 'wb').write({content!r}); os.chmod({path!r}, {mode:#o})")
        os.chmod(os.path.join(s.location, "sub"), 0o750)
        os.chmod(s.location, directory_mode)
        s.setup(f"os.chmod({os.path.join(s.location, 'sub')!r}, 0o750); "
                f"os.chmod({s.directory!r}, {directory_mode:#o})")
        before = tree_snapshot(s.tmp)
        s.open_ready()
        after = tree_snapshot(s.tmp)
        # New entries are the destination's business; what existed must be left as it was (a directory's mtime
        # moves when entries are added, so directories keep their kind and mode).
        changed = sorted(p for p in before if before[p][0] != "dir" and before[p] != after.get(p))
        changed += sorted(p for p in before if before[p][0] == "dir"
                          and (after.get(p, ("gone",))[0] != "dir" or after[p][3] != before[p][3]))
        if changed:
            s.fail(f"open() changed or removed what already existed (content, kind or mode): "
                   f"{[p.replace(s.tmp, '{tmp}') for p in changed][:5]}")
        if s.path is not None:
            # The parent is not the destination's: beside what existed, only its file and side files may appear.
            name = os.path.basename(s.path)
            added = sorted(p for p in after if p not in before and not side_file(
                os.path.relpath(p, s.directory).split(os.sep)[0], name))
            if added:
                s.fail(f"open() added to the file's parent directory what is neither the file nor a side file (a name "
                       f"beginning with {name!r} or {'.' + name!r}): {[p.replace(s.tmp, '{tmp}') for p in added][:5]}")
        s.saw("existing tree kept")


def _where(kind: str, tmp: str) -> tuple[str, str]:
    """Where the destination's directory goes and where the check plants what is not a directory there:
    (directory, planted path); the planted path is the directory, or for a file as a parent, the directory's parent."""
    if kind == "regular file as a parent":
        planted = os.path.join(tmp, "target")
        return os.path.join(planted, "below"), planted
    planted = os.path.join(tmp, "d1", "target")
    return planted, planted


def _plant(kind: str, tmp: str, planted: str) -> None:
    """Puts something of `kind` that is not a directory at `planted`."""
    os.makedirs(os.path.dirname(planted), exist_ok=True)
    if kind in ("regular file", "regular file as a parent"):
        with open(planted, "wb") as f:
            f.write(b"not a directory")
    elif kind == "symlink to a file":
        with open(os.path.join(tmp, "linked-file"), "wb") as f:
            f.write(b"the link's target")
        os.symlink(os.path.join(tmp, "linked-file"), planted)
    elif kind == "dangling symlink":
        os.symlink(os.path.join(tmp, "nothing-here"), planted)
    else:
        os.mkfifo(planted)


_PLANT_SOURCE = {
    "regular file": "open({planted!r}, 'wb').write(b'not a directory')",
    "regular file as a parent": "open({planted!r}, 'wb').write(b'not a directory')",
    "symlink to a file": "open('{tmp}/linked-file', 'wb').write(b\"the link's target\"); "
                         "os.symlink('{tmp}/linked-file', {planted!r})",
    "dangling symlink": "os.symlink('{tmp}/nothing-here', {planted!r})",
    "FIFO": "os.mkfifo({planted!r})",
}


def _show_plant(s: Session, kind: str, planted: str) -> None:
    """The lines that plant `kind` at `planted`, into the replay at the point the check planted it."""
    s.setup(f"os.makedirs({os.path.dirname(planted)!r}, exist_ok=True)")
    s.setup(_PLANT_SOURCE[kind].format(planted=planted, tmp=s.tmp))


@pytest.mark.clause("open.not-a-directory")
@pytest.mark.parametrize("when", ["after configure", "before configure"])
@pytest.mark.parametrize("kind", NOT_A_DIRECTORY_KINDS)
def test_open_refuses_what_is_not_a_directory(subject: Subject, kind: str, when: str) -> None:
    """open.not-a-directory: a file, a file as a parent, a symlink, a dangling symlink or a FIFO put at the path after
    a successful configure (as a path goes bad between a pipeline's creation and its start) makes open raise naming
    the path, and nothing changes. Put there before configure, it may be refused by configure instead, by the same
    rule (naming the path, nothing changed)."""
    _require_location(subject)
    if kind == "FIFO" and not hasattr(os, "mkfifo"):
        pytest.skip(NOT_CHECKED_PREFIX + "this platform has no FIFOs")
    where: list[str] = []

    def place(tmp: str) -> str:
        directory, planted = _where(kind, tmp)
        where.append(planted)
        if when == "before configure":
            _plant(kind, tmp, planted)
        return directory

    with subject.session(directory=place) as s:
        path = where[0]
        what = kind.removesuffix(" as a parent")
        if when == "before configure":
            _show_plant(s, kind, path)
            before = tree_snapshot(s.tmp)
            configured = s.configure()
            if configured.error is not None:
                # Refused sooner, when the pipeline is created: the same rule holds for the refusal.
                if not names_path(configured.error, *_paths(s, path)):
                    s.fail(f"configure() refused {path!r}, a {what}, with an error that does not name the path "
                           f"{s.directory!r}: {type(configured.error).__name__}: {configured.error}")
                after = tree_snapshot(s.tmp)
                if after != before:
                    s.fail(f"configure() created or changed something although it refused the path: "
                           f"{changed_paths(before, after, s.tmp)[:5]}")
                s.saw(f"refused at configure: {kind}")
                return
        else:
            s.configure_ok()
            if os.path.lexists(path):
                pytest.skip(f"{NOT_CHECKED_PREFIX}configure() made {path.replace(s.tmp, '{tmp}')!r}, where the "
                            f"check puts a {what} for open() to refuse (configure.no-side-effects reports that)")
            _plant(kind, s.tmp, path)
            _show_plant(s, kind, path)
            before = tree_snapshot(s.tmp)
        outcome = s.attempt("open")
        if outcome.error is None:
            s.fail(f"open() succeeded although {path!r} is a {what}")
        if not names_path(outcome.error, *_paths(s, path)):
            s.fail(f"open()'s error does not name the path {s.directory!r}: {type(outcome.error).__name__}: "
                   f"{outcome.error}")
        after = tree_snapshot(s.tmp)
        if after != before:
            s.fail(f"open() created or changed something although it failed: {changed_paths(before, after, s.tmp)[:5]}")
        s.saw(f"refused: {kind}" if when == "after configure" else f"refused at open, planted before configure: {kind}")


# Keys a cleanup on open takes for its own leftovers (temporary, lock, editor and partial files), all valid keys.
TEMPORARY_LOOKING_KEYS = (b".tmp", b".tmp-x", b".tmp-report", b"x.tmp", b".x.tmp", b"~x", b".~x", b"x~", b".x.swp",
                          b".#x", b"#x#", b"x.part", b".hidden")


def keys_like_own_names(subject: Subject) -> list[bytes]:
    """The keys shaped like names a destination may create for itself, written before every reopen: the
    temporary-looking ones above and the names a dry run of a whole lifecycle saw it create in its area
    (conformance.execute.own_names). The contract's keys allow them all; a registration that declares its own keys
    gets none, as its key rules may refuse them."""
    if subject.registration.valid_keys is not None:
        return []
    own = registration_names(subject, {}, DRY_RUN_KEYS, RawData(b"dry run")).as_keys(subject)
    return list(dict.fromkeys(key for key in (*TEMPORARY_LOOKING_KEYS, *own) if key_problem(key) is None))


def _witnesses(subject: Subject, data: st.DataObject) -> tuple[list[Record], list[Record]]:
    """The first destination's two batches: witness records of every operation (an empty, a structured and drawn
    payloads, a key of every escapable character and the temporary-looking keys with the contract's keys), then a
    removal and an overwrite of keys written in the first."""
    own = [RawData(key) for key in keys_like_own_names(subject)]
    spec_keys = subject.registration.valid_keys is None
    drawn = data.draw(st.lists(subject.valid_keys(), min_size=2, max_size=4, unique_by=key_bytes), label="keys")
    keys: list[Data] = [*own, *drawn]
    if spec_keys:
        keys += [RawData(every_escapable_key()), data.draw(long_keys(), label="key of 250 to 255 bytes"),
                 data.draw(non_ascii_keys(), label="non-ASCII key")]
    keys = list({key_bytes(k): k for k in keys}.values())
    declared = subject.registration.payloads is not None
    payloads: list[Data] = [data.draw(subject.payloads(), label="payload") for _ in keys]
    if not declared:  # an empty value (what a sweep of zero-length files takes) and a structured one, every run
        payloads[0] = RawData(b"")
        payloads[-1] = StructuredData(data.draw(subject.structured(), label="structured payload"))
    first = [Record(operation=Operation(OPERATIONS[i % len(OPERATIONS)]), key=key, payload=Change(after=payload))
             for i, (key, payload) in enumerate(zip(keys, payloads, strict=True))]
    # The drawn keys are the ones removed and overwritten, so every temporary-looking key stays to be reopened.
    second = [Record(operation=Operation.delete, key=drawn[0], payload=Change()),
              Record(operation=Operation.update, key=drawn[-1],
                     payload=Change(after=data.draw(subject.payloads(), label="overwriting payload")))]
    return numbered(first, 0), numbered(second, len(first))


def _later(subject: Subject, data: st.DataObject, held: Mapping[bytes, bytes], start: int) -> list[Record]:
    """The reopened destination's batch: an overwrite and a removal of keys it holds, then drawn records."""
    records = data.draw(subject.batches(min_size=1, max_size=4), label="batch after reopening")
    keys = sorted(held)
    if keys:
        records = [Record(operation=Operation.update, key=RawData(keys[0]),
                          payload=Change(after=data.draw(subject.payloads(), label="payload over a held key"))),
                   Record(operation=Operation.delete, key=RawData(keys[-1]), payload=Change()), *records]
    return numbered(records, start)


@contextmanager
def _on(subject: Subject, config: Mapping[str, str], shared: str) -> Iterator[Session]:
    """A fresh destination on `config`, whose location lies in the shared directory {tmp} of the replay."""
    with subject.session(overlay=config) as s:
        s.tmp = shared  # the location outlives this session's own directory: the replay and messages name it {tmp}
        yield s


@pytest.mark.clause("open.keeps-data")
@suite_settings(max_examples=fraction_of_examples(0.2))
@given(data=st.data())
def test_reopened_destination_keeps_its_data(subject: Subject, data: st.DataObject) -> None:
    """open.keeps-data: a destination opened where a previous one wrote and tore down (a restart) holds the same
    right after open as just before it, temporary-looking keys included, and what it writes adds to that."""
    _require_location(subject)
    first, second = _witnesses(subject, data)
    shared = scratch_dir("conformance-reopen-")
    try:
        config = {k: v.replace("{tmp}", shared) for k, v in subject.registration.config.items()}
        with _on(subject, config, shared) as s:
            s.open_ready()
            with s.judging("write.round-trip"):  # writing within one destination's life is write.*'s to judge
                s.write_all(first)
                s.write_all(second)
            s.ok("teardown")
        shown = repr({k: v.replace(shared, "{tmp}") for k, v in config.items()})
        earlier = (f"with Driver(registration, config={shown}) as before: before.configure(); before.open(); "
                   + "; ".join(f"before.write({render_records(batch, '        ')})" for batch in (first, second))
                   + "; before.teardown()")
        with _on(subject, config, shared) as s:
            s.setup(earlier)
            s.configure_ok()
            held = s.read_back()
            s.ok("open")
            lines = differences(held, s.read_back())
            if lines:
                s.fail("read-back right after open() differs from read-back just before it, which holds what the "
                       "previous destination on this location wrote and tore down (a restart must keep it):\n      "
                       + "\n      ".join(lines))
            if held:
                s.saw(REOPEN_EVIDENCE[0])
            if any(key in held for key in keys_like_own_names(subject)):
                s.saw(REOPEN_EVIDENCE[1])
            batch = _later(subject, data, held, len(first) + len(second))
            s.write_all(batch)
            s.expect(Model(held).apply(batch), "the first batch of the reopened destination (read-back before it "
                     "plus the batch)")
            s.saw(REOPEN_EVIDENCE[2])
    finally:
        shutil.rmtree(shared, ignore_errors=True)
