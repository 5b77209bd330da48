"""Conduit v0.13.3's world without a database: our fixed destination on Go SDK v0.13.3 against the same code on
v0.12.0, the file and log destinations built into Conduit v0.13.3, pins of what SDK v0.13.3 still forces, and
harness.conduit.buildinfo read from the real binaries."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.contract.behaviours import resolve
from harness import Behaviour, LifecycleError, RawData, Record
from harness.conduit.adapter import _LEARNED_RUN_NEEDS_OPEN, PluginCallError, StandaloneDestination, UpstreamPanic
from harness.conduit.buildinfo import BuildInfo, BuildInfoError, Module, read_build_info, reads_env, sdk_limitations
from harness.conduit.plugin_process import ConnectorProcess, PluginError
from harness.conduit.standalone import standalone_registration
from harness.conduit.wire import records_to_proto
from harness.records import Change
from tests.go_connectors import build
from tests.go_plugins import go_plugin, stop, write_batch
from tests.sdk_releases import ENGINE, NO_BACKEND, SDK, SDK_RELEASES, SdkRelease
from tests.suite_runs import NO_LOCATION, SuiteRun, dump, expected, reasons, shared_run, table

# isort: split
from connector.v2 import destination_pb2, destination_pb2_grpc  # noqa: E402

GO_FIXED13 = "tests.conduit_v013:go_fixed13"
GO_FIXED14 = "tests.conduit_connectors:go_fixed14"
FILE13 = "tests.conduit_v013:upstream13_file"
LOG13 = "tests.conduit_v013:upstream13_log"
WRITE_BEFORE_OPEN = Behaviour.WRITE_BEFORE_OPEN_ANSWERED_BY_ADAPTER
EMPTY_BATCH_PANICS = Behaviour.EMPTY_BATCH_PANICS
LARGE_MESSAGE_REFUSED = Behaviour.LARGE_MESSAGE_REFUSED


@pytest.fixture(scope="module")
def v013_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """One suite run over our fixed destination on SDK v0.13.3 and Conduit v0.13.3's file and log destinations (the
    fixed destination on v0.12.0 is in test_conduit_connectors' go_run)."""
    return shared_run(tmp_path_factory, worker_id, "v013-run", (GO_FIXED13, FILE13, LOG13),
                      ("fixed13", "upstream13-file", "upstream13-log"))


@pytest.fixture(scope="module")
def v014_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """One suite run over our fixed destination on SDK v0.14.2, registered with nothing but its command and config
    (the docs' standalone snippet)."""
    return shared_run(tmp_path_factory, worker_id, "v014-run", (GO_FIXED14,), ("fixed14",))


@pytest.fixture(params=SDK_RELEASES, ids=lambda release: f"sdk-{release.version}")
def sdk_release(request: pytest.FixtureRequest) -> SdkRelease:
    """Each Go SDK release our fixed destination is built on (tests/sdk_releases.py)."""
    release: SdkRelease = request.param
    return release


# --- our fixed destination on each SDK release ------------------------------------------------------------------------

def test_fixed_destination_gets_its_releases_verdicts(sdk_release: SdkRelease, request: pytest.FixtureRequest) -> None:
    """tests/go/fixed (SDK v0.12.0), fixed13 (v0.13.3: config parsed by the SDK, connector.yaml from specgen) and
    fixed14 (v0.14.2) get their release's verdict table; what the SDK's own adapter answers is "not applicable" as
    upstream, named by module@release, file and line, the write-before-open parts of call order among it."""
    run: SuiteRun = request.getfixturevalue(sdk_release.run)
    spec, version = sdk_release.spec, sdk_release.version
    assert table(run, spec) == sdk_release.table, dump(run, spec)
    why = reasons(run, spec)
    assert why["write.empty-batch"].startswith(f"upstream {SDK}@{version} destination.go:202: "), why
    if sdk_release.refuses_large_message:
        assert why["write.large-payload"].startswith(f"upstream {SDK}@{version} serve.go: "), why
    # The write-before-open parts are the adapter's answer (the SDK would panic); the rest is the connector's.
    assert f"not applicable: write() is answered by the adapter, not the connector: upstream {SDK}@{version} " \
           "destination.go:189: runtime error: invalid memory address" in why["lifecycle.out-of-order"], why
    assert "write when new" in why["lifecycle.out-of-order"]


