"""What a run prints beside the checks' results: the header's lines per destination, the --collect-only list."""

from typing import Any

from conformance.contract.checks import NOT_APPLICABLE_PREFIX
from conformance.plugin.probe import ProbeResult
from harness import Driver, Registration

__all__ = ["destination_lines", "list_checks"]


def destination_lines(registration: Registration, probed: ProbeResult | None, timeout: float) -> list[str]:
    """The header's lines on one destination: how it is reached, its config, keys, skips, parameters and probe."""
    lines = [f"destination {registration.name}:", f"  path: {_describe_path(registration)}",
             f"  config: {dict(registration.config)}"]
    keys = "declared by the registration" if registration.valid_keys is not None else "SPEC defaults"
    lines.append(f"  read_back: {getattr(registration.read_back, '__qualname__', None) or 'none'}; "
                 f"directory_param: {registration.directory_param or 'none'}; keys: {keys}")
    # Clauses left out, as the header always showed them: the inapplicable ones with their verdict in front.
    omitted = {**registration.skip, **{c: NOT_APPLICABLE_PREFIX + r for c, r in registration.not_applicable.items()}}
    if omitted:
        lines.append(f"  skip: {omitted}")
    lines.append(f"  parameters: {_parameter_names(registration, timeout)}")
    lines.extend(_probe_lines(probed))
    return lines


def _probe_lines(result: ProbeResult | None) -> list[str]:
    """The header's lines on the probe of one destination."""
    if result is None:
        return []
    if not result.failed:
        lines = ["  probe: factory, parameters(), configure, open, teardown: ok"]
    else:
        lines = [f"  probe: FAILED: {result.message}",
                 f"  probe: the checks that need {result.label} to succeed are not run; their clauses fail with this "
                 "as the root cause (at the end, with a replay)"]
    return lines + [f"  probe note: {note}" for note in result.notes]


def list_checks(terminalreporter: Any, listed: list[tuple[str, str]]) -> None:
    """--collect-only: the selected checks by clause id."""
    terminalreporter.section("conformance checks by clause")
    width = max((len(c) for c, _ in listed), default=0)
    for clause_id, nodeid in listed:
        terminalreporter.write_line(f"{clause_id:<{width}}  {nodeid}")
    clauses = {c for c, _ in listed}
    terminalreporter.write_line(f"{len(listed)} checks of {len(clauses)} clauses selected")


def _describe_path(registration: Registration) -> str:
    """How the suite reaches the destination: native, SDK in-process, or standalone (with its specification)."""
    if registration.describe is None:
        return registration.transport
    try:
        return registration.describe()
    except Exception as err:
        return f"{registration.transport} ({type(err).__name__}: {err})"


def _parameter_names(registration: Registration, timeout: float) -> str:
    """The destination's parameter names (required ones marked), from a driver made for the header."""
    try:
        with Driver(registration, timeout=timeout) as driver:
            params = driver.parameters()
            try:
                driver.teardown()
            except Exception:
                pass
        return ", ".join(f"{n}{' (required)' if getattr(p, 'required', False) else ''}"
                         for n, p in dict(params).items())
    except Exception as err:
        return f"unavailable ({type(err).__name__}: {err})"
