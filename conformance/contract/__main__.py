"""`python -m conformance.contract --check | --write`: verify or regenerate CONTRACT.md's clause sections."""

import sys

from conformance.contract.document import main

__all__: list[str] = []

sys.exit(main())
