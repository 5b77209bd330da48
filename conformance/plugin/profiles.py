"""Hypothesis profiles of the suite, the settings every suite test carries, and the pace of a check's runs."""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.control import currently_in_test_context
from hypothesis.errors import InvalidArgument, UnsatisfiedAssumption

from conformance.plugin import budget
from conformance.plugin._hypothesis_compat import (
    SLOW_SHRINK_WARNING,
    bound_shrinking,
    final_replay,
    force_global_seed,
    intercepted_reports,
    parent_settings,
)

__all__ = ["PROFILES", "DEFAULT_PROFILE", "CI_PROFILE", "QUICK_PROFILE", "FUZZ_PROFILE", "register_profiles",
           "suite_settings", "batch_limit", "fraction_of_examples", "Pacer", "BudgetSpent", "ShrinkStopped",
           "MAX_HANGS", "paced_reports", "pace_examples", "given_seed", "run_seed", "force_seed",
           "randomized_for_budget", "seed_description", "seed_in_report", "shrink_bound", "SHRINK_SECONDS"]

DEFAULT_PROFILE = "conformance-dev"
CI_PROFILE = "conformance-ci"
FUZZ_PROFILE = "conformance-fuzz"
QUICK_PROFILE = "conformance-quick"

# Destination I/O is slow and noisy: no deadline, and no health check that punishes slow examples.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
          HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much]

# The explain phase reruns failing examples to comment them; worth it when fuzzing, too slow for a gate.
_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

PROFILES: dict[str, dict[str, Any]] = {
    DEFAULT_PROFILE: dict(max_examples=25, deadline=None, suppress_health_check=_QUIET, stateful_step_count=20,
                          print_blob=True, phases=_PHASES),
    CI_PROFILE: dict(max_examples=60, deadline=None, suppress_health_check=_QUIET, derandomize=True,
                     database=None, stateful_step_count=30, print_blob=True, phases=_PHASES),
    # For pre-commit hooks and local loops: derandomized, so a quick run is reproducible; the evidence each clause
    # needs comes from explicit examples, so a small run still checks every clause it can.
    QUICK_PROFILE: dict(max_examples=12, deadline=None, suppress_health_check=_QUIET, derandomize=True,
                        database=None, stateful_step_count=12, print_blob=True, phases=_PHASES),
    FUZZ_PROFILE: dict(max_examples=2000, deadline=None, suppress_health_check=_QUIET, stateful_step_count=60,
                       print_blob=True, phases=tuple(Phase)),
}

# Largest batch per profile; the fuzz profile pushes bigger batches.
_BATCH_LIMITS = {DEFAULT_PROFILE: 8, CI_PROFILE: 12, QUICK_PROFILE: 8, FUZZ_PROFILE: 64}
# Bound on shrinking one failure, per profile: a state machine whose every run fails at its end can keep hypothesis'
# shrinker busy for its full five minutes, too long for a gate or a keyboard; fuzzing keeps hypothesis' own.
SHRINK_SECONDS = 30.0
_SHRINK_BOUNDS: dict[str, float | None] = {DEFAULT_PROFILE: SHRINK_SECONDS, CI_PROFILE: SHRINK_SECONDS,
                                           QUICK_PROFILE: SHRINK_SECONDS, FUZZ_PROFILE: None}


_REGISTERED: list[bool] = []


def register_profiles() -> None:
    """Registers the suite's profiles once per process (before conftests load, so --hypothesis-profile can name
    them): registering again would make new settings objects, and a user's profile derived from the first ones would
    no longer be known as derived from ours (batch_limit, shrink_bound)."""
    if _REGISTERED:
        return
    _REGISTERED.append(True)
    for name, values in PROFILES.items():
        # Based on hypothesis' own "default" profile, not on the settings in force: with $CI set, hypothesis makes
        # its "ci" profile the default (derandomized, no example database), which would silently change ours.
        settings.register_profile(name, settings.get_profile("default"), **values)


def batch_limit() -> int:
    """The largest batch the current profile asks for, also for profiles derived from the suite's (a user's
    `register_profile(name, settings.get_profile("conformance-fuzz"), ...)`, or the budget's)."""
    limit: int = _of_current_profile(_BATCH_LIMITS, 8)
    return limit


def shrink_bound() -> float | None:
    """Seconds hypothesis may spend shrinking one failure under the current profile (None: its own five minutes).

    A gate or a local run reports a failure within this bound (saying when the example shown may not be minimal);
    a fuzzing campaign, which has the time, lets hypothesis shrink as long as it likes.
    """
    bound: float | None = _of_current_profile(_SHRINK_BOUNDS, SHRINK_SECONDS)
    return bound


