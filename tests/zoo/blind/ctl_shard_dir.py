"""CONTROL: shards files into sub-directories named by a hash prefix (width set by an int parameter)."""
import hashlib
import os
import stat

from pydantic import Field

from ._common import walk_reader
from ._dirbase import DirConfig, DirDestination, registration_for


class Config(DirConfig):
    width: int = Field(2, ge=1, le=8, alias="shard.width", description="Hex digits of the key's hash naming its shard.")


class Dest(DirDestination):
    Config = Config

    def path_for(self, raw):
        shard = hashlib.sha256(raw).hexdigest()[: self.cfg.width].encode()
        return os.path.join(os.fsencode(self.dir), shard, raw)

    def store(self, raw, value):
        path = self.path_for(raw)
        if value is None:
            d = os.path.dirname(path)
            if os.path.lexists(d) and not stat.S_ISDIR(os.lstat(d).st_mode):
                return  # no shard directory of ours: nothing to remove (a link there is not followed)
            self.remove(path)
            return
        d = os.path.dirname(path)
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(d).st_mode):  # a symlink or file where a shard goes: replace, never follow
                os.unlink(d)
                os.mkdir(d, 0o755)
        self.replace(path, value)


registration = registration_for(Dest, read_back=walk_reader("directory"))
