"""Upstream pins of how conduit-connector-file (v0.9.0, v0.10.1, v0.10.3) refuses a parent that is no directory
(open.not-a-directory, contract v1.4): Configure refuses one already there (its config validation stats the path),
Open one that turns up after Configure, each naming the path with nothing created; a failed Open is then torn down
twice without error (teardown.any-state's and teardown.idempotent's "after a failed open"). The suite's verdicts are
pinned with each release's table (tests/test_conduit_connectors.py, test_conduit_v013.py, test_conduit_v014.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import ConfigError
from harness.conduit.adapter import PluginCallError
from harness.conduit.standalone import standalone_registration
from tests.conduit_connectors import FILE_RELEASES as RELEASES
from tests.go_connectors import build
from tests.go_plugins import stop

__all__: list[str] = []


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every entry below `root`: a file's content, None for anything else."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_a_parent_that_is_no_directory_is_refused_by_open_after_configure(tmp_path: Path, version: str) -> None:
    """Planted after a successful Configure (as a path goes bad between a pipeline's creation and its start), a
    regular file where the file's parent goes makes Open fail naming the path; nothing is created, and two
    Teardowns after the failed Open return normally."""
    path = tmp_path / "d1" / "target" / "records.jsonl"
    destination = standalone_registration([str(build(RELEASES[version]))]).factory()
    try:
        destination.configure({"path": str(path)})
        (tmp_path / "d1").mkdir()
        (tmp_path / "d1" / "target").write_bytes(b"not a directory")
        before = _tree(tmp_path)
        with pytest.raises(PluginCallError, match=f"Open failed with status UNKNOWN: stat {path}: not a directory"):
            destination.open()
        destination.teardown()
        destination.teardown()
    finally:
        stop(destination)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_a_parent_that_is_no_directory_is_refused_by_configure_when_already_there(tmp_path: Path,
                                                                                   version: str) -> None:
    """Planted before Configure, the regular file is refused by Configure (its config validation stats the path),
    naming the path, with nothing created: the earlier refusal contract v1.4 admits."""
    path = tmp_path / "d1" / "target" / "records.jsonl"
    os.makedirs(tmp_path / "d1")
    (tmp_path / "d1" / "target").write_bytes(b"not a directory")
    before = _tree(tmp_path)
    destination = standalone_registration([str(build(RELEASES[version]))]).factory()
    try:
        with pytest.raises(ConfigError, match=f'config value "path" does not contain a valid path: stat {path}: '
                                              f"not a directory"):
            destination.configure({"path": str(path)})
    finally:
        stop(destination)
    assert _tree(tmp_path) == before