def test_fixed_destination_on_sdk_v0_14_2_passes_and_names_its_release_as_measured(v014_run: SuiteRun) -> None:
    """tests/go/fixed14 (SDK v0.14.2, a release the limits were not first measured on) exits 0, a 4 MiB payload
    round-tripping; the header and the JSON report name the SDK release and that the suite has measured it."""
    spec = GO_FIXED14
    assert v014_run.ret == 0, v014_run.output[-6000:]
    built = v014_run.report["destinations"][spec]["built_with"]
    assert built["sdk_module"] == SDK and built["sdk_version"] == "v0.14.2" and built["sdk_measured"] is True
    assert f"built on {SDK}@v0.14.2 (measured by this suite)" in v014_run.output


def test_both_sdk_versions_declare_the_same_parameters() -> None:
    """The v0.13 port's connector.yaml (specgen) declares the parameters v0.12.0's Parameters() and middleware did,
    with the same types; SDK v0.13.3 moved sdk.record.format's inclusion check into Validate and added
    greater-than -1 validations to the batch and rate parameters."""
    params = {}
    for name in ("fixed", "fixed13"):
        destination = StandaloneDestination([str(build(name))])
        try:
            params[name] = destination.parameters()
        finally:
            destination.close()
    assert set(params["fixed13"]) == set(params["fixed"])
    assert {n: p.type for n, p in params["fixed13"].items()} == {n: p.type for n, p in params["fixed"].items()}
    assert params["fixed13"]["directory"].validations == params["fixed"]["directory"].validations
    assert params["fixed"]["sdk.record.format"].validations and not params["fixed13"]["sdk.record.format"].validations


# --- SDK v0.13.3: what it still forces (each pin is one reason in harness.conduit.buildinfo) -----------------------


