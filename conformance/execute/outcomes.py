"""What a call did (Outcome), how replays show it, and values shown as source (Code)."""

from dataclasses import dataclass
from typing import Any

__all__ = ["Code", "Outcome", "describe", "one_line"]


class Code:
    """A value that shows as the given Python source in replay snippets."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


@dataclass
class Outcome:
    """What a call did: its value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the call returned normally."""
        return self.error is None


def describe(err: BaseException) -> str:
    """`Type: message`, as failure messages and replays show an exception."""
    return f"{type(err).__name__}: {err}"


def one_line(text: str, limit: int = 200) -> str:
    """The first line of `text`, cut to `limit`: a call's outcome is a comment on one line of the replay."""
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= limit and first == text else first[:limit] + " ..."
