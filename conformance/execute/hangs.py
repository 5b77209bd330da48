"""The hang policy: once a method has hung, its calls get a shorter limit, learned per destination."""

import math

__all__ = ["HANG_FACTOR", "HANG_FLOOR", "CallTimes", "call_times"]

# Once a method of a destination has hung, a call of it may take this many times the slowest call of it that
# returned, and at least HANG_FLOOR seconds: a destination that hung is presumed to hang there again, so finding
# where costs little. Other methods keep the per-call limit.
HANG_FACTOR = 10
HANG_FLOOR = 0.2


class CallTimes:
    """One destination's calls in this process: which methods ever hung, and the slowest call that returned, per
    method."""

    def __init__(self) -> None:
        self.hung_methods: set[str] = set()
        self.slowest: dict[str, float] = {}

    @property
    def hung(self) -> bool:
        """Whether any call of the destination hung."""
        return bool(self.hung_methods)

    def limit(self, method: str, timeout: float) -> float:
        """The limit for a call of `method`: the per-call limit until a call of it first hangs."""
        if method not in self.hung_methods:
            return timeout
        return min(timeout, max(HANG_FLOOR, math.ceil(HANG_FACTOR * self.slowest.get(method, 0.0) * 100) / 100))

    def returned(self, method: str, seconds: float) -> None:
        """Notes a call that returned (or raised) after `seconds`."""
        if seconds > self.slowest.get(method, 0.0):
            self.slowest[method] = seconds


_TIMES: dict[str, CallTimes] = {}  # by destination spec: what one check learns, the next need not pay for again


def call_times(spec: str) -> CallTimes:
    """The calls of the destination `spec` so far in this process (one check's hangs shorten the next's waits)."""
    return _TIMES.setdefault(spec, CallTimes())
