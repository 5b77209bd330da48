"""Broken destinations for open.keeps-data: each loses, when a new destination opens on the location a previous
one wrote (a pipeline restart), what that one left there, and breaks no other clause (within one destination's life
every read-back is right).

tests.zoo.broken imports the first two and tests.zoo.variants the others, so the zoo runs them like every other
broken destination.
"""

import json
import os
from collections.abc import Mapping

from harness import default_destination_middleware, destination_with_middleware, directory_reader, parse_config
from harness.destination import Destination
from harness.registration import Registration
from reference.file_destination import FileConfig, FileDestination
from tests.zoo.unusual import JsonLinesFileDestination, read_jsonl

__all__ = ["path_rotates_on_open", "sweeps_temporary_names_on_open", "path_compaction_drops_tombstones",
           "path_forgets_earlier_size", "sweeps_editor_leftovers_on_open"]


class _SweepsOnOpen(FileDestination):
    """The reference, whose open removes the directory's files that `leftover` picks, as crash leftovers."""

    def configure(self, config: Mapping[str, str]) -> None:
        super().configure(config)
        self.swept = os.path.abspath(parse_config(config, FileConfig).directory)

    def leftover(self, name: str) -> bool:
        return False

    def open(self) -> None:
        super().open()
        for entry in list(os.scandir(self.swept)):
            if self.leftover(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)


class SweepsTemporaryNamesOnOpen(_SweepsOnOpen):
    """Breaks open.keeps-data: open deletes every file whose name begins with .tmp (.tmp-x, .tmp.1) as a temporary
    file left behind by a crash, but those names are valid keys a previous destination stored (the third Go audit's
    stale_tmp_cleanup swept .tmp-*)."""

    def leftover(self, name: str) -> bool:
        return name.startswith(".tmp")


class SweepsEditorLeftoversOnOpen(_SweepsOnOpen):
    """Breaks open.keeps-data: open deletes editor backup and swap files (x~, .x.swp, .#x), taking them for
    someone's leftovers in its directory, but they are keys a previous destination stored."""

    def leftover(self, name: str) -> bool:
        return name.endswith(("~", ".swp")) or name.startswith(".#")


class PathRotatesOnOpen(JsonLinesFileDestination):
    """Breaks open.keeps-data: open rotates an existing file aside (records.jsonl.1, a side file) and starts an
    empty one, so every restart hides what earlier runs wrote."""

    def open(self) -> None:
        super().open()
        if os.path.isfile(self._path):
            os.replace(self._path, self._path + ".1")


class PathCompactionDropsTombstones(JsonLinesFileDestination):
    """Breaks open.keeps-data: open compacts the file by dropping its delete lines ("value": null) to save space,
    which brings back the values they removed."""

    def open(self) -> None:
        super().open()
        if not os.path.isfile(self._path):
            return
        with open(self._path, "rb") as log:
            lines = [line for line in log if json.loads(line)["value"] is not None]
        compacted = self._path + ".compact"
        with open(compacted, "wb") as out:
            out.writelines(lines)
        os.replace(compacted, self._path)


class PathForgetsEarlierSize(JsonLinesFileDestination):
    """Breaks open.keeps-data: open starts counting the file's whole lines at 0 instead of at its size, so the first
    append after a restart "cuts the file back" to nothing before it writes (read-back is right until then)."""

    def open(self) -> None:
        super().open()
        self._size = 0


def _directory_registration(cls: type[Destination]) -> Registration:
    """The reference's registration for `cls`, behind the default middleware."""
    return Registration(factory=lambda: destination_with_middleware(cls(), *default_destination_middleware()),
                        config={"directory": "{tmp}/out"}, read_back=directory_reader("directory"),
                        directory_param="directory")


def _path_registration(cls: type[Destination]) -> Registration:
    """tests.zoo.unusual.jsonl_file's registration for `cls`: path={tmp}/log/records.jsonl, with the sync variant."""
    return Registration(factory=lambda: destination_with_middleware(cls(), *default_destination_middleware()),
                        config={"path": "{tmp}/log/records.jsonl"}, read_back=read_jsonl, path_param="path",
                        variants=({"sync": "true"},))


path_rotates_on_open = _path_registration(PathRotatesOnOpen)
sweeps_temporary_names_on_open = _directory_registration(SweepsTemporaryNamesOnOpen)
path_compaction_drops_tombstones = _path_registration(PathCompactionDropsTombstones)
path_forgets_earlier_size = _path_registration(PathForgetsEarlierSize)
sweeps_editor_leftovers_on_open = _directory_registration(SweepsEditorLeftoversOnOpen)
