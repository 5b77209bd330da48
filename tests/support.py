"""What several test modules share: the spec of a broken destination to run the suite against, readers of its
output and reports, and a conftest that runs a profile without shrinking."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

__all__ = ["DROPS_LAST", "summary", "junit_verdicts", "report_verdicts", "no_shrink_conftest"]

# A destination whose write silently drops the last record of each batch (and still returns len(records)).
DROPS_LAST = "tests.zoo.scenarios:drops_last"


def summary(output: str, destination: str) -> dict[str, str]:
    """The clause -> status table the plugin printed for one destination."""
    section = output.split(f"destination conformance: {destination}", 1)[1]
    rows = {}
    for line in section.splitlines()[1:]:
        match = re.match(r"  (passed|FAILED|known fail|not checked|n/a|skipped)\s+([a-z]+\.[a-z-]+)", line)
        if match:
            rows[match.group(2)] = match.group(1)
        elif rows and not line.startswith("  "):
            break
    return rows


def junit_verdicts(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Destination -> clause -> (verdict, reason) from a JUnit file's testsuite properties."""
    props = [(p.get("name", ""), p.get("value", "")) for suite in ET.parse(path).getroot().iter("testsuite")
             for p in suite.findall("properties/property")]
    names = [name for name, _ in props]
    assert len(names) == len(set(names)), "a verdict or reason property is repeated"
    values = dict(props)
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for name, value in props:
        kind, _, rest = name.partition(":")
        if kind == "verdict":
            destination, _, clause_id = rest.rpartition(":")
            found.setdefault(destination, {})[clause_id] = (value, values.get(f"reason:{rest}", ""))
    assert {name.partition(":")[2] for name in names if name.startswith("reason:")} <= \
        {f"{d}:{c}" for d, rows in found.items() for c in rows}, "a reason without its verdict"
    return found


def report_verdicts(report: dict[str, Any]) -> dict[str, dict[str, tuple[str, str]]]:
    """The same from a --conformance-report JSON file's rows."""
    return {name: {c: (row["status"], row.get("reason", "")) for c, row in d["clauses"].items()}
            for name, d in report["destinations"].items()}


def no_shrink_conftest(*profiles: str, **overrides: object) -> str:
    """A conftest for a suite run in a subprocess: each of `profiles` as the suite defines it (with `overrides` of
    its settings), without hypothesis' shrink phase.

    Shrinking only minimises the failing example shown; whether a clause fails is decided before it, so no verdict
    changes, and the runs take a fraction of the time."""
    settings = "".join(f", {name}={value!r}" for name, value in overrides.items())
    lines = ["from hypothesis import Phase, settings", ""]
    for profile in dict.fromkeys(profiles):
        lines += [f"_profile = settings.get_profile({profile!r})",
                  f"settings.register_profile({profile!r}, _profile, "
                  f"phases=tuple(p for p in _profile.phases if p is not Phase.shrink){settings})"]
    return "\n".join(lines) + "\n"
