"""Temp+rename writer that removes the old value before renaming the new one in (a habit from Windows rename)."""
import os

from ._common import unlink_quietly, write_all
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def replace(self, path, data):
        tmp, fd = self.new_temp(path)
        try:
            try:
                write_all(fd, data)
                if self.cfg.sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.unlink(path)  # BUG: the old value is gone before the new one is in place
            except FileNotFoundError:
                pass
            os.rename(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise
        if self.cfg.sync:
            self.sync_dir(os.path.dirname(path))


registration = registration_for(Dest)
