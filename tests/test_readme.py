"""The README and the guide as users follow them: the authoring guide's code passes the suite, its mistakes fail
the clauses it names, the README's two commands are still the ones CI runs, and the README stays a front door.

The guide is docs/guide/write-a-destination.md; its ```python blocks whose first line is `# guide: <path>` each
become that file of a package in a temporary directory, and the suite runs on it the way the guide says.
"""

import re
import shlex
from pathlib import Path

import pytest

from conformance.contract.clauses import CLAUSES
from tests.support import summary

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
GUIDE = REPO / "docs" / "guide" / "write-a-destination.md"
GUIDE_BLOCK = re.compile(r"^```python\n# guide: (\S+)\n.*?^```$", re.S | re.M)
DESTINATION = "kvlog.registration:registration"
ENGINE = {c for c in CLAUSES if c.startswith("pipeline.")}  # need a Conduit engine: "not checked"
ENGINE |= {c for c in CLAUSES if c.startswith("fault.backend-")}  # and a backend over TCP, which files are not


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The text of the README's `## title` section, up to the next `## ` heading."""
    text = _readme()
    assert f"\n## {title}\n" in text, f"README.md has no '## {title}' section"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def guide_files() -> dict[str, str]:
    """Path -> source of every `# guide:` block, in the guide's order."""
    files: dict[str, str] = {}
    for match in GUIDE_BLOCK.finditer(_guide()):
        path, source = match.group(1), match.group(0).split("\n", 1)[1].rsplit("```", 1)[0]
        assert path not in files, f"{GUIDE.relative_to(REPO)} has two '# guide: {path}' blocks"
        files[path] = source
    return files


def write_guide(root: Path, replace: tuple[str, str] | None = None) -> None:
    """Writes the guide's files under `root` (an empty __init__.py in each package), with an optional edit
    (old, new) of kvlog/destination.py."""
    for path, source in guide_files().items():
        if replace is not None and path == "kvlog/destination.py":
            old, new = replace
            assert source.count(old) == 1, (f"the guide's {path} no longer holds {old!r} exactly once: update "
                                            "MISTAKES in tests/test_readme.py to the guide's code")
            source = source.replace(old, new)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
        init = target.parent / "__init__.py"
        if not init.exists():
            init.write_text("", encoding="utf-8")


def guide_command() -> list[str]:
    """The arguments of the guide's `pytest --destination=...` command."""
    lines = [line for block in re.findall(r"^```sh\n(.*?)^```$", _guide(), re.S | re.M)
             for line in block.splitlines() if line.startswith("pytest --destination=")]
    assert len(lines) == 1, f"the guide should show one 'pytest --destination=' command, found {lines}"
    return shlex.split(lines[0])[1:]


def test_the_guide_is_a_complete_package() -> None:
    files = guide_files()
    assert set(files) == {"kvlog/destination.py", "kvlog/registration.py"}, sorted(files)
    for path, source in files.items():
        compile(source, path, "exec")
    assert "UnimplementedDestination" in files["kvlog/destination.py"]
    for name in ("parameters_from(Config)", "parse_config(config, Config)", "WriteError(",
                 "destination_with_middleware(", "default_destination_middleware()"):
        assert name in files["kvlog/destination.py"], f"the guide's destination no longer uses {name}"
    assert "read_back=" in files["kvlog/registration.py"] and "directory_param=" in files["kvlog/registration.py"]
    assert guide_command() == [f"--destination={DESTINATION}"]


def test_the_guide_passes_every_clause_that_applies(pytester: pytest.Pytester) -> None:
    """The guide's package, run as the guide says under the conformance-ci profile: every clause passes but the
    pipeline.* ones, which are not checked; the guide's count line is what the run prints."""
    write_guide(pytester.path)
    result = pytester.runpytest_subprocess(*guide_command(), "--hypothesis-profile=conformance-ci",
                                           "-p", "no:cacheprovider", timeout=900)
    out = result.stdout.str()
    rows = summary(out, DESTINATION)
    assert set(rows) == set(CLAUSES), out[-3000:]
    not_passed = {c: s for c, s in rows.items() if c not in ENGINE and s != "passed"}
    assert not not_passed, f"the guide's destination does not pass: {not_passed}\n{out[-6000:]}"
    assert {rows[c] for c in ENGINE} == {"not checked"}
    assert result.ret == 0, out[-3000:]
    counts = re.search(r"^  (\d+ passed, \d+ failed, .*)$", out, re.M)
    assert counts and f"`{counts.group(1)}`" in _guide(), (
        f"the guide quotes another count line than the run prints: {counts and counts.group(1)}")


