"""Escapes '%' and a leading '.' in file names (so keys never look like temp/hidden files); long keys overflow NAME_MAX."""
import os
import stat

from ._dirbase import DirDestination, registration_for


def escape(raw: bytes) -> bytes:
    out = raw.replace(b"%", b"%25")
    if out.startswith(b"."):
        out = b"%2E" + out[1:]
    return out  # BUG: a 255-byte key with '%' or a leading '.' becomes longer than 255 bytes -> ENAMETOOLONG


def unescape(name: bytes) -> bytes:
    if name.startswith(b"%2E"):
        name = b"." + name[3:]
    return name.replace(b"%25", b"%")


class Dest(DirDestination):
    def name_for(self, raw):
        return escape(raw)


def read_back(config):
    d = os.fsencode(config["directory"])
    if not os.path.isdir(d):
        return {}
    out = {}
    for name in os.listdir(d):
        name = os.fsencode(name)  # pyfakefs answers a bytes listdir with str names
        p = os.path.join(d, name)
        if stat.S_ISREG(os.lstat(p).st_mode):
            with open(p, "rb") as f:
                out[unescape(name) if not name.startswith(b".~blind-tmp-") else name] = f.read()
    return out


registration = registration_for(Dest, read_back=read_back)
