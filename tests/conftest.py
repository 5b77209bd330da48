"""Our own test run's set-up: the Python processes tests start reuse compiled bytecode; fixtures of suite runs that
several test modules read."""

import os
import tempfile

import pytest

from conformance.contract.evidence import STRICT_ENV
from tests import suite_runs
from tests.suite_runs import SuiteRun

# Many tests run the suite in a new Python process. With PYTHONDONTWRITEBYTECODE set (as on CI images), each one
# recompiled our modules and pytest re-rewrote hypothesis' on import, a slow start each time. The cache
# lives under a prefix in the temp directory, so no source tree gets __pycache__, which is what that variable asks.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault("PYTHONPYCACHEPREFIX",
                          os.path.join(tempfile.gettempdir(), f"conformance-tests-pycache-{os.getuid()}"))

# A check recording a label its clause does not declare is our bug: it raises in every suite run our tests start
# (in-process or in a child process, which inherits the variable), where a user's run only warns once.
os.environ[STRICT_ENV] = "1"


@pytest.fixture(scope="session")
def go_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SuiteRun:
    """The suite run over our Go connectors on SDK v0.12.0 and upstream's file connector (tests/suite_runs.py)."""
    return suite_runs.go_run(tmp_path_factory, worker_id)