def _of_current_profile(table: dict[str, Any], default: Any) -> Any:
    """The value `table` gives the current profile or the nearest suite profile it derives from."""
    registered = {}
    for name, value in table.items():
        try:
            registered[id(settings.get_profile(name))] = value
        except InvalidArgument:  # outside pytest (a replay script): the suite's profiles are not registered
            continue
    current: Any = settings.default
    while current is not None:  # each settings object keeps the one it was derived from
        if id(current) in registered:
            return registered[id(current)]
        current = parent_settings(current)
    return table.get(settings.get_current_profile_name(), default)


def suite_settings(**overrides: Any) -> settings:
    """The current profile with the suite's health checks off; `overrides` for expensive tests only."""
    # One bug per check: hypothesis goes straight from the first failure to shrinking it, which the Pacer bounds
    # (with several, it would go on generating, looking for more, and replay the first only after that).
    return settings(settings(), suppress_health_check=_QUIET, deadline=None, report_multiple_bugs=False,
                    **overrides)


def fraction_of_examples(fraction: float, minimum: int = 2) -> int:
    """A share of the current profile's max_examples, for tests whose every example is costly."""
    return max(minimum, int(settings().max_examples * fraction))


# After a check's first hang, hypothesis shrinks it until this many more calls hit the limit; then the smallest
# failing example seen so far is reported (hypothesis' shrinker only tries examples smaller than its best, so that
# is the last one that failed).
MAX_HANGS = 6


class BudgetSpent(KeyboardInterrupt):
    """Ends a check's hypothesis run when its share of --conformance-budget is spent; the plugin catches it.

    A KeyboardInterrupt because that is what hypothesis discards without a trace: an example ended by any other
    exception before its first draw would contradict the earlier ones ("inconsistent data generation").
    """


class ShrinkStopped(KeyboardInterrupt):
    """Ends the shrinking of a hang once MAX_HANGS more calls hit the limit; the plugin then raises `failure`, the
    smallest failing example seen (a KeyboardInterrupt for the reason BudgetSpent is one)."""

    def __init__(self, failure: BaseException) -> None:
        super().__init__("shrinking a hang stopped")
        self.failure = failure


class Pacer:
    """The pace of one check's hypothesis runs: no new example after the budget's deadline; after a failure, a
    bounded time for shrinking it (the rest of the check's share, at least `min_shrink`); after a hang, at most
    MAX_HANGS more calls that hit the limit."""

    def __init__(self) -> None:
        self.deadline: float | None = None  # monotonic; with a budget, no example starts after it
        self.min_shrink: float | None = None  # with a budget: what shrinking gets even for a failure at the deadline
        self.failed_at: float | None = None  # when this run's first failure was seen
        self.shrink_seconds: float | None = None  # the bound set for shrinking it (None: hypothesis' own)
        self.hangs = 0  # calls of this check that hit the per-call limit
        self.hangs_at_failure = 0
        self.last_failure: BaseException | None = None  # the latest failure of this run: the smallest so far
        self.cut = ""  # why shrinking ended before hypothesis was done with it, for the report
        self.generated = False  # whether any example ran inside hypothesis

    def new_run(self) -> None:
        """Starts a new hypothesis run of the check (a budget repeats the check with fresh examples)."""
        self.failed_at, self.shrink_seconds, self.last_failure = None, None, None
        bound_shrinking(None)

    def failed(self, hang_limit: float | None = None, made: bool = True, error: BaseException | None = None) -> None:
        """Notes a failure (`error`, when known) of the example under way; `hang_limit`: it was a hang (a call
        `made`, or one known to hang and not made again), and later calls cost this much."""
        if hang_limit is not None and made:
            self.hangs += 1
        if not currently_in_test_context():
            return
        if error is not None:
            self.last_failure = error
        if self.failed_at is not None:
            return
        self.failed_at, self.hangs_at_failure = budget.clock(), self.hangs
        # Hypothesis goes straight to shrinking (report_multiple_bugs=False) and reads the bound as it starts.
        if self.deadline is not None and self.min_shrink is not None:
            self.shrink_seconds = max(self.deadline - self.failed_at, self.min_shrink)
        else:
            self.shrink_seconds = shrink_bound()
        if self.shrink_seconds is not None:
            bound_shrinking(self.shrink_seconds)

    def check(self, examples: int, failing: bool = False) -> None:
        """Where a run may end: at the start of an example, or as one of its sessions ends, once what the session
        held is released (a state machine holds more, so nothing may be raised as its session starts). Ends the
        run with BudgetSpent once the deadline has passed and at least one of `examples` ran (never while
        `failing`, an error on its way out), and stops shrinking a hang with ShrinkStopped once it has cost
        MAX_HANGS more calls that hit the limit."""
        if not currently_in_test_context():
            return
        self.generated = True
        if final_replay():
            return  # hypothesis' replay of the minimal failing example
        if self.failed_at is not None:
            if self.hangs - self.hangs_at_failure >= MAX_HANGS and self.last_failure is not None:
                self.cut = f"shrinking stopped after {self.hangs} calls hit the limit"
                raise ShrinkStopped(self.last_failure)
            return
        if not failing and self.deadline is not None and examples > 0 and budget.clock() >= self.deadline:
            raise BudgetSpent("the check's share of the budget is spent")

    def finish(self) -> None:
        """Puts hypothesis' own shrinking bound back after the check."""
        bound_shrinking(None)

    def note_shrink_stopped(self) -> None:
        """Notes that hypothesis stopped shrinking at the bound set for it."""
        where = "the end of its share" if self.deadline is not None else "the profile's bound"
        self.cut = f"shrinking stopped at {where} ({self.shrink_seconds or 0:.1f}s)"


