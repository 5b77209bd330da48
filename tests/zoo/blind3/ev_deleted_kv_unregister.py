"""BUG (fault.backend-stall): a key-value destination whose OnDeleted tells the server to forget the connector's
registration (a delete of its bookkeeping key in a side space, not user data) over a fresh socket with no timeout:
with the server stalled, OnDeleted, and so deleting the connector in Conduit, hangs for ever."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from tests.zoo.backend import KVDestination
from tests.zoo.blind3._kvbase import kv_registration, side_space

__all__ = ["UnregistersOnDeleted"]


class UnregistersOnDeleted(KVDestination):
    """The correct key-value destination, plus an OnDeleted that talks to the server without a deadline."""

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        host, port = config["server"].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as connection:  # the bug: no timeout
            connection.sendall(f"DEL {side_space(config['space'], 'meta')} {b'registration'.hex()}\n".encode())
            with connection.makefile("rb") as answers:
                answers.readline()


def __getattr__(name: str) -> Any:
    """Starts the server only when the registration is asked for."""
    if name == "registration":
        return kv_registration(UnregistersOnDeleted, "ev_deleted_kv_unregister")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
