"""fault.backend-reset and fault.backend-stall: Registration.backends, and the suite's verdicts on the key-value zoo
of tests/zoo/backend.py (a real TCP server behind Toxiproxy), on a registration without a backend, without
Toxiproxy, and under --conformance-strict.

The suite runs need Go (Toxiproxy is built from the Go module proxy); without it they skip outside CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from harness import Backend, Registration
from tests.suite_runs import SuiteRun, reasons, run_suite, shared_run

CORRECT = "tests.zoo.backend:kv_correct"
TRUSTS_SENT = "tests.zoo.backend:kv_trusts_sent"
NO_TIMEOUT = "tests.zoo.backend:kv_no_timeout"
NO_BACKEND = "reference:registration"
BACKEND_CLAUSES = ("--conformance-clause=fault.backend-*",)


def _factory() -> None:
    return None


# --- the declaration -------------------------------------------------------------------------------------------


def test_a_backend_names_host_and_port_and_how_to_reach_it_elsewhere() -> None:
    """Backend refuses an address that is not host:port, and one with neither params nor reroute."""
    with pytest.raises(ValueError, match="'host:port'"):
        Backend("localhost", params=("url",))
    with pytest.raises(ValueError, match="'host:port'"):
        Backend("localhost:0", params=("url",))
    with pytest.raises(TypeError, match="name the config params"):
        Backend("127.0.0.1:5432")
    assert Backend("[::1]:5432", params=("url",)).label == "[::1]:5432"


def test_a_registration_checks_its_backends_against_its_config() -> None:
    """A param that is not a config key, or whose value does not spell the address, is refused when it is built."""
    backend = Backend("127.0.0.1:5432", params=("url",), name="PostgreSQL")
    with pytest.raises(TypeError, match="param 'url' is not a key of config"):
        Registration(factory=_factory, config={}, backends=(backend,))
    with pytest.raises(TypeError, match="does not spell the address"):
        Registration(factory=_factory, config={"url": "postgresql://127.0.0.1:5433/db"}, backends=(backend,))
    with pytest.raises(TypeError, match="must hold harness.Backend values"):
        Registration(factory=_factory, config={}, backends=("127.0.0.1:5432",))  # type: ignore[arg-type]
    registration = Registration(factory=_factory, config={"url": "postgresql://u@127.0.0.1:5432/db"},
                                backends=(backend,))
    assert backend.overlay(registration.config, "127.0.0.1:40000") == {"url": "postgresql://u@127.0.0.1:40000/db"}


def test_a_backend_can_fix_the_proxy_address_and_forward_elsewhere() -> None:
    """A backend that advertises where to reconnect (Kafka) declares the proxy's address (`listen`) and the listener
    the proxy forwards to (`upstream`); the config still names `address`, and is pointed at `listen`."""
    backend = Backend("127.0.0.1:9092", params=("servers",), listen="127.0.0.1:40001", upstream="127.0.0.1:9093",
                      name="Kafka broker")
    assert backend.forwards_to == "127.0.0.1:9093"
    assert backend.label == "Kafka broker at 127.0.0.1:9092 (proxied through its listener at 127.0.0.1:9093)"
    assert backend.overlay({"servers": "127.0.0.1:9092"}, backend.listen) == {"servers": "127.0.0.1:40001"}
    assert Backend("127.0.0.1:9092", params=("servers",)).forwards_to == "127.0.0.1:9092"
    with pytest.raises(ValueError, match="listen: a backend address is 'host:port'"):
        Backend("127.0.0.1:9092", params=("servers",), listen="40001")
    with pytest.raises(ValueError, match="upstream: a backend address is 'host:port'"):
        Backend("127.0.0.1:9092", params=("servers",), upstream="127.0.0.1:0")


# --- the verdicts ------------------------------------------------------------------------------------------------


def _needs_go() -> None:
    if shutil.which("go") is None:
        if os.environ.get("CI"):
            pytest.fail("`go` is not on PATH under CI: .ci/run needs it to build Toxiproxy")
        pytest.skip("not checked here: `go` is not on PATH, so Toxiproxy cannot be built")


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """One suite run of the backend clauses over the key-value zoo and a registration without a backend."""
    _needs_go()
    return shared_run(tmp_path_factory, worker_id, "backend-zoo-run", (CORRECT, TRUSTS_SENT, NO_TIMEOUT, NO_BACKEND),
                      args=BACKEND_CLAUSES)


def _backend_verdicts(run: SuiteRun, spec: str) -> dict[str, str]:
    return {c: s for c, s in run.verdicts(spec).items() if c.startswith("fault.backend-") or c == "call.timeout"}


def test_a_correct_destination_passes_both(zoo_run: SuiteRun) -> None:
    """The correct one gives WriteError counting what the server confirmed, reconnects, and has a socket timeout."""
    assert _backend_verdicts(zoo_run, CORRECT) == {"fault.backend-reset": "passed", "fault.backend-stall": "passed",
                                                   "call.timeout": "passed"}, zoo_run.output[-6000:]


def test_counting_what_was_sent_fails_backend_reset(zoo_run: SuiteRun) -> None:
    """A destination that counts the records it sent as stored when the connection drops fails fault.backend-reset
    (read-back lacks records it reported written), with the toxic in the replay."""
    verdicts = _backend_verdicts(zoo_run, TRUSTS_SENT)
    assert verdicts["fault.backend-reset"] == "failed", zoo_run.output[-6000:]
    assert "read-back after reset_peer" in zoo_run.output or "read-back after limit_data" in zoo_run.output
    assert "proxy = replay_proxy('127.0.0.1:" in zoo_run.output
    # It never fails a write under a stall (it swallows the error), so that clause has no evidence: not checked.
    assert verdicts["fault.backend-stall"] == "not checked"
    assert "never exercised: write failed with the backend stalled" in reasons(zoo_run, TRUSTS_SENT)[
        "fault.backend-stall"]


def test_no_socket_timeout_fails_backend_stall(zoo_run: SuiteRun) -> None:
    """A destination without a socket timeout hangs when the server stops answering: fault.backend-stall fails (and
    call.timeout with it); its connection drops it handles."""
    assert _backend_verdicts(zoo_run, NO_TIMEOUT) == {"fault.backend-reset": "passed",
                                                      "fault.backend-stall": "failed",
                                                      "call.timeout": "failed"}, zoo_run.output[-6000:]
    assert re.search(r"\[fault\.backend-stall\].*\n.*\[call\.timeout\] a call did not return", zoo_run.output)
    assert "proxy.toxic('timeout', 'upstream', timeout=0); proxy.toxic('timeout', 'downstream', timeout=0)" \
        in zoo_run.output


def test_no_backend_declared_is_not_checked(zoo_run: SuiteRun) -> None:
    """A registration that declares no backend gets both clauses "not checked", saying why."""
    found = reasons(zoo_run, NO_BACKEND)
    for clause in ("fault.backend-reset", "fault.backend-stall"):
        assert zoo_run.verdicts(NO_BACKEND)[clause] == "not checked"
        assert found[clause].startswith("no backend declared (Registration.backends names no server"), found[clause]


def test_without_toxiproxy_the_clauses_are_not_checked(tmp_path: Path) -> None:
    """With no `go` on PATH and nothing cached, the clauses are "not checked: needs Toxiproxy", naming why."""
    go = shutil.which("go")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if not go or Path(p).resolve() != Path(go).resolve().parent)
    run = run_suite(tmp_path, CORRECT, args=BACKEND_CLAUSES,
                    env={"PATH": path, "CONFORMANCE_GO_CACHE": str(tmp_path / "empty-cache")})
    found = reasons(run, CORRECT)
    for clause in ("fault.backend-reset", "fault.backend-stall"):
        assert run.verdicts(CORRECT)[clause] == "not checked", run.output[-4000:]
        assert found[clause].startswith("needs Toxiproxy v2.12.0 (`go` is not on PATH"), found[clause]


def test_strict_fails_on_a_backend_clause_not_checked(tmp_path: Path) -> None:
    """--conformance-strict counts the backend clauses not checked for lack of a backend, and fails the run naming
    them (the baseline accepts every other clause not checked, so they are all the line names)."""
    from conformance.contract.clauses import CLAUSES

    accepted = {c: "not this run's business" for c in CLAUSES if not c.startswith("fault.backend-")}
    baseline = tmp_path / "base.json"
    baseline.write_text(json.dumps({"accepted_not_checked": accepted, "destinations": {}}))
    run = run_suite(tmp_path, NO_BACKEND, args=(*BACKEND_CLAUSES, "--conformance-strict",
                                                f"--conformance-baseline={baseline}"))
    assert run.ret == 1, run.output[-4000:]
    assert ("conformance: --conformance-strict: 2 clause(s) of reference:registration not checked "
            "(fault.backend-reset, fault.backend-stall); the run fails") in run.output, run.output[-4000:]


_FIXED = """from dataclasses import replace
import os
from harness import Backend
from tests.zoo.backend import kv_correct as _kv

