"""The probe before any check: the registration's factory, parameters(), config, configure and open, once.

A failure there is one every check that makes that call would repeat; the run says it once and does not run those
checks (their clauses fail with it as the root cause)."""

from collections.abc import Mapping
from dataclasses import dataclass

from harness import CallTimeout, ConfigError, Driver, Parameter, Registration, validate_config

__all__ = ["FATAL_STEPS", "ProbeResult", "probe", "needed_step", "needs_failed_step"]

# The calls the probe makes in order; a failure of one of these is fatal to the checks that make it.
FATAL_STEPS = ("factory", "configure", "open")
# What a clause's checks call before they get to their clause: every check makes a destination; the parameters.* and
# configure.* checks call configure themselves (their verdict is what configure does); every other check opens it.
_AREA_STEP = {"parameters": "factory", "configure": "factory"}


@dataclass(frozen=True)
class ProbeResult:
    """What the probe of one registration found."""

    step: str | None  # the fatal step that failed (one of FATAL_STEPS), or None when the destination opened
    message: str  # as the checks word it: "open() raised PermissionError: ...", or "" when it opened
    timeout: bool = False  # the failing call did not return within the per-call limit
    notes: tuple[str, ...] = ()  # what went wrong without being fatal (parameters(), the config, teardown)
    error: str = ""  # the failing call's exception type ("" when it did not return or nothing failed)

    @property
    def failed(self) -> bool:
        """Whether a fatal step failed."""
        return self.step is not None

    @property
    def label(self) -> str:
        """The failing call as the header names it."""
        return "the factory" if self.step == "factory" else f"{self.step}()"


def needed_step(clause_id: str) -> str:
    """The last of FATAL_STEPS a clause's checks need to succeed with the registered config."""
    return _AREA_STEP.get(clause_id.split(".", 1)[0], "open")


def needs_failed_step(clause_id: str, result: ProbeResult) -> bool:
    """Whether a clause's checks would only repeat the probe's failure."""
    if result.step is None or clause_id == "call.timeout":
        return False
    return FATAL_STEPS.index(needed_step(clause_id)) >= FATAL_STEPS.index(result.step)


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 300 else first[:300] + " ..."


def _config_problem(parameters: object, config: Mapping[str, str]) -> str | None:
    """What validating the registered config against the declared parameters says, or None when it fits (or the
    parameters are not the harness' Parameter objects, which only the destination itself can judge)."""
    if not isinstance(parameters, Mapping) or not all(isinstance(p, Parameter) for p in parameters.values()):
        return None
    try:
        validate_config(config, parameters)
    except ConfigError as err:
        return str(err)
    return None


def probe(registration: Registration, timeout: float) -> ProbeResult:
    """Makes the registration's destination, reads parameters(), checks the config against them, configures and
    opens it, and tears it down: the first fatal failure, and notes of the others."""
    notes: list[str] = []
    try:
        driver = Driver(registration, timeout=timeout)
    except CallTimeout:
        return ProbeResult("factory", f"the factory did not return within {timeout:g}s", timeout=True)
    except Exception as err:
        return ProbeResult("factory", f"the factory raised {_describe(err)}", error=type(err).__name__)
    torn_down = False
    try:
        parameters: object = None
        try:
            parameters = driver.parameters
        except Exception as err:
            notes.append(f"parameters() raised {_describe(err)}")
        problem = _config_problem(parameters, driver.config)
        for step, call in (("configure", driver.configure), ("open", driver.open)):
            try:
                call()
            except CallTimeout:
                return ProbeResult(step, f"{step}() did not return within {timeout:g}s", timeout=True,
                                   notes=tuple(notes))
            except Exception as err:
                said = "configure() with the registered config" if step == "configure" else "open()"
                message = f"{said} raised {_describe(err)}"
                if step == "configure" and problem is not None and problem not in message:
                    message += f" (against parameters(): {problem})"
                return ProbeResult(step, message, notes=tuple(notes), error=type(err).__name__)
            if step == "configure" and problem is not None:
                notes.append(f"configure() accepted a config that parameters() does not: {problem}")
        torn_down = True
        try:
            driver.teardown()
        except Exception as err:  # teardown.* checks judge it; the checks before it can still run
            notes.append(f"teardown() raised {_describe(err)}")
        return ProbeResult(None, "", notes=tuple(notes))
    finally:
        if not torn_down:  # after a failed configure or open: release what it holds, whatever teardown says
            try:
                driver.teardown()
            except Exception:
                pass
        driver.close()
