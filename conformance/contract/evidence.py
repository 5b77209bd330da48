"""Evidence as data: the key a recorded label is counted under, and the check that a label is one its clause
declares (an undeclared label is our bug, which would otherwise surface only as a clause "not checked")."""

import os
import warnings
from typing import NamedTuple

from conformance.contract.clauses import clause

__all__ = ["EvidenceKey", "UndeclaredEvidence", "STRICT_ENV", "declared", "check_declared"]

# Set by our own tests (tests/conftest.py): an undeclared label raises there; a user's run only warns, once.
STRICT_ENV = "CONFORMANCE_STRICT_EVIDENCE"
_SEPARATOR = "|"
_ANSWERED = "n/a:"  # the wire form's mark of a part an adapter answered (see EvidenceKey.answered)
_warned: set[tuple[str, str]] = set()


class UndeclaredEvidence(Exception):
    """A check recorded a label its clause does not declare: an internal error of the suite, not a verdict."""


class EvidenceKey(NamedTuple):
    """What one recorded piece of evidence is counted under: its clause, its label, and whether an adapter (SDK,
    plugin protocol) answered that part rather than the destination, which then neither counts as evidence nor
    leaves the clause unchecked."""

    clause: str
    label: str
    answered: bool = False

    def encode(self) -> str:
        """The key's form in a test report's JSON (reports cross process boundaries as text)."""
        return f"{self.clause}{_SEPARATOR}{_ANSWERED if self.answered else ''}{self.label}"

    @classmethod
    def decode(cls, text: str) -> "EvidenceKey":
        """The key `encode` wrote."""
        clause_id, _, label = text.partition(_SEPARATOR)
        answered = label.startswith(_ANSWERED)
        return cls(clause_id, label.removeprefix(_ANSWERED), answered)


def declared(clause_id: str, label: str) -> bool:
    """Whether `label` is one of the clause's evidence labels, required or optional."""
    known = clause(clause_id)
    return label in known.evidence or label in known.optional


def check_declared(key: EvidenceKey) -> None:
    """Raises UndeclaredEvidence for an undeclared label under our tests ($CONFORMANCE_STRICT_EVIDENCE set); in a
    user's run warns once per label instead, so our bug never decides their verdicts or stops their run."""
    if declared(key.clause, key.label):
        return
    message = (f"internal error of the conformance suite: evidence {key.label!r} is not declared by clause "
               f"{key.clause} (conformance/contract/clauses.py); please report it")
    if os.environ.get(STRICT_ENV):
        raise UndeclaredEvidence(message)
    if (key.clause, key.label) not in _warned:
        _warned.add((key.clause, key.label))
        warnings.warn(message, RuntimeWarning, stacklevel=3)
