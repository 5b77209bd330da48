"""The lifecycle adapter for a standalone connector: our Destination interface onto Conduit's `connector.v2` RPCs.

One process per destination instance, as Conduit runs them (harness.conduit.plugin_process starts it, handshakes and
supervises it). Our lifecycle maps onto the RPCs: `parameters` is `Specify` (sent on every call), `configure` is
`Configure`, `open` is `Open`, `write` sends one batch on the `Run` stream and waits for its acks (matched by
position; the first nack's index is the written count), and `teardown` is `Stop(last position)` (if a stream is
open) and `Teardown`, each time it is called; the optional `lifecycle_on_*` events are the `LifecycleOn*` RPCs (an
UNIMPLEMENTED answer is a no-op, as for Conduit). The process outlives `teardown`, so that what follows it reaches the
connector; `close()` stops it (`GRPCController.Shutdown`, then SIGTERM, then SIGKILL). Calls the lifecycle forbids
are sent as they are: an error status (or a nack) while the process lives becomes LifecycleError; a process that
dies is a PluginError carrying its stderr. What cannot be sent (`ack`, an empty batch, anything after `close()`, and
a write before open to a connector whose Go SDK panics on one, read from its build info: harness.conduit.buildinfo) is
answered by the adapter, with a LifecycleError starting "adapter: ", and named by `adapter_answers()`.

A registration's factory takes a warm spare process (started while the previous example ran; `CONFORMANCE_SPARE=0`
turns that off) and asks `Specify` only the first time for an executable (same files, sizes, mtimes, environment).
Needs the `conduit` extra."""

import queue
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from harness.conduit.buildinfo import BuildInfo, BuildInfoError, read_build_info
from harness.conduit.panics import Origin, origin, parse_panic
from harness.conduit.plugin_process import PluginError
from harness.conduit.spares import start_connector
from harness.conduit.specification import (
    SPECIFICATIONS,
    SPECIFICATIONS_LOCK,
    Specification,
    executable_identity,
    executable_path,
)
from harness.conduit.wire import parameters_from_proto, records_to_proto
from harness.config import Parameter
from harness.destination import LIFECYCLE, METHODS
from harness.errors import ConfigError, LifecycleError, WriteError
from harness.records import Record

# isort: split
from connector.v2 import (  # type: ignore[import-not-found]  # noqa: E402
    destination_pb2,
    destination_pb2_grpc,
    specifier_pb2,
    specifier_pb2_grpc,
)

__all__ = ["PluginCallError", "UpstreamPanic", "StandaloneDestination"]

class UpstreamPanic(PluginError):
    """The connector process died on a panic raised in the SDK's own code, not the connector's (conduit.panics)."""

    def __init__(self, message: str, origin: Origin) -> None:
        super().__init__(message)
        self.origin = origin


# Executables whose SDK was seen to panic on a Run batch before a configured Open (a release outside the predicted
# range): later destinations of the same executable hold such a write back, as for a predicted one.
_LEARNED_RUN_NEEDS_OPEN: dict[tuple[Any, ...], str] = {}
# How long a broken Run stream waits for the process to finish dying (it closes its socket before it exits).
_DEATH_GRACE = 2.0


class PluginCallError(RuntimeError):
    """The connector answered a call with an error status; the message is the status and its details."""

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"{method} failed with status {code}: {details}")
        self.method = method
        self.code = code
        self.details = details


_END = object()
# The lifecycle call each RPC is sent for (a death found later is charged to it).
_CALLS = {"Specify": "parameters", "Configure": "configure", "Open": "open", "Run": "write", "Stop": "teardown",
          "Teardown": "teardown", "LifecycleOnCreated": "lifecycle_on_created",
          "LifecycleOnUpdated": "lifecycle_on_updated", "LifecycleOnDeleted": "lifecycle_on_deleted"}


