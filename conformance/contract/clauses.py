"""The clause registry: every clause id of the contract, its rule in one sentence, what checking it needs, and
the minimum evidence a run must gather before the clause may be reported as passed."""

from dataclasses import dataclass
from typing import Any

from harness.destination import LIFECYCLE, METHODS
from harness.registration import Registration

__all__ = [
    "Clause",
    "CLAUSES",
    "clause",
    "READ_BACK",
    "DIRECTORY",
    "LOCATION",
    "NO_LOCATION",
    "ENGINE",
    "BACKEND",
    "NO_BACKEND",
    "BACKEND_RESET_EVIDENCE",
    "INVALID_KEY_CLASSES",
    "OPERATIONS",
    "PAYLOAD_BANDS",
    "FORBIDDEN_CALLS",
    "TEARDOWN_STATES",
    "UNKNOWN_KEY_CLASSES",
    "NOT_A_DIRECTORY_KINDS",
    "PATH_SYMLINK_EVIDENCE",
    "OWN_NAME_SYMLINK_EVIDENCE",
    "OWN_NAME_KEY_EVIDENCE",
    "LIFECYCLE_EVENT_EVIDENCE",
    "STALL_EVIDENCE",
    "STALL_EVENT_EVIDENCE",
    "WITNESS_KEY_EVIDENCE",
    "SAFETY_CONFINED_EVIDENCE",
    "REOPEN_EVIDENCE",
    "payload_band",
    "location_param",
    "side_file",
    "required_evidence",
]

READ_BACK = "read_back"
DIRECTORY = "directory_param"
# What open.*, fault.* and safety.* need: a directory parameter or a file-path parameter. The suite modules skip
# those clauses themselves (with NO_LOCATION), since the plugin only knows the needs READ_BACK and DIRECTORY.
LOCATION = "directory_param or path_param"
NO_LOCATION = "needs directory_param or path_param, which the registration does not name"
ENGINE = "conduit engine"
# What fault.backend-* need: a server the destination talks to over TCP, declared so a proxy can go in between (the
# suite module skips them itself, with NO_BACKEND; without Toxiproxy it says so too).
BACKEND = "backends"
NO_BACKEND = ("no backend declared (Registration.backends names no server the destination talks to over TCP, "
              "so no fault proxy can go between them)")
BACKEND_RESET_EVIDENCE = ("connection reset at the batch's first byte", "connection dropped after part of the "
                          "batch was sent", "batch stored once the backend was back")

# Contract classes that every run exercises by construction (explicit examples, not lucky draws).
INVALID_KEY_CLASSES = ("none", "structured", "empty", "slash", "NUL", "dot", "dot-dot", "over 255 bytes")
OPERATIONS = ("create", "update", "delete", "snapshot")
# Payload sizes on a log scale, up to 1 MiB, which every transport carries (write.large-payload goes past 4 MiB).
PAYLOAD_BANDS = ((0, 0), (1, 64), (65, 1024), (1025, 16384), (16385, 262144), (262145, 1 << 20))
TEARDOWN_STATES = ("new", "configured", "open", "after a failed open", "after a failed write")
# Every (state, call) the lifecycle table (harness.destination.LIFECYCLE, the interface's) forbids, in the states a
# run reaches by allowed calls alone; "open failed" needs a location to make open fail, and teardown.* covers it.
FORBIDDEN_CALLS = tuple((state, call) for state, allowed in LIFECYCLE.items() if state != "open failed"
                        for call in METHODS if call not in ("parameters", "teardown") and call not in allowed)
UNKNOWN_KEY_CLASSES = ("plain", "dotted", "sdk.-prefixed", "outside the name alphabet")
NOT_A_DIRECTORY_KINDS = ("regular file", "regular file as a parent", "symlink to a file", "dangling symlink", "FIFO")
# safety.no-symlink-follow with path_param: keys are not names there, so the links go where it creates files.
PATH_SYMLINK_EVIDENCE = ("symlink where it creates a file, on a write", "symlink where it creates a file, on a delete")
# Optional (a destination may create no name of its own): a dry run of a whole lifecycle saw names it creates itself
# (conformance.execute.own_names); links went there through teardown, and records were written under them.
OWN_NAME_SYMLINK_EVIDENCE = "symlink at a name it creates itself, through teardown"
OWN_NAME_KEY_EVIDENCE = "key named as a file it creates itself"
# lifecycle.events: one label per event, and read-back compared across them (dropped without read_back), with the
# contract-space witness keys among the data (dropped too for a registration that declares its keys).
LIFECYCLE_EVENT_EVIDENCE = ("OnCreated answered on a first start", "OnUpdated answered with a changed config",
                            "OnDeleted answered with the last config", "read-back unchanged across the events",
                            "witness keys kept across the events")
