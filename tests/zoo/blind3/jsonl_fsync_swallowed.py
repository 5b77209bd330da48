"""BUG (fault.io-error): JSON-lines log with sync=true whose fsync is "best effort": an fsync error is logged and
ignored (`except OSError: pass`), so the record counts as written though its durability failed."""
import logging
import os

from examples.jsonl_destination import LOG_FLAGS, JsonLinesFileDestination, read_jsonl
from harness import Registration, default_destination_middleware, destination_with_middleware

log = logging.getLogger(__name__)


class Dest(JsonLinesFileDestination):
    def append(self, line):
        if self._fd is None:
            fd = os.open(self._path, LOG_FLAGS, 0o644)
            try:
                if self._size is None:
                    self._size = os.fstat(fd).st_size
                os.ftruncate(fd, self._size)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            self.cut_back()
            raise
        if self._config.sync:
            try:
                os.fsync(self._fd)
            except OSError as err:  # BUG: the data is in the page cache anyway
                log.warning("fsync failed: %s", err)
        self._size += len(line)


def factory():
    return destination_with_middleware(Dest(), *default_destination_middleware())


registration = Registration(factory=factory, config={"path": "{tmp}/log/records.jsonl"}, read_back=read_jsonl,
                            path_param="path", variants=({"sync": "true"},))
