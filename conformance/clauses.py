"""The clause registry: every clause id of SPEC section 4, its rule in one sentence, and what checking it needs."""

from dataclasses import dataclass

__all__ = ["Clause", "CLAUSES", "clause", "READ_BACK", "DIRECTORY"]

READ_BACK = "read_back"
DIRECTORY = "directory_param"


@dataclass(frozen=True)
class Clause:
    """One clause of the contract."""

    id: str
    rule: str
    area: str
    needs: tuple[str, ...] = ()


_ALL = [
    Clause("parameters.shape", "parameters() works in every state and returns the same mapping each time; "
           "names match ^[a-zA-Z0-9.]+$; every description is non-empty.", "parameters"),
    Clause("parameters.defaults-valid", "Every default satisfies its own parameter's validations.", "parameters"),
    Clause("configure.valid", "The registered config is accepted.", "configure"),
    Clause("configure.required", "Removing any one required parameter makes configure raise ConfigError "
           "whose message names it.", "configure"),
    Clause("configure.invalid-values", "A value that breaks a declared validation (type, range, inclusion, "
           "regex) raises ConfigError.", "configure"),
    Clause("configure.unknown-key", "A key that is not a parameter raises ConfigError naming it.", "configure"),
    Clause("configure.no-side-effects", "configure creates, changes and deletes nothing (no directory, no file).",
           "configure"),
    Clause("open.creates-directory", "open creates the configured directory, missing parents included.", "open",
           (DIRECTORY,)),
    Clause("open.keeps-existing", "An existing directory and the files already in it are left untouched.", "open",
           (DIRECTORY,)),
    Clause("open.not-a-directory", "If the path exists and is not a directory, open raises a clear error naming "
           "the path, and nothing is created or changed.", "open", (DIRECTORY,)),
    Clause("open.unwritable", "If the directory cannot be created (permission denied), open raises a clear error "
           "naming the path.", "open", (DIRECTORY,)),
    Clause("write.empty-batch", "An empty batch returns 0 and changes nothing.", "write"),
    Clause("write.round-trip", "After a successful batch, read-back maps each key to the after.bytes() of its last "
           "record so far; after=None removes the key.", "write", (READ_BACK,)),
    Clause("write.count", "write returns exactly len(records) or raises WriteError with 0 <= written < "
           "len(records); anything else breaks the clause.", "write"),
    Clause("write.invalid-key-count", "For a batch whose first invalid key is at index i, write raises "
           "WriteError(written=i) and read-back shows exactly records[:i] applied.", "write"),
    Clause("write.recovers", "After a WriteError, the next valid batch is written normally.", "write"),
    Clause("write.no-mutation", "write does not change the records it is given.", "write"),
    Clause("write.large-payload", "Payloads of at least 4 MiB and arbitrary bytes (NUL, invalid UTF-8) "
           "round-trip exactly.", "write", (READ_BACK,)),
    Clause("ack.in-order", "Acking the position of each written record, in order, succeeds and changes no "
           "written data.", "ack"),
    Clause("lifecycle.valid-orders", "Every call sequence that the lifecycle table allows succeeds, for any "
           "interleaving of writes and acks.", "lifecycle"),
    Clause("lifecycle.out-of-order", "Every call that the lifecycle table forbids raises LifecycleError and "
           "changes nothing.", "lifecycle"),
    Clause("teardown.any-state", "teardown succeeds in every state: new, configured, open, after a failed open, "
           "after a failed write.", "teardown"),
    Clause("teardown.idempotent", "A second teardown succeeds and does nothing.", "teardown"),
    Clause("teardown.releases", "After teardown the destination holds no open file descriptors and no running "
           "threads it started.", "teardown"),
    Clause("teardown.keeps-data", "Everything written before teardown reads back the same after it.", "teardown",
           (READ_BACK,)),
    Clause("fault.disk-full", "When the disk fills mid-batch, write raises WriteError counting exactly the records "
           "fully written, leaving no partial or temporary file.", "fault", (DIRECTORY, READ_BACK)),
    Clause("fault.io-error", "The same as fault.disk-full for any other OSError while writing (EIO, EACCES).",
           "fault", (DIRECTORY, READ_BACK)),
    Clause("safety.confined", "Nothing is ever created, changed or removed outside the configured directory, "
           "whatever the keys.", "safety", (DIRECTORY,)),
    Clause("safety.no-symlink-follow", "Writing a key whose name in the directory is a symlink never writes "
           "through the link to its target.", "safety", (DIRECTORY,)),
    Clause("call.timeout", "A call that does not return within the per-call limit fails its clause with a "
           "timeout report, and the run goes on.", "harness"),
]

CLAUSES: dict[str, Clause] = {c.id: c for c in _ALL}


def clause(clause_id: str) -> Clause:
    """The clause with this id; KeyError names the unknown id."""
    try:
        return CLAUSES[clause_id]
    except KeyError:
        raise KeyError(f"unknown clause id {clause_id!r}") from None
