"""The documentation site: it builds with `mkdocs build --strict` (every page in the nav, every link and anchor
resolving, the examples it includes present), its reference pages name every option, Registration field and report
key the code has, and nothing shipped points users at this repository's tests/.
"""

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import plugin
from conformance.results.report import Recorder
from conformance.results.verdicts import verdicts
from harness import Registration, load_registration

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# Pages about the repository itself (its tests, Go modules and benchmarks), where naming tests/ is the point.
REPOSITORY_PAGES = ("development", "findings")
# Generated from this repository's own runs (tests/benchmarks/compat_matrix.py): its specs and replays name tests/.
REPOSITORY_FILES = ("reference/compatibility.md",)


def test_the_site_builds_strict(tmp_path: Path) -> None:
    missing = [name for name in ("mkdocs", "material") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not importable: pip install -e '.[docs]' (the test extra has them too)")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                            str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, timeout=600,
                           env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout[-3000:]}\n{built.stderr[-6000:]}"
    assert (tmp_path / "site" / "guide" / "write-a-destination" / "index.html").is_file()


class _Group:
    def __init__(self) -> None:
        self.options: list[str] = []

    def addoption(self, *names: str, **_: Any) -> None:
        self.options += [name for name in names if name.startswith("--")]


class _Parser:
    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {}

    def getgroup(self, name: str, description: str = "") -> _Group:
        return self.groups.setdefault(name, _Group())


def test_every_option_is_in_the_options_reference() -> None:
    parser = _Parser()
    plugin.pytest_addoption(parser)  # type: ignore[arg-type]
    options = parser.groups["conformance"].options
    assert "--conformance-conduit" in options
    page = (DOCS / "reference" / "options.md").read_text(encoding="utf-8")
    missing = [option for option in options if f"`{option}" not in page]
    assert not missing, f"docs/reference/options.md does not document {missing}"


def test_every_registration_field_is_in_the_registration_reference() -> None:
    page = (DOCS / "reference" / "registration.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` \|", page, re.M))
    fields = [f.name for f in dataclasses.fields(Registration)]
    assert not set(fields) - rows, f"docs/reference/registration.md lacks rows for {sorted(set(fields) - rows)}"
    assert not rows - set(fields) - {"valid_keys", "invalid_keys"}, f"rows for no field: {sorted(rows - set(fields))}"
    # What each key strategy yields, said exactly (harness/registration.py, conformance.generate.strategies.as_key).
    assert "`bytes`" in page and "`None` (a record without a key)" in page


def test_every_report_key_is_in_the_report_reference() -> None:
    registration = load_registration("reference:registration")
    table = verdicts([registration], [], 10.0)
    certificate = Recorder([registration], 10.0).certificate(table, "random", None)
    destination = certificate["destinations"][registration.name]
    row = next(iter(destination["clauses"].values()))
    keys = {*certificate, *certificate["hypothesis"], *destination, *row}
    page = (DOCS / "reference" / "report.md").read_text(encoding="utf-8")
    missing = sorted(key for key in keys if f"`{key}`" not in page)
    assert not missing, f"docs/reference/report.md does not describe the report's keys {missing}"


def _prose(text: str) -> str:
    """The text outside fenced code blocks (run transcripts there may name the modules they ran)."""
    return re.sub(r"^```.*?^```$", "", text, flags=re.S | re.M)


def test_nothing_shipped_points_at_the_tests() -> None:
    """README, CONTRACT.md and the user-facing pages send nobody to tests/, which the wheel does not hold; pages
    about the repository itself (development, findings) may."""
    pages = [REPO / "README.md", REPO / "CONTRACT.md",
             *(p for p in DOCS.rglob("*.md") if not p.is_symlink()
               and p.relative_to(DOCS).parts[0] not in REPOSITORY_PAGES
               and p.relative_to(DOCS).as_posix() not in REPOSITORY_FILES)]
    offenders = {}
    for page in pages:
        found = re.findall(r"`?\btests(?:/|\.(?=\w))[\w/.:-]*", _prose(page.read_text(encoding="utf-8")))
        if found:
            offenders[str(page.relative_to(REPO))] = found
    assert not offenders, f"these shipped documents point at tests/ (use examples/ instead): {offenders}"
