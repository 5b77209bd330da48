"""The failure every check raises: clause id, rule, what happened, the minimal calls, and a replay snippet."""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from conformance.contract.clauses import clause
from conformance.execute.replay import Call, render_call

__all__ = ["ClauseFailure", "SetupCause", "NOT_CHECKED_PREFIX", "NOT_APPLICABLE_PREFIX", "names_path"]

NOT_CHECKED_PREFIX = "not checked: "
NOT_APPLICABLE_PREFIX = "not applicable: "


@dataclass(frozen=True)
class SetupCause:
    """A failure of a call every check makes before it gets to its clause (the registered config's factory,
    configure() or open()): what the report's root cause groups failures by."""

    call: Literal["factory", "configure", "open"]
    error: str  # the exception's type name, or "did not return"

    @classmethod
    def of(cls, call: Literal["factory", "configure", "open"], error: BaseException | None) -> "SetupCause":
        """The cause of `call` raising `error` (None: it did not return)."""
        return cls(call, "did not return" if error is None else type(error).__name__)


class ClauseFailure(AssertionError):
    """A destination broke a clause; the message is everything a reader needs to act."""

    def __init__(
        self,
        clause_id: str,
        what: str,
        calls: Sequence[Call] = (),
        snippet: str = "",
        timeout: bool = False,
        spec: str = "",
        tmp: str = "",
        cause: SetupCause | None = None,
    ) -> None:
        self.clause = clause(clause_id)
        self.what = what
        self.cause = cause  # set when the failure is a set-up call failing, not the clause's own judgement
        self.timeout = timeout
        self.calls, self.spec, self.tmp = list(calls), spec, tmp  # for saving the failure as a regression test
        lines = [f"[{self.clause.id}] {self.clause.rule}"]
        if timeout:
            lines.append("[call.timeout] a call did not return within the per-call limit")
        lines.append(f"What happened: {what}")
        if calls:
            lines.append("Calls (the minimal example hypothesis found):")
            lines.extend(render_call(c, indent="    ") for c in calls)
        if snippet:
            lines.append("Replay it:")
            lines.extend("    " + line for line in snippet.splitlines())
        super().__init__("\n".join(lines))


def names_path(error: BaseException, *paths: str) -> bool:
    """Whether an error names one of `paths`, in its message or as its OSError filename."""
    filename = getattr(error, "filename", None)
    if isinstance(filename, bytes):
        filename = os.fsdecode(filename)
    return filename in paths or any(p in str(error) for p in paths)
