"""A correct one-file-per-key directory destination; bug modules subclass it and change one thing."""

import os
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from harness import (
    Registration,
    UnimplementedDestination,
    WriteError,
    default_destination_middleware,
    destination_with_middleware,
    directory_reader,
    parameters_from,
    parse_config,
)

from ._common import TMP_FLAGS, counter, key_problem, make_directory, unlink_quietly, value_of, write_all

TMP = ".~blind-tmp-"


class DirConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    directory: str = Field(min_length=1, description="Directory holding one file per key.")
    sync: bool = Field(False, description="Fsync files and the directory.")


class DirDestination(UnimplementedDestination):
    Config = DirConfig
    allow_non_utf8 = False

    def __init__(self):
        self.cfg = None
        self.dir = ""

    def parameters(self):
        return parameters_from(self.Config)

    def configure(self, config: Mapping[str, str]):
        self.cfg = parse_config(config, self.Config)
        self.dir = os.path.abspath(self.cfg.directory)

    def open(self):
        make_directory(self.dir)

    def name_for(self, raw: bytes) -> bytes:
        return raw

    def path_for(self, raw: bytes) -> bytes:
        return os.path.join(os.fsencode(self.dir), self.name_for(raw))

    def write(self, records: Sequence):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key, self.allow_non_utf8)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                self.store(rec.key.raw, value_of(rec))
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def store(self, raw, value):
        path = self.path_for(raw)
        if value is None:
            self.remove(path)
        else:
            self.replace(path, value)

    def new_temp(self, path):
        base = os.path.dirname(path)
        while True:
            tmp = os.path.join(base, os.fsencode(TMP) + b"%d" % next(counter))
            try:
                return tmp, os.open(tmp, TMP_FLAGS, 0o644)
            except FileExistsError:
                continue

    def replace(self, path, data):
        tmp, fd = self.new_temp(path)
        try:
            try:
                write_all(fd, data)
                if self.cfg.sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise
        if self.cfg.sync:
            self.sync_dir(os.path.dirname(path))

    def remove(self, path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return

    def sync_dir(self, d):
        fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def ack(self, position):
        pass

    def teardown(self):
        self.cfg = self.cfg


def registration_for(cls, variants=({"sync": "true"},), read_back=None, **kw):
    def factory():
        return destination_with_middleware(cls(), *default_destination_middleware())
    return Registration(factory=factory, config={"directory": "{tmp}/out"},
                        read_back=read_back or directory_reader("directory"), directory_param="directory",
                        variants=variants, **kw)
