"""configure.required over Conduit's protocol: fixed14 passes; the Go zoo variant whose `directory` is not declared
required, and is refused missing by a message that does not name it (the third blind audit's slip), fails."""

import shutil
from pathlib import Path

import pytest

from tests.suite_runs import dump, run_suite

__all__: list[str] = []

FIXED = "tests.conduit_connectors:go_fixed14"
VARIANT = "tests.conduit_connectors:go_zoo_required_unnamed"


@pytest.mark.skipif(shutil.which("go") is None, reason="not checked here: `go` is not on PATH (Go connectors)")
def test_an_undeclared_required_parameter_must_be_named(tmp_path: Path) -> None:
    """Before contract v1.4 the variant was "not applicable" (no declared-required parameter); now the clause
    leaves out every parameter the registered config sets, and the unnamed key fails it."""
    from tests.go_connectors import build

    build("fixed14")
    build("zoo-requnnamed")
    run = run_suite(tmp_path, FIXED, VARIANT, args=("--conformance-clause=configure.required",))
    assert run.verdicts(FIXED)["configure.required"] == "passed", dump(run, FIXED)
    assert run.verdicts(VARIANT)["configure.required"] == "failed", dump(run, VARIANT)
    assert "the ConfigError for the left-out 'directory' does not name it: " in run.output
    assert "output location is not set" in run.output
