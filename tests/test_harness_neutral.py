"""The interface layer knows nothing of the suite: no module under harness/ names a clause or a verdict, and the
suite's one mapping (conformance.contract.behaviours) turns the harness' behaviours into the verdicts it reports."""

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest

from conformance.contract.behaviours import LEFT_OUT, resolve
from conformance.contract.checks import NOT_APPLICABLE_PREFIX, NOT_CHECKED_PREFIX
from conformance.contract.clauses import CLAUSES
from conformance.results.verdicts import SKIPPED_PREFIX
from harness import Behaviour, Registration, UnimplementedDestination

HARNESS = Path(__file__).resolve().parents[1] / "harness"
# A clause id as a word of its own: not part of a longer id or name (write.empty-batch-ish, xwrite.count).
_CLAUSE_ID = re.compile("|".join(rf"(?<![\w.-]){re.escape(c)}(?![\w-])"
                                 for c in sorted(CLAUSES, key=len, reverse=True)))
_PREFIXES = (NOT_APPLICABLE_PREFIX, NOT_CHECKED_PREFIX, SKIPPED_PREFIX)


def suite_words(source: str) -> list[tuple[int, str]]:
    """(line, word) for every clause id or verdict prefix in a string literal of `source` (docstrings and f-strings
    included), and every clause id in a comment."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno, match[0]) for match in _CLAUSE_ID.finditer(node.value)]
            found += [(node.lineno, prefix) for prefix in _PREFIXES if prefix in node.value]
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found += [(token.start[0], match[0]) for match in _CLAUSE_ID.finditer(token.string)]
    return sorted(found)


def test_no_harness_module_names_a_clause_or_a_verdict() -> None:
    """Every string literal and comment under harness/ is free of the registry's clause ids, and every string
    literal of the report's verdict prefixes."""
    modules = sorted(HARNESS.rglob("*.py"))
    assert len(modules) > 10
    found = [f"{path.relative_to(HARNESS.parent)}:{line}: {word!r}"
             for path in modules for line, word in suite_words(path.read_text(encoding="utf-8"))]
    assert not found, "the harness names the suite's words (map a harness.Behaviour in conformance.contract." \
                      "behaviours instead):\n" + "\n".join(found)


def test_the_scan_finds_clause_ids_and_prefixes_wherever_a_string_holds_them() -> None:
    """A clause id as a whole string, inside a sentence, an f-string, a docstring or a comment is found; a longer
    word that merely contains one is not."""
    source = ('"""Module (see write.empty-batch)."""\n'
              'SKIPS = {"ack.in-order": "why"}\n'
              'reason = f"{x}: not applicable: the SDK"\n'
              'other = "write.empty-batch-ish and xwrite.count"  # write.count-like, then call.timeout\n')
    assert suite_words(source) == [(1, "write.empty-batch"), (2, "ack.in-order"), (3, "not applicable: "),
                                   (4, "call.timeout")]


def test_every_behaviour_is_mapped_onto_registered_clauses() -> None:
    """The mapping covers every Behaviour, and names only clauses in the registry, with a known verdict."""
    assert set(LEFT_OUT) == set(Behaviour)
    for behaviour, left in LEFT_OUT.items():
        for entry in left:
            assert entry.clause in CLAUSES, (behaviour, entry)
            assert entry.verdict in ("skipped", "not applicable"), (behaviour, entry)


def registration(**fields: object) -> Registration:
    """A registration of the interface's own unimplemented destination with these fields."""
    return Registration(factory=UnimplementedDestination, **fields)  # type: ignore[arg-type]


