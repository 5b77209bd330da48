"""Declares `flush.interval` as a duration but also takes a bare number as seconds ("30"), which Go's duration refuses."""
from harness import Parameter, ParameterType, parse_duration

from ._cfgbase import ManualConfigDest
from ._dirbase import registration_for


class Dest(ManualConfigDest):
    PARAMS = {**ManualConfigDest.PARAMS,
              "flush.interval": Parameter("How often to fsync the directory.", "1s", ParameterType.duration)}
    lenient = "flush.interval"

    def parse_lenient(self, value):
        try:
            return parse_duration(value).total_seconds()
        except ValueError:
            return float(value)  # BUG: "be lenient": "30" or "1e3" taken as seconds


registration = registration_for(Dest)
