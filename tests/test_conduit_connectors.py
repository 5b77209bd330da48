"""The suite against real Conduit connectors: Python SDK destinations both ways, our Go destinations (the docs
page as written, and fixed) and the upstream file connector; plus pins of what upstream code does."""

import sys
from pathlib import Path

import pytest

from conformance.contract.clauses import BACKEND, CLAUSES, ENGINE
from harness import LifecycleError, RawData, Record, StructuredData
from harness.conduit.adapter import PluginCallError, StandaloneDestination
from harness.conduit.plugin_process import PluginError
from harness.records import Change
from tests.go_connectors import build
from tests.go_plugins import stop
from tests.suite_runs import GO_FIXED, GO_SEED, REPO_ROOT, UPSTREAM, SuiteRun, run_suite, shared_run

# isort: split
import conduit._grpc  # noqa: F401,E402

SDK_PATHS = ("tests.conduit_connectors:sdk_file", "tests.conduit_connectors:sdk_file_standalone")
SDK_BROKEN = ("tests.conduit_connectors:sdk_broken", "tests.conduit_connectors:sdk_broken_standalone")


# --- Python SDK destinations -----------------------------------------------------------------------------------

# (open.unwritable and fault.* are checked on the connector's process too, through the FUSE fault filesystem.)
STANDALONE_CANNOT = {"write.empty-batch", "write.large-payload", "ack.in-order"}
# Clauses that need a Conduit engine, which these runs do not give (no --conformance-conduit): "not checked".
# And those that need a declared backend (a server over TCP), which none of these has: "not checked" too.
ENGINE_CLAUSES = {c for c, clause in CLAUSES.items() if ENGINE in clause.needs or BACKEND in clause.needs}
# ack() is the adapter's answer in every state (adapter_answers), so the "ack when ..." parts of
# lifecycle.out-of-order are not the connector's: the clause passes on the rest, naming those parts.
ADAPTER_ANSWERS_ACK: set[str] = set()


@pytest.fixture(scope="module")
def sdk_in_process_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """The suite over the SDK file destination in-process (its own run, so xdist runs it beside the standalone one)."""
    return shared_run(tmp_path_factory, worker_id, "sdk-in-process", [SDK_PATHS[0]])


@pytest.fixture(scope="module")
def sdk_standalone_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """The suite over the SDK file destination served over gRPC, a connector process per example: half the quick
    profile's examples, as each starts the Python SDK (importing it is most of a start) a few times."""
    return shared_run(tmp_path_factory, worker_id, "sdk-standalone", [SDK_PATHS[1]], max_examples=6)


def test_sdk_destination_passes_every_clause_in_process(sdk_in_process_run: SuiteRun) -> None:
    """The SDK file destination passes every clause in-process (ack has no SDK counterpart, so is skipped)."""
    run = sdk_in_process_run
    in_process = run.verdicts(SDK_PATHS[0])
    assert {c for c, s in in_process.items() if s != "passed"} == {"ack.in-order"} | ADAPTER_ANSWERS_ACK | \
        ENGINE_CLAUSES, run.output[-6000:]
    assert run.ret == 0
    assert "path: Conduit Python SDK 0.1.0.dev1, in-process: tests.conduit_sdk.file_destination" in run.output


def test_sdk_destination_has_the_same_verdicts_standalone(sdk_in_process_run: SuiteRun,
                                                          sdk_standalone_run: SuiteRun) -> None:
    """Standalone, the same destination gets the in-process verdicts but for what a process cannot be checked on,
    and out-of-order is checked on what the connector answers, naming the adapter's part."""
    run = sdk_standalone_run
    standalone = run.verdicts(SDK_PATHS[1])
    assert {c for c, s in standalone.items() if s != "passed"} == STANDALONE_CANNOT | ADAPTER_ANSWERS_ACK | \
        ENGINE_CLAUSES, run.output[-6000:]
    in_process = sdk_in_process_run.verdicts(SDK_PATHS[0])
    assert {c: s for c, s in standalone.items() if c not in STANDALONE_CANNOT} == \
        {c: s for c, s in in_process.items() if c not in STANDALONE_CANNOT}
    assert "part(s) answered by an adapter: ack when new" in run.output
    assert run.ret == 0
    assert "path: standalone over gRPC (plugin protocol v2): sdk-file-destination v0.1.0 by conformance tests" \
        in run.output


def test_sdk_destination_with_wrong_accounting_fails_both_ways(tmp_path: Path) -> None:
    """BatchWriteError claiming the failed record as written fails write.invalid-key-count in-process and over gRPC."""
    run = run_suite(tmp_path, *SDK_BROKEN, args=("-k", "invalid_key or after_write_error"), timeout=1800)
    for spec in SDK_BROKEN:
        assert "write.invalid-key-count" in run.with_status(spec, "failed"), run.output[-6000:]
    assert "so WriteError(written=0) was due" in run.output or "read-back after a WriteError at index" in run.output
    assert "Replay it:" in run.output


# --- Go: our connectors and upstream's ----------------------------------------------------------------------------


