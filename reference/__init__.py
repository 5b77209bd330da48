"""The reference file destination: one file per record key in a directory."""

from .file_destination import (
    TEMP_PREFIX,
    FileConfig,
    FileDestination,
    key_name,
    key_problem,
    new_destination,
    registration,
)

__all__ = ["FileConfig", "FileDestination", "TEMP_PREFIX", "key_name", "key_problem", "new_destination", "registration"]
