"""The suite's probes of a destination's surroundings: the fault proxy in front of its backend."""
