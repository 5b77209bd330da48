"""A clause's verdict status, one enum for every place that judges, stores or prints it (verdicts, the terminal
table, the JSON certificate, Markdown, the baseline)."""

from enum import Enum

__all__ = ["Status", "PARTLY"]

# A passed verdict whose reason starts so was passed with parts not checked or not applicable (the notes follow).
PARTLY = "partly: "


class Status(str, Enum):
    """A clause's verdict; its value is the text reports carry (JSON "status", Markdown's verdict column). A str,
    so a row's status compares equal to its text and JSON writes it as that text."""

    PASSED = "passed"
    FAILED = "failed"
    KNOWN_FAILURE = "known failure"  # failed, as it did in the baseline
    NOT_CHECKED = "not checked"
    NOT_APPLICABLE = "not applicable"
    SKIPPED = "skipped"  # by the registration

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def mark(self) -> str:
        """The status in the terminal's clause table."""
        return _MARKS[self]

    @property
    def icon(self) -> str:
        """The status's icon in the Markdown table."""
        return _ICONS[self]

    @property
    def failing(self) -> bool:
        """Whether the clause failed (also when the baseline knew it would)."""
        return self in (Status.FAILED, Status.KNOWN_FAILURE)

    @property
    def judged(self) -> bool:
        """Whether the run judged the clause: passed or failed, not left unchecked, inapplicable or skipped."""
        return self is Status.PASSED or self.failing


_MARKS = {Status.PASSED: "passed", Status.FAILED: "FAILED", Status.KNOWN_FAILURE: "known fail",
          Status.NOT_CHECKED: "not checked", Status.NOT_APPLICABLE: "n/a", Status.SKIPPED: "skipped"}
_ICONS = {Status.PASSED: "✅", Status.FAILED: "❌", Status.KNOWN_FAILURE: "⚠️", Status.NOT_CHECKED: "➖",
          Status.NOT_APPLICABLE: "▫️", Status.SKIPPED: "⏭️"}
