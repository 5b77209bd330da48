"""Temp name derived from the key, opened with open(tmp, 'wb'): a symlink planted at the temp name is written through."""
import hashlib
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def replace(self, path, data):
        tmp = os.path.join(os.path.dirname(path), b".~blind-tmp-" + hashlib.sha1(path).hexdigest().encode())
        try:
            with open(tmp, "wb") as f:  # BUG: follows a symlink at the (predictable) temp name
                f.write(data)
                if self.cfg.sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.rename(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if self.cfg.sync:
            self.sync_dir(os.path.dirname(path))


registration = registration_for(Dest)
