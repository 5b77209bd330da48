"""An in-process destination (a harness.Destination) served to Conduit as a standalone connector, through the
official Python SDK: how the pipeline.* checks put a Python destination, such as reference/, in a real pipeline.

`python -m conformance.engine.serve_destination` loads the registration named by $CONFORMANCE_SERVE_DESTINATION (its
`package.module:attribute` spec, imported from $CONFORMANCE_SERVE_SEARCH too) and serves one destination from its
factory. SDK calls map onto ours: configure gets the raw settings (the SDK's sdk.batch.* keys taken out), open,
write (a WriteError(written=n) becomes the SDK's BatchWriteError, so the records before n are acked and the rest
nacked), teardown. harness.conduit.sdk adapts the other direction.
"""

import base64
import inspect
import os
from collections.abc import Mapping
from typing import Any

import conduit
import pydantic
from conduit import BaseConfig, BatchWriteError

from conformance.engine.pipeline import DESTINATION_NAME as NAME, RECEIVED_ENV, SEARCH_ENV, SERVE_ENV
from harness import WriteError, __version__, load_registration
from harness.conduit.sdk import from_sdk_record

__all__ = ["NAME", "SERVE_ENV", "SEARCH_ENV", "AnyConfig", "ServedDestination", "main"]



class AnyConfig(BaseConfig):
    """Any settings: the destination's own configure() judges them."""

    model_config = pydantic.ConfigDict(extra="allow")


def _registration() -> Any:
    spec = os.environ.get(SERVE_ENV)
    if not spec:
        raise SystemExit(f"conformance.engine.serve_destination needs ${SERVE_ENV} (a package.module:attribute spec)")
    return load_registration(spec, search_dir=os.environ.get(SEARCH_ENV) or os.getcwd())


class ServedDestination(conduit.Destination[AnyConfig]):
    """One destination from the registration's factory, driven by Conduit's calls."""

    def __init__(self) -> None:
        self.inner = _registration().factory()

    async def configure(self, config: AnyConfig) -> None:
        settings: Mapping[str, Any] = config.model_extra or {}
        await _call(self.inner.configure, {str(k): str(v) for k, v in settings.items()})

    async def open(self) -> None:
        await _call(self.inner.open)

    async def write(self, records: list[Any]) -> None:
        batch = [from_sdk_record(r) for r in records]
        _note_received(batch)
        try:
            written = await _call(self.inner.write, batch)
        except WriteError as err:
            raise BatchWriteError.partial(len(records), written=err.written, cause=err) from err
        if written != len(records):
            raise RuntimeError(f"write returned {written!r} for a batch of {len(records)} records")

    async def teardown(self) -> None:
        await _call(self.inner.teardown)


def _note_received(batch: list[Any]) -> None:
    """Appends the batch's positions (base64, one a line) to the pipeline's received file, when it names one."""
    path = os.environ.get(RECEIVED_ENV)
    if path:
        with open(path, "a", encoding="ascii") as f:
            f.write("".join(base64.b64encode(r.position).decode() + "\n" for r in batch))


async def _call(method: Any, *args: Any) -> Any:
    """Calls a destination method, sync or async (the contract allows both)."""
    result = method(*args)
    return await result if inspect.isawaitable(result) else result


SPECIFICATION = conduit.Specification(
    name=NAME, summary="A conformance suite destination served over Conduit's plugin protocol.",
    description="Serves the destination of a registration (package.module:attribute) as a standalone connector.",
    version=f"v{__version__}", author="destination-conformance",
)


def main() -> None:
    """Serves the destination over Conduit's plugin protocol."""
    conduit.serve(SPECIFICATION, destination=ServedDestination)


if __name__ == "__main__":
    main()