def test_sdk_v0_13_3_default_middleware_panics_on_run_before_configure() -> None:
    """Upstream pin: after an Open the adapter takes Run batches, but the default middleware's schema-extraction
    settings are nil until a Configure, so a batch dies there (why write waits for a configured Open on v0.13.3)."""
    plugin, stub = go_plugin("upstream13-file")
    try:
        with pytest.raises(Exception, match="no such file or directory"):
            stub.Open(destination_pb2.Destination.Open.Request())
        write_batch(stub, [Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        plugin.process.wait(timeout=10)
        assert "panic: runtime error: invalid memory address or nil pointer dereference" in plugin.stderr_text()
        assert "conduit-connector-sdk@v0.13.3/destination_middleware.go:448" in plugin.stderr_text()
    finally:
        plugin.kill()


def test_sdk_v0_13_3_loses_the_run_stream_on_open(tmp_path: Path) -> None:
    """Upstream pin: every Open makes the adapter a new writeStrategy, which has no stream, so the next batch on a
    Run stream opened before it dies (a nil stream at the ack); Conduit never sends Open during a Run, and the
    driver ends its Run stream after an Open (harness.conduit.buildinfo's resets_run)."""
    plugin, stub = go_plugin("fixed13")
    requests: queue.Queue[Any] = queue.Queue()
    try:
        stub.Configure(destination_pb2.Destination.Configure.Request(config={"directory": str(tmp_path / "d")}))
        stub.Open(destination_pb2.Destination.Open.Request())
        responses = stub.Run(iter(requests.get, None), timeout=30)
        requests.put(destination_pb2.Destination.Run.Request(records=records_to_proto(
            [Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])))
        assert next(responses).acks[0].position == b"1"
        with pytest.raises(Exception, match="Open is not allowed"):
            stub.Open(destination_pb2.Destination.Open.Request())  # refused by the connector, after the SDK's reset
        requests.put(destination_pb2.Destination.Run.Request(records=records_to_proto(
            [Record(position=b"2", key=RawData(b"b"), payload=Change(after=RawData(b"w")))])))
        plugin.process.wait(timeout=10)
        assert "conduit-connector-sdk@v0.13.3/destination.go:228" in plugin.stderr_text()
    finally:
        requests.put(None)
        plugin.kill()


# --- every SDK release: upstream pins shared by all ----------------------------------------------------------------


def test_the_go_sdk_panics_on_run_before_open(sdk_release: SdkRelease, tmp_path: Path) -> None:
    """Upstream pin: the adapter sets up Run in Open, so a Run batch before Open dies on a nil writeStrategy."""
    plugin, stub = go_plugin(sdk_release.connector)
    try:
        stub.Configure(destination_pb2.Destination.Configure.Request(config={"directory": str(tmp_path / "d")}))
        write_batch(stub, [Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        plugin.process.wait(timeout=10)
        assert plugin.process.returncode == 2
        assert "panic: runtime error: invalid memory address or nil pointer dereference" in plugin.stderr_text()
        assert sdk_release.run_before_open_site in plugin.stderr_text()
    finally:
        plugin.kill()


def test_the_go_sdk_panics_on_an_empty_batch(sdk_release: SdkRelease, tmp_path: Path) -> None:
    """Upstream pin: the adapter indexes the last record of every batch, so an empty Run batch kills it."""
    panic_site = sdk_release.empty_batch_site
    plugin, stub = go_plugin(sdk_release.connector)
    try:
        stub.Configure(destination_pb2.Destination.Configure.Request(config={"directory": str(tmp_path / "d")}))
        stub.Open(destination_pb2.Destination.Open.Request())
        write_batch(stub, [])
        plugin.process.wait(timeout=10)
        assert "panic: runtime error: index out of range [-1]" in plugin.stderr_text()
        assert panic_site is None or panic_site in plugin.stderr_text()
    finally:
        plugin.kill()


@pytest.mark.parametrize("sdk_release", [r for r in SDK_RELEASES if r.refuses_large_message], indirect=True,
                         ids=lambda release: f"sdk-{release.version}")
def test_the_go_sdk_refuses_a_large_message(sdk_release: SdkRelease, tmp_path: Path) -> None:
    """Upstream pin: sdk.Serve starts the gRPC server without options, so a 4 MiB payload exceeds its default
    receive limit (the reason for the skip); v0.14.2 reads the limit the driver sets (its own pin below)."""
    plugin, stub = go_plugin(sdk_release.connector)
    try:
        stub.Configure(destination_pb2.Destination.Configure.Request(config={"directory": str(tmp_path / "d")}))
        stub.Open(destination_pb2.Destination.Open.Request())
        answer = write_batch(stub, [Record(position=b"1", key=RawData(b"a"),
                                           payload=Change(after=RawData(b"\0" * (4 << 20))))])
        assert len(answer) == 1 and "RESOURCE_EXHAUSTED" in str(answer[0])
        assert plugin.alive()
    finally:
        plugin.kill()


def test_forbidden_open_and_configure_during_a_run_reach_the_connector_and_nothing_dies(sdk_release: SdkRelease,
                                                                                        tmp_path: Path) -> None:
    """The driver ends its Run stream after an RPC that makes the SDK set Run up anew (an Open; on v0.12.0 a
    Configure too), so the connector's guard answers them and the writes around them, and Stop names a position the
    SDK saw (found by lifecycle.out-of-order's state machine: a panic on v0.13.3, a minute's wait in Stop on both)."""
    destination = standalone_registration([str(build(sdk_release.connector))]).factory()
    batch = [Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))]
    try:
        destination.configure({"directory": str(tmp_path / "out")})
        destination.open()
        assert destination.write(batch) == 1
        with pytest.raises(LifecycleError, match="Open is not allowed"):
            destination.open()
        assert destination.write([r.model_copy(update={"position": b"2"}) for r in batch]) == 1
        with pytest.raises(LifecycleError, match="Open is not allowed"):
            destination.open()
        with pytest.raises(LifecycleError, match="Configure is not allowed"):
            destination.configure({"directory": str(tmp_path / "out")})
        destination.teardown()
        assert destination.plugin.alive()
    finally:
        destination.close()
    assert (tmp_path / "out" / "a").read_bytes() == b"v"


# --- SDK v0.14.2: the same adapter (destination.go is byte-identical to v0.13.3's), a receive limit it reads ------


@pytest.mark.parametrize(("limit", "round_trips"), [(None, True), ("", False)], ids=["as-conduit-sets-it", "unset"])
def test_sdk_v0_14_2_takes_a_large_message_when_the_receive_limit_is_raised(tmp_path: Path, limit: str | None,
                                                                            round_trips: bool) -> None:
    """Upstream pin: v0.14.2 reads CONDUIT_CONNECTOR_MAX_RECEIVE_RECORD_SIZE (which the driver sets, as Conduit
    v0.14 does): a 5 MiB record round-trips; unset (not a number), gRPC's 4 MiB default refuses it."""
    env = None if limit is None else {"CONDUIT_CONNECTOR_MAX_RECEIVE_RECORD_SIZE": limit}
    plugin = ConnectorProcess([str(build("fixed14"))], env=env)
    stub = destination_pb2_grpc.DestinationPluginStub(plugin.channel)
    payload = bytes(range(256)) * (5 * 4096)  # 5 MiB, every byte value
    try:
        stub.Configure(destination_pb2.Destination.Configure.Request(config={"directory": str(tmp_path / "d")}))
        stub.Open(destination_pb2.Destination.Open.Request())
        answer = write_batch(stub, [Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(payload)))])
        if round_trips:
            assert [ack.position for ack in answer] == [b"1"] and not answer[0].error
            assert (tmp_path / "d" / "a").read_bytes() == payload
        else:
            assert len(answer) == 1 and "RESOURCE_EXHAUSTED" in str(answer[0])
        assert plugin.alive()
    finally:
        plugin.kill()


