"""The standalone driver (harness.conduit.standalone, .plugin_process): handshake, RPC mapping, connectors that
misbehave, and the warm spare process."""

import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from conformance.contract.behaviours import resolve
from harness import CallTimeout, ConfigError, Driver, LifecycleError, RawData, Record, WriteError, load_registration
from harness.behaviours import Behaviour
from harness.conduit.adapter import StandaloneDestination
from harness.conduit.plugin_process import ConnectorProcess, Handshake, PluginError
from harness.conduit.spares import discard_spares, spare_stats, waiting_spares
from harness.conduit.standalone import standalone_registration
from harness.records import Change
from tests.suite_runs import RunSuite

FAKE = [sys.executable, str(Path(__file__).parent / "fake_plugin.py")]
DEV = "conformance-dev"  # the profile of the suite runs here: their checks need few examples
SDK_FILE = [sys.executable, str(Path(__file__).parent / "conduit_sdk" / "serve_file.py")]


def batch(*keys: bytes, start: int = 0) -> list[Record]:
    """Records writing b"v" to each key, positions numbered from `start`."""
    return [Record(position=b"%d" % (start + i), key=RawData(k), payload=Change(after=RawData(b"v"))) for i, k in
            enumerate(keys)]


@pytest.mark.parametrize("line, problem", [
    ("1|2|unix|/tmp/plugin1|grpc|", None),
    ("1|2|tcp|127.0.0.1:5000|grpc|\n", None),
    ("1|1|unix|/tmp/p|grpc|", "protocol v1"),
    ("2|2|unix|/tmp/p|grpc|", "core protocol 2"),
    ("1|2|unix|/tmp/p|netrpc|", "protocol grpc"),
    ("hello", "expected a go-plugin handshake line"),
])
def test_handshake_lines_are_parsed_or_refused_by_name(line: str, problem: str | None) -> None:
    """A handshake line is parsed, or refused with what is wrong."""
    if problem is None:
        handshake = Handshake.parse(line)
        assert handshake.app == 2
        assert handshake.target in ("unix:/tmp/plugin1", "127.0.0.1:5000")
    else:
        with pytest.raises(ValueError, match=problem):
            Handshake.parse(line)


def test_connector_exiting_during_handshake_is_a_clear_failure() -> None:
    """A connector that exits before its handshake: PluginError with the exit code and its stderr."""
    with pytest.raises(PluginError, match=r"(?s)exited with code 4 before the handshake.*cannot start, exiting"):
        StandaloneDestination([*FAKE, "exit-early"])


def test_garbage_instead_of_a_handshake_is_a_clear_failure() -> None:
    """A connector printing something else: PluginError quoting what it printed (not a wait for a handshake)."""
    with pytest.raises(PluginError, match="expected a go-plugin handshake line .*not a handshake"):
        StandaloneDestination([*FAKE, "garbage"])


# The limits of the hang tests below: what they wait for never comes, so the limit only has to be long enough for a
# Python process to start (and, where it does, print its handshake) on a loaded machine.
LIMIT = 5


@pytest.mark.parametrize("mode, message", [
    ("silent", f"printed no handshake line within {LIMIT}s"),
    ("mute-server", f"did not accept a connection within {LIMIT}s"),
])
def test_connector_that_never_answers_is_a_failure_not_a_hang(mode: str, message: str) -> None:
    """No handshake, or a socket that never speaks gRPC: PluginError after the handshake timeout."""
    with pytest.raises(PluginError, match=message):
        StandaloneDestination([*FAKE, mode], handshake_timeout=LIMIT)


def test_missing_executable_is_named() -> None:
    """A command that does not exist: PluginError naming it."""
    with pytest.raises(PluginError, match="cannot start connector /nonexistent/connector"):
        StandaloneDestination(["/nonexistent/connector"])


def test_hanging_call_times_out_and_teardown_kills_the_process() -> None:
    """A Configure that never returns: the driver's per-call limit fires, and teardown ends the process."""
    registration = standalone_registration([*FAKE, "hang-configure"], config={"directory": "{tmp}"})
    driver = Driver(registration)
    driver.timeout = 1  # from here on: the factory (process start and handshake) is not what this test limits
    destination = driver.destination
    with pytest.raises(CallTimeout):
        driver.configure()
    try:
        driver.teardown()
    except Exception:
        pass  # the hung Configure may still hold the channel; what matters is the process
    driver.close()
    assert not destination.plugin.alive()


