"""The run's time budget (--conformance-budget): each check's share of what is left, and what has run."""

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

__all__ = ["Budget", "SHRINK_RESERVE", "clock", "draws_examples", "process_age", "started_ago"]

SHRINK_RESERVE = 0.05  # of the budget: what shrinking the failures found at their checks' deadlines may take in all


def clock() -> float:
    """Seconds on the budget's clock (monotonic). Every reading the budget's plan and deadlines take goes through
    here, so our tests can swap in a clock that moves a fixed step per reading (tests/budget_clock.py)."""
    return time.monotonic()


def started_ago(process_started: float) -> float:
    """Seconds since the process started (wall clock): start-up is part of the budgeted run."""
    return time.time() - process_started


@dataclass
class Budget:
    """Seconds for the whole run, shared among the checks that draw examples; the others run once."""

    seconds: float
    end: float  # monotonic time the budget runs out
    workers: int = 1  # xdist workers sharing the checks (the budget is per worker, run side by side)
    generated: set[str] = field(default_factory=set)  # node ids of the checks that draw examples
    fixed_count: int = 0  # how many others there are
    finished: set[str] = field(default_factory=set)  # node ids of the checks done (here: on this worker)
    fixed_ran: int = 0
    fixed_seconds: float = 0.0  # time the fixed checks that ran took
    generated_ran: int = 0
    overrun_seconds: float = 0.0  # time the generated checks that ran took past their share, in all
    shrink_left: float = 0.0  # what is left of the run's reserve for shrinking failures found at their deadline

    @classmethod
    def starting(cls, seconds: float, process_started: float, workers: int = 1) -> "Budget":
        """A budget counted from the start of the process (the xdist controller's): start-up is part of the run."""
        return cls(seconds, clock() + seconds - started_ago(process_started), max(1, workers))

    def plan(self, checks: Sequence[pytest.Item]) -> None:
        """Sorts the collected checks into those that draw examples and those that run once."""
        self.generated = {item.nodeid for item in checks if draws_examples(item)}
        self.fixed_count = len(checks) - len(self.generated)
        # One reserve for the whole run, kept out of the shares: a failure shrinks past its check's share only out
        # of it, so failures in many checks cannot each add their own time past the budget.
        self.shrink_left = SHRINK_RESERVE * self.seconds

    def share(self) -> float:
        """Seconds for the check about to run: what is left, less what the remaining fixed checks are expected to
        take, over the generated checks left (per worker under xdist)."""
        generated_done = len(self.finished & self.generated)
        generated_left = max(1, math.ceil(len(self.generated) / self.workers) - generated_done)
        fixed_left = max(0, math.ceil(self.fixed_count / self.workers) - (len(self.finished) - generated_done))
        fixed_each = self.fixed_seconds / self.fixed_ran if self.fixed_ran else 0.05
        # A generated check ends past its share: the example under way at its deadline runs to its end, and it runs
        # one example even with no share left. Each check left is planned with that much less, so the overruns add
        # up to the budget instead of past it.
        overrun_each = self.overrun_seconds / self.generated_ran if self.generated_ran else 0.05
        left = self.end - clock() - fixed_left * fixed_each - generated_left * overrun_each \
            - self.shrink_left
        return max(0.0, left / generated_left)

    def generated_took(self, seconds: float, share: float, failed: bool = False) -> None:
        """Notes how long a check that draws examples took, given `share`: the shares set its overrun aside, or,
        when it `failed`, its time past the share came out of the shrink reserve."""
        if failed:
            self.shrink_left = max(0.0, self.shrink_left - max(0.0, seconds - share))
            return
        self.generated_ran += 1
        self.overrun_seconds += max(0.0, seconds - share)

    def fixed_took(self, seconds: float) -> None:
        """Notes how long a check that runs once took (the shares set that much aside per fixed check left)."""
        self.fixed_ran += 1
        self.fixed_seconds += seconds


def draws_examples(item: pytest.Item) -> bool:
    """Whether a check draws examples: a @given test, or one that runs a hypothesis state machine."""
    obj = getattr(item, "obj", None)
    if obj is None:
        return False
    if hasattr(obj, "hypothesis"):
        return True
    names = set(getattr(getattr(obj, "__code__", None), "co_names", ()))
    if "run_state_machine_as_test" in names:
        return True
    helpers = (getattr(obj, "__globals__", {}).get(name) for name in names)  # e.g. lifecycle's _run(machine, ...)
    return any("run_state_machine_as_test" in getattr(getattr(h, "__code__", None), "co_names", ()) for h in helpers)


def process_age() -> float:
    """Seconds since this process started (from /proc on Linux); 0 where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: start time, in ticks
    except (OSError, ValueError, IndexError):
        return 0.0
