"""What the checks draw: hypothesis strategies for records, batches and configs, and the model."""

__all__: list[str] = []
