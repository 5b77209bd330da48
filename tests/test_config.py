"""Config parsing and the paramgen analog (CONTRACT.md: The interface; parse_config, parameters_from, Parameter)."""

import datetime
from typing import Any, Literal

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import (
    ConfigError,
    Parameter,
    ParameterType,
    ValidationExclusion,
    ValidationGreaterThan,
    ValidationGreaterThanOrEqual,
    ValidationInclusion,
    ValidationLessThan,
    ValidationLessThanOrEqual,
    ValidationRegex,
    ValidationRequired,
    format_duration,
    parameters_from,
    parse_config,
    parse_duration,
    validate_config,
)


class Conf(BaseModel):
    """A config model using every feature parse_config supports."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Where to write.", pattern=r"^/[a-z/]+$")
    batch_size: int = Field(10, alias="sdk.batch.size", gt=0, lt=1000, description="Records per call.")
    ratio: float = Field(0.5, ge=0, le=1, description="A fraction.")
    mode: Literal["fast", "safe"] = Field("safe", description="Write mode.")
    sync: bool = Field(False, description="Fsync each file.")
    timeout: datetime.timedelta = Field(datetime.timedelta(seconds=90), description="Per-call limit.")
    retries: int | None = Field(None, description="Retries (unset: none).")


VALID = {"path": "/data/out"}


def test_minimal_config_gets_defaults() -> None:
    """Only the required key given: every other field takes its default."""
    conf = parse_config(VALID, Conf)
    assert conf.path == "/data/out"
    assert conf.batch_size == 10
    assert conf.ratio == 0.5
    assert conf.mode == "safe"
    assert conf.sync is False
    assert conf.timeout == datetime.timedelta(seconds=90)
    assert conf.retries is None


def test_empty_values_take_defaults() -> None:
    """An empty (or blank) value is treated as missing, so the default applies."""
    conf = parse_config({**VALID, "sdk.batch.size": "", "mode": "  ", "timeout": "", "retries": ""}, Conf)
    assert conf.batch_size == 10
    assert conf.mode == "safe"
    assert conf.timeout == datetime.timedelta(seconds=90)
    assert conf.retries is None


def test_dotted_alias_sets_the_field() -> None:
    """A dotted alias such as `sdk.batch.size` is the config key; the Python field name is not."""
    assert parse_config({**VALID, "sdk.batch.size": "999"}, Conf).batch_size == 999
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, "batch_size": "5"}, Conf)
    assert info.value.keys == ("batch_size",)
    assert "unknown parameter 'batch_size'" in str(info.value)


def test_values_are_trimmed() -> None:
    """Keys and values are trimmed as Conduit does."""
    conf = parse_config({" path ": " /a ", "sdk.batch.size": " 7 "}, Conf)
    assert (conf.path, conf.batch_size) == ("/a", 7)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("sdk.batch.size", "0", "not greater than 0"),
        ("sdk.batch.size", "-3", "not greater than 0"),
        ("sdk.batch.size", "1000", "not less than 1000"),
        ("sdk.batch.size", "1.5", "not an int"),
        ("sdk.batch.size", "ten", "not an int"),
        ("ratio", "-0.1", "less than 0"),
        ("ratio", "1.01", "greater than 1"),
        ("ratio", "half", "not a float"),
        ("mode", "quick", "not one of fast, safe"),
        ("mode", "FAST", "not one of fast, safe"),
        ("path", "relative/dir", "does not match"),
        ("path", "/UPPER", "does not match"),
        ("sync", "yes", "not a bool"),
        ("sync", "on", "not a bool"),
        ("sync", "tRuE", "not a bool"),
        ("timeout", "90", "not a duration"),
        ("timeout", "1 minute", "not a duration"),
        ("timeout", "1d", "not a duration"),
        ("retries", "x", "not an int"),
    ],
)
def test_invalid_value_is_rejected_naming_the_key(key: str, value: str, problem: str) -> None:
    """A value that breaks its type or a validation raises ConfigError naming the key and the reason."""
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, key: value}, Conf)
    assert info.value.keys == (key,)
    assert key in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sdk.batch.size", "1", 1),
        ("sdk.batch.size", "+999", 999),
        ("ratio", "0", 0.0),
        ("ratio", "1", 1.0),
        ("ratio", ".25", 0.25),
        ("mode", "fast", "fast"),
        ("path", "/a/b", "/a/b"),
        ("retries", "3", 3),
    ],
)
def test_valid_values_parse(key: str, value: str, expected: Any) -> None:
    """Boundary and ordinary valid values parse to the right Python value."""
    conf = parse_config({**VALID, key: value}, Conf)
    field = {"sdk.batch.size": "batch_size"}.get(key, key)
    assert getattr(conf, field) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("t", True), ("T", True), ("true", True), ("TRUE", True), ("True", True), ("1", True),
     ("f", False), ("F", False), ("false", False), ("FALSE", False), ("False", False), ("0", False)],
)
def test_bool_follows_go_parse_bool(value: str, expected: bool) -> None:
    """Exactly the spellings Go's strconv.ParseBool accepts."""
    assert parse_config({**VALID, "sync": value}, Conf).sync is expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90),
        ("250ms", 0.25),
        ("0", 0),
        ("1h", 3600),
        ("1.5h", 5400),
        ("2h45m", 9900),
        ("300us", 0.0003),
        ("300µs", 0.0003),
        ("1000ns", 1e-6),
        ("-1.5s", -1.5),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    """Go duration syntax parses to the same length of time."""
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "m1", "1m 30s", ".s", "1.2.3s"])
def test_bad_go_durations(text: str) -> None:
    """Strings that are not Go durations are refused with a hint."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**12))
def test_format_duration_round_trips(micros: int) -> None:
    """format_duration writes a Go duration that parse_duration reads back to the same value."""
    value = datetime.timedelta(microseconds=micros)
    assert parse_duration(format_duration(value)) == value


def test_duration_config_value() -> None:
    """A Go duration string in the config becomes a timedelta."""
    assert parse_config({**VALID, "timeout": "1m30s"}, Conf).timeout == datetime.timedelta(seconds=90)
    assert parse_config({**VALID, "timeout": "250ms"}, Conf).timeout == datetime.timedelta(milliseconds=250)


def test_every_bad_key_is_named_at_once() -> None:
    """Unknown, missing required, wrong type and broken validation in one config: all are named together."""
    config = {"bogus": "1", "sdk.batch.size": "lots", "ratio": "2", "mode": "turbo"}  # and no `path`
    with pytest.raises(ConfigError) as info:
        parse_config(config, Conf)
    bad = {"bogus", "path", "sdk.batch.size", "ratio", "mode"}
    assert set(info.value.keys) == bad
    message = str(info.value)
    for key in bad:
        assert key in message
    assert "unknown parameter 'bogus'" in message
    assert "required" in message


class WithPydanticOnly(BaseModel):
    """Constraints that only pydantic checks (no Parameter validation for them)."""

    name: str = Field("abc", max_length=3, description="At most three characters.")
    even: int = Field(2, description="An even number.")
    level: int = Field(1, gt=0, description="Positive.")

    @field_validator("even")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be even")
        return value


def test_pydantic_only_constraints_are_config_errors() -> None:
    """A constraint only pydantic knows still raises ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        parse_config({"name": "toolong", "even": "3"}, WithPydanticOnly)
    assert set(info.value.keys) == {"name", "even"}
    assert "must be even" in str(info.value)


