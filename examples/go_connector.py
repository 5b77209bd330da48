"""A Go Conduit destination connector, checked as a standalone executable over Conduit's plugin protocol.

The connector binary's path comes from the environment variable CONFORMANCE_CONNECTOR, so one registration serves
any build of it (a local `go build`, a release download, a CI artifact):

    go build -o bin/my-connector ./cmd/connector        # in the connector's repository
    CONFORMANCE_CONNECTOR=bin/my-connector pytest --destination=examples.go_connector:registration

It needs the `conduit` extra (`pip install 'destination-conformance[conduit]'`). The config and read-back below fit
a connector that keeps one file per record key in the directory its `directory` parameter names; change them to
what your connector writes. `standalone_registration` reads the binary's Go build info and marks what the
connector's conduit-connector-sdk version is known to force (an empty batch, a 4 MiB record, a write before Open)
as not applicable, with the reason. Without $CONFORMANCE_CONNECTOR, importing this module fails with a message
saying so (pytest reports it as a usage error).
"""

import os

from harness import directory_reader

__all__ = ["ENV_VAR", "connector_binary", "registration"]

ENV_VAR = "CONFORMANCE_CONNECTOR"


def connector_binary() -> str:
    """The connector executable named by $CONFORMANCE_CONNECTOR, made absolute; a clear error without it."""
    path = os.environ.get(ENV_VAR, "")
    if not path:
        raise RuntimeError(f"set {ENV_VAR} to the path of the connector executable to check "
                           f"(e.g. {ENV_VAR}=bin/my-connector)")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK) or not os.path.isfile(path):
        raise RuntimeError(f"{ENV_VAR}={path} is not an executable file")
    return path


from harness.conduit.standalone import standalone_registration  # noqa: E402 (needs the `conduit` extra: grpcio, the SDK)

registration = standalone_registration(
    [connector_binary()],                     # one process per destination, as Conduit starts it
    config={"directory": "{tmp}/out"},        # "{tmp}" becomes a fresh empty temp dir for every example
    read_back=directory_reader("directory"),  # config -> {key bytes: value bytes}: one file per key
    directory_param="directory",              # the parameter Open must create: enables open.* and safety.*
)
