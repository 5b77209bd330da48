"""Shared helpers for the blind-audit destinations (each module copies the shape of a real connector)."""

import errno
import itertools
import os
import stat
from collections.abc import Mapping

from harness import RawData

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC
counter = itertools.count()


def key_problem(key, allow_non_utf8=False):
    """Why `key` is invalid under CONTRACT.md section 4, or None."""
    if not isinstance(key, RawData):
        return f"key is {type(key).__name__}, not RawData"
    raw = key.raw
    if not 0 < len(raw) <= 255:
        return f"key is {len(raw)} bytes long"
    if b"/" in raw or b"\0" in raw or raw in (b".", b".."):
        return f"key {raw!r} is path-like"
    if not allow_non_utf8:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return "key is not UTF-8"
    return None


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def make_directory(path):
    """os.makedirs that refuses anything but a directory at `path`, naming it."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
    os.makedirs(path, exist_ok=True)
    if not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)


def make_parent(path):
    parent = os.path.dirname(os.path.abspath(path))
    make_directory(parent)
    return parent


def value_of(record):
    after = record.payload.after
    return None if after is None else after.bytes()


def walk_reader(param, skip_prefix=b".~"):
    """Read-back for destinations that shard keys into sub-directories: every regular file below, by name."""

    def read_back(config: Mapping[str, str]):
        top = os.fsencode(config[param])
        out = {}
        if not os.path.isdir(top):
            return out
        for root, dirs, files in os.walk(top):
            root = os.fsencode(root)  # pyfakefs answers a bytes walk with str names
            for name in files:
                name = os.fsencode(name)
                p = os.path.join(root, name)
                if stat.S_ISREG(os.lstat(p).st_mode):
                    with open(p, "rb") as f:
                        out[name] = f.read()
        return out

    return read_back