# write.round-trip with the contract's keys: keys one folding (of conformance.generate.witnesses) makes one name,
# read back apart, and names beginning with a dot.
WITNESS_KEY_EVIDENCE = ("dot-leading key", "keys equal under Unicode normalization", "keys equal under case folding",
                        "keys equal under Windows' trimming")
SAFETY_CONFINED_EVIDENCE = ("every hostile key tried", "every hostile metadata value tried")
# open.keeps-data: a second destination opened on what a first one wrote; the middle label is asked only of the
# contract's keys (a registration declaring its own keys may not allow the temporary-looking ones).
REOPEN_EVIDENCE = ("reopened on its own data", "keys shaped like temporary names reopened", "wrote after reopening")
# write.invalid-key-count's evidence for a registration that declares its invalid keys (required_evidence).
_DECLARED_INVALID_KEY = ("declared invalid key rejected at index 0", "declared invalid key rejected at a later index")
# fault.backend-stall: every call of the lifecycle under a stall; the events only where the destination has them.
STALL_EVIDENCE = ("write failed with the backend stalled", "write retried after a failure with the backend stalled",
                  "torn down with the backend stalled", "torn down idle with the backend stalled",
                  "ack answered with the backend stalled", "open answered with the backend stalled")
STALL_EVENT_EVIDENCE = tuple(f"{event} answered with the backend stalled" for event in ("OnCreated", "OnUpdated",
                                                                                        "OnDeleted"))
_KEY_SYMLINK_EVIDENCE = ("symlink at a key written", "symlink at a key removed")


def location_param(registration: Registration) -> str | None:
    """The parameter naming where the destination writes: its directory_param, or else its path_param."""
    location = registration.location
    return location.param if location is not None else None


def side_file(name: str, file_name: str) -> bool:
    """Whether `name`, in the directory of a path_param destination's file `file_name`, is the destination's: the
    file itself or a side file, whose name begins with the file's name or with a dot and the file's name
    (data.db-journal, data.db-wal, data.jsonl.tmp, .data.jsonl.lock)."""
    return name.startswith(file_name) or name.startswith("." + file_name)


def payload_band(size: int) -> str:
    """The evidence label of a payload size: its band on the log scale."""
    for low, high in PAYLOAD_BANDS:
        if low <= size <= high:
            return f"payload of {_size(low)}" if low == high else f"payload of {_size(low)} to {_size(high)}"
    return f"payload over {_size(PAYLOAD_BANDS[-1][1])}"


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1024)):
        if n >= scale and n % scale in (0, 1):
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n // scale} {unit}+1 B"
    return f"{n} B"


@dataclass(frozen=True)
class Clause:
    """One clause of the contract: id, rule, area, what checking it needs, and its minimum evidence."""

    id: str
    rule: str
    area: str
    needs: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # what a run must have exercised (each at least once) for "passed"
    how: str = ""  # how the suite checks it, in one sentence
    # Labels a check may record beyond the required ones: shown in the report, required only where
    # required_evidence says so for a registration (declared keys), or never (a variant not every run can reach).
    optional: tuple[str, ...] = ()

    def declares(self, label: str) -> bool:
        """Whether a check may record `label` for this clause (conformance.contract.evidence enforces it)."""
        return label in self.evidence or label in self.optional


def _labels(*groups: Any) -> tuple[str, ...]:
    return tuple(label for group in groups for label in group)


_ROUND_TRIP = _labels(
    (f"{op} with after" for op in OPERATIONS),
    (f"{op} with after=None" for op in OPERATIONS),
    (payload_band(low) for low, _ in PAYLOAD_BANDS),
    ("structured payload", "overwrite of a written key", "removal of a written key", "key of 250 to 255 bytes",
     "non-ASCII key", "long key of escapable characters"),
    WITNESS_KEY_EVIDENCE,
)