def test_a_panic_in_the_sdks_own_code_is_upstream_on_any_release(tmp_path: Path) -> None:
    """Without the predicted limit (as for an SDK release the suite has not measured), the write before Open is
    sent: the SDK's adapter dies before any connector code runs, so the call and every later one are the adapter's,
    named by module, release, file and line; the death is charged to write(), the call it happened in."""
    destination = StandaloneDestination([str(build("fixed14"))])
    try:
        destination.configure({"directory": str(tmp_path / "out")})
        with pytest.raises(UpstreamPanic, match=r"exited with code 2 in write\(\)") as raised:
            destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        assert raised.value.origin.describe() == (f"upstream {SDK}@v0.14.2 destination.go:189: runtime error: "
                                                  "invalid memory address or nil pointer dereference")
        answers = destination.adapter_answers()
        assert set(answers) == {"parameters", "configure", "open", "write", "ack", "teardown"}
        assert all(f"upstream {SDK}@v0.14.2 destination.go:189" in reason for reason in answers.values())
        with pytest.raises(UpstreamPanic, match=r"exited with code 2 after write\(\)"):
            destination.parameters()  # found dead before it was sent: the write is blamed, not parameters()
    finally:
        destination.close()
    # Learned for this executable: the next destination holds such a write back instead of losing its process.
    again = StandaloneDestination([str(build("fixed14"))])
    try:
        again.configure({"directory": str(tmp_path / "out")})
        with pytest.raises(LifecycleError, match=r"is not sent: upstream .*destination.go:189.*\(seen in this run\)"):
            again.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        assert again.plugin.alive()
    finally:
        again.close()
        _LEARNED_RUN_NEEDS_OPEN.clear()  # what one test learned stays out of the others


def test_a_panic_in_the_connectors_own_code_stays_its_failure(tmp_path: Path) -> None:
    """The same binary panicking in its own guard (a write after teardown, which the SDK passes on) is the
    connector's: the call it died in is not the adapter's answer, and the death names the connector's line."""
    destination = StandaloneDestination([str(build("fixed14"))], env={"FIXED14_PANIC_IN_GUARD": "1"})
    try:
        destination.configure({"directory": str(tmp_path / "out")})
        destination.open()
        destination.teardown()
        with pytest.raises(PluginError, match=r"(?s)exited with code 2 in write\(\).*lifecycle error") as raised:
            destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        assert not isinstance(raised.value, UpstreamPanic)
        assert "write" not in destination.adapter_answers()
        assert "parameters" in destination.adapter_answers()  # later calls cannot be sent
    finally:
        destination.close()


