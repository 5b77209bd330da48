"""The contract's errors (CONTRACT.md section 2)."""

from collections.abc import Iterable

__all__ = ["ConfigError", "LifecycleError", "WriteError"]


class ConfigError(ValueError):
    """A config was rejected; `keys` names every bad parameter."""

    def __init__(self, message: str, keys: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.keys: tuple[str, ...] = tuple(keys)


class LifecycleError(RuntimeError):
    """A method was called in a state where the lifecycle table (CONTRACT.md section 5) forbids it."""


class WriteError(Exception):
    """`write` stopped early: exactly `records[:written]` were written."""

    def __init__(self, message: str, written: int) -> None:
        if isinstance(written, bool) or not isinstance(written, int) or written < 0:
            raise TypeError(f"WriteError.written must be an int >= 0, got {written!r}")
        super().__init__(message)
        self.message = message
        self.written = written

    def __str__(self) -> str:
        return f"{self.message} (written={self.written})"

    def __reduce__(self) -> tuple[type["WriteError"], tuple[str, int]]:
        # keeps `written` across pickling (xdist, multiprocessing)
        return (type(self), (self.message, self.written))