class _RunStream:
    """The `Run` stream: batches go in through a queue, acks come back through a reader thread."""

    def __init__(self, stub: Any) -> None:
        self.requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.acks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.responses = stub.Run(iter(self.requests.get, _END))
        self.reader = threading.Thread(target=self._read, name="conformance-run-stream-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            for response in self.responses:
                for ack in response.acks:
                    self.acks.put(ack)
            self.acks.put(_END)
        except Exception as err:  # an error status (grpc.RpcError) or a broken message: write() reads it
            self.acks.put(err)

    def close(self, timeout: float) -> None:
        """Half-closes the request side and waits for the reader to see the stream end."""
        self.requests.put(_END)
        self.reader.join(timeout)
        if self.reader.is_alive():
            self.responses.cancel()
            self.reader.join(timeout)


class StandaloneDestination:
    """A destination in its own process, driven over Conduit's plugin protocol (the `Destination` interface).

    The process lives from the factory until `close()` (the driver's close): `teardown` sends `Teardown`
    and leaves it running, so a second teardown, `parameters()` and the calls the lifecycle forbids after
    it reach the connector and are judged on its answer. `adapter_answers()` names the calls the adapter
    answers itself in the current state; `process_fds()` and `process_threads()` list the connector process'
    descriptors and OS threads.
    """

    transport = "standalone"

    def __init__(self, command: str | Sequence[str], *, handshake_timeout: float = 15.0,
                 rpc_timeout: float = 120.0, env: Mapping[str, str] | None = None,
                 run_needs_open: str | None = None, resets_run: Sequence[str] = (), spare: bool = False,
                 reuse_specification: bool = False, build_info: BuildInfo | None = None) -> None:
        """Starts the connector (`spare`: takes the warm spare and starts the next, see conduit.plugin_process) and
        asks `Specify` (`reuse_specification`: only if this executable's answer is not known yet)."""
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        self.rpc_timeout = rpc_timeout
        # A connector whose SDK panics on Run before Open (see conduit.buildinfo): write() is not sent until an Open
        # was, after a Configure that succeeded, and is answered here with this reason.
        self._run_needs_open = run_needs_open
        self._configured_once = self._open_sent = False
        # RPCs after which its SDK sets Run up anew: the Run stream open before them is ended (the next write opens
        # one).
        self._resets_run = frozenset(resets_run)
        # Read on the process' death, to tell the SDK's panics from the connector's (harness.conduit.panics).
        self._build_info = build_info
        self._last_sent: str | None = None  # the last call that sent an RPC: the one a later-found death is charged to
        self._killed_by: str | None = None  # the call in (or after) which the process died
        self._upstream: str | None = None  # why, when it died on a panic in the SDK's own code
        self._identity = executable_identity(self.argv, env)
        identity = self._identity if reuse_specification else None
        self.plugin = start_connector(self.argv, env=env, handshake_timeout=handshake_timeout, spare=spare)
        self._state = "new"
        self._closed = False
        self._run: _RunStream | None = None
        self._last_position: bytes | None = None
        known = SPECIFICATIONS.get(identity) if identity is not None else None
        if known is not None:
            self.specification = known  # the same files and environment answer the same
            return
        try:
            self.specification = self._specify()  # what it is (the report's header); parameters() asks again
        except BaseException:
            self.plugin.kill()
            raise
        if identity is not None:
            with SPECIFICATIONS_LOCK:
                SPECIFICATIONS[identity] = self.specification

    def __repr__(self) -> str:
        return f"StandaloneDestination({shlex.join(self.argv)!r})"

    def _call(self, method: str, request: Any, service: Any = destination_pb2_grpc.DestinationPluginStub) -> Any:
        """One unary RPC; an error status becomes PluginCallError, a dead process PluginError."""
        if not self.plugin.alive():
            raise self._death(None)
        rpc = getattr(service(self.plugin.connect()), method)
        self._last_sent = _CALLS.get(method, method)
        try:
            return rpc(request, timeout=self.rpc_timeout)
        except grpc.RpcError as err:
            if not self.plugin.alive() or self._dies(err):
                raise self._death(self._last_sent) from None
            raise PluginCallError(method, err.code().name, err.details() or "") from None
        finally:
            if self._state == "torn down" and method != "Stop":
                self.plugin.disconnect()  # after teardown nothing of ours stays open between calls

    def _dies(self, err: grpc.RpcError) -> bool:
        """Whether the process exits within a short grace after a broken connection (a panicking process closes its
        socket before it has exited): so the call it died in, not the next one, is charged with its death."""
        if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL):
            return False
        try:
            self.plugin.process.wait(timeout=_DEATH_GRACE)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _death(self, call: str | None) -> PluginError:
        """The error for the dead process: charged to `call` (the one it died in) or, when it was found dead before a
        call was sent, to the last call that was; an UpstreamPanic when the SDK's own code panicked."""
        if self._killed_by is None:
            self._killed_by = call or self._last_sent or "start"
            found = self._origin()
            if found is not None and found.upstream:
                self._upstream = found.describe()
                if self._killed_by == "write" and not (self._open_sent and self._configured_once) \
                        and self._identity is not None:
                    _LEARNED_RUN_NEEDS_OPEN.setdefault(self._identity, f"{self._upstream} (seen in this run)")
        killed_by = self._killed_by
        when = "in" if call is not None and call == killed_by else "after"
        message = (f"connector process exited with {self.plugin.exit_status()} {when} {killed_by}()"
                   f"{self.plugin.stderr_report()}")
        if self._upstream is not None:
            found = self._origin()
            assert found is not None
            return UpstreamPanic(f"a panic in the SDK's own code, not the connector's ({self._upstream}); {message}",
                                 found)
        return PluginError(message)

    def _origin(self) -> Origin | None:
        """Whose code the panic in the process' stderr was raised in, or None when it printed no Go panic."""
        panic = parse_panic(self.plugin.stderr_text())
        if panic is None:
            return None
        if self._build_info is None:
            try:
                self._build_info = read_build_info(executable_path(self.argv) or "")
            except BuildInfoError:
                pass
        return origin(panic, self._build_info)

    def _specify(self) -> Specification:
        answer = self._call("Specify", specifier_pb2.Specifier.Specify.Request(),
                            specifier_pb2_grpc.SpecifierPluginStub)
        spec = answer.specification
        try:
            parameters = parameters_from_proto(spec.destination_params)
        except ValueError as err:
            raise PluginError(f"Specify answered parameters the driver cannot read: {err}") from None
        return Specification(spec.name, spec.version, spec.author, spec.summary, spec.description, parameters)

    def _allows(self, method: str) -> bool:
        """Whether the lifecycle (CONTRACT.md: Lifecycle) allows `method` now (tracked only to read errors, never to
        refuse a call)."""
        return method in LIFECYCLE[self._state]

    def adapter_answers(self) -> dict[str, str]:
        """Each call whose answer comes from this adapter, not from the connector, in the current state, with the
        reason: `ack` always, `write([])` (an empty batch is never sent), and every call once the process is gone."""
        if self._closed:
            return {method: f"the adapter stopped the connector process (close()), so nothing can be sent; the "
                            f"adapter answers {method}() itself" for method in METHODS}
        if not self.plugin.alive():
            if self._killed_by is None:
                self._death(None)  # charges the death to the last call sent, and reads whose panic it was
            if self._upstream is not None:
                # The SDK's own code panicked: neither that call nor any later one is the connector's to answer.
                return {method: f"the connector process died in {self._killed_by}() on a panic in the SDK's own code, "
                                f"not the connector's: {self._upstream}; so nothing more can be sent"
                        for method in METHODS}
            # The call it died in is the connector's failure; only what comes after cannot be sent.
            return {method: f"the connector process exited with {self.plugin.exit_status()} in {self._killed_by}(), "
                            f"so nothing can be sent; the adapter answers {method}() itself"
                    for method in METHODS if method != self._killed_by}
        return {"ack": "Conduit's destination protocol has no ack from the pipeline (acks flow from the connector "
                       "to Conduit); the adapter answers ack() itself: None while open, LifecycleError otherwise",
                "write([])": "an empty batch is never sent on the Run stream (Conduit never sends one, and the Go "
                             "SDK's adapter panics on one); the adapter answers write([]) itself: 0 while open, "
                             "LifecycleError otherwise",
                **({"write": self._needs_open() or ""} if self._holds_back_run() else {})}

    def _holds_back_run(self) -> bool:
        """Whether write() is answered here because the connector's SDK would panic on a Run before Open."""
        return bool(self._needs_open()) and not (self._open_sent and self._configured_once)

    def _needs_open(self) -> str | None:
        """Why write() waits for a configured Open: predicted from the SDK release, or seen earlier in this run."""
        learned = _LEARNED_RUN_NEEDS_OPEN.get(self._identity) if self._identity is not None else None
        return self._run_needs_open or learned

    def process_fds(self) -> dict[int, str] | None:
        """The connector process' open file descriptors (fd -> readlink of /proc/PID/fd/FD); None when the process
        is gone (or stopped by close()) or /proc cannot be read. Only the process the command started is listed."""
        return None if self._closed else self.plugin.fds()

    def process_threads(self) -> dict[int, tuple[str, int]] | None:
        """The connector process' OS threads (tid -> (name, context switches)); None as for process_fds()."""
        return None if self._closed else self.plugin.threads()

    def process_env_root(self) -> str | None:
        """The connector process' environment tree ($TMPDIR, $HOME, $XDG_*; harness.process_env); None once it is
        stopped."""
        return None if self._closed else self.plugin.env_root

    def process_is_go(self) -> bool:
        """Whether the connector process runs a Go executable (see ConnectorProcess.is_go)."""
        return self.plugin.is_go()

    def _sendable(self, method: str) -> None:
        """Raises the adapter's LifecycleError once close() (or abandon()) stopped the process."""
        if self._closed:
            raise LifecycleError(f"adapter: {method}() after the adapter stopped the connector process (close()); "
                                 f"nothing can be sent to it")

    def parameters(self) -> Mapping[str, Parameter]:
        """The destination parameters, asked with `Specify` on every call (in every state)."""
        self._sendable("parameters")
        return self._specify().parameters

    def configure(self, config: Mapping[str, str]) -> None:
        """`Configure`; an error status is ConfigError, or LifecycleError when configure was not allowed."""
        self._sendable("configure")
        allowed = self._allows("configure")
        request = destination_pb2.Destination.Configure.Request(config=dict(config))
        try:
            self._call("Configure", request)
        except PluginCallError as err:
            self._end_reset_run("Configure")
            if not allowed:
                raise LifecycleError(f"configure() in state {self._state}: {err}") from None
            named = sorted(k for k in {*config, *self.specification.parameters} if k and k in err.details)
            raise ConfigError(str(err), keys=named) from None
        self._end_reset_run("Configure")
        self._configured_once = True
        if allowed:
            self._state = "configured"

    def open(self) -> None:
        """`Open`; an error status is PluginCallError, or LifecycleError when open was not allowed."""
        self._sendable("open")
        allowed = self._allows("open")
        try:
            self._open_sent = self.plugin.alive()  # the SDK sets up Run on any Open it receives, failed or not
            self._call("Open", destination_pb2.Destination.Open.Request())
        except PluginCallError as err:
            self._end_reset_run("Open")
            if not allowed:
                raise LifecycleError(f"open() in state {self._state}: {err}") from None
            self._state = "open failed"
            raise
        self._end_reset_run("Open")
        if allowed:
            self._state = "open"

    def _end_reset_run(self, method: str) -> None:
        """Half-closes the Run stream after an RPC that makes the connector's SDK set Run up anew (see __init__)."""
        if method in self._resets_run and self._run is not None:
            self._run.close(timeout=self.rpc_timeout)
            self._run = None

    def write(self, records: Sequence[Record]) -> int:
        """Sends the batch on the `Run` stream (a new one if none is open, as after teardown) and waits for one ack
        per record, matched by position. An empty batch is answered here (see Behaviour.EMPTY_BATCH_NOT_SENT)."""
        self._sendable("write")
        allowed = self._allows("write")
        if not records:
            if not allowed:
                raise LifecycleError(f"adapter: write([]) in state {self._state}: an empty batch is answered by the "
                                     f"adapter (Conduit never sends one)")
            return 0
        if self._holds_back_run():
            raise LifecycleError(f"adapter: write() in state {self._state} is not sent: {self._needs_open()}")
        if not self.plugin.alive():
            raise self._death(None)
        messages = records_to_proto(records)  # before anything is sent: unencodable data is our error, not theirs
        if self._run is None:
            self._run = _RunStream(destination_pb2_grpc.DestinationPluginStub(self.plugin.connect()))
        self._last_sent = "write"
        self._run.requests.put(destination_pb2.Destination.Run.Request(records=messages))
        self._last_position = records[-1].position
        try:
            acks = self._collect(self._run, len(records))
        finally:
            if self._state == "torn down" and self._run is not None:
                # After teardown nothing of ours stays open between calls: the stream ends here.
                self._run.close(timeout=1.0)
                self._run = None
                self.plugin.disconnect()
        for index, (record, ack) in enumerate(zip(records, acks, strict=True)):
            if ack.position != record.position:
                raise PluginError(f"ack {index} carries position {ack.position!r} but record {index} has "
                                  f"{record.position!r}: acks must come in the order of the records")
        failed = next((i for i, ack in enumerate(acks) if ack.error), None)
        if failed is not None:
            if not allowed:
                raise LifecycleError(f"write() in state {self._state}: record {failed} nacked: {acks[failed].error}")
            later_ok = [i for i in range(failed + 1, len(acks)) if not acks[i].error]
            note = f"; records {later_ok} after it were acked all the same" if later_ok else ""
            raise WriteError(f"record {failed} nacked: {acks[failed].error}{note}", written=failed)
        return len(records)

    def _collect(self, run: _RunStream, count: int) -> list[Any]:
        acks: list[Any] = []
        deadline = time.monotonic() + self.rpc_timeout
        while len(acks) < count:
            try:
                item = run.acks.get(timeout=0.05)
            except queue.Empty:
                if not self.plugin.alive():
                    raise self._death("write") from None
                if time.monotonic() > deadline:
                    raise PluginError(f"got {len(acks)} of {count} acks within {self.rpc_timeout:g}s"
                                      + self.plugin.stderr_report()) from None
                continue
            if isinstance(item, grpc.RpcError):
                self._run = None  # a stream that ended with an error is gone; a later write opens a new one
                if not self.plugin.alive() or self._dies(item):
                    raise self._death("write")
                message = f"the Run stream ended with status {item.code().name}: {item.details()}"
                if not self._allows("write"):
                    raise LifecycleError(f"write() in state {self._state}: {message}")
                raise PluginError(message + self.plugin.stderr_report())
            if item is _END or isinstance(item, Exception):
                self._run = None
                raise PluginError(f"the Run stream ended after {len(acks)} of {count} acks ({item!r})"
                                  + self.plugin.stderr_report())
            acks.append(item)
        return acks

    def ack(self, position: bytes) -> None:
        """Answered by the adapter (the protocol has no ack to send): None while open, LifecycleError otherwise."""
        self._sendable("ack")
        if not self._allows("ack"):
            raise LifecycleError(f"adapter: ack() in state {self._state}: acks exist only while open (Conduit's "
                                 f"destination protocol has no ack to send, so the adapter answers)")

    def teardown(self) -> None:
        """`Stop(last position)` and half-close if a `Run` stream is open, then `Teardown`, every time it is called.
        The process runs on until `close()`; the channel is closed, so no descriptor of ours stays open."""
        self._sendable("teardown")
        self._state = "torn down"
        try:
            if not self.plugin.alive():
                raise self._death(None)
            if self._run is not None:
                self._call("Stop", destination_pb2.Destination.Stop.Request(last_position=self._last_position or b""))
                self._run.close(timeout=self.rpc_timeout)
                self._run = None
            self._call("Teardown", destination_pb2.Destination.Teardown.Request())
        finally:
            if self._run is not None:
                self._run.close(timeout=1.0)
                self._run = None
            self.plugin.disconnect()

    def _event(self, method: str, request: Any) -> None:
        """A lifecycle event RPC, sent in any state as Conduit sends it; UNIMPLEMENTED is a no-op (Conduit ignores it
        for connectors older than the events), any other error status is PluginCallError."""
        self._sendable(_CALLS[method])
        try:
            self._call(method, request)
        except PluginCallError as err:
            if err.code != grpc.StatusCode.UNIMPLEMENTED.name:
                raise

    def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        """`LifecycleOnCreated(config)`: Conduit sends it after Configure and before Open on a connector's first
        start (pkg/connector/destination.go, triggerLifecycleEvent)."""
        lifecycle = destination_pb2.Destination.Lifecycle
        self._event("LifecycleOnCreated", lifecycle.OnCreated.Request(config=dict(config)))

    def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        """`LifecycleOnUpdated(before, after)`: after Configure(after) and before Open, when the config changed since
        the last run."""
        lifecycle = destination_pb2.Destination.Lifecycle
        self._event("LifecycleOnUpdated",
                    lifecycle.OnUpdated.Request(config_before=dict(before), config_after=dict(after)))

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        """`LifecycleOnDeleted(last config)`: the only call before Teardown, in a process of its own, when the
        connector is deleted."""
        lifecycle = destination_pb2.Destination.Lifecycle
        self._event("LifecycleOnDeleted", lifecycle.OnDeleted.Request(config=dict(config)))

    def abandon(self) -> None:
        """Kills the connector process without another RPC (the driver calls this after a call hung)."""
        self._state = "torn down"
        self._closed = True
        self.plugin.kill()

    def close(self) -> None:
        """Stops the connector process: half-closes an open `Run` stream, `GRPCController.Shutdown`, then SIGTERM
        and SIGKILL if it does not exit. Sends no `Teardown`; idempotent; never raises. Every call after it is a
        LifecycleError starting "adapter: "."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._run is not None:
                self._run.close(timeout=1.0)
                self._run = None
            self.plugin.shutdown()
        except Exception:
            try:
                self.plugin.kill()
            except Exception:
                pass
