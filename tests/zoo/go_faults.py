"""Our fixed Go destination on SDK v0.14.2 (tests/go/fixed14) with one held-out fault-handling bug each, a one-line
patch of its package (tests/go/zoo/<bug>.patch, built with `go build -overlay`); standalone connectors, whose I/O the
fault clauses reach through the FUSE filesystem (tests/test_fuse_faults.py):

- go_inplace: a value is written in place, not through a temporary file renamed over it: a full disk leaves a
  partial value.
- go_overcounts: the record whose write failed is counted as written: a miscount after EIO.
- go_dropsfsync: the temporary file is fsynced and a failed fsync ignored: a swallowed fsync error.
"""

from __future__ import annotations

from harness import Registration, directory_reader
from harness.conduit.standalone import standalone_registration
from tests.go_connectors import build

__all__ = ["go_dropsfsync", "go_inplace", "go_overcounts"]

BUGS = ("inplace", "overcounts", "dropsfsync")


def __getattr__(name: str) -> Registration:
    """Builds a connector only when a test asks for it."""
    bug = name.removeprefix("go_")
    if name.startswith("go_") and bug in BUGS:
        return standalone_registration([str(build(f"fixed14-{bug}"))], config={"directory": "{tmp}/out"},
                                       read_back=directory_reader("directory"), directory_param="directory")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
