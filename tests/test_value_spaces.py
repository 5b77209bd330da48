"""The value spaces the suite draws from reach the contract's edges: Go's spellings of typed config values and the
lookalikes it refuses, opaque positions, keys of escapable characters at every length, payloads past 16 MiB."""

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conformance.contract.clauses import required_evidence
from conformance.execute.labels import round_trip_labels
from conformance.generate.config_values import (
    TYPE_LOOKALIKES,
    TYPE_SPELLINGS,
    accepted_value,
    lookalike_spellings,
    valid_spellings,
)
from conformance.generate.seeded import _seeded_key
from conformance.generate.strategies import (
    ESCAPABLE_KEY_CHARS,
    HUGE_PAYLOAD_BYTES,
    MAX_KEY_BYTES,
    POSITION_SHAPES,
    escapable_key,
    escapable_keys,
    long_escapable_keys,
    numbered,
    position,
    position_index,
)
from harness import Change, Parameter, ParameterType, RawData, Record, ValidationGreaterThan, ValidationInclusion
from harness.config import parse_value
from reference import registration as reference

TYPED = [ParameterType.int, ParameterType.float, ParameterType.bool, ParameterType.duration]


@pytest.mark.parametrize("kind", TYPED, ids=lambda t: t.value)
def test_every_spelling_parses_and_every_lookalike_does_not(kind: ParameterType) -> None:
    """Without validations, each listed spelling is accepted and each lookalike refused by the harness's Go rules."""
    parameter = Parameter(description="x", type=kind)
    assert valid_spellings(parameter) == list(TYPE_SPELLINGS[kind.value])
    assert lookalike_spellings(parameter) == list(TYPE_LOOKALIKES[kind.value])


# Reads "<kind> <value>" lines and prints whether Go's own parser for the kind accepts the value.
GO_PARSERS = """package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		kind, value := in.Text()[:1], in.Text()[2:]
		var err error
		switch kind {
		case "i":
			_, err = strconv.ParseInt(value, 10, 64)
		case "f":
			_, err = strconv.ParseFloat(value, 64)
		case "b":
			_, err = strconv.ParseBool(value)
		case "d":
			_, err = time.ParseDuration(value)
		}
		fmt.Println(err == nil)
	}
}
"""


