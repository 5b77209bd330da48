"""A server a destination talks to over TCP (a database, an object store, a broker), declared on its Registration so
that the suite can put a fault proxy between them (the backend fault checks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registration import Registration

__all__ = ["Backend", "split_address"]


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of a "host:port" (an IPv6 host in brackets); ValueError names what is wrong."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"a backend address is 'host:port' with a port in 1..65535, got {address!r}")
    return host, int(port)


@dataclass(frozen=True)
class Backend:
    """Where the destination connects (`address`, "host:port"), and how to make it connect elsewhere: the config
    `params` whose values spell that address (each occurrence is replaced by the proxy's), or `reroute`, for a
    destination told its server some other way (an environment variable): the registration talking to another
    "host:port" instead. The read-back keeps talking to `address` directly.

    A server that tells its clients where to connect next (a Kafka broker's advertised listeners) bypasses a proxy on
    a free port: give it a listener advertising an address fixed in advance, and declare that address as `listen`
    (the proxy listens there instead of on a free port) and the listener as `upstream` (the proxy forwards there
    instead of to `address`)."""

    address: str
    params: tuple[str, ...] = ()
    reroute: Callable[[str], Registration] | None = None
    name: str = ""  # what the report calls it ("postgres", "s3", "kafka broker 1"); the address when empty
    listen: str = ""  # "host:port" the proxy must listen on; a free loopback port when empty
    upstream: str = ""  # "host:port" the proxy forwards to; `address` when empty

    def __post_init__(self) -> None:
        split_address(self.address)
        for field_name in ("listen", "upstream"):
            value = getattr(self, field_name)
            if value:
                try:
                    split_address(value)
                except ValueError as err:
                    raise ValueError(f"Backend {self.address!r}: {field_name}: {err}") from None
        if not self.params and self.reroute is None:
            raise TypeError(f"Backend {self.address!r}: name the config params that spell its address, or give "
                            "reroute, so the suite can point the destination at a proxy")
        if self.reroute is not None and not callable(self.reroute):
            raise TypeError("Backend.reroute must be callable(\"host:port\") -> Registration")

    @property
    def forwards_to(self) -> str:
        """Where the proxy in front of this backend forwards: `upstream`, or `address`."""
        return self.upstream or self.address

    @property
    def label(self) -> str:
        """How failure messages and the report name this backend."""
        where = f"{self.name} at {self.address}" if self.name else self.address
        return f"{where} (proxied through its listener at {self.upstream})" if self.upstream else where

    def check(self, config: Mapping[str, str]) -> None:
        """Refuses params that are not keys of the registration's config or whose value does not spell the address."""
        for param in self.params:
            if param not in config:
                raise TypeError(f"Backend {self.address!r}: param {param!r} is not a key of config")
            if self.address not in config[param]:
                raise TypeError(f"Backend {self.address!r}: config[{param!r}] = {config[param]!r} does not spell "
                                "the address, so pointing it at a proxy would change nothing")

    def overlay(self, config: Mapping[str, str], listen: str) -> dict[str, str]:
        """The config entries that send the destination to `listen` ("host:port") instead of the backend."""
        return {param: config[param].replace(self.address, listen) for param in self.params}


def as_backends(value: Any) -> tuple[Backend, ...]:
    """Registration.backends as a tuple of Backend, or a TypeError naming what else it holds."""
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, Backend)]
    if bad:
        raise TypeError(f"Registration.backends must hold harness.Backend values, got {bad[0]!r}")
    return items
