"""The Python form of Conduit's destination interface, and a driver that runs any destination."""

from .backend import Backend
from .behaviours import Behaviour
from .config import (
    Parameter,
    ParameterType,
    Validation,
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
from .destination import Destination, LifecycleEvents, UnimplementedDestination
from .driver import DEFAULT_TIMEOUT, BatchResult, CallTimeout, DestinationAborted, Driver
from .errors import ConfigError, LifecycleError, WriteError
from .loader import LoadError, load_registration
from .middleware import (
    BatchSize,
    DestinationMiddleware,
    LifecycleGuard,
    Middleware,
    RateLimit,
    default_destination_middleware,
    destination_with_middleware,
)
from .records import (
    Change,
    Data,
    Operation,
    RawData,
    Record,
    StructuredData,
    dump_records,
    load_records,
    record_from_json,
    record_to_json,
)
from .registration import Location, Registration, directory_reader

__version__ = "0.1.0"  # the distribution's version (pyproject.toml reads it; conformance.__version__ is it)
CONTRACT_VERSION = "v1.4"

__all__ = [
    "Behaviour",
    "Backend", "Record", "Operation", "Change", "Data", "RawData", "StructuredData",
    "record_to_json", "record_from_json", "dump_records", "load_records",
    "Destination", "LifecycleEvents", "UnimplementedDestination",
    "Parameter", "ParameterType", "Validation", "ValidationRequired", "ValidationGreaterThan",
    "ValidationLessThan", "ValidationGreaterThanOrEqual", "ValidationLessThanOrEqual",
    "ValidationInclusion", "ValidationExclusion", "ValidationRegex",
    "parse_config", "parameters_from", "validate_config", "parse_duration", "format_duration",
    "Middleware", "DestinationMiddleware", "LifecycleGuard", "BatchSize", "RateLimit",
    "destination_with_middleware", "default_destination_middleware",
    "ConfigError", "LifecycleError", "WriteError",
    "Registration", "Location", "LoadError", "load_registration", "directory_reader",
    "Driver", "CallTimeout", "DestinationAborted", "BatchResult", "DEFAULT_TIMEOUT",
    "CONTRACT_VERSION", "__version__",
]
