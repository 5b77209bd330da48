"""The conformance checks, one module per contract area (collected by the plugin only with --destination)."""

from pathlib import Path

__all__ = ["SUITE_DIR"]

SUITE_DIR = Path(__file__).parent
