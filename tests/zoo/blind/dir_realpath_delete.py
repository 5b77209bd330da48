"""Deletes through os.path.realpath (meant to tidy the path), so deleting a key that is a symlink removes the link's target."""
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def remove(self, path):
        try:
            os.unlink(os.path.realpath(path))  # BUG: resolves a symlink at the key and removes its target
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            os.unlink(path)


registration = registration_for(Dest)
