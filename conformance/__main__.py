"""`python -m conformance`: the contract this suite checks, in the terminal (--contract, --explain, --clauses)."""

import argparse
import os
import sys
from collections.abc import Sequence

from conformance.contract.clauses import CLAUSES
from conformance.contract.document import clause_list, clause_section, contract_text, unknown_clause_message

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the whole contract, one clause's section, or the clause list; 2 for an unknown clause id."""
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="The destination contract shipped with this suite (CONTRACT.md). To check a destination, "
                    "run: pytest --destination=package.module:registration")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--contract", action="store_true", help="print the whole contract")
    what.add_argument("--explain", metavar="CLAUSE", help="print one clause's section: rule, how it is checked, "
                                                          "what it needs, the evidence a pass needs")
    what.add_argument("--clauses", action="store_true", help="list the clause ids with their rules")
    args = parser.parse_args(argv)
    if args.explain is not None and args.explain not in CLAUSES:
        print(f"{parser.prog}: {unknown_clause_message(args.explain)}", file=sys.stderr)
        return 2
    if args.contract:
        text = contract_text()
    elif args.clauses:
        text = clause_list()
    else:
        text = clause_section(args.explain)
    try:
        print(text.rstrip("\n"))
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader is gone; exit quietly, as Python's docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
