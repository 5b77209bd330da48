"""Records, their canonical bytes and their `opencdc/json` form (CONTRACT.md: Records)."""

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from harness import (
    Change,
    Operation,
    RawData,
    Record,
    StructuredData,
    dump_records,
    load_records,
    record_from_json,
    record_to_json,
)

# --- strategies -------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),  # beyond int64 and float precision
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

raw_data = st.binary(max_size=64).map(RawData)
structured_data = json_objects.map(StructuredData)
data = st.one_of(st.none(), raw_data, structured_data)

records = st.builds(
    Record,
    position=st.binary(max_size=32),
    operation=st.sampled_from(list(Operation)),
    metadata=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4),
    key=data,
    payload=st.builds(Change, before=data, after=data),
)


def exact(record: Record) -> str:
    """A form that tells apart what == does not (True vs 1, 1 vs 1.0, 0.0 vs -0.0)."""
    return json.dumps(record_to_json(record), sort_keys=True, ensure_ascii=True)


# --- RawData / StructuredData -----------------------------------------------------------------


def test_raw_data_bytes_are_the_raw_bytes() -> None:
    """RawData(b) keeps b and returns it unchanged from bytes()."""
    raw = b"\x00\xff/abc\n"
    assert RawData(raw).bytes() == raw
    assert RawData(raw).raw == raw
    assert RawData().bytes() == b""
    assert RawData(raw=b"k").bytes() == b"k"


def test_raw_data_rejects_str() -> None:
    """RawData holds bytes only; a str is refused instead of being silently encoded."""
    with pytest.raises(ValueError):
        RawData("text")  # type: ignore[arg-type]


def test_structured_data_bytes_are_canonical_json() -> None:
    """Keys sorted at every level, separators ',' and ':', no spaces."""
    value = StructuredData({"b": 1, "a": {"z": [1, 2.5, None, True], "y": "s"}})
    assert value.bytes() == b'{"a":{"y":"s","z":[1,2.5,null,true]},"b":1}'


def test_structured_data_bytes_keep_non_ascii_as_utf8() -> None:
    """Non-ASCII characters are written as UTF-8, not as \\u escapes."""
    value = StructuredData({"clé": "日本語 ✓", "emoji": "🎉"})
    out = value.bytes()
    assert b"\\u" not in out
    assert out == '{"clé":"日本語 ✓","emoji":"🎉"}'.encode()


def test_structured_data_bytes_escape_controls_and_quotes() -> None:
    """Quotes, backslashes and control characters are escaped so the bytes stay valid JSON."""
    value = StructuredData({"q": 'a"b\\c\n\x01'})
    out = value.bytes()
    assert json.loads(out) == {"q": 'a"b\\c\n\x01'}
    assert b"\n" not in out


def test_structured_data_empty_and_big_ints() -> None:
    """An empty object is `{}`; integers beyond 64 bits are written exactly."""
    assert StructuredData().bytes() == b"{}"
    assert StructuredData({}).bytes() == b"{}"
    big = 2**100 + 1
    assert StructuredData({"n": big}).bytes() == b'{"n":%d}' % big


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_structured_data_rejects_non_finite_floats(bad: float) -> None:
    """NaN and infinities have no JSON form; the error says so and names where it is."""
    with pytest.raises(ValueError, match=r"data\.outer\.x.*not a finite number"):
        StructuredData({"outer": {"x": bad}})
    with pytest.raises(ValueError, match=r"data\.l\[1\].*not a finite number"):
        StructuredData({"l": [1, bad]})


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [({1, 2}, "set"), (b"bytes", "bytes"), (object(), "object"), (1 + 2j, "complex")],
)
def test_structured_data_rejects_non_json_values(bad: Any, type_name: str) -> None:
    """A value that is not JSON is refused with a message naming its type and path."""
    with pytest.raises(ValueError, match=rf"data\.k: {type_name} is not a JSON value"):
        StructuredData({"k": bad})


def test_structured_data_rejects_non_str_nested_keys() -> None:
    """Nested object keys must be strings, as in JSON."""
    with pytest.raises(ValueError, match=r"data\.k: key 1 is not a string"):
        StructuredData({"k": {1: "x"}})


def test_structured_data_rejects_lone_surrogates() -> None:
    """A string that has no UTF-8 form cannot be canonical JSON bytes; it is refused up front."""
    with pytest.raises(ValueError, match="UTF-8"):
        StructuredData({"k": "\ud800"})
    with pytest.raises(ValueError, match="UTF-8"):
        StructuredData({"k": {"\udfff": 1}})


@settings(max_examples=100, deadline=None)
@given(json_objects)
def test_structured_data_bytes_parse_back(value: dict[str, Any]) -> None:
    """bytes() is UTF-8 JSON that parses back to the same object, and is stable under re-serialising."""
    out = StructuredData(value).bytes()
    parsed = json.loads(out.decode("utf-8"))
    assert parsed == value
    assert StructuredData(parsed).bytes() == out


