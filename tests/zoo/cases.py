"""The zoo's cases: which broken destination breaks which clause, grouped into suite runs, and which suite tests
check each clause (tests/test_zoo.py and tests/test_zoo_variants.py run them).

A broken destination must be caught under conformance-quick (CATCH_PROFILE: every contract class is drawn in every
run, so a profile with more examples catches it too), and an unusual one must pass under conformance-ci (PASS_PROFILE:
the profile a connector's CI gates with; more examples are more chances of a false failure). ZOO_PROFILE names one
profile for both.
"""

import os
from dataclasses import dataclass

from conformance.results.report import suite_clauses

__all__ = ["CATCH_PROFILE", "PASS_PROFILE", "CLAUSE_TESTS", "CORE", "suite_tests", "Broken", "Group", "GROUPS",
           "TIMEOUT_CASE", "TIMEOUT_MUST_PASS", "UNUSUAL", "BARE_CLASS"]

CATCH_PROFILE = os.environ.get("ZOO_PROFILE", "conformance-quick")
PASS_PROFILE = os.environ.get("ZOO_PROFILE", "conformance-ci")

# The suite tests that check each clause, where the zoo runs fewer than all of them for speed (selected with -k; a
# typo shows up as "not checked"); any other clause gets every suite test marked with it (suite_tests).
CLAUSE_TESTS: dict[str, tuple[str, ...]] = {
    "parameters.shape": ("test_parameters_shape_in_every_state",),
    "parameters.defaults-valid": ("test_defaults_satisfy_their_validations",),
    "configure.valid": ("test_registered_config_is_accepted",),
    "configure.required": ("test_missing_required_parameter_is_named",),
    "configure.invalid-values": ("test_value_breaking_a_validation_is_rejected",
                                 "test_lookalike_of_a_declared_type_is_rejected"),
    "configure.unknown-key": ("test_unknown_key_is_named",),
    "configure.no-side-effects": ("test_configure_touches_nothing", "test_configure_touches_nothing_anywhere"),
    "open.creates-directory": ("test_open_creates_missing_parents",),
    "open.keeps-existing": ("test_open_keeps_existing_directory",),
    "open.not-a-directory": ("test_open_refuses_what_is_not_a_directory",),
    "open.keeps-data": ("test_reopened_destination_keeps_its_data",),
    "write.empty-batch": ("test_empty_batch_writes_nothing",),
    "write.round-trip": ("test_every_record_class_round_trips", "test_batches_read_back_as_the_model"),
    "write.count": ("test_write_returns_a_valid_count", "test_unspecified_keys_count_agrees_with_read_back"),
    "write.invalid-key-count": ("test_every_invalid_key_class_stops_the_batch",
                                "test_invalid_key_stops_the_batch_there"),
    "write.recovers": ("test_valid_batch_after_write_error", "test_valid_batch_after_an_io_error"),
    "write.no-mutation": ("test_write_leaves_records_unchanged",),
    "write.large-payload": ("test_large_payloads_round_trip",),
    "ack.in-order": ("test_acking_written_positions_in_order",),
    "lifecycle.valid-orders": ("test_valid_orders_write_ack_write", "test_valid_orders"),
    "lifecycle.out-of-order": ("test_each_forbidden_call", "test_out_of_order_calls"),
    "lifecycle.events": ("test_lifecycle_events_change_no_data",),
    "teardown.any-state": ("test_teardown_in_every_state",),
    "teardown.idempotent": ("test_second_teardown_does_nothing",),
    "teardown.keeps-data": ("test_data_survives_teardown",),
    "open.unwritable": ("test_open_reports_permission_denied",),
    "teardown.releases": ("test_teardown_releases_descriptors_and_threads",),
    "fault.disk-full": ("test_disk_fills_mid_batch",),
    "fault.io-error": ("test_io_error_mid_batch",),
    "safety.confined": ("test_every_hostile_key_stays_inside", "test_nothing_outside_the_directory_changes"),
    "safety.no-symlink-follow": ("test_symlink_at_a_key_is_not_followed",),
}

CORE = ("configure.valid", "write.count", "write.round-trip")


def suite_tests(clause_id: str) -> tuple[str, ...]:
    """Every suite test marked with the clause (the suite's markers are the one source of that)."""
    return tuple(sorted(test for test, clause in suite_clauses().items() if clause == clause_id))




@dataclass(frozen=True)
class Broken:
    """A registration in tests.zoo.broken and the clause it breaks."""

    name: str
    breaks: str
    known_miss: str = ""  # non-empty: why the suite may miss this bug (then an xfail, not a failure)
    also: tuple[str, ...] = ()  # invariants the same bug breaks in every other check (their failures are allowed)

    @property
    def spec(self) -> str:
        """Its --destination value."""
        return f"tests.zoo.broken:{self.name}"


