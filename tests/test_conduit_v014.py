"""Conduit v0.14.0's world without a database: the engine's release and built-in connectors read from its binary,
the file and log destinations built into it (file v0.10.3, log v0.7.3, on Go SDK v0.14.1) checked over the plugin
protocol with their verdict tables pinned, each failure replayed, and the SDK's limits applied from build info.
(Postgres and S3: tests/test_conduit_v014_services.py; pipelines on both engines: tests/test_pipeline.py.)"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from conformance.contract.behaviours import resolve
from conformance.engine.conduit_version import engine_version
from harness import Behaviour, RawData, Record
from harness.conduit.adapter import PluginCallError
from harness.conduit.buildinfo import (
    MEASURED_SDK_VERSIONS,
    RECEIVE_LIMIT_ENV,
    read_build_info,
    reads_env,
    sdk_limitations,
)
from harness.conduit.standalone import standalone_registration
from harness.records import Change
from tests.go_connectors import build
from tests.suite_runs import NO_LOCATION, SuiteRun, dump, expected, reasons, shared_run, table

if shutil.which("go") is None:
    pytest.skip("not checked here: `go` is not on PATH, so Conduit v0.14.0's connectors cannot be built",
                allow_module_level=True)

FILE14 = "tests.conduit_v014:upstream14_file"
LOG14 = "tests.conduit_v014:upstream14_log"
SDK = "github.com/conduitio/conduit-connector-sdk"
ENGINE = ["pipeline.crash-recovery", "pipeline.delivers", "pipeline.engine-restart"]
NO_BACKEND = ["fault.backend-reset", "fault.backend-stall"]  # no server over TCP declared: "not checked"
# What Conduit v0.14.0's go.mod pins (tests/go/upstream14/go.mod repeats it; the engine's build info must agree).
PINNED = {"file": "v0.10.3", "log": "v0.7.3", "postgres": "v0.14.0", "s3": "v0.9.3"}
PINNED_13 = {"file": "v0.10.1", "log": "v0.7.1", "postgres": "v0.11.2", "s3": "v0.9.1"}


@pytest.fixture(scope="module")
def v014_builtins_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """One suite run over Conduit v0.14.0's file and log destinations."""
    return shared_run(tmp_path_factory, worker_id, "v014-builtins-run", (FILE14, LOG14),
                      ("upstream14-file", "upstream14-log"))


# --- the engines: their release and built-in connectors, from the binary ---------------------------------------------


@pytest.mark.parametrize(("engine", "release", "pins"), [("conduit13", "v0.13.3", PINNED_13),
                                                        ("conduit14", "v0.14.0", PINNED)])
def test_the_engines_release_and_built_in_connectors_are_read_from_its_build_info(engine: str, release: str,
                                                                                   pins: dict[str, str]) -> None:
    """What the header and reports name: the release, and the built-in connectors at the versions the release's
    go.mod pins, which are the versions of the standalone builds these tests check."""
    binary = str(build(engine))
    found = engine_version(binary)
    assert (found.version, found.source) == (release, "from its Go build info"), found
    assert {name: found.builtin.get(name) for name in pins} == pins, found.builtin
    suffix = engine[-2:]
    for name, version in pins.items():
        info = read_build_info(build(f"upstream{suffix}-{name}"))
        module = info.module(f"github.com/conduitio/conduit-connector-{name}")
        assert module is not None and module.version == version, (name, module)
    assert found.describe().startswith(f"Conduit {release} (from its Go build info; built-in connectors: ")


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_an_engine_without_build_info_is_asked_its_version_or_reported_unknown(tmp_path: Path) -> None:
    """A binary without Go build info (a wrapper script, say) answers `--version`; what prints no release is
    "unknown" with the reason, and so is a path that is not there. Nothing raises: the report still gets written."""
    wrapper = _script(tmp_path / "conduit", "#!/bin/sh\necho 'v0.14.0 linux/amd64'\n")
    found = engine_version(wrapper)
    assert (found.version, found.source, found.builtin) == ("v0.14.0", "from `conduit --version`", {})
    silent = _script(tmp_path / "other", "#!/bin/sh\necho 'development'\n")
    unknown = engine_version(silent)
    assert unknown.version is None and "`--version` printed 'development'" in unknown.source
    assert unknown.describe().startswith("Conduit of unknown release (release unknown:")
    missing = engine_version(str(tmp_path / "missing"))
    assert missing.version is None and "cannot read" in missing.source
    assert missing.as_json() == {"path": str(tmp_path / "missing"), "version": None, "source": missing.source,
                                 "builtin": {}}


