"""JSON-lines log compacted at teardown into the live keys; the compaction's filter drops keys whose value is empty."""
import os

from ._common import TMP_FLAGS, write_all
from ._logbase import LogDestination, encode_line, read_log, registration_for


class Dest(LogDestination):
    def open(self):
        super().open()
        self.live = read_log({"path": self.path}) if os.path.isfile(self.path) else {}

    def write(self, records):
        try:
            return super().write(records)
        finally:
            self.live = read_log({"path": self.path}) if os.path.isfile(self.path) else {}

    def teardown(self):
        self.close()
        live = getattr(self, "live", None)
        if live is None:
            return
        self.live = None
        tmp = self.path + ".compact"
        try:
            fd = os.open(tmp, TMP_FLAGS | os.O_TRUNC, 0o644)
        except OSError:
            return
        try:
            try:
                # BUG: `if value` instead of `if value is not None`: a key holding b"" disappears
                write_all(fd, b"".join(encode_line(k, v) for k, v in live.items() if v))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass


registration = registration_for(Dest)