# go_run: tests/conftest.py (test_conduit_v013 reads it too).


GO_SKIPPED = {"ack.in-order"}
# Not applicable, naming conduit-connector-sdk v0.12.0 (read from the binary's build info, conduit.buildinfo); its
# panic on Run before Open is answered by the adapter, so lifecycle.out-of-order is checked on the rest and passes.
GO_NOT_APPLICABLE = {"write.empty-batch", "write.large-payload"}
GO_NOT_CHECKED = ENGINE_CLAUSES  # open.unwritable and fault.* reach the connector through the FUSE filesystem


def test_fixed_go_destination_passes_every_clause_it_can_be_checked_on(go_run: SuiteRun) -> None:
    """The docs page's destination with its flaws fixed passes; the rest is the protocol's or the Go SDK's."""
    verdicts = go_run.verdicts(GO_FIXED)
    assert {c for c, s in verdicts.items() if s == "skipped"} == GO_SKIPPED
    assert {c for c, s in verdicts.items() if s == "not applicable"} == GO_NOT_APPLICABLE
    assert {c for c, s in verdicts.items() if s == "not checked"} == GO_NOT_CHECKED
    assert set(verdicts.values()) <= {"passed", "skipped", "not checked", "not applicable"}, go_run.output[-6000:]


def test_seed_go_destination_fails_what_the_docs_page_gets_wrong(go_run: SuiteRun) -> None:
    """As written: keys joined unchecked onto the directory, Payload.After.Bytes() on deletes, Open on a file."""
    failed = go_run.with_status(GO_SEED, "failed")
    assert {"safety.confined", "safety.no-symlink-follow", "open.not-a-directory", "write.round-trip"} <= failed
    assert "write() created, changed or removed files outside the configured directory" in go_run.output
    # The delete panic, with the line of the docs page's Write that calls After.Bytes() on a nil After.
    assert "panic: runtime error: invalid memory address or nil pointer dereference" in go_run.output
    assert "conformance.test/connectors/seed/destination.go" in go_run.output
    assert "Replay it:" in go_run.output


# With path_param="path" (the one file it appends to), open.*, fault.* (on the FUSE mount) and safety.* apply.
UPSTREAM_FAILED = {
    "lifecycle.out-of-order", "teardown.idempotent",
    # Open never makes the file's missing parent.
    "open.creates-directory",
    # A write that fails inside a record leaves its first bytes in the file (tests/test_conduit_file_faults.py).
    "fault.disk-full", "fault.io-error",
}
# The file is made by Open, so no name a write creates to plant a symlink at; no invalid key to recover from.
UPSTREAM_NOT_CHECKED = ENGINE_CLAUSES | {"safety.no-symlink-follow", "write.recovers"}


def test_upstream_file_connector_findings_are_pinned(go_run: SuiteRun) -> None:
    """conduit-connector-file v0.9.0: call order (a second Configure, and Configure and Open after Teardown, are
    accepted), a second Teardown (it closes its file twice, which fails: so teardown.idempotent fails, also when
    lifecycle.valid-orders' walk tears down twice), a missing parent directory, and half a record left in the file
    when a write fails inside it. A parent that is no directory is refused by Configure when it is there already and
    by Open when it turns up after Configure (open.not-a-directory passes, and a failed open is reached)."""
    verdicts = go_run.verdicts(UPSTREAM)
    failed = go_run.with_status(UPSTREAM, "failed")
    # A walk of lifecycle.valid-orders that tears down twice fails teardown.idempotent, the clause it breaks.
    assert failed == UPSTREAM_FAILED, go_run.output[-6000:]
    assert go_run.with_status(UPSTREAM, "not checked") == UPSTREAM_NOT_CHECKED, go_run.output[-6000:]
    for clause in ("write.round-trip", "teardown.keeps-data", "configure.unknown-key", "configure.required",
                   "lifecycle.valid-orders", "open.keeps-existing", "open.unwritable", "safety.confined",
                   "open.not-a-directory", "teardown.any-state"):
        assert verdicts[clause] == "passed", clause
    assert "configure() is forbidden in state 'configured', so LifecycleError was due, but it returned normally" \
        in go_run.output
    # Found since the process outlives Teardown (before, the driver itself answered the second teardown).
    assert "a second teardown() raised PluginCallError: Teardown failed with status UNKNOWN: close " in go_run.output
    assert "records.jsonl: file already closed" in go_run.output
    assert "configure() is forbidden in state 'torn down', so LifecycleError was due, but it returned normally" \
        in go_run.output
    assert "records.jsonl ends in half a line (no newline after it)" in go_run.output
    evidence = go_run.report["destinations"][UPSTREAM]["clauses"]
    assert {"refused: regular file", "refused at configure: regular file"} <= set(
        evidence["open.not-a-directory"]["evidence"])
    assert evidence["teardown.any-state"]["evidence"].get("torn down after a failed open")


