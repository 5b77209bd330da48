"""Destinations written with the official Conduit Python SDK (`conduit-connector-sdk`), to check through the suite.

`file_destination` is a correct one-file-per-key destination, `broken_accounting` the same with a wrong
`BatchWriteError` count; `serve_file` and `serve_broken` run each as a standalone Conduit plugin.
"""

__all__: list[str] = []
