"""The contract: the clause registry, the failure checks raise, CONTRACT.md's generated clause sections."""

__all__: list[str] = []
