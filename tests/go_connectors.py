"""Builds the Go destination connectors under tests/go (and the Conduit engines, conduit13 and conduit14) once per
source hash, shared by processes and xdist workers.

A Go zoo variant is never a copy of a connector: it is its base (tests/go/fixed14) plus one unified diff,
tests/go/zoo/<bug>.patch, which this module applies at build time and hands to `go build -overlay` (the patched
files replace, or join, the base's files for that build only). To make one: copy the base file, put the bug in,
`diff -u --label a/F --label b/F tests/go/fixed14/F copy > tests/go/zoo/<bug>.patch` (a new file: `--label /dev/null
/dev/null`), add a line of text above the diff saying what the bug is and who catches it, and add a target below with
`patch=`. fixed13 shares fixed14's package files the same way (`overlay=`), with its own go.mod pinning SDK v0.13.3.
The cache key covers the patch and every overlaid file, so editing either rebuilds. tests/go/zoo/README.md has more.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from tests.go_patch import apply

__all__ = ["GO_CONNECTORS", "build", "cache_dir", "engine_binary"]

GO_DIR = pathlib.Path(__file__).resolve().parent / "go"

# Seconds a single `go build` may take (a cold build downloads and compiles the SDK and gRPC).
BUILD_TIMEOUT = 900


@dataclass(frozen=True)
class _Target:
    """Where `go build` runs, what it builds, and which files make up the connector's sources."""

    module_dir: pathlib.Path
    package: str
    sources: tuple[pathlib.Path, ...]
    # Files added to the build (`go build -overlay`): (path in module_dir, the file's source).
    overlay: tuple[tuple[str, pathlib.Path], ...] = ()
    # A unified diff against module_dir's files, applied at build time and overlaid (a zoo variant's one bug).
    patch: pathlib.Path | None = None


FIXED14 = GO_DIR / "fixed14"
ZOO = GO_DIR / "zoo"
# fixed14's package: fixed13 builds these very files, overlaid into its own module (its go.mod pins SDK v0.13.3).
_FIXED_PACKAGE = ("config.go", "connector.go", "destination.go", "lifecycle.go", "connector.yaml")


def _variant(patch: str) -> _Target:
    """fixed14 with one bug: tests/go/zoo/<patch>.patch applied to its files."""
    return _Target(FIXED14, "./cmd/connector", (FIXED14,), patch=ZOO / f"{patch}.patch")


