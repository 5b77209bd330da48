"""Registration, the `--destination=module:attr` loader and directory_reader (CONTRACT.md: Registration)."""

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import LoadError, Registration, UnimplementedDestination, directory_reader, load_registration

DESTINATION_SOURCE = '''
from harness import Registration, UnimplementedDestination


class Dest(UnimplementedDestination):
    def parameters(self):
        return {}

    def configure(self, config):
        pass

    def open(self):
        pass

    def write(self, records):
        return len(records)

    def ack(self, position):
        pass

    def teardown(self):
        pass


def new_destination():
    return Dest()


def needs_args(directory):
    return Dest()


class NotADestination:
    def write(self, records):
        return 0


instance = Dest()
number = 42
registration = Registration(factory=new_destination, config={"a": "1", "b": "2"}, name="")
named = Registration(factory=Dest, config={}, name="my-name")
'''


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Writes a uniquely named module on sys.path and returns its name; removed from sys.modules after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def make(source: str) -> str:
        name = f"regmod_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield make
    for name in names:
        sys.modules.pop(name, None)


def load_error(spec: str, **kwargs: object) -> str:
    """The LoadError message for `spec`, checked to be one line with no chained traceback."""
    with pytest.raises(LoadError) as info:
        load_registration(spec, **kwargs)  # type: ignore[arg-type]
    err = info.value
    message = str(err)
    assert message and "\n" not in message
    assert "Traceback" not in message
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    return message


@pytest.mark.parametrize("spec", ["nocolon", ":x", "m:", "m:a..b", " : ", "m:.a"])
def test_malformed_spec(spec: str) -> None:
    """A spec that is not `module:attribute` says what is expected."""
    message = load_error(spec)
    assert "malformed destination spec" in message
    assert repr(spec) in message
    assert "package.module:attribute" in message


def test_module_not_importable() -> None:
    """A module that does not exist is named, with a hint."""
    name = f"no_such_module_{uuid.uuid4().hex}"
    message = load_error(f"{name}:x")
    assert f"cannot import module {name!r}" in message
    assert "installed" in message


