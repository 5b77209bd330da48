"""BUG (fault.backend-stall): a key-value client whose teardown closes the session politely: it sends QUIT and
waits for the server's goodbye, having made the socket blocking "so the goodbye is not cut short". A server that
stalls while the connection sits idle (a batch stored, then silence) hangs teardown for ever; when a stalled write
has already dropped the connection, teardown has nothing to wait on."""

from __future__ import annotations

from typing import Any

from tests.zoo.backend import KVDestination
from tests.zoo.blind3._kvbase import kv_registration

__all__ = ["QuitAtTeardown"]


class QuitAtTeardown(KVDestination):
    """The correct key-value destination, but for the goodbye at teardown."""

    def teardown(self) -> None:
        if self._connection is not None:
            try:
                self._connection.settimeout(None)  # the bug: no deadline on the goodbye
                self._connection.sendall(b"QUIT\n")
                self._answers.readline()  # the server answers any line
            except OSError:
                pass
        super().teardown()


def __getattr__(name: str) -> Any:
    """Starts the server only when the registration is asked for."""
    if name == "registration":
        return kv_registration(QuitAtTeardown, "kv_teardown_quit")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
