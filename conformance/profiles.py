"""Hypothesis profiles of the suite, and the settings every suite test carries."""

from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import InvalidArgument

__all__ = ["PROFILES", "DEFAULT_PROFILE", "CI_PROFILE", "register_profiles", "suite_settings", "batch_limit"]

DEFAULT_PROFILE = "conformance-dev"
CI_PROFILE = "conformance-ci"
FUZZ_PROFILE = "conformance-fuzz"

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
    FUZZ_PROFILE: dict(max_examples=2000, deadline=None, suppress_health_check=_QUIET, stateful_step_count=60,
                       print_blob=True, phases=tuple(Phase)),
}

# Largest batch per profile; the fuzz profile pushes bigger batches.
_BATCH_LIMITS = {DEFAULT_PROFILE: 8, CI_PROFILE: 12, FUZZ_PROFILE: 64}


def register_profiles() -> None:
    """Registers the suite's profiles (at plugin import, so --hypothesis-profile can name them)."""
    for name, values in PROFILES.items():
        settings.register_profile(name, **values)


def batch_limit() -> int:
    """The largest batch the current profile asks for, also for profiles derived from the suite's (a user's
    `register_profile(name, settings.get_profile("conformance-fuzz"), ...)`, or the budget's)."""
    registered = {}
    for name, limit in _BATCH_LIMITS.items():
        try:
            registered[id(settings.get_profile(name))] = limit
        except InvalidArgument:  # outside pytest (a replay script): the suite's profiles are not registered
            continue
    current: Any = settings.default
    while current is not None:  # each settings object keeps the one it was derived from
        if id(current) in registered:
            return registered[id(current)]
        current = getattr(current, "_fallback", None)
    return _BATCH_LIMITS.get(settings.get_current_profile_name(), 8)


def suite_settings(**overrides: Any) -> settings:
    """The current profile with the suite's health checks off; `overrides` for expensive tests only."""
    return settings(settings(), suppress_health_check=_QUIET, deadline=None, **overrides)


def fraction_of_examples(fraction: float, minimum: int = 2) -> int:
    """A share of the current profile's max_examples, for tests whose every example is costly."""
    return max(minimum, int(settings().max_examples * fraction))