def test_seed_without_a_guard_still_fails_its_call_order(tmp_path: Path) -> None:
    """The docs page's connector (no guard) accepts what the lifecycle forbids: its own answer, nothing upstream."""
    destination = standalone_registration([str(build("seed"))]).factory()
    try:
        destination.configure({"directory": str(tmp_path / "out")})
        destination.configure({"directory": str(tmp_path / "out")})  # returned normally: LifecycleError was due
        destination.open()
        destination.open()  # returned normally again
        assert destination.plugin.alive() and not destination.adapter_answers().keys() & {"open", "configure"}
    finally:
        destination.close()


# --- the SDK's limits, applied from the binary's build info ----------------------------------------------------------


def test_readme_snippet_for_a_correct_sdk_v0_12_0_connector_gets_the_limits_from_its_build_info(tmp_path: Path) -> None:
    """standalone_registration with nothing but the command (the README's snippet) reads the SDK version from the
    binary: its limits are "not applicable" with the version, and write-before-open is answered, not sent."""
    registration = standalone_registration([str(build("fixed"))], config={"directory": "{tmp}/out"})
    assert set(registration.behaviours) == {WRITE_BEFORE_OPEN, EMPTY_BATCH_PANICS, LARGE_MESSAGE_REFUSED,
                                            Behaviour.EMPTY_BATCH_NOT_SENT, Behaviour.NO_ACK_FROM_PIPELINE}
    seen = resolve(registration)  # what the suite makes of them
    assert "lifecycle.out-of-order" not in seen.skip and "lifecycle.out-of-order" not in seen.not_applicable
    for clause in ("write.empty-batch", "write.large-payload"):
        assert clause not in seen.skip
        assert seen.not_applicable[clause].startswith(f"upstream {SDK}@v0.12.0 ")
    destination = registration.factory()
    try:
        assert "write" in destination.adapter_answers()
        with pytest.raises(LifecycleError,
                           match=f"adapter: write\\(\\) in state new is not sent: upstream {SDK}@v0.12.0"):
            destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        destination.configure({"directory": str(tmp_path / "out")})
        with pytest.raises(LifecycleError, match="in state configured is not sent"):
            destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        destination.open()
        assert "write" not in destination.adapter_answers()
        assert destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))]) == 1
        assert destination.plugin.alive()  # nothing reached the SDK before Open, so nothing panicked
    finally:
        stop(destination)


def test_a_connector_that_is_not_a_go_binary_gets_no_sdk_limits() -> None:
    """A Python connector (or anything without Go build info) keeps the protocol's own reasons, and every write is
    sent."""
    registration = standalone_registration([sys.executable, "tests/conduit_sdk/serve_file.py"])
    assert set(registration.behaviours) == {Behaviour.EMPTY_BATCH_NOT_SENT, Behaviour.LARGE_MESSAGE_MAY_BE_REFUSED,
                                            Behaviour.NO_ACK_FROM_PIPELINE}
    seen = resolve(registration)
    assert not seen.not_applicable and "write.empty-batch" in seen.skip


# --- harness.conduit.buildinfo against the real binaries ----------------------------------------------------------

