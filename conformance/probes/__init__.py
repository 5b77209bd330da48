"""What checks observe beside the answers: injected faults, file events, descriptors and threads, trees."""

__all__: list[str] = []
