"""Behaviour of the reference file destination on real temp dirs, and under pyfakefs for faults."""

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pyfakefs.fake_filesystem_unittest import Patcher

import conformance.probes.faults
import reference
from conformance.generate.model import Model
from harness import (
    Change,
    ConfigError,
    Driver,
    LifecycleError,
    Operation,
    RawData,
    Record,
    Registration,
    StructuredData,
    WriteError,
)
from reference import TEMP_PREFIX, FileDestination, key_name, key_problem, new_destination

MIDDLEWARE_PARAMETERS = {"sdk.batch.size", "sdk.rate.perSecond", "sdk.rate.burst"}
PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers -------------------------------------------------------------------------------------


def rec(key: Any, after: Any = b"", position: bytes = b"") -> Record:
    """A record: bytes key becomes RawData; bytes after becomes RawData, a dict StructuredData, None a delete."""
    if isinstance(key, bytes):
        key = RawData(key)
    if isinstance(after, bytes):
        after = RawData(after)
    elif isinstance(after, dict):
        after = StructuredData(after)
    operation = Operation.delete if after is None else Operation.create
    return Record(position=position, operation=operation, key=key, payload=Change(after=after))


def contents(directory: Path | str) -> dict[bytes, bytes]:
    """The regular files in `directory` by name; fails if a temporary file is left or a key is not a file."""
    result: dict[bytes, bytes] = {}
    for name in map(os.fsencode, os.listdir(os.fsencode(directory))):  # pyfakefs lists bytes dirs as str
        assert not name.startswith(TEMP_PREFIX), f"temporary file left behind: {name!r}"
        path = os.path.join(os.fsencode(directory), name)
        if stat.S_ISREG(os.lstat(path).st_mode):
            with open(path, "rb") as f:
                result[name] = f.read()
    return result


def snapshot(root: Path | str) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under `root` (itself as ".") with its mode, mtime and content or link target, links not followed."""
    found: dict[str, tuple[int, int, bytes | None]] = {}
    paths = [str(root)]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, name) for name in dirnames + filenames]
    for path in paths:
        info = os.lstat(path)
        data = None
        if stat.S_ISREG(info.st_mode):
            with open(path, "rb") as f:
                data = f.read()
        elif stat.S_ISLNK(info.st_mode):
            data = os.fsencode(os.readlink(path))
        found[os.path.relpath(path, root)] = (info.st_mode, info.st_mtime_ns, data)
    return found


def opened(directory: Path | str, **config: str) -> FileDestination:
    """A FileDestination configured for `directory` and opened."""
    destination = FileDestination()
    destination.configure({"directory": str(directory), **config})
    destination.open()
    return destination


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Sets the process umask for the block and restores the old one."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextmanager
def fake_fs() -> Iterator[Any]:
    """A pyfakefs filesystem (not root, so permissions apply) with /data existing."""
    with Patcher(allow_root_user=False) as patcher:
        patcher.fs.create_dir("/data")
        yield patcher.fs


def fail_on_call(real: Callable[..., Any], failing_call: int, err: int) -> Callable[..., Any]:
    """Wraps `real` so that its `failing_call`-th call (0-based) raises OSError(err); the others pass through."""
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] - 1 == failing_call:
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)

    return wrapper


# --- parameters ----------------------------------------------------------------------------------


def test_parameters_are_directory_required_and_sync_bool_default_false() -> None:
    """FileDestination declares `directory` (required) and `sync` (bool, default "false"), both described."""
    params = FileDestination().parameters()
    assert set(params) == {"directory", "sync"}
    assert params["directory"].required and params["directory"].default is None
    assert params["sync"].type.value == "bool" and params["sync"].default == "false"
    assert not params["sync"].required
    assert all(p.description for p in params.values())


def test_new_destination_adds_middleware_parameters_in_every_state(tmp_path: Path) -> None:
    """new_destination() lists the destination's and the middleware's parameters, the same in every state."""
    destination = new_destination()
    first = dict(destination.parameters())
    assert set(first) == {"directory", "sync"} | MIDDLEWARE_PARAMETERS
    destination.configure({"directory": str(tmp_path / "out")})
    assert dict(destination.parameters()) == first
    destination.open()
    assert dict(destination.parameters()) == first
    destination.teardown()
    assert dict(destination.parameters()) == first


# --- configure -----------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [FileDestination, new_destination])
def test_configure_creates_nothing(tmp_path: Path, factory: Callable[[], Any]) -> None:
    """configure validates only: the directory and its parents do not appear."""
    target = tmp_path / "a" / "b" / "out"
    factory().configure({"directory": str(target), "sync": "true"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["true", "false", "1", "0", "True", "F"])
def test_configure_accepts_go_bool_spellings_for_sync(tmp_path: Path, value: str) -> None:
    """`sync` takes Go's ParseBool spellings."""
    FileDestination().configure({"directory": str(tmp_path), "sync": value})


