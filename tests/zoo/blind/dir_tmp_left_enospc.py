"""Temp+rename writer through a buffered file object; when the write or close fails, the temp file is left behind."""
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def replace(self, path, data):
        tmp, fd = self.new_temp(path)
        with os.fdopen(fd, "wb") as f:  # BUG: an ENOSPC from write/close propagates, the temp file stays
            f.write(data)
            if self.cfg.sync:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
        if self.cfg.sync:
            self.sync_dir(os.path.dirname(path))


registration = registration_for(Dest)
