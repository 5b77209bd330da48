"""A Go connector's panic, read from its stderr, and whose code raised it: the Conduit SDK's or the connector's.

Go prints a panic (or a fatal error) as its message and then the panicking goroutine's frames, innermost first:
a function line (`pkg/path.(*T).Method(...)`) and a file line (`\\tmodule@version/file.go:189 +0x..`), ending with
`created by ...` for a goroutine some code started. `parse_panic` reads that; `origin` decides whose it is:

- upstream (the SDK's, not the connector's) when the frames above the connector's first frame are all the SDK's
  (`github.com/conduitio/conduit-connector-sdk` and the protocol it serves with), or, with no connector frame in
  the goroutine at all, when the innermost frame is the SDK's: the process died before any connector code ran;
- the connector's otherwise: a frame of its own module (or package main) is where it died, or it called into a
  library of its choosing that did.

Standard-library frames (runtime.gopanic, sync, bytes, ...) are looked through: they are where the SDK's or the
connector's code failed, not whose code it was. Nothing here depends on an SDK version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.conduit.buildinfo import SDK_MODULE, BuildInfo

__all__ = ["Frame", "GoPanic", "Origin", "UPSTREAM_MODULES", "parse_panic", "origin", "connector_module"]

# The SDK's own code: the SDK and the plugin protocol it serves with (a connector never calls the latter itself).
UPSTREAM_MODULES: tuple[str, ...] = (SDK_MODULE, "github.com/conduitio/conduit-connector-protocol")

_START = re.compile(r"^(?:panic: |fatal error: )(.*)$", re.MULTILINE)
_GOROUTINE = re.compile(r"^goroutine \d+ \[[^\]]*\]:$", re.MULTILINE)
_FILE_LINE = re.compile(r"^\t(.+?):(\d+)(?: \+0x[0-9a-f]+)?$")
_CREATED_BY = re.compile(r"^created by (\S+?)(?: in goroutine \d+)?$")


@dataclass(frozen=True)
class Frame:
    """One frame of a goroutine trace."""

    function: str  # as printed, without arguments: github.com/conduitio/conduit-connector-sdk.(*x).Run
    file: str  # as printed: module@version/file.go under -trimpath, else an absolute path
    line: int
    created_by: bool = False  # the `created by` frame: the code that started the goroutine

    @property
    def package(self) -> str:
        """The function's package path (up to the first dot after the last slash)."""
        head, slash, tail = self.function.rpartition("/")
        return head + slash + tail.split(".", 1)[0]

    @property
    def stdlib(self) -> bool:
        """Whether the package is the standard library's (its first element has no dot), package main aside."""
        return self.package != "main" and "." not in self.package.split("/", 1)[0]

    def in_module(self, module: str) -> bool:
        """Whether the function belongs to `module` (the module itself or a package under it)."""
        return self.package == module or self.package.startswith(module + "/")

    @property
    def site(self) -> str:
        """file:line with the file relative to its module (`destination.go:189`) when the path says where that is."""
        match = re.search(r"@[^/]+/(.+)$", self.file)
        return f"{match[1] if match else self.file.rsplit('/', 1)[-1]}:{self.line}"

    @property
    def version(self) -> str:
        """The module version in the file path (`v0.14.2` from `...sdk@v0.14.2/destination.go`), or ""."""
        match = re.search(r"@([^/]+)/", self.file)
        return match[1] if match else ""


@dataclass(frozen=True)
class GoPanic:
    """The first panic (or fatal error) a Go process printed, and its goroutine's frames, innermost first."""

    message: str
    frames: tuple[Frame, ...]


def parse_panic(stderr: str) -> GoPanic | None:
    """The panic in a Go process' stderr, or None when there is none."""
    start = _START.search(stderr)
    if start is None:
        return None
    goroutine = _GOROUTINE.search(stderr, start.end())
    frames: list[Frame] = []
    if goroutine is not None:
        lines = stderr[goroutine.end():].lstrip("\n").splitlines()
        index = 0
        while index + 1 < len(lines) and lines[index].strip():
            function, where = lines[index], _FILE_LINE.match(lines[index + 1])
            if where is None:
                break
            created = _CREATED_BY.match(function)
            name = created[1] if created else re.sub(r"\(.*\)$", "", function)
            frames.append(Frame(name, where[1], int(where[2]), created_by=created is not None))
            index += 2
    return GoPanic(start[1].strip(), tuple(frames))


def connector_module(info: BuildInfo | None) -> str:
    """The module the connector's main package is in: the longest main or dependency module path prefixing it."""
    if info is None:
        return ""
    modules = [m.path for m in (info.main, *info.deps) if m is not None]
    holding = [m for m in modules if info.path == m or info.path.startswith(m + "/")]
    return max(holding, key=len, default=info.main.path if info.main else "")


@dataclass(frozen=True)
class Origin:
    """Whose code a panic was raised in, and where."""

    upstream: bool  # the SDK's own code, not the connector's
    module: str  # the module of the frame it is charged to ("" when no frame says)
    version: str
    site: str  # file:line in that module
    message: str  # the panic's message

    def describe(self) -> str:
        """`upstream MODULE@VERSION FILE:LINE: PANIC` for the SDK's, `MODULE FILE:LINE: PANIC` for the connector's."""
        where = f"{self.module}@{self.version}" if self.version else self.module
        located = f"{where} {self.site}".strip()
        text = f"{located}: {self.message}" if located else self.message
        return f"upstream {text}" if self.upstream else text


def origin(panic: GoPanic, info: BuildInfo | None = None) -> Origin:
    """Whose code raised `panic`: upstream (the SDK's) or the connector's (see the module docstring)."""
    own = connector_module(info)
    frames = [f for f in panic.frames if not f.stdlib]

    def is_connector(frame: Frame) -> bool:
        return frame.package == "main" or bool(own) and frame.in_module(own)

    def upstream_module(frame: Frame) -> str | None:
        return next((m for m in UPSTREAM_MODULES if frame.in_module(m)), None)

    def version_of(module: str, frame: Frame) -> str:
        dep = info.module(module) if info is not None else None
        return (dep.effective_version if dep is not None else "") or frame.version

    if not frames:
        return Origin(False, own, "", "", panic.message)
    top = frames[0]
    first_own = next((i for i, f in enumerate(frames) if is_connector(f)), None)
    above = frames if first_own is None else frames[:first_own]
    module = upstream_module(top)
    if module is not None and (first_own is None or all(upstream_module(f) for f in above)):
        return Origin(True, module, version_of(module, top), top.site, panic.message)
    # The connector's: charged to the innermost frame, its own or a library's it called.
    if is_connector(top):
        return Origin(False, own or top.package, "", top.site, panic.message)
    return Origin(False, top.package, top.version, top.site, panic.message)
