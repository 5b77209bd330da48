"""What several test modules share: a broken destination to run the suite against, readers of its output, and a
conftest that runs a profile without shrinking."""

import re

# A destination whose write silently drops the last record of each batch (and still returns len(records)).
DROPS_LAST = '''
from harness import Registration, destination_with_middleware, default_destination_middleware, directory_reader
from reference import FileDestination

class DropsLast(FileDestination):
    def write(self, records):
        super().write(list(records)[:-1])
        return len(records)

registration = Registration(
    factory=lambda: destination_with_middleware(DropsLast(), *default_destination_middleware()),
    config={"directory": "{tmp}/out"}, read_back=directory_reader("directory"), directory_param="directory",
)
'''


def summary(output: str, destination: str) -> dict[str, str]:
    """The clause -> status table the plugin printed for one destination."""
    section = output.split(f"destination conformance: {destination}", 1)[1]
    rows = {}
    for line in section.splitlines()[1:]:
        match = re.match(r"  (passed|FAILED|known fail|not checked|n/a|skipped)\s+([a-z]+\.[a-z-]+)", line)
        if match:
            rows[match.group(2)] = match.group(1)
        elif rows and not line.startswith("  "):
            break
    return rows


def no_shrink_conftest(*profiles: str, **overrides: object) -> str:
    """A conftest for a suite run in a subprocess: each of `profiles` as the suite defines it (with `overrides` of
    its settings), without hypothesis' shrink phase.

    Shrinking only minimises the failing example shown; whether a clause fails is decided before it, so no verdict
    changes, and the runs take a fraction of the time."""
    settings = "".join(f", {name}={value!r}" for name, value in overrides.items())
    lines = ["from hypothesis import Phase, settings", ""]
    for profile in dict.fromkeys(profiles):
        lines += [f"_profile = settings.get_profile({profile!r})",
                  f"settings.register_profile({profile!r}, _profile, "
                  f"phases=tuple(p for p in _profile.phases if p is not Phase.shrink){settings})"]
    return "\n".join(lines) + "\n"
