"""Declares `buffer.size` as an int > 0 but parses it with int(float(value)), accepting "1.5" and "1e3"."""
from harness import Parameter, ParameterType, ValidationGreaterThan

from ._cfgbase import ManualConfigDest
from ._dirbase import registration_for


class Dest(ManualConfigDest):
    PARAMS = {**ManualConfigDest.PARAMS,
              "buffer.size": Parameter("Write buffer in bytes.", "65536", ParameterType.int, (ValidationGreaterThan(0),))}
    lenient = "buffer.size"

    def parse_lenient(self, value):
        n = int(float(value))  # BUG: accepts floats and exponents that an int parameter refuses
        if n <= 0:
            raise ValueError(f"{value!r} is not greater than 0")
        return n


registration = registration_for(Dest)