def test_connector_dying_mid_stream_is_a_failure_with_its_stderr() -> None:
    """A process that dies while a batch is in flight: PluginError with its exit code and stderr, no hang."""
    destination = StandaloneDestination([*FAKE, "die-mid-stream"])
    destination.configure({"directory": "/unused"})
    destination.open()
    with pytest.raises(PluginError, match=r"(?s)exited with code 3.*dying mid-stream"):
        destination.write(batch(b"a"))
    with pytest.raises(PluginError, match="exited with code 3"):
        destination.teardown()


def test_acks_out_of_order_are_a_protocol_failure() -> None:
    """Acks must match the batch's positions in order."""
    destination = StandaloneDestination([*FAKE, "wrong-acks"])
    try:
        destination.configure({"directory": "/unused"})
        destination.open()
        with pytest.raises(PluginError, match="acks must come in the order of the records"):
            destination.write(batch(b"a", b"b"))
    finally:
        destination.teardown()


def test_sdk_connector_lifecycle_over_grpc(tmp_path: Path) -> None:
    """A Python SDK connector served standalone: spec, config errors, writes, partial counts, teardown."""
    destination = StandaloneDestination(SDK_FILE)
    assert destination.specification.name == "sdk-file-destination"
    assert destination.parameters()["directory"].required
    with pytest.raises(ConfigError, match="directory") as err:
        destination.configure({})
    assert err.value.keys == ("directory",)
    with pytest.raises(ConfigError, match="bogus"):
        destination.configure({"directory": str(tmp_path), "bogus": "1"})
    destination.configure({"directory": str(tmp_path / "out")})
    with pytest.raises(LifecycleError):
        destination.configure({"directory": str(tmp_path / "out")})
    destination.open()
    assert destination.write(batch(b"a", b"b")) == 2
    with pytest.raises(WriteError) as failed:
        destination.write(batch(b"c", b"x/y", b"d", start=2))
    assert failed.value.written == 1
    assert destination.write([]) == 0
    destination.teardown()
    destination.teardown()  # sent again; the SDK destination's teardown works twice
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a", "b", "c"]
    assert destination.plugin.alive()  # until close()
    # The connector's own guard answers (its message, carried by a nack), not the adapter.
    with pytest.raises(LifecycleError, match="record 0 nacked: lifecycle: write after teardown"):
        destination.write(batch(b"e"))
    with pytest.raises(LifecycleError, match="lifecycle: configure when the destination is torn down"):
        destination.configure({"directory": str(tmp_path / "out")})
    with pytest.raises(LifecycleError, match="lifecycle: open when the destination is torn down"):
        destination.open()
    assert destination.parameters()["directory"].required
    destination.close()
    assert not destination.plugin.alive()
    with pytest.raises(LifecycleError, match=r"^adapter: write\(\) after the adapter stopped"):
        destination.write(batch(b"e"))


def rpc_log(tmp_path: Path, mode: str = "plain") -> tuple[StandaloneDestination, Path]:
    """A fake plugin in `mode` that logs every RPC it receives, and the log."""
    log = tmp_path / "rpcs.log"
    return StandaloneDestination([*FAKE, mode], env={"FAKE_PLUGIN_LOG": str(log)}), log


def rpcs(log: Path) -> list[str]:
    """The RPCs the fake plugin received so far, in order."""
    return log.read_text().split() if log.exists() else []


def test_every_teardown_reaches_the_process_which_runs_until_close(tmp_path: Path) -> None:
    """A second (and third) teardown sends Teardown again; the process lives on until close(), which stops it."""
    destination, log = rpc_log(tmp_path)
    destination.configure({"directory": str(tmp_path)})
    destination.open()
    destination.write(batch(b"a"))
    destination.teardown()
    assert destination.plugin.alive()
    destination.teardown()
    destination.teardown()
    assert rpcs(log) == ["Specify", "Configure", "Open", "Run", "Stop", "Teardown", "Teardown", "Teardown"]
    destination.close()
    assert not destination.plugin.alive()
    destination.close()  # idempotent
    with pytest.raises(LifecycleError, match=r"^adapter: teardown\(\) after the adapter stopped"):
        destination.teardown()
    assert rpcs(log)[-1] == "Teardown" and rpcs(log).count("Teardown") == 3


def test_parameters_asks_specify_on_every_call_in_every_state(tmp_path: Path) -> None:
    """parameters() is Specify each time (no cache): new, configured, open, torn down, torn down twice."""
    destination, log = rpc_log(tmp_path)
    try:
        assert rpcs(log) == ["Specify"]  # the factory's, for the report header
        destination.parameters()
        destination.configure({"directory": str(tmp_path)})
        destination.parameters()
        destination.open()
        destination.parameters()
        destination.teardown()
        first = destination.parameters()
        assert destination.parameters() == first and list(first) == ["directory"]
        assert rpcs(log) == ["Specify", "Specify", "Configure", "Specify", "Open", "Specify", "Teardown", "Specify",
                             "Specify"]
    finally:
        destination.close()


