"""Workers and machines fuzzing one destination share what they find through a Redis example database."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import DROPS_LAST

REPO = Path(__file__).resolve().parents[1]
REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (.ci/run installs it)")

# What a connector repository puts in its conftest.py to share examples between machines.
CONFTEST = '''
import os

import redis
from hypothesis import settings
from hypothesis.extra.redis import RedisExampleDatabase

settings.register_profile(
    "conformance-shared",
    settings.get_profile("conformance-dev"),
    database=RedisExampleDatabase(redis.Redis(port=int(os.environ["REDIS_PORT"]))),
)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A redis-server of our own on a loopback port, stopped after the test."""
    port = _free_port()
    server = subprocess.Popen([str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def _machine(root: Path, name: str) -> Path:
    """A directory standing for one machine: the connector's files, no local example database."""
    path = root / name
    path.mkdir()
    (path / "conftest.py").write_text(CONFTEST)
    return path


def _pytest(cwd: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_PORT": str(port), "PYTHONPATH": f"{cwd}{os.pathsep}{REPO}"}
    env.pop("CI", None)
    return subprocess.run([sys.executable, "-m", "pytest", f"--destination={DROPS_LAST}",
                           "--hypothesis-profile=conformance-shared", "-p", "no:cacheprovider",
                           "-k", "batches_read_back", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_failure_found_by_xdist_workers_replays_on_another_machine(tmp_path: Path, redis_port: int) -> None:
    """Machine A fuzzes with -n 2 and finds the bug; machine B, with no local database, replays it at once."""
    first = _pytest(_machine(tmp_path, "a"), redis_port, "-n", "2")
    assert first.returncode == 1, first.stdout[-2000:]
    assert "[write.round-trip]" in first.stdout
    assert not (tmp_path / "b").exists()

    second = _pytest(_machine(tmp_path, "b"), redis_port, "--hypothesis-show-statistics")
    assert second.returncode == 1
    reuse = second.stdout.split("during reuse phase", 1)[1].split("\n\n", 1)[0]
    assert "1 failing" in reuse, second.stdout[-3000:]
    assert "during generate phase" not in second.stdout  # found in the shared database, nothing new generated
    assert not (tmp_path / "b" / ".hypothesis" / "examples").exists()