@pytest.mark.parametrize(
    "factory, config, names",
    [
        (FileDestination, {}, ["directory"]),
        (FileDestination, {"directory": ""}, ["directory"]),
        (FileDestination, {"directory": "x", "sync": "maybe"}, ["sync"]),
        (FileDestination, {"directory": "x", "colour": "red"}, ["colour"]),
        (FileDestination, {"sync": "yes", "colour": "red"}, ["directory", "sync", "colour"]),
        (new_destination, {}, ["directory"]),
        (new_destination, {"directory": "x", "sdk.batch.size": "-5"}, ["sdk.batch.size"]),
        (new_destination, {"sdk.batch.size": "many", "colour": "red"}, ["sdk.batch.size", "directory", "colour"]),
    ],
)
def test_bad_config_raises_config_error_naming_every_bad_key(
    tmp_path: Path, factory: Callable[[], Any], config: dict[str, str], names: list[str]
) -> None:
    """A missing, malformed or unknown key raises ConfigError naming each of them, and creates nothing."""
    config = {k: str(tmp_path / v) if k == "directory" and v else v for k, v in config.items()}
    with pytest.raises(ConfigError) as info:
        factory().configure(config)
    for name in names:
        assert name in str(info.value)
        assert name in info.value.keys
    assert list(tmp_path.iterdir()) == []


def test_failed_configure_leaves_new_destination_configurable(tmp_path: Path) -> None:
    """After a ConfigError the wrapped destination is still new: a valid configure then works."""
    destination = new_destination()
    with pytest.raises(ConfigError):
        destination.configure({"directory": str(tmp_path / "out"), "sync": "maybe"})
    destination.configure({"directory": str(tmp_path / "out")})
    destination.open()
    assert (tmp_path / "out").is_dir()


# --- open ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_open_creates_missing_parents_with_mode_0755_before_umask(tmp_path: Path, depth: int, mask: int) -> None:
    """open creates every missing level of the directory, each with mode 0o755 & ~umask."""
    levels = [tmp_path.joinpath(*[f"d{i}" for i in range(1, n + 1)]) for n in range(1, depth + 1)]
    with umask(mask):
        opened(levels[-1])
    for level in levels:
        assert level.is_dir() and not level.is_symlink()
        assert stat.S_IMODE(level.stat().st_mode) == 0o755 & ~mask, level
    assert contents(levels[-1]) == {}


def test_open_relative_directory_is_resolved_at_configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative directory is taken relative to the working directory at configure time."""
    monkeypatch.chdir(tmp_path)
    destination = FileDestination()
    destination.configure({"directory": "rel/out"})
    monkeypatch.chdir("/")
    destination.open()
    destination.write([rec(b"k", b"v")])
    assert contents(tmp_path / "rel" / "out") == {b"k": b"v"}


def test_open_keeps_existing_directory_and_files(tmp_path: Path) -> None:
    """An existing directory, its mode, its files' content and mtimes, and its subdirectories stay as they were."""
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    os.chmod(out, 0o700)
    (out / "a").write_bytes(b"alpha")
    (out / "b").write_bytes(b"\x00\xff")
    (out / "sub").mkdir()
    (out / "sub" / "c").write_bytes(b"gamma")
    past = 1_000_000_000_000_000_000
    for path in [out / "a", out / "b", out / "sub" / "c", out / "sub", out]:
        os.utime(path, ns=(past, past))
    before = snapshot(tmp_path)
    opened(out)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("factory", [FileDestination, new_destination])
def test_open_refuses_an_existing_regular_file(tmp_path: Path, factory: Callable[[], Any]) -> None:
    """A regular file at the path makes open raise an error naming the path; nothing is created or changed."""
    target = tmp_path / "out"
    target.write_bytes(b"not a directory")
    os.utime(target, ns=(10**18, 10**18))
    before = snapshot(tmp_path)
    destination = factory()
    destination.configure({"directory": str(target)})
    with pytest.raises(OSError) as info:
        destination.open()
    assert str(target) in str(info.value)
    assert snapshot(tmp_path) == before
    destination.teardown()
    destination.teardown()
    assert snapshot(tmp_path) == before


def test_open_refuses_a_path_under_a_regular_file(tmp_path: Path) -> None:
    """A regular file where a parent should be makes open raise naming the path; nothing is created."""
    (tmp_path / "file").write_bytes(b"x")
    before = snapshot(tmp_path)
    destination = FileDestination()
    destination.configure({"directory": str(tmp_path / "file" / "out")})
    with pytest.raises(OSError) as info:
        destination.open()
    assert str(tmp_path / "file" / "out") in str(info.value)
    assert snapshot(tmp_path) == before


def test_open_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    """A dangling symlink at the path is not a directory: open raises and creates nothing through it."""
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")
    destination = FileDestination()
    destination.configure({"directory": str(tmp_path / "out")})
    with pytest.raises(OSError) as info:
        destination.open()
    assert str(tmp_path / "out") in str(info.value)
    assert not (tmp_path / "elsewhere").exists()


def test_open_twice_is_forbidden_by_the_lifecycle_guard(tmp_path: Path) -> None:
    """Through new_destination a second open raises LifecycleError and changes nothing."""
    destination = new_destination()
    destination.configure({"directory": str(tmp_path / "out")})
    destination.open()
    with pytest.raises(LifecycleError):
        destination.open()


# --- write ---------------------------------------------------------------------------------------


def test_write_round_trips_raw_and_structured_payloads(tmp_path: Path) -> None:
    """Raw payloads are written as is; structured ones as canonical JSON (sorted, compact, UTF-8)."""
    destination = opened(tmp_path / "out")
    records = [
        rec(b"raw", b"\x00bytes\xff"),
        rec(b"json", {"b": 1, "a": "\u00e9", "c": [1, 2.5, None, True], "d": {"z": 0, "y": "\u2603"}}),
        rec(b"empty", b""),
        rec(b"empty-json", {}),
    ]
    assert destination.write(records) == 4
    assert contents(tmp_path / "out") == {
        b"raw": b"\x00bytes\xff",
        b"json": '{"a":"\u00e9","b":1,"c":[1,2.5,null,true],"d":{"y":"\u2603","z":0}}'.encode(),
        b"empty": b"",
        b"empty-json": b"{}",
    }


