"""BUG (lifecycle.events): a directory destination whose OnDeleted removes its leftover temporary files, recognised
as "hidden" names (starting with '.'), since its own temporary files are dot-files. A user's key such as '.env' or
'.x' is a hidden name too, and OnDeleted deletes that record."""

import os
from collections.abc import Mapping

from harness import Registration, default_destination_middleware, destination_with_middleware, directory_reader
from harness.destination import Destination
from reference.file_destination import FileDestination

__all__ = ["registration"]


class Dest(FileDestination):
    """The reference, sweeping dot-files on OnDeleted."""

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        directory = os.fsencode(os.path.abspath(config["directory"]))
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if name.startswith(b"."):  # BUG: keys can start with a dot too
                path = os.path.join(directory, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    os.unlink(path)


def factory() -> Destination:
    """The destination with the default middleware."""
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"directory": "{tmp}/out"},
                            read_back=directory_reader("directory"), directory_param="directory")
