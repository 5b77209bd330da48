"""Declares `fill.ratio` as a float in (0, 1) but advertises the default "1.0", which breaks its own validation."""
from harness import Parameter, ParameterType, ValidationGreaterThan, ValidationLessThan

from ._cfgbase import ManualConfigDest
from ._dirbase import registration_for


class Dest(ManualConfigDest):
    # BUG: the advertised default (1.0) is outside (0, 1); the code's own fallback is 0.75
    PARAMS = {**ManualConfigDest.PARAMS,
              "fill.ratio": Parameter("Fraction of the buffer filled before a flush.", "1.0", ParameterType.float,
                                      (ValidationGreaterThan(0), ValidationLessThan(1)))}
    lenient = "fill.ratio"

    def parse_lenient(self, value):
        if value == self.PARAMS["fill.ratio"].default:
            return 0.75
        x = float(value)
        if not 0 < x < 1:
            raise ValueError(f"{value!r} is not in (0, 1)")
        return x


registration = registration_for(Dest)
