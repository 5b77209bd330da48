"""Conduit's side of the harness: its messages, SDK destinations, connector executables (the `conduit` extra)."""

__all__: list[str] = []