_TARGETS: dict[str, _Target] = {
    "seed": _Target(GO_DIR, "./seed", (GO_DIR / "go.mod", GO_DIR / "go.sum", GO_DIR / "seed")),
    "fixed": _Target(GO_DIR, "./fixed", (GO_DIR / "go.mod", GO_DIR / "go.sum", GO_DIR / "fixed")),
    "upstream-file": _Target(
        GO_DIR / "upstream", "github.com/conduitio/conduit-connector-file/cmd/connector", (GO_DIR / "upstream",)
    ),
    # Our fixed destination ported to SDK v0.13.3: fixed14's package files in a module of its own (go.mod, go.sum,
    # cmd/connector), so both SDK versions stay built from one copy of the code.
    "fixed13": _Target(GO_DIR / "fixed13", "./cmd/connector", (GO_DIR / "fixed13",),
                       tuple((name, FIXED14 / name) for name in _FIXED_PACKAGE)),
    # And on SDK v0.14.2, the newest the module proxy serves (the same code: v0.14 changed no API it uses).
    "fixed14": _Target(FIXED14, "./cmd/connector", (FIXED14,)),
    # Zoo variants, fixed14 with one bug each (tests/go/zoo/*.patch): LifecycleOnCreated needs the directory Open
    # creates (lifecycle.events); ...
    "zoo-created14": _variant("created_needs_directory"),
    # ... a held-out fault-handling bug each (tests/zoo/go_faults.py), caught through the FUSE filesystem; ...
    **{f"fixed14-{bug}": _variant(bug) for bug in ("inplace", "overcounts", "dropsfsync")},
    # ... Write keeps a state file in os.TempDir() (safety.confined, tests/test_process_env.py); ...
    "zoo-tempstate": _variant("tempstate"),
    # ... directory not declared required, and a missing one refused without naming it (configure.required).
    "zoo-requnnamed": _variant("required_unnamed"),
    # ... Open sweeps '.tmp-*' files, keys an earlier run stored (open.keeps-data, tests/test_reopen.py).
    "zoo-stale-temps": _variant("stale_temps"),
    # ... Open creates a lock file in os.TempDir() that Teardown removes (safety.confined, tests/test_process_env.py).
    "zoo-tmpdirlock": _variant("tmpdirlock"),
    # The destinations built into Conduit v0.13.3, at the versions its go.mod pins (tests/go/upstream13/go.mod).
    "upstream13-file": _Target(
        GO_DIR / "upstream13", "github.com/conduitio/conduit-connector-file/cmd/connector", (GO_DIR / "upstream13",)
    ),
    "upstream13-kafka": _Target(
        GO_DIR / "upstream13", "github.com/conduitio/conduit-connector-kafka/cmd/connector", (GO_DIR / "upstream13",)
    ),
    "upstream13-log": _Target(
        GO_DIR / "upstream13", "github.com/conduitio/conduit-connector-log/cmd/connector", (GO_DIR / "upstream13",)
    ),
    "upstream13-postgres": _Target(
        GO_DIR / "upstream13", "github.com/conduitio/conduit-connector-postgres/cmd/connector",
        (GO_DIR / "upstream13",)
    ),
    "upstream13-s3": _Target(
        GO_DIR / "upstream13", "github.com/conduitio/conduit-connector-s3/cmd/connector", (GO_DIR / "upstream13",)
    ),
    # Conduit v0.13.3 itself, the engine the pipeline.* clauses run (--conformance-conduit).
    "conduit13": _Target(GO_DIR / "upstream13", "github.com/conduitio/conduit/cmd/conduit", (GO_DIR / "upstream13",)),
    # The same for Conduit v0.14.0 (the newest release the module proxy serves): its built-in destinations at the
    # versions its go.mod pins (tests/go/upstream14/go.mod), and the engine itself.
    **{f"upstream14-{name}": _Target(GO_DIR / "upstream14",
                                     f"github.com/conduitio/conduit-connector-{name}/cmd/connector",
                                     (GO_DIR / "upstream14",)) for name in ("file", "log", "postgres", "s3")},
    "conduit14": _Target(GO_DIR / "upstream14", "github.com/conduitio/conduit/cmd/conduit", (GO_DIR / "upstream14",)),
}

GO_CONNECTORS: tuple[str, ...] = tuple(_TARGETS)


def cache_dir() -> pathlib.Path:
    """The directory holding built connectors: $CONFORMANCE_GO_CACHE or ~/.cache/conformance-go."""
    configured = os.environ.get("CONFORMANCE_GO_CACHE")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".cache" / "conformance-go"


def _go() -> str:
    """The `go` executable on PATH, or a RuntimeError saying it is missing."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("cannot build the Go connectors: `go` is not on PATH (install Go >= 1.23.2)")
    return go


def _build_env() -> dict[str, str]:
    """The environment `go` runs in: the caller's, with -mod=mod added to GOFLAGS so go.sum gaps are filled."""
    env = dict(os.environ)
    flags = [flag for flag in env.get("GOFLAGS", "").split() if not flag.startswith("-mod=")]
    env["GOFLAGS"] = " ".join([*flags, "-mod=mod"])
    return env