@contextmanager
def paced_reports(pacer: Pacer) -> Iterator[None]:
    """Hypothesis' reports during a check, minus its warning when shrinking stops at the bound the Pacer set (it
    speaks of five minutes and asks for a bug report); the Pacer notes the stop instead."""
    def stopped(text: object) -> bool:
        if SLOW_SHRINK_WARNING in str(text) and pacer.shrink_seconds is not None:
            pacer.note_shrink_stopped()
            return True
        return False

    with intercepted_reports(stopped):
        yield


def pace_examples(item: Any) -> None:
    """Wraps a @given check's examples (once per function) so its subject's Pacer sees each start and each failure."""
    handle: Any = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None or getattr(inner, "_conformance_paced", False):
        return

    @functools.wraps(inner)
    def paced(*args: Any, **kwargs: Any) -> Any:
        pacer = getattr(kwargs.get("subject"), "pacer", None)
        if not isinstance(pacer, Pacer):
            return inner(*args, **kwargs)
        pacer.check(kwargs["subject"].examples)  # nothing is held yet: the run may end here
        try:
            return inner(*args, **kwargs)
        except UnsatisfiedAssumption:
            raise
        except Exception as err:
            pacer.failed(error=err)
            raise

    paced._conformance_paced = True  # type: ignore[attr-defined]
    handle.inner_test = paced


def given_seed(config: Any) -> int | str | None:
    """--hypothesis-seed as given (hypothesis takes digits as an int seed)."""
    seed = config.getoption("hypothesis_seed", None)
    return int(seed) if isinstance(seed, str) and seed.isdigit() else seed


def run_seed(config: Any) -> int | None:
    """The run's hypothesis seed: --hypothesis-seed, or the controller's under xdist; None when none is given or
    the profile is derandomized (each check's seed then comes from its name)."""
    if settings().derandomize:
        return None
    given = given_seed(config)
    if isinstance(given, int):
        return given
    if given is not None:  # hypothesis takes a non-numeric seed as it is; keep an int for the report
        return int.from_bytes(str(given).encode()[:8].ljust(8, b"\0"), "big")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("conformance_seed") is not None:
        return int(workerinput["conformance_seed"])
    # No seed given: none is forced, because hypothesis turns its example database off under a forced seed, and
    # the database is what replays a failure on the next run (and shares it between machines).
    return None


def force_seed(seed: int | None, repetition: int = 0) -> None:
    """Makes every check use `seed` (repetition > 0: a budget's repetition gets its own, derived from it)."""
    if seed is not None:
        force_global_seed(seed + 1_000_003 * repetition)


def randomized_for_budget() -> None:
    """Under a budget each repetition must draw new examples: a derandomized profile would repeat itself. Derived
    from the current profile, the budget's keeps its batch limit (batch_limit follows the parents)."""
    if settings().derandomize:
        name = f"{settings.get_current_profile_name()}-budget"
        settings.register_profile(name, settings(), derandomize=False)
        settings.load_profile(name)


def seed_description(seed: int | None) -> str:
    """The seed as the header says it."""
    if seed is not None:
        return f"seed {seed}"
    if settings().derandomize:
        return "derandomized (no seed: each check's examples follow from its name)"
    return "seed random (each check draws its own; failures replay from the example database)"


def seed_in_report(seed: int | None) -> int | str:
    """The seed as the JSON report gives it: the one used, or "derandomized", or "random"."""
    return seed if seed is not None else "derandomized" if settings().derandomize else "random"
