"""The second zoo (tests/zoo/variants.py) under the conformance suite: each variant must fail its clause.

As in tests/test_zoo.py, the suite runs in subprocesses (`pytest --destination=...`) and the per-clause
summary table is read back. Each subprocess checks several variants, and its -k expression selects, for each
variant, only the suite tests of the clause it breaks (test ids carry the destination spec). The runs use the
derandomized conformance-quick profile (CATCH_PROFILE, tests/zoo/cases.py), minus its shrink phase, so verdicts do
not depend on a seed.

A variant the current suite does not catch carries `known_miss` (why the suite misses it): its batch then
xfails (non-strict) instead of failing, exactly as test_zoo's known misses do.
"""

import functools
import importlib
from collections import Counter
from dataclasses import dataclass

import pytest

from conformance.contract.clauses import CLAUSES
from harness import Registration
from tests.suite_runs import REPO_ROOT, RunSuite
from tests.zoo.cases import CATCH_PROFILE, CLAUSE_TESTS, Broken, suite_tests

__all__: list[str] = []

MODULE = "tests.zoo.variants"
NOT_DESTINATION_AREAS = ("harness", "pipeline")  # call.timeout and pipeline.*: no single destination bug to plant


@functools.cache
def clause_tests() -> dict[str, tuple[str, ...]]:
    """Clause id -> every suite test marked with it (test_zoo's CLAUSE_TESTS too).

    All of a clause's tests run, since a clause whose evidence is incomplete is "not checked", never passed.
    """
    return {clause: tuple(sorted({*CLAUSE_TESTS.get(clause, ()), *suite_tests(clause)})) for clause in CLAUSES}


@dataclass(frozen=True)
class Variant(Broken):
    """A registration in tests.zoo.variants and the clause it breaks."""

    @property
    def spec(self) -> str:
        """Its --destination value."""
        return f"{MODULE}:{self.name}"

    def keyword(self) -> str:
        """A -k term selecting the suite tests of its clause, for this destination only."""
        tests = " or ".join(clause_tests()[self.breaks])
        return f"((variants:{self.name}] or variants:{self.name}-) and ({tests}))"


def V(name: str, breaks: str, known_miss: str = "") -> Variant:  # noqa: N802  (reads like a table row)
    return Variant(name, breaks, known_miss)


