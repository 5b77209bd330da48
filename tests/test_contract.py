"""CONTRACT.md, the clause registry and the suite agree; the contract is printed by the CLI and shipped in the wheel.

When clauses.py changes, resync the generated clause sections with `python -m conformance.contract --write`.
"""

import ast
import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conformance.contract.clauses import CLAUSES
from conformance.contract.document import (
    BEGIN_MARKER,
    clause_anchor,
    clause_section,
    clause_sections,
    contract_text,
    sync_clause_sections,
)
from harness import Registration

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "CONTRACT.md"
RESYNC = "resync with: python -m conformance.contract --write"


def _source() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def _field(section: str, label: str) -> str | None:
    """The text after `**label:** ` in a clause section, or None when the line is missing."""
    for line in section.splitlines():
        if line.startswith(f"**{label}:** "):
            return line[len(f"**{label}:** "):]
    return None


def _evidence(section: str) -> list[str]:
    """The bullet list under 'Evidence needed for passed:'."""
    lines = section.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("**Evidence needed for passed:**")), None)
    if start is None:
        return []
    labels = []
    for line in lines[start + 1:]:
        if line.startswith("- "):
            labels.append(line[2:])
        elif line.strip() and labels:
            break
    return labels


def _github_slugs(text: str) -> list[str]:
    """The anchors GitHub gives the headings of a Markdown text (code blocks left out), in order."""
    slugs, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            heading = line.lstrip("#").strip().replace("`", "")
            slugs.append(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return slugs


def test_the_shipped_contract_is_the_root_contract() -> None:
    assert contract_text() == _source(), ("conformance/CONTRACT.md (what the package ships) differs from "
                                          "CONTRACT.md: it must be a symlink to ../CONTRACT.md")


@pytest.mark.parametrize("clause_id", list(CLAUSES))
def test_every_clause_has_its_section(clause_id: str) -> None:
    clause = CLAUSES[clause_id]
    sections = clause_sections(_source())
    assert clause_id in sections, f"CONTRACT.md has no section '### {clause_id}'; {RESYNC}"
    section = sections[clause_id]
    for label, wanted in (("Rule", clause.rule), ("How it is checked", clause.how)):
        found = _field(section, label)
        assert found is not None, f"CONTRACT.md, clause {clause_id}: no '**{label}:**' line; {RESYNC}"
        assert found == wanted, (f"CONTRACT.md, clause {clause_id}: {label!r} differs\n"
                                 f"  CONTRACT.md: {found}\n  clauses.py:  {wanted}\n{RESYNC}")
    found_labels = _evidence(section)
    missing = [label for label in clause.evidence if label not in found_labels]
    extra = [label for label in found_labels if label not in clause.evidence]
    assert not missing and not extra, (f"CONTRACT.md, clause {clause_id}: evidence differs; missing: {missing}, "
                                       f"not in clauses.py: {extra}; {RESYNC}")
    if not clause.evidence:
        assert "none listed" in section, f"CONTRACT.md, clause {clause_id}: must say it lists no evidence"


def test_no_section_for_an_unknown_clause_and_registry_order() -> None:
    found = list(clause_sections(_source()))
    unknown = [cid for cid in found if cid not in CLAUSES]
    assert not unknown, f"CONTRACT.md has sections for clause ids not in clauses.py: {unknown}; {RESYNC}"
    assert found == list(CLAUSES), f"CONTRACT.md's clause sections are not in registry order; {RESYNC}"
    outside = _source().split(BEGIN_MARKER)[0]
    stray = [line for line in outside.splitlines() if line.startswith("### ") and line[4:].strip() in CLAUSES]
    assert not stray, f"clause headings outside the generated block: {stray}"


def test_generated_block_is_in_sync() -> None:
    text = _source()
    assert sync_clause_sections(text) == text, f"CONTRACT.md's clause block is stale; {RESYNC}"


def test_suite_marks_only_known_clauses() -> None:
    marked: dict[str, list[str]] = {}
    for path in sorted((REPO / "conformance" / "suite").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "clause"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "mark"):
                for arg in node.args:
                    assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                        f"{path.name}:{node.lineno}: @pytest.mark.clause takes a literal clause id")
                    marked.setdefault(arg.value, []).append(f"{path.name}:{node.lineno}")
    assert len(marked) > 10, f"found only {sorted(marked)} marked: did the suite's marker form change?"
    unknown = {cid: where for cid, where in marked.items() if cid not in CLAUSES}
    assert not unknown, f"suite tests mark clause ids that conformance/contract/clauses.py lacks: {unknown}"