def test_write_returns_exactly_the_record_count_as_an_int(tmp_path: Path) -> None:
    """write returns len(records), an int and not a bool."""
    result = opened(tmp_path / "out").write([rec(b"only", b"1")])
    assert type(result) is int and result == 1


def test_write_delete_removes_key_and_absent_key_is_fine(tmp_path: Path) -> None:
    """A record whose after is None removes its key; removing an absent key is not an error."""
    destination = opened(tmp_path / "out")
    destination.write([rec(b"a", b"1"), rec(b"b", b"2")])
    assert destination.write([rec(b"a", None), rec(b"never", None)]) == 2
    assert contents(tmp_path / "out") == {b"b": b"2"}


def test_write_repeated_keys_last_wins(tmp_path: Path) -> None:
    """Within a batch and across batches the last record for a key decides."""
    destination = opened(tmp_path / "out")
    destination.write([rec(b"k", b"1"), rec(b"k", b"2"), rec(b"j", b"x"), rec(b"j", None), rec(b"k", b"3")])
    assert contents(tmp_path / "out") == {b"k": b"3"}
    destination.write([rec(b"j", b"back"), rec(b"k", {"v": 4})])
    assert contents(tmp_path / "out") == {b"j": b"back", b"k": b'{"v":4}'}


def test_write_replaces_a_larger_file_completely(tmp_path: Path) -> None:
    """Overwriting a long value with a short one leaves no trailing bytes."""
    destination = opened(tmp_path / "out")
    destination.write([rec(b"k", b"x" * 10_000)])
    destination.write([rec(b"k", b"y")])
    assert contents(tmp_path / "out") == {b"k": b"y"}


@pytest.mark.parametrize("factory", [FileDestination, new_destination])
def test_write_empty_batch_returns_zero_and_changes_nothing(tmp_path: Path, factory: Callable[[], Any]) -> None:
    """An empty batch returns 0 and leaves the directory as it was."""
    destination = factory()
    destination.configure({"directory": str(tmp_path / "out")})
    destination.open()
    destination.write([rec(b"k", b"v")])
    before = snapshot(tmp_path)
    assert destination.write([]) == 0
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "key",
    [b"k" * 255, "\u00e9".encode() * 127 + b"k", b"\xe2\x98\x83" * 85,
     b"...", b".hidden", b" ", b"-", b"a\\b", b"\x01"],
    ids=["255-ascii", "255-two-byte", "255-three-byte", "three-dots", "hidden", "space", "dash", "backslash", "ctrl"],
)
def test_valid_keys_are_accepted(tmp_path: Path, key: bytes) -> None:
    """Keys of 1..255 UTF-8 bytes without '/' or NUL, other than '.' and '..', name a file."""
    assert len(key) <= 255
    destination = opened(tmp_path / "out")
    assert destination.write([rec(key, b"value")]) == 1
    assert contents(tmp_path / "out") == {key: b"value"}
    assert destination.write([rec(key, None)]) == 1
    assert contents(tmp_path / "out") == {}


INVALID_KEYS = [
    pytest.param(None, id="none"),
    pytest.param(StructuredData({"id": 1}), id="structured"),
    pytest.param(b"", id="empty"),
    pytest.param(b"a/b", id="slash"),
    pytest.param(b"/", id="only-slash"),
    pytest.param(b"../escape", id="parent-slash"),
    pytest.param(b"a\x00b", id="nul"),
    pytest.param(b".", id="dot"),
    pytest.param(b"..", id="dotdot"),
    pytest.param(b"k" * 256, id="256-bytes"),
    pytest.param("\u00e9".encode() * 128, id="256-bytes-utf8"),
    pytest.param(b"\xff\xfe", id="not-utf8"),
    pytest.param(b"ab\xc3", id="truncated-utf8"),
]


@pytest.mark.parametrize("key", INVALID_KEYS)
@pytest.mark.parametrize("index", [0, 2])
def test_invalid_key_stops_the_batch_with_the_partial_count(tmp_path: Path, key: Any, index: int) -> None:
    """The first invalid key at index i raises WriteError(written=i) with exactly records[:i] applied."""
    out = tmp_path / "out"
    destination = opened(out)
    destination.write([rec(b"k0", b"old"), rec(b"gone", b"x")])
    batch = [rec(b"k0", b"new"), rec(b"gone", None), rec(b"k2", b"2"), rec(b"k3", b"3")]
    batch.insert(index, rec(key, b"bad"))
    with pytest.raises(WriteError) as info:
        destination.write(batch)
    assert info.value.written == index
    expected = {b"k0": b"old", b"gone": b"x"}
    if index == 2:
        expected = {b"k0": b"new"}
    assert contents(out) == expected
    assert os.listdir(tmp_path) == ["out"]
    assert destination.write([rec(b"after", b"ok")]) == 1
    assert contents(out) == {**expected, b"after": b"ok"}


def test_invalid_key_partial_count_across_middleware_chunks(tmp_path: Path) -> None:
    """With sdk.batch.size=2 the count stays relative to the whole batch."""
    destination = new_destination()
    destination.configure({"directory": str(tmp_path / "out"), "sdk.batch.size": "2"})
    destination.open()
    batch = [rec(b"k%d" % i, b"%d" % i) for i in range(7)]
    batch[5] = rec(b"bad/key", b"x")
    with pytest.raises(WriteError) as info:
        destination.write(batch)
    assert info.value.written == 5
    assert contents(tmp_path / "out") == {b"k%d" % i: b"%d" % i for i in range(5)}