def test_behaviours_become_skips_and_inapplicable_clauses_with_the_reasons_the_report_gives() -> None:
    """Each behaviour's reason becomes the verdict's reason, with the suite's words added where it adds any; a
    measured fact ("not applicable") outranks what only may be hidden ("skipped") for the same clause."""
    reg = registration(behaviours={Behaviour.EMPTY_BATCH_NOT_SENT: "never sent",
                                   Behaviour.LARGE_MESSAGE_MAY_BE_REFUSED: "may be refused",
                                   Behaviour.NO_ACK_FROM_PIPELINE: "no ack",
                                   Behaviour.WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER: "answered"})
    seen = resolve(reg)
    assert list(seen.skip.items()) == [("write.empty-batch", "never sent and this clause is not checked"),
                                       ("write.large-payload", "may be refused"), ("ack.in-order", "no ack")]
    assert dict(seen.not_applicable) == {}
    measured = resolve(registration(behaviours={**reg.behaviours, Behaviour.EMPTY_BATCH_PANICS: "it panics",
                                                Behaviour.LARGE_MESSAGE_REFUSED: "refused"}))
    assert list(measured.skip) == ["ack.in-order"]
    assert dict(measured.not_applicable) == {"write.empty-batch": "it panics and this clause is not checked",
                                             "write.large-payload": "refused"}
    assert not measured.omits("lifecycle.out-of-order")  # the adapter's answer is told apart, the clause checked


def test_the_registrants_word_outranks_a_behaviour() -> None:
    """The registrant's own skip (kept in place), not_applicable, and check (a clause checked whatever the
    behaviours say) replace what a behaviour leaves out; resolving twice changes nothing."""
    behaviours = {Behaviour.EMPTY_BATCH_PANICS: "it panics", Behaviour.LARGE_MESSAGE_MAY_BE_REFUSED: "may be",
                  Behaviour.NO_ACK_FROM_PIPELINE: "no ack"}
    seen = resolve(registration(behaviours=behaviours, skip={"write.empty-batch": "mine", "write.count": "slow"},
                                not_applicable={"ack.in-order": "not mine"}, check=frozenset({"write.large-payload"})))
    assert list(seen.skip.items()) == [("write.empty-batch", "mine"), ("write.count", "slow")]
    assert dict(seen.not_applicable) == {"ack.in-order": "not mine"}
    assert resolve(seen) == seen


def test_a_registration_refuses_what_is_not_a_behaviour() -> None:
    """behaviours' keys are Behaviour members with a reason; check is a set of clause ids, not a string."""
    with pytest.raises(TypeError, match="harness.Behaviour members"):
        registration(behaviours={"write.empty-batch": "why"})
    with pytest.raises(TypeError, match=r"behaviours\[NO_ACK_FROM_PIPELINE\] needs a non-empty reason"):
        registration(behaviours={Behaviour.NO_ACK_FROM_PIPELINE: " "})
    with pytest.raises(TypeError, match="check must be a set of clause ids"):
        registration(check="write.count")
    with pytest.raises(TypeError, match="check names write.count, which skip or not_applicable leaves out"):
        registration(check=frozenset({"write.count"}), skip={"write.count": "slow"})


def test_the_conduit_registrations_report_behaviours_whose_verdicts_read_as_before() -> None:
    """A connector that is no Go binary, and an SDK destination in-process: the reasons the report gives, whole."""
    pytest.importorskip("conduit")
    from harness.conduit.sdk import sdk_registration
    from harness.conduit.standalone import standalone_registration
    from tests.conduit_sdk.file_destination import SdkFileDestination

    seen = resolve(standalone_registration([sys.executable, "tests/conduit_sdk/serve_file.py"],
                                           skip={"write.large-payload": None, "write.count": "slow"}))
    assert seen.skip == {
        "write.empty-batch": "Conduit never sends an empty batch on the Run stream (the Go SDK's adapter panics on "
                             "one), so the standalone driver answers write([]) with 0 itself and this clause is not "
                             "checked",
        "ack.in-order": "Conduit's destination protocol has no ack from the pipeline (acks flow from the connector "
                        "to Conduit), so ack() is the adapter's own no-op and there is nothing of the connector's to "
                        "check",
        "write.count": "slow"}
    assert not seen.not_applicable
    in_process = resolve(sdk_registration(SdkFileDestination, config={"directory": "{tmp}"}))
    assert dict(in_process.skip) == {"ack.in-order": seen.skip["ack.in-order"]} and not in_process.not_applicable
