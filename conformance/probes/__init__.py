"""What checks observe beside the answers: injected faults (pyfakefs, FUSE, a fault proxy in front of a backend), file
events, descriptors and threads, trees."""

__all__: list[str] = []