def test_the_markdown_summary_and_the_json_report_name_the_engine() -> None:
    """With an engine, each destination's Markdown section says which release its pipelines ran on, and the JSON
    report carries it as `engine`; without one, neither mentions an engine (`engine` is null)."""
    from conformance.results.report import Recorder, markdown
    from conformance.results.verdicts import verdicts
    from harness import load_registration

    registration = load_registration("reference:registration")
    table_ = verdicts([registration], [], 10.0)
    found = engine_version(str(build("conduit14")))
    assert f"Pipelines ran on {found.describe()}." in markdown(table_, found)
    assert "Pipelines ran on" not in markdown(table_)
    recorder = Recorder([registration], 10.0)
    assert recorder.certificate(table_, "random", None, found)["engine"] == found.as_json()
    assert recorder.certificate(table_, "random", None)["engine"] is None


# --- SDK v0.14.1's limits, applied from build info -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(f"upstream14-{n}" for n in PINNED))
def test_sdk_v0_14_1_limits_are_applied_from_each_connectors_build_info(name: str) -> None:
    """Every built-in destination of v0.14.0 is on SDK v0.14.1, a release inside the range the limits were measured
    across (its destination.go is byte-identical to v0.14.2's): the adapter's two panics are predicted, named with
    v0.14.1; it reads the receive limit, so large payloads are checked."""
    binary = build(name)
    info = read_build_info(binary)
    module = info.module(SDK)
    assert module is not None and module.version == "v0.14.1"
    assert reads_env(binary, RECEIVE_LIMIT_ENV)
    limits = sdk_limitations(info, reads={RECEIVE_LIMIT_ENV})
    assert set(limits) == {Behaviour.WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER, Behaviour.EMPTY_BATCH_PANICS}
    assert limits[Behaviour.EMPTY_BATCH_PANICS][0].startswith(f"upstream {SDK}@v0.14.1 destination.go:202: ")
    assert "v0.14.1" in MEASURED_SDK_VERSIONS  # pinned here: the verdict tables below are its measurement
    registration = resolve(standalone_registration([str(binary)]))  # as the suite sees it
    assert "write.empty-batch" not in registration.skip
    assert registration.not_applicable["write.empty-batch"].startswith(f"upstream {SDK}@v0.14.1 ")
    assert "write.large-payload" not in registration.skip and "write.large-payload" not in registration.not_applicable


# --- file v0.10.3 and log v0.7.3: verdict tables ---------------------------------------------------------------------

LOG_LIKE = {
    # SDK v0.14.1 reads the receive limit the driver sets (as Conduit v0.14 does): write.large-payload is checked.
    "not applicable": ["write.empty-batch"],
    "not checked": [*NO_LOCATION, *ENGINE, *NO_BACKEND, "write.recovers"],
    "skipped": ["ack.in-order", "write.invalid-key-count"],
}
# As file v0.10.1 (the same Go code): call order unguarded; a second Teardown closes the file again; with
# path_param="path", no missing parent made, half a record left in the file by a write failing inside it; no name a
# write creates to plant a symlink at; a parent that is no directory refused by Configure when it is there already,
# by Open when it turns up after Configure (open.not-a-directory and teardown.any-state pass).
FILE14_TABLE = expected({**LOG_LIKE, "failed": ["lifecycle.out-of-order", "teardown.idempotent",
                                                "open.creates-directory", "fault.disk-full", "fault.io-error"],
                         "not checked": [*ENGINE, *NO_BACKEND, "write.recovers", "safety.no-symlink-follow"]})
