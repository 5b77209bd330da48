"""BUG (safety.confined): a directory destination that honours Conduit's `opencdc.collection` metadata, writing a
record to <directory>/<collection>/<key> (multi-collection pipelines); the key is checked, the collection name is
not, so a collection of '..' or '../../etc' writes outside the directory."""

import os
from collections.abc import Mapping, Sequence

from harness import Record, Registration, WriteError, default_destination_middleware, destination_with_middleware
from harness.destination import Destination
from reference.file_destination import FileDestination, _make_directories, key_name, key_problem

__all__ = ["read_back", "registration"]


def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
    """Files in the directory and in its collection sub-directories (one level), by key."""
    top = os.fsencode(config["directory"])
    out: dict[bytes, bytes] = {}
    try:
        names = os.listdir(top)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    for name in names:
        path = os.path.join(top, name)
        if os.path.isdir(path) and not os.path.islink(path):
            for sub in os.listdir(path):
                inner = os.path.join(path, sub)
                if os.path.isfile(inner) and not os.path.islink(inner):
                    with open(inner, "rb") as f:
                        out[sub] = f.read()
        elif os.path.isfile(path) and not os.path.islink(path) and not name.startswith(b".~file-destination-tmp-"):
            with open(path, "rb") as f:
                out[name] = f.read()
    return out


class Dest(FileDestination):
    """The reference, routing each record by its collection."""

    def write(self, records: Sequence[Record]) -> int:
        for index, record in enumerate(records):
            name = key_name(record.key)
            if name is None:
                raise WriteError(f"record {index}: invalid key: {key_problem(record.key)}", written=index)
            collection = record.metadata.get("opencdc.collection")
            base = self._base
            try:
                if collection:
                    base = os.path.join(self._directory, os.fsencode(collection), b"")  # BUG: unchecked
                    _make_directories(base.rstrip(b"/"))
                after = record.payload.after
                if after is None:
                    self._remove(base + name)
                else:
                    self._replace(base + name, after.bytes(), False)
            except OSError as err:
                raise WriteError(f"record {index}: {err}", written=index) from err
        return len(records)


def factory() -> Destination:
    """The destination with the default middleware."""
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"directory": "{tmp}/out"}, read_back=read_back,
                            directory_param="directory")
