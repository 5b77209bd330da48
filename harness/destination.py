"""The destination interface (CONTRACT.md section 1) and its do-nothing base class."""

from collections.abc import Awaitable, Mapping, Sequence
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

from .config import Parameter
from .records import Record

__all__ = ["Destination", "LifecycleEvents", "UnimplementedDestination", "METHODS", "LIFECYCLE", "LIFECYCLE_EVENTS",
           "missing_methods"]

T = TypeVar("T")
MaybeAwaitable: TypeAlias = T | Awaitable[T]

METHODS: tuple[str, ...] = ("parameters", "configure", "open", "write", "ack", "teardown")

# The optional lifecycle events (CONTRACT.md section 5): Conduit sends them around the runs of a connector, each in
# a process of its own (LifecycleOnCreated/OnUpdated after Configure and before Open, OnDeleted alone); a destination
# without the method takes them as no-ops.
LIFECYCLE_EVENTS: tuple[str, ...] = ("lifecycle_on_created", "lifecycle_on_updated", "lifecycle_on_deleted")

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


@runtime_checkable
class LifecycleEvents(Protocol):
    """The optional lifecycle events a destination may implement (all three or any; a missing one is a no-op)."""

    def lifecycle_on_created(self, config: Mapping[str, str]) -> MaybeAwaitable[None]:
        """The connector runs for the first time (after configure, before open): set up what it owns once."""
        ...

    def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> MaybeAwaitable[None]:
        """The config changed since the last run (after configure with `after`, before open)."""
        ...

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> MaybeAwaitable[None]:
        """The connector was deleted; `config` is its last one and nothing else is called but teardown."""
        ...


class UnimplementedDestination:
    """Base class whose every interface method raises NotImplementedError, so new methods never break subclasses;
    the optional lifecycle events are no-ops, as for a destination without them."""

    def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        """No-op: nothing to set up on a first start."""

    def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        """No-op: nothing to change when the config changes."""

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        """No-op: nothing to clean up when the connector is deleted."""

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
