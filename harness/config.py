"""Conduit's parameter spec, config validation and the paramgen analog (`parameters_from`)."""

import datetime
import enum
import re
from collections.abc import Mapping, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ConfigError

__all__ = [
    "ParameterType",
    "ValidationRequired",
    "ValidationGreaterThan",
    "ValidationLessThan",
    "ValidationGreaterThanOrEqual",
    "ValidationLessThanOrEqual",
    "ValidationInclusion",
    "ValidationExclusion",
    "ValidationRegex",
    "Validation",
    "Parameter",
    "validate_config",
    "parse_config",
    "parameters_from",
    "parse_value",
    "parse_duration",
    "format_duration",
]

M = TypeVar("M", bound=BaseModel)


class ParameterType(str, enum.Enum):
    """The type a parameter's string value must parse as."""

    string = "string"
    int = "int"
    float = "float"
    bool = "bool"
    file = "file"
    duration = "duration"


@dataclass(frozen=True)
class ValidationRequired:
    """The parameter must be given a non-empty value."""

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        return None if value != "" else "required parameter is not provided"


@dataclass(frozen=True)
class ValidationGreaterThan:
    """The value must be a number greater than `value`."""

    value: float

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        number = _as_number(value, typed)
        if number is None:
            return f"{value!r} is not a number"
        return None if number > self.value else f"{value!r} is not greater than {_num(self.value)}"


@dataclass(frozen=True)
class ValidationLessThan:
    """The value must be a number less than `value`."""

    value: float

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        number = _as_number(value, typed)
        if number is None:
            return f"{value!r} is not a number"
        return None if number < self.value else f"{value!r} is not less than {_num(self.value)}"


@dataclass(frozen=True)
class ValidationGreaterThanOrEqual:
    """The value must be a number at least `value` (an extension: pydantic's `ge`)."""

    value: float

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        number = _as_number(value, typed)
        if number is None:
            return f"{value!r} is not a number"
        return None if number >= self.value else f"{value!r} is less than {_num(self.value)}"


@dataclass(frozen=True)
class ValidationLessThanOrEqual:
    """The value must be a number at most `value` (an extension: pydantic's `le`)."""

    value: float

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        number = _as_number(value, typed)
        if number is None:
            return f"{value!r} is not a number"
        return None if number <= self.value else f"{value!r} is greater than {_num(self.value)}"


@dataclass(frozen=True)
class ValidationInclusion:
    """The value must be one of `values`."""

    values: tuple[str, ...]

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        return None if value in self.values else f"{value!r} is not one of {', '.join(self.values)}"


@dataclass(frozen=True)
class ValidationExclusion:
    """The value must not be one of `values`."""

    values: tuple[str, ...]

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        return None if value not in self.values else f"{value!r} is not allowed"


@dataclass(frozen=True)
class ValidationRegex:
    """The value must match `pattern` (searched, as Go's regexp.MatchString)."""

    pattern: str

    def problem(self, value: str, typed: Any) -> str | None:
        """Why `value` breaks this validation, or None."""
        return None if re.search(self.pattern, value) else f"{value!r} does not match {self.pattern!r}"


Validation = (
    ValidationRequired
    | ValidationGreaterThan
    | ValidationLessThan
    | ValidationGreaterThanOrEqual
    | ValidationLessThanOrEqual
    | ValidationInclusion
    | ValidationExclusion
    | ValidationRegex
)


@dataclass(frozen=True)
class Parameter:
    """One config parameter: what it means, its default, its type and its validations."""

    description: str = ""
    default: str | None = None
    type: ParameterType = ParameterType.string
    validations: tuple[Validation, ...] = field(default_factory=tuple)

    @property
    def required(self) -> bool:
        """Whether the parameter carries ValidationRequired."""
        return any(isinstance(v, ValidationRequired) for v in self.validations)

    def problems(self, value: str) -> list[str]:
        """Every way `value` breaks this parameter's type or validations."""
        if value == "":  # an empty value only breaks `required`; the others apply to given values
            return [p for v in self.validations if isinstance(v, ValidationRequired) and (p := v.problem(value, None))]
        try:
            typed = parse_value(value, self.type)
        except ValueError as err:
            return [str(err)]
        return [p for v in self.validations if (p := v.problem(value, typed))]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _as_number(value: str, typed: Any) -> float | None:
    if isinstance(typed, (int, float)) and not isinstance(typed, bool):
        return float(typed)
    try:
        return float(value)
    except ValueError:
        return None


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)
_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # Go's strconv.ParseBool
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> datetime.timedelta:
    """A Go duration string (`1h2m3.5s`, `250ms`, `0`) as a timedelta."""
    sign, rest = 1, text
    if rest[:1] in "+-" and rest:
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return datetime.timedelta(0)
    seconds, pos = 0.0, 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if not match or match.group(1) in ("", "."):
            raise ValueError(f"{text!r} is not a duration (use Go syntax such as 1m30s, 250ms)")
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not rest:
        raise ValueError(f"{text!r} is not a duration (use Go syntax such as 1m30s, 250ms)")
    return datetime.timedelta(seconds=sign * seconds)


def format_duration(value: datetime.timedelta) -> str:
    """A timedelta as a Go duration string that parse_duration reads back."""
    micros = round(value.total_seconds() * 1_000_000)
    if micros % 1_000_000 == 0:
        return f"{micros // 1_000_000}s"
    if micros % 1000 == 0:
        return f"{micros // 1000}ms"
    return f"{micros}us"


