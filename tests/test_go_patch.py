"""The Go zoo variants are patches of tests/go/fixed14 (tests/go_patch.py): every patch applies, is a build target and
changes only a few lines, and a patch that no longer fits its base is refused, never misplaced."""

import difflib
from pathlib import Path

import pytest

from tests import go_connectors
from tests.go_connectors import _TARGETS, FIXED14, ZOO
from tests.go_patch import apply, parse

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


@pytest.mark.parametrize(("hunk", "why"), [("@@ -1,2 +1,2 @@\n b\n-x\n+X\n", "is not in"),
                                           ("@@ -1,2 +1,2 @@\n b\n-c\n+C\n", "is 2 times in")])
def test_a_hunk_whose_context_is_missing_or_ambiguous_is_refused(tmp_path: Path, hunk: str, why: str) -> None:
    """A base edited under the patch, or a context too short to say where it goes, fails the build naming the hunk."""
    (tmp_path / "f.go").write_text(BASE)
    patch = tmp_path / "p.patch"
    patch.write_text("--- a/f.go\n+++ b/f.go\n" + hunk)
    with pytest.raises(ValueError, match=f"hunk 1 of f.go does not apply: its context and removed lines {why}"):
        apply(patch, tmp_path)


def test_a_new_file_is_added_and_may_not_replace_one(tmp_path: Path) -> None:
    """`--- /dev/null` adds a file; one the base already has is an error, not an overwrite."""
    patch = tmp_path / "p.patch"
    patch.write_text("--- /dev/null\n+++ b/new.go\n@@ -0,0 +1,2 @@\n+package x\n+\n")
    assert apply(patch, tmp_path) == {"new.go": "package x\n\n"}
    (tmp_path / "new.go").write_text("package x\n")
    with pytest.raises(ValueError, match="adds new.go, which .* already has"):
        apply(patch, tmp_path)


def test_the_hunk_header_counts_bound_the_hunk() -> None:
    """A hunk ends where its header's counts say; a line that does not fit, or a hunk cut short, is an error."""
    files = parse("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n\n", "p")
    assert [f.hunks for f in files] == [[[" a", "-b", "+B"]]]
    with pytest.raises(ValueError, match="ends early"):
        parse("--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n", "p")
    with pytest.raises(ValueError, match="does not fit the hunk"):
        parse("--- a/f\n+++ b/f\n@@ -1,1 +1,1 @@\n-a\n-b\n", "p")
    with pytest.raises(ValueError, match="no `--- a/FILE`"):
        parse("just text\n", "p")
