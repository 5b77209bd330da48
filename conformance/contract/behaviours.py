"""Which clauses each of the harness' behaviours (harness.Behaviour) leaves out, and with which verdict: the one
place the suite maps those neutral facts onto its clauses, and the registration a run sees once they are."""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from harness import Behaviour, Registration

__all__ = ["LeftOut", "LEFT_OUT", "resolve"]


@dataclass(frozen=True)
class LeftOut:
    """A clause a behaviour leaves out: its verdict, and the words the suite adds to the behaviour's reason."""

    clause: str
    verdict: Literal["skipped", "not applicable"]  # "not applicable": a measured fact; "skipped": what may be hidden
    adds: str = ""


_UNCHECKED = " and this clause is not checked"

# Every Behaviour, with the clauses it leaves out (tests/test_harness_neutral.py holds it to the registry).
LEFT_OUT: Mapping[Behaviour, tuple[LeftOut, ...]] = {
    Behaviour.EMPTY_BATCH_NOT_SENT: (LeftOut("write.empty-batch", "skipped", _UNCHECKED),),
    Behaviour.EMPTY_BATCH_PANICS: (LeftOut("write.empty-batch", "not applicable", _UNCHECKED),),
    Behaviour.LARGE_MESSAGE_MAY_BE_REFUSED: (LeftOut("write.large-payload", "skipped"),),
    Behaviour.LARGE_MESSAGE_REFUSED: (LeftOut("write.large-payload", "not applicable"),),
    # None: the adapter's LifecycleError is its own, which the lifecycle checks tell apart (adapter_answers()).
    Behaviour.WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER: (),
    Behaviour.NO_ACK_FROM_PIPELINE: (LeftOut("ack.in-order", "skipped"),),
}


def resolve(registration: Registration) -> Registration:
    """The registration as a run sees it: its skip and not_applicable with what its behaviours leave out added,
    except the clauses its own skip, not_applicable or check name (a measured "not applicable" outranks a "skipped"
    of the same clause). Resolving twice changes nothing."""
    skipped: dict[str, str] = {}
    inapplicable: dict[str, str] = {}
    for behaviour, reason in registration.behaviours.items():
        for left in LEFT_OUT[behaviour]:
            (inapplicable if left.verdict == "not applicable" else skipped)[left.clause] = reason + left.adds
    # The registrant's skip replaces a behaviour's verdict in place (the header lists them in this order).
    skip = {**skipped, **registration.skip}
    not_applicable = {clause: reason for clause, reason in inapplicable.items() if clause not in registration.skip}
    not_applicable.update(registration.not_applicable)
    for clause in registration.check:
        skip.pop(clause, None)
        not_applicable.pop(clause, None)
    skip = {clause: reason for clause, reason in skip.items() if clause not in not_applicable}
    return replace(registration, skip=skip, not_applicable=not_applicable)
