"""The fault injector's modes: a disk that fills with a short write first, sticky faults, and removals of keys."""

import errno
import os

import pytest

from conformance.probes.faults import fake_filesystem


def test_a_write_that_crosses_the_full_disk_is_short_then_the_next_fails_with_enospc() -> None:
    """As on a real disk: the os.write that needs more than is left writes what fits and returns that count."""
    with fake_filesystem() as faults:
        os.makedirs("/d")
        faults.fill_disk(10)
        fd = os.open("/d/x", os.O_WRONLY | os.O_CREAT)
        assert os.write(fd, b"0123456789abcdef") == 10
        with pytest.raises(OSError) as raised:
            os.write(fd, b"abcdef")
        assert raised.value.errno == errno.ENOSPC
        os.close(fd)
        with open("/d/x", "rb") as f:
            assert f.read() == b"0123456789"
        assert (faults.shortened, faults.disk_full) == (1, 1)
        faults.clear()
        faults.unlimited_disk()
        fd = os.open("/d/y", os.O_WRONLY | os.O_CREAT)
        assert os.write(fd, b"x" * 100) == 100  # clear() ends the short writes
        os.close(fd)


def test_a_sticky_fault_fails_every_later_change_until_cleared() -> None:
    """After the nth fsync fails, renames, removals and links fail with the same errno; clear() repairs it."""
    with fake_filesystem() as faults:
        os.makedirs("/d")
        with open("/d/a", "wb") as f:
            f.write(b"a")
        faults.inject("fsync", errno.EIO, 1, sticky=True)
        fd = os.open("/d/b", os.O_WRONLY | os.O_CREAT)
        os.write(fd, b"b")
        for call in (lambda: os.fsync(fd), lambda: os.rename("/d/b", "/d/c"), lambda: os.unlink("/d/a"),
                     lambda: os.link("/d/a", "/d/l"), lambda: os.write(fd, b"more")):
            with pytest.raises(OSError) as raised:
                call()
            assert raised.value.errno == errno.EIO
        os.close(fd)
        assert faults.injected == 5
        faults.clear()
        os.rename("/d/b", "/d/c")
        os.unlink("/d/a")
        assert sorted(os.listdir("/d")) == ["c"]


def test_a_failed_device_still_opens_an_existing_file_but_creates_and_truncates_nothing() -> None:
    """Once broken, an open that changes nothing runs (so a reopen reaches its first write); creating or truncating
    a file fails, and so does the first change made through the descriptor."""
    with fake_filesystem() as faults:
        os.makedirs("/d")
        with open("/d/a", "wb") as f:
            f.write(b"a")
        faults.inject("write", errno.EIO, 1, sticky=True)
        fd = os.open("/d/b", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError):
            os.write(fd, b"b")  # the device fails here, and stays failed
        os.close(fd)
        for path, flags in (("/d/c", os.O_WRONLY | os.O_CREAT), ("/d/a", os.O_WRONLY | os.O_TRUNC),
                            ("/d/a", os.O_WRONLY | os.O_CREAT | os.O_EXCL)):
            with pytest.raises(OSError) as raised:
                os.open(path, flags)
            assert raised.value.errno == errno.EIO, (path, flags)
        fd = os.open("/d/a", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with pytest.raises(OSError) as raised:
            os.ftruncate(fd, 0)
        assert raised.value.errno == errno.EIO
        os.close(fd)
        with open("/d/a", "rb") as f:
            assert f.read() == b"a"
        with pytest.raises(OSError):
            open("/d/a", "wb")
        faults.clear()
        assert sorted(os.listdir("/d")) == ["a", "b"]


def test_a_fault_that_is_not_sticky_fails_one_call() -> None:
    """Without sticky, only the nth call at the point fails."""
    with fake_filesystem() as faults:
        os.makedirs("/d")
        faults.inject("rename", errno.EACCES, 2)
        for name in (b"a", b"b", b"c"):
            with open(b"/d/" + name, "wb") as f:
                f.write(name)
        os.rename("/d/a", "/d/a2")
        with pytest.raises(PermissionError):
            os.rename("/d/b", "/d/b2")
        os.rename("/d/c", "/d/c2")
        os.unlink("/d/a2")


def test_remove_counts_only_files_that_held_data_before_the_batch() -> None:
    """A removal of a key's file is a "remove" call; the cleanup of a temporary file made later is not."""
    with fake_filesystem() as faults:
        os.makedirs("/d")
        with open("/d/key", "wb") as f:
            f.write(b"v")
        faults.files_before_the_batch("/d")
        faults.count()
        with open("/d/tmp", "wb") as f:
            f.write(b"t")
        os.unlink("/d/tmp")
        assert faults.calls["remove"] == 0
        os.unlink("/d/key")
        assert faults.calls["remove"] == 1
        faults.clear()
        with open("/d/key", "wb") as f:
            f.write(b"v")
        faults.inject("remove", errno.EIO, 1)
        with open("/d/tmp", "wb") as f:
            f.write(b"t")
        os.unlink("/d/tmp")  # not one of the files before the batch: passes
        with pytest.raises(OSError):
            os.unlink("/d/key")