BINARIES = {
    "fixed": {SDK: "v0.12.0"},
    "fixed13": {SDK: "v0.13.3", "github.com/conduitio/conduit-commons": "v0.5.2"},
    "fixed14": {SDK: "v0.14.2", "github.com/conduitio/conduit-commons": "v0.6.0",
                "github.com/conduitio/conduit-connector-protocol": "v0.9.4"},
    "upstream-file": {SDK: "v0.12.0", "github.com/conduitio/conduit-connector-file": "v0.9.0"},
    "upstream13-file": {SDK: "v0.13.3", "github.com/conduitio/conduit-connector-file": "v0.10.1"},
    "upstream13-log": {SDK: "v0.13.3", "github.com/conduitio/conduit-connector-log": "v0.7.1"},
    "upstream13-postgres": {SDK: "v0.13.3", "github.com/conduitio/conduit-connector-postgres": "v0.11.2",
                            "github.com/conduitio/conduit-connector-protocol": "v0.9.2"},
}


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_build_info_is_read_as_go_version_m_prints_it(name: str) -> None:
    """Our parser reads the module versions of every connector we build, and agrees line for line with
    `go version -m` (the tests build with Go, so it is here to compare with)."""
    binary = build(name)
    info = read_build_info(binary)
    for path, version in BINARIES[name].items():
        module = info.module(path)
        assert module is not None and module.version == version, (path, module)
    assert info.go_version.startswith("go") and info.path and info.main is not None
    go = shutil.which("go")
    assert go is not None
    printed = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True, timeout=60).stdout
    assert [f"{binary}: {info.go_version}", *info.lines()] == printed.splitlines()
    variable = "CONDUIT_CONNECTOR_MAX_RECEIVE_RECORD_SIZE"
    reads = {variable} if reads_env(binary, variable) else set()
    assert set(sdk_limitations(info, reads=reads)) == ({WRITE_BEFORE_OPEN, EMPTY_BATCH_PANICS} if
                                                       BINARIES[name][SDK] == "v0.14.2" else
                                                       {WRITE_BEFORE_OPEN, EMPTY_BATCH_PANICS, LARGE_MESSAGE_REFUSED})
    assert bool(reads) == (BINARIES[name][SDK] == "v0.14.2")  # only SDK v0.14 reads the receive limit


