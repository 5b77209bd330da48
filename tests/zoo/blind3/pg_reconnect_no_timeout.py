"""BUG (fault.backend-stall): a PostgreSQL destination with a client-side deadline on every statement, but whose
reconnect (made by open and by the first write after a failed one) calls psycopg.connect() without connect_timeout:
libpq then waits for ever for the answer to its startup packet. With the backend stalled, the first write fails in
time and the pipeline's retry of it hangs."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.zoo.blind3._pgbase import PGDestination, pg_registration

__all__ = ["ReconnectsWithoutTimeout"]


class ReconnectsWithoutTimeout(PGDestination):
    """The correct PostgreSQL destination, but for the connect timeout."""

    def raw_connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, autocommit=True)  # the bug: no connect_timeout


def __getattr__(name: str) -> Any:
    """Reads $CONFORMANCE_POSTGRES_DSN only when the registration is asked for."""
    if name == "registration":
        return pg_registration(ReconnectsWithoutTimeout, "pg_reconnect_no_timeout")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