@dataclass(frozen=True)
class Group:
    """Broken destinations checked in one subprocess: each breaks one of `clauses` and must pass the others.

    Only the suite tests of `clauses` run, so no time goes to checks whose verdict nobody asserts. A clause a
    destination breaks as a consequence of its bug stays out of its group (an empty batch that returns None
    also breaks write.count, since write([]) must return len([]) == 0).
    """

    clauses: tuple[str, ...]
    cases: tuple[Broken, ...]

    def must_pass(self, case: Broken) -> list[str]:
        """The group's clauses that `case` does not break."""
        return [c for c in self.clauses if c != case.breaks and c not in case.also]

    def tests(self) -> list[str]:
        """The suite tests to run: all of each clause's, since a clause passes only on the evidence of its checks."""
        return [name for c in self.clauses for name in CLAUSE_TESTS.get(c) or suite_tests(c)]


CONFIGURE = ("configure.required", "configure.invalid-values", "configure.unknown-key", "configure.no-side-effects")
OPEN = ("open.creates-directory", "open.keeps-existing", "open.not-a-directory", "open.unwritable")
TEARDOWN = ("teardown.any-state", "teardown.idempotent", "teardown.keeps-data", "teardown.releases")

GROUPS: dict[str, Group] = {
    "parameters": Group((*CORE, "parameters.shape", "parameters.defaults-valid"), (
        Broken("empty_description", "parameters.shape"),
        Broken("snake_case_name", "parameters.shape"),
        Broken("parameters_change_after_configure", "parameters.shape"),
        Broken("default_breaks_validation", "parameters.defaults-valid"),
    )),
    # parameters.shape is left out: it asks parameters() when configured and open, which a destination that
    # rejects its own config never reaches (not checked, for lack of evidence). parameters.defaults-valid is left out
    # too: given explicitly, the default of `sync` is refused as well (the same bug).
    "configure-valid": Group(("configure.valid", *CONFIGURE), (
        Broken("rejects_own_config", "configure.valid"),
    )),
    "configure": Group((*CORE, *CONFIGURE), (
        Broken("required_not_named", "configure.required"),
        Broken("required_accepted", "configure.required"),
        Broken("loose_bool", "configure.invalid-values"),
        Broken("ignores_unknown_keys", "configure.unknown-key"),
        Broken("mkdir_in_configure", "configure.no-side-effects"),
    )),
    "open": Group((*CORE, *OPEN), (
        Broken("mkdir_without_parents", "open.creates-directory"),
        Broken("clears_on_open", "open.keeps-existing"),
        Broken("not_a_directory_unnamed", "open.not-a-directory"),
        Broken("replaces_file_with_directory", "open.not-a-directory"),
        Broken("unwritable_unnamed", "open.unwritable"),
    )),
    "empty-batch": Group(("configure.valid", "write.empty-batch", "write.invalid-key-count", "write.large-payload"), (
        Broken("empty_batch_none", "write.empty-batch"),
        Broken("empty_batch_one", "write.empty-batch"),
    )),
    "drops-last": Group((*CORE, "write.empty-batch", "write.invalid-key-count", "write.no-mutation"), (
        Broken("drops_last_record", "write.round-trip"),
    )),
    # write.count is left out: its non-UTF-8-key check compares read-back after the WriteError with the model,
    # so a round-trip bug in the records before the rejected key also fails write.count (see the zoo report).
    "round-trip": Group(("configure.valid", "write.round-trip", "write.empty-batch", "write.no-mutation"), (
        Broken("first_record_wins", "write.round-trip"),
        Broken("ignores_deletes", "write.round-trip"),
    )),
    "count": Group(("configure.valid", "write.count", "write.empty-batch", "write.invalid-key-count",
                    "write.no-mutation"), (
        Broken("count_off_by_one", "write.count"),
        Broken("count_true", "write.count"),
    )),
    # write.recovers is left out: with a ValueError instead of WriteError there is no count to recover from, so
    # the clause has no evidence (not checked).
    "count-exception": Group((*CORE, "write.empty-batch", "write.no-mutation"), (
        Broken("value_error_on_invalid_key", "write.count"),
    )),
    # write.count is left out as for round-trip: the non-UTF-8-key check fails these through read-back.
    "invalid-key-count": Group(("configure.valid", "write.round-trip", "write.invalid-key-count",
                                "write.empty-batch", "write.no-mutation"), (
        Broken("skips_invalid_keys", "write.invalid-key-count"),
        Broken("written_always_zero", "write.invalid-key-count"),
        Broken("writes_valid_around_invalid", "write.invalid-key-count"),
    )),
    "recovers": Group((*CORE, "write.recovers", "write.invalid-key-count", "write.no-mutation"), (
        Broken("refuses_after_error", "write.recovers"),
    )),
    "no-mutation": Group((*CORE, "write.no-mutation"), (
        Broken("mutates_metadata", "write.no-mutation"),
    )),
    # write.round-trip and write.count are left out: the value it stores is the one it changed, which no record
    # gave the key (the session's "no value no record gave it" invariant fails the check that wrote it).
    "no-mutation-stored": Group(("configure.valid", "write.no-mutation"), (
        Broken("mutates_structured", "write.no-mutation"),
    )),
    "large-payload": Group((*CORE, "write.large-payload", "write.no-mutation"), (
        Broken("truncates_large_payloads", "write.large-payload"),
    )),
    # write.round-trip is left out: its payload bands go past 64 KiB, where this bug already shows.
    "large-payload-text": Group(("configure.valid", "write.count", "write.large-payload", "write.no-mutation"), (
        Broken("replaces_invalid_utf8", "write.large-payload"),
    )),
    "ack": Group((*CORE, "ack.in-order", "write.empty-batch"), (
        Broken("ack_expects_str", "ack.in-order"),
    )),
    # lifecycle.out-of-order is left out: its walk makes legal writes and acks too, and may hit the bug.
    "valid-orders": Group((*CORE, "ack.in-order", "lifecycle.valid-orders"), (
        Broken("second_write_after_ack_fails", "lifecycle.valid-orders"),
    )),
    "out-of-order": Group((*CORE, "ack.in-order", "lifecycle.valid-orders", "lifecycle.out-of-order"), (
        Broken("no_lifecycle_guard", "lifecycle.out-of-order"),
        Broken("configure_twice_allowed", "lifecycle.out-of-order"),
    )),
    # The events' checks send them in every session's order Conduit uses; a write outside the area in one of them
    # is safety.confined's, charged by the watch every call is under (so lifecycle.events stops there too).
    "events": Group((*CORE, "lifecycle.events", "safety.confined"), (
        Broken("created_needs_directory", "lifecycle.events"),
        Broken("updated_deletes_data", "lifecycle.events"),
        Broken("deleted_hangs", "lifecycle.events"),
        Broken("created_marker_beside_directory", "safety.confined", also=("lifecycle.events",)),
    )),
    # Each loses what a previous destination on its location wrote only when a new one opens there: within one
    # destination's life every read-back is right. A rotated file also loses the witness records lifecycle.events
    # writes before the events and reads back after a new open, which leaves that clause not checked, saying so.
    "reopen": Group((*CORE, "open.keeps-data", "open.keeps-existing", "teardown.keeps-data", "lifecycle.events"), (
        Broken("path_rotates_on_open", "open.keeps-data", also=("lifecycle.events",)),
        Broken("sweeps_temporary_names_on_open", "open.keeps-data"),
    )),
    "teardown": Group((*CORE, *TEARDOWN), (
        Broken("teardown_raises_unopened", "teardown.any-state"),
        Broken("teardown_twice_raises", "teardown.idempotent"),
        Broken("teardown_deletes_data", "teardown.keeps-data"),
        Broken("leaks_directory_fd", "teardown.releases"),
        Broken("leaks_flusher_thread", "teardown.releases"),
        Broken("leaks_socket", "teardown.releases"),  # caught after the grace a socket gets to close
    )),
    # An in-place write also breaks fault.io-error (an EIO mid-write leaves the file cut short).
    "disk-full": Group((*CORE, "fault.disk-full", "safety.confined"), (
        Broken("writes_in_place", "fault.disk-full"),
    )),
    "io-error": Group((*CORE, "fault.io-error", "fault.disk-full", "safety.confined"), (
        Broken("skips_records_on_io_error", "fault.io-error"),
    )),
    "safety": Group((*CORE, "safety.confined", "safety.no-symlink-follow"), (
        Broken("checkpoint_beside_directory", "safety.confined"),
        Broken("follows_symlinks", "safety.no-symlink-follow"),
    )),
    # One file named by a path parameter (path_param): the file's parent plays the directory's part.
    "path-open": Group((*CORE, *OPEN), (
        Broken("path_without_parents", "open.creates-directory"),
        Broken("path_lock_in_parent_on_open", "open.keeps-existing", also=("safety.confined",)),
    )),
    # path_lock_beside_parent and path_index_beside_file are caught on the real disk, path_scratch_in_tmpdir only in
    # the fake filesystem (which sees $TMPDIR).
    "path-safety": Group((*CORE, "safety.confined", "safety.no-symlink-follow"), (
        Broken("path_lock_beside_parent", "safety.confined"),
        Broken("path_index_beside_file", "safety.confined"),
        Broken("path_scratch_in_tmpdir", "safety.confined"),
        Broken("path_follows_symlink", "safety.no-symlink-follow"),
    )),
    # fault.io-error is left out: an error injected at the second write leaves half a line too.
    "path-faults": Group((*CORE, "fault.disk-full"), (
        Broken("path_half_line_kept", "fault.disk-full"),
    )),
}

TIMEOUT_CASE = Broken("hangs_on_big_batch", "call.timeout")
TIMEOUT_MUST_PASS = ("configure.valid", "parameters.shape", "write.empty-batch")

UNUSUAL = ["async_file", "memory_kv", "batched_reference", "capped_values"]
BARE_CLASS = "tests.zoo.unusual:GuardedFileDestination"
