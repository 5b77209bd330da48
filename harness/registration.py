"""How a destination is registered for checking: the Registration and the read-back helpers."""

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

from .backend import Backend, as_backends
from .behaviours import Behaviour
from .destination import Destination

__all__ = ["Registration", "directory_reader", "ReadBack", "Transport", "StructuredData", "Location"]

ReadBack = Callable[[Mapping[str, str]], Mapping[bytes, bytes]]
Transport = Literal["native", "sdk in-process", "standalone"]  # how the suite reaches the destination
StructuredData = Literal["json", "protobuf-struct"]  # what structured payloads survive on the way



class Location(NamedTuple):
    """Where a destination writes: the config parameter naming it, and whether that names a directory (one file
    per key in it) or the one file it writes."""

    param: str
    kind: Literal["directory", "file"]


@dataclass(frozen=True)
class Registration:
    """A destination factory plus what the suite needs to check it."""

    factory: Callable[[], Destination]
    config: Mapping[str, str] = field(default_factory=dict)
    read_back: ReadBack | None = None
    directory_param: str | None = None
    valid_keys: Any = None  # hypothesis strategy of bytes keys, or None for the contract's default (CONTRACT.md: Keys)
    invalid_keys: Any = None  # hypothesis strategy of keys (bytes or Data or None), or None for the contract's
    skip: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    structured_data: StructuredData = "json"  # "protobuf-struct": over Conduit's protocol, numbers become float64
    transport: Transport = "native"
    describe: Callable[[], str] | None = None  # one line for the report header (a standalone connector's spec)
    payloads: Any = None  # hypothesis strategy of payloads (Data) overriding the suite's, e.g. rows for a database
    variants: tuple[Mapping[str, str], ...] = ()  # config overlays the fault and safety clauses also run under
    path_param: str | None = None  # instead of directory_param: the parameter naming the one file it writes
    command: tuple[str, ...] = ()  # a standalone connector's argv, so a Conduit pipeline can run it
    command_env: Mapping[str, str] = field(default_factory=dict)  # the environment it adds for that connector
    built_with: Mapping[str, Any] = field(default_factory=dict)  # a Go connector's build info: its SDK and release
    backends: tuple[Backend, ...] = ()  # servers it talks to over TCP, for a fault proxy
    # Clauses that do not apply to what is registered, with why: reported "not applicable", where `skip` is the
    # registrant's choice.
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    # What the SDK or adapter keeps from being observed, with why (harness.behaviours); the suite decides which
    # clauses each leaves out, unless the registrant's skip, not_applicable or check names them.
    behaviours: Mapping[Behaviour, str] = field(default_factory=dict)
    check: frozenset[str] = frozenset()  # clause ids the registrant has checked whatever the behaviours say

    @property
    def location(self) -> Location | None:
        """Where the destination writes: directory_param or path_param (never both, __post_init__ sees to it)."""
        if self.directory_param is not None:
            return Location(self.directory_param, "directory")
        return Location(self.path_param, "file") if self.path_param is not None else None

    def omits(self, clause_id: str) -> bool:
        """Whether the clause is left out for this registration: skipped or not applicable (in a run, the suite has
        added what the behaviours leave out)."""
        return clause_id in self.skip or clause_id in self.not_applicable

    def __post_init__(self) -> None:
        if not callable(self.factory):
            raise TypeError(f"Registration.factory must be callable, got {type(self.factory).__name__}")
        bad = [k for k, v in self.config.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"Registration.config must map str to str; bad entries: {', '.join(map(repr, bad))}")
        if self.directory_param is not None and self.directory_param not in self.config:
            raise TypeError(f"Registration.directory_param {self.directory_param!r} is not a key of config")
        if self.directory_param is not None and self.path_param is not None:
            raise TypeError(f"Registration.directory_param ({self.directory_param!r}) and Registration.path_param "
                            f"({self.path_param!r}) are mutually exclusive: name the directory the destination "
                            "writes in, or the one file it writes, not both")
        if self.path_param is not None:
            _check_path_param(self.path_param, self.config)
        if self.read_back is not None and not callable(self.read_back):
            raise TypeError("Registration.read_back must be callable(config) -> Mapping[bytes, bytes]")
        if self.structured_data not in get_args(StructuredData):
            raise TypeError(f"Registration.structured_data must be 'json' or 'protobuf-struct', "
                            f"got {self.structured_data!r}")
        if self.transport not in get_args(Transport):
            raise TypeError(f"Registration.transport must be one of {', '.join(map(repr, get_args(Transport)))}, "
                            f"got {self.transport!r}")
        for variant in self.variants:
            if not isinstance(variant, Mapping) or not variant:
                raise TypeError(f"Registration.variants must hold non-empty config overlays, got {variant!r}")
            bad = [k for k, v in variant.items() if not isinstance(k, str) or not isinstance(v, str)]
            if bad:
                raise TypeError(f"Registration.variants entries must map str to str; bad keys: {bad!r}")
        for backend in as_backends(self.backends):
            backend.check(self.config)
        for field_name, reasons in (("skip", self.skip), ("not_applicable", self.not_applicable)):
            for clause, reason in reasons.items():
                if not isinstance(reason, str) or not reason.strip():
                    raise TypeError(f"Registration.{field_name}[{clause!r}] needs a non-empty reason")
        for behaviour, reason in self.behaviours.items():
            if not isinstance(behaviour, Behaviour):
                raise TypeError(f"Registration.behaviours keys must be harness.Behaviour members, got {behaviour!r}")
            if not isinstance(reason, str) or not reason.strip():
                raise TypeError(f"Registration.behaviours[{behaviour.name}] needs a non-empty reason")
        if isinstance(self.check, str) or not all(isinstance(clause, str) for clause in self.check):
            raise TypeError(f"Registration.check must be a set of clause ids, got {self.check!r}")
        named = sorted(set(self.check) & (set(self.skip) | set(self.not_applicable)))
        if named:
            raise TypeError(f"Registration.check names {', '.join(named)}, which skip or not_applicable leaves out: "
                            "a clause is checked or left out, not both")
        both = sorted(set(self.skip) & set(self.not_applicable))
        if both:
            raise TypeError(f"Registration.skip and Registration.not_applicable both name {', '.join(both)}: a "
                            "clause is skipped or not applicable, not both")


def _check_path_param(param: str, config: Mapping[str, str]) -> None:
    """Refuses a path_param that is not a key of config, or whose value does not end in a file name."""
    if param not in config:
        raise TypeError(f"Registration.path_param {param!r} is not a key of config")
    value = config[param]
    name = os.path.basename(value)
    # The suite moves the file into directories of its own by keeping this last component (CONTRACT.md section 6).
    if not name or name in (".", "..") or "{tmp}" in name:
        raise TypeError(f"Registration.path_param {param!r}: config value {value!r} does not end in a file name "
                        "(such as '{tmp}/out/data.db')")


def directory_reader(param: str) -> ReadBack:
    """A read-back for destinations that keep one file per key in the directory named by `param`."""

    def read_back(config: Mapping[str, str]) -> dict[bytes, bytes]:
        directory = os.fsencode(config[param])
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return {}  # nothing written yet, or open() refused a path that is not a directory
        result: dict[bytes, bytes] = {}
        for name in names:
            name = os.fsencode(name)  # pyfakefs answers a bytes listdir with str names
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):  # a symlink or directory at a key is not a value
                with open(path, "rb") as f:
                    result[name] = f.read()
        return result

    read_back.__qualname__ = f"directory_reader({param!r})"
    return read_back