def test_pydantic_only_constraints_are_named_with_the_others() -> None:
    """A pydantic-only problem is named together with unknown keys and broken declared validations."""
    with pytest.raises(ConfigError) as info:
        parse_config({"name": "toolong", "even": "3", "level": "0", "nope": "x"}, WithPydanticOnly)
    assert set(info.value.keys) == {"name", "even", "level", "nope"}
    for key in ("name", "even", "level", "nope"):
        assert key in str(info.value)


@pytest.mark.parametrize(
    "config",
    [{"path": 5}, {"path": None}, {5: "x"}, {"path": b"/a"}],
)
def test_non_str_keys_and_values_are_rejected(config: dict[Any, Any]) -> None:
    """A config must map str to str; anything else is a clear ConfigError."""
    with pytest.raises(ConfigError, match="str to str"):
        parse_config(config, Conf)


@pytest.mark.parametrize("config", [None, ["path"], "path=/a"])
def test_non_mapping_config_is_rejected(config: Any) -> None:
    """A config that is not a mapping is a clear ConfigError naming what it got."""
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(config, Conf)


def test_parameters_from_derives_the_spec() -> None:
    """description, default (Go spelling), type and validations come from the model, keyed by alias."""
    params = parameters_from(Conf)
    assert set(params) == {"path", "sdk.batch.size", "ratio", "mode", "sync", "timeout", "retries"}
    assert params["path"] == Parameter(
        description="Where to write.",
        default=None,
        type=ParameterType.string,
        validations=(ValidationRequired(), ValidationRegex(r"^/[a-z/]+$")),
    )
    assert params["sdk.batch.size"] == Parameter(
        description="Records per call.",
        default="10",
        type=ParameterType.int,
        validations=(ValidationGreaterThan(0), ValidationLessThan(1000)),
    )
    assert params["ratio"] == Parameter(
        description="A fraction.",
        default="0.5",
        type=ParameterType.float,
        validations=(ValidationGreaterThanOrEqual(0), ValidationLessThanOrEqual(1)),
    )
    assert params["mode"].validations == (ValidationInclusion(("fast", "safe")),)
    assert params["mode"].default == "safe"
    assert params["sync"].type is ParameterType.bool
    assert params["sync"].default == "false"
    assert params["timeout"].type is ParameterType.duration
    assert params["timeout"].default is not None
    assert parse_duration(params["timeout"].default) == datetime.timedelta(seconds=90)
    assert params["retries"] == Parameter(description="Retries (unset: none).", default=None, type=ParameterType.int)
    assert params["path"].required and not params["sdk.batch.size"].required


