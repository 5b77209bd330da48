"""A connector process' own environment tree: its $TMPDIR, $HOME and $XDG_* point into a directory of its own.

A standalone connector runs in a process whose environment is fixed when it starts (a warm spare starts before the
session it serves), so the places a connector finds to write outside its configured area through the environment
are given to each process at spawn: `tmp/` ($TMPDIR, $TEMP, $TMP) and `home/` ($HOME, and the $XDG_* directories
inside it, where they default to). Nothing else writes there, so whatever the tree holds beyond `EMPTY_TREE` the
connector process put there; the conformance suite compares it at the end of each session.
The working directory is left as it is: a command given with a relative path must still start.
"""

from __future__ import annotations

import os
import site

__all__ = ["ENV_VARIABLES", "EMPTY_TREE", "make_tree", "tree_environment"]

# Where a program finds a place to write outside its configured area.
ENV_VARIABLES = ("TMPDIR", "TEMP", "TMP", "HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                 "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR")
EMPTY_TREE = ("tmp", "home")  # the tree's directories when it is made (the $XDG_* ones are made by who needs them)


def make_tree(root: str) -> None:
    """Makes an empty environment tree at `root`."""
    for name in EMPTY_TREE:
        os.makedirs(os.path.join(root, name), exist_ok=True)


def tree_environment(root: str) -> dict[str, str]:
    """The variables that point a process into the tree at `root`."""
    env = {}
    for variable in ENV_VARIABLES:
        if variable.startswith("XDG_"):
            env[variable] = os.path.join(root, "home", "." + variable[4:].lower())
        else:
            env[variable] = os.path.join(root, "home" if variable == "HOME" else "tmp")
    # A Python connector finds its user site-packages from $HOME unless told: keep the one it had.
    env["PYTHONUSERBASE"] = os.environ.get("PYTHONUSERBASE") or site.getuserbase()
    return env