_ALL = [
    Clause("parameters.shape", "parameters() works in every state and returns the same mapping each time; "
           "names match ^[a-zA-Z0-9.]+$; every description is non-empty.", "parameters",
           evidence=tuple(f"read when {s}" for s in ("new", "configured", "open", "torn down")),
           how="parameters() is called in each state and compared with the first answer; names and descriptions "
               "are checked."),
    Clause("parameters.defaults-valid", "Every default satisfies its own parameter's validations, and configure "
           "accepts it given explicitly (as Conduit's UI and config files write it).", "parameters",
           evidence=("parameters listed", "every default accepted given explicitly"),
           how="each default is validated against its own parameter's type and validations, and configure() gets "
               "the registered config with each default written out, one at a time."),
    Clause("configure.valid", "The registered config is accepted, also with any one typed parameter set to another "
           "spelling its declared type allows as Go parses it (strconv.ParseBool, ParseInt, ParseFloat, "
           "time.ParseDuration) that passes its validations.", "configure",
           evidence=("registered config accepted", "typed parameters accepted in every valid spelling"),
           how="configure() with the registered config, and with each int, float, bool and duration parameter in turn "
               "set to each valid spelling of its type that passes its validations (bool: 1, t, T, TRUE, true, True "
               "and the false ones; int: a sign, leading zeros; float: .5, 5., exponents, inf; duration: 1h2m3.5s, "
               "300ms, +1.5h, 0), in every run; a connector SDK's own sdk.* parameters are the SDK's to parse."),
    Clause("configure.required", "Leaving out any one parameter the registered config sets either makes configure "
           "raise ConfigError whose message names it, or, unless the parameter is declared required, is accepted "
           "(its default applies).", "configure", evidence=("set parameter removed",),
           optional=("declared-required parameter removed",),
           how="each parameter the registered config sets, declared required or not, is left out in turn: "
               "configure() must raise a ConfigError naming it (always, for a declared-required one), or accept "
               "the config, creating nothing, with teardown() then returning; not applicable only when the "
               "registered config sets no parameter."),
    Clause("configure.invalid-values", "A value that breaks a declared validation (type, range, inclusion, "
           "regex) raises ConfigError; the type is the declared type as Go parses it, so lookalikes other parsers "
           "take (1_0, non-ASCII digits, yes, on, TrUe, a duration without a unit) break it.", "configure",
           evidence=("breaking value rejected", "lookalikes of every declared type rejected"),
           how="every parameter with a type or validation gets a value breaking each, one at a time; and in every "
               "run each int, float, bool and duration parameter gets every lookalike of its type (int: 1_0, +0_5, "
               "non-ASCII and full-width digits, 0x10, 1e3; float: non-ASCII and full-width digits, 1,5; bool: yes, "
               "no, on, off, y, n, TrUe, 01; duration: 10, 1d, 1H, 1hr, PT5S); a connector SDK's own sdk.* "
               "parameters are the SDK's to parse."),
    Clause("configure.unknown-key", "A key that is not a parameter raises ConfigError naming it.", "configure",
           evidence=tuple(f"{c} unknown key" for c in UNKNOWN_KEY_CLASSES),
           how="unknown keys of each kind (plain, dotted, sdk.-prefixed, outside the name alphabet) are added to "
               "the registered config."),
    Clause("configure.no-side-effects", "configure creates, changes and deletes nothing (no directory, no file).",
           "configure", evidence=("configure watched",),
           how="the temp tree (and, in-process, the whole fake filesystem with $TMPDIR, $HOME and the working "
               "directory) and read-back are compared before and after configure()."),
    Clause("open.creates-directory", "open creates the configured directory (with path_param, the file's parent "
           "directory), missing parents included.", "open",
           (LOCATION,), evidence=tuple(f"created at depth {d}" for d in (1, 2, 3)),
           how="the directory (with path_param, the file's parent) is configured 1, 2 and 3 levels below an "
               "existing one."),
    Clause("open.keeps-existing", "An existing directory and the files already in it are left untouched; with "
           "path_param, open adds nothing to the file's existing parent directory but the file and its side files.",
           "open", (LOCATION,), evidence=("existing tree kept",),
           how="an existing tree of files and a sub-directory, with unusual modes, is compared (content, kind, "
               "mode, mtime) before and after open(); with path_param the tree is the file's parent directory, "
               "and every entry open adds there must be the file or a side file."),
    Clause("open.not-a-directory", "If the path (with path_param, the file's parent directory) exists and is not a "
           "directory when open is called, open raises a clear error naming the path, and nothing is created or "
           "changed; if it was already there at configure, configure may refuse it instead, by the same rule.",
           "open", (LOCATION,), evidence=tuple(f"refused: {k}" for k in NOT_A_DIRECTORY_KINDS),
           optional=_labels((f"refused at configure: {k}" for k in NOT_A_DIRECTORY_KINDS),
                            (f"refused at open, planted before configure: {k}" for k in NOT_A_DIRECTORY_KINDS)),
           how="a regular file, a file as a parent, a symlink to a file, a dangling symlink and a FIFO are put "
               "at the path (with path_param, at the file's parent) after a successful configure, as a path goes "
               "bad between a pipeline's creation and its start, and open must refuse each; each is also put there "
               "before configure, which may refuse it (naming the path, nothing changed) or leave it to open."),
    Clause("open.unwritable", "If the directory (with path_param, the file's parent directory) cannot be created "
           "(permission denied), open raises a clear error naming the path.", "open", (LOCATION,),
           evidence=("refused under a read-only parent",),
           how="in a fake filesystem that enforces permissions, the parent is made read-only."),
    Clause("open.keeps-data", "A destination opened on the location a previous destination wrote and tore down "
           "keeps what it holds: read-back right after the new open equals read-back just before it, and its writes "
           "add to it.", "open", (LOCATION, READ_BACK), evidence=REOPEN_EVIDENCE,
           how="a first destination writes witness records (every operation, an empty, a structured and a drawn "
               "payload, a key of every escapable character, dot-leading keys and keys shaped like temporary and "
               "editor files: .tmp, .tmp-x, x.tmp, ~x, x~, .x.swp and more, then a removal and an overwrite) and is "
               "torn down; a second one on the same location (as Conduit restarts a pipeline) is configured, and "
               "read-back just before and right after its open() must be equal; a batch it then writes must read "
               "back as that plus the batch."),
    Clause("write.empty-batch", "An empty batch returns 0 and changes nothing.", "write",
           evidence=("empty batch written",), how="write([]) after open."),
    Clause("write.round-trip", "After a successful batch, read-back maps each key to the after.bytes() of its last "
           "record so far; after=None removes the key.", "write", (READ_BACK,), evidence=_ROUND_TRIP,
           optional=(f"payload over {_size(PAYLOAD_BANDS[-1][1])}", OWN_NAME_KEY_EVIDENCE),
           how="read-back is compared with the model after every batch; every operation with and without after, "
               "every payload size band, and a key of 128 to 255 bytes made only of characters destinations escape "
               "(%, <>:\"|?*\\, control characters, spaces, multi-byte UTF-8) are written in every run; keys of "
               "such characters come at every length from 1 to 255 bytes. Every run also writes the contract-space "
               "witness keys, each with a value of its own, which must read back apart: keys equal under Unicode "
               "normalization (e\\u0301 and \\u00e9), under case folding (A and a, \\u00df and SS) or under "
               "Windows' trimming (t and t.), and names beginning with a dot (.env, ..x). And, first in a batch "
               "that other records follow, a record under each name the destination creates itself in its area "
               "(a dry run of a whole lifecycle: configure, OnCreated, open, writes, ack, teardown, then runs with "
               "OnUpdated and OnDeleted, whose file calls audit hooks record, transient names included) that is a "
               "valid key, and under the next number of a numbered one; they must read back, and the other "
               "records survive them."),
    Clause("write.count", "write returns exactly len(records) or raises WriteError with 0 <= written < "
           "len(records); anything else breaks the clause.", "write",
           evidence=("whole batch counted", "WriteError counted", "batch of 33 records or more counted",
                     "non-UTF-8 key's count and read-back agree"),
           how="every write of every check is held to this, with and without invalid keys, and batches of more than "
               "32 records are written in every run; a non-UTF-8 key (which the contract leaves open) may be "
               "accepted or rejected, but count and read-back must agree."),
    Clause("write.invalid-key-count", "For a batch whose first invalid key is at index i, write raises "
           "WriteError(written=i) and read-back shows exactly records[:i] applied.", "write",
           evidence=_labels(*((f"{c} key rejected at index 0", f"{c} key rejected at a later index")
                              for c in INVALID_KEY_CLASSES)),
           optional=_DECLARED_INVALID_KEY,
           how="every kind of invalid key is put at index 0 and at a later index, in every run."),
    Clause("write.recovers", "After a WriteError, the next valid batch is written normally.", "write",
           evidence=("recovered after an invalid key",), optional=("recovered after an I/O error",),
           how="a valid batch follows a WriteError from an invalid key and, in-process, from an injected I/O "
               "error; read-back must equal the model."),
    Clause("write.no-mutation", "write does not change the records it is given.", "write",
           evidence=("records unchanged after a valid batch", "records unchanged after a batch with an invalid key"),
           how="every record is serialised before and after write and compared."),
    Clause("write.large-payload", "Payloads of at least 4 MiB and arbitrary bytes (NUL, invalid UTF-8) "
           "round-trip exactly.", "write", (READ_BACK,),
           evidence=("payload of 4 MiB or more round-tripped", "payload of 16 MiB+1 B or more round-tripped"),
           how="payloads of 4 MiB and more, with NUL and invalid UTF-8, are written and read back; every example "
               "also writes one of 16 MiB + 1 B or more (past 8 MiB twice over), so a value cut at a buffer of up "
               "to 8 MiB fails."),
    Clause("ack.in-order", "Acking the position of each written record, in order, succeeds and changes no "
           "written data; positions are opaque bytes, never to be parsed.", "ack",
           evidence=("written positions acked", "positions a failed batch wrote acked",
                     "opaque positions of every shape acked"),
           how="every written position is acked in order, also those of the records a failed batch wrote; read-back "
               "must not change. Positions are opaque, unique and of every shape in every run: decimal, binary "
               "(NUL, not UTF-8), LSN-like (0/16B3748), JSON, long (500 bytes of every byte value), UUID-like."),
    Clause("lifecycle.valid-orders", "Every call sequence that the lifecycle table allows succeeds, for any "
           "interleaving of writes and acks.", "lifecycle",
           evidence=("walk reached open", "walk reached torn down", "write after ack"),
           how="a state machine walks allowed orders; a fixed walk interleaves writes and acks."),
    Clause("lifecycle.out-of-order", "Every call that the lifecycle table forbids raises LifecycleError and "
           "changes nothing.", "lifecycle", evidence=tuple(f"{call} when {state}" for state, call in FORBIDDEN_CALLS),
           how="each forbidden (state, call) pair is tried in every run; a state machine mixes them with allowed "
               "calls."),
    Clause("lifecycle.events", "The lifecycle events Conduit sends (OnCreated with the config on a first start, "
           "OnUpdated with the configs before and after a change, OnDeleted with the last config) each return within "
           "the call limit, write or lose no record, and change nothing outside the destination's area.",
           "lifecycle", evidence=LIFECYCLE_EVENT_EVIDENCE,
           how="three runs on one store, each a fresh destination, as Conduit makes them: configure, "
               "lifecycle_on_created(config) (its directory not created yet), open, a batch, teardown; configure "
               "with a changed config (a parameter's default written out), lifecycle_on_updated(before, after), "
               "open, a batch, teardown; lifecycle_on_deleted(last config) and teardown alone. With the contract's "
               "keys, the first batch also holds the witness keys (dot-leading names such as .env, keys equal under "
               "a Unicode, case or Windows folding), which the events must keep. Read-back must equal "
               "the model right after each event, and everything beside the area be as it was (in-process, every "
               "file the events' Python code touches is watched too)."),
    Clause("teardown.any-state", "teardown succeeds in every state: new, configured, open, after a failed open, "
           "after a failed write.", "teardown", evidence=tuple(f"torn down {s}" for s in TEARDOWN_STATES),
           how="teardown() from each state; a failed open is reached by putting a regular file where the directory "
               "goes (with path_param, the file's parent) after a successful configure."),
    Clause("teardown.idempotent", "A second teardown succeeds and does nothing.", "teardown",
           evidence=tuple(f"torn down twice {s}" for s in TEARDOWN_STATES),
           how="a second teardown() from each state; files and read-back must not change."),
    Clause("teardown.releases", "After teardown the destination holds no open file descriptors and no running "
           "threads it started.", "teardown", evidence=("released after writes", "released after a failed write"),
           optional=("released after an I/O error",),
           how="open descriptors and threads are compared before configure and after teardown, after clean and "
               "after failed writes; besides, in every session of every check, after a teardown that returns, "
               "descriptors and threads must be back at the baseline taken before the factory ran (the harness's "
               "own event loop and its default executor excepted)."),
    Clause("teardown.keeps-data", "Everything written before teardown reads back the same after it.", "teardown",
           (READ_BACK,), evidence=("read back after teardown", "read back after teardown following a failed write"),
           how="read-back after teardown equals the model, also when the last batch failed part-way; besides, in "
               "every session of every check, read-back right after the first teardown must equal read-back right "
               "before it."),
    Clause("fault.disk-full", "When the disk fills mid-batch, write raises WriteError counting exactly the records "
           "fully written, leaving no partial or temporary file.", "fault", (LOCATION, READ_BACK),
           evidence=("disk filled before the batch's first record was stored",
                     "disk filled after some of the batch was stored"),
           how="a dry run of the same batch measures the bytes it stores; the disk is then left with 0 bytes, a "
               "drawn amount and one byte less than that free, so it fills inside the batch; as on a real disk, "
               "the os.write that crosses the limit is short (it writes what fits) and the next one fails with "
               "ENOSPC. The batch overwrites and removes keys written before it. The record that failed may be "
               "absent or whole, never partial."),
    Clause("fault.io-error", "The same as fault.disk-full for any other OSError while writing (EIO, EACCES); a "
           "failed fsync of a file the destination keeps is such an error: never retried or ignored, it raises "
           "WriteError.",
           "fault", (LOCATION, READ_BACK),
           evidence=("error injected before the batch's first record was stored",
                     "error injected after some of the batch was stored", "device kept failing after the error"),
           how="a dry run of the same batch counts the destination's open, write, rename and fsync calls and its "
               "removals of existing files; an EIO or EACCES is then injected at the first and the last of "
               "the calls at every point the batch used, and as a sticky fault (the device stays failed: every "
               "later call that changes the filesystem fails too, so undoing and cleaning up fail as well; an "
               "existing file still opens) at a drawn and the last call of every point the batch used, after "
               "which the rest of the batch is written again with the device still failed, as a pipeline retries "
               "(the two counts together must match read-back); leftover temporary "
               "files are tolerated then, but every key must hold its due value. The device also fails inside a "
               "call, once a drawn number of the batch's bytes and once all but its last byte are stored (a short "
               "write first), and every batch holds a value of over 64 KiB. A write that reports every record "
               "written although an fsync failed inside the batch on a file the destination keeps fails the clause: "
               "the injector follows the file through renames, links and unlinks; one linked nowhere once write "
               "returns was discarded, a directory or a file held before the batch still linked is kept, and a "
               "file the batch created and left linked (a temporary file a failed device kept) is kept when "
               "read-back of the keys in play changes with it moved aside (v1.4)."),
    Clause("fault.backend-reset", "When the connection to the backend drops inside a batch, write raises WriteError "
           "counting exactly what the backend holds of the batch (or, having retried, returns len(records) with all "
           "of it held); nothing acknowledged before is lost, and once the backend is reachable again the next "
           "batch is stored.", "fault", (BACKEND, READ_BACK), evidence=BACKEND_RESET_EVIDENCE,
           how="Toxiproxy goes between the destination and each backend it declares (the config, or its reroute, "
               "points it at the proxy; read-back goes to the backend directly); after a first batch is written, a "
               "reset_peer toxic resets the connection at the batch's first byte, and in another session a "
               "limit_data toxic closes it once a drawn number of bytes of the batch has passed (fewer than the "
               "batch's keys and values hold, so it lands inside the batch); read-back must then equal the model "
               "with the records the error counted, the toxic is removed, and a further batch must be stored. The "
               "same batches are first written without a fault, so a failure there is not taken for evidence."),
    Clause("fault.backend-stall", "When the backend stops answering, no call waits for it for ever: a write and "
           "the next write after it failed, ack, open, the lifecycle events and teardown each return or raise within "
           "the per-call limit.", "fault", (BACKEND,),
           evidence=STALL_EVIDENCE, optional=STALL_EVENT_EVIDENCE,
           how="timeout toxics in Toxiproxy (no timeout: the connection stays open) swallow everything either way, "
               "so the backend neither answers nor closes a connection. In every example, each sequence in a "
               "destination of its own: a batch written, the stall, a second batch and the pipeline's retry of it "
               "(a reconnect path), teardown; a batch, the stall while the destination is idle, teardown; a batch, "
               "the stall, each written position acked, teardown; and as Conduit sends the events: configure, the "
               "stall, lifecycle_on_created, open, teardown; configure with a changed config, the stall, "
               "lifecycle_on_updated, teardown; the stall, lifecycle_on_deleted alone, teardown. Each call must "
               "return or raise within the per-call limit; an event the destination lacks is not sent."),
    Clause("safety.confined", "Nothing is ever created, changed or removed outside the configured directory "
           "(with path_param: outside the file, its side files and the directories open created for them), "
           "whatever the keys and the records' metadata.", "safety", (LOCATION,), evidence=SAFETY_CONFINED_EVIDENCE,
           how="every hostile key (traversal, absolute path, NUL, overlong) is written and deleted with the tree "
               "around the directory watched (in-process: the whole fake filesystem), and so are valid keys whose "
               "records carry every hostile value (traversal, absolute path, backslashes, control characters, "
               "300 bytes) in Conduit's metadata keys of free text (opencdc.collection, conduit.source.*), which a "
               "destination routing by them must not follow outside; with path_param the file's "
               "parent already exists and holds watched files too. Besides, in every session of every check of an "
               "in-process destination, every file its Python code creates, changes or removes during any call "
               "(seen through audit hooks) must lie inside the area, and $TMPDIR, $HOME, $XDG_* and the working "
               "directory point into a watched tree that must be as it was at the end (C code's files too); a "
               "connector process starts with $TMPDIR, $HOME and $XDG_* in a tree of its own, which must be empty "
               "at the end of each session. Either tree is watched as files appear (Linux inotify): anything "
               "created there during a call fails, even if a later call removes it, naming both calls."),
    Clause("safety.no-symlink-follow", "Writing a key whose name in the directory is a symlink never writes "
           "through the link to its target; neither does any call (a write, ack, teardown) that finds a symlink "
           "where the destination creates a file of its own.", "safety", (LOCATION,),
           evidence=(*_KEY_SYMLINK_EVIDENCE, *PATH_SYMLINK_EVIDENCE), optional=(OWN_NAME_SYMLINK_EVIDENCE,),
           how="symlinks to a file (in every run), a directory or nothing are planted, after open, at the key and "
               "at every name the destination itself creates in its area in any call of its life (temporary files, "
               "compaction targets, locks; created then renamed away or removed too), and at the next 32 of any "
               "numbered one: the names come from a dry run of a whole lifecycle in the same place (configure, "
               "OnCreated, open, writes, ack, teardown; once per registration also runs with OnUpdated and "
               "OnDeleted) whose file calls audit hooks record; a name that exists after open is the destination's "
               "own and gets none. The key is then written or deleted, acked and the destination torn down, and "
               "the links' targets must be untouched after the write and after teardown; with path_param, whose "
               "keys are not names, the links go only at the names the dry run saw."),
    Clause("call.timeout", "A call that does not return within the per-call limit fails its clause with a "
           "timeout report, and the run goes on.", "harness", evidence=("call returned within the limit",),
           how="every destination call runs under the per-call limit."),
    Clause("pipeline.delivers", "In a real Conduit pipeline whose source replays the suite's records, every record "
           "reaches the destination: once the pipeline drains, read-back equals the model.", "pipeline", (ENGINE,),
           evidence=("pipeline drained",),
           how="Conduit (--conformance-conduit) runs a pipeline from a source replaying the suite's batches (keys, "
               "operations, payloads, metadata and positions) into the destination, run as a standalone connector "
               "(an in-process destination is served through the Python SDK); once Conduit has acknowledged "
               "every record, read-back must equal the model."),
    Clause("pipeline.crash-recovery", "With the connector process killed mid-stream, after Conduit's recovery "
           "read-back equals the model and every record acked before the kill was already held.", "pipeline",
           (ENGINE,), evidence=("connector killed mid-stream and the pipeline recovered",
                                "records redelivered after the kill"),
           how="the source SIGKILLs the destination's process as Conduit acknowledges a drawn record, with the "
               "next record in flight (the source holds the rest back until the kill, so there is always something "
               "to redeliver; an in-process destination, which the suite serves, notes what it receives, and the "
               "kill waits until it has received that record, so it gets a record it already had again); right "
               "then every key must hold the value of its last acknowledged record or of a "
               "later one (names no record has as its key, such as a temporary file, are what the killed process "
               "left behind, and are tolerated then and after); Conduit restarts the pipeline, the source resumes "
               "after the last acknowledged position, and once it drains read-back must equal the model. Every run "
               "kills in a stream of distinct keys (none rewritten later) and in one of repeated keys."),
    Clause("pipeline.engine-restart", "With Conduit itself killed and restarted on its persistent store, after it "
           "drains read-back equals the model.", "pipeline", (ENGINE,),
           evidence=("Conduit killed mid-stream and restarted", "records redelivered after the restart",
                     "resumed from a saved position"),
           how="the source SIGKILLs Conduit's process group (Conduit and its connectors) as Conduit acknowledges "
               "a drawn record, once Conduit has logged that it persisted the source's position (not before), as for "
               "pipeline.crash-recovery; right then every key must hold the value of its "
               "last acknowledged record or of a later one (what the kill left behind is tolerated, as there); "
               "Conduit is started again on its store (sqlite or badger, drawn), resumes from the position it "
               "persisted (redelivering what it acknowledged since), and once it drains read-back must equal the "
               "model. Every run restarts it in a stream of distinct keys, one of repeated keys, and one of 100 "
               "records or more."),
]

