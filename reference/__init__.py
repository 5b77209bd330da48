"""The reference file destination: one file per record key in a directory."""

from .file_destination import FileConfig, FileDestination, TEMP_PREFIX, key_problem, new_destination, registration

__all__ = ["FileConfig", "FileDestination", "TEMP_PREFIX", "key_problem", "new_destination", "registration"]
