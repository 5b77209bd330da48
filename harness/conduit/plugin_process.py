"""A connector process on the go-plugin side: started, handshaken, dialled over gRPC, supervised and stopped.

`ConnectorProcess` is one plugin process: started with the go-plugin environment, its handshake line read
(`Handshake`), its gRPC server probed until it answers, its stdout and stderr kept in files, its descriptors
listed from /proc, and stopped (`GRPCController.Shutdown`, then SIGTERM, then SIGKILL). A process that fails is
a `PluginError` carrying its stderr. No connector process outlives the Python process (an atexit hook kills
what is left).

Warm spares of these processes: harness.conduit.spares.
Each process gets an environment tree of its own ($TMPDIR, $HOME, $XDG_*; harness.process_env), `env_root`.
Needs the `conduit` extra (grpcio).
"""

import atexit
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import empty_pb2

from harness.process_env import ENV_VARIABLES, make_tree, tree_environment

__all__ = [
    "MAGIC_COOKIE_KEY",
    "MAGIC_COOKIE_VALUE",
    "PROTOCOL_VERSION",
    "RECEIVE_LIMIT_ENV",
    "RECEIVE_LIMIT_BYTES",
    "PluginError",
    "Handshake",
    "ConnectorProcess",
    "environment_key",
]

MAGIC_COOKIE_KEY = "CONDUIT_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "204e8e812c3a1bb73b838928c575b42a105dd2e9aa449be481bc4590486df53f"
PROTOCOL_VERSION = 2
_SOCKET_DIR = "PLUGIN_UNIX_SOCKET_DIR"
_PYTEST_CURRENT_TEST = "PYTEST_CURRENT_TEST"  # pytest changes it at every test phase; no connector reads it
_PROBE_SLICE = 0.25  # seconds one readiness probe waits before the process is looked at again
_STDERR_SHOWN = 2500
_PANIC_LINES = 9
RECEIVE_LIMIT_ENV = "CONDUIT_CONNECTOR_MAX_RECEIVE_RECORD_SIZE"  # read by conduit-connector-sdk >= v0.14 (bytes)
RECEIVE_LIMIT_BYTES = 64 << 20


class PluginError(RuntimeError):
    """The connector process failed: it died, never handshook, or broke the protocol; the message has its stderr."""


@dataclass(frozen=True)
class Handshake:
    """The go-plugin handshake line: CORE|APP|NETWORK|ADDR|PROTOCOL|CERT."""

    core: int
    app: int
    network: str
    address: str
    protocol: str

    @property
    def target(self) -> str:
        """The gRPC target to dial."""
        return f"unix:{self.address}" if self.network == "unix" else self.address

    @classmethod
    def parse(cls, line: str) -> "Handshake":
        """Parses a handshake line; raises ValueError saying what is wrong with it."""
        parts = line.strip().split("|")
        if len(parts) < 5 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ValueError(f"expected a go-plugin handshake line CORE|APP|NETWORK|ADDR|PROTOCOL|CERT, got {line!r}")
        handshake = cls(int(parts[0]), int(parts[1]), parts[2], parts[3], parts[4])
        if handshake.core != 1:
            raise ValueError(f"go-plugin core protocol {handshake.core} is not 1 (line {line!r})")
        if handshake.app != PROTOCOL_VERSION:
            raise ValueError(f"the connector speaks Conduit plugin protocol v{handshake.app}; only v{PROTOCOL_VERSION}"
                             f" is supported (an SDK before v0.10 speaks v1 only)")
        if handshake.network not in ("unix", "tcp") or handshake.protocol != "grpc":
            raise ValueError(f"expected network unix or tcp and protocol grpc, got {line!r}")
        return handshake


