"""The Go zoo variants are patches of tests/go/fixed14 (tests/go_patch.py, over `git apply`): every patch applies, is
a build target and changes only a few lines, and a patch that no longer fits its base is refused, never misplaced."""

import difflib
from pathlib import Path

import pytest

from tests import go_connectors
from tests.go_connectors import _TARGETS, FIXED14, ZOO
from tests.go_patch import PatchError, apply

__all__: list[str] = []

PATCHES = sorted(ZOO.glob("*.patch"))
BASE = "a\nb\nc\nd\ne\nb\nc\nf\n"


def changed_lines(before: str, after: str) -> int:
    """How many lines a diff of the two texts removes or adds."""
    return sum(1 for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def test_every_patch_is_a_target_and_every_patched_target_has_its_patch() -> None:
    """No patch lies unused in tests/go/zoo, and every variant target names one that is there."""
    used = {target.patch for target in _TARGETS.values() if target.patch is not None}
    assert PATCHES and used == set(PATCHES)


@pytest.mark.parametrize("patch", PATCHES, ids=[p.stem for p in PATCHES])
def test_every_zoo_patch_applies_to_fixed14_and_changes_a_few_lines(patch: Path) -> None:
    """A variant is fixed14 with one small bug: the patch applies and adds or changes at most 15 lines."""
    patched = apply(patch, FIXED14)
    assert patched
    for path, text in patched.items():
        base = FIXED14 / path
        before = base.read_text() if base.exists() else ""
        assert 0 < changed_lines(before, text) <= 15, (patch, path)
        assert "the bug" in text


def test_the_cache_key_covers_the_patch_and_the_overlaid_files(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing a variant's patch, or a file another module overlays (as fixed13 does fixed14's), changes its key."""
    monkeypatch.setattr(go_connectors, "GO_DIR", tmp_path)  # the key names files relative to it
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "x.go").write_text(BASE)
    for name, text in (("p.patch", "--- a/x.go\n+++ b/x.go\n@@ -4,1 +4,1 @@\n-d\n+D\n"), ("shared.go", "package x\n")):
        (tmp_path / name).write_text(text)
    target = go_connectors._Target(tmp_path / "base", ".", (tmp_path / "base",),
                                   (("y.go", tmp_path / "shared.go"),), tmp_path / "p.patch")
    keys = [go_connectors._source_hash("v", target, "go")]
    for name, old, new in (("p.patch", "+D", "+E"), ("shared.go", "x", "z")):
        (tmp_path / name).write_text((tmp_path / name).read_text().replace(old, new))
        keys.append(go_connectors._source_hash("v", target, "go"))
    assert len(set(keys)) == 3
    assert (FIXED14 / "destination.go") in {source for _, source in _TARGETS["fixed13"].overlay}


def test_a_hunk_is_placed_by_its_context_not_its_line_numbers(tmp_path: Path) -> None:
    """Line numbers off by any amount do not matter; the unique context does, and a description above is skipped."""
    (tmp_path / "f.go").write_text(BASE)
    patch = tmp_path / "p.patch"
    patch.write_text("what the bug is\n\n--- a/f.go\n+++ b/f.go\n@@ -40,3 +40,3 @@\n d\n-e\n+E\n b\n")
    assert apply(patch, tmp_path) == {"f.go": BASE.replace("e", "E")}


def test_a_hunk_whose_context_is_gone_is_refused(tmp_path: Path) -> None:
    """A base edited under the patch fails the build, naming the file, rather than patching the wrong place."""
    (tmp_path / "f.go").write_text(BASE)
    patch = tmp_path / "p.patch"
    patch.write_text("--- a/f.go\n+++ b/f.go\n@@ -1,2 +1,2 @@\n b\n-x\n+X\n")
    with pytest.raises(PatchError, match="f.go"):
        apply(patch, tmp_path)


def test_a_new_file_is_added_and_may_not_replace_one(tmp_path: Path) -> None:
    """`--- /dev/null` adds a file; one the base already has is an error, not an overwrite."""
    patch = tmp_path / "p.patch"
    patch.write_text("--- /dev/null\n+++ b/new.go\n@@ -0,0 +1,2 @@\n+package x\n+\n")
    (tmp_path / "old.go").write_text("package x\n")
    assert apply(patch, tmp_path) == {"new.go": "package x\n\n"}
    (tmp_path / "new.go").write_text("package x\n")
    with pytest.raises(PatchError, match="new.go"):
        apply(patch, tmp_path)
