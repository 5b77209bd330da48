"""Toxiproxy v2.12.0 in front of a registration's backend (fault.backend-*): built from the Go module proxy on
demand and cached, started on loopback, and driven over its HTTP API with urllib."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

__all__ = ["VERSION", "MODULE", "ToxiproxyUnavailable", "Toxiproxy", "Proxy", "build", "shared", "cache_dir",
           "replay_proxy", "cleared"]

VERSION = "v2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
# Seconds `go install` may take (a cold build downloads the module and its dependencies).
BUILD_TIMEOUT = 900
# Seconds the server may take to answer its API after it starts, and any one API call.
START_TIMEOUT = 30.0
API_TIMEOUT = 10.0


class ToxiproxyUnavailable(RuntimeError):
    """No Go toolchain to build Toxiproxy with, or the build or the server failed (the clauses are not checked)."""


def cache_dir() -> pathlib.Path:
    """Where the built server is kept: $CONFORMANCE_GO_CACHE (shared with the Go connectors) or
    ~/.cache/conformance-go."""
    configured = os.environ.get("CONFORMANCE_GO_CACHE")
    return pathlib.Path(configured) if configured else pathlib.Path.home() / ".cache" / "conformance-go"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToxiproxyUnavailable(f"`go` is not on PATH, so Toxiproxy {VERSION} ({MODULE}) cannot be built")
    return go


@functools.cache
def _toolchain(go: str) -> str:
    """The Go version and platform, part of the cache key."""
    try:
        result = subprocess.run([go, "env", "GOVERSION", "GOOS", "GOARCH"], capture_output=True, text=True,
                                timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ToxiproxyUnavailable(f"`go env` failed: {err}") from err
    if result.returncode != 0:
        raise ToxiproxyUnavailable(f"`go env` failed (exit {result.returncode}): {result.stderr.strip()}")
    return " ".join(result.stdout.split())


def build() -> pathlib.Path:
    """The Toxiproxy server binary: built once per toolchain with `go install MODULE@VERSION`, shared by processes."""
    go = _go()
    key = hashlib.sha256(f"{MODULE}@{VERSION}\0{_toolchain(go)}".encode()).hexdigest()[:16]
    directory = cache_dir()
    binary = directory / f"toxiproxy-server-{VERSION}-{key}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".toxiproxy-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait, then reuse its binary
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
        with tempfile.TemporaryDirectory(dir=directory, prefix=".toxiproxy-") as gobin:
            env = {**os.environ, "GOBIN": gobin, "GOFLAGS": ""}
            command = [go, "install", "-trimpath", f"{MODULE}@{VERSION}"]
            try:
                result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired as err:
                raise ToxiproxyUnavailable(f"{' '.join(command)} took over {BUILD_TIMEOUT} s") from err
            if result.returncode != 0:
                raise ToxiproxyUnavailable(f"{' '.join(command)} failed (exit {result.returncode}):\n"
                                           f"{result.stdout}{result.stderr}")
            os.replace(os.path.join(gobin, "server"), binary)
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Toxiproxy:
    """One Toxiproxy server on 127.0.0.1 (proxy metrics on), and the proxies made in it."""

    def __init__(self, binary: pathlib.Path) -> None:
        self.binary = binary
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([str(binary), "-host", "127.0.0.1", "-port", str(self.port),
                                         "-proxy-metrics"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.call("GET", "/version")
                break
            except OSError as err:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise ToxiproxyUnavailable(f"Toxiproxy {VERSION} did not answer on {self.api} "
                                               f"(exit {self.process.returncode}): {err}") from err
                time.sleep(0.05)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; the decoded JSON answer (None for an empty one). HTTPError carries the server's message."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT) as answer:
                text = answer.read()
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"Toxiproxy {method} {path} answered {err.code}: {err.read().decode(errors='replace')}"
                               ) from err
        return json.loads(text) if text.strip() and path != "/metrics" else text.decode()

    def proxy(self, name: str, upstream: str, listen: str = "") -> Proxy:
        """A new proxy on `listen` ("host:port"; a free loopback port when empty) forwarding to `upstream`."""
        made = self.call("POST", "/proxies", {"name": name, "listen": listen or "127.0.0.1:0", "upstream": upstream,
                                              "enabled": True})
        return Proxy(self, name, made["listen"], upstream)

    def close(self) -> None:
        """Stops the server (every proxy's connections end with it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


class Proxy:
    """One proxy: its listen address, its toxics, and the bytes it carried."""

    def __init__(self, server: Toxiproxy, name: str, listen: str, upstream: str) -> None:
        self.server = server
        self.name = name
        self.listen = listen
        self.upstream = upstream

    def toxic(self, kind: str, stream: str = "upstream", **attributes: int) -> str:
        """Adds a toxic (`reset_peer`, `limit_data`, `timeout`, ...) to every connection, present and future; its
        name, to remove it with clear()."""
        name = f"{kind}_{stream}"
        self.server.call("POST", f"/proxies/{self.name}/toxics", {"name": name, "type": kind, "stream": stream,
                                                                  "toxicity": 1.0, "attributes": attributes})
        return name

    def clear(self) -> None:
        """Removes every toxic and enables the proxy: the backend is reachable again."""
        for toxic in self.server.call("GET", f"/proxies/{self.name}/toxics"):
            self.server.call("DELETE", f"/proxies/{self.name}/toxics/{toxic['name']}")
        self.enable(True)

    def enable(self, enabled: bool) -> None:
        """Disabling closes every connection and stops listening; enabling listens on the same address again."""
        self.server.call("POST", f"/proxies/{self.name}", {"enabled": enabled})

    def received(self, direction: str = "upstream") -> int:
        """Bytes the proxy has received so far in `direction` (upstream: from the destination), over all its
        connections, from the server's proxy metrics."""
        pattern = re.compile(r'^toxiproxy_proxy_received_bytes_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$')
        total = 0
        for line in self.server.call("GET", "/metrics").splitlines():
            match = pattern.match(line)
            if match and f'proxy="{self.name}"' in match["labels"] and f'direction="{direction}"' in match["labels"]:
                total += int(float(match["value"]))
        return total


_LOCK = threading.Lock()
_SHARED: dict[str, Any] = {}


def shared() -> Toxiproxy:
    """This process' Toxiproxy server, built and started on first use and stopped at exit; ToxiproxyUnavailable
    (remembered, so later checks say the same at once) when it cannot be."""
    with _LOCK:
        if "error" in _SHARED:
            raise ToxiproxyUnavailable(str(_SHARED["error"]))
        server = _SHARED.get("server")
        if server is None or server.process.poll() is not None:
            try:
                server = _SHARED["server"] = Toxiproxy(build())
            except ToxiproxyUnavailable as err:
                _SHARED["error"] = err
                raise
            atexit.register(server.close)
        return server


def replay_proxy(upstream: str, listen: str) -> Proxy:
    """For a replay: a proxy of this process' server on `listen` (the address the failing check's config named)
    forwarding to `upstream`."""
    server = shared()
    name = "replay-" + re.sub(r"[^0-9]", "_", listen)
    made = server.call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True})
    return Proxy(server, name, made["listen"], upstream)


@contextlib.contextmanager
def cleared(proxy: Proxy) -> Iterator[Proxy]:
    """The proxy without toxics for the block, and again after it (whatever the block left)."""
    proxy.clear()
    try:
        yield proxy
    finally:
        proxy.clear()
