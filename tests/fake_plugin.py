"""Misbehaving standalone connectors for the driver's robustness tests: `python fake_plugin.py MODE`.

Modes: exit-early (exits during the handshake), garbage (prints a line that is no handshake), silent (prints
nothing), mute-server (a handshake naming a socket that never speaks gRPC), hang-configure (Configure never
returns), die-mid-stream (exits when the first batch arrives), wrong-acks (acks in the wrong order), plain (accepts
every call in any order, as an adapter enforcing no order does), leak-on-open (Open opens the configured directory
and never closes it, not even on Teardown), leak-thread-on-open (Open starts a flusher thread that wakes up for
ever, Teardown or not), no-events (answers the lifecycle events UNIMPLEMENTED, as a connector older than them;
every other mode answers them and logs them with their configs, as JSON).

With FAKE_PLUGIN_LOG set to a path, every RPC that reaches the process appends its name there, one a line (for
Run, one line per batch), so a test sees what was really sent.
"""

import json
import os
import socket
import sys
import threading
import time
from concurrent import futures
from typing import Any

import conduit._grpc  # noqa: F401  (the SDK's generated stubs)
import grpc
from config.v1 import parameter_pb2
from connector.v2 import destination_pb2, destination_pb2_grpc, specifier_pb2, specifier_pb2_grpc

__all__ = ["MODES"]

MODES = ("exit-early", "garbage", "silent", "mute-server", "hang-configure", "die-mid-stream", "wrong-acks", "plain",
         "leak-on-open", "leak-thread-on-open", "no-events")
LOG = "FAKE_PLUGIN_LOG"


def log(name: str) -> None:
    """Appends `name` to the file FAKE_PLUGIN_LOG names, if it names one."""
    path = os.environ.get(LOG)
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


class Specifier(specifier_pb2_grpc.SpecifierPluginServicer):
    """Answers Specify with one required parameter."""

    def Specify(self, request: Any, context: Any) -> Any:
        log("Specify")
        param = parameter_pb2.Parameter(description="where files go", type=parameter_pb2.Parameter.TYPE_STRING,
                                        validations=[parameter_pb2.Validation(
                                            type=parameter_pb2.Validation.TYPE_REQUIRED)])
        spec = specifier_pb2.Specifier.Specify.Response().specification
        spec.name, spec.version, spec.author = "fake", "v0.0.1", "tests"
        spec.destination_params["directory"].CopyFrom(param)
        return specifier_pb2.Specifier.Specify.Response(specification=spec)


class Destination(destination_pb2_grpc.DestinationPluginServicer):
    """A destination that writes nothing and misbehaves as its mode says."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.directory = ""
        self.held: list[int] = []

    def Configure(self, request: Any, context: Any) -> Any:
        log("Configure")
        if self.mode == "hang-configure":
            time.sleep(3600)
        self.directory = request.config.get("directory", "")
        return destination_pb2.Destination.Configure.Response()

    def Open(self, request: Any, context: Any) -> Any:
        log("Open")
        if self.mode == "leak-on-open":
            self.held.append(os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY))
        if self.mode == "leak-thread-on-open":
            threading.Thread(target=_flush_for_ever, daemon=True).start()
        return destination_pb2.Destination.Open.Response()

    def Run(self, request_iterator: Any, context: Any) -> Any:
        for request in request_iterator:
            log("Run")
            if self.mode == "die-mid-stream":
                sys.stderr.write("fake plugin: dying mid-stream\n")
                sys.stderr.flush()
                os._exit(3)
            acks = [destination_pb2.Destination.Run.Response.Ack(position=r.position) for r in request.records]
            if self.mode == "wrong-acks":
                acks.reverse()
            yield destination_pb2.Destination.Run.Response(acks=acks)

    def Stop(self, request: Any, context: Any) -> Any:
        log("Stop")
        return destination_pb2.Destination.Stop.Response()

    def Teardown(self, request: Any, context: Any) -> Any:
        log("Teardown")
        return destination_pb2.Destination.Teardown.Response()

    def _event(self, name: str, context: Any, *configs: Any) -> bool:
        """Logs an event with its configs; False in no-events mode (the base servicer answers UNIMPLEMENTED)."""
        if self.mode == "no-events":
            return False
        log(f"{name} " + json.dumps([dict(c) for c in configs], sort_keys=True))
        return True

    def LifecycleOnCreated(self, request: Any, context: Any) -> Any:
        if not self._event("LifecycleOnCreated", context, request.config):
            return super().LifecycleOnCreated(request, context)
        return destination_pb2.Destination.Lifecycle.OnCreated.Response()

    def LifecycleOnUpdated(self, request: Any, context: Any) -> Any:
        if not self._event("LifecycleOnUpdated", context, request.config_before, request.config_after):
            return super().LifecycleOnUpdated(request, context)
        return destination_pb2.Destination.Lifecycle.OnUpdated.Response()

    def LifecycleOnDeleted(self, request: Any, context: Any) -> Any:
        if not self._event("LifecycleOnDeleted", context, request.config):
            return super().LifecycleOnDeleted(request, context)
        return destination_pb2.Destination.Lifecycle.OnDeleted.Response()


def _flush_for_ever() -> None:
    while True:  # a flusher nobody stops
        time.sleep(0.02)


def main(mode: str) -> None:
    """Runs the fake connector in `mode`."""
    if mode == "exit-early":
        sys.stderr.write("fake plugin: cannot start, exiting\n")
        sys.exit(4)
    if mode == "garbage":
        print("Hello! This is not a handshake.", flush=True)
        time.sleep(3600)
    if mode == "silent":
        time.sleep(3600)
    if mode == "mute-server":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        print(f"1|2|tcp|127.0.0.1:{listener.getsockname()[1]}|grpc|", flush=True)
        connections = []
        while True:
            connection, _ = listener.accept()
            connections.append(connection)  # accepted, never answered
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    specifier_pb2_grpc.add_SpecifierPluginServicer_to_server(Specifier(), server)
    destination_pb2_grpc.add_DestinationPluginServicer_to_server(Destination(mode), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"1|2|tcp|127.0.0.1:{port}|grpc|", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(sys.argv[1])
