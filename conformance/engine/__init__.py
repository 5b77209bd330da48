"""Conduit engine pipelines around a destination, and the connector processes they run (module entry points)."""

__all__: list[str] = []
