"""open() calls os.makedirs and ignores FileExistsError ("already there"), so a file at the path is accepted."""
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def open(self):
        try:
            os.makedirs(self.dir)
        except FileExistsError:
            pass  # BUG: a regular file, a dangling symlink or a FIFO at the path is "already there"


registration = registration_for(Dest)