@functools.cache
def _toolchain(go: str) -> str:
    """The Go version and target platform, part of every cache key."""
    result = subprocess.run([go, "env", "GOVERSION", "GOOS", "GOARCH"], capture_output=True, text=True,
                            env=_build_env(), timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"`go env` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return " ".join(result.stdout.split())


def _source_files(target: _Target) -> list[pathlib.Path]:
    """Every .go, .yaml (an embedded connector.yaml), go.mod and go.sum file of the connector, its overlaid files and
    its patch, in a stable order."""
    files: set[pathlib.Path] = {source for _, source in target.overlay}
    if target.patch is not None:
        files.add(target.patch)
    for root in target.sources:
        if root.is_file():
            files.add(root)
        elif root.is_dir():
            files.update(p for p in root.rglob("*")
                         if p.is_file() and (p.suffix in (".go", ".yaml") or p.name in ("go.mod", "go.sum")))
    return sorted(files)


def _source_hash(name: str, target: _Target, toolchain: str) -> str:
    """A digest of the connector's name, sources and toolchain: equal digests build equal binaries."""
    overlay = "\0".join(f"{path}={source.relative_to(GO_DIR).as_posix()}" for path, source in target.overlay)
    digest = hashlib.sha256(f"{name}\0{target.package}\0{toolchain}\0{overlay}\0".encode())
    for path in _source_files(target):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(GO_DIR).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _write_overlay(target: _Target, work: pathlib.Path) -> pathlib.Path | None:
    """The `go build -overlay` file for the target (its patched files written under work), or None if it has none."""
    replace = {str(target.module_dir / path): str(source) for path, source in target.overlay}
    if target.patch is not None:
        for path, text in apply(target.patch, target.module_dir).items():
            patched = work / "patched" / path
            patched.parent.mkdir(parents=True, exist_ok=True)
            patched.write_text(text)
            replace[str(target.module_dir / path)] = str(patched)
    if not replace:
        return None
    work.mkdir(parents=True, exist_ok=True)
    overlay = work / "overlay.json"
    overlay.write_text(json.dumps({"Replace": replace}))
    return overlay


def _text(output: str | bytes | None) -> str:
    """Captured output as text, whatever form subprocess left it in."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _is_built(binary: pathlib.Path) -> bool:
    """Whether a finished binary is at this path."""
    return binary.is_file() and os.access(binary, os.X_OK)


def build(name: str) -> pathlib.Path:
    """Builds the named connector (or reuses the cached binary for its sources) and returns the executable's path."""
    if name not in _TARGETS:
        raise ValueError(f"unknown Go connector {name!r}; known: {', '.join(GO_CONNECTORS)}")
    target = _TARGETS[name]
    go = _go()
    key = _source_hash(name, target, _toolchain(go))[:24]
    directory = cache_dir()
    binary = directory / f"{name}-{key}"
    if _is_built(binary):
        return binary

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same binary: wait for it
        try:
            if _is_built(binary):
                return binary
            fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}-{key}-", suffix=".tmp")
            os.close(fd)
            try:
                command = [go, "build", "-trimpath", "-buildvcs=false", "-o", temp, target.package]
                overlay = _write_overlay(target, pathlib.Path(f"{temp}.overlay"))
                if overlay is not None:
                    command[2:2] = [f"-overlay={overlay}"]
                try:
                    result = subprocess.run(command, cwd=target.module_dir, capture_output=True, text=True,
                                            env=_build_env(), timeout=BUILD_TIMEOUT)
                except subprocess.TimeoutExpired as exc:
                    output = _text(exc.stdout) + _text(exc.stderr)
                    raise RuntimeError(f"building Go connector {name!r} took over {BUILD_TIMEOUT} s "
                                       f"({' '.join(command)} in {target.module_dir}):\n{output}") from exc
                if result.returncode != 0:
                    raise RuntimeError(f"building Go connector {name!r} failed (exit {result.returncode}; "
                                       f"{' '.join(command)} in {target.module_dir}):\n{result.stdout}{result.stderr}")
                os.chmod(temp, 0o755)
                os.replace(temp, binary)
            finally:
                if os.path.exists(temp):
                    os.unlink(temp)
                shutil.rmtree(f"{temp}.overlay", ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return binary


def engine_binary(name: str) -> str:
    """A Conduit engine, built once per source hash (skips only without Go)."""
    if shutil.which("go") is None:
        import pytest  # only tests call this; the module itself also runs as a script

        pytest.skip("building Conduit needs Go (>= 1.24.2) on PATH")
    return str(build(name))