def test_calls_after_teardown_are_sent_and_the_connector_answers(tmp_path: Path) -> None:
    """configure, open and write after teardown reach the process: a connector that accepts them is seen to accept
    them (no LifecycleError of the adapter's); write opens a new Run stream, ended with its acks, so that after
    teardown nothing of the driver's stays open between calls (teardown.releases) and the next teardown sends no
    Stop."""
    destination, log = rpc_log(tmp_path)
    try:
        destination.configure({"directory": str(tmp_path)})
        destination.open()
        destination.write(batch(b"a"))
        destination.teardown()
        destination.configure({"directory": str(tmp_path)})
        destination.open()
        assert destination.write(batch(b"b", start=1)) == 1
        assert rpcs(log)[-5:] == ["Stop", "Teardown", "Configure", "Open", "Run"]
        destination.teardown()  # the new stream already ended with its acks: nothing to stop
        assert rpcs(log)[-2:] == ["Run", "Teardown"]
    finally:
        destination.close()


def test_adapter_answers_name_what_is_not_sent(tmp_path: Path) -> None:
    """ack and an empty batch are the adapter's while the process runs; after close(), everything is."""
    destination, log = rpc_log(tmp_path)
    assert set(destination.adapter_answers()) == {"ack", "write([])"}
    assert "no ack from the pipeline" in destination.adapter_answers()["ack"]
    with pytest.raises(LifecycleError, match=r"^adapter: ack\(\) in state new"):
        destination.ack(b"0")
    with pytest.raises(LifecycleError, match=r"^adapter: write\(\[\]\) in state new"):
        destination.write([])
    destination.teardown()
    assert set(destination.adapter_answers()) == {"ack", "write([])"}
    with pytest.raises(LifecycleError, match=r"^adapter: ack\(\) in state torn down"):
        destination.ack(b"0")
    destination.close()
    answers = destination.adapter_answers()
    assert set(answers) == {"parameters", "configure", "open", "write", "ack", "teardown"}
    assert all("stopped the connector process" in reason for reason in answers.values())
    with pytest.raises(LifecycleError, match=r"^adapter: parameters\(\) after the adapter stopped"):
        destination.parameters()
    assert rpcs(log) == ["Specify", "Teardown"]


def test_adapter_answers_everything_after_the_call_a_connector_died_in() -> None:
    """A dead connector can answer nothing: every later call is the adapter's and says how the process ended, but
    the call it died in (with no panic in the SDK's code) stays the connector's failure."""
    destination = StandaloneDestination([*FAKE, "die-mid-stream"])
    try:
        destination.configure({"directory": "/unused"})
        destination.open()
        with pytest.raises(PluginError, match=r"exited with code 3 in write\(\)"):
            destination.write(batch(b"a"))
        answers = destination.adapter_answers()
        assert set(answers) == {"parameters", "configure", "open", "ack", "teardown"}
        assert "exited with code 3 in write()" in answers["teardown"]
        assert destination.process_fds() is None
    finally:
        destination.close()


def _own_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_process_fds_are_the_connectors_own(tmp_path: Path) -> None:
    """process_fds lists the connector's descriptors (what its Open leaked stays after teardown) and is None after
    close(); this process holds nothing of the connector's after teardown, though the connector still runs."""
    mine = _own_fds()
    destination, _ = rpc_log(tmp_path, "leak-on-open")
    try:
        before = destination.process_fds()
        assert before is not None and str(tmp_path) not in before.values()
        assert before[1].endswith("connector.stdout") and before[2].endswith("connector.stderr")
        destination.configure({"directory": str(tmp_path)})
        destination.open()
        destination.teardown()
        after = destination.process_fds()
        assert after is not None and str(tmp_path) in after.values()
        leaked = sorted(fd for fd, target in after.items() if fd not in before and target == str(tmp_path))
        assert len(leaked) == 1
        for _ in range(50):  # gRPC closes a channel's socket on its own thread, a moment later
            if _own_fds() <= mine:
                break
            time.sleep(0.02)
        assert _own_fds() <= mine
        assert destination.plugin.alive()
    finally:
        destination.close()
    assert destination.process_fds() is None