def test_clause_anchors_are_unique_and_the_links_resolve() -> None:
    slugs = _github_slugs(_source())
    for clause_id in CLAUSES:
        anchor = clause_anchor(clause_id)
        assert anchor == clause_id.replace(".", "")
        assert slugs.count(anchor) == 1, f"anchor #{anchor} of {clause_id} is not exactly one heading's"
    for doc in ("README.md", "CONTRACT.md"):
        text = (REPO / doc).read_text(encoding="utf-8")
        for fragment in re.findall(r"\]\((?:CONTRACT\.md)?#([^)\s]+)\)", text):
            if doc == "README.md" and not re.search(rf"\]\(CONTRACT\.md#{re.escape(fragment)}\)", text):
                continue  # a link to a heading of the README itself
            assert fragment in slugs, f"{doc} links to CONTRACT.md#{fragment}, which no heading has"


def test_every_registration_field_is_documented() -> None:
    text = _source()
    registration = text.split("## 6. Registration", 1)[1].split("\n## ", 1)[0]
    names = [f.name for f in dataclasses.fields(Registration)]
    missing = [name for name in names if f"`{name}`" not in registration]
    assert not missing, f"CONTRACT.md section 6 does not describe Registration fields: {missing}"
    planned = "Planned for v1.1 and not in `Registration` yet: **`path_param`**" in registration
    assert planned == ("path_param" not in names), (
        "CONTRACT.md must describe path_param as planned exactly while Registration lacks it")


def test_nothing_points_at_the_shared_directory() -> None:
    needle = "../" + "shared"
    offenders = []
    for path in [REPO / "README.md", REPO / "CONTRACT.md", REPO / "pyproject.toml",
                 *[p for d in ("conformance", "harness", "reference", "tests") for p in (REPO / d).rglob("*.py")]]:
        if needle in path.read_text(encoding="utf-8", errors="replace"):
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"these files point at {needle}; point at CONTRACT.md instead: {offenders}"


def test_clause_section_api() -> None:
    section = clause_section("write.round-trip")
    assert section.startswith("### write.round-trip\n")
    assert CLAUSES["write.round-trip"].rule in section
    with pytest.raises(KeyError, match="no-such.clause"):
        clause_section("no-such.clause")
    with pytest.raises(KeyError, match="no-such.clause"):
        clause_anchor("no-such.clause")


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_cli_explains_a_clause_lists_them_and_prints_the_contract() -> None:
    explained = _cli("-m", "conformance", "--explain", "write.count")
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.strip() == clause_section("write.count")
    listed = _cli("-m", "conformance", "--clauses")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(CLAUSES)
    assert all(line.endswith(CLAUSES[line.split()[0]].rule) for line in lines)
    whole = _cli("-m", "conformance", "--contract")
    assert whole.returncode == 0 and whole.stdout.rstrip("\n") == contract_text().rstrip("\n")


def test_cli_unknown_clause_is_one_line_and_exit_2() -> None:
    result = _cli("-m", "conformance", "--explain", "write.nope")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "unknown clause id 'write.nope'" in lines[0] and "write.round-trip" in lines[0]


def test_pytest_options_explain_and_list(pytester: pytest.Pytester) -> None:
    explained = pytester.runpytest_subprocess("--conformance-explain=ack.in-order")
    assert explained.ret == 0
    assert clause_section("ack.in-order") in explained.stdout.str()
    listed = pytester.runpytest_subprocess("--conformance-clauses")
    assert listed.ret == 0
    assert all(cid in listed.stdout.str() for cid in CLAUSES)
    unknown = pytester.runpytest_subprocess("--conformance-explain=ack.nope")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in unknown.stderr.lines if line.strip()]
    assert len(errors) == 1 and "unknown clause id 'ack.nope'" in errors[0], unknown.stderr.str()


