"""CONTROL: JSON-lines log compacted at teardown once dead lines pass a float ratio (default 0.0: always), written
to a side file with O_EXCL|O_NOFOLLOW, fsynced and renamed over the log."""
import os

from pydantic import Field

from ._common import TMP_FLAGS, write_all
from ._logbase import LogConfig, LogDestination, encode_line, read_log, registration_for


class Config(LogConfig):
    ratio: float = Field(0.0, ge=0.0, le=1.0, alias="compact.ratio",
                         description="Compact at teardown when this fraction of lines is dead.")


class Dest(LogDestination):
    Config = Config
    lines = 0

    def append(self, line):
        super().append(line)
        self.lines += 1

    def teardown(self):
        self.close()
        if self.cfg is None or not self.lines:
            self.cfg = None
            return
        cfg, self.cfg = self.cfg, None
        try:
            live = read_log({"path": self.path})
        except (OSError, ValueError):
            return
        with open(self.path, "rb") as f:
            total = sum(1 for _ in f)
        if total == 0 or (total - len(live)) / total < cfg.ratio:
            return
        tmp = self.path + ".compact"
        try:
            fd = os.open(tmp, TMP_FLAGS, 0o644)
        except OSError:
            return
        try:
            try:
                write_all(fd, b"".join(encode_line(k, v) for k, v in live.items()))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass


registration = registration_for(Dest, variants=({"sync": "true"}, {"compact.ratio": "0.5"}))
