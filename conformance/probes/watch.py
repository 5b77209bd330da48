"""The invariants watched in every session of every check, from the factory to the end of the example.

A check's own probe provokes what only it can (a full disk, a hostile key); these hold whatever the check:

- confinement (`safety.confined`): every file the destination's Python code creates, changes or removes during
  any of its calls lies inside its area; `$TMPDIR`, `$HOME`, `$XDG_*` and the working directory point into a
  watched tree of the example's own, so what C code (sqlite3) or a stray relative path leaves there is seen too;
  a connector process was started with its own tree for $TMPDIR, $HOME and $XDG_* (harness.process_env), which
  must hold nothing at the session's end; and in either tree nothing may even appear during a call, seen as it
  happens (conformance.probes.tree_watch), so a file created and removed again within the session is named too;
- releases (`teardown.releases`): after a teardown that returned, descriptors and threads are back at the
  baseline taken before the factory ran, whatever the session did (faults and failed writes included);
- keeping data (`teardown.keeps-data`): read-back right after the first teardown equals read-back right before
  it, whichever keys and values the session wrote;
- no partial value: a key the session wrote holds, just before teardown, a value some record gave it (or the
  one it held before the session's first write), never a torn or mangled one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from conformance.contract.clauses import side_file
from conformance.execute.scratch import scratch_dir
from conformance.generate.model import differences, key_bytes
from conformance.probes import audit
from conformance.probes.faults import active
from conformance.probes.holdings import PROC_FDS, Holdings
from conformance.probes.tree_watch import TreeWatch, unavailable
from harness.process_env import EMPTY_TREE

if TYPE_CHECKING:
    from conformance.execute.session import Session

__all__ = ["SessionWatch", "ENV_VARIABLES", "owns_tree", "process_tree_changes"]

# Where a destination finds a place to write outside its area; each points into the example's watched tree.
ENV_VARIABLES = ("TMPDIR", "TEMP", "TMP", "HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                 "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR")
# Writes the interpreter itself makes (bytecode caches of a module imported during a call) or to devices.
_NOT_FILES = ("/dev/", "/proc/", "/sys/")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class SessionWatch:
    """The invariants of one session: a baseline before the factory, a look after every call, a verdict at the
    end."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.faults = active()
        self.in_process = s.subject.registration.transport != "standalone"
        self.holdings = Holdings(self.faults) if PROC_FDS else None
        self.opened = False
        self.teardowns = 0  # teardown calls that returned normally
        self.written: dict[bytes, set[bytes]] = {}  # key -> every value a record of this session gave it
        self.initial: dict[bytes, bytes] | None = None  # read-back before the session's first write
        self._env: dict[str, str | None] = {}
        self.env_root: str | None = None
        self._cwd: str | None = None
        self._tempdir: str | None = None
        self._snapshot: dict[str, tuple[str, bytes | None]] = {}
        self._events: list[audit.Event] = []
        self.process_root: str | None = None  # a connector process' own environment tree
        self.tree: TreeWatch | None = None  # creations in the watched tree (real disk) as they happen
        self._last = ""  # the last call watched, for what appears between calls

    # -- the session's life -------------------------------------------------------------------------------------

    def begin(self) -> None:
        """Points $TMPDIR, $HOME, $XDG_* and the working directory into a fresh watched tree (in-process only: a
        connector process was started with its own environment)."""
        if not self.in_process:
            return
        root = self.env_root = _env_tree(self.faults is None)
        for variable in ENV_VARIABLES:
            self._env[variable] = os.environ.get(variable)
            if variable.startswith("XDG_"):  # inside $HOME, where they default to; made by whoever needs one
                os.environ[variable] = os.path.join(root, "home", "." + variable[4:].lower())
            else:
                os.environ[variable] = os.path.join(root, "home" if variable == "HOME" else "tmp")
        self._tempdir, tempfile.tempdir = tempfile.tempdir, os.path.join(root, "tmp")
        self._cwd = os.getcwd()
        os.chdir(os.path.join(root, "cwd"))
        self._snapshot = _light_snapshot(root)
        if self.faults is None:  # in a fake filesystem the audit hooks see everything that can reach the tree
            self._watch_tree(root)

    def started(self) -> None:
        """The factory returned: a connector process' own baseline can be taken now."""
        if not self.in_process:
            probe = getattr(getattr(self.s.driver, "destination", None), "process_env_root", None)
            self.process_root = probe() if callable(probe) else None
            if self.process_root is not None:
                self._watch_tree(self.process_root)
        if self.holdings is not None:
            self.holdings.watch(self.s)

    def _watch_tree(self, root: str) -> None:
        """Watches `root` for creations from now on (its descriptor is the suite's: holdings.leaks excuses it); where
        that cannot be done, the clause's notes say so."""
        try:
            self.tree = TreeWatch(root)
        except OSError as err:
            self.s.subject.unchecked.add(f"transient files not watched: {unavailable() or err}")

    def end(self) -> None:
        """Restores the environment and the working directory (whatever happened)."""
        if self.tree is not None:
            self.tree.close()
            self.tree = None
        if self.env_root is None:
            return
        for variable, value in self._env.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
        tempfile.tempdir = self._tempdir
        if self._cwd is not None:
            try:
                os.chdir(self._cwd)
            except OSError:
                pass

    def judge_end(self) -> None:
        """At the end of an example that otherwise passed: nothing created in (or left in) the watched tree,
        everything released."""
        self._judge_tree()
        if self.env_root is not None:
            after = _light_snapshot(self.env_root)
            changed = sorted(p for p in set(self._snapshot) | set(after) if self._snapshot.get(p) != after.get(p))
            if changed:
                shown = [os.path.join(_PLACE_NAMES.get(p.split(os.sep)[0], p.split(os.sep)[0]),
                                      *p.split(os.sep)[1:]) for p in changed[:5]]
                self.s.fail(f"the destination left files in places outside {self.area_words()} that the "
                            f"environment names ($TMPDIR, $HOME, $XDG_*, the working directory): {shown}",
                            clause_id="safety.confined")
        if self.process_root is not None:
            left = process_tree_changes(self.process_root)
            if left:
                self.s.fail(f"the connector process left files in places outside {self.area_words()} that its "
                            f"environment names ($TMPDIR, $HOME, $XDG_*): {left[:5]}", clause_id="safety.confined")
        if self.teardowns and self.holdings is not None and self.s.driver is not None:
            leaks = self.holdings.leaks()
            if leaks:
                calls = ", ".join(c.method for c in self.s.calls if c.method != "setup")
                self.s.fail(f"after this session's calls ({calls}): " + "; ".join(leaks).replace(self.s.tmp, "{tmp}"),
                            clause_id="teardown.releases")

    # -- every call -----------------------------------------------------------------------------------------------

    @contextmanager
    def call(self, method: str, args: Sequence[Any]) -> Iterator[None]:
        """Watches one destination call: what its Python code does to files, and what it is given."""
        if method == "write" and args and isinstance(args[0], (list, tuple)):
            self._note_batch(args[0])
        self._events = []
        self._between()
        self._last = method
        try:
            if not self.in_process:
                yield
                return
            with audit.recording() as events:
                yield
            self._events = events
        finally:
            self._take(f"{method}()")

    def _take(self, when: str) -> None:
        """Charges what appeared in the watched tree since the last look to the call `when`."""
        if self.tree is not None:
            self.tree.take(when)

    def _between(self) -> None:
        """What appeared since the last call: a connector process' own (a goroutine of its), charged as such;
        in-process, the suite's (read-back, its temporary files), never charged."""
        if self.tree is None:
            return
        if self.in_process:
            self.tree.forget()
        else:
            self.tree.take(f"between calls, after {self._last}()" if self._last else "before the first call")

    def excused(self) -> None:
        """The suite's own I/O (read-back) just ran: in-process, what appeared in the watched tree meanwhile is the
        suite's, as between calls (a connector process' own tree is not touched by it)."""
        if self.tree is not None and self.in_process:
            self.tree.forget()

    def _judge_tree(self) -> None:
        """Fails safety.confined for anything that appeared in the watched tree during a call, removed or not."""
        if self.tree is None:
            return
        if self.s.torn_down and self._last != "teardown":
            self._take("teardown()")  # the teardown that ends the example, made by the session outside call()
        self._between()
        found = self.tree.findings(self.shown_in_tree)
        if found:
            where = "its environment names" if not self.in_process else "the environment names"
            self.s.fail(f"{'; '.join(found)}: outside {self.area_words()}, in places {where} ($TMPDIR, $HOME, "
                        f"$XDG_*{'' if not self.in_process else ', the working directory'}); nothing outside the "
                        f"area may change during any call, even a file removed again", clause_id="safety.confined")

    def shown_in_tree(self, relative: str) -> str:
        """A path inside the watched tree, by its place's name ($TMPDIR/x)."""
        parts = relative.split(os.sep)
        return os.path.join(_PLACE_NAMES.get(parts[0], parts[0]), *parts[1:])

    def judge_call(self, method: str) -> None:
        """After a call (returned or raised): nothing it did to files lies outside the area."""
        outside, self._events = self._outside(self._events), []
        if outside:
            # A check whose own rule is this very change (what open adds beside a path_param file, configure's side
            # effects, a write into the targets of symlinks it planted) keeps the failure: the clause that names it
            # most closely is charged.
            own, clause = self.s.subject.clause_id, "safety.confined"
            if own in _NARROWER.get(method, ()):
                clause = own
            elif self.s.link_targets and all(_inside(p, self.s.link_targets) for _, p, _ in outside):
                clause = "safety.no-symlink-follow"
            self.s.fail(f"{method}() {outside[0][0]} {self.shown(outside[0][1])!r}, outside {self.area_words()}"
                        + (f" (and {len(outside) - 1} more such changes)" if len(outside) > 1 else ""),
                        clause_id=clause)

    def returned(self, method: str) -> None:
        """A call returned normally."""
        if method == "open":
            self.opened = True

    def _note_batch(self, batch: Sequence[Any]) -> None:
        """Remembers every value the batch gives a key, and read-back before the session's first write."""
        if self.initial is None and self.s.subject.registration.read_back is not None and self.opened:
            self.initial = self.s.quiet_read_back() or {}
        for record in batch:
            try:
                key = key_bytes(record.key)
                after = record.payload.after
                value = None if after is None else after.bytes()
            except Exception:
                continue  # an invalid key (None, a value that is no Data): it has no place in read-back
            if value is not None:
                self.written.setdefault(key, set()).add(value)
            else:
                self.written.setdefault(key, set())

    # -- teardown ------------------------------------------------------------------------------------------------

    def before_teardown(self) -> dict[bytes, bytes] | None:
        """Read-back just before the first teardown of an opened destination (None when there is nothing to
        compare, or read-back does not work now: the checks that need it say so)."""
        if self.teardowns or not self.opened or self.s.subject.registration.read_back is None:
            return None
        held = self.s.quiet_read_back()
        if held is not None:
            self._no_partial_value(held)
        self._between()  # what read-back did is not the teardown's
        return held

    def after_teardown(self, before: Mapping[bytes, bytes] | None) -> None:
        """Teardown returned: read-back must be what it was just before."""
        self.teardowns += 1
        # What appeared so far is the teardown's (made inside call() or, ending the example, outside it).
        self._take("teardown()")
        self._last = "teardown"
        if before is None:
            return
        after = self.s.quiet_read_back()
        self._between()  # what read-back did is not the teardown's
        if after is None:
            self.s.fail("read-back worked just before teardown() and raised after it", clause_id="teardown.keeps-data")
        lines = differences(dict(before), after)
        if lines:
            self.s.fail("read-back after teardown() differs from read-back just before it:\n      "
                        + "\n      ".join(lines), clause_id="teardown.keeps-data")

    def _no_partial_value(self, held: Mapping[bytes, bytes]) -> None:
        """Every key this session wrote holds a value one of its records gave it, or the one it held before."""
        initial = self.initial or {}
        for key, values in self.written.items():
            if key in held and held[key] not in values and held.get(key) != initial.get(key):
                clause = self.s.judged or self.s.subject.clause_id
                clause = clause if clause.startswith("fault.") else "write.round-trip"
                self.s.fail(f"key {key!r} holds a value no record gave it (a partial or mangled value): "
                            f"{_preview(held[key])}; the values written to it: "
                            f"{sorted((_preview(v) for v in values), key=len)[:3]}", clause_id=clause)

    # -- the area --------------------------------------------------------------------------------------------------

    def area_words(self) -> str:
        """The confined area, in words."""
        s = self.s
        if s.path is None:
            return "the configured directory"
        name = os.path.basename(s.path)
        return f"the file {s.path.replace(s.tmp, '{tmp}')!r} and its side files ({name}*, .{name}*)"

    def _allowed(self, path: str, creating_directory: bool) -> bool:
        """Whether the destination may change `path`: inside its area, or (creating a directory) one of the
        area's missing parents."""
        s = self.s
        directory = s.directory
        if directory is None:
            return True  # no area is known: safety.confined is not checked for this registration
        # realpath (a syscall per component) only when the spelled path is not inside: most paths are.
        for form in (os.path.normpath, os.path.realpath):
            area, where = form(directory), form(path)
            if creating_directory and _inside(area, where):
                return True
            if s.path is None:
                if _inside(where, area):
                    return True
            elif where != area and _inside(where, area):
                first = os.path.relpath(where, area).split(os.sep)[0]
                if side_file(first, os.path.basename(s.path)):
                    return True
        return False

    def shown(self, path: str) -> str:
        """A path as a failure shows it: the example's directory as {tmp}, the watched places by their names."""
        if self.env_root is not None and _inside(path, self.env_root):
            parts = os.path.relpath(path, self.env_root).split(os.sep)
            return os.path.join(_PLACE_NAMES.get(parts[0], parts[0]), *parts[1:])
        return path.replace(self.s.tmp, "{tmp}")

    def _outside(self, events: list[audit.Event]) -> list[tuple[str, str, bool]]:
        """The changes (what, path, creating a directory) the events made outside the area."""
        found = []
        for event, path, creating_directory in audit.changed_paths(events):
            if not os.path.isabs(path) or path.startswith(_NOT_FILES) or f"{os.sep}__pycache__{os.sep}" in path:
                continue  # relative to a directory descriptor (or the watched working directory), a device, bytecode
            if not self._allowed(path, creating_directory):
                found.append((event, path, creating_directory))
        return found


