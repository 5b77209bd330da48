"""A Go executable's build info (what `go version -m` prints), read without Go; and what it says about Conduit SDK
limits.

Go (>= 1.18) puts a blob in every executable it links: a 32-byte header starting with "\\xff Go buildinf:", then
the Go version and the module info as varint-length-prefixed strings. The module info is text, one line per entry
(`path`, `mod`, `dep`, `=>` for a replacement, `build` settings), framed by 16-byte sentinels. `read_build_info`
finds the blob (the ELF section `.go.buildinfo`, or a 16-byte aligned search for other formats) and parses it.

`sdk_limitations` predicts the known limitations of the plugin adapter of `github.com/conduitio/conduit-connector-sdk`
that no connector built on it can avoid, each keyed by what it is (the SDK file and the behaviour) and predicted for
the releases it was measured across (tests/test_conduit_v013.py pins them); what is not predicted is told apart
where it happens (harness.conduit.panics).
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
from dataclasses import dataclass, field

from harness.behaviours import Behaviour

__all__ = [
    "BuildInfo",
    "BuildInfoError",
    "Module",
    "Limitation",
    "SDK_MODULE",
    "read_build_info",
    "parse_build_info",
    "sdk_limitations",
    "sdk_module",
    "reads_env",
    "RECEIVE_LIMIT_ENV",
    "MEASURED_SDK_VERSIONS",
]

MAGIC = b"\xff Go buildinf:"
_HEADER = 32
_FLAG_INLINE = 0x2  # Go >= 1.18: version and module info follow the header inline, as varint-prefixed strings
_SENTINEL = 16  # bytes of the markers around the module info (cmd/go/internal/modload)
SDK_MODULE = "github.com/conduitio/conduit-connector-sdk"


class BuildInfoError(ValueError):
    """The file is not a Go executable with build info that this module can read; the message says why."""


@dataclass(frozen=True)
class Module:
    """One module line: path, version and checksum, and what a `=>` line replaced it with."""

    path: str
    version: str
    sum: str = ""
    replace: Module | None = None

    @property
    def effective_version(self) -> str:
        """The version the binary was built from: the replacement's when there is one (empty for a local path)."""
        return self.replace.version if self.replace is not None else self.version


@dataclass(frozen=True)
class BuildInfo:
    """The build info of one Go executable."""

    go_version: str
    path: str = ""  # the main package's import path
    main: Module | None = None
    deps: tuple[Module, ...] = ()
    settings: tuple[tuple[str, str], ...] = field(default=())

    def module(self, path: str) -> Module | None:
        """The main module or dependency with this path, or None."""
        if self.main is not None and self.main.path == path:
            return self.main
        return next((dep for dep in self.deps if dep.path == path), None)

    def lines(self) -> list[str]:
        """The module lines as `go version -m` prints them (without the first `FILE: goVERSION` line)."""
        out: list[str] = []
        if self.path:
            out.append(f"\tpath\t{self.path}")

        def add(kind: str, module: Module) -> None:
            out.append(f"\t{kind}\t{module.path}\t{module.version}\t{module.sum}")
            if module.replace is not None:
                add("=>", module.replace)

        if self.main is not None:
            add("mod", self.main)
        for dep in self.deps:
            add("dep", dep)
        for key, value in self.settings:
            # Quoted as Go's strconv.Quote does (JSON's escaping agrees for the characters that force quoting).
            value = json.dumps(value) if re.search(r"[ \t\r\n\"`]", value) else value
            out.append(f"\tbuild\t{key}={value}")
        return out


