"""Shards files into sub-directories named by the key's first two bytes; a key starting with '..' lands in the parent."""
import os

from ._common import walk_reader
from ._dirbase import DirDestination, registration_for


class Dest(DirDestination):
    def path_for(self, raw):
        shard = raw[:2]  # BUG: ".." (keys such as b"..x") names the parent directory
        d = os.path.join(os.fsencode(self.dir), shard)
        return os.path.join(d, raw)

    def store(self, raw, value):
        path = self.path_for(raw)
        if value is None:
            self.remove(path)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.replace(path, value)


registration = registration_for(Dest, read_back=walk_reader("directory"))
