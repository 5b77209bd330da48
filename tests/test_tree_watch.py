"""conformance.probes.tree_watch: every name that appears in a watched tree, charged to the call it appeared in, and
a note instead of silence where the tree cannot be watched."""

import os
from pathlib import Path
from unittest import mock

import pytest

from conformance.execute.subject import Subject
from conformance.probes import tree_watch
from conformance.probes.holdings import Holdings
from conformance.probes.tree_watch import TreeWatch
from reference import registration

pytestmark = pytest.mark.skipif(tree_watch.unavailable() is not None, reason=str(tree_watch.unavailable()))


def _tree(root: Path) -> Path:
    for name in ("tmp", "home"):
        (root / name).mkdir()
    return root


def test_creations_are_charged_to_the_call_they_happened_in(tmp_path: Path) -> None:
    """A file created in one call and removed in another, a directory and a file inside it, a file moved in: each
    named with its call; a removal of something that was there before is nobody's creation."""
    root = _tree(tmp_path)
    (root / "home" / "old").write_text("there before")
    watch = TreeWatch(str(root))
    try:
        (root / "tmp" / "x.lock").write_text("")
        watch.take("open()")
        (root / "home" / ".cache").mkdir()
        watch.take("write()")
        (root / "home" / ".cache" / "state").write_text("1")  # needs the new directory to be watched
        os.rename(tmp_path.parent / _outside(tmp_path), root / "tmp" / "moved")
        (root / "home" / "old").unlink()
        watch.take("write()")
        (root / "tmp" / "x.lock").unlink()
        watch.take("teardown()")
        found = watch.findings(lambda p: p.replace("tmp", "$TMPDIR", 1), limit=10)
    finally:
        watch.close()
    assert found == ["open() created $TMPDIR/x.lock (removed by teardown())", "write() created home/.cache",
                     "write() created home/.cache/state", "write() created $TMPDIR/moved"]


def _outside(tmp_path: Path) -> str:
    """A file beside the tree, to be moved into it."""
    name = tmp_path.name + "-outside"
    (tmp_path.parent / name).write_text("moved in")
    return name


def test_a_file_created_again_after_its_removal_is_not_shown_as_removed(tmp_path: Path) -> None:
    """Removed in one call and made again in the next: it is there, so no "(removed by ...)"."""
    root = _tree(tmp_path)
    watch = TreeWatch(str(root))
    try:
        (root / "tmp" / "f").write_text("")
        watch.take("open()")
        (root / "tmp" / "f").unlink()
        watch.take("write()")
        (root / "tmp" / "f").write_text("")
        watch.take("teardown()")
        assert watch.findings(str) == ["open() created tmp/f"]
        watch.forget()  # nothing new: forgetting keeps what was charged
        assert watch.findings(str) == ["open() created tmp/f"]
    finally:
        watch.close()


def test_a_session_says_when_the_tree_cannot_be_watched() -> None:
    """Without inotify the clause's notes say that transient files were not watched, and the session still runs."""
    subject = Subject(registration, "write.round-trip", 10.0)
    with mock.patch.object(tree_watch, "inotify_simple", None), \
            mock.patch.object(tree_watch, "_IMPORT_ERROR", "inotify_simple cannot be imported (test)"):
        with subject.session() as s:
            assert s.watch is not None and s.watch.tree is None
            s.open_ready()
            s.ok("teardown")
    assert "transient files not watched: inotify_simple cannot be imported (test)" in subject.unchecked


def test_a_session_of_the_reference_watches_its_tree_and_finds_nothing() -> None:
    """In-process on the real disk, the watched tree is watched for the whole session, and the reference (which
    keeps to its directory) creates nothing there; the watch is removed at the session's end."""
    subject = Subject(registration, "write.round-trip", 10.0)
    with subject.session() as s:
        assert s.watch is not None and s.watch.tree is not None
        watch = s.watch.tree
        s.open_ready()
        s.ok("teardown")
    assert watch.created == {} and not subject.unchecked
    assert not watch.watching  # its watch descriptors are removed (the shared inotify instance stays)


def test_the_watch_descriptor_is_never_taken_for_a_leak() -> None:
    """teardown.releases' own check takes its baseline before the session (and its tree watch) starts: the watch's
    descriptor is the suite's, so the reference still releases everything."""
    subject = Subject(registration, "teardown.releases", 10.0)
    holdings = Holdings()
    with subject.session() as s:
        holdings.watch(s)
        s.open_ready()
        assert s.watch is not None and s.watch.tree is not None
        assert s.watch.tree.watching and tree_watch.watch_fds()
        s.ok("teardown")
        assert holdings.leaks() == []