__all__ = ["free", "also_free", "taken"]
_address = _kv.config["server"]


def _at(listen):
    return replace(_kv, backends=(Backend(_address, params=("server",), listen=listen, upstream=_address),))


free = _at(os.environ["FIXED_FREE"])
also_free = _at(os.environ["FIXED_FREE"])
taken = _at(os.environ["FIXED_TAKEN"])
"""


def test_a_fixed_proxy_address_is_used_and_a_taken_one_is_not_checked(tmp_path: Path) -> None:
    """Backend.listen: the proxy is made on that address (one something else holds leaves the clauses "not checked",
    naming it and the bind error) and forwards to Backend.upstream; on a free one the clauses pass as without it,
    for each of two registrations naming the same address (they share its proxy)."""
    import socket

    _needs_go()
    (tmp_path / "fixed.py").write_text(_FIXED)
    with socket.socket() as held, socket.socket() as probe:
        held.bind(("127.0.0.1", 0))
        held.listen()
        probe.bind(("127.0.0.1", 0))
        free, taken = f"127.0.0.1:{probe.getsockname()[1]}", f"127.0.0.1:{held.getsockname()[1]}"
        probe.close()  # free again, for the proxy
        run = run_suite(tmp_path, "fixed:free", "fixed:also_free", "fixed:taken", args=BACKEND_CLAUSES,
                        env={"FIXED_FREE": free, "FIXED_TAKEN": taken})
    clauses = ("fault.backend-reset", "fault.backend-stall")
    for spec in ("fixed:free", "fixed:also_free"):
        assert {c: run.verdicts(spec)[c] for c in clauses} == dict.fromkeys(clauses, "passed"), run.output[-6000:]
    assert {c: run.verdicts("fixed:taken")[c] for c in clauses} == dict.fromkeys(clauses, "not checked")
    for clause in clauses:
        reason = reasons(run, "fixed:taken")[clause]
        assert f"could not listen on {taken} (Backend.listen)" in reason, reason
        assert "address already in use" in reason, reason
    evidence = run.report["destinations"]["fixed:free"]["clauses"]["fault.backend-reset"]["evidence"]
    assert evidence.get("connection reset at the batch's first byte", 0) >= 1, evidence
