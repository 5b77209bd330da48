"""BUG (write.round-trip): a directory destination that NFC-normalises key names before using them as file names
("so the same key typed on macOS and Linux maps to one file"): the distinct valid keys 'e\u0301' and '\u00e9' land
in one file, and a decomposed key reads back under another name."""

import unicodedata
from collections.abc import Sequence

from harness import (
    Record,
    Registration,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
)
from harness.destination import Destination
from reference.file_destination import FileDestination, key_name, key_problem

__all__ = ["registration"]


class Dest(FileDestination):
    """The reference, with key names NFC-normalised."""

    def write(self, records: Sequence[Record]) -> int:
        sync = self._config is not None and self._config.sync
        remove = self._remove_synced if sync else self._remove
        for index, record in enumerate(records):
            name = key_name(record.key)
            if name is None:
                raise WriteError(f"record {index}: invalid key: {key_problem(record.key)}", written=index)
            name = unicodedata.normalize("NFC", name.decode("utf-8")).encode("utf-8")  # BUG: keys are bytes
            after = record.payload.after
            try:
                if after is None:
                    remove(self._base + name)
                else:
                    self._replace(self._base + name, after.bytes(), sync)
            except OSError as err:
                raise WriteError(f"record {index}: {err}", written=index) from err
        return len(records)


def factory() -> Destination:
    """The destination with the default middleware."""
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"directory": "{tmp}/out"},
                            read_back=directory_reader("directory"), directory_param="directory")
