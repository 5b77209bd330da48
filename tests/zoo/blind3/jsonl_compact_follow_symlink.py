"""BUG (safety.no-symlink-follow): a JSON-lines log that compacts itself at teardown, writing the compacted log to
`<path>.compact` with open(..., "wb") -- which follows a symlink planted at that name and overwrites its target
outside the area -- then renaming it over the log. (Its appends use O_NOFOLLOW, as in the example.)"""

import base64
import json
import os

from examples.jsonl_destination import JsonLinesFileDestination, read_jsonl
from harness import Destination, Registration, default_destination_middleware, destination_with_middleware

__all__ = ["Dest", "factory", "registration"]


class Dest(JsonLinesFileDestination):
    """The example's log, compacted (one line per key) at teardown."""

    def teardown(self) -> None:
        was_open = self._fd is not None
        super().teardown()
        if not was_open:
            return
        try:
            held = read_jsonl({"path": self._path})
            tmp = self._path + ".compact"
            with open(tmp, "wb") as out:  # BUG: follows a symlink at tmp (a name made only here, then renamed away)
                for key, value in held.items():
                    out.write(json.dumps({"key": base64.b64encode(key).decode(),
                                          "value": base64.b64encode(value).decode()}).encode() + b"\n")
            os.replace(tmp, self._path)
        except (OSError, ValueError):
            pass  # compaction is an optimisation; the log is intact


def factory() -> Destination:
    """The destination with the default middleware."""
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"path": "{tmp}/log/records.jsonl"}, read_back=read_jsonl,
                            path_param="path")
