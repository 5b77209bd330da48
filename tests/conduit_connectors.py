"""Registrations of real Conduit connectors for our tests: Python SDK destinations (in-process and standalone),
our Go destinations (the docs page as written, and fixed on SDK v0.12.0 and v0.14.2) and the upstream file
connector.

Go registrations are built on first access (`go build`, cached by tests/go_connectors.py).
"""

import base64
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import Registration, directory_reader
from harness.conduit.sdk import sdk_registration
from harness.conduit.standalone import standalone_registration
from tests.conduit_sdk.broken_accounting import SdkBrokenAccountingDestination
from tests.conduit_sdk.file_destination import SdkFileDestination

__all__ = [
    "FILE_RELEASES",
    "sdk_file", "sdk_file_standalone", "sdk_broken", "sdk_broken_standalone",
    "go_seed", "go_fixed", "go_fixed14", "go_created14", "go_zoo_tempstate", "go_zoo_required_unnamed",
    "go_zoo_stale_temps", "go_zoo_tmpdirlock", "upstream_file", "read_opencdc_log",
]

_SDK_DIR = Path(__file__).parent / "conduit_sdk"
_DIRECTORY = {"directory": "{tmp}/out"}

sdk_file = sdk_registration(SdkFileDestination, config=_DIRECTORY, read_back=directory_reader("directory"),
                            directory_param="directory")
sdk_broken = sdk_registration(SdkBrokenAccountingDestination, config=_DIRECTORY,
                              read_back=directory_reader("directory"), directory_param="directory")
sdk_file_standalone = standalone_registration(
    [sys.executable, str(_SDK_DIR / "serve_file.py")], config=_DIRECTORY, read_back=directory_reader("directory"),
    directory_param="directory")
sdk_broken_standalone = standalone_registration(
    [sys.executable, str(_SDK_DIR / "serve_broken.py")], config=_DIRECTORY, read_back=directory_reader("directory"),
    directory_param="directory")

def read_opencdc_log(param: str) -> Any:
    """A read_back for a connector appending one opencdc/json record per line to the file named by `param`."""

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        held: dict[bytes, bytes] = {}
        path = config[param]
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except (FileNotFoundError, NotADirectoryError):  # no file (its parent may be a file): nothing held
            return held
        # A cut record is no record: reported, never skipped, so that a check sees the partial line (fault.*).
        tail = lines.pop()  # what follows the last newline: nothing, in a file of whole records
        if tail:
            raise ValueError(f"{path} ends in half a line (no newline after it): {tail[:80]!r}")
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}: line {number} is not a whole opencdc/json record: {line[:80]!r}") from None
            key = _value(record.get("key"))
            after = _value((record.get("payload") or {}).get("after"))
            if key is None:
                continue  # a record without a key has no place in a by-key read-back
            if after is None:
                held.pop(key, None)
            else:
                held[key] = after
        return held

    read_back.__qualname__ = f"read_opencdc_log({param!r})"
    return read_back


def _value(value: Any) -> bytes | None:
    """opencdc/json data: a base64 string for raw data, an object for structured data (as canonical JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return base64.b64decode(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _go(name: str) -> str:
    from tests.go_connectors import build

    return str(build(name))


def __getattr__(name: str) -> Registration:
    """Builds the Go connectors only when a test asks for one."""
    if name == "go_seed":
        return standalone_registration([_go("seed")], config=_DIRECTORY, read_back=directory_reader("directory"),
                                       directory_param="directory")
    if name == "go_fixed":
        # No skip for SDK v0.12.0's panic on Run before Open: standalone_registration reads the binary's build info
        # and answers write-before-open itself, naming the SDK version (harness.conduit.buildinfo); the rest is checked.
        return standalone_registration([_go("fixed")], config=_DIRECTORY, read_back=directory_reader("directory"),
                                       directory_param="directory")
    if name == "go_fixed14":
        # On SDK v0.14.2, registered as the docs' standalone snippet says (nothing but the command and its config):
        # the SDK's limits come from the binary (conduit.buildinfo) or from where a panic happens (conduit.panics).
        return standalone_registration([_go("fixed14")], config=_DIRECTORY, read_back=directory_reader("directory"),
                                       directory_param="directory")
    if name == "go_created14":
        # fixed14 plus one file whose LifecycleOnCreated needs the directory (tests/go/zoo): lifecycle.events.
        return standalone_registration([_go("zoo-created14")], config=_DIRECTORY,
                                       read_back=directory_reader("directory"), directory_param="directory")
    if name == "go_zoo_tempstate":
        # fixed14 with one bug: Write keeps a state file in os.TempDir() (tests/go/zoo/tempstate.patch).
        return standalone_registration([_go("zoo-tempstate")], config=_DIRECTORY,
                                       read_back=directory_reader("directory"), directory_param="directory")
    if name == "go_zoo_required_unnamed":
        # fixed14 with one bug: `directory` not declared required, refused missing without being named
        # (tests/go/zoo/required_unnamed.patch).
        return standalone_registration([_go("zoo-requnnamed")], config=_DIRECTORY,
                                       read_back=directory_reader("directory"), directory_param="directory")
    if name == "go_zoo_stale_temps":
        # fixed14 with one bug: Open deletes '.tmp-*' files as crash leftovers (tests/go/zoo/stale_temps.patch).
        return standalone_registration([_go("zoo-stale-temps")], config=_DIRECTORY,
                                       read_back=directory_reader("directory"), directory_param="directory")
    if name == "go_zoo_tmpdirlock":
        # fixed14 with one bug: Open creates a lock file in os.TempDir(), Teardown removes it (tmpdirlock.patch).
        return standalone_registration([_go("zoo-tmpdirlock")], config=_DIRECTORY,
                                       read_back=directory_reader("directory"), directory_param="directory")
    if name == "upstream_file":
        # path_param: the one file it appends to, so open.*, fault.* (through the FUSE filesystem) and safety.* apply.
        return standalone_registration(
            [_go("upstream-file")], config={"path": "{tmp}/records.jsonl"}, read_back=read_opencdc_log("path"),
            path_param="path",
            skip={"write.invalid-key-count": "an append-only log of whole records has no invalid keys"})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Conduit's file connector releases checked with path_param, by the Go build that serves each.
FILE_RELEASES = {"v0.9.0": "upstream-file", "v0.10.1": "upstream13-file", "v0.10.3": "upstream14-file"}
