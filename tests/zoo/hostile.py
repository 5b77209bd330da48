"""Hostile destinations: each attacks the run itself (kills its process, exits, interrupts, floods the output, leaves a
thread, returns the wrong type); tests/test_hostile.py checks that each fails a clause and the run goes on."""

import os
import sys
import threading
from collections.abc import Sequence

from harness import Record
from reference import FileDestination
from tests.zoo.broken import _registration, _with_default_middleware

__all__ = ["Kills", "WrongType", "Exits", "Interrupt", "Interrupts", "Chatty", "Lingers", "kills", "wrong_type",
           "exits", "interrupts", "chatty", "lingers"]


class Kills(FileDestination):
    """Ends its process (os._exit) on a batch of more than one record."""

    def write(self, records: Sequence[Record]) -> int:
        if len(records) > 1:
            os._exit(7)
        return super().write(records)


class WrongType(FileDestination):
    """Returns the count as a string."""

    def write(self, records: Sequence[Record]) -> int:
        return str(super().write(records))  # type: ignore[return-value]  # the wrong type is the point


class Exits(FileDestination):
    """Raises SystemExit on a batch of more than one record."""

    def write(self, records: Sequence[Record]) -> int:
        if len(records) > 1:
            sys.exit("bye")
        return super().write(records)


class Interrupt(KeyboardInterrupt):
    """A KeyboardInterrupt subclass, as a library's own might be."""


class Interrupts(FileDestination):
    """Raises a KeyboardInterrupt subclass on a batch of more than one record."""

    def write(self, records: Sequence[Record]) -> int:
        if len(records) > 1:
            raise Interrupt()
        return super().write(records)


class Chatty(FileDestination):
    """Prints megabytes to stdout and stderr on every write."""

    def write(self, records: Sequence[Record]) -> int:
        sys.stdout.write("x" * 2_000_000)
        sys.stderr.write("y" * 2_000_000)
        return super().write(records)


class Lingers(FileDestination):
    """Starts a thread in open() that outlives teardown()."""

    def open(self) -> None:
        super().open()
        threading.Thread(target=threading.Event().wait, args=(3600,), daemon=True, name="never-ends").start()


kills, wrong_type, exits, interrupts, chatty, lingers = (
    _registration(_with_default_middleware(cls)) for cls in (Kills, WrongType, Exits, Interrupts, Chatty, Lingers))
