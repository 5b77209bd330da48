"""The contract shipped with the suite (CONTRACT.md, package data of `conformance`): its text, one clause's section,
and the generator that keeps the per-clause sections in step with `conformance.contract.clauses`.

The prose of CONTRACT.md is written by hand. The clause sections, between the lines `<!-- clauses:begin -->` and
`<!-- clauses:end -->`, are generated from CLAUSES (rule, how, needs, evidence), so after editing
conformance/contract/clauses.py:

    python -m conformance.contract --check    # exit 1 and a diff when CONTRACT.md's clause sections are stale
    python -m conformance.contract --write    # regenerate them in place (only the text between the markers)

Anchors: every clause section starts with the heading `### <clause id>`. GitHub (and most Markdown renderers) make
a heading's anchor by lower-casing it, dropping every character that is not a letter, digit, space, '-' or '_',
and turning spaces into '-'. So `### write.round-trip` is linked as `CONTRACT.md#writeround-trip`; clause_anchor
gives that fragment (without the '#').
"""

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from conformance.contract.clauses import CLAUSES, Clause, clause

__all__ = [
    "CONTRACT_FILE",
    "BEGIN_MARKER",
    "END_MARKER",
    "contract_text",
    "clause_section",
    "clause_anchor",
    "clause_list",
    "unknown_clause_message",
    "clause_sections",
    "render_clause_sections",
    "sync_clause_sections",
    "source_path",
    "main",
]

CONTRACT_FILE = "CONTRACT.md"
BEGIN_MARKER = "<!-- clauses:begin -->"
END_MARKER = "<!-- clauses:end -->"
_HEADING = "### "
_GENERATED_NOTE = ("<!-- Generated from conformance/contract/clauses.py by `python -m conformance.contract --write`; "
                   "edit clauses.py, not this block. -->")


def contract_text() -> str:
    """The whole contract, as shipped in the `conformance` package."""
    return resources.files("conformance").joinpath(CONTRACT_FILE).read_text(encoding="utf-8")


def clause_anchor(clause_id: str) -> str:
    """The fragment (no '#') that links to a clause's section, e.g. 'writeround-trip' for write.round-trip."""
    return _github_anchor(clause(clause_id).id)


def clause_section(clause_id: str) -> str:
    """One clause's section of the shipped contract, its heading included; KeyError for an unknown id."""
    clause(clause_id)  # KeyError naming an unknown id
    sections = clause_sections(contract_text())
    if clause_id not in sections:
        raise KeyError(f"{CONTRACT_FILE} has no section for clause {clause_id!r}")
    return sections[clause_id]


def clause_list() -> str:
    """Every clause id with its rule, one per line, in registry order."""
    width = max(len(cid) for cid in CLAUSES)
    return "\n".join(f"{c.id:<{width}}  {c.rule}" for c in CLAUSES.values())


def unknown_clause_message(clause_id: str) -> str:
    """The one-line error for a clause id that is not in the registry, listing the known ids."""
    return f"unknown clause id {clause_id!r}; known: {', '.join(CLAUSES)}"


