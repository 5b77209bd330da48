"""Broken destinations for lifecycle.events: the reference with one lifecycle event that goes wrong.

Listed in tests.zoo.broken (which imports these registrations), so the zoo runs them like every other broken one.
"""

import os
import shutil
import time
from collections.abc import Mapping

from harness import default_destination_middleware, destination_with_middleware, directory_reader, parse_config
from harness.destination import Destination
from harness.registration import Registration
from reference.file_destination import FileConfig, FileDestination

__all__ = ["created_needs_directory", "updated_deletes_data", "deleted_hangs", "created_marker_beside_directory"]


def _directory(config: Mapping[str, str]) -> str:
    return os.path.abspath(parse_config(config, FileConfig).directory)


class CreatedNeedsDirectory(FileDestination):
    """Breaks lifecycle.events: OnCreated lists the directory, which on a first start open has not created yet (a
    bug seen in a Go connector: LifecycleOnCreated requiring the directory)."""

    def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        self.existing = os.listdir(_directory(config))


class UpdatedDeletesData(FileDestination):
    """Breaks lifecycle.events: OnUpdated starts the store afresh for the new config, removing what was written."""

    def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        shutil.rmtree(_directory(after), ignore_errors=True)


class DeletedHangs(FileDestination):
    """Breaks lifecycle.events (and call.timeout): OnDeleted waits an hour for something that never comes."""

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        time.sleep(3600)


class CreatedMarkerBesideDirectory(FileDestination):
    """Breaks safety.confined: OnCreated leaves a marker file beside the directory, outside it."""

    def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        with open(_directory(config) + ".created", "wb") as f:
            f.write(b"created")


def _registration(cls: type[FileDestination]) -> Registration:
    def factory() -> Destination:
        return destination_with_middleware(cls(), *default_destination_middleware())

    factory.__name__ = factory.__qualname__ = f"new_{cls.__name__}"
    return Registration(factory=factory, config={"directory": "{tmp}/out"}, read_back=directory_reader("directory"),
                        directory_param="directory")


created_needs_directory = _registration(CreatedNeedsDirectory)
updated_deletes_data = _registration(UpdatedDeletesData)
deleted_hangs = _registration(DeletedHangs)
created_marker_beside_directory = _registration(CreatedMarkerBesideDirectory)