# --- opencdc/json -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(records)
def test_any_record_round_trips_through_json(record: Record) -> None:
    """record_from_json(record_to_json(r)) == r, also after the object goes through a JSON string."""
    obj = record_to_json(record)
    assert record_from_json(obj) == record
    again = record_from_json(json.loads(json.dumps(obj)))
    assert again == record
    assert exact(again) == exact(record)


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=5))
def test_any_batch_round_trips_through_lines(batch: list[Record]) -> None:
    """load_records(dump_records(batch)) == batch, one line per record."""
    text = dump_records(batch)
    assert text.count("\n") == len(batch)
    loaded = load_records(text)
    assert loaded == batch
    assert [exact(r) for r in loaded] == [exact(r) for r in batch]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r"])
def test_lines_survive_unicode_line_separators(separator: str) -> None:
    """Characters that str.splitlines treats as line breaks inside a value do not split a record."""
    record = Record(
        metadata={"m": f"a{separator}b"},
        key=RawData(b"k"),
        payload=Change(after=StructuredData({f"x{separator}": f"y{separator}z"})),
    )
    assert load_records(dump_records([record, record])) == [record, record]


def test_base64_is_the_standard_alphabet() -> None:
    """Position and raw data use standard base64 with padding (`+/`), not the URL-safe alphabet."""
    record = Record(position=b"\xff\xfe", key=RawData(b"\xfb\xff"), payload=Change(after=RawData(b"\xff\xfe")))
    obj = record_to_json(record)
    assert obj["position"] == "//4="
    assert obj["key"] == "+/8="
    assert obj["payload"]["after"] == "//4="
    with pytest.raises(ValueError, match="position: not standard base64"):
        record_from_json({**obj, "position": "__4="})
    with pytest.raises(ValueError, match="key: not standard base64"):
        record_from_json({**obj, "key": "-_8="})


def test_record_to_json_shape() -> None:
    """The object has exactly Conduit's fields; None data is null and structured data is an object."""
    record = Record(
        position=b"p",
        operation=Operation.delete,
        metadata={"a": "b"},
        key=StructuredData({"id": 1}),
        payload=Change(before=RawData(b"x"), after=None),
    )
    assert record_to_json(record) == {
        "position": "cA==",
        "operation": "delete",
        "metadata": {"a": "b"},
        "key": {"id": 1},
        "payload": {"before": "eA==", "after": None},
    }


CONDUIT_EXAMPLE = (
    '{"position":"Zm9v","operation":"create","metadata":{"conduit.source.plugin.name":"example"},'
    '"key":"YmFy","payload":{"before":null,"after":{"baz":"qux","foo":"bar"}}}'
)


def test_conduit_pinned_example_loads_and_dumps_identically() -> None:
    """Conduit's documented opencdc/json record loads to the expected record and dumps back the same JSON."""
    [record] = load_records(CONDUIT_EXAMPLE + "\n")
    assert record == Record(
        position=b"foo",
        operation=Operation.create,
        metadata={"conduit.source.plugin.name": "example"},
        key=RawData(b"bar"),
        payload=Change(before=None, after=StructuredData({"baz": "qux", "foo": "bar"})),
    )
    dumped = dump_records([record])
    assert dumped.endswith("\n") and dumped.count("\n") == 1
    assert json.loads(dumped) == json.loads(CONDUIT_EXAMPLE)
    assert record.payload.after is not None
    assert record.payload.after.bytes() == b'{"baz":"qux","foo":"bar"}'


def test_load_records_skips_blank_lines_and_accepts_crlf() -> None:
    """Blank lines are ignored and CRLF line ends are accepted."""
    text = "\n" + CONDUIT_EXAMPLE + "\r\n\r\n  \n" + CONDUIT_EXAMPLE + "\r\n"
    assert len(load_records(text)) == 2
    assert load_records("") == []


@pytest.mark.parametrize(
    ("bad_line", "match"),
    [
        ("{not json", "line 3:"),
        ('{"operation":"upsert"}', "line 3:.*upsert"),
        ('{"position":"!!"}', "line 3: position"),
        ('{"key":5}', "line 3: key"),
        ('{"payload":{"after":[1]}}', r"line 3: payload\.after"),
        ('{"payload":[]}', "line 3: payload"),
        ('{"position":5}', "line 3: position"),
        ('{"extra":1}', "line 3: unknown field.*extra"),
        ('{"metadata":{"a":1}}', "line 3:"),
        ("[1, 2]", "line 3: expected a JSON object"),
    ],
)
def test_load_records_errors_name_the_line(bad_line: str, match: str) -> None:
    """A bad line raises ValueError naming its line number (blank lines count) and what is wrong."""
    text = CONDUIT_EXAMPLE + "\n\n" + bad_line + "\n" + CONDUIT_EXAMPLE + "\n"
    with pytest.raises(ValueError, match=match):
        load_records(text)


def test_record_from_json_defaults() -> None:
    """Missing fields take Conduit's zero values."""
    assert record_from_json({}) == Record()
    assert record_from_json({"payload": {"after": "YQ=="}}) == Record(payload=Change(after=RawData(b"a")))