# Each batch is one subprocess, the costliest first, so that `-n 2` keeps both workers busy to the end.
BATCHES: dict[str, tuple[Variant, ...]] = {
    "write-round-trip-count": (
        V("structured_not_canonical", "write.round-trip"),
        V("overwrite_without_truncate", "write.round-trip"),
        V("truncates_at_1_kib", "write.round-trip"),
        V("crashes_on_after_none_unless_delete", "write.round-trip"),
        V("delete_of_absent_key_raises", "write.round-trip"),
        V("counts_distinct_keys", "write.count"),
        V("float_count", "write.count"),
        V("drops_non_utf8_keys_silently", "write.count"),
        V("counts_last_chunk_only", "write.count"),
    ),
    "ack-lifecycle-teardown": (
        V("ack_only_batch_end", "ack.in-order"),
        V("ack_forgets_deletes", "ack.in-order"),
        V("ack_checkpoint_in_directory", "ack.in-order"),
        V("ack_after_failed_write_raises", "ack.in-order"),
        V("write_after_parameters_fails", "lifecycle.valid-orders"),
        V("partial_ack_blocks_write", "lifecycle.valid-orders"),
        V("ack_unguarded", "lifecycle.out-of-order"),
        V("reusable_after_teardown", "lifecycle.out-of-order"),
        V("forbidden_write_is_write_error", "lifecycle.out-of-order"),
        V("deleted_removes_data", "lifecycle.events"),
        V("created_not_implemented", "lifecycle.events"),
        V("updated_awaits_forever", "lifecycle.events"),
        V("leaks_fd_on_delete", "teardown.releases"),
        V("leaks_executor_thread", "teardown.releases"),
        V("leaks_temp_fd_on_failed_write", "teardown.releases"),
        V("leaks_fd_when_a_write_fails", "teardown.releases"),
        V("teardown_removes_empty_files", "teardown.keeps-data"),
        V("teardown_rolls_back_unacked", "teardown.keeps-data"),
        V("teardown_drops_partial_batch", "teardown.keeps-data"),
    ),
    "faults-safety": (
        V("disk_full_counts_failed_record", "fault.disk-full"),
        V("disk_full_rolls_back_batch", "fault.disk-full"),
        V("disk_full_leaves_temp", "fault.disk-full"),
        V("ignores_short_writes", "fault.disk-full"),
        V("rename_error_leaves_temp", "fault.io-error"),
        V("deletes_before_rename", "fault.io-error"),
        V("rename_error_ignored", "fault.io-error"),
        V("fsync_error_swallowed", "fault.io-error"),
        V("delete_checks_only_absolute", "safety.confined"),
        V("backs_up_outside", "safety.confined"),
        V("lock_in_home_on_write", "safety.confined"),
        V("checkpoint_in_home_after_success", "safety.confined"),
        V("in_place_write_follows_link", "safety.no-symlink-follow"),
        V("secure_delete_truncates", "safety.no-symlink-follow"),
        V("fixed_temp_name", "safety.no-symlink-follow"),
    ),
    "parameters-configure-open-teardown": (
        V("parameters_grow_when_open", "parameters.shape"),
        V("parameters_fail_when_torn_down", "parameters.shape"),
        V("default_outside_inclusion", "parameters.defaults-valid"),
        V("default_wrong_type", "parameters.defaults-valid"),
        V("optional_key_required", "configure.valid"),
        V("hidden_length_limit", "configure.valid"),
        V("required_type_error", "configure.required"),
        V("required_checked_at_open", "configure.required"),
        V("required_unnamed", "configure.required"),
        V("range_not_enforced", "configure.invalid-values"),
        V("inclusion_falls_back", "configure.invalid-values"),
        V("unknown_key_not_named", "configure.unknown-key"),
        V("ignores_dotted_unknown_keys", "configure.unknown-key"),
        V("ignores_keys_outside_alphabet", "configure.unknown-key"),
        V("allows_sdk_prefixed_keys", "configure.unknown-key"),
        V("writes_config_marker", "configure.no-side-effects"),
        V("removes_stale_temps", "configure.no-side-effects"),
        V("probes_parent_writability", "configure.no-side-effects"),
        V("lock_in_tmpdir_on_configure", "configure.no-side-effects"),
        V("creates_directory_on_first_write", "open.creates-directory"),
        V("creates_at_most_two_levels", "open.creates-directory"),
        V("removes_empty_files_on_open", "open.keeps-existing"),
        V("removes_subdirectories_on_open", "open.keeps-existing"),
        V("removes_dotfiles_on_open", "open.keeps-existing"),
        V("chmods_on_open", "open.keeps-existing"),
        V("path_compaction_drops_tombstones", "open.keeps-data"),
        V("path_forgets_earlier_size", "open.keeps-data"),
        V("sweeps_editor_leftovers_on_open", "open.keeps-data"),
        V("parent_file_unnamed", "open.not-a-directory"),
        V("moves_file_aside", "open.not-a-directory"),
        V("accepts_symlink_or_fifo", "open.not-a-directory"),
        V("unwritable_deferred", "open.unwritable"),
        V("unwritable_chmods_ancestor", "open.unwritable"),
        V("unwritable_names_ancestor", "open.unwritable"),
        V("teardown_after_failed_open_raises", "teardown.any-state"),
        V("teardown_raises_stored_write_error", "teardown.any-state"),
        V("session_closed_twice", "teardown.idempotent"),
        V("logs_repeated_teardown", "teardown.idempotent"),
        V("second_teardown_after_failed_write", "teardown.idempotent"),
    ),
    "write-other": (
        V("empty_batch_heartbeat", "write.empty-batch"),
        V("empty_batch_index_error", "write.empty-batch"),
        V("nul_key_reaches_os", "write.invalid-key-count"),
        V("written_counts_distinct_keys", "write.invalid-key-count"),
        V("accepts_structured_keys", "write.invalid-key-count"),
        V("written_one_past_invalid", "write.invalid-key-count"),
        V("retries_failed_tail", "write.recovers"),
        V("stale_resume_offset", "write.recovers"),
        V("refuses_after_io_error", "write.recovers"),
        V("sorts_batch_in_place", "write.no-mutation"),
        V("annotates_failed_record", "write.no-mutation"),
        V("drops_before_images", "write.no-mutation"),
        V("drops_tail_of_last_chunk", "write.large-payload"),
        V("nul_terminates_large", "write.large-payload"),
    ),
    # Bugs that only values from the edges of the contract's spaces show: Go's spellings of typed config values,
    # defaults written out, opaque positions, long keys of escapable characters, payloads past 8 MiB.
    "value-spaces": (
        V("python_int_flush_records", "configure.invalid-values"),
        V("yaml_bool_sync", "configure.invalid-values"),
        V("default_refused_explicitly", "parameters.defaults-valid"),
        V("ack_parses_int_position", "ack.in-order"),
        V("escapes_key_characters", "write.round-trip"),
        V("drops_tail_over_8_mib", "write.large-payload"),
    ),
}

