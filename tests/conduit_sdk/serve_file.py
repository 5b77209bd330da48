"""Runs the correct SDK file destination as a standalone Conduit plugin.

`python -m tests.conduit_sdk.serve_file` from the repository root, or `python tests/conduit_sdk/serve_file.py`
from anywhere; Conduit (or a test playing it) sets the go-plugin handshake environment.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import conduit  # noqa: E402

from tests.conduit_sdk.file_destination import SPECIFICATION, SdkFileDestination  # noqa: E402

__all__ = ["main"]


def main() -> None:
    """Serves the destination until Conduit shuts the plugin down."""
    conduit.serve(SPECIFICATION, destination=SdkFileDestination)


if __name__ == "__main__":
    main()