def test_fixed_go_destination_guards_the_calls_the_sdk_lets_through(tmp_path: Path) -> None:
    """The connector's own guard, call by call (the suite answers write-before-open itself: the SDK panics first)."""
    destination = StandaloneDestination([str(build("fixed"))])
    try:
        with pytest.raises(LifecycleError, match="Open is not allowed"):
            destination.open()  # before configure
        destination.configure({"directory": str(tmp_path / "out")})
        with pytest.raises(LifecycleError, match="Configure is not allowed"):
            destination.configure({"directory": str(tmp_path / "out")})
        destination.open()
        with pytest.raises(LifecycleError, match="Open is not allowed"):
            destination.open()
        assert destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))]) == 1
    finally:
        stop(destination)
    assert (tmp_path / "out" / "a").read_bytes() == b"v"


def test_fixed_go_destination_answers_every_call_after_teardown_itself(tmp_path: Path) -> None:
    """The process outlives Teardown, so what follows reaches the connector: its guard refuses Configure, Open and
    Write after Teardown, a second Teardown is its own no-op, and Specify still answers."""
    destination = StandaloneDestination([str(build("fixed"))])
    try:
        parameters = destination.parameters()
        destination.configure({"directory": str(tmp_path / "out")})
        destination.open()
        destination.teardown()
        destination.teardown()
        refused = 'is not allowed in state "torn down"'
        with pytest.raises(LifecycleError, match=f"Configure {refused}"):
            destination.configure({"directory": str(tmp_path / "out")})
        with pytest.raises(LifecycleError, match=f"Open {refused}"):
            destination.open()
        with pytest.raises(LifecycleError, match=f"record 0 nacked: lifecycle error: Write {refused}"):
            destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))])
        destination.teardown()
        assert destination.parameters() == parameters
        assert set(destination.adapter_answers()) == {"ack", "write([])"}
    finally:
        destination.close()
    assert not (tmp_path / "out" / "a").exists()


def test_upstream_file_connector_fails_a_second_teardown(tmp_path: Path) -> None:
    """Upstream pin (teardown.idempotent): conduit-connector-file v0.9.0 closes its file in Teardown and again in a
    second Teardown, which fails; after Teardown it also takes Configure, Open and Write again."""
    path = tmp_path / "records.jsonl"
    destination = StandaloneDestination([str(build("upstream-file"))])
    try:
        destination.configure({"path": str(path)})
        destination.open()
        destination.teardown()
        with pytest.raises(PluginCallError, match=f"Teardown failed with status UNKNOWN: close {path}: file already "
                                                  f"closed"):
            destination.teardown()
        destination.configure({"path": str(path)})  # forbidden after teardown, accepted
        destination.open()
        assert destination.write([Record(position=b"1", key=RawData(b"a"), payload=Change(after=RawData(b"v")))]) == 1
        destination.teardown()
    finally:
        destination.close()
    assert len(path.read_bytes().splitlines()) == 1


def test_upstream_file_connector_does_not_create_a_missing_parent(tmp_path: Path) -> None:
    """Upstream pin: conduit-connector-file v0.9.0's Open fails when the file's directory does not exist."""
    destination = StandaloneDestination([str(build("upstream-file"))])
    try:
        destination.configure({"path": str(tmp_path / "missing" / "records.jsonl")})
        with pytest.raises(PluginCallError, match="no such file or directory"):
            destination.open()
    finally:
        stop(destination)


def test_python_sdk_refuses_a_large_message_too(tmp_path: Path) -> None:
    """Upstream pin: the Python SDK's server keeps gRPC's 4 MiB receive limit (the reason for the skip)."""
    destination = StandaloneDestination([sys.executable, str(REPO_ROOT / "tests" / "conduit_sdk" / "serve_file.py")])
    try:
        destination.configure({"directory": str(tmp_path / "out")})
        destination.open()
        with pytest.raises(PluginError, match="RESOURCE_EXHAUSTED"):
            destination.write([Record(position=b"1", key=RawData(b"a"),
                                      payload=Change(after=RawData(b"\0" * (4 << 20))))])
    finally:
        stop(destination)


def test_go_structured_data_orders_keys_by_their_encoded_form(tmp_path: Path) -> None:
    """Upstream pin: conduit-commons' StructuredData.Bytes() (goccy/go-json) sorts keys by their encoded form,
    quotes included: why protocol payload keys leave out space, !, " and backslash."""
    values = {b"a": StructuredData({"0": None, '"': None}), b"b": StructuredData({"": None, "!": None})}
    destination = StandaloneDestination([str(build("fixed"))])
    try:
        destination.configure({"directory": str(tmp_path / "out")})
        destination.open()
        destination.write([Record(position=b"%d" % i, key=RawData(key), payload=Change(after=value))
                           for i, (key, value) in enumerate(values.items())])
    finally:
        stop(destination)
    assert (tmp_path / "out" / "a").read_bytes() == b'{"0":null,"\\"":null}'
    assert values[b"a"].bytes() == b'{"\\"":null,"0":null}'  # canonical JSON: sorted by the keys themselves
    assert (tmp_path / "out" / "b").read_bytes() == b'{"!":null,"":null}'
    assert values[b"b"].bytes() == b'{"":null,"!":null}'