def test_missing_submodule_of_existing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package that exists without the named submodule: the submodule is named as not importable."""
    package = f"regpkg_{uuid.uuid4().hex}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        message = load_error(f"{package}.nosub:x")
    finally:
        sys.modules.pop(package, None)
    assert f"cannot import module '{package}.nosub'" in message


def test_module_whose_dependency_is_missing(make_module: Callable[[str], str]) -> None:
    """A module that exists but imports a missing one blames the missing dependency, not itself."""
    missing = f"missing_dep_{uuid.uuid4().hex}"
    name = make_module(f"import {missing}\n")
    message = load_error(f"{name}:x")
    assert f"importing {name!r} failed" in message
    assert missing in message


def test_module_whose_dependency_is_a_prefix_of_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing dependency whose name prefixes the module's is reported as the dependency, not the module."""
    dep = f"regmod_{uuid.uuid4().hex}"
    name = f"{dep}_plugin"
    (tmp_path / f"{name}.py").write_text(f"import {dep}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        message = load_error(f"{name}:x")
    finally:
        sys.modules.pop(name, None)
    assert f"importing {name!r} failed" in message
    assert repr(dep) in message


def test_module_that_raises_at_import(make_module: Callable[[str], str]) -> None:
    """A module that raises while importing: the message says so, with the exception."""
    name = make_module("raise RuntimeError('boom at import')\n")
    message = load_error(f"{name}:x")
    assert f"importing {name!r} failed" in message
    assert "RuntimeError: boom at import" in message


def test_module_with_syntax_error(make_module: Callable[[str], str]) -> None:
    """A module with a syntax error is reported in one line."""
    name = make_module("def broken(:\n")
    message = load_error(f"{name}:x")
    assert f"importing {name!r} failed" in message
    assert "SyntaxError" in message


@pytest.mark.parametrize(("source", "line", "error"), [
    ("import os\n\ndef broken(:\n", 3, "SyntaxError: "),
    ("import os\nVALUE = 1\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
    ("import os\nimport missing_dep_of_regmod_0\n", 2, "ModuleNotFoundError: "),
    ("import os\n\n\nprint(undefined_name)\n", 4, "NameError: "),
])
def test_import_error_names_the_file_and_line(make_module: Callable[[str], str], tmp_path: Path, source: str,
                                              line: int, error: str) -> None:
    """A module that fails while importing is named with the file and line where it failed."""
    name = make_module(source)
    message = load_error(f"{name}:x")
    assert f"importing {name!r} failed at {tmp_path / name}.py:{line}: {error}" in message


def test_missing_attribute_lists_what_the_module_has(make_module: Callable[[str], str]) -> None:
    """A missing attribute is named, and the module's public names are listed."""
    name = make_module(DESTINATION_SOURCE)
    message = load_error(f"{name}:nope")
    assert "has no attribute 'nope'" in message
    for public in ("Dest", "new_destination", "registration"):
        assert public in message


def test_missing_nested_attribute(make_module: Callable[[str], str]) -> None:
    """A dotted attribute path names the part that is missing."""
    name = make_module(DESTINATION_SOURCE)
    message = load_error(f"{name}:Dest.nope")
    assert "has no attribute 'nope'" in message


def test_instance_instead_of_factory(make_module: Callable[[str], str]) -> None:
    """A destination instance is refused: every check needs a fresh one."""
    name = make_module(DESTINATION_SOURCE)
    message = load_error(f"{name}:instance")
    assert "instance" in message and "factory" in message


def test_callable_that_needs_arguments(make_module: Callable[[str], str]) -> None:
    """A factory must take no arguments."""
    name = make_module(DESTINATION_SOURCE)
    message = load_error(f"{name}:needs_args")
    assert "needs arguments" in message


@pytest.mark.parametrize(("attr", "expected"), [("number", "is an int,"), ("NotADestination", "lacks")])
def test_non_destination_object(make_module: Callable[[str], str], attr: str, expected: str) -> None:
    """A value or a class that is not a destination is refused, saying what is wrong."""
    name = make_module(DESTINATION_SOURCE)
    message = load_error(f"{name}:{attr}")
    assert expected in message
    if attr == "NotADestination":
        assert "configure" in message and "teardown" in message and "write" not in message.split("lacks")[1]


def test_registration_is_loaded_with_config_override(make_module: Callable[[str], str]) -> None:
    """A Registration is returned with --destination-config merged over its config (override wins)."""
    name = make_module(DESTINATION_SOURCE)
    reg = load_registration(f"{name}:registration", {"b": "override", "c": "3"})
    module = sys.modules[name]
    assert reg.factory is module.new_destination
    assert dict(reg.config) == {"a": "1", "b": "override", "c": "3"}
    assert reg.name == f"{name}:registration"
    assert dict(module.registration.config) == {"a": "1", "b": "2"}  # the original is unchanged
    assert load_registration(f"{name}:named").name == "my-name"


@pytest.mark.parametrize("attr", ["Dest", "new_destination"])
def test_class_or_factory_is_wrapped(make_module: Callable[[str], str], attr: str) -> None:
    """A destination class or a factory becomes a Registration whose config is the given one, and nothing more."""
    name = make_module(DESTINATION_SOURCE)
    reg = load_registration(f"{name}:{attr}", {"k": "v"})
    assert reg.factory is getattr(sys.modules[name], attr)
    assert dict(reg.config) == {"k": "v"}
    assert reg.read_back is None and reg.directory_param is None
    assert reg.name == f"{name}:{attr}"
    assert isinstance(reg.factory(), sys.modules[name].Dest)


def test_search_dir_is_used_when_not_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`search_dir` lets a module next to the caller be found when it is not on sys.path."""
    name = f"regmod_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(DESTINATION_SOURCE)
    monkeypatch.setattr(sys, "path", list(sys.path))  # restored afterwards
    try:
        reg = load_registration(f"{name}:Dest", search_dir=str(tmp_path))
        assert reg.factory.__name__ == "Dest"
    finally:
        sys.modules.pop(name, None)


# --- Registration's own validation ------------------------------------------------------------


def test_registration_validation_errors() -> None:
    """Registration refuses a bad factory, config, directory_param, read_back or skip reason."""
    with pytest.raises(TypeError, match="factory must be callable"):
        Registration(factory=UnimplementedDestination())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config must map str to str"):
        Registration(factory=UnimplementedDestination, config={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="directory_param 'dir' is not a key of config"):
        Registration(factory=UnimplementedDestination, config={"a": "1"}, directory_param="dir")
    with pytest.raises(TypeError, match="read_back must be callable"):
        Registration(factory=UnimplementedDestination, read_back="nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="skip.*non-empty reason"):
        Registration(factory=UnimplementedDestination, skip={"write.count": " "})
    with pytest.raises(TypeError, match=r"not_applicable\['write.count'\] needs a non-empty reason"):
        Registration(factory=UnimplementedDestination, not_applicable={"write.count": ""})
    with pytest.raises(TypeError, match="skip and Registration.not_applicable both name write.count"):
        Registration(factory=UnimplementedDestination, skip={"write.count": "a"}, not_applicable={"write.count": "b"})
    with pytest.raises(TypeError, match="transport must be one of 'native', 'sdk in-process', 'standalone'"):
        Registration(factory=UnimplementedDestination, transport="grpc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="structured_data must be 'json' or 'protobuf-struct'"):
        Registration(factory=UnimplementedDestination, structured_data="yaml")  # type: ignore[arg-type]


def test_location_is_the_directory_or_the_file_never_both() -> None:
    """location names the one parameter saying where the destination writes, and what it names."""
    from harness import Location

    config = {"dir": "{tmp}/out", "file": "{tmp}/out/data.db"}
    assert Registration(factory=UnimplementedDestination, config=config, directory_param="dir").location == \
        Location("dir", "directory")
    assert Registration(factory=UnimplementedDestination, config=config, path_param="file").location == \
        Location("file", "file")
    assert Registration(factory=UnimplementedDestination).location is None
    with pytest.raises(TypeError, match="mutually exclusive"):
        Registration(factory=UnimplementedDestination, config=config, directory_param="dir", path_param="file")


def test_a_clause_is_omitted_when_skipped_or_not_applicable() -> None:
    """omits() is what the suite leaves out: the registrant's skips and the clauses that do not apply."""
    reg = Registration(factory=UnimplementedDestination, skip={"write.count": "mine"},
                       not_applicable={"write.empty-batch": "the SDK answers it"})
    assert reg.omits("write.count") and reg.omits("write.empty-batch") and not reg.omits("write.recovers")


def test_registration_defaults() -> None:
    """A Registration with only a factory has an empty config and nothing optional."""
    reg = Registration(factory=UnimplementedDestination)
    assert dict(reg.config) == {} and dict(reg.skip) == {} and dict(reg.not_applicable) == {}
    assert reg.transport == "native" and reg.structured_data == "json"
    assert reg.read_back is None and reg.directory_param is None
    assert reg.valid_keys is None and reg.invalid_keys is None


# --- directory_reader -------------------------------------------------------------------------


def test_directory_reader_reads_regular_files_only(tmp_path: Path) -> None:
    """Each regular file is a key (bytes name) and its content; directories and symlinks are not values."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_bytes(b"alpha")
    (out / "empty").write_bytes(b"")
    (out / "bin").write_bytes(b"\x00\xff")
    (out / "sub").mkdir()
    (out / "sub" / "inner").write_bytes(b"hidden")
    (tmp_path / "target").write_bytes(b"outside")
    os.symlink(tmp_path / "target", out / "link")
    os.symlink(tmp_path / "nowhere", out / "dangling")
    read_back = directory_reader("directory")
    assert read_back({"directory": str(out)}) == {b"a": b"alpha", b"empty": b"", b"bin": b"\x00\xff"}


def test_directory_reader_non_utf8_names(tmp_path: Path) -> None:
    """File names that are not UTF-8 come back as their exact bytes."""
    name = b"caf\xe9"
    try:
        with open(os.path.join(os.fsencode(tmp_path), name), "wb") as f:
            f.write(b"x")
    except OSError:
        pytest.skip("the file system refuses non-UTF-8 names")
    assert directory_reader("d")({"d": str(tmp_path)}) == {name: b"x"}


def test_directory_reader_missing_directory_is_empty(tmp_path: Path) -> None:
    """A directory that does not exist (yet) reads back as nothing."""
    assert directory_reader("d")({"d": str(tmp_path / "missing" / "deeper")}) == {}


def test_directory_reader_uses_its_parameter(tmp_path: Path) -> None:
    """The reader looks up the directory under the parameter it was made for."""
    (tmp_path / "k").write_bytes(b"v")
    reader = directory_reader("path")
    assert reader({"path": str(tmp_path), "directory": "/nonexistent"}) == {b"k": b"v"}
    assert "path" in reader.__qualname__


def test_directory_reader_path_that_is_a_file_is_empty(tmp_path: Path) -> None:
    """A configured path that is a file (open() refused it) reads back as nothing."""
    (tmp_path / "file").write_bytes(b"x")
    assert directory_reader("d")({"d": str(tmp_path / "file")}) == {}


# Without the `conduit` extra: the error names the extra to install, in one line (the modules are hidden in the
# pytest run's own process by a conftest, as if grpcio or the SDK were not installed).
HIDE_MODULES = "import sys\n\nfor _name in {names!r}:\n    sys.modules[_name] = None\n"
FAKE_SDK_CLASS = '''
class Destination:  # stands in for conduit.Destination, which the loader recognises by module and name
    pass

Destination.__module__ = "conduit.destination"


class MyDestination(Destination):
    pass
'''
EXTRA_HINT = "needs the 'conduit' extra: pip install 'destination-conformance[conduit]'"


@pytest.mark.parametrize(("hidden", "spec", "start", "missing"), [
    (["grpc"], "exec:./my-connector", "--destination=exec:./my-connector: exec:./my-connector: a standalone "
                                      "connector ", "grpc"),
    (["conduit"], "fakesdk:MyDestination",
     "--destination=fakesdk:MyDestination: fakesdk:MyDestination is a Conduit Python SDK destination, which ",
     "conduit"),
])
def test_a_missing_conduit_extra_names_the_extra(pytester: pytest.Pytester, hidden: list[str], spec: str,
                                                 start: str, missing: str) -> None:
    pytester.makeconftest(HIDE_MODULES.format(names=hidden))
    pytester.makepyfile(fakesdk=FAKE_SDK_CLASS)
    result = pytester.runpytest_subprocess(f"--destination={spec}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith(f"ERROR: {start}{EXTRA_HINT} (missing: {missing}"), errors[0]


def test_a_missing_conduit_extra_in_load_registration() -> None:
    """The same message from the loader itself, in a process where grpc cannot be imported."""
    code = ("import sys; sys.modules['grpc'] = None\n"
            "from harness import LoadError, load_registration\n"
            "try:\n    load_registration('exec:true')\nexcept LoadError as err:\n    print(err)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"exec:true: a standalone connector {EXTRA_HINT} (missing: grpc)", result.stderr
