"""The contract's key rules (CONTRACT.md: Keys), written once: what makes a raw key one every destination must
accept. The reference destination, the suite's generators and its saved failures all use these."""

__all__ = ["MAX_KEY_BYTES", "RESERVED_NAMES", "FORBIDDEN_BYTES", "shape_problem", "key_problem", "fits_shape"]

MAX_KEY_BYTES = 255  # a file name's limit on common filesystems (NAME_MAX)
RESERVED_NAMES = (b".", b"..")  # names a directory already has
FORBIDDEN_BYTES = b"/\0"  # a path separator and the end of a C string


def shape_problem(raw: bytes) -> str | None:
    """Why `raw` breaks the key rules other than UTF-8 (length, '/' or NUL, '.' or '..'), or None."""
    if not raw:
        return "the key is empty"
    if len(raw) > MAX_KEY_BYTES:
        return f"the key is {len(raw)} bytes long (at most {MAX_KEY_BYTES})"
    if any(byte in raw for byte in FORBIDDEN_BYTES):
        return "the key contains '/' or NUL"
    if raw in RESERVED_NAMES:
        return f"the key is {raw.decode()!r}"
    return None


def fits_shape(raw: bytes) -> bool:
    """Whether `raw` keeps the key rules other than UTF-8 (which the contract leaves open)."""
    return shape_problem(raw) is None


def key_problem(raw: bytes) -> str | None:
    """Why `raw` is not a key every destination must accept (its shape, or not valid UTF-8), or None."""
    problem = shape_problem(raw)
    if problem is not None:
        return problem
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the key is not valid UTF-8"
    return None
