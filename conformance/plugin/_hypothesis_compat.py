"""Every use of hypothesis' internals, in one place: what a hypothesis upgrade may break is here and only here.

Each function says which internal it reads or sets; the rest of the suite uses hypothesis' public API only.
"""

import ast
import base64
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis.core
from hypothesis import settings
from hypothesis.control import current_build_context, currently_in_test_context
from hypothesis.internal.conjecture import engine as _engine
from hypothesis.reporting import current_reporter, with_reporter

__all__ = ["registered_profiles", "parent_settings", "bound_shrinking", "force_global_seed", "final_replay",
           "intercepted_reports", "SLOW_SHRINK_WARNING", "reproduce_blob", "reproducing"]

# Hypothesis' own bound on shrinking (conjecture.engine.MAX_SHRINKING_SECONDS): read when shrinking starts, so a
# failure sets it for the shrink that follows.
_SHRINK_SECONDS = "MAX_SHRINKING_SECONDS"
_DEFAULT_SHRINK_SECONDS = getattr(_engine, _SHRINK_SECONDS, None)

# The start of the warning hypothesis reports when shrinking stops at that bound.
SLOW_SHRINK_WARNING = "Hypothesis has spent more than five minutes working to shrink"

# The note hypothesis adds to a failure with print_blob=True: `@reproduce_failure('VERSION', b'BLOB')`.
_BLOB = re.compile(r"@reproduce_failure\('([^']+)', (b'[^']*')\)")


def registered_profiles() -> list[str]:
    """The names of the registered settings profiles (settings._profiles: hypothesis has no public list)."""
    return sorted(settings._profiles)


def parent_settings(current: Any) -> Any:
    """The settings object `current` was derived from (its `_fallback`), or None."""
    return getattr(current, "_fallback", None)


def bound_shrinking(seconds: float | None) -> None:
    """Sets hypothesis' bound on shrinking one failure (None: back to its own)."""
    if _DEFAULT_SHRINK_SECONDS is not None:
        setattr(_engine, _SHRINK_SECONDS, _DEFAULT_SHRINK_SECONDS if seconds is None else seconds)


def force_global_seed(seed: int) -> None:
    """Makes every @given use `seed`, as --hypothesis-seed does (hypothesis.core.global_force_seed)."""
    if hasattr(hypothesis.core, "global_force_seed"):
        # hypothesis declares it as `global_force_seed = None`, though --hypothesis-seed sets an int there too
        hypothesis.core.global_force_seed = seed  # type: ignore[assignment]


def final_replay() -> bool:
    """Whether hypothesis is replaying the minimal failing example it will report (its build context's is_final)."""
    return currently_in_test_context() and current_build_context().is_final


@contextmanager
def intercepted_reports(intercept: Callable[[object], bool]) -> Iterator[None]:
    """Hypothesis' reports pass through `intercept` first; those it returns True for are not reported."""
    previous: Callable[[object], None] = current_reporter()

    def report(text: object) -> None:
        if not intercept(text):
            previous(text)

    with with_reporter(report):
        yield


def reproduce_blob(failures: Iterable[BaseException]) -> tuple[str, str] | None:
    """Hypothesis' version and blob (base64) of the minimal failing example, from the notes it adds to a failure."""
    for failure in failures:
        for note in getattr(failure, "__notes__", []):
            match = _BLOB.search(note)
            if match:
                return match.group(1), base64.b64encode(ast.literal_eval(match.group(2))).decode()
    return None


@contextmanager
def reproducing(check: Any, version: str, blob: bytes) -> Iterator[None]:
    """Runs of `check` inside replay the example `blob` stands for, as @reproduce_failure(version, blob) would."""
    check._hypothesis_internal_use_reproduce_failure = (version, blob)
    try:
        yield
    finally:
        del check._hypothesis_internal_use_reproduce_failure
