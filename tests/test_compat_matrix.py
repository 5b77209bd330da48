"""The compatibility matrix's generator (tests/benchmarks/compat_matrix.py) on two small saved JSON reports, cut
down from its own runs (tests/compat_reports: the reference and postgres v0.14.0, both run with Conduit v0.14.0),
not by running connectors; and the committed page against the generator's columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conformance.contract.clauses import CLAUSES
from tests.benchmarks.compat_matrix import COLUMNS, FINDINGS, PAGE, Column, load_reports, render

SAVED = Path(__file__).resolve().parent / "compat_reports"
REFERENCE = Column("reference", "reference (Python)", "reference:registration", "conduit14")
POSTGRES = Column("postgres14", "postgres v0.14.0", "tests.conduit_v014:upstream14_postgres", "conduit14",
                  ("upstream14-postgres",), ("postgres",), "postgres-v0.14.0.md")
TWO = (REFERENCE, POSTGRES)


@pytest.fixture(scope="module")
def page() -> str:
    """The page generated from the two saved reports."""
    return render(load_reports(SAVED, TWO), TWO, FINDINGS)


def _table_rows(text: str) -> dict[str, list[str]]:
    """clause -> its cells, from the clause table."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\| `([a-z-]+\.[a-z-]+)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


def test_every_clause_has_a_row_with_each_connectors_verdict(page: str) -> None:
    """One row per clause of the registry, in its order, one cell per column, each the report's verdict."""
    rows = _table_rows(page)
    assert list(rows) == list(CLAUSES)
    reports = load_reports(SAVED, TWO)
    for index, column in enumerate(TWO):
        saved = reports[column.key]["destinations"][column.spec]["clauses"]
        for clause, cells in rows.items():
            if clause not in saved:  # a clause added since the report was made
                assert cells[index] == "?", (column.key, clause, cells)
                continue
            status = saved[clause]["status"]
            assert (cells[index] == "✅") == (status == "passed"), (column.key, clause, cells)
            assert cells[index].startswith("[❌]") == (status == "failed"), (column.key, clause, cells)


def test_each_failure_links_to_its_replay_and_its_findings_row(page: str) -> None:
    """A failed cell links to an entry on the page holding the report's reason, the findings page's row for that
    clause (its anchor), and the command that reruns the clause's checks with the services it needs."""
    failed = sorted(c for c, cells in _table_rows(page).items() if cells[1].startswith("[❌]"))
    assert failed == ["lifecycle.out-of-order", "write.invalid-key-count", "write.round-trip"]
    for clause in failed:
        anchor = f"f-postgres14-{clause.replace('.', '-')}"
        assert f"[❌](#{anchor})" in page
        entry = page.split(f'<a id="{anchor}"></a>', 1)[1].split("<a id=", 1)[0]
        assert entry.startswith(f"**postgres v0.14.0**, `{clause}`: ")
        assert f"(../findings/postgres-v0.14.0.md#{clause.replace('.', '-')})" in entry
        assert (f"CONFORMANCE_POSTGRES_DSN=... python -m pytest --destination={POSTGRES.spec} "
                f"--hypothesis-profile=conformance-quick --conformance-clause={clause}") in entry
    assert "write.invalid-key-count" in page and "WriteError.written=0" in page  # the report's reason, as saved
    targets = set(re.findall(r"\]\(#([\w-]+)\)", page))
    assert targets == set(re.findall(r'<a id="([\w-]+)"></a>', page))  # no dangling link, no orphan entry


def test_columns_name_the_engine_and_the_sdk_from_the_reports(page: str, tmp_path: Path) -> None:
    """The legend takes the engine's release from the report's `engine` and the SDK from `built_with`; a run
    without an engine says so."""
    assert "| reference (Python) | `reference:registration` | native | Conduit v0.14.0 |" in page
    legend = "| postgres v0.14.0 | `tests.conduit_v014:upstream14_postgres` | `conduit-connector-sdk` v0.14.1 | "
    assert legend + "Conduit v0.14.0 |" in page
    for column in TWO:
        report = json.loads((SAVED / f"{column.key}.json").read_text())
        report["engine"] = None  # as a run without --conformance-conduit writes it
        (tmp_path / f"{column.key}.json").write_text(json.dumps(report))
    assert legend + "no engine (not checked) |" in render(load_reports(tmp_path, TWO), TWO, FINDINGS)


def test_a_findings_page_without_the_clauses_anchor_is_linked_whole(tmp_path: Path) -> None:
    """Where the findings page has no row anchored for the clause, the entry links to the page itself."""
    (tmp_path / "postgres-v0.14.0.md").write_text("# postgres\n\nno anchors here\n")
    text = render(load_reports(SAVED, TWO), TWO, tmp_path)
    assert "(../findings/postgres-v0.14.0.md)" in text and "postgres-v0.14.0.md#" not in text


def test_a_missing_or_foreign_report_is_refused(tmp_path: Path) -> None:
    """Every column needs its own report: a missing file is named, and a report of another destination is refused
    rather than shown under the wrong connector."""
    with pytest.raises(FileNotFoundError, match="postgres14.json"):
        load_reports(tmp_path, TWO)
    for column in TWO:
        (tmp_path / f"{column.key}.json").write_text((SAVED / "reference.json").read_text())
    with pytest.raises(ValueError, match="has no destination 'tests.conduit_v014:upstream14_postgres'"):
        render(load_reports(tmp_path, TWO), TWO, FINDINGS)


def test_the_committed_page_shows_every_column_and_resolves_its_links() -> None:
    """docs/reference/compatibility.md was generated with today's columns (one added since makes this fail until
    the page is regenerated), every clause has a row, and each failure's link has its entry."""
    text = PAGE.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| clause |"))
    assert header == "| clause | " + " | ".join(c.label for c in COLUMNS) + " |"
    assert list(_table_rows(text)) == list(CLAUSES)
    assert set(re.findall(r"\]\(#([\w-]+)\)", text)) == set(re.findall(r'<a id="([\w-]+)"></a>', text))
    for column in COLUMNS:
        assert f"`{column.spec}`" in text