def clause_sections(text: str) -> dict[str, str]:
    """The clause sections of a contract text, by the id in their heading, in the order they appear."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in _block(text).splitlines():
        if line.startswith(_HEADING):
            current = sections.setdefault(line[len(_HEADING):].strip(), [])
            current.append(line)
        elif re.match(r"#{1,3} ", line):
            current = None  # a higher heading inside the block ends the clause section
        elif current is not None:
            current.append(line)
    return {cid: "\n".join(lines).strip() for cid, lines in sections.items()}


def render_clause_sections(clauses: Iterable[Clause] | None = None) -> str:
    """The generated text between the markers: an index by area, then one section per clause in registry order."""
    chosen = list(CLAUSES.values() if clauses is None else clauses)
    parts = [_GENERATED_NOTE, ""]
    areas: dict[str, list[Clause]] = {}
    for c in chosen:
        areas.setdefault(c.area, []).append(c)
    for area, members in areas.items():
        links = ", ".join(f"[`{c.id}`](#{_github_anchor(c.id)})" for c in members)
        parts.append(f"- **{area}**: {links}")
    for c in chosen:
        parts += ["", _render_one(c)]
    return "\n".join(parts)


def sync_clause_sections(text: str, clauses: Iterable[Clause] | None = None) -> str:
    """`text` with everything between the markers replaced by render_clause_sections(clauses)."""
    begin, end = _marker_positions(text)
    return text[:begin] + "\n\n" + render_clause_sections(clauses) + "\n\n" + text[end:]


def source_path() -> Path:
    """The CONTRACT.md this package reads (in a checkout, conformance/CONTRACT.md links to the one at the root)."""
    return Path(str(resources.files("conformance").joinpath(CONTRACT_FILE)))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m conformance.contract --check | --write [--file PATH]`: verify or regenerate the clause sections."""
    parser = argparse.ArgumentParser(prog="python -m conformance.contract",
                                     description="Verify or regenerate CONTRACT.md's clause sections from "
                                                 "contract/clauses.py (the prose outside the markers is kept).")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff if the clause sections are stale")
    mode.add_argument("--write", action="store_true", help="regenerate the clause sections in place")
    parser.add_argument("--file", type=Path, default=None, metavar="PATH",
                        help=f"the contract to check or rewrite (default: {source_path()})")
    args = parser.parse_args(argv)
    path: Path = (args.file or source_path()).resolve()  # the real file, not conformance/CONTRACT.md's link
    try:
        text = path.read_text(encoding="utf-8")
        wanted = sync_clause_sections(text)
    except (OSError, ValueError) as err:
        print(f"{path}: {err}", file=sys.stderr)
        return 2
    if wanted == text:
        print(f"{path}: clause sections match conformance/contract/clauses.py ({len(CLAUSES)} clauses)")
        return 0
    if args.write:
        path.write_text(wanted, encoding="utf-8")
        print(f"{path}: clause sections regenerated ({len(CLAUSES)} clauses)")
        return 0
    diff = difflib.unified_diff(text.splitlines(keepends=True), wanted.splitlines(keepends=True),
                                f"{path} (now)", f"{path} (from clauses.py)")
    sys.stdout.writelines(diff)
    print(f"\n{path}: clause sections are stale; run: python -m conformance.contract --write", file=sys.stderr)
    return 1


def _render_one(c: Clause) -> str:
    lines = [f"{_HEADING}{c.id}", "", f"**Rule:** {c.rule}", "", f"**How it is checked:** {c.how}"]
    if c.needs:
        them = "it" if len(c.needs) == 1 else "any of them"
        lines += ["", f"**Needs:** {', '.join(c.needs)}; without {them} the clause is *not checked*, with the reason."]
    if c.evidence:
        lines += ["", "**Evidence needed for passed:**", ""] + [f"- {label}" for label in c.evidence]
    else:
        lines += ["", "**Evidence needed for passed:** none listed; a passing check is enough."]
    return "\n".join(lines)


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower(), flags=re.UNICODE).replace(" ", "-")


def _marker_positions(text: str) -> tuple[int, int]:
    """Where the generated block starts (just after BEGIN_MARKER) and ends (at END_MARKER)."""
    begin = text.find(BEGIN_MARKER)
    end = text.find(END_MARKER)
    if begin < 0 or end < 0 or end < begin:
        raise ValueError(f"{CONTRACT_FILE} needs the lines {BEGIN_MARKER} and {END_MARKER}, in that order")
    if text.count(BEGIN_MARKER) > 1 or text.count(END_MARKER) > 1:
        raise ValueError(f"{CONTRACT_FILE} holds {BEGIN_MARKER} or {END_MARKER} more than once")
    return begin + len(BEGIN_MARKER), end


def _block(text: str) -> str:
    begin, end = _marker_positions(text)
    return text[begin:end]

