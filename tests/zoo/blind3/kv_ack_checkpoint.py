"""BUG (fault.backend-stall): a key-value destination that records the last acked position on the server (in a
side space, for operators) from ack(), over its data connection switched to blocking mode for the checkpoint ("a
checkpoint must not be cut short"): with the server stalled, ack never returns."""

from __future__ import annotations

from typing import Any

from tests.zoo.backend import KVDestination
from tests.zoo.blind3._kvbase import kv_registration, side_space

__all__ = ["CheckpointingAck"]


class CheckpointingAck(KVDestination):
    """The correct key-value destination, but for the checkpoint in ack."""

    def ack(self, position: bytes) -> None:
        assert self._config is not None
        connection = self._connected()
        connection.settimeout(None)  # the bug
        try:
            connection.sendall(f"PUT {side_space(self._config.space, 'ckpt')} {b'position'.hex()} "
                               f"{position.hex() or '-'}\n".encode())
            self._answers.readline()
        finally:
            if self._connection is not None:
                self._connection.settimeout(self._config.timeout)


def __getattr__(name: str) -> Any:
    """Starts the server only when the registration is asked for."""
    if name == "registration":
        return kv_registration(CheckpointingAck, "kv_ack_checkpoint")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