def test_driver_close_stops_the_connector_process(tmp_path: Path) -> None:
    """harness.Driver.close() calls the destination's close(): the process lives through teardown, not past close."""
    registration = standalone_registration([*FAKE, "plain"], config={"directory": "{tmp}"})
    with Driver(registration) as driver:
        destination = driver.destination
        driver.configure()
        driver.teardown()
        driver.teardown()
        assert destination.plugin.alive()
        assert driver.parameters()["directory"].required
    assert not destination.plugin.alive()
    with pytest.raises(LifecycleError, match=r"^adapter: "):
        destination.configure({})


def test_exec_spec_loads_a_standalone_registration() -> None:
    """--destination=exec:COMMAND gives a standalone registration that names the command."""
    registration = load_registration(f"exec:{sys.executable} {SDK_FILE[1]}", {"directory": "{tmp}"})
    assert registration.transport == "standalone"
    assert registration.structured_data == "protobuf-struct"
    assert registration.describe is not None and "sdk-file-destination v0.1.0" in registration.describe()
    assert Behaviour.EMPTY_BATCH_NOT_SENT in registration.behaviours
    assert "write.empty-batch" in resolve(registration).skip


def test_exec_spec_without_a_command_is_refused() -> None:
    """exec: with nothing after it is a one-line LoadError."""
    from harness import LoadError

    with pytest.raises(LoadError, match="names no command"):
        load_registration("exec:  ")


@pytest.mark.slow
@pytest.mark.go
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_teardown_releases_compares_the_connector_process_threads(run_suite: RunSuite) -> None:
    """A Python connector whose Open starts a flusher that outlives teardown fails teardown.releases, naming the
    OS thread that still wakes up; a Go connector passes only partly: its threads are its runtime's, and its
    goroutines are not visible from outside the process."""
    leaking = run_suite([f"exec:{sys.executable} {FAKE[1]} leak-thread-on-open"], "--destination-config",
                        "directory={tmp}/out", "-k", "teardown_releases", profile=DEV)
    assert "FAILED       teardown.releases" in leaking.output, leaking.output[-3000:]
    assert "the connector process runs OS threads after teardown() that it did not run before configure(), and " \
           "they still wake up" in leaking.output
    if shutil.which("go") is None:
        pytest.skip("the Go half needs Go (>= 1.23.2) on PATH")
    from tests.go_connectors import build

    go = run_suite([f"exec:{build('fixed13')}"], "--destination-config", "directory={tmp}/out",
                   "-k", "teardown_releases", profile=DEV)
    assert "passed       teardown.releases    partly: goroutines are not visible from outside the process" in \
        go.output, go.output[-3000:]


@pytest.mark.slow
def test_suite_reports_a_connector_dying_mid_stream_and_goes_on(run_suite: RunSuite) -> None:
    """Over the suite: the write clauses fail with the connector's stderr, the others still get verdicts."""
    spec = f"exec:{sys.executable} {FAKE[1]} die-mid-stream"
    run = run_suite([spec], "--destination-config", "directory={tmp}/out",
                    "-k", "write_returns_a_valid_count or parameters_shape or registered_config_is_accepted",
                    profile=DEV)
    assert run.ret == 1, run.output[-3000:]
    assert "connector process exited with code 3" in run.output and "dying mid-stream" in run.output
    assert "FAILED       write.count" in run.output
    assert "passed       parameters.shape" in run.output and "passed       configure.valid" in run.output


@pytest.mark.slow
def test_suite_reports_a_hanging_connector_as_a_timeout_and_goes_on(run_suite: RunSuite) -> None:
    """Over the suite: a Configure that never returns fails call.timeout, and the run ends."""
    spec = f"exec:{sys.executable} {FAKE[1]} hang-configure"
    run = run_suite([spec], "--destination-config", "directory={tmp}/out",
                    f"--conformance-timeout={LIMIT}", "-k", "registered_config_is_accepted", profile=DEV)
    assert run.ret == 1, run.output[-3000:]
    assert "FAILED       call.timeout" in run.output and "FAILED       configure.valid" in run.output
    assert f"configure() did not return within {LIMIT}s" in run.output


# --- the warm spare (harness.conduit.spares.start_connector) ----------------------------------------------------------


def _children() -> dict[int, str]:
    """This process' child processes: pid -> state letter (Z for a zombie), read from /proc/*/stat."""
    children: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid():
            children[int(name)] = state
    return children