def test_contract_check_and_write(tmp_path: Path) -> None:
    ok = _cli("-m", "conformance.contract", "--check", "--file", str(CONTRACT))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    stale = tmp_path / "CONTRACT.md"
    rule = CLAUSES["write.count"].rule
    stale.write_text(_source().replace(rule, rule + " (edited)"), encoding="utf-8")
    checked = _cli("-m", "conformance.contract", "--check", "--file", str(stale))
    assert checked.returncode == 1 and "(edited)" in checked.stdout and "--write" in checked.stderr
    written = _cli("-m", "conformance.contract", "--write", "--file", str(stale))
    assert written.returncode == 0, written.stderr
    assert stale.read_text(encoding="utf-8") == _source()


# The wheel and sdist, built from a copy of the sources (so the checkout is left alone).

def _build(src: Path, out: Path, *args: str) -> None:
    for isolation in (["--no-isolation"], []):  # offline with the test extra installed; else fetch setuptools
        result = _cli("-m", "build", *isolation, *args, "--outdir", str(out), str(src))
        if result.returncode == 0:
            return
        if isolation and "Missing dependencies" in result.stdout + result.stderr:
            continue
        break
    pytest.fail(f"python -m build {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if importlib.util.find_spec("build") is None:
        pytest.skip("the 'build' package is not installed (pip install build, or the project's test extra), "
                    "so the wheel cannot be built here")
    root = tmp_path_factory.mktemp("dists")
    src = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".hypothesis")
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "CONTRACT.md"):
        shutil.copy2(REPO / name, src / name)
    for package in ("harness", "reference", "conformance"):
        shutil.copytree(REPO / package, src / package, symlinks=True, ignore=ignore)
    assert (src / "conformance" / "CONTRACT.md").is_symlink(), "conformance/CONTRACT.md should link to the root one"
    _build(src, root / "from-sdist")  # sdist, then a wheel built from the unpacked sdist
    _build(src, root / "from-tree", "--wheel")  # a wheel straight from the source tree
    return {"sdist": next((root / "from-sdist").glob("*.tar.gz")),
            "wheel from sdist": next((root / "from-sdist").glob("*.whl")),
            "wheel from tree": next((root / "from-tree").glob("*.whl"))}


@pytest.mark.parametrize("kind", ["wheel from sdist", "wheel from tree"])
def test_the_wheel_ships_the_contract(dists: dict[str, Path], kind: str) -> None:
    with zipfile.ZipFile(dists[kind]) as wheel:
        names = wheel.namelist()
        assert "conformance/CONTRACT.md" in names, f"{kind}: no conformance/CONTRACT.md in {names}"
        assert wheel.read("conformance/CONTRACT.md") == CONTRACT.read_bytes(), f"{kind}: CONTRACT.md differs"


def test_the_sdist_holds_the_contract_as_a_file(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as sdist:
        member = next((m for m in sdist.getmembers() if m.name.endswith("/conformance/CONTRACT.md")), None)
        assert member is not None, "the sdist lacks conformance/CONTRACT.md"
        assert member.isfile(), "the sdist stores conformance/CONTRACT.md as a link, not the file"
        assert sdist.extractfile(member).read() == CONTRACT.read_bytes()


def test_the_installed_wheel_explains_a_clause(dists: dict[str, Path], tmp_path: Path) -> None:
    with zipfile.ZipFile(dists["wheel from tree"]) as wheel:
        wheel.extractall(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = _cli("-c", "import conformance, conformance.__main__ as m; print(conformance.__file__); "
                        "m.main(['--explain', 'write.count'])", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    where, _, section = result.stdout.partition("\n")
    assert where.startswith(str(tmp_path / "site")), f"imported {where}, not the wheel's copy"
    assert section.strip() == clause_section("write.count")