@pytest.mark.go
@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_go_parsers_agree_with_the_spellings_and_lookalikes(tmp_path: Path) -> None:
    """Go's strconv.ParseInt, ParseFloat, ParseBool and time.ParseDuration accept every spelling and refuse every
    lookalike: the suite's lists are Conduit's rules, not a guess at them."""
    (tmp_path / "main.go").write_text(GO_PARSERS)
    (tmp_path / "go.mod").write_text("module spellings\n\ngo 1.21\n")
    cases = [(kind, value, True) for kind, values in TYPE_SPELLINGS.items() for value in values]
    cases += [(kind, value, False) for kind, values in TYPE_LOOKALIKES.items() for value in values]
    lines = "".join(f"{kind[0]} {value}\n" for kind, value, _ in cases)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    done = subprocess.run(["go", "run", "."], cwd=tmp_path, input=lines, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    verdicts = done.stdout.split()
    wrong = [(kind, value) for (kind, value, valid), verdict in zip(cases, verdicts, strict=False)
             if (verdict == "true") != valid]
    assert len(verdicts) == len(cases) and not wrong


def test_lookalikes_are_what_python_parsers_take() -> None:
    """The int and float lookalikes include values Python's int() and float() accept, the bool ones YAML's words."""
    assert [int(v) for v in ("1_0", "+0_5", "\u0663", "\uff15")] == [10, 5, 3, 5]
    assert float("\u0661.\u0665") == 1.5 and float("\uff11.\uff15") == 1.5
    assert {"yes", "on", "TrUe", "y"} <= set(TYPE_LOOKALIKES["bool"])
    for value in ("1_0", "+0_5", "\u0663", "\uff15"):
        with pytest.raises(ValueError):
            parse_value(value, ParameterType.int)


def test_spellings_are_filtered_by_the_parameters_validations() -> None:
    """A spelling that breaks a validation is not asked to be accepted; a lookalike stays refused whatever they are."""
    positive = Parameter(description="x", type=ParameterType.int, validations=(ValidationGreaterThan(0),))
    assert "0" not in valid_spellings(positive) and "+12" in valid_spellings(positive)
    only_true = Parameter(description="x", type=ParameterType.bool, validations=(ValidationInclusion(("true",)),))
    assert valid_spellings(only_true) == ["true"]
    assert "yes" in lookalike_spellings(only_true)


def test_trimmed_and_empty_values_follow_conduit() -> None:
    """Conduit trims values and fills an empty one with the default: neither is a lookalike."""
    flag = Parameter(description="x", default="false", type=ParameterType.bool)
    assert accepted_value(flag, " true ") and accepted_value(flag, "")
    assert not accepted_value(flag, "yes")


def test_positions_are_opaque_unique_and_of_every_shape() -> None:
    """Positions are never empty, unique, b"0" first, and any POSITION_SHAPES consecutive ones hold every shape."""
    positions = [position(i) for i in range(100_000)]
    assert len(set(positions)) == len(positions) and all(positions)
    assert positions[0] == b"0"
    window = positions[7:7 + len(POSITION_SHAPES)]
    assert sum(p.isdigit() for p in window) == 1
    assert any(b"\0" in p for p in window) and any(p.startswith(b"{") for p in window)
    assert any(b"/" in p and not p.startswith(b"{") for p in window) and any(len(p) > 255 for p in window)
    with pytest.raises(UnicodeDecodeError):
        next(p for p in window if b"\0" in p).decode("utf-8")


def test_numbered_positions_are_opaque_and_their_index_is_recovered() -> None:
    """numbered() gives position(start + i); position_index (for test helpers that order by stream) inverts it."""
    batch = [Record(key=RawData(b"k"), payload=Change(after=RawData(b"v")))] * 3
    assert [r.position for r in numbered(batch, 5)] == [position(5), position(6), position(7)]
    assert all(position_index(position(i)) == i for i in range(0, 10**7, 997))
    assert position_index(b"") is None and position_index(b"not ours") is None


@settings(max_examples=200, database=None, derandomize=True)
@given(escapable_keys())
def test_escapable_keys_are_valid_and_escapable(key: bytes) -> None:
    """Keys of escapable characters are valid keys (1-255 bytes of UTF-8 without '/' or NUL) and escapable."""
    assert 1 <= len(key) <= MAX_KEY_BYTES and b"/" not in key and b"\0" not in key and key not in (b".", b"..")
    assert escapable_key(key)


@settings(max_examples=50, database=None, derandomize=True)
@given(long_escapable_keys())
def test_long_escapable_keys_are_128_to_255_bytes(key: RawData) -> None:
    """The long ones, asked for in every run, are 128 to 255 bytes."""
    assert 128 <= len(key.raw) <= MAX_KEY_BYTES and escapable_key(key.raw)


def test_seeded_keys_spread_escapable_characters_over_every_length() -> None:
    """The keys of sized batches include escapable ones from short to the limit, and all are valid."""
    keys = [_seeded_key(rest).raw for rest in range(1, 4000)]
    assert all(1 <= len(k) <= MAX_KEY_BYTES and b"/" not in k and b"\0" not in k for k in keys)
    lengths = {len(k) // 64 for k in keys if escapable_key(k)}
    assert lengths == {0, 1, 2, 3}


def test_escapable_characters_hold_what_destinations_escape() -> None:
    """'%', Windows' forbidden characters, control characters, space and multi-byte UTF-8 are all there."""
    for char in '%<>:"|?*\\ \t\n\x01\x7fé𝄞':
        assert char in ESCAPABLE_KEY_CHARS
    assert not set("/\0") & set(ESCAPABLE_KEY_CHARS)


def test_a_long_escapable_key_is_round_trip_evidence() -> None:
    """A 200-byte key of '%' gives the evidence; 200 bytes of a letter or a short '%' key do not."""
    def labels(key: bytes) -> list[str]:
        return round_trip_labels([Record(key=RawData(key), payload=Change(after=RawData(b"v")))], set())

    assert "long key of escapable characters" in labels(b"%" * 200)
    assert "long key of escapable characters" in labels("é".encode() * 100)
    assert "long key of escapable characters" not in labels(b"k" * 200)
    assert "long key of escapable characters" not in labels(b"%" * 100)


def test_new_evidence_is_asked_of_the_reference_but_not_of_declared_keys() -> None:
    """The reference needs the new evidence; a registration declaring its own keys is not asked for escapable ones."""
    assert "long key of escapable characters" in required_evidence("write.round-trip", reference)
    declared = replace(reference, valid_keys=st.just(b"a"))
    assert "long key of escapable characters" not in required_evidence("write.round-trip", declared)
    assert "payload of 16 MiB+1 B or more round-tripped" in required_evidence("write.large-payload", reference)
    assert "opaque positions of every shape acked" in required_evidence("ack.in-order", reference)
    assert HUGE_PAYLOAD_BYTES > 2 * 8 * 1024 * 1024