# Clauses whose own rule covers a change outside the area made by this call, when their check is the one running.
_NARROWER = {
    "configure": ("configure.no-side-effects",),
    "open": ("open.keeps-existing", "open.not-a-directory", "open.unwritable"),
}
_PLACE_NAMES = {"tmp": "$TMPDIR", "home": "$HOME", "cwd": "<working directory>"}


_EMPTY_TREE = {"tmp": ("dir", None), "home": ("dir", None), "cwd": ("dir", None)}
_REAL_DISK_TREE: list[str] = []  # the watched tree sessions on the real disk share (made once, emptied when used)


def _env_tree(real_disk: bool) -> str:
    """A watched tree ($TMPDIR, $HOME, the working directory) as new: on the real disk one tree serves every session
    in turn (emptied again if a session left something), in a fake filesystem a fresh one."""
    if real_disk and _REAL_DISK_TREE and os.path.isdir(_REAL_DISK_TREE[0]):
        root = _REAL_DISK_TREE[0]
        if _light_snapshot(root) == _EMPTY_TREE:
            return root
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
    else:
        root = scratch_dir("conformance-env-")
        if real_disk:
            _REAL_DISK_TREE[:] = [root]
    for name in _EMPTY_TREE:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    return root


def owns_tree(root: str) -> bool:
    """Whether a session's watched tree is its own (to remove at its end) rather than the shared one."""
    return root not in _REAL_DISK_TREE