def _plugin_environment(socket_dir: str, extra: Mapping[str, str] | None,
                        env_root: str | None = None) -> dict[str, str]:
    """The environment a connector starts with: ours minus PLUGIN_* (and pytest's per-test PYTEST_CURRENT_TEST, so
    that a spare started during one test fits the next), the go-plugin and Conduit variables, $TMPDIR, $HOME and
    $XDG_* pointing into its own tree `env_root`, then `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PLUGIN_") and k not in (MAGIC_COOKIE_KEY, _PYTEST_CURRENT_TEST)}
    env.update({
        MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
        "PLUGIN_PROTOCOL_VERSIONS": str(PROTOCOL_VERSION),
        _SOCKET_DIR: socket_dir,
        "CONDUIT_CONNECTOR_ID": "conformance:destination",
        "CONDUIT_CONNECTOR_TOKEN": "conformance-token",
        # Dialled lazily and only for schema calls, which the suite's records never trigger.
        "CONDUIT_CONNECTOR_UTILITIES_GRPC_TARGET": "127.0.0.1:1",
        "CONDUIT_CONNECTOR_LOG_LEVEL": os.environ.get("CONDUIT_CONNECTOR_LOG_LEVEL", "info"),
        # As Conduit (>= v0.14) does: the Run message size an SDK that reads it (>= v0.14) lets its gRPC server take;
        # enough for the largest batch sent (two records, each with an after and a before of just over 4 MiB).
        RECEIVE_LIMIT_ENV: os.environ.get(RECEIVE_LIMIT_ENV, str(RECEIVE_LIMIT_BYTES)),
    })
    if env_root is not None:
        env.update(tree_environment(env_root))
    env.update(extra or {})
    return env


def environment_key(extra: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """The environment a connector started now would see (all but its own socket directory), as a hashable key."""
    env = _plugin_environment("", extra)
    env.pop(_SOCKET_DIR, None)
    for variable in ENV_VARIABLES:  # every process gets its own tree (unless `extra` names the place)
        if variable not in (extra or {}):
            env.pop(variable, None)
    return tuple(sorted(env.items()))


_LIVE: "weakref.WeakSet[ConnectorProcess]" = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """No connector process (spares included) outlives the run, whatever happened to the driver."""
    for plugin in list(_LIVE):
        if plugin.alive():
            plugin.kill()


class ConnectorProcess:
    """One plugin process: started with the go-plugin environment, its handshake read, its output kept.

    Its stdout and stderr go to files in its own temporary directory, read by path, so this process holds no
    descriptor for them; the gRPC channel is made on demand (`connect`) and can be closed while the process
    runs on (`disconnect`), so that between calls nothing of ours stays open. With `ready=False` the process is
    only started: `await_ready` reads its handshake and probes its server later (a warm spare).
    """

    def __init__(self, argv: Sequence[str], handshake_timeout: float = 15.0,
                 env: Mapping[str, str] | None = None, *, ready: bool = True) -> None:
        if not argv:
            raise ValueError("an empty command cannot start a connector")
        self.argv = list(argv)
        self.channel: grpc.Channel | None = None
        self.handshake_reads = 0  # reads of stdout until the handshake line was there (1: printed before we looked)
        self.died_before_ready = False  # await_ready failed because the process exited on its own
        self._handshake: Handshake | None = None
        self._sockets_before: dict[int, str] = {}
        self._released = False
        self._socket_dir = tempfile.mkdtemp(prefix="conformance-plugin-")
        self._stdout_path = os.path.join(self._socket_dir, "connector.stdout")
        self._stderr_path = os.path.join(self._socket_dir, "connector.stderr")
        self.env_root = os.path.join(self._socket_dir, "env")  # its $TMPDIR, $HOME, $XDG_* (harness.process_env)
        try:
            make_tree(self.env_root)
            with open(self._stdout_path, "wb") as stdout, open(self._stderr_path, "wb") as stderr:
                self.process = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                    env=_plugin_environment(self._socket_dir, env, self.env_root), start_new_session=True,
                )
        except OSError as err:
            self._release()
            raise PluginError(f"cannot start connector {shlex.join(self.argv)}: {err}") from None
        _LIVE.add(self)
        if ready:
            self.await_ready(handshake_timeout)

    @property
    def handshake(self) -> Handshake:
        """The handshake line the process printed; PluginError before `await_ready` read it."""
        if self._handshake is None:
            raise PluginError(f"connector {shlex.join(self.argv)} has not handshaken yet")
        return self._handshake

    @property
    def ready(self) -> bool:
        """Whether the handshake was read and the gRPC server answered."""
        return self._handshake is not None and not self._released

    def await_ready(self, timeout: float = 15.0) -> None:
        """Reads the handshake line and waits until the gRPC server answers, each within `timeout` from now; on any
        failure the process is killed and the error (PluginError, with its stderr) raised. Idempotent."""
        if self.ready:
            return
        deadline = time.monotonic() + timeout
        try:
            handshake = self._read_handshake(deadline, timeout)
            self._handshake = handshake
            self._wait_ready(deadline)
        except grpc.FutureTimeoutError:
            self.kill()
            raise PluginError(f"connector {shlex.join(self.argv)} printed a handshake but its gRPC server at "
                              f"{handshake.target} did not accept a connection within {timeout:g}s"
                              + self.stderr_report()) from None
        except BaseException:
            self._handshake = None
            self.died_before_ready = self.process.poll() is not None
            self.kill()
            raise

    def printed_handshake(self) -> bool:
        """Whether the process has printed a whole line on stdout yet (looked at once, no wait)."""
        try:
            with open(self._stdout_path, "rb") as stdout:
                return b"\n" in stdout.read(4096)
        except OSError:
            return False

    def _read_handshake(self, deadline: float, timeout: float) -> Handshake:
        """The handshake line from stdout, polled until `deadline`; PluginError if it is not one or never comes."""
        while True:
            self.handshake_reads += 1
            with open(self._stdout_path, "rb") as stdout:
                text = stdout.read(4096).decode("utf-8", "replace")
            if "\n" in text:
                line = text.split("\n", 1)[0]
                try:
                    return Handshake.parse(line)
                except ValueError as err:
                    raise PluginError(f"connector {shlex.join(self.argv)}: {err}{self.stderr_report()}") from None
            code = self.process.poll()
            if code is not None:
                raise PluginError(f"connector {shlex.join(self.argv)} exited with {_exit_status(code)} before the "
                                  f"handshake (stdout {text!r}){self.stderr_report()}")
            if time.monotonic() > deadline:
                raise PluginError(f"connector {shlex.join(self.argv)} printed no handshake line within {timeout:g}s "
                                  f"(stdout so far {text!r}){self.stderr_report()}")
            time.sleep(0.01)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def exit_status(self) -> str:
        """How the process ended ("code 3", "signal SIGKILL"), waiting for it if it still runs."""
        return _exit_status(self.process.wait())

    def connect(self) -> grpc.Channel:
        """The gRPC channel to the connector, made anew if `disconnect` closed it (it dials on its first call)."""
        if self._released:
            raise PluginError(f"connector {shlex.join(self.argv)} was stopped; no call can reach it")
        if self.channel is None:
            self._sockets_before = _own_sockets()
            self.channel = grpc.insecure_channel(self.handshake.target)
        return self.channel

    def _wait_ready(self, deadline: float) -> None:
        """Waits until the server answers gRPC at all: a call to a method no server has (UNIMPLEMENTED is the answer
        of a live server), retried while the process lives; FutureTimeoutError if none came by `deadline`, the
        process' death if it exits meanwhile. (No channel_ready_future: its polling thread would hold the channel
        open for a moment after close.) The connection it made is the one later calls use."""
        probe = self.connect().unary_unary("/conformance.Probe/Ready", request_serializer=bytes,
                                           response_deserializer=bytes)
        while True:
            left = deadline - time.monotonic()
            try:
                probe(b"", timeout=max(min(left, _PROBE_SLICE), 0.001), wait_for_ready=True)
                return
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
            if not self.alive():
                raise self.death()
            if time.monotonic() >= deadline:
                raise grpc.FutureTimeoutError()

    def disconnect(self, wait: float = 2.0) -> None:
        """Closes the gRPC channel and waits (up to `wait` seconds) until the sockets it opened in this process are
        closed, which gRPC does on its own I/O thread a moment later. The process runs on; `connect` dials again."""
        channel, self.channel = self.channel, None
        if channel is None:
            return
        sockets = {fd: link for fd, link in _own_sockets().items() if self._sockets_before.get(fd) != link}
        channel.close()
        deadline = time.monotonic() + wait
        while sockets and time.monotonic() < deadline:
            now = _own_sockets()
            if not any(now.get(fd) == link for fd, link in sockets.items()):
                return
            time.sleep(0.002)

    def fds(self) -> dict[int, str] | None:
        """The process' open file descriptors (fd -> readlink of /proc/PID/fd/FD), or None when it is gone or
        /proc cannot be read."""
        if not self.alive():
            return None
        base = f"/proc/{self.process.pid}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            return None
        fds: dict[int, str] = {}
        for name in names:
            try:
                fds[int(name)] = os.readlink(f"{base}/{name}")
            except (OSError, ValueError):
                continue  # closed while we looked
        return fds if self.alive() else None

    def threads(self) -> dict[int, tuple[str, int]] | None:
        """The process' OS threads (tid -> (name, context switches so far), from /proc/PID/task), or None when it
        is gone or /proc cannot be read. A thread whose switches grow is one that still wakes up."""
        if not self.alive():
            return None
        base = f"/proc/{self.process.pid}/task"
        try:
            names = os.listdir(base)
        except OSError:
            return None
        threads: dict[int, tuple[str, int]] = {}
        for name in names:
            try:
                with open(f"{base}/{name}/comm", encoding="utf-8", errors="replace") as f:
                    comm = f.read().strip()
                with open(f"{base}/{name}/status", encoding="ascii", errors="replace") as f:
                    # voluntary_ctxt_switches and nonvoluntary_ctxt_switches
                    switches = sum(int(line.split()[1]) for line in f if line.split(":")[0].endswith("ctxt_switches"))
                threads[int(name)] = (comm, switches)
            except (OSError, ValueError, IndexError):
                continue  # ended while we looked
        return threads if self.alive() else None

    def is_go(self) -> bool:
        """Whether the process runs a Go executable (its runtime keeps the OS threads it starts, and runs
        goroutines on them, so its threads say nothing of the goroutines a connector leaves running)."""
        try:
            return _is_go(os.path.realpath(f"/proc/{self.process.pid}/exe"))
        except OSError:
            return False

    def stderr_text(self) -> str:
        """Everything the connector wrote to stderr so far."""
        if self._released:
            return getattr(self, "_kept_stderr", "")
        try:
            with open(self._stderr_path, "rb") as stderr:
                return stderr.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_report(self) -> str:
        """The interesting end of stderr (from a panic or traceback if there is one), for error messages."""
        text = self.stderr_text().strip()
        if not text:
            return "; its stderr is empty"
        match = re.search(r"^(panic:|fatal error:|Traceback)", text, re.M)
        if match:  # a panic's first frames name the line that died
            shown = "\n".join(text[match.start():].splitlines()[:_PANIC_LINES])[:_STDERR_SHOWN]
        else:
            shown = text[-_STDERR_SHOWN:]
        cut = " (cut)" if len(shown) < len(text) else ""
        return f"; its stderr{cut}:\n" + "\n".join("    | " + line for line in shown.splitlines())

    def death(self) -> PluginError:
        """The error for a process found dead."""
        return PluginError(f"connector process exited with {self.exit_status()}{self.stderr_report()}")

    def shutdown(self, grace: float = 5.0) -> None:
        """Asks for a graceful exit (GRPCController.Shutdown), then terminates or kills the process."""
        if self.alive() and not self._released and self._handshake is not None:
            shutdown = self.connect().unary_unary("/plugin.GRPCController/Shutdown",
                                                  request_serializer=empty_pb2.Empty.SerializeToString,
                                                  response_deserializer=empty_pb2.Empty.FromString)
            try:
                shutdown(empty_pb2.Empty(), timeout=grace)
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE:  # UNAVAILABLE: it exited before answering
                    self.process.terminate()  # no controller (not a go-plugin server): ask the usual way
        elif self.alive():
            self.process.terminate()  # never handshaken (a spare): there is no controller to ask
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._release()

    def kill(self) -> None:
        """Kills the process group and releases everything held for it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.process.wait()
        self._release()

    def _release(self) -> None:
        if self._released:
            return
        self.disconnect()
        self._kept_stderr = self.stderr_text()  # stays readable for reports until the object goes
        self._released = True
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __del__(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
        if not getattr(self, "_released", True):
            try:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
            except Exception:
                pass


def _own_sockets() -> dict[int, str]:
    """This process' socket descriptors (fd -> "socket:[inode]"); empty where /proc cannot be read."""
    sockets: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return sockets
    for name in names:
        try:
            link = os.readlink(f"/proc/self/fd/{name}")
        except (OSError, ValueError):
            continue
        if link.startswith("socket:"):
            sockets[int(name)] = link
    return sockets


@functools.lru_cache(maxsize=64)
def _is_go(executable: str) -> bool:
    """Whether the executable carries Go build info (read once per path)."""
    from harness.conduit.buildinfo import BuildInfoError, read_build_info

    try:
        read_build_info(executable)
    except BuildInfoError:
        return False
    return True


def _exit_status(code: int) -> str:
    """An exit code as words: "code 3", or "signal SIGKILL" for a negative one."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


# gRPC's core keeps an epoll and an eventfd for the life of the process once any channel exists; made here,
# at import, they are not mistaken for descriptors a destination leaked.
_WARM_CHANNEL = grpc.insecure_channel("unix:/nonexistent-conformance-warmup")
