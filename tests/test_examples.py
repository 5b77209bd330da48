"""The shipped examples (examples/): the two file destinations pass the suite under the conformance-quick profile as
the docs say (every clause that applies; SQLite's C-level I/O leaves three clauses not checked), and the Go
connector's registration builds from $CONFORMANCE_CONNECTOR.
"""

import importlib
import os
import shutil
import sys
from pathlib import Path

import pytest

from conformance.contract.behaviours import resolve
from conformance.contract.clauses import CLAUSES
from harness import Behaviour, Registration
from tests.support import no_shrink_conftest, summary

REPO = Path(__file__).resolve().parents[1]
JSONL = "examples.jsonl_destination:registration"
SQLITE = "examples.sqlite_destination:registration"
ENGINE = {c for c in CLAUSES if c.startswith("pipeline.")}  # need a Conduit engine: "not checked"
ENGINE |= {c for c in CLAUSES if c.startswith("fault.backend-")}  # and a backend over TCP, which files are not
# sqlite3 does its file I/O in C, out of reach of the audit hooks (CONTRACT.md section 6); the fault clauses reach it
# through the FUSE filesystem.
SQLITE_NOT_CHECKED = {"safety.no-symlink-follow"}


def test_the_file_destination_examples_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.delenv("CONFORMANCE_DESTINATION", raising=False)
    pytester.makeconftest(no_shrink_conftest("conformance-quick"))
    result = pytester.runpytest_subprocess(f"--destination={JSONL}", f"--destination={SQLITE}",
                                           "--hypothesis-profile=conformance-quick", "-p", "no:cacheprovider",
                                           timeout=900)
    out = result.stdout.str()
    expected = {
        JSONL: {c: "not checked" if c in ENGINE else "passed" for c in CLAUSES},
        SQLITE: {c: "not checked" if c in ENGINE | SQLITE_NOT_CHECKED else "passed" for c in CLAUSES},
    }
    for spec, wanted in expected.items():
        rows = summary(out, spec)
        differ = {c: (rows.get(c), s) for c, s in wanted.items() if rows.get(c) != s}
        assert not differ, f"{spec}: clause -> (verdict, expected): {differ}\n{out[-6000:]}"
    assert result.ret == 0, out[-3000:]


def _fresh_import() -> object:
    sys.modules.pop("examples.go_connector", None)
    return importlib.import_module("examples.go_connector")


def test_the_go_example_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFORMANCE_CONNECTOR", raising=False)
    with pytest.raises(RuntimeError, match="set CONFORMANCE_CONNECTOR to the path of the connector executable"):
        _fresh_import()
    monkeypatch.setenv("CONFORMANCE_CONNECTOR", str(REPO / "no-such-connector"))
    with pytest.raises(RuntimeError, match="is not an executable file"):
        _fresh_import()


@pytest.mark.go
def test_the_go_example_registers_a_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a Go connector binary (ours, built as other tests build it, or $CONFORMANCE_CONNECTOR's), the example's
    registration is a standalone one for that binary."""
    binary = os.environ.get("CONFORMANCE_CONNECTOR")
    if not binary:
        if shutil.which("go") is None:
            pytest.skip("no connector binary: set CONFORMANCE_CONNECTOR, or put go on PATH to build ours")
        from tests.go_connectors import build

        binary = str(build("fixed"))
    monkeypatch.setenv("CONFORMANCE_CONNECTOR", binary)
    module = _fresh_import()
    registration = module.registration  # type: ignore[attr-defined]
    assert isinstance(registration, Registration)
    assert registration.transport == "standalone"
    assert registration.command == (os.path.abspath(binary),)
    assert registration.directory_param == "directory" and registration.read_back is not None
    assert Behaviour.EMPTY_BATCH_NOT_SENT in registration.behaviours  # what the plugin protocol cannot carry
    assert "write.empty-batch" in resolve(registration).not_applicable  # measured from its build info
    sys.modules.pop("examples.go_connector", None)