CASES = [case for cases in BATCHES.values() for case in cases]

@pytest.mark.parametrize("batch", list(BATCHES))
def test_variants_fail_their_clause(run_suite: RunSuite, batch: str) -> None:
    """Each variant's clause is FAILED; a variant not caught is an error, unless it is a known miss: then the batch
    xfails. (That the reference passes the same checks is tests/test_plugin.py's business.)"""
    cases = BATCHES[batch]
    # Each variant on its own clause's tests only.
    run = run_suite([case.spec for case in cases], "-k", " or ".join(case.keyword() for case in cases),
                    profile=CATCH_PROFILE)
    problems: list[str] = []
    misses: list[str] = []
    for case in cases:
        status, reason = run.summary(case.spec).get(case.breaks, ("missing", ""))
        if status == "FAILED":
            continue
        line = f"{case.name}: {case.breaks} is {status!r}" + (f" ({reason})" if reason else "")
        if case.known_miss:
            misses.append(f"{line}; known miss: {case.known_miss}")
        else:
            problems.append(f"{line}, expected FAILED")
    assert not problems, "\n".join(problems) + "\n\n" + run.tail(200)
    if len(misses) < len(cases):
        assert run.ret == 1, f"expected exit code 1 (some clause failed), got {run.ret}\n{run.tail()}"
    if misses:
        pytest.xfail("known suite false negatives:\n" + "\n".join(misses))


def test_every_variant_is_listed_once_and_every_clause_broken_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Registration in the variants module is in exactly one batch, each destination clause has two variants
    or more, and every public class says which clause it breaks."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    module = importlib.import_module(MODULE)
    registered = {n for n in dir(module) if isinstance(getattr(module, n), Registration)}
    assert sorted(case.name for case in CASES) == sorted(registered)
    assert all(clause_tests()[case.breaks] for case in CASES), [c for c in CASES if not clause_tests()[c.breaks]]
    counts = Counter(case.breaks for case in CASES)
    # fault.backend-*: their broken destinations talk to a server over TCP (tests/zoo/backend.py, one per clause,
    # tests/test_backend_faults.py); this module's destinations write files.
    thin = {c: counts[c] for c, clause in CLAUSES.items()
            if clause.area not in NOT_DESTINATION_AREAS and not c.startswith("fault.backend-") and counts[c] < 2}
    assert not thin, f"clauses with fewer than two variants: {thin}"
    public = [cls for name, cls in vars(module).items()
              if isinstance(cls, type) and cls.__module__ == MODULE and not name.startswith("_")]
    undocumented = [cls.__name__ for cls in public
                    if not any((cls.__doc__ or "").startswith(f"Breaks {clause}: ") for clause in counts)]
    assert not undocumented, f"classes whose docstring does not start with 'Breaks <clause>: ': {undocumented}"
