"""The public hypothesis strategies (`from conformance import strategies as cs`); they live in generate/."""

from conformance.generate.strategies import *  # noqa: F403 (the documented public path re-exports generate's strategies)
from conformance.generate.strategies import __all__ as __all__
