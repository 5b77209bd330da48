"""The `--destination` spec loader: `pkg.module:attr` or `exec:COMMAND` into a Registration."""

import importlib
import inspect
import shlex
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

from .destination import Destination, missing_methods
from .registration import Registration

__all__ = ["LoadError", "load_registration"]


class LoadError(ValueError):
    """A `--destination` spec could not be turned into a Registration; the message says why, in one line."""


def _import(module_name: str, search_dir: str | None) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        top = module_name.split(".")[0]
        if err.name == top and search_dir and search_dir not in sys.path:
            # The `pytest` script does not put the current directory on sys.path; `python -m pytest` does.
            sys.path.insert(0, search_dir)
            return _import(module_name, None)
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise LoadError(f"cannot import module {module_name!r}: no module named {err.name!r} "
                            f"(is it installed, or run from the directory that holds it?)") from None
        raise LoadError(f"importing {module_name!r} failed{_where(err)}: {type(err).__name__}: {err}") from None
    except SyntaxError as err:  # str() would repeat the file's base name and line
        raise LoadError(f"importing {module_name!r} failed{_where(err)}: {type(err).__name__}: {err.msg}") from None
    except Exception as err:  # the module itself raised while importing
        raise LoadError(f"importing {module_name!r} failed{_where(err)}: {type(err).__name__}: {err}") from None


def _where(err: BaseException) -> str:
    """" at FILE:LINE" of where an import failed (the syntax error's place, else the innermost frame outside the
    import machinery), or ""."""
    if isinstance(err, SyntaxError) and err.filename:
        return f" at {err.filename}:{err.lineno}"
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.filename.startswith("<frozen ")
              and f.filename != __file__]
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _a(word: str) -> str:
    """The indefinite article for `word`: "an int", "a dict"."""
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def _describe_contents(module: Any) -> str:
    names = [n for n in vars(module) if not n.startswith("_") and not inspect.ismodule(getattr(module, n))]
    return ", ".join(sorted(names)[:30]) or "nothing public"


def load_registration(
    spec: str, config: Mapping[str, str] | None = None, search_dir: str | None = None
) -> Registration:
    """Turns `pkg.module:attr` (a Registration, destination class, SDK destination class or factory), or
    `exec:COMMAND` (a standalone connector), into a Registration."""
    if spec.startswith("exec:"):
        return _standalone(spec, dict(config or {}))
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name.strip() or not attr_path.strip() or not all(attr_path.split(".")):
        raise LoadError(f"malformed destination spec {spec!r}: expected 'package.module:attribute'")
    module = _import(module_name.strip(), search_dir)
    obj: Any = module
    for part in attr_path.strip().split("."):
        if not hasattr(obj, part):
            where = f"module {module_name!r}" if obj is module else repr(obj)
            raise LoadError(f"{where} has no attribute {part!r}; it has: {_describe_contents(obj)}")
        obj = getattr(obj, part)
    extra = dict(config or {})
    if isinstance(obj, Registration):
        return replace(obj, config={**obj.config, **extra}, name=obj.name or spec)
    if inspect.isclass(obj) and _is_sdk_class(obj):
        try:
            from harness.conduit.sdk import sdk_registration
        except ImportError as err:  # the SDK's stubs, grpcio or protobuf: the `conduit` extra
            missing = err.name or getattr(err.__cause__, "name", None) or err
            raise LoadError(f"{spec} is a Conduit Python SDK destination, which needs the 'conduit' extra: "
                            f"pip install 'destination-conformance[conduit]' (missing: {missing})") from None
        return sdk_registration(obj, config=extra, name=spec)
    if inspect.isclass(obj):
        missing = missing_methods(obj)
        if missing:
            raise LoadError(f"{spec} is a class but not a destination: it lacks {', '.join(missing)}")
        # A class with every interface method (checked just above) is a destination factory.
        return Registration(factory=cast(Callable[[], Destination], obj), config=extra, name=spec)
    if not missing_methods(obj):
        raise LoadError(f"{spec} is a destination instance; register a factory instead (its class, or a "
                        f"function returning a new destination), since every check needs a fresh one")
    if callable(obj):
        try:
            inspect.signature(obj).bind()
        except TypeError:
            raise LoadError(f"{spec} is a callable that needs arguments; a factory takes none") from None
        except ValueError:
            pass  # builtins without a signature
        return Registration(factory=obj, config=extra, name=spec)
    raise LoadError(f"{spec} is {_a(type(obj).__name__)}, not a Registration, destination class or factory")


def _is_sdk_class(cls: type) -> bool:
    """Whether `cls` subclasses the official SDK's `conduit.Destination` (checked without importing the SDK)."""
    return any(base.__module__ == "conduit.destination" and base.__name__ == "Destination" for base in cls.__mro__[1:])


def _standalone(spec: str, config: dict[str, str]) -> Registration:
    command = spec[len("exec:"):].strip()
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise LoadError(f"cannot split the command in {spec!r}: {err}") from None
    if not argv:
        raise LoadError(f"{spec!r} names no command: expected 'exec:COMMAND ARGS...'")
    try:
        from harness.conduit.standalone import standalone_registration
    except ImportError as err:  # grpcio, protobuf or the SDK's stubs: the `conduit` extra
        missing = err.name or getattr(err.__cause__, "name", None) or err
        raise LoadError(f"{spec}: a standalone connector needs the 'conduit' extra: "
                        f"pip install 'destination-conformance[conduit]' (missing: {missing})") from None
    return standalone_registration(argv, config=config, name=spec)