def test_write_does_not_mutate_records(tmp_path: Path) -> None:
    """The records given to write are equal to copies taken before, after success and after failure."""
    destination = opened(tmp_path / "out")
    batch = [rec(b"a", {"x": [1, 2]}, b"p1"), rec(b"b", b"raw", b"p2"), rec(b"..", b"bad", b"p3")]
    copies = [r.model_copy(deep=True) for r in batch]
    with pytest.raises(WriteError):
        destination.write(batch)
    destination.write(batch[:2])
    assert batch == copies


def test_large_payload_with_nul_and_invalid_utf8_round_trips(tmp_path: Path) -> None:
    """A payload over 4 MiB holding every byte value, NULs and invalid UTF-8 comes back exactly."""
    payload = bytes(range(256)) * (4 * 1024 * 4) + b"\x00\xff\xfe\xc3(\x00"
    assert len(payload) > 4 * 1024 * 1024
    destination = opened(tmp_path / "out")
    assert destination.write([rec(b"big", payload), rec(b"small", b"\x00")]) == 2
    assert contents(tmp_path / "out") == {b"big": payload, b"small": b"\x00"}


def test_symlink_at_key_is_replaced_and_target_untouched(tmp_path: Path) -> None:
    """Writing a key whose name is a symlink to a file outside replaces the link; the target is unchanged."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"original")
    outside_dir = tmp_path / "outside-dir"
    outside_dir.mkdir()
    out = tmp_path / "out"
    destination = opened(out)
    (out / "link").symlink_to(outside)
    (out / "dirlink").symlink_to(outside_dir)
    (out / "dangling").symlink_to(tmp_path / "would-be-created")
    before_outside = snapshot(tmp_path / "outside-dir"), outside.read_bytes(), outside.stat().st_mtime_ns
    destination.write([rec(b"link", b"new"), rec(b"dirlink", b"d"), rec(b"dangling", b"z")])
    for name in ["link", "dirlink", "dangling"]:
        assert not (out / name).is_symlink()
    assert contents(out) == {b"link": b"new", b"dirlink": b"d", b"dangling": b"z"}
    assert (snapshot(tmp_path / "outside-dir"), outside.read_bytes(), outside.stat().st_mtime_ns) == before_outside
    assert not (tmp_path / "would-be-created").exists()


def test_deleting_a_symlink_key_removes_the_link_not_the_target(tmp_path: Path) -> None:
    """A delete of a key that is a symlink unlinks the link; the file and directory it points to remain."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    outside_dir = tmp_path / "outside-dir"
    outside_dir.mkdir()
    (outside_dir / "inner").write_bytes(b"inner")
    out = tmp_path / "out"
    destination = opened(out)
    (out / "link").symlink_to(outside)
    (out / "dirlink").symlink_to(outside_dir)
    assert destination.write([rec(b"link", None), rec(b"dirlink", None)]) == 2
    assert os.listdir(out) == []
    assert outside.read_bytes() == b"keep me"
    assert (outside_dir / "inner").read_bytes() == b"inner"


def test_writes_stay_inside_the_directory(tmp_path: Path) -> None:
    """Whatever the keys (valid or not), nothing outside the configured directory changes."""
    (tmp_path / "sibling").write_bytes(b"s")
    out = tmp_path / "out"
    destination = opened(out)
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("out")}
    for key in [b"..", b"../sibling", b"/etc/passwd", b".", b"sibling", b"a\x00b"]:
        try:
            destination.write([rec(key, b"x"), rec(key, None)])
        except WriteError:
            pass
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("out")}
    assert after == before
    assert contents(out) == {}


def test_key_problem_explains_what_key_name_rejects() -> None:
    """key_name refuses a key exactly when key_problem gives a reason, for the listed invalid keys."""
    for param in INVALID_KEYS:
        key = param.values[0]
        data = RawData(key) if isinstance(key, bytes) else key
        assert key_name(data) is None
        assert key_problem(data)


@PROPERTY
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=130).map(str.encode)))
def test_key_name_agrees_with_key_problem(raw: bytes) -> None:
    """The fast check in write and the explaining check agree on every byte string."""
    assert (key_name(RawData(raw)) is None) == (key_problem(RawData(raw)) is not None)
    if key_name(RawData(raw)) is not None:
        assert key_name(RawData(raw)) == raw


def test_ack_in_order_succeeds_and_changes_nothing(tmp_path: Path) -> None:
    """Acking each written record's position, in order, succeeds and leaves the data alone."""
    destination = new_destination()
    destination.configure({"directory": str(tmp_path / "out")})
    destination.open()
    batch = [rec(b"k%d" % i, b"v%d" % i, b"pos-%d" % i) for i in range(5)]
    destination.write(batch)
    before = snapshot(tmp_path)
    for record in batch:
        destination.ack(record.position)
    assert snapshot(tmp_path) == before


# --- sync ----------------------------------------------------------------------------------------


