"""Declares `fsync.dir` as a bool but parses it as value.lower() in (true, 1, yes, on): "maybe" silently means false."""
from harness import Parameter, ParameterType

from ._cfgbase import ManualConfigDest
from ._dirbase import registration_for


class Dest(ManualConfigDest):
    PARAMS = {**ManualConfigDest.PARAMS,
              "fsync.dir": Parameter("Fsync the directory after each rename.", "false", ParameterType.bool)}
    lenient = "fsync.dir"

    def parse_lenient(self, value):
        return value.lower() in ("true", "1", "yes", "on")  # BUG: never refuses anything


registration = registration_for(Dest)
