"""The contract-space witnesses, defined once: keys and metadata from corners of the contract's space that random
draws almost never reach, written by construction (in every run) by the checks that write.

Keys: distinct byte strings that are one name to a destination that normalises Unicode (NFC/NFD, NFKC), folds
case, or trims Windows-style, and names beginning with a dot (a user's `.env` is not a temporary file). Every one is
a valid key (CONTRACT.md, Keys), so each must read back under its own bytes. Metadata: Conduit's standard keys of
free text (opencdc.collection) with values that a destination routing by them (a collection's sub-directory) must
not follow outside its area.
"""

import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from harness import Change, Operation, RawData, Record
from harness.keys import key_problem
from harness.records import Data

__all__ = [
    "WITNESS_KEY_GROUPS",
    "WITNESS_KEYS",
    "ROUTING_METADATA_KEYS",
    "HOSTILE_METADATA_VALUES",
    "ABSOLUTE_METADATA_VALUES",
    "witness_metadata",
    "witness_records",
    "witness_key_labels",
    "partners",
]

# Each group: keys equivalent to one another under one folding a destination may apply to names, so a destination
# that applies it stores the group under fewer names than keys.
WITNESS_KEY_GROUPS: Mapping[str, tuple[str, ...]] = {
    "normalization-equivalent keys": (
        "e\u0301", "\u00e9",  # NFD and NFC of é
        "A\u030a", "\u00c5", "\u212b",  # Å decomposed, composed, and the Angstrom sign (NFC makes it U+00C5)
        "\u1100\u1161", "\uac00",  # Hangul jamo and the syllable they compose
        "\ufb01", "fi",  # NFKC folds the ligature
    ),
    "case-equivalent keys": (
        "A", "a",
        "\u00df", "SS", "ss",  # ß upper-cases to SS
        "\u212a", "K", "k",  # the Kelvin sign folds to k
        "\u03c3", "\u03c2", "\u03a3",  # Greek sigma: medial, final, capital
        "Stra\u00dfe", "STRASSE",
    ),
    "dot-leading keys": (".env", ".x", "..x", "...", ".a.b", ". "),
    "names Windows trims or reserves": ("t", "t.", "t ", "t. .", "CON", "con.txt"),
}
WITNESS_KEYS: tuple[bytes, ...] = tuple(dict.fromkeys(
    key.encode() for group in WITNESS_KEY_GROUPS.values() for key in group))
assert all(key_problem(key) is None for key in WITNESS_KEYS), "every witness key is a valid key"

# Conduit's standard metadata keys (opencdc/metadata.go) of free text, which a destination may route or name things
# by. The typed ones are left out: Conduit's Go SDK parses them on the way in (a schema version that is not a number
# nacks the record, a schema subject makes it fetch a schema), so no pipeline hands a destination odd values there.
ROUTING_METADATA_KEYS = ("opencdc.collection", "conduit.source.connector.id", "conduit.source.plugin.name")
# Values that name a place outside the area when joined to a path unchecked, or break a naive name: traversal (none
# leaves the example's own temporary directory), backslashes, percent-encoding, control and odd characters (never
# NUL, which a Conduit string cannot hold), empty, and past a file name's limit (NAME_MAX, 255 bytes).
HOSTILE_METADATA_VALUES = (
    "../escaped", "..", ".", "a/../../escaped", "../", "..\\escaped", "%2e%2e%2fescaped", "",
    "\t\n\x01\x7f\u2028\ufeff", "e\u0301/../..", "x" * 300,
)
# Absolute paths, as templates: `{tmp}` is the example's temporary directory (a check that watches what lies there).
ABSOLUTE_METADATA_VALUES = ("{tmp}/w1/abs-target", "{tmp}/w1/w2", "{tmp}")


def witness_metadata(tmp: str | None = None) -> list[dict[str, str]]:
    """One metadata map per hostile value, every routing key carrying it (plus a key of no standard); with `tmp`,
    the absolute values too."""
    values = list(HOSTILE_METADATA_VALUES)
    if tmp is not None:
        values += [value.replace("{tmp}", tmp) for value in ABSOLUTE_METADATA_VALUES]
    return [{**{key: value for key in ROUTING_METADATA_KEYS}, "x-" + str(number): value}
            for number, value in enumerate(values)]


def witness_records(tmp: str | None = None, afters: Sequence[Data] = (), *,
                    hostile_metadata: bool = True) -> list[Record]:
    """A record per witness key, each with a value of its own (or, for a registration that declares its payloads,
    `afters` in turn), the first ones carrying a witness metadata map each (every map on one record) unless
    `hostile_metadata` is false."""
    metadata = witness_metadata(tmp) if hostile_metadata else []
    count = max(len(WITNESS_KEYS), len(metadata))
    return [Record(operation=Operation.snapshot, key=RawData(WITNESS_KEYS[i % len(WITNESS_KEYS)]),
                   metadata=metadata[i] if i < len(metadata) else {},
                   payload=Change(after=afters[i % len(afters)] if afters else RawData(b"witness %d" % i)))
            for i in range(count)]


def _forms(text: str) -> set[str]:
    """The names a folding destination may store `text` under (itself excluded)."""
    forms = {unicodedata.normalize(form, text) for form in ("NFC", "NFD", "NFKC", "NFKD")}
    forms |= {text.casefold(), text.lower(), text.upper(), text.rstrip(". ")}
    forms.discard(text)
    return forms


def partners(raw: bytes) -> list[bytes]:
    """The other witness keys of the groups `raw` belongs to, those it folds to or from first (a batch that writes
    one may write them too)."""
    text = raw.decode("utf-8", "replace")
    others = [k for group in WITNESS_KEY_GROUPS.values() if text in group for k in group if k != text]
    others.sort(key=lambda k: not (k in _forms(text) or text in _forms(k)))
    return [k.encode() for k in others]


def witness_key_labels(written: Iterable[bytes], held: set[bytes]) -> list[str]:
    """The key-class evidence that `written` (keys a batch stored) gives once read-back matches, with `held` the keys
    stored after it: a key beginning with a dot, and a key stored beside another it folds to (by Unicode
    normalisation, case or Windows' trimming) that both read back under their own bytes."""
    labels: set[str] = set()
    texts: dict[str, bytes] = {}
    for raw in held:
        try:
            texts[raw.decode("utf-8")] = raw
        except UnicodeDecodeError:
            continue
    for raw in written:
        if raw not in held:
            continue
        if raw.startswith(b".") and raw not in (b".", b".."):
            labels.add("dot-leading key")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for form in _forms(text):
            if form in texts:
                normal = any(unicodedata.normalize(f, text) == form for f in ("NFC", "NFD", "NFKC", "NFKD"))
                cased = form in (text.casefold(), text.lower(), text.upper())
                labels.add("keys equal under Unicode normalization" if normal else
                           "keys equal under case folding" if cased else "keys equal under Windows' trimming")
    return sorted(labels)