@pytest.fixture
def fsync_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records 'file' or 'dir' for each os.fsync call, which still runs."""
    log: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        log.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return log


def test_sync_true_fsyncs_every_file_and_the_directory(tmp_path: Path, fsync_log: list[str]) -> None:
    """With sync=true each written file and then the directory are fsynced; the data is right."""
    destination = opened(tmp_path / "out", sync="true")
    assert destination.write([rec(b"a", b"1"), rec(b"b", {"x": 1}), rec(b"a", None), rec(b"c", b"3")]) == 4
    assert fsync_log.count("file") == 3
    assert fsync_log.count("dir") >= 1 and fsync_log[-1] == "dir"
    assert contents(tmp_path / "out") == {b"b": b'{"x":1}', b"c": b"3"}


def test_sync_true_fsyncs_the_directory_after_a_failed_batch(tmp_path: Path, fsync_log: list[str]) -> None:
    """With sync=true the records written before an invalid key are made durable too."""
    destination = opened(tmp_path / "out", sync="true")
    with pytest.raises(WriteError) as info:
        destination.write([rec(b"a", b"1"), rec(b"", b"bad")])
    assert info.value.written == 1
    assert fsync_log == ["file", "dir"]
    assert contents(tmp_path / "out") == {b"a": b"1"}


def test_sync_false_never_fsyncs(tmp_path: Path, fsync_log: list[str]) -> None:
    """With the default sync=false write calls no fsync."""
    destination = opened(tmp_path / "out")
    destination.write([rec(b"a", b"1"), rec(b"a", None)])
    assert fsync_log == []


# --- teardown ------------------------------------------------------------------------------------


def _state_new(d: Any, out: Path) -> None:
    pass


def _state_configured(d: Any, out: Path) -> None:
    d.configure({"directory": str(out)})


def _state_open(d: Any, out: Path) -> None:
    d.configure({"directory": str(out)})
    d.open()
    d.write([rec(b"kept", b"data")])


def _state_failed_open(d: Any, out: Path) -> None:
    out.write_bytes(b"a file where the directory should be")
    d.configure({"directory": str(out)})
    with pytest.raises(OSError):
        d.open()


def _state_failed_write(d: Any, out: Path) -> None:
    d.configure({"directory": str(out)})
    d.open()
    with pytest.raises(WriteError):
        d.write([rec(b"kept", b"data"), rec(None, b"x")])


def _state_torn_down(d: Any, out: Path) -> None:
    _state_open(d, out)
    d.teardown()


STATES = [_state_new, _state_configured, _state_open, _state_failed_open, _state_failed_write, _state_torn_down]


@pytest.mark.parametrize("factory", [FileDestination, new_destination])
@pytest.mark.parametrize("reach", STATES, ids=lambda f: f.__name__.removeprefix("_state_"))
def test_teardown_works_in_every_state_is_idempotent_and_keeps_data(
    tmp_path: Path, factory: Callable[[], Any], reach: Callable[[Any, Path], None]
) -> None:
    """teardown succeeds in every state, a second one too, and everything written stays readable."""
    out = tmp_path / "out"
    destination = factory()
    reach(destination, out)
    before = snapshot(tmp_path)
    assert destination.teardown() is None
    assert destination.teardown() is None
    assert snapshot(tmp_path) == before
    if reach in (_state_open, _state_failed_write, _state_torn_down):
        assert contents(out) == {b"kept": b"data"}


def test_calls_after_teardown_raise_lifecycle_error_and_change_nothing(tmp_path: Path) -> None:
    """Through new_destination, write, ack, open and configure after teardown raise LifecycleError."""
    destination = new_destination()
    _state_open(destination, tmp_path / "out")
    destination.teardown()
    before = snapshot(tmp_path)
    for call in [
        lambda: destination.write([rec(b"late", b"x")]),
        lambda: destination.ack(b"p"),
        lambda: destination.open(),
        lambda: destination.configure({"directory": str(tmp_path / "other")}),
    ]:
        with pytest.raises(LifecycleError):
            call()
    assert snapshot(tmp_path) == before


def test_failed_open_allows_only_teardown(tmp_path: Path) -> None:
    """After open raised, write raises LifecycleError and creates nothing; teardown works."""
    destination = new_destination()
    _state_failed_open(destination, tmp_path / "out")
    before = snapshot(tmp_path)
    with pytest.raises(LifecycleError):
        destination.write([rec(b"k", b"v")])
    destination.teardown()
    assert snapshot(tmp_path) == before


# --- through the Driver --------------------------------------------------------------------------


def test_driver_runs_the_registration_and_read_back_matches() -> None:
    """Driver(reference.registration) writes and acks batches; read_back shows the model; close cleans up."""
    with Driver(reference.registration) as driver:
        directory = driver.config["directory"]
        assert not os.path.exists(directory)
        driver.configure()
        assert not os.path.exists(directory)
        driver.open()
        batches = [
            [rec(b"a", b"1", b"p1"), rec(b"b", {"n": 2}, b"p2")],
            [rec(b"a", None, b"p3"), rec(b"c", b"3", b"p4")],
            [],
        ]
        results = [driver.write_and_ack(batch) for batch in batches]
        assert [(r.written, r.error) for r in results] == [(2, None), (2, None), (0, None)]
        assert reference.registration.read_back(driver.config) == {b"b": b'{"n":2}', b"c": b"3"}
        driver.teardown()
        driver.teardown()
        assert reference.registration.read_back(driver.config) == {b"b": b'{"n":2}', b"c": b"3"}
        tmp_root = os.path.dirname(directory)
    assert not os.path.exists(tmp_root)


def test_driver_reports_partial_write_and_recovers(tmp_path: Path) -> None:
    """Through the Driver an invalid key gives BatchResult(written=i, WriteError) and the next batch works."""
    config = {"directory": str(tmp_path / "out"), "sdk.batch.size": "3"}
    with Driver(reference.registration, config=config) as driver:
        driver.configure()
        driver.open()
        batch = [rec(b"k%d" % i, b"v", b"p%d" % i) for i in range(6)] + [rec(b".", b"x", b"p6")]
        result = driver.write_and_ack(batch)
        assert result.written == 6 and isinstance(result.error, WriteError)
        assert driver.write_and_ack([rec(b"next", b"ok", b"p7")]).written == 1
        driver.teardown()
    assert contents(tmp_path / "out") == {**{b"k%d" % i: b"v" for i in range(6)}, b"next": b"ok"}


def test_driver_with_a_factory_class_registration(tmp_path: Path) -> None:
    """A Registration of the bare FileDestination class is driven the same way."""
    registration = Registration(factory=FileDestination, config={"directory": str(tmp_path / "d")})
    with Driver(registration) as driver:
        results = driver.run([[rec(b"x", b"1", b"p")], [rec(b"x", None, b"q")], [rec(b"y", b"2", b"r")]])
    assert [r.written for r in results] == [1, 1, 1]
    assert contents(tmp_path / "d") == {b"y": b"2"}


# --- faults (pyfakefs and patched os calls) ------------------------------------------------------


@pytest.mark.parametrize("fits", [0, 1, 3])
def test_disk_full_mid_batch_counts_whole_records_and_leaves_no_partial_file(fits: int) -> None:
    """When record k does not fit, WriteError(written=k); files 0..k-1 intact, none for k, no temp file."""
    with fake_fs() as fs:
        destination = opened("/data/out")
        destination.write([rec(b"existing", b"e" * 100)])
        fs.set_disk_usage(100 + fits * 1000 + 500, "/data")
        batch = [rec(b"k%d" % i, bytes([i]) * 1000) for i in range(5)]
        with pytest.raises(WriteError) as info:
            destination.write(batch)
        assert info.value.written == fits
        expected = {b"existing": b"e" * 100, **{b"k%d" % i: bytes([i]) * 1000 for i in range(fits)}}
        assert contents("/data/out") == expected
        assert os.listdir("/data") == ["out"]
        fs.set_disk_usage(10**9, "/data")
        assert destination.write(batch[fits:]) == 5 - fits
        assert contents("/data/out") == {**expected, **{b"k%d" % i: bytes([i]) * 1000 for i in range(fits, 5)}}


def test_disk_full_while_overwriting_keeps_the_old_value() -> None:
    """If the new value of an existing key does not fit, the old value stays and no temp file is left."""
    with fake_fs() as fs:
        destination = opened("/data/out")
        destination.write([rec(b"k", b"old" * 100)])
        fs.set_disk_usage(300 + 500, "/data")
        with pytest.raises(WriteError) as info:
            destination.write([rec(b"k", b"new" * 1000)])
        assert info.value.written == 0
        assert contents("/data/out") == {b"k": b"old" * 100}


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES, errno.ENOSPC])
@pytest.mark.parametrize("call", ["open", "write", "rename"])
@pytest.mark.parametrize("failing", [0, 2])
def test_os_error_while_writing_counts_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, err: int, failing: int
) -> None:
    """An OSError from os.open, os.write or os.rename at record k gives WriteError(written=k), no temp file."""
    out = tmp_path / "out"
    destination = opened(out)
    destination.write([rec(b"k1", b"old")])
    monkeypatch.setattr(os, call, fail_on_call(getattr(os, call), failing, err))
    batch = [rec(b"k%d" % i, b"v%d" % i) for i in range(4)]
    with pytest.raises(WriteError) as info:
        destination.write(batch)
    monkeypatch.undo()
    assert info.value.written == failing
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == err
    expected = {b"k1": b"old", **{b"k%d" % i: b"v%d" % i for i in range(failing)}}
    assert contents(out) == expected
    assert destination.write(batch) == 4


def test_os_error_on_delete_counts_whole_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError other than ENOENT from unlink on a delete stops the batch at that record."""
    out = tmp_path / "out"
    destination = opened(out)
    destination.write([rec(b"a", b"1"), rec(b"b", b"2")])
    monkeypatch.setattr(os, "unlink", fail_on_call(os.unlink, 1, errno.EIO))
    with pytest.raises(WriteError) as info:
        destination.write([rec(b"a", None), rec(b"b", None), rec(b"c", b"3")])
    monkeypatch.undo()
    assert info.value.written == 1
    assert contents(out) == {b"b": b"2"}


