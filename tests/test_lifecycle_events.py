"""The lifecycle events (CONTRACT.md section 5, lifecycle.events): the driver sends them in-process, through the
middleware and the Python SDK adapter, and over Conduit's protocol; the clause fails a connector whose event needs
the directory, and passes the correct ones."""

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness import Driver, Registration, default_destination_middleware, destination_with_middleware
from harness.conduit.adapter import PluginCallError, StandaloneDestination
from reference.file_destination import FileDestination
from tests.suite_runs import run_suite

FAKE = [sys.executable, str(Path(__file__).parent / "fake_plugin.py")]
CONFIG = {"directory": "/nowhere/out"}
AFTER = {"directory": "/nowhere/out", "sync": "true"}


class Recording(FileDestination):
    """The reference, noting every event and its configs."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, tuple[dict[str, str], ...]]] = []

    def lifecycle_on_created(self, config: Mapping[str, str]) -> None:
        self.events.append(("created", (dict(config),)))

    async def lifecycle_on_updated(self, before: Mapping[str, str], after: Mapping[str, str]) -> None:
        self.events.append(("updated", (dict(before), dict(after))))

    def lifecycle_on_deleted(self, config: Mapping[str, str]) -> None:
        self.events.append(("deleted", (dict(config),)))


def test_events_reach_the_destination_through_the_middleware_sync_and_async() -> None:
    """Each driver event calls the destination's method (an async one awaited) with the configs given; the default
    is the driver's config."""
    inner = Recording()
    registration = Registration(factory=lambda: destination_with_middleware(inner, *default_destination_middleware()),
                                config=CONFIG)
    with Driver(registration) as driver:
        assert driver.lifecycle_on_created() is None
        driver.lifecycle_on_updated(CONFIG, AFTER)
        driver.lifecycle_on_deleted(AFTER)
    assert inner.events == [("created", (CONFIG,)), ("updated", (CONFIG, AFTER)), ("deleted", (AFTER,))]


def test_a_destination_without_events_takes_them_as_no_ops() -> None:
    """No method, no call: the events return None, as Conduit takes an unimplemented one."""
    registration = Registration(factory=FileDestination, config=CONFIG)
    with Driver(registration) as driver:
        assert [driver.lifecycle_on_created(), driver.lifecycle_on_updated(CONFIG), driver.lifecycle_on_deleted()] \
            == [None, None, None]


def test_unimplemented_destination_answers_the_events_as_no_ops() -> None:
    """UnimplementedDestination raises for the interface's methods but not for the optional events."""
    from harness import UnimplementedDestination

    base = UnimplementedDestination()
    assert [base.lifecycle_on_created(CONFIG), base.lifecycle_on_updated(CONFIG, AFTER),
            base.lifecycle_on_deleted(CONFIG)] == [None, None, None]
    with pytest.raises(NotImplementedError):
        base.open()


def test_the_sdk_adapter_dispatches_events_as_the_sdk_servicer_does() -> None:
    """An SDK destination's on_created, on_updated and on_deleted get the events."""
    conduit = pytest.importorskip("conduit")
    from harness.conduit.sdk import sdk_registration
    from tests.conduit_sdk.file_destination import SdkFileDestination

    seen: list[Any] = []

    class Noting(SdkFileDestination):  # type: ignore[misc]
        async def on_created(self, config: dict[str, str]) -> None:
            seen.append(("created", config))

        async def on_updated(self, before: dict[str, str], after: dict[str, str]) -> None:
            seen.append(("updated", before, after))

        async def on_deleted(self, config: dict[str, str]) -> None:
            seen.append(("deleted", config))

    assert issubclass(Noting, conduit.Destination)
    with Driver(sdk_registration(Noting, config=CONFIG)) as driver:
        driver.lifecycle_on_created()
        driver.lifecycle_on_updated(CONFIG, AFTER)
        driver.lifecycle_on_deleted(AFTER)
    assert seen == [("created", CONFIG), ("updated", CONFIG, AFTER), ("deleted", AFTER)]


def _logged(log: Path) -> list[tuple[str, Any]]:
    lines = [line.split(" ", 1) for line in log.read_text().splitlines() if line.startswith("Lifecycle")]
    return [(name, json.loads(configs)) for name, configs in lines]


def test_the_standalone_driver_sends_the_rpcs_with_their_configs(tmp_path: Path) -> None:
    """lifecycle_on_* are the LifecycleOn* RPCs, carrying the configs (before and after for OnUpdated)."""
    log = tmp_path / "calls"
    destination = StandaloneDestination([*FAKE, "plain"], env={"FAKE_PLUGIN_LOG": str(log)})
    try:
        destination.configure(CONFIG)
        destination.lifecycle_on_created(CONFIG)
        destination.lifecycle_on_updated(CONFIG, AFTER)
        destination.lifecycle_on_deleted(AFTER)
        destination.teardown()
    finally:
        destination.close()
    assert _logged(log) == [("LifecycleOnCreated", [CONFIG]), ("LifecycleOnUpdated", [CONFIG, AFTER]),
                            ("LifecycleOnDeleted", [AFTER])]


def test_unimplemented_events_are_no_ops_and_other_errors_are_raised(tmp_path: Path) -> None:
    """A connector answering UNIMPLEMENTED (older than the events) is a no-op, as for Conduit; the Go variant whose
    OnCreated fails raises PluginCallError with its message."""
    destination = StandaloneDestination([*FAKE, "no-events"])
    try:
        assert destination.lifecycle_on_created(CONFIG) is None
        assert destination.lifecycle_on_deleted(CONFIG) is None
    finally:
        destination.close()
    if shutil.which("go") is None:
        pytest.skip("not checked here: `go` is not on PATH, so the Go variant cannot be built")
    from tests.go_connectors import build

    variant = StandaloneDestination([str(build("zoo-created14"))])
    config = {"directory": str(tmp_path / "not-yet")}
    try:
        variant.configure(config)
        with pytest.raises(PluginCallError, match="LifecycleOnCreated failed .*no such file or directory"):
            variant.lifecycle_on_created(config)
    finally:
        variant.close()


@pytest.mark.skipif(shutil.which("go") is None, reason="not checked here: `go` is not on PATH (Go connectors)")
def test_lifecycle_events_fails_the_go_variant_and_passes_fixed14(tmp_path: Path) -> None:
    """The clause over Conduit's protocol: fixed14 passes; the same connector whose OnCreated needs the directory
    fails, with the connector's own error."""
    from tests.go_connectors import build

    build("fixed14")
    build("zoo-created14")
    fixed, variant = "tests.conduit_connectors:go_fixed14", "tests.conduit_connectors:go_created14"
    run = run_suite(tmp_path, fixed, variant, args=("-k", "lifecycle_events"))
    assert run.verdicts(fixed)["lifecycle.events"] == "passed", run.output[-4000:]
    assert run.verdicts(variant)["lifecycle.events"] == "failed", run.output[-4000:]
    assert "lifecycle_on_created() raised PluginCallError: LifecycleOnCreated failed" in run.output