def process_tree_changes(root: str) -> list[str]:
    """What a connector process' environment tree holds beyond the empty tree it started with, by place name."""
    now = _light_snapshot(root)
    return [os.path.join(_PLACE_NAMES.get(p.split(os.sep)[0], p.split(os.sep)[0]), *p.split(os.sep)[1:])
            for p in sorted(now) if p not in EMPTY_TREE or now[p] != ("dir", None)]


def _preview(value: bytes) -> str:
    return repr(value) if len(value) <= 40 else f"<{len(value)} bytes starting {value[:16]!r}>"


def _light_snapshot(root: str) -> dict[str, tuple[str, bytes | None]]:
    """Every entry under `root` by relative path: kind and, for files, size and a prefix (no mtimes: a directory's
    moves when a nested example comes and goes)."""
    snapshot: dict[str, tuple[str, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            relative = os.path.relpath(path, root)
            if os.path.islink(path):
                snapshot[relative] = ("link", os.fsencode(os.readlink(path)))
            elif os.path.isdir(path):
                snapshot[relative] = ("dir", None)
            else:
                try:
                    with open(path, "rb") as f:
                        snapshot[relative] = ("file", f.read(4096) + b"|%d" % os.path.getsize(path))
                except OSError:
                    snapshot[relative] = ("other", None)
    return snapshot