@pytest.mark.parametrize(("failing", "written"), [(0, 0), (1, 0), (2, 1), (3, 1), (5, 2)])
def test_fsync_error_with_sync_true_counts_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int, written: int
) -> None:
    """With sync=true each record fsyncs its file then the directory (calls 2k and 2k+1); an EIO from either
    gives WriteError(written=k): a record whose directory fsync fails is undone, and no temp file is left."""
    out = tmp_path / "out"
    destination = opened(out, sync="true")
    monkeypatch.setattr(os, "fsync", fail_on_call(os.fsync, failing, errno.EIO))
    with pytest.raises(WriteError) as info:
        destination.write([rec(b"a", b"1"), rec(b"b", b"2"), rec(b"c", b"3")])
    monkeypatch.undo()
    assert info.value.written == written
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.EIO
    assert contents(out) == dict([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")][:written])


# The batch mixes a new key, an overwrite, deletes (of a file, of an absent key) and a key written twice. (A
# symlink at a key is tested on the real disk below: pyfakefs 6.3 refuses a bytes-path rename over a symlink.)
FAULT_SETUP = [rec(b"old", b"old value"), rec(b"gone", b"to be deleted")]
FAULT_BATCH = [
    rec(b"new", b"new value"),
    rec(b"old", b"old overwritten"),
    rec(b"gone", None),
    rec(b"absent", None),
    rec(b"other", b"other value"),
    rec(b"new", b"new again"),
]


def _fault_run(faults: Any, directory: str, sync: str, point: str, nth: int) -> tuple[int, int]:
    """Writes FAULT_SETUP, then FAULT_BATCH with an EIO at call `nth` of `point`; checks that read-back is the
    model of exactly the records counted, with no temporary file, then that the rest of the batch goes through.
    Returns (written, injected)."""
    destination = opened(directory, sync=sync)
    destination.write(FAULT_SETUP)
    read_back = reference.registration.read_back
    assert read_back is not None
    injected = faults.injected
    faults.files_before_the_batch(directory)  # "remove" counts removals of keys, not of temporary files
    faults.inject(point, errno.EIO, nth)
    try:
        written = destination.write(FAULT_BATCH)
    except WriteError as err:
        written = err.written
        assert 0 <= written < len(FAULT_BATCH)
        assert isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.EIO
    finally:
        faults.clear()
    injected = faults.injected - injected
    where = f"sync={sync}, EIO at call {nth} of {point}: written={written}"
    assert read_back({"directory": directory}) == Model().apply(FAULT_SETUP + FAULT_BATCH[:written]).data, where
    names = [os.fsencode(name) for name in os.listdir(directory)]
    assert not [name for name in names if name.startswith(TEMP_PREFIX)], where
    assert destination.write(FAULT_BATCH[written:]) == len(FAULT_BATCH) - written, where
    assert read_back({"directory": directory}) == Model().apply(FAULT_SETUP + FAULT_BATCH).data, where
    return written, injected


@pytest.mark.parametrize("point", sorted(conformance.probes.faults.INJECTION_POINTS))
@pytest.mark.parametrize("sync", ["true", "false"])
def test_one_io_error_at_every_call_counts_exactly_what_reads_back(sync: str, point: str) -> None:
    """An EIO at each call in turn of os.open/io.open, writes, renames, fsyncs or removals of existing files (pyfakefs,
    the suite's injector)
    gives WriteError(written=n) with read-back equal to the model of records[:n] and no temporary file, whatever
    the record (new key, overwrite, delete) and the call (with sync=true, a failed directory
    fsync undoes its record); once nth is past the last call, the whole batch is written."""
    seen = []
    with conformance.probes.faults.fake_filesystem() as faults:
        root = tempfile.mkdtemp()
        for nth in range(1, 100):
            written, injected = _fault_run(faults, os.path.join(root, f"out{nth}"), sync, point, nth)
            if not injected:
                assert written == len(FAULT_BATCH)
                break
            seen.append(written)
        else:
            pytest.fail("the faults never ran out")
    # Which record each call belongs to: one temp open, write and rename per value written (records 0, 1, 4, 5);
    # with sync=true also its file fsync, and a directory open and fsync per change (record 2's delete too;
    # record 3 deletes an absent key: no call). Without sync nothing is fsynced. Under pyfakefs an os.write passes
    # through the file object's write too, so the "write" point counts it twice.
    synced = sync == "true" and point in ("open", "fsync")
    expected = {"open": [0, 1, 4, 5], "write": [0, 0, 1, 1, 4, 4, 5, 5], "rename": [0, 1, 4, 5], "fsync": [],
                "remove": [2]}[point]
    assert seen == ([0, 0, 1, 1, 2, 4, 4, 5, 5] if synced else expected)


@pytest.mark.parametrize("last", [False, True])
def test_failed_directory_fsync_whose_undo_fails_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: bool
) -> None:
    """When the directory fsync of record k fails and so does putting the old file back, record k is in place:
    WriteError counts it (written=k+1), unless it is the last record, where the count may not reach
    len(records) and stays k (a retry rewrites the same value). No temporary file is left either way."""
    out = tmp_path / "out"
    destination = opened(out, sync="true")
    destination.write([rec(b"a", b"old")])
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "directory fsync failed")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", fail_on_call(os.rename, 1, errno.EIO))  # call 0 renames, call 1 undoes
    batch = [rec(b"a", b"new")] + ([] if last else [rec(b"b", b"2")])
    with pytest.raises(WriteError) as info:
        destination.write(batch)
    monkeypatch.undo()
    assert info.value.written == (0 if last else 1)
    assert contents(out) == {b"a": b"new"}


