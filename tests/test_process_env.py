"""A connector process' own environment tree (harness.process_env): every process, warm spares included, starts
with $TMPDIR, $HOME and $XDG_* inside a tree of its own, and what a connector leaves there fails safety.confined."""

import json
import os
import re
import sys

import pytest

from harness.conduit.plugin_process import ConnectorProcess, environment_key
from harness.process_env import ENV_VARIABLES
from tests.go_connectors import build
from tests.suite_runs import SuiteRun, dump, not_passed, run_suite

ZOO = "tests.conduit_connectors:go_zoo_tempstate"
TRANSIENT = "tests.conduit_connectors:go_zoo_tmpdirlock"
FIXED = "tests.conduit_connectors:go_fixed14"
_PRINT_ENV = f"import json, os; print(json.dumps({{v: os.environ.get(v) for v in {list(ENV_VARIABLES)!r}}}))"


def _printed(process: ConnectorProcess) -> dict[str, str]:
    """The environment a started (never handshaken) process printed."""
    process.process.wait(timeout=60)
    with open(process._stdout_path) as out:
        return dict(json.load(out))


def test_every_process_gets_a_tree_of_its_own() -> None:
    """Two processes of the same command: each one's places lie in its own tree, made and empty, and a spare started
    for one fits the next (the trees are not part of the environment a spare is matched by)."""
    first = ConnectorProcess([sys.executable, "-c", _PRINT_ENV], ready=False)
    second = ConnectorProcess([sys.executable, "-c", _PRINT_ENV], ready=False)
    try:
        trees = []
        for process in (first, second):
            printed = _printed(process)
            root = process.env_root
            assert set(printed) == set(ENV_VARIABLES)
            assert all(value is not None and value.startswith(root + os.sep) for value in printed.values()), printed
            assert printed["TMPDIR"] == os.path.join(root, "tmp") and printed["HOME"] == os.path.join(root, "home")
            assert sorted(os.listdir(root)) == ["home", "tmp"]
            trees.append(root)
        assert trees[0] != trees[1]
        assert environment_key(None) == environment_key(None)
        assert not any(name in ENV_VARIABLES for name, _ in environment_key(None))
    finally:
        first.kill()
        second.kill()
    assert not os.path.exists(first.env_root), "the tree goes with the process"


def test_a_variable_the_registration_sets_wins() -> None:
    """A registration's own env (a HOME it needs) is kept, and is part of the spare's key."""
    process = ConnectorProcess([sys.executable, "-c", _PRINT_ENV], env={"HOME": "/nonexistent-home"}, ready=False)
    try:
        printed = _printed(process)
        assert printed["HOME"] == "/nonexistent-home"
        assert printed["TMPDIR"] == os.path.join(process.env_root, "tmp")
        assert ("HOME", "/nonexistent-home") in environment_key({"HOME": "/nonexistent-home"})
    finally:
        process.kill()


@pytest.fixture(scope="module")
def go_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """One check that is not safety.confined's own, over the two Go zoo variants that write to $TMPDIR and fixed14."""
    for connector in ("zoo-tempstate", "zoo-tmpdirlock", "fixed14"):
        build(connector)  # before the run, so a cold build never counts against a call limit
    return run_suite(tmp_path_factory.mktemp("go"), ZOO, TRANSIENT, FIXED,
                     args=("-k", "test_every_record_class_round_trips"), timeout=1800)


def test_a_go_connector_writing_to_its_tmpdir_fails_safety_confined(go_run: SuiteRun) -> None:
    """tests/go/zoo/tempstate.patch (fixed14 whose Write keeps a file in os.TempDir()) fails safety.confined, and only
    it, from a check that is not safety.confined's own; fixed14 itself, in the same run, fails nothing."""
    run = go_run
    assert run.ret == 1, run.output[-4000:]
    failed = {c for c, status in not_passed(run, ZOO).items() if status == "failed"}
    assert failed == {"safety.confined"}, dump(run, ZOO)
    assert "$TMPDIR/fixed14-last-write" in run.output, run.output[-4000:]
    assert not {c for c, status in not_passed(run, FIXED).items() if status == "failed"}, dump(run, FIXED)


def test_a_lock_file_removed_again_fails_safety_confined_naming_both_calls(go_run: SuiteRun) -> None:
    """tests/go/zoo/tmpdirlock.patch (Open creates a lock file in os.TempDir(), Teardown removes it, so the tree is
    empty at the session's end) fails safety.confined, and only it, with the call that created the file and the one
    that removed it."""
    failed = {c for c, status in not_passed(go_run, TRANSIENT).items() if status == "failed"}
    assert failed == {"safety.confined"}, dump(go_run, TRANSIENT)
    assert re.search(r"open\(\) created \$TMPDIR/fixed14-\d+\.lock \(removed by teardown\(\)\)", go_run.output), \
        go_run.output[-4000:]
