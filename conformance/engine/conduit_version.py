"""Which Conduit engine --conformance-conduit names: its release and built-in connectors, read from the binary's Go
build info (or, failing that, `conduit --version`), for the run's header, JSON report and Markdown summary.

A pipeline verdict is the destination's behaviour under one engine release (Conduit v0.13 and v0.14 differ in what
they hand a standalone connector, e.g. the receive limit), so every report of a run with pipelines names it.
"""

import functools
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from harness.conduit.buildinfo import BuildInfoError, read_build_info

__all__ = ["CONDUIT_MODULE", "EngineVersion", "engine_version"]

CONDUIT_MODULE = "github.com/conduitio/conduit"
_CONNECTOR_PREFIX = "github.com/conduitio/conduit-connector-"
# Modules named like connectors that are libraries every connector uses, not connectors Conduit builds in.
_NOT_CONNECTORS = {"sdk", "protocol"}
_RELEASE = re.compile(r"v\d+\.\d+\.\d+\S*")
_VERSION_TIMEOUT = 30  # seconds `conduit --version` may take (a cold start of a large binary on a loaded machine)


@dataclass(frozen=True)
class EngineVersion:
    """One Conduit binary: its release (None when unknown), where that was read, and its built-in connectors."""

    path: str
    version: str | None
    source: str  # "from its Go build info", "from `conduit --version`", or why the release is unknown
    builtin: dict[str, str] = field(default_factory=dict)  # connector name (file, log, ...) -> module version

    def describe(self) -> str:
        """One line: `Conduit v0.14.0 (from its Go build info; built-in connectors: file v0.10.3, ...)`."""
        release = f"Conduit {self.version}" if self.version else "Conduit of unknown release"
        builtin = ", ".join(f"{name} {version}" for name, version in self.builtin.items())
        return f"{release} ({self.source}" + (f"; built-in connectors: {builtin}" if builtin else "") + ")"

    def as_json(self) -> dict[str, Any]:
        """The JSON report's `engine` object."""
        return {"path": self.path, "version": self.version, "source": self.source, "builtin": dict(self.builtin)}


def _release(version: str) -> str | None:
    """A release version (v1.2.3, or a pseudo-version) or None for (devel), a local path or nothing."""
    return version if _RELEASE.fullmatch(version) else None


def _from_version_command(path: str) -> tuple[str | None, str]:
    """The release `conduit --version` prints first (`v0.14.0 linux/amd64`), or None and why not."""
    try:
        done = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=_VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"release unknown: `{os.path.basename(path)} --version` failed: {err}"
    words = done.stdout.split()
    release = _release(words[0]) if words else None
    if release is None:
        shown = done.stdout.strip().splitlines()[0][:80] if done.stdout.strip() else "nothing"
        return None, f"release unknown: no Go build info naming it, and `--version` printed {shown!r}"
    return release, f"from `{os.path.basename(path)} --version`"


@functools.cache
def _cached(path: str, _stamp: tuple[int, int]) -> EngineVersion:
    try:
        info = read_build_info(path)
    except BuildInfoError as err:
        version, source = _from_version_command(path)
        return EngineVersion(path, version, source if version else f"{source}; {err}")
    builtin = {}
    for dep in info.deps:
        name = dep.path.removeprefix(_CONNECTOR_PREFIX)
        if dep.path.startswith(_CONNECTOR_PREFIX) and name not in _NOT_CONNECTORS:
            builtin[name] = dep.effective_version or dep.version
    module = info.module(CONDUIT_MODULE)
    # A release build sets the version by -ldflags and has (devel) as its main module's; a build of
    # cmd/conduit from a module requiring Conduit (ours, tests/go) has it as a dependency; `go install ...@v0.14.0`
    # as its main module.
    release = _release(module.effective_version) if module is not None else None
    if release is not None:
        return EngineVersion(path, release, "from its Go build info", builtin)
    version, source = _from_version_command(path)
    return EngineVersion(path, version, source, builtin)


def engine_version(path: str) -> EngineVersion:
    """What the Conduit binary at `path` is; read once per file (path, modification time and size)."""
    try:
        stat = os.stat(path)
    except OSError as err:
        return EngineVersion(path, None, f"release unknown: cannot read {path}: {err.strerror or err}")
    return _cached(path, (stat.st_mtime_ns, stat.st_size))