@pytest.mark.parametrize("fails", [False, True])
def test_sync_true_symlink_at_key_is_replaced_or_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    """With sync=true a symlink at a key is replaced by the file (its target untouched); if the directory fsync
    fails, the symlink itself is put back (the backup links the link, not its target) and nothing is counted."""
    out, target = tmp_path / "out", tmp_path / "target"
    target.write_bytes(b"outside")
    destination = opened(out, sync="true")
    (out / "link").symlink_to(target)
    if fails:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(errno.EIO, "directory fsync failed")
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        with pytest.raises(WriteError) as info:
            destination.write([rec(b"link", b"new")])
        monkeypatch.undo()
        assert info.value.written == 0
        assert os.readlink(out / "link") == str(target)
        assert contents(out) == {}
    else:
        assert destination.write([rec(b"link", b"new")]) == 1
        assert contents(out) == {b"link": b"new"}
    assert target.read_bytes() == b"outside"
    assert sorted(os.listdir(tmp_path)) == ["out", "target"]


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When os.write writes fewer bytes than asked, write carries on until the whole payload is on disk."""
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:1000])))
    payload = bytes(range(256)) * 40
    destination = opened(tmp_path / "out")
    assert destination.write([rec(b"k", payload), rec(b"empty", b"")]) == 2
    monkeypatch.undo()
    assert contents(tmp_path / "out") == {b"k": payload, b"empty": b""}


def test_temp_name_collision_is_skipped(tmp_path: Path) -> None:
    """A leftover file with a temporary name does not block writes and is left alone."""
    out = tmp_path / "out"
    destination = opened(out)
    for n in range(100):  # whatever the counter is at, some of these are in its way
        (out / os.fsdecode(TEMP_PREFIX + b"%d" % n)).write_bytes(b"stale")
    leftovers = set(os.listdir(out))
    destination.write([rec(b"k%d" % i, b"v") for i in range(5)])
    assert set(os.listdir(out)) == leftovers | {f"k{i}" for i in range(5)}


def test_open_permission_denied_names_the_path() -> None:
    """When the parent is not writable (not root), open raises PermissionError naming the path, creating nothing."""
    with fake_fs():
        os.chmod("/data", 0o555)
        for factory in (FileDestination, new_destination):
            destination = factory()
            destination.configure({"directory": "/data/out/sub"})
            with pytest.raises(PermissionError) as info:
                destination.open()
            assert "/data/out/sub" in str(info.value)
            assert os.listdir("/data") == []
            destination.teardown()


def test_open_refuses_an_existing_unwritable_directory() -> None:
    """An existing directory that cannot be written (not root) makes open raise naming it, unchanged."""
    with fake_fs():
        os.mkdir("/data/ro", 0o555)
        os.chmod("/data/ro", 0o555)
        destination = FileDestination()
        destination.configure({"directory": "/data/ro"})
        with pytest.raises(PermissionError) as info:
            destination.open()
        assert "/data/ro" in str(info.value)
        assert os.listdir("/data/ro") == []


# --- properties ----------------------------------------------------------------------------------


def _valid_utf8_key(text: str) -> bool:
    raw = text.encode()
    return 0 < len(raw) <= 255 and "/" not in text and "\0" not in text and text not in (".", "..")


VALID_KEYS = st.one_of(
    st.sampled_from([b"a", b"b", b"c", b"\xc3\xa9", b"k" * 255]),  # few names, so keys repeat
    st.text(min_size=1, max_size=12).filter(_valid_utf8_key).map(str.encode),
)
PAYLOADS = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.text(max_size=4), st.booleans()), max_size=3),
)
OPS = st.tuples(VALID_KEYS, PAYLOADS)
INVALID = st.one_of(
    st.none(),
    st.just(StructuredData({"k": 1})),
    st.sampled_from([b"", b".", b"..", b"k" * 256, b"\xff"]),
    st.tuples(st.binary(max_size=5), st.sampled_from([b"/", b"\x00"]), st.binary(max_size=5)).map(b"".join),
)


def apply(model: dict[bytes, bytes], ops: list[tuple[bytes, Any]]) -> None:
    """The model's view of writing `ops`: the last value per key, None deletes."""
    for key, payload in ops:
        if payload is None:
            model.pop(key, None)
        else:
            model[key] = rec(key, payload).payload.after.bytes()  # type: ignore[union-attr]


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A fresh temporary directory per hypothesis example, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="test-reference-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@PROPERTY
@given(batches=st.lists(st.lists(OPS, max_size=10), max_size=4))
def test_property_valid_batches_match_the_dict_model(batches: list[list[tuple[bytes, Any]]]) -> None:
    """Any sequence of batches of valid keys (repeats, deletes) leaves the directory equal to a dict model."""
    with scratch_dir() as tmp:
        destination = opened(tmp / "out")
        model: dict[bytes, bytes] = {}
        for ops in batches:
            assert destination.write([rec(k, p) for k, p in ops]) == len(ops)
            apply(model, ops)
            assert contents(tmp / "out") == model


