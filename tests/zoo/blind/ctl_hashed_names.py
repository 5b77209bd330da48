"""CONTROL: escaped file names: each key is stored under the hex SHA-256 of its bytes, in a file that starts with the
key itself (length-prefixed), so any 1-255-byte key fits and non-UTF-8 keys are accepted and read back."""
import hashlib
import os
import stat
import struct

from ._dirbase import DirDestination, registration_for

PREFIX = b"k-"


class Dest(DirDestination):
    allow_non_utf8 = True

    def path_for(self, raw):
        return os.path.join(os.fsencode(self.dir), PREFIX + hashlib.sha256(raw).hexdigest().encode())

    def store(self, raw, value):
        path = self.path_for(raw)
        if value is None:
            self.remove(path)
        else:
            self.replace(path, struct.pack(">H", len(raw)) + raw + value)


def read_back(config):
    d = os.fsencode(config["directory"])
    if not os.path.isdir(d):
        return {}
    out = {}
    for name in os.listdir(d):
        name = os.fsencode(name)  # pyfakefs answers a bytes listdir with str names
        p = os.path.join(d, name)
        if not stat.S_ISREG(os.lstat(p).st_mode):
            continue
        with open(p, "rb") as f:
            data = f.read()
        if not name.startswith(PREFIX):
            out[name] = data  # not ours: show it as it is
            continue
        (n,) = struct.unpack_from(">H", data)
        out[data[2:2 + n]] = data[2 + n:]
    return out


registration = registration_for(Dest, read_back=read_back)
