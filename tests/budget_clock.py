"""A pytest plugin for the tests of --conformance-budget (`-p tests.budget_clock`): the budget's clock moves a fixed
step each time it is read and start-up costs nothing, so what a budget buys is the same on a loaded machine as on a
quiet one (the number of examples follows the readings, not the machine's speed)."""

import itertools

from conformance.plugin import budget

__all__ = ["STEP"]

STEP = 0.02  # seconds per reading: a few readings per example, so a share of seconds buys tens of examples

_readings = itertools.count()
budget.clock = lambda: next(_readings) * STEP  # type: ignore[assignment]
budget.started_ago = lambda process_started: 0.0  # type: ignore[assignment]