@PROPERTY
@given(
    before=st.lists(OPS, max_size=6),
    ops=st.lists(OPS, min_size=0, max_size=10),
    bad=INVALID,
    data=st.data(),
    batch_size=st.sampled_from(["0", "1", "3"]),
)
def test_property_invalid_key_at_index_writes_exactly_the_prefix(
    before: list[tuple[bytes, Any]],
    ops: list[tuple[bytes, Any]],
    bad: Any,
    data: st.DataObject,
    batch_size: str,
) -> None:
    """An invalid key at index i gives WriteError(written=i), the model of the prefix, then recovery."""
    index = data.draw(st.integers(0, len(ops)), label="index")
    with scratch_dir() as tmp:
        destination = new_destination()
        destination.configure({"directory": str(tmp / "out"), "sdk.batch.size": batch_size})
        destination.open()
        model: dict[bytes, bytes] = {}
        destination.write([rec(k, p) for k, p in before])
        apply(model, before)
        batch = [rec(k, p) for k, p in ops]
        batch.insert(index, rec(bad, b"bad"))
        with pytest.raises(WriteError) as info:
            destination.write(batch)
        assert info.value.written == index
        apply(model, ops[:index])
        assert contents(tmp / "out") == model
        assert destination.write([rec(k, p) for k, p in ops]) == len(ops)
        apply(model, ops)
        assert contents(tmp / "out") == model
        destination.teardown()
