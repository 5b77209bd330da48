"""Go connectors driven over the plugin protocol's raw RPCs, for the tests that pin what an SDK release does: a
started connector and its stub, one Run batch, a destination stopped (tests/test_conduit_connectors.py and
tests/test_conduit_v013.py)."""

from typing import Any

from harness import Record
from harness.conduit.adapter import StandaloneDestination
from harness.conduit.plugin_process import ConnectorProcess
from harness.conduit.wire import records_to_proto
from tests.go_connectors import build

# isort: split
import conduit._grpc  # noqa: F401,E402
from connector.v2 import destination_pb2, destination_pb2_grpc  # noqa: E402

__all__ = ["stop", "go_plugin", "write_batch"]


def stop(destination: StandaloneDestination) -> None:
    """Tears the destination down, then stops its process (teardown leaves it running until close())."""
    try:
        destination.teardown()
    finally:
        destination.close()


def go_plugin(name: str) -> tuple[ConnectorProcess, Any]:
    """A started Go connector and a destination stub on its channel."""
    plugin = ConnectorProcess([str(build(name))])
    return plugin, destination_pb2_grpc.DestinationPluginStub(plugin.channel)


def write_batch(stub: Any, records: list[Record]) -> list[Any]:
    """Sends one Run batch and returns what came back (acks, or the stream's error)."""
    responses = stub.Run(iter([destination_pb2.Destination.Run.Request(records=records_to_proto(records))]),
                         timeout=10)
    try:
        return [ack for response in responses for ack in response.acks]
    except Exception as err:
        return [err]