def test_build_info_refuses_what_is_not_a_go_binary(tmp_path: Path) -> None:
    """A Python interpreter, a script, an empty file and a cut blob each raise BuildInfoError saying why."""
    script = tmp_path / "connector.py"
    script.write_text("print('hi')\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    cut = tmp_path / "cut"
    cut.write_bytes(b"\x00" * 32 + b"\xff Go buildinf:\x08\x02" + b"\x00" * 16 + b"\xff\xff")  # a length cut off
    for path in (Path(sys.executable).resolve(), script, empty, cut, tmp_path / "missing"):
        with pytest.raises(BuildInfoError):
            read_build_info(path)


def test_sdk_limits_are_keyed_by_behaviour_and_predicted_across_the_measured_releases() -> None:
    """A limit is predicted for every release in the range it was measured across (not only the releases measured),
    never for a pseudo-version, (devel) or a local checkout (conduit.panics tells those apart where they happen); a
    replace directive's version is the one that counts; the receive limit follows what the binary reads."""
    def info(version: str, replace: Module | None = None) -> BuildInfo:
        return BuildInfo("go1.23.2", "x/cmd", Module("x", "(devel)"), (Module(SDK, version, "", replace),))

    reads = {"CONDUIT_CONNECTOR_MAX_RECEIVE_RECORD_SIZE"}
    for version in ("v0.12.0", "v0.13.0", "v0.13.3", "v0.14.0", "v0.14.2"):
        limits = sdk_limitations(info(version), reads=reads)
        assert set(limits) == {WRITE_BEFORE_OPEN, EMPTY_BATCH_PANICS}, version
        assert limits[WRITE_BEFORE_OPEN][0].startswith(f"upstream {SDK}@{version} destination.go:189: ")
    assert set(sdk_limitations(info("v0.13.3"))) == {WRITE_BEFORE_OPEN, EMPTY_BATCH_PANICS, LARGE_MESSAGE_REFUSED}
    assert set(sdk_limitations(info("v0.15.0"))) == {LARGE_MESSAGE_REFUSED}  # a behaviour of the binary, any release
    assert sdk_limitations(info("v0.15.0"), reads=reads) == {}
    assert sdk_limitations(info("v0.13.4-0.20250101000000-abcdefabcdef"), reads=reads) == {}
    assert sdk_limitations(info("(devel)"), reads=reads) == {}
    assert set(sdk_limitations(info("v0.15.0", Module(SDK, "v0.13.3")), reads=reads)) == {
        WRITE_BEFORE_OPEN, EMPTY_BATCH_PANICS}
    assert sdk_limitations(info("v0.12.0", Module("../sdk", "")), reads=reads) == {}  # a local checkout: unknown code
    assert sdk_limitations(BuildInfo("go1.23.2")) == {}


# --- Conduit v0.13.3's built-in file and log destinations ------------------------------------------------------------

# Neither names a directory or a file path parameter, and their logs have no invalid keys: what cannot be checked.
LOG_LIKE = {
    "not applicable": ["write.empty-batch", "write.large-payload"],
    # write.recovers: with no invalid key there is no WriteError to recover from but an injected fault.
    "not checked": [*NO_LOCATION, *ENGINE, *NO_BACKEND, "write.recovers"],
    "skipped": ["ack.in-order", "write.invalid-key-count"],
}
# As v0.9.0 (tests/test_conduit_connectors.py): call order unguarded; a second Teardown closes the file again. With
# path_param="path": Open makes no missing parent, and a write failing inside a record leaves half of it in the file
# (tests/test_conduit_file_faults.py); a parent that is no directory is refused by Configure when it is there already
# and by Open when it turns up after Configure (open.not-a-directory and teardown.any-state pass). The file is made
# by Open, so a write creates no name to plant a symlink at.
FILE_FAILED = ["lifecycle.out-of-order", "teardown.idempotent", "open.creates-directory", "fault.disk-full",
               "fault.io-error"]
FILE13_TABLE = expected({**LOG_LIKE, "failed": FILE_FAILED,
                         "not checked": [*ENGINE, *NO_BACKEND, "write.recovers", "safety.no-symlink-follow"]})
# Call order unguarded (Open before Configure, a second Configure, Write after Teardown are all accepted). It has no
# required parameter: configure.required passes (since v1.4) as configure accepts the config without `message`.
# Its read_back sees only the driver's own connector processes, so it skips the pipeline clauses.
LOG13_TABLE = expected({**LOG_LIKE, "failed": ["lifecycle.out-of-order"],
                        "not checked": [c for c in LOG_LIKE["not checked"] if c not in ENGINE],
                        "skipped": [*LOG_LIKE["skipped"], *ENGINE]})


def test_file_connector_v0_10_1_verdicts(v013_run: SuiteRun) -> None:
    """conduit-connector-file v0.10.1 (Conduit v0.13.3's built-in file destination): v0.9.0's findings, unchanged."""
    assert table(v013_run, FILE13) == FILE13_TABLE, dump(v013_run, FILE13)
    assert "records.jsonl ends in half a line (no newline after it)" in v013_run.output
    assert "configure() is forbidden in state 'configured', so LifecycleError was due, but it returned normally" \
        in v013_run.output
    assert "records.jsonl: file already closed" in v013_run.output


def test_log_connector_v0_7_1_verdicts(v013_run: SuiteRun) -> None:
    """conduit-connector-log v0.7.1 (Conduit v0.13.3's built-in log destination): every record round-trips through
    its log lines; only the call order fails."""
    assert table(v013_run, LOG13) == LOG13_TABLE, dump(v013_run, LOG13)
    assert "open() is forbidden in state 'new', so LifecycleError was due, but it returned normally" in v013_run.output


def test_file_connector_v0_10_1_accepts_any_call_order_and_fails_a_second_teardown(tmp_path: Path) -> None:
    """Replay of both file v0.10.1 failures: a second Configure is accepted (lifecycle.out-of-order), and a second
    Teardown closes the file again and fails (teardown.idempotent)."""
    path = tmp_path / "records.jsonl"
    destination = standalone_registration([str(build("upstream13-file"))]).factory()
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


def test_log_connector_v0_7_1_accepts_any_call_order(tmp_path: Path) -> None:
    """Replay of the log v0.7.1 failure (lifecycle.out-of-order): Open before Configure returns normally, and so do
    a second Configure and a Write after Teardown (the record is logged: read-back holds it)."""
    import tests.conduit_v013 as v013

    registration = v013.upstream13_log
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
