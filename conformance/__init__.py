"""The destination conformance suite: a pytest plugin, its clause registry and public hypothesis strategies."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__`: the distribution's one version, harness.__version__ (read when asked for, so loading the
    pytest plugin without --destination imports nothing of the harness)."""
    if name == "__version__":
        from harness import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
