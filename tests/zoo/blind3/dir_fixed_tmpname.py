"""BUG (write.round-trip): a directory destination that stages every value in one fixed temporary file,
`<directory>/.tmp`, and renames it over the key. `.tmp` is itself a valid key: a record stored under it is
overwritten and renamed away by the next write of any other key."""

import os

from harness import (
    Destination,
    Registration,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
)
from reference.file_destination import FileDestination

__all__ = ["Dest", "factory", "registration"]

FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class Dest(FileDestination):
    """The reference, with a fixed staging name."""

    def _new_temp(self) -> tuple[bytes, int]:
        tmp = self._base + b".tmp"  # BUG: a name in the keys' namespace
        return tmp, os.open(tmp, FLAGS, 0o644)


def factory() -> Destination:
    """The destination with the default middleware."""
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"directory": "{tmp}/out"},
                            read_back=directory_reader("directory"), directory_param="directory")