def test_parameters_from_bool_true_default_and_single_literal() -> None:
    """A True default is spelled "true"; a one-value Literal is an inclusion of that value."""

    class M(BaseModel):
        on: bool = Field(True, description="On.")
        kind: Literal["only"] = Field("only", description="Kind.")
        level: Literal[1, 2] = Field(1, description="Level.")

    params = parameters_from(M)
    assert params["on"].default == "true"
    assert params["kind"].problems("only") == []
    assert params["kind"].problems("other") != []
    assert params["level"].type is ParameterType.int
    assert params["level"].default == "1"
    assert params["level"].problems("2") == []
    assert params["level"].problems("3") != []


def test_every_derived_default_is_accepted() -> None:
    """Each default parameters_from writes passes its own parameter's validations."""
    for name, param in parameters_from(Conf).items():
        if param.default is not None:
            assert param.problems(param.default) == [], name


def test_parameter_problems() -> None:
    """Parameter.problems lists every broken validation, and an empty value breaks only `required`."""
    param = Parameter(
        description="n",
        type=ParameterType.int,
        validations=(ValidationRequired(), ValidationGreaterThan(10), ValidationExclusion(("5",))),
    )
    assert param.problems("20") == []
    assert param.problems("") == ["required parameter is not provided"]
    assert len(param.problems("5")) == 2  # not greater than 10, and excluded
    assert param.problems("x") == ["'x' is not an int"]
    optional = Parameter(description="o", type=ParameterType.int, validations=(ValidationGreaterThan(10),))
    assert optional.problems("") == []
    assert optional.problems("3") == ["'3' is not greater than 10"]


def test_regex_validation_searches_like_go() -> None:
    """ValidationRegex matches anywhere in the value, as Go's regexp.MatchString does."""
    param = Parameter(description="r", validations=(ValidationRegex("b+"),))
    assert param.problems("abbc") == []
    assert param.problems("ac") != []


def test_validate_config_returns_defaults_applied() -> None:
    """validate_config fills in defaults and leaves unset optional parameters out."""
    params = {
        "a": Parameter(description="a", default="1", type=ParameterType.int),
        "b": Parameter(description="b"),
        "c": Parameter(description="c", validations=(ValidationRequired(),)),
    }
    assert validate_config({"c": "x"}, params) == {"a": "1", "c": "x"}
    with pytest.raises(ConfigError) as info:
        validate_config({"a": "no", "d": "1"}, params)
    assert set(info.value.keys) == {"a", "c", "d"}
