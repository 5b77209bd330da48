"""The destination conformance suite: a pytest plugin, its clause registry and public hypothesis strategies."""

__version__ = "0.1.0"

__all__ = ["__version__"]