def _marked(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (connectors inherit the environment they were started with)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{name}/environ").read_bytes():
                    found.append(int(name))
            except OSError:
                continue
    return found


def _spare_for(argv: list[str]) -> ConnectorProcess:
    """The waiting spare started for `argv`."""
    (spare,) = [p for p in waiting_spares() if p.argv == argv]
    return spare


def _wait_for_handshake(process: ConnectorProcess) -> None:
    """Waits until a spare has printed its handshake line (so the next factory call finds it printed)."""
    for _ in range(3000):
        if process.printed_handshake():
            return
        time.sleep(0.01)
    raise AssertionError("the spare printed no handshake within 30 s")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_the_factory_takes_a_warm_spare_and_starts_one_process_per_example_plus_one(tmp_path: Path) -> None:
    """Each factory call after the first takes the spare the previous one started, whose handshake was read in one
    look (no wait); examples + 1 processes in all, each serving one destination; Specify is asked once (the answer
    is cached per executable); after discard_spares() no child process is left, not even a zombie."""
    discard_spares()
    log = tmp_path / "rpcs.log"
    argv = [*FAKE, "plain"]
    registration = standalone_registration(argv, config={"directory": "{tmp}"}, env={"FAKE_PLUGIN_LOG": str(log)},
                                           spare=True)
    before = replace(spare_stats())
    examples, pids, reads = 4, [], []
    for number in range(examples):
        if number:
            _wait_for_handshake(_spare_for(argv))
        with Driver(registration) as driver:
            pids.append(driver.destination.plugin.process.pid)
            reads.append(driver.destination.plugin.handshake_reads)
            driver.configure()
            driver.teardown()
    after = spare_stats()
    assert after.started - before.started == examples + 1
    assert (after.fresh - before.fresh, after.taken - before.taken) == (1, examples - 1)
    assert reads[1:] == [1] * (examples - 1), reads  # found printed: the factory did not wait for a handshake
    assert len(set(pids)) == examples  # never reused: a process serves one destination
    assert rpcs(log).count("Specify") == 1 and rpcs(log).count("Configure") == examples
    spare = _spare_for(argv)
    assert spare.alive() and spare.process.pid not in pids
    discard_spares()
    assert not spare.alive()
    left = {pid: state for pid, state in _children().items() if pid in {*pids, spare.process.pid}}
    assert left == {}


def test_a_spare_that_died_before_use_is_replaced_not_reported(tmp_path: Path) -> None:
    """A spare killed while it waited: the next factory call starts a fresh process and the destination works."""
    discard_spares()
    argv = [*FAKE, "plain"]
    registration = standalone_registration(argv, config={"directory": "{tmp}"}, spare=True)
    with Driver(registration) as driver:
        driver.configure()
        spare = _spare_for(argv)
        os.kill(spare.process.pid, signal.SIGKILL)
        driver.teardown()
    before = replace(spare_stats())
    with Driver(registration) as driver:
        assert driver.destination.plugin is not spare
        driver.configure()
        driver.open()
        assert driver.write(batch(b"a")) == 1
        driver.teardown()
    after = spare_stats()
    assert (after.replaced - before.replaced, after.fresh - before.fresh, after.taken - before.taken) == (1, 1, 0)
    assert not spare.alive()
    discard_spares()


def test_spare_off_starts_each_process_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFORMANCE_SPARE=0: no spare is started; every factory call starts its own process."""
    discard_spares()
    monkeypatch.setenv("CONFORMANCE_SPARE", "0")
    argv = [*FAKE, "plain"]
    registration = standalone_registration(argv, config={"directory": "{tmp}"})
    before = replace(spare_stats())
    for _ in range(2):
        with Driver(registration):
            assert not [p for p in waiting_spares() if p.argv == argv]
    after = spare_stats()
    assert (after.started - before.started, after.fresh - before.fresh, after.taken - before.taken) == (2, 2, 0)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
@pytest.mark.parametrize("command, verdict", [(SDK_FILE, "passed"), ([*FAKE, "leak-on-open"], "FAILED")],
                         ids=["sdk-file", "leak-on-open"])
def test_teardown_releases_with_spares_and_no_process_outlives_the_run(run_suite: RunSuite, command: list[str],
                                                                       verdict: str) -> None:
    """Over the suite, spares on: the spare is not the destination's (a correct connector passes teardown.releases,
    the one leaking a descriptor on Open fails it), and once the run is over no connector process is left."""
    marker = f"CONFORMANCE_TEST_MARK=spare-{uuid.uuid4().hex}"
    name, value = marker.split("=", 1)
    run = run_suite([f"exec:{' '.join(command)}"], "--destination-config",
                    "directory={tmp}" if verdict == "FAILED" else "directory={tmp}/out", "-k", "teardown_releases",
                    profile=DEV, env={name: value})
    assert f"{verdict}       teardown.releases" in run.output, run.output[-3000:]
    if verdict == "FAILED":
        assert "the connector process holds descriptors after teardown()" in run.output
    assert _marked(marker) == []
