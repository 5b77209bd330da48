"""Writes values in 8 MiB chunks to bound each syscall; the slice is data[off:CHUNK], so values over 8 MiB are cut."""
import os

from ._common import unlink_quietly, write_all
from ._dirbase import DirDestination, registration_for

CHUNK = 8 * 1024 * 1024


class Dest(DirDestination):
    def replace(self, path, data):
        tmp, fd = self.new_temp(path)
        try:
            try:
                for off in range(0, len(data), CHUNK):
                    write_all(fd, data[off:CHUNK])  # BUG: should be data[off:off + CHUNK]
                if self.cfg.sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise
        if self.cfg.sync:
            self.sync_dir(os.path.dirname(path))


registration = registration_for(Dest)
