"""A correct JSON-lines key-value log in one file (path_param); bug modules subclass it and change one thing."""

import base64
import json
import os
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    parameters_from,
    parse_config,
)

from ._common import CLOEXEC, NOFOLLOW, key_problem, make_parent, value_of, write_all

LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | CLOEXEC


class LogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="The log file; its parent is created on open.")
    sync: bool = Field(False, description="Fsync after every record.")


def encode_line(raw: bytes, value):
    v = None if value is None else base64.b64encode(value).decode()
    return json.dumps({"k": base64.b64encode(raw).decode(), "v": v}).encode() + b"\n"


def read_log(config: Mapping[str, str]):
    path = config["path"]
    if not os.path.isfile(path) or os.path.islink(path):
        return {}
    held = {}
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                raise ValueError(f"half a line at the end of {path}: {line[:60]!r}")
            e = json.loads(line)
            k = base64.b64decode(e["k"])
            if e["v"] is None:
                held.pop(k, None)
            else:
                held[k] = base64.b64decode(e["v"])
    return held


class LogDestination(UnimplementedDestination):
    Config = LogConfig
    allow_non_utf8 = True

    def __init__(self):
        self.cfg = None
        self.path = ""
        self.fd = None
        self.size = None

    def parameters(self):
        return parameters_from(self.Config)

    def configure(self, config):
        self.cfg = parse_config(config, self.Config)
        self.path = os.path.abspath(self.cfg.path)

    def open(self):
        make_parent(self.path)

    def write(self, records: Sequence):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key, self.allow_non_utf8)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                self.append(self.line_for(rec))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def line_for(self, rec):
        return encode_line(rec.key.raw, value_of(rec))

    def ensure_open(self):
        if self.fd is None:
            fd = os.open(self.path, LOG_FLAGS, 0o644)
            try:
                if self.size is None:
                    self.size = os.fstat(fd).st_size
                os.ftruncate(fd, self.size)
            except OSError:
                os.close(fd)
                raise
            self.fd = fd

    def append(self, line: bytes):
        self.ensure_open()
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
        self.size += len(line)

    def close(self):
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def ack(self, position):
        pass

    def teardown(self):
        self.close()


def registration_for(cls, read_back=read_log, name="log.jsonl", variants=({"sync": "true"},), **kw):
    def factory():
        return destination_with_middleware(cls(), *default_destination_middleware())
    return Registration(factory=factory, config={"path": "{tmp}/data/" + name}, read_back=read_back,
                        path_param="path", variants=variants, **kw)
