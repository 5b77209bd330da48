"""Every evidence label a check records is one its clause declares: by a static scan of the suite and, at run
time, by Subject.saw (which raises under our tests and warns once in a user's run)."""

import ast
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.contract import evidence
from conformance.contract.clauses import CLAUSES
from conformance.contract.evidence import STRICT_ENV, EvidenceKey, UndeclaredEvidence
from conformance.execute.subject import Subject
from harness import Registration

REPO = Path(__file__).resolve().parents[1]
RECORDING = [*sorted((REPO / "conformance" / "suite").glob("test_conformance_*.py")),
             REPO / "conformance" / "execute" / "session.py"]


def _shapes(node: ast.expr) -> Iterator[re.Pattern[str] | None]:
    """The labels an argument can be, as patterns (an f-string's fields match anything); None when unknowable
    statically (a variable: the run-time check covers it)."""
    if isinstance(node, ast.IfExp):
        yield from _shapes(node.body)
        yield from _shapes(node.orelse)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield re.compile(re.escape(node.value))
    elif isinstance(node, ast.JoinedStr):
        yield re.compile("".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values))
    else:
        yield None


def _marked(function: ast.AST) -> set[str]:
    """The clause ids a function's @pytest.mark.clause(...) decorators name."""
    ids = set()
    for decorator in getattr(function, "decorator_list", []):
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "clause"):
            ids |= {a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return ids


def _recordings(path: Path) -> Iterator[tuple[int, ast.expr, set[str]]]:
    """Each saw(...) call's line, label argument and the clauses it may record for: the one it names, else its
    function's marker, else (a helper or a state machine) any clause the module marks."""
    tree = ast.parse(path.read_text())
    module_clauses = set().union(*(_marked(n) for n in ast.walk(tree)))
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        own = _marked(function) or module_clauses
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "saw"
                    and call.args):
                continue
            named = call.args[1] if len(call.args) > 1 else next(
                (k.value for k in call.keywords if k.arg == "clause_id"), None)
            if isinstance(named, ast.Constant) and isinstance(named.value, str):
                yield call.lineno, call.args[0], {named.value}
            else:
                yield call.lineno, call.args[0], own


def test_every_label_the_suite_records_is_declared() -> None:
    """A label a check records (a literal, an f-string's shape, either branch of a conditional) matches a label
    that one of the clauses it may record for declares (required or optional)."""
    undeclared, seen = [], 0
    for path in RECORDING:
        for line, argument, clauses in _recordings(path):
            declared = [label for c in clauses for label in (*CLAUSES[c].evidence, *CLAUSES[c].optional)]
            for shape in _shapes(argument):
                if shape is None:
                    continue
                seen += 1
                if not any(shape.fullmatch(label) for label in declared):
                    undeclared.append(f"{path.name}:{line}: {shape.pattern} (for {sorted(clauses)})")
    assert seen >= 60, seen  # the scan found the suite's recordings (63 calls when this was written)
    assert undeclared == []


def test_the_scan_catches_an_undeclared_label(tmp_path: Path) -> None:
    """The scan is not vacuous: a check recording a label no clause declares is reported."""
    module = tmp_path / "test_conformance_x.py"
    module.write_text('import pytest\n@pytest.mark.clause("write.recovers")\n'
                      'def test_x(s):\n    s.saw("recovered after an I/O eror")\n    s.saw(f"{x} when new")\n')
    found = [(line, [s.pattern if s else None for s in _shapes(arg)], clauses)
             for line, arg, clauses in _recordings(module)]
    assert found[0][2] == {"write.recovers"}
    declared = CLAUSES["write.recovers"].evidence + CLAUSES["write.recovers"].optional
    assert not any(re.fullmatch(found[0][1][0] or "", label) for label in declared)


def _subject() -> Subject:
    return Subject(Registration(factory=object), "write.recovers", timeout=5.0)


def test_recording_an_undeclared_label_raises_under_our_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """With $CONFORMANCE_STRICT_EVIDENCE set (tests/conftest.py sets it), an undeclared label raises; declared
    ones, required and optional, are counted under their structured key."""
    monkeypatch.setenv(STRICT_ENV, "1")
    subject = _subject()
    subject.saw("recovered after an invalid key")
    subject.saw("recovered after an I/O error")
    subject.saw("read when new", "parameters.shape", answered=True)
    assert {EvidenceKey.decode(k): n for k, n in subject.evidence.items()} == {
        EvidenceKey("write.recovers", "recovered after an invalid key"): 1,
        EvidenceKey("write.recovers", "recovered after an I/O error"): 1,
        EvidenceKey("parameters.shape", "read when new", answered=True): 1}
    with pytest.raises(UndeclaredEvidence, match="not declared by clause write.recovers"):
        subject.saw("recovered after a typo")
    with pytest.raises(KeyError, match="unknown clause id"):
        subject.saw("anything", "no.such-clause")


def test_a_users_run_warns_once_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable, an undeclared label is an internal-error warning, once per label, not an exception."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.setattr(evidence, "_warned", set())
    subject = _subject()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        subject.saw("recovered after a typo")
        subject.saw("recovered after a typo")
    assert [str(w.message) for w in caught] == [
        "internal error of the conformance suite: evidence 'recovered after a typo' is not declared by clause "
        "write.recovers (conformance/contract/clauses.py); please report it"]
    assert subject.evidence == {"write.recovers|recovered after a typo": 2}


@pytest.mark.parametrize("key", [EvidenceKey("write.count", "whole batch counted"),
                                 EvidenceKey("lifecycle.out-of-order", "open when new", answered=True),
                                 EvidenceKey("x.y", "a|b")])
def test_evidence_keys_round_trip_through_their_text(key: EvidenceKey) -> None:
    """A key survives its report form (labels may hold the separator; clause ids never do)."""
    assert EvidenceKey.decode(key.encode()) == key
