"""The public hypothesis strategies (`from conformance import strategies as cs`); they live in generate/."""

from conformance.generate import config_values, strategies
from conformance.generate.config_values import *  # noqa: F403 (the documented public path: generate's strategies)
from conformance.generate.strategies import *  # noqa: F403

__all__ = strategies.__all__ + config_values.__all__