# The guide's mistakes: an edit of the guide's code, the clause the guide says reports it, and the suite module
# that checks that clause (the others are deselected; the conformance-dev profile, derandomized and without
# shrinking, keeps each run short and its outcome fixed).
MISTAKES = {
    "write.round-trip": (
        "            try:\n                self._append(encode(record))",
        "            if record.payload.after is None:\n                continue  # nothing to store?\n"
        "            try:\n                self._append(encode(record))",
        "test_conformance_write"),
    "write.count": (
        'raise WriteError(f"record {i}: {problem}", written=i)',
        'raise ValueError(f"record {i}: {problem}")',
        "test_conformance_write"),
    "open.creates-directory": (
        "os.makedirs(directory, exist_ok=True)",
        "os.path.isdir(directory) or os.mkdir(directory)",
        "test_conformance_open"),
    "safety.no-symlink-follow": (
        "os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC",
        "os.O_CREAT | os.O_CLOEXEC",
        "test_conformance_safety"),
    "configure.no-side-effects": (
        "self._config = parse_config(config, Config)  # ConfigError naming every bad key",
        "self._config = parse_config(config, Config)  # ConfigError naming every bad key\n"
        "        os.makedirs(self._config.directory, exist_ok=True)",
        "test_conformance_configure"),
    "fault.disk-full": (
        "os.ftruncate(self._fd, self._size)  # \"written\" means whole",
        "pass  # \"written\" means whole",
        "test_conformance_faults"),
}

QUICK_PROFILE = """
from hypothesis import Phase, settings

settings.register_profile("guide-mistakes", settings.get_profile("conformance-dev"), derandomize=True,
                          phases=[Phase.explicit, Phase.generate])
"""


@pytest.mark.parametrize("clause_id", list(MISTAKES))
def test_each_mistake_fails_the_clause_the_guide_names(pytester: pytest.Pytester, clause_id: str) -> None:
    old, new, module = MISTAKES[clause_id]
    assert f"[`{clause_id}`](../contract.md#{clause_id.replace('.', '')})" in _guide(), (
        f"the guide's list of mistakes no longer links {clause_id}")
    write_guide(pytester.path, replace=(old, new))
    pytester.makeconftest(QUICK_PROFILE)
    result = pytester.runpytest_subprocess(*guide_command(), "--hypothesis-profile=guide-mistakes",
                                           "-p", "no:cacheprovider", "-k", module, timeout=600)
    rows = summary(result.stdout.str(), DESTINATION)
    assert rows.get(clause_id) == "FAILED", (f"with the mistake for {clause_id}, its verdict is "
                                             f"{rows.get(clause_id)}\n{result.stdout.str()[-4000:]}")
    assert result.ret == 1


def test_the_two_commands_are_unchanged() -> None:
    """The README's two commands, verbatim, and CI (.ci/run) runs the second."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", _section("Two commands"), re.S | re.M)
    commands = [line for block in blocks for line in block.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "python3 -m pip install -e . && pytest --destination=reference:registration",
        "python3 -m pip install -e '.[test]' && python3 -m pytest -n 2 -q",
    ]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "python3 -m pytest -n 2 -q" in ci
    assert any(line.startswith("python3 -m pip install") and line.endswith("-e '.[test]'") for line in ci)


FRONT_DOOR_LINES = 200


def test_the_readme_is_a_front_door() -> None:
    """At most 200 lines: what it is, install, the two commands, one example and links to the docs; no timings of
    our own runs (they live nowhere: a user needs none of them), and every file it links to exists."""
    text = _readme()
    assert len(text.splitlines()) <= FRONT_DOOR_LINES, (
        f"README.md has {len(text.splitlines())} lines; keep it under {FRONT_DOOR_LINES} and move the rest to docs/")
    for section in ("Install", "Two commands", "Check your destination", "Documentation"):
        assert f"\n## {section}\n" in text, f"README.md has no '## {section}' section"
    assert "git+https://" in _section("Install"), "the README no longer shows the install from a git URL"
    assert "Registration(" in _section("Check your destination")
    assert "pytest --destination=" in _section("Check your destination")
    timings = re.findall(r"\b\d+ min(?:utes?)?\b|\b\d+(?:\.\d+)? ?s\b(?! of)|\bload (?:average|of)\b", text)
    assert not timings, f"README.md carries timings: {timings}"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert any(link.startswith("docs/") for link in links), "README.md no longer links to the docs"
    missing = [link for link in links if "://" not in link and not (REPO / link).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
