"""The key-value destinations' shared piece: the registration of a destination class behind the default middleware,
on the repository's key-value server (tests/zoo/backend.py: started in a process of its own on first use), declared
as the backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import Backend, Registration, default_destination_middleware, destination_with_middleware
from tests.zoo.backend import read_space, server_address

__all__ = ["kv_registration", "side_space"]


def kv_registration(cls: Callable[[], Any], name: str) -> Registration:
    """`cls()` behind the default middleware, on this process' key-value server, read back by DUMPing its space."""
    address = server_address()

    def factory() -> Any:
        return destination_with_middleware(cls(), *default_destination_middleware())

    factory.__qualname__ = getattr(cls, "__name__", name)
    return Registration(factory=factory, config={"server": address, "space": "{tmp}"}, read_back=read_space,
                        backends=(Backend(address, params=("server",), name="key-value server"),))


def side_space(space: str, suffix: str) -> str:
    """A key space beside the destination's (its bookkeeping, never read back), hex as the server's commands want."""
    return f"{space}#{suffix}".encode().hex()