CLAUSES: dict[str, Clause] = {c.id: c for c in _ALL}


def clause(clause_id: str) -> Clause:
    """The clause with this id; KeyError names the unknown id."""
    try:
        return CLAUSES[clause_id]
    except KeyError:
        raise KeyError(f"unknown clause id {clause_id!r}") from None


# Evidence that needs a write failing part-way on an invalid key: not required of a registration that says it has
# no invalid keys (it skips write.invalid-key-count), such as an append-only log of whole records.
_AFTER_INVALID_KEY = {"WriteError counted", "positions a failed batch wrote acked",
                      "read back after teardown following a failed write", "released after a failed write",
                      "torn down after a failed write", "torn down twice after a failed write"}


def required_evidence(clause_id: str, registration: Registration) -> tuple[str, ...]:
    """The evidence a clause needs for this registration (declared keys replace the contract's key classes)."""
    labels = CLAUSES[clause_id].evidence
    if clause_id == "safety.no-symlink-follow":  # links go at keys, or, with path_param, where it creates files
        path = registration.path_param is not None
        labels = tuple(label for label in labels if (label in PATH_SYMLINK_EVIDENCE) == path)
    if registration.omits("write.invalid-key-count"):
        labels = tuple(label for label in labels if label not in _AFTER_INVALID_KEY)
    # Nothing to put in open()'s way (the teardown checks make open fail through directory_param or path_param).
    if location_param(registration) is None:
        labels = tuple(label for label in labels if not label.endswith("after a failed open"))
    if clause_id == "open.keeps-data" and registration.valid_keys is not None:
        labels = tuple(label for label in labels if label != REOPEN_EVIDENCE[1])
    if clause_id == "lifecycle.events" and registration.read_back is None:
        labels = labels[:-2]
    if clause_id == "lifecycle.events" and registration.valid_keys is not None:
        labels = tuple(label for label in labels if label != "witness keys kept across the events")
    if clause_id == "write.invalid-key-count" and registration.invalid_keys is not None:
        return _DECLARED_INVALID_KEY
    if clause_id == "write.count" and registration.valid_keys is not None:  # no unspecified keys
        labels = tuple(label for label in labels if label != "non-UTF-8 key's count and read-back agree")
    if clause_id == "write.round-trip" and registration.valid_keys is not None:
        labels = tuple(label for label in labels if label not in ("key of 250 to 255 bytes", "non-ASCII key",
                                                                  "long key of escapable characters",
                                                                  *WITNESS_KEY_EVIDENCE))
    if clause_id == "write.round-trip" and registration.payloads is not None:
        labels = tuple(label for label in labels
                       if not label.startswith("payload of") and label != "structured payload")
    return labels
