"""What the way a destination is reached keeps the driver from observing: facts about an SDK or an adapter, named
without reference to any check (the conformance suite decides what each one leaves out)."""

from enum import Enum

__all__ = ["Behaviour"]


class Behaviour(Enum):
    """A fact about the SDK a destination is built on, or the adapter the driver reaches it through, that hides some
    of the destination's own behaviour. A registration reports each with its reason (`Registration.behaviours`)."""

    # The transport never carries an empty batch, so the adapter answers write([]) itself.
    EMPTY_BATCH_NOT_SENT = "empty batch not sent"
    # The SDK the connector is built on panics on an empty batch (measured on that release).
    EMPTY_BATCH_PANICS = "empty batch panics"
    # A message of 4 MiB may exceed the connector's receive limit, which the driver knows no way to raise.
    LARGE_MESSAGE_MAY_BE_REFUSED = "large message may be refused"
    # The SDK the connector is built on refuses a message of 4 MiB (gRPC's default receive limit, measured).
    LARGE_MESSAGE_REFUSED = "large message refused"
    # The SDK panics on a write before a configured open, so the adapter answers such a write itself.
    WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER = "write before open answered by adapter"
    # The protocol carries no ack from the pipeline to the destination: ack() is the adapter's own no-op.
    NO_ACK_FROM_PIPELINE = "no ack from pipeline"
