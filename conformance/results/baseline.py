"""The baseline (--conformance-baseline): an earlier JSON report's statuses, the known failures, and the "not
checked" clauses a team accepts, with their reasons."""

import json
from pathlib import Path

from conformance.contract.clauses import CLAUSES
from conformance.results.status import Status

__all__ = ["ACCEPTED_NOT_CHECKED", "load_baseline", "load_accepted_not_checked"]

# The baseline's field of "not checked" clauses a team accepts, clause -> reason: at the top level for every
# destination, or in a destination's entry for that one.
ACCEPTED_NOT_CHECKED = "accepted_not_checked"

_STATUSES = {status.value for status in Status}


def load_baseline(path: Path) -> dict[str, dict[str, Status]]:
    """Destination -> clause -> status from an earlier JSON report (a status it does not know is left out, as
    one no verdict matches); ValueError says what is wrong with it."""
    try:
        document = json.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON: {err}") from None
    destinations = document.get("destinations") if isinstance(document, dict) else None
    if not isinstance(destinations, dict):
        raise ValueError(f"{path} is not a conformance report (no 'destinations' object)")
    return {
        name: {clause: Status(row["status"]) for clause, row in entry.get("clauses", {}).items()
               if row.get("status") in _STATUSES}
        for name, entry in destinations.items()
    }


def load_accepted_not_checked(path: Path) -> dict[str, dict[str, str]]:
    """Destination ("*" for every one) -> clause -> reason, from the baseline's "accepted_not_checked" fields;
    ValueError says what is wrong with them."""
    document = json.loads(path.read_text())
    found: dict[str, dict[str, str]] = {}
    places = [("*", document.get(ACCEPTED_NOT_CHECKED), ACCEPTED_NOT_CHECKED)]
    for name, entry in document["destinations"].items():
        if isinstance(entry, dict):
            places.append((name, entry.get(ACCEPTED_NOT_CHECKED), f"destinations.{name}.{ACCEPTED_NOT_CHECKED}"))
    for name, value, where in places:
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ValueError(f"{path}: {where} must be an object of clause id -> reason")
        for clause_id, reason in value.items():
            if clause_id not in CLAUSES:
                raise ValueError(f"{path}: {where} names {clause_id!r}, which is not a clause id")
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(f"{path}: {where}.{clause_id} needs a reason (a non-empty string)")
        found[name] = dict(value)
    return found