def parse_value(value: str, type_: ParameterType) -> Any:
    """`value` parsed as `type_` with Go's rules; raises ValueError saying why not."""
    if type_ is ParameterType.int:
        if not _INT.fullmatch(value):
            raise ValueError(f"{value!r} is not an int")
        return int(value)
    if type_ is ParameterType.float:
        if not _FLOAT.fullmatch(value):
            raise ValueError(f"{value!r} is not a float")
        return float(value)
    if type_ is ParameterType.bool:
        if value not in _BOOLS:
            raise ValueError(f"{value!r} is not a bool (use true or false)")
        return _BOOLS[value]
    if type_ is ParameterType.duration:
        return parse_duration(value)
    return value


def _check_mapping(config: Any) -> dict[str, str]:
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping of str to str, got {type(config).__name__}")
    bad = [repr(k) for k, v in config.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ConfigError(
            f"config must map str to str; these keys have a non-str key or value: {', '.join(bad)}",
            keys=[str(k) for k, v in config.items() if not isinstance(k, str) or not isinstance(v, str)],
        )
    # Conduit trims keys and values before validating them.
    return {k.strip(): v.strip() for k, v in config.items()}


def validate_config(config: Mapping[str, str], parameters: Mapping[str, Parameter]) -> dict[str, str]:
    """The config with defaults applied; raises ConfigError naming every unknown, missing or invalid key."""
    values = _check_mapping(config)
    problems: dict[str, str] = {}
    for key in sorted(values):
        if key not in parameters:
            problems[key] = f"unknown parameter {key!r} (known: {', '.join(sorted(parameters)) or 'none'})"
    for name, param in parameters.items():
        if values.get(name, "") == "" and param.default is not None:
            values[name] = param.default
        found = param.problems(values.get(name, ""))
        if name not in values and not param.required:
            continue
        if found:
            problems[name] = f"{name}: {'; '.join(found)}"
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems.values()), keys=problems)
    return values


def parse_config(config: Mapping[str, str], model: type[M]) -> M:
    """`config` validated into `model`; raises ConfigError naming every bad key at once."""
    parameters = parameters_from(model)
    given = _check_mapping(config)
    try:
        values = validate_config(given, parameters)
    except ConfigError as err:
        # Also name what only pydantic checks (max_length, validators, ...) among the keys not named yet.
        named = set(err.keys)
        rest = {k: p for k, p in parameters.items() if k not in named}
        try:
            values = validate_config({k: v for k, v in given.items() if k in rest}, rest)
        except ConfigError:
            raise err from None
        _, keys, messages = _model_validate(values, parameters, model, skip=named)
        if not keys:
            raise
        raise ConfigError(f"{err}; {'; '.join(messages)}", keys=(*err.keys, *keys)) from None
    result, keys, messages = _model_validate(values, parameters, model)
    if result is None:
        raise ConfigError("invalid config: " + "; ".join(messages), keys=keys)
    return result


def _model_validate(
    values: Mapping[str, str], parameters: Mapping[str, Parameter], model: type[M], skip: AbstractSet[str] = frozenset()
) -> tuple[M | None, list[str], list[str]]:
    """The model, or the keys and messages of pydantic's errors (leaving out those in `skip`)."""
    typed = {k: parse_value(v, parameters[k].type) for k, v in values.items() if v != ""}
    try:
        return model.model_validate(typed, by_alias=True, by_name=False), [], []
    except ValidationError as err:
        keys: list[str] = []
        messages: list[str] = []
        for error in err.errors():
            key = str(error["loc"][0]) if error["loc"] else "config"
            if key in skip:
                continue
            keys.append(key)
            messages.append(f"{'.'.join(str(part) for part in error['loc']) or 'config'}: {error['msg']}")
        return None, keys, messages


def _format_default(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    return str(value)


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref/allOf and drop the null branch of Optional[...]."""
    while True:
        if "$ref" in schema:
            schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        elif "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1:
                return schema
            schema = {**branches[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
        else:
            return schema


_TYPES = {"integer": ParameterType.int, "number": ParameterType.float, "boolean": ParameterType.bool}


def parameters_from(model: type[BaseModel]) -> dict[str, Parameter]:
    """The parameter spec of a pydantic config model, keyed by alias (dots allowed), like Conduit's paramgen."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    fields_by_alias = {(info.alias or name): info for name, info in model.model_fields.items()}
    parameters: dict[str, Parameter] = {}
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(raw, defs)
        if prop.get("format") == "duration":
            type_ = ParameterType.duration
        elif prop.get("format") == "file-path":
            type_ = ParameterType.file
        else:
            type_ = _TYPES.get(prop.get("type", "string"), ParameterType.string)
        validations: list[Validation] = []
        if name in required:
            validations.append(ValidationRequired())
        if "exclusiveMinimum" in prop:
            validations.append(ValidationGreaterThan(prop["exclusiveMinimum"]))
        if "minimum" in prop:
            validations.append(ValidationGreaterThanOrEqual(prop["minimum"]))
        if "exclusiveMaximum" in prop:
            validations.append(ValidationLessThan(prop["exclusiveMaximum"]))
        if "maximum" in prop:
            validations.append(ValidationLessThanOrEqual(prop["maximum"]))
        if "enum" in prop:
            validations.append(ValidationInclusion(tuple(_format_default(v) or "" for v in prop["enum"])))
        if "const" in prop:
            validations.append(ValidationInclusion((_format_default(prop["const"]) or "",)))
        if "pattern" in prop:
            validations.append(ValidationRegex(prop["pattern"]))
        info = fields_by_alias.get(name)
        default = None
        if info is not None and not info.is_required():
            default = _format_default(info.get_default(call_default_factory=True))
        parameters[name] = Parameter(
            description=(prop.get("description") or "").strip(),
            default=default,
            type=type_,
            validations=tuple(validations),
        )
    return parameters