def _uvarint(data: bytes | mmap.mmap, offset: int) -> tuple[int, int]:
    """A Go uvarint at `offset`: (value, offset after it)."""
    value = shift = 0
    for index in range(offset, min(offset + 10, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    raise BuildInfoError("build info: a string length is cut off or malformed")


def _string(data: bytes | mmap.mmap, offset: int) -> tuple[str, int]:
    length, offset = _uvarint(data, offset)
    if offset + length > len(data):
        raise BuildInfoError("build info: a string runs past the end of the file")
    return bytes(data[offset:offset + length]).decode("utf-8", "replace"), offset + length


def _elf_section(data: mmap.mmap, name: bytes) -> int | None:
    """The file offset of the ELF section `name`, or None (not ELF, or no such section)."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    is64, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)

    def header(index: int) -> tuple[int, int]:
        """(name offset, file offset) of section header `index`."""
        base = shoff + index * shentsize
        if is64:
            return (struct.unpack_from(endian + "I", data, base)[0],
                    struct.unpack_from(endian + "Q", data, base + 0x18)[0])
        return struct.unpack_from(endian + "I", data, base)[0], struct.unpack_from(endian + "I", data, base + 0x10)[0]

    if not shoff or shstrndx >= shnum or shoff + shnum * shentsize > len(data):
        return None
    strtab = header(shstrndx)[1]
    for index in range(shnum):
        name_offset, offset = header(index)
        start = strtab + name_offset
        if data[start:start + len(name) + 1] == name + b"\0":
            return offset
    return None


def _candidates(data: mmap.mmap) -> list[int]:
    """Offsets where the blob may start: the ELF section first, then every 16-byte aligned magic in the file."""
    found: list[int] = []
    section = _elf_section(data, b".go.buildinfo")
    if section is not None:
        found.append(section)
    start = data.find(MAGIC)
    while start >= 0 and len(found) < 16:
        if start % 16 == 0 and start not in found:
            found.append(start)
        start = data.find(MAGIC, start + 1)
    return found


def parse_build_info(data: bytes | mmap.mmap, offset: int) -> BuildInfo:
    """Parses the blob that starts at `offset` (its magic); BuildInfoError if it is not one this module can read."""
    if data[offset:offset + len(MAGIC)] != MAGIC or len(data) < offset + _HEADER:
        raise BuildInfoError("no Go build info at this offset")
    flags = data[offset + len(MAGIC) + 1]
    if not flags & _FLAG_INLINE:
        raise BuildInfoError("build info in the pre-Go-1.18 format (pointers into the data segment) is not supported")
    go_version, after = _string(data, offset + _HEADER)
    modinfo, _ = _string(data, after)
    if not go_version.startswith("go") and not go_version.startswith("devel"):
        raise BuildInfoError(f"build info names no Go version ({go_version[:40]!r})")
    # The module info is framed by 16-byte sentinels; strip them as runtime/debug does.
    if len(modinfo) >= 2 * _SENTINEL + 1 and modinfo[-_SENTINEL - 1] == "\n":
        modinfo = modinfo[_SENTINEL:-_SENTINEL]
    return _parse_modinfo(go_version, modinfo)


def _parse_modinfo(go_version: str, text: str) -> BuildInfo:
    path, main = "", None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    last: Module | None = None
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        parts = rest.split("\t")
        if kind == "path":
            path = rest
        elif kind in ("mod", "dep") and parts and parts[0]:
            module = Module(parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")
            if kind == "mod":
                main = module
            else:
                deps.append(module)
            last = module
        elif kind == "=>" and last is not None and parts:
            replaced = Module(last.path, last.version, last.sum,
                              Module(parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""))
            if main is last:
                main = replaced
            else:
                deps[-1] = replaced
            last = None
        elif kind == "build":
            key, _, value = rest.partition("=")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                try:
                    value = json.loads(value)  # a strconv.Quote'd value (it had a space, quote or control char)
                except ValueError:
                    value = value[1:-1]
            settings.append((key, value))
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def read_build_info(path: str | os.PathLike[str]) -> BuildInfo:
    """The build info of the Go executable at `path`; BuildInfoError if it has none (not Go, or not a file)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _HEADER:
                raise BuildInfoError(f"{os.fspath(path)} is too small to be a Go executable")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                problems: list[str] = []
                for offset in _candidates(data):
                    try:
                        return parse_build_info(data, offset)
                    except BuildInfoError as err:
                        problems.append(str(err))
    except OSError as err:
        raise BuildInfoError(f"cannot read {os.fspath(path)}: {err.strerror or err}") from None
    why = f" ({'; '.join(problems)})" if problems else ""
    raise BuildInfoError(f"{os.fspath(path)} carries no Go build info{why}")


# --- what a Conduit SDK version forces on every connector built with it --------------------------------------------


def _semver(version: str) -> tuple[int, int, int, bool] | None:
    """(major, minor, patch, is-release) of a `vX.Y.Z[-pre]` version; None for anything else, such as (devel)."""
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", version)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3]), match[4] is None


def _within(version: str, first: str, last: str) -> bool:
    """Whether `version` is a release in [first, last] (a pre-release or pseudo-version is never assumed to be)."""
    parsed, low, high = _semver(version), _semver(first), _semver(last)
    return bool(parsed and low and high and parsed[3] and low[:3] <= parsed[:3] <= high[:3])


@dataclass(frozen=True)
class Limitation:
    """A behaviour of the SDK's plugin adapter that every connector built on it meets, keyed by what it is (the SDK
    file it happens in and what it does), with the releases it was measured on."""

    behaviour: Behaviour  # what it is, in the harness' neutral terms
    site: str  # where in the SDK it happens (file:line of the newest release measured)
    what: str  # the behaviour, and what the driver does about it
    since: str  # the first release measured with it
    through: str  # the newest release measured with it: releases in [since, through] get it predicted
    panic: str = ""  # the runtime's message, for a behaviour that is a panic
    unless_reads: str = ""  # gone when the binary reads this environment variable (a behaviour read from the binary)

    def reason(self, version: str) -> str:
        """`upstream MODULE@VERSION SITE: PANIC: WHAT`, the reason the report gives."""
        panic = f"{self.panic}: " if self.panic else ""
        return f"upstream {SDK_MODULE}@{version} {self.site}: {panic}{self.what}"


RECEIVE_LIMIT_ENV = "CONDUIT_CONNECTOR_MAX_RECEIVE_RECORD_SIZE"  # the Run message limit an SDK may read (bytes)
_NIL = "runtime error: invalid memory address or nil pointer dereference"

# Measured on SDK v0.12.0 (tests/go/fixed), v0.13.3 (tests/go/fixed13) and v0.14.2 (tests/go/fixed14): destination.go
# is byte-identical in v0.13.3 and v0.14.2 (v0.12.0 has the same code four lines up). A release outside a range, a
# pseudo-version or a local checkout gets nothing predicted: a panic it raises is told apart from the connector's by
# where it happens (harness.conduit.panics), whatever the version.
_SDK_LIMITS: tuple[Limitation, ...] = (
    Limitation(Behaviour.WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER, "destination.go:189",
               "a Run batch before Open dies in the destination adapter (a nil writeStrategy; v0.12.0: a nil "
               "lastPosition, destination.go:185), and one after an Open but before a Configure in the default "
               "middleware (destination_middleware.go); the driver does not send write() before a configured open() "
               "and answers it with LifecycleError itself", "v0.12.0", "v0.14.2", panic=_NIL),
    Limitation(Behaviour.EMPTY_BATCH_PANICS, "destination.go:202",
               "the destination adapter indexes the last record of every Run batch (v0.12.0: destination.go:185), and "
               "Conduit never sends an empty one, so the driver answers write([]) with 0 itself", "v0.12.0", "v0.14.2",
               panic="runtime error: index out of range [-1]"),
    Limitation(Behaviour.LARGE_MESSAGE_REFUSED, "serve.go",
               f"sdk.Serve starts the plugin's gRPC server with gRPC's default 4 MiB receive limit (this build does "
               f"not read {RECEIVE_LIMIT_ENV}), so a Run message with a 4 MiB payload is refused (RESOURCE_EXHAUSTED) "
               f"and cannot cross the plugin protocol", "v0.12.0", "v0.13.3", unless_reads=RECEIVE_LIMIT_ENV),
)

# The releases the suite has measured (their verdict tables are pinned by tests/test_conduit_v013.py; v0.14.1, the
# SDK of Conduit v0.14.0's built-in destinations, by tests/test_conduit_v014*.py).
MEASURED_SDK_VERSIONS: tuple[str, ...] = ("v0.12.0", "v0.13.3", "v0.14.1", "v0.14.2")


def sdk_module(info: BuildInfo) -> Module | None:
    """The Conduit SDK dependency of the executable, or None."""
    return info.module(SDK_MODULE)


def sdk_limitations(info: BuildInfo, reads: frozenset[str] | set[str] = frozenset()
                    ) -> dict[Behaviour, tuple[str, Limitation]]:
    """Behaviour -> (reason, limitation) predicted for the Conduit SDK release the executable was built with: the
    limitations whose measured range holds it (one keyed by an environment variable applies to any release when the
    binary does not read it: `reads` names the variables it does). Each reason reads "upstream
    github.com/conduitio/conduit-connector-sdk@vX.Y.Z FILE:LINE: ...". Empty when it is not built on the SDK."""
    module = sdk_module(info)
    if module is None:
        return {}
    version = module.effective_version
    found: dict[Behaviour, tuple[str, Limitation]] = {}
    for limit in _SDK_LIMITS:
        if limit.unless_reads:
            applies = limit.unless_reads not in reads
        else:
            applies = _within(version, limit.since, limit.through)
        if applies:
            found[limit.behaviour] = (limit.reason(version or "(unknown version)"), limit)
    return found


def reads_env(path: str | os.PathLike[str], name: str) -> bool:
    """Whether the executable holds the name of this environment variable (Go keeps a name it reads as a string
    constant; one no code uses is not linked in)."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(name.encode()) >= 0
    except (OSError, ValueError):
        return False
