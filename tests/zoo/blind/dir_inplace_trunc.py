"""Writes each value in place (O_TRUNC, no temp file); a failed write leaves the key truncated or half written."""
import os

from ._common import CLOEXEC, NOFOLLOW, write_all
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def replace(self, path, data):
        # BUG: no temp file: the old value is gone the moment the file is opened, a short disk leaves half a value
        try:
            os.unlink(path)  # replace a symlink rather than follow it
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW | CLOEXEC, 0o644)
        try:
            write_all(fd, data)
            if self.cfg.sync:
                os.fsync(fd)
        finally:
            os.close(fd)


registration = registration_for(Dest)
