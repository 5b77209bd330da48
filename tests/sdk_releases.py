"""The Go SDK releases our fixed destination is built on (tests/go/fixed, fixed13, fixed14), as data: the verdict
table each gets and where each release's adapter panics; tests/test_conduit_v013.py's `sdk_release` fixture runs its
pins once per release."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.suite_runs import GO_FIXED, expected

__all__ = ["SDK", "ENGINE", "NO_BACKEND", "SdkRelease", "SDK_RELEASES"]

SDK = "github.com/conduitio/conduit-connector-sdk"
ENGINE = ["pipeline.crash-recovery", "pipeline.delivers", "pipeline.engine-restart"]
NO_BACKEND = ["fault.backend-reset", "fault.backend-stall"]  # no server over TCP declared: "not checked"

# Every release: an empty batch and a write before open are the SDK's own panics, so "not applicable"; faults reach
# the Go process through the FUSE filesystem, no engine runs here, and no backend is declared.
_NOT_CHECKED = [*ENGINE, *NO_BACKEND]


@dataclass(frozen=True)
class SdkRelease:
    """One release of the Go SDK and what our fixed destination built on it gets and shows."""

    version: str
    connector: str  # its name in tests/go_connectors.py
    spec: str  # its registration
    run: str  # the fixture holding the suite run over it (tests/conftest.py's go_run, test_conduit_v013's others)
    table: dict[str, list[str]] = field(hash=False)  # its pinned verdict table
    run_before_open_site: str  # where a Run batch before Open panics (the adapter's nil writeStrategy)
    empty_batch_site: str | None  # where the empty-batch panic is raised, where the pin names it
    refuses_large_message: bool  # gRPC's 4 MiB default receive limit, not the limit the driver sets


SDK_RELEASES = [
    SdkRelease("v0.12.0", "fixed", GO_FIXED, "go_run", expected({
        "not applicable": ["write.empty-batch", "write.large-payload"],
        "not checked": _NOT_CHECKED,
        "skipped": ["ack.in-order"],
    }), "conduit-connector-sdk@v0.12.0/destination.go:185", None, refuses_large_message=True),
    # The same verdicts as on v0.12.0, with the config parsed by the SDK and connector.yaml from specgen.
    SdkRelease("v0.13.3", "fixed13", "tests.conduit_v013:go_fixed13", "v013_run", expected({
        "not applicable": ["write.empty-batch", "write.large-payload"],
        "not checked": _NOT_CHECKED,
        "skipped": ["ack.in-order"],
    }), "conduit-connector-sdk@v0.13.3/destination.go:189", "conduit-connector-sdk@v0.13.3/destination.go:202",
        refuses_large_message=True),
    # write.large-payload passes: v0.14.2 reads the receive limit the driver sets, as Conduit v0.14 does.
    SdkRelease("v0.14.2", "fixed14", "tests.conduit_connectors:go_fixed14", "v014_run", expected({
        "not applicable": ["write.empty-batch"],
        "not checked": _NOT_CHECKED,
        "skipped": ["ack.in-order"],
    }), "conduit-connector-sdk@v0.14.2/destination.go:189", "conduit-connector-sdk@v0.14.2/destination.go:202",
        refuses_large_message=False),
]
