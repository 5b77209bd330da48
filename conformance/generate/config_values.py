"""Config values for the configure.* checks: each declared type's spellings Conduit accepts, lookalikes it refuses,
and values that break a parameter's type or validations."""

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

__all__ = ["TYPE_SPELLINGS", "TYPE_LOOKALIKES", "accepted_value", "valid_spellings", "lookalike_spellings",
           "breaking_values"]


# Spellings of each declared type that Conduit's parsers accept (Go's strconv.ParseInt, ParseFloat, ParseBool and
# time.ParseDuration, as harness.Parameter.problems encodes them): configure MUST accept each that also passes the
# parameter's validations. These are spellings, not edge values: ints stay within int32 and nothing is negative
# (a sign on zero or a positive value only), as many parameters keep an undeclared lower bound of 0.
TYPE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "int": ("0", "+0", "-0", "00", "007", "+12", "1000000"),
    "float": ("0", "1", "-0.0", "1.5", "+1.5", ".5", "5.", "1e3", "1E-3", "+2.5e+2", "inf", "+Inf", "Infinity",
              "NaN"),
    "bool": ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"),
    "duration": ("0", "+0", "-0", "1h2m3.5s", "300ms", "+1.5h", "1.5h", "2h45m", "90s", ".5s", "1us", "1\u00b5s",
                 "10ns"),
}
# Values other parsers take for the declared type (Python's int() and float() with underscores and non-ASCII digits,
# YAML booleans, case variants, other bases, durations without a Go unit) that Conduit refuses: configure MUST
# reject each. None is refused only after trimming: Conduit trims values, so " 1" is a valid int. Go's ParseFloat
# takes 1_000.5 and hex floats, which Parameter.problems refuses: they are on neither list.
TYPE_LOOKALIKES: dict[str, tuple[str, ...]] = {
    "int": ("1_0", "+0_5", "\u0663", "\uff15", "\uff11\uff10", "0x10", "0o7", "0b1", "1e3", "1.0", "1 0", "--1",
            "+-1"),
    "float": ("\u0661.\u0665", "\uff11.\uff15", "1,5", "1.5.0", "1e", "e3", "1.5f", "--1", "in f", "0x10"),
    "bool": ("yes", "no", "on", "off", "y", "n", "Y", "N", "YES", "Yes", "ON", "Off", "TrUe", "tRUE", "fAlSe",
             "FALSe", "2", "-1", "01", "1.0", "enable", "\uff54\uff52\uff55\uff45"),
    "duration": ("10", "1d", "1w", "1 h", "1H", "1hr", "1min", "5sec", "PT5S", "1h30", "01:00:00", "1e3s",
                 "\u0663s", "1_000ms", "1.5.s", "+-1s", "s"),
}


def _type_name(parameter: Any) -> str:
    """A parameter's declared type, as TYPE_SPELLINGS names it."""
    kind = getattr(parameter, "type", "")
    return str(getattr(kind, "value", kind))


def accepted_value(parameter: Any, value: str) -> bool:
    """Whether Conduit's validation (as harness.validate_config: trimmed, the default for an empty value, then the
    declared type and validations) accepts `value` for a harness.Parameter."""
    from harness import ConfigError, validate_config

    try:
        validate_config({"value": value}, {"value": parameter})
    except ConfigError:
        return False
    return True


def valid_spellings(parameter: Any) -> list[str]:
    """The spellings of the parameter's declared type that Conduit accepts and its validations allow."""
    return [v for v in TYPE_SPELLINGS.get(_type_name(parameter), ()) if accepted_value(parameter, v)]


def lookalike_spellings(parameter: Any) -> list[str]:
    """Lookalikes of the parameter's declared type that other parsers take and Conduit refuses."""
    return [v for v in TYPE_LOOKALIKES.get(_type_name(parameter), ()) if not accepted_value(parameter, v)]


def _outside(allowed: set[str]) -> Callable[[str], bool]:
    """A filter for text that is not blank and not one of `allowed` (ignoring surrounding whitespace)."""
    return lambda s: bool(s.strip()) and s.strip() not in allowed


def breaking_values(parameter: Any) -> SearchStrategy[str] | None:
    """Values that break a harness.Parameter's type or a declared validation, or None if it declares none."""
    from harness import ParameterType, config as hc

    options: list[SearchStrategy[str]] = []
    wrong_type = {
        ParameterType.int: ["not-an-int", "1.5", "0x10"],
        ParameterType.float: ["not-a-float", "1,5"],
        ParameterType.bool: ["maybe", "yes please"],
        ParameterType.duration: ["5 parsecs", "10"],
    }.get(parameter.type)
    if wrong_type:
        options.append(st.sampled_from(wrong_type))
    is_int = parameter.type is ParameterType.int

    def number(x: float) -> str:
        return str(int(x)) if is_int and float(x).is_integer() else repr(float(x))

    for v in parameter.validations:
        if isinstance(v, hc.ValidationGreaterThan):
            options.append(st.sampled_from([number(v.value), number(v.value - 1), number(v.value - 1000)]))
        elif isinstance(v, hc.ValidationLessThan):
            options.append(st.sampled_from([number(v.value), number(v.value + 1), number(v.value + 1000)]))
        elif isinstance(v, hc.ValidationGreaterThanOrEqual):
            options.append(st.sampled_from([number(v.value - 1), number(v.value - 1000)]))
        elif isinstance(v, hc.ValidationLessThanOrEqual):
            options.append(st.sampled_from([number(v.value + 1), number(v.value + 1000)]))
        elif isinstance(v, hc.ValidationInclusion):
            options.append(st.text(min_size=1, max_size=12).filter(_outside(set(v.values))))
        elif isinstance(v, hc.ValidationExclusion) and v.values:
            options.append(st.sampled_from([x for x in v.values if x.strip()] or list(v.values)))
        elif isinstance(v, hc.ValidationRegex):
            import re

            candidates = ["-", "!", "a b", "ÿ", "0", "x" * 300]
            failing = [c for c in candidates if not re.search(v.pattern, c)]
            if failing:
                options.append(st.sampled_from(failing))
    return st.one_of(options) if options else None
