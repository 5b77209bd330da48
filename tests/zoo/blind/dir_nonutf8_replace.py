"""Accepts non-UTF-8 keys but turns the key into a str file name with errors='replace', so it is stored under another name."""
import os

from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    allow_non_utf8 = True

    def path_for(self, raw):
        name = raw.decode("utf-8", errors="replace")  # BUG: b'\xff' is stored as U+FFFD
        return os.fsencode(os.path.join(self.dir, name))


registration = registration_for(Dest)
