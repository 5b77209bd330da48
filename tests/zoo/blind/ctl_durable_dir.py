"""CONTROL: durable one-file-per-key writer, sync on by default: fsync the temp file, keep a hard-link backup of the
old value, rename, fsync the directory; if the directory fsync fails the record is undone (old value back, or the
new file removed), and only if the undo fails too is the record counted as in place (never as the batch's last)."""
import os

from pydantic import Field

from harness import WriteError

from ._common import counter, key_problem, unlink_quietly, value_of, write_all
from ._dirbase import TMP, DirConfig, DirDestination, registration_for


class Config(DirConfig):
    sync: bool = Field(True, description="Fsync files and the directory (default on).")


class StillApplied(Exception):
    def __init__(self, err):
        super().__init__(str(err))
        self.err = err


class Dest(DirDestination):
    Config = Config

    def write(self, records):
        for i, rec in enumerate(records):
            problem = key_problem(rec.key)
            if problem:
                raise WriteError(f"record {i}: {problem}", written=i)
            try:
                self.store(rec.key.raw, value_of(rec))
            except StillApplied as stuck:
                n = i + 1 if i + 1 < len(records) else i
                raise WriteError(f"record {i}: {stuck.err} (undo failed; record in place)", written=n) from stuck.err
            except OSError as err:
                raise WriteError(f"record {i}: {err}", written=i) from err
        return len(records)

    def backup(self, path):
        while True:
            b = os.path.join(os.path.dirname(path), os.fsencode(TMP) + b"%d" % next(counter))
            try:
                os.link(path, b, follow_symlinks=False)
                return b
            except FileExistsError:
                continue
            except FileNotFoundError:
                return None

    def commit(self, path, backup):
        try:
            self.sync_dir(os.path.dirname(path))
        except OSError as err:
            try:
                if backup is None:
                    os.unlink(path)
                else:
                    os.rename(backup, path)
            except OSError:
                if backup is not None:
                    unlink_quietly(backup)
                raise StillApplied(err) from err
            raise
        if backup is not None:
            unlink_quietly(backup)

    def replace(self, path, data):
        if not self.cfg.sync:
            return super().replace(path, data)
        tmp, fd = self.new_temp(path)
        try:
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            backup = self.backup(path)
        except BaseException:
            unlink_quietly(tmp)
            raise
        try:
            os.rename(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            if backup is not None:
                unlink_quietly(backup)
            raise
        self.commit(path, backup)

    def remove(self, path):
        if not self.cfg.sync:
            return super().remove(path)
        backup = self.backup(path)
        if backup is None:
            return
        try:
            os.unlink(path)
        except BaseException:
            unlink_quietly(backup)
            raise
        self.commit(path, backup)


registration = registration_for(Dest, variants=({"sync": "false"},))
