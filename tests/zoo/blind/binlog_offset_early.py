"""Custom binary log (length-prefixed frames); the end offset a failed append is cut back to is advanced before the
frame is written, so a half frame survives a full disk."""
import os
import struct
from collections.abc import Mapping

from ._common import value_of, write_all
from ._logbase import LogDestination, registration_for

MAGIC = b"BLG1"


def frame(raw, value):
    if value is None:
        return struct.pack(">4sHBQ", MAGIC, len(raw), 0, 0) + raw
    return struct.pack(">4sHBQ", MAGIC, len(raw), 1, len(value)) + raw + value


def read_binlog(config: Mapping[str, str]):
    path = config["path"]
    if not os.path.isfile(path) or os.path.islink(path):
        return {}
    with open(path, "rb") as f:
        data = f.read()
    held, pos, head = {}, 0, struct.calcsize(">4sHBQ")
    while pos < len(data):
        if len(data) - pos < head:
            raise ValueError("torn frame header")
        magic, klen, flag, vlen = struct.unpack_from(">4sHBQ", data, pos)
        if magic != MAGIC:
            raise ValueError(f"bad magic at {pos}")
        pos += head
        if len(data) - pos < klen + vlen:
            raise ValueError("torn frame body")
        key = data[pos:pos + klen]
        pos += klen
        if flag:
            held[key] = data[pos:pos + vlen]
            pos += vlen
        else:
            held.pop(key, None)
    return held


class Dest(LogDestination):
    def line_for(self, rec):
        return frame(rec.key.raw, value_of(rec))

    def append(self, line):
        self.ensure_open()
        start = self.size
        self.size += len(line)  # BUG: advanced before the frame is on disk: the cut-back below keeps a torn frame
        try:
            write_all(self.fd, line)
            if self.cfg.sync:
                os.fsync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                self.close()
            raise


registration = registration_for(Dest, read_back=read_binlog, name="records.blog")
