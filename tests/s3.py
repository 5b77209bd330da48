"""A local S3-compatible server for the S3 destination's checks: moto's (PyPI `moto[server]`) ThreadedMotoServer,
run in a subprocess of its own on a free port on 127.0.0.1, so the suite's processes never share a thread with it.

`s3_endpoint` (session-scoped) yields its URL; tests/conduit_s3.py reads it from $CONFORMANCE_S3_ENDPOINT.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

__all__ = ["ENDPOINT_VARIABLE", "S3Unavailable", "moto_server", "s3_endpoint", "moto_version"]

ENDPOINT_VARIABLE = "CONFORMANCE_S3_ENDPOINT"

# Runs in the child: a ThreadedMotoServer on a port the OS picks; prints the port, then serves until stdin closes.
_SERVE = r"""
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server._server.server_port, flush=True)
sys.stdin.read()
server.stop()
"""


class S3Unavailable(RuntimeError):
    """moto (or boto3) is not installed, or its server did not start."""


def moto_version() -> str:
    """The installed moto's version, or an S3Unavailable saying it is missing."""
    try:
        import boto3  # noqa: F401  (the read-back needs it too)
        import moto
    except ImportError as err:
        raise S3Unavailable(
            f"moto[server] and boto3 are not installed ({err}): pip install 'moto[server]>=5' boto3") from err
    return moto.__version__


@contextlib.contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """A moto server in a subprocess on 127.0.0.1 (its URL), stopped when the block ends."""
    moto_version()
    process = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.strip().isdigit():
            raise S3Unavailable(f"moto's server did not start (exit {process.poll()}, said {line!r})")
        url = f"http://127.0.0.1:{int(line)}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=2):
                    break
            except OSError as err:
                if time.monotonic() > deadline:
                    raise S3Unavailable(f"moto's server at {url} did not answer within {timeout} s") from err
                time.sleep(0.1)
        yield url
    finally:
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server for the session; skips (outside CI) when moto cannot be installed or run."""
    try:
        server = moto_server()
        url = server.__enter__()
    except S3Unavailable as err:
        if os.environ.get("CI"):
            pytest.fail(f"no S3 server under CI: {err}")
        pytest.skip(f"not checked here: {err}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