# As log v0.7.1 (the same Go code): call order unguarded; no required parameter, and configure accepts the config
# without `message` (configure.required passes since v1.4); read_back sees only the driver's own connector
# processes, so the pipeline clauses are skipped.
LOG14_TABLE = expected({**LOG_LIKE, "failed": ["lifecycle.out-of-order"],
                        "not checked": [c for c in LOG_LIKE["not checked"] if c not in ENGINE],
                        "skipped": [*LOG_LIKE["skipped"], *ENGINE]})


def test_file_connector_v0_10_3_verdicts(v014_builtins_run: SuiteRun) -> None:
    """conduit-connector-file v0.10.3 (Conduit v0.14.0's built-in file destination): v0.10.1's findings, and a 4 MiB
    payload now crosses the plugin protocol and round-trips."""
    run = v014_builtins_run
    assert table(run, FILE14) == FILE14_TABLE, dump(run, FILE14)
    why = reasons(run, FILE14)
    assert why["write.empty-batch"].startswith(f"upstream {SDK}@v0.14.1 destination.go:202: "), why
    built = run.report["destinations"][FILE14]["built_with"]
    assert (built["sdk_version"], built["sdk_measured"]) == ("v0.14.1", True), built
    assert "records.jsonl: file already closed" in run.output
    assert "records.jsonl ends in half a line (no newline after it)" in run.output


def test_log_connector_v0_7_3_verdicts(v014_builtins_run: SuiteRun) -> None:
    """conduit-connector-log v0.7.3 (Conduit v0.14.0's built-in log destination): every record round-trips through
    its log lines, a 4 MiB one too; only the call order fails."""
    run = v014_builtins_run
    assert table(run, LOG14) == LOG14_TABLE, dump(run, LOG14)
    assert "open() is forbidden in state 'new', so LifecycleError was due, but it returned normally" in run.output


# --- each failure, replayed against the connector --------------------------------------------------------------------


def test_file_connector_v0_10_3_accepts_any_call_order_and_fails_a_second_teardown(tmp_path: Path) -> None:
    """Replay of both file v0.10.3 failures: a second Configure is accepted (lifecycle.out-of-order), and a second
    Teardown closes the file again and fails (teardown.idempotent)."""
    path = tmp_path / "records.jsonl"
    destination = standalone_registration([str(build("upstream14-file"))]).factory()
    try:
        destination.configure({"path": str(path)})
        destination.configure({"path": str(path)})  # returned normally: LifecycleError was due
        destination.open()
        assert destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))]) == 1
        destination.teardown()
        with pytest.raises(PluginCallError, match=f"Teardown failed with status UNKNOWN: close {path}: file already "
                                                  "closed"):
            destination.teardown()
    finally:
        destination.close()
    assert len(path.read_bytes().splitlines()) == 1


def test_log_connector_v0_7_3_accepts_any_call_order(tmp_path: Path) -> None:
    """Replay of the log v0.7.3 failure (lifecycle.out-of-order): Open before Configure returns normally, and so do
    a second Configure and a Write after Teardown (the record is logged: read-back holds it)."""
    import tests.conduit_v014 as v014

    registration = v014.upstream14_log
    config = {"message": str(tmp_path)}
    destination = registration.factory()
    try:
        destination.open()  # returned normally: LifecycleError was due
        destination.configure(config)
        destination.configure(config)  # returned normally
        destination.open()
        destination.teardown()
        assert destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))]) == 1
        assert registration.read_back(config) == {b"a": b"v"}
    finally:
        destination.close()


def test_the_file_connector_v0_10_3_stores_a_large_record(tmp_path: Path) -> None:
    """write.large-payload passes on v0.10.3 where v0.10.1 was "not applicable": SDK v0.14.1 raises gRPC's receive
    limit to what the driver sets (as Conduit v0.14 does), so a 5 MiB record is acknowledged and stored."""
    path = tmp_path / "records.jsonl"
    payload = bytes(range(256)) * (5 * 4096)
    destination = standalone_registration([str(build("upstream14-file"))]).factory()
    try:
        destination.configure({"path": str(path)})
        destination.open()
        assert destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(payload)))]) \
            == 1
        destination.teardown()
    finally:
        destination.close()
    assert os.path.getsize(path) > len(payload)  # one JSON line holding it (base64)
