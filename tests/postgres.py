"""A throwaway PostgreSQL for the tests: the cluster .ci/run starts (its DSN in $CONFORMANCE_POSTGRES_DSN), or one
started here for a developer, and a fresh database in it per test session.

`python3 -m tests.postgres start DIR` / `stop DIR` do for a shell what `throwaway_cluster` does for a fixture; .ci/run
uses its own few lines of shell instead so that it needs nothing but the Debian package.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import StructuredData

__all__ = ["key", "row", "DSN_VARIABLE", "PostgresUnavailable", "pg_bin", "throwaway_cluster", "fresh_database"]

DSN_VARIABLE = "CONFORMANCE_POSTGRES_DSN"
# initdb refuses to run as root; the Debian package creates this system user.
SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (outside CI the tests that need one are skipped with this message)."""


def pg_bin() -> Path:
    """The directory holding initdb and pg_ctl: $PATH, else the newest /usr/lib/postgresql/*/bin (Debian's layout)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise PostgresUnavailable("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
                                  "on Debian: apt-get install postgresql")
    return Path(candidates[-1]).parent


def _as_server_user(argv: list[str]) -> list[str]:
    """The command as the unprivileged user when we are root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root and there is no {SERVICE_USER!r} user to run PostgreSQL as "
                                  "(the Debian package creates it)") from None
    return ["runuser", "-u", SERVICE_USER, "--", *argv]


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n"
                           f"{result.stdout}{result.stderr}")


def start(directory: Path) -> str:
    """Starts a cluster in `directory` (data in data/, its unix socket in the directory itself, TCP on 127.0.0.1)
    and returns its DSN (over TCP). Trust authentication: only this machine's users can reach the socket and the
    loopback port, and the cluster is thrown away."""
    bin_dir = pg_bin()
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    os.chmod(directory, 0o755)  # the server user creates data/ and the socket here; everyone may connect
    data, log = directory / "data", directory / "server.log"
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
          "--no-sync"], "initdb")
    # A socket in our own directory, TCP on loopback only (a fault proxy needs TCP: fault.backend-*), on a free
    # port, and no durability: it is thrown away.
    port = _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -k {directory} -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off")
    _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
         "pg_ctl start")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(directory: Path) -> None:
    """Stops the cluster in `directory` (fast: it is thrown away) and removes the directory."""
    data = directory / "data"
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            _run([str(pg_bin() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], "pg_ctl stop")
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A cluster of our own for the duration of the block; yields its DSN."""
    directory = Path(tempfile.mkdtemp(prefix="conformance-pg-"))
    try:
        yield start(directory)
    finally:
        stop(directory)


@contextlib.contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A new, empty database on the server `dsn` names, dropped afterwards; yields its DSN (each test session's
    tables stay apart from anything else on a developer's own server)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"conformance_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(dsn, dbname=name)  # key=value form; pgx (the Go connector) parses it too
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "start":
        print(start(where))
    elif command == "stop":
        stop(where)
    else:
        sys.exit(f"usage: python3 -m tests.postgres start|stop DIR (not {command!r})")


def row(title: str) -> StructuredData:
    """A payload the table takes."""
    return StructuredData({"title": title, "body": None, "flag": True})


def key(id_: str) -> StructuredData:
    """A key naming the id column."""
    return StructuredData({"id": id_})
