"""Warm spare connector processes: a process started for the next destination while the current one runs.

`start_connector` hands out processes with a warm spare: each call takes the process started for the same
command, environment and working directory by the call before (its handshake printed meanwhile, in the
background) and starts the next spare. A process serves one destination instance: a spare is never used twice,
one whose process died before use is replaced by a fresh start, and `CONFORMANCE_SPARE=0` turns spares off.
"""

import collections
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.conduit.plugin_process import ConnectorProcess, PluginError, environment_key

__all__ = ["SPARE_ENV", "SpareStats", "spare_stats", "spare_enabled", "start_connector", "waiting_spares",
           "discard_spares"]

SPARE_ENV = "CONFORMANCE_SPARE"  # "0" (or "no", "false", "off"): no warm spare, every process starts on demand
_MAX_SPARES = 4  # spares kept at once, for as many commands (the least recently used one is stopped)


@dataclass
class SpareStats:
    """What the spares did so far in this process: processes started, spares taken, dead spares replaced."""

    started: int = 0  # connector processes started by start_connector, spares included
    taken: int = 0  # calls answered with a spare (no wait for its handshake)
    replaced: int = 0  # spares found dead when taken, replaced by a fresh start
    fresh: int = 0  # calls that started their process on demand (no spare, or a dead one)
    discarded: int = 0  # spares stopped unused (evicted, or by discard_spares)


_SpareKey = tuple[tuple[str, ...], tuple[tuple[str, str], ...], str]


class _Spares:
    """One warm, never used connector process per command, environment and working directory (a few at most)."""

    def __init__(self) -> None:
        self.stats = SpareStats()
        self._lock = threading.Lock()
        self._spares: collections.OrderedDict[_SpareKey, ConnectorProcess] = collections.OrderedDict()

    def take(self, argv: Sequence[str], env: Mapping[str, str] | None, handshake_timeout: float,
             spare: bool) -> ConnectorProcess:
        """A ready process for `argv`: the spare if one is waiting (else a fresh start), then the next spare."""
        key = _spare_key(argv, env) if spare else None
        with self._lock:
            waiting = self._spares.pop(key, None) if key is not None else None
        process = self._ready_spare(waiting, handshake_timeout) if waiting is not None else None
        if process is None:
            with self._lock:
                self.stats.started += 1
                self.stats.fresh += 1
            process = ConnectorProcess(argv, handshake_timeout, env)
        if key is not None:
            self._launch(key, argv, env)
        return process

    def _ready_spare(self, waiting: ConnectorProcess, handshake_timeout: float) -> ConnectorProcess | None:
        """The spare, handshaken and probed; None if its process died before it was ready (it is replaced, not
        reported). A spare that lives on but fails its handshake fails as a fresh process would: that is raised."""
        if waiting.alive():
            try:
                waiting.await_ready(handshake_timeout)
            except PluginError:
                if not waiting.died_before_ready:
                    raise
            else:
                with self._lock:
                    self.stats.taken += 1
                return waiting
        waiting.kill()  # reaps it
        with self._lock:
            self.stats.replaced += 1
        return None

    def _launch(self, key: _SpareKey, argv: Sequence[str], env: Mapping[str, str] | None) -> None:
        """Starts the next spare for `key` (not readied: it handshakes in the background), evicting the oldest."""
        try:
            spare = ConnectorProcess(argv, env=env, ready=False)
        except PluginError:
            return  # it cannot even start: the next call starts afresh and reports why
        evicted: list[ConnectorProcess] = []
        with self._lock:
            self.stats.started += 1
            old = self._spares.pop(key, None)
            if old is not None:
                evicted.append(old)
            self._spares[key] = spare
            while len(self._spares) > _MAX_SPARES:
                evicted.append(self._spares.popitem(last=False)[1])
            self.stats.discarded += len(evicted)
        for process in evicted:
            process.kill()

    def waiting(self) -> list[ConnectorProcess]:
        """The spares started and not yet taken."""
        with self._lock:
            return list(self._spares.values())

    def discard(self) -> None:
        """Stops every spare (killed and reaped; they never served anything)."""
        with self._lock:
            spares = list(self._spares.values())
            self._spares.clear()
            self.stats.discarded += len(spares)
        for process in spares:
            process.kill()


def _spare_key(argv: Sequence[str], env: Mapping[str, str] | None) -> _SpareKey | None:
    """What a spare must share with the process asked for: command, effective environment, working directory."""
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # the working directory is gone: no spare could start where the next one would
    return tuple(argv), environment_key(env), cwd


_SPARES = _Spares()


def spare_enabled() -> bool:
    """Whether warm spares are on: unless $CONFORMANCE_SPARE is 0, no, false or off."""
    return os.environ.get(SPARE_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def start_connector(argv: Sequence[str], *, env: Mapping[str, str] | None = None, handshake_timeout: float = 15.0,
                    spare: bool | None = None) -> ConnectorProcess:
    """A started, handshaken and probed connector process for one destination instance: the warm spare when one is
    waiting, and a spare for the next call is started (`spare` None: as $CONFORMANCE_SPARE says)."""
    return _SPARES.take(list(argv), env, handshake_timeout, spare_enabled() if spare is None else spare)


def spare_stats() -> SpareStats:
    """The spares' counters so far (a live object: read it before and after what is measured)."""
    return _SPARES.stats


def waiting_spares() -> list[ConnectorProcess]:
    """The spare processes started and not taken yet."""
    return _SPARES.waiting()


def discard_spares() -> None:
    """Kills and reaps every waiting spare (at exit this happens anyway)."""
    _SPARES.discard()
