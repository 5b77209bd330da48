"""open.keeps-data over Conduit's protocol: our fixed Go destination (tests/go/fixed14) keeps what an earlier run
wrote when it is opened again, and the same connector whose Open sweeps '.tmp-*' files as crash leftovers (the third
blind audit's stale_tmp_cleanup, tests/go/zoo/stale_temps.patch) loses the keys of that shape, which no other clause
sees: lifecycle.events, the closest, compares read-back before Open.
"""

import shutil
from pathlib import Path

import pytest

from conformance.generate.strategies import ESCAPABLE_KEY_CHARS
from conformance.suite.test_conformance_open import TEMPORARY_LOOKING_KEYS
from tests.suite_runs import dump, run_suite

__all__: list[str] = []

FIXED = "tests.conduit_connectors:go_fixed14"
VARIANT = "tests.conduit_connectors:go_zoo_stale_temps"


def test_the_witness_keys_are_valid_and_not_escapable() -> None:
    """Every temporary-looking key is a valid key in its plain spelling (no character a destination escapes), so a
    destination storing keys as file names stores it under exactly that name, where a sweep on open finds it."""
    from harness.keys import key_problem

    assert all(key_problem(key) is None for key in TEMPORARY_LOOKING_KEYS)
    odd = "".join(c for c in ESCAPABLE_KEY_CHARS if c not in "#~")  # '#' and '~' are editors' own marks
    assert not [key for key in TEMPORARY_LOOKING_KEYS if any(c in key.decode() for c in odd)]


@pytest.mark.skipif(shutil.which("go") is None, reason="not checked here: `go` is not on PATH (Go connectors)")
def test_open_keeps_data_passes_fixed14_and_fails_the_sweeping_variant(tmp_path: Path) -> None:
    """fixed14 passes; the variant fails open.keeps-data naming a lost '.tmp-' key, and passes lifecycle.events
    (the audit's slip: without the new clause nothing failed)."""
    from tests.go_connectors import build

    build("fixed14")
    build("zoo-stale-temps")
    run = run_suite(tmp_path, FIXED, VARIANT, args=("-k", "reopened_destination_keeps_its_data or lifecycle_events"))
    assert run.verdicts(FIXED)["open.keeps-data"] == "passed", dump(run, FIXED)
    assert run.verdicts(VARIANT)["open.keeps-data"] == "failed", dump(run, VARIANT)
    assert run.verdicts(VARIANT)["lifecycle.events"] == "passed", dump(run, VARIANT)
    assert "read-back right after open() differs from read-back just before it" in run.output
    assert "missing    b'.tmp-x'" in run.output
