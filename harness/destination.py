"""The destination interface (CONTRACT.md section 1) and its do-nothing base class."""

from collections.abc import Awaitable, Mapping, Sequence
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

from .config import Parameter
from .records import Record

__all__ = ["Destination", "UnimplementedDestination", "METHODS", "LIFECYCLE", "missing_methods"]

T = TypeVar("T")
MaybeAwaitable: TypeAlias = T | Awaitable[T]

METHODS: tuple[str, ...] = ("parameters", "configure", "open", "write", "ack", "teardown")

LIFECYCLE: Mapping[str, frozenset[str]] = {  # CONTRACT.md section 5: the calls each state allows (`parameters` always)
    "new": frozenset({"configure", "teardown"}),
    "configured": frozenset({"open", "teardown"}),
    "open": frozenset({"write", "ack", "teardown"}),
    "open failed": frozenset({"teardown"}),
    "torn down": frozenset({"teardown"}),
}


@runtime_checkable
class Destination(Protocol):
    """What the harness drives; every method may be a plain `def` or an `async def`."""

    def parameters(self) -> MaybeAwaitable[Mapping[str, Parameter]]:
        """The parameters `configure` accepts, by name."""
        ...

    def configure(self, config: Mapping[str, str]) -> MaybeAwaitable[None]:
        """Validate and keep the config; raise ConfigError naming each bad key."""
        ...

    def open(self) -> MaybeAwaitable[None]:
        """Prepare to write (create directories, open connections)."""
        ...

    def write(self, records: Sequence[Record]) -> MaybeAwaitable[int]:
        """Write all records and return len(records), or raise WriteError(written=n)."""
        ...

    def ack(self, position: bytes) -> MaybeAwaitable[None]:
        """The record at `position` was processed by the pipeline."""
        ...

    def teardown(self) -> MaybeAwaitable[None]:
        """Release everything; no other call follows (a second teardown is a no-op)."""
        ...


class UnimplementedDestination:
    """Base class whose every method raises NotImplementedError, so new methods never break subclasses."""

    def parameters(self) -> Mapping[str, Parameter]:
        """Not implemented."""
        raise NotImplementedError(f"{type(self).__name__}.parameters is not implemented")

    def configure(self, config: Mapping[str, str]) -> None:
        """Not implemented."""
        raise NotImplementedError(f"{type(self).__name__}.configure is not implemented")

    def open(self) -> None:
        """Not implemented."""
        raise NotImplementedError(f"{type(self).__name__}.open is not implemented")

    def write(self, records: Sequence[Record]) -> int:
        """Not implemented."""
        raise NotImplementedError(f"{type(self).__name__}.write is not implemented")

    def ack(self, position: bytes) -> None:
        """Not implemented."""
        raise NotImplementedError(f"{type(self).__name__}.ack is not implemented")

    def teardown(self) -> None:
        """Not implemented."""
        raise NotImplementedError(f"{type(self).__name__}.teardown is not implemented")


def missing_methods(obj: object) -> list[str]:
    """The interface methods `obj` lacks (empty for a destination)."""
    return [name for name in METHODS if not callable(getattr(obj, name, None))]
