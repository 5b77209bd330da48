"""CONTROL: a PostgreSQL destination, one transaction per batch (written=0 on any server error), every round trip
under a client-side deadline, a reconnect (with a connect timeout) on the next batch after an error."""

from __future__ import annotations

from typing import Any

from tests.zoo.blind3._pgbase import PGDestination, pg_registration

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    """Reads $CONFORMANCE_POSTGRES_DSN only when the registration is asked for."""
    if name == "registration":
        return pg_registration(PGDestination, "ctl_pg_txn")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
