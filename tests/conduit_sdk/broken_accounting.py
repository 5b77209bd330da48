"""The SDK file destination with wrong BatchWriteError accounting: it claims the record with a bad key as written."""

import conduit

from tests.conduit_sdk.file_destination import SdkFileDestination

__all__ = ["SPECIFICATION", "SdkBrokenAccountingDestination"]

SPECIFICATION = conduit.Specification(
    name="sdk-broken-accounting",
    version="v0.1.0",
    author="conformance tests",
    summary="The SDK file destination with an off-by-one BatchWriteError count (a conformance-suite test).",
    description=(
        "Behaves as sdk-file-destination, except that when record i has an invalid key it reports "
        "BatchWriteError.partial(written=i + 1): the failed record is claimed as written, so it is acked "
        "although nothing of it reached the directory. Breaks write.invalid-key-count."
    ),
)


class SdkBrokenAccountingDestination(SdkFileDestination):
    """SdkFileDestination whose invalid-key error counts the failed record as written (written=i + 1)."""

    def _invalid_key_error(self, batch_size: int, index: int, cause: ValueError) -> conduit.BatchWriteError:
        """The wrong count: records[:index + 1] claimed written, although records[index] was not."""
        return conduit.BatchWriteError.partial(batch_size, written=index + 1, cause=cause)
