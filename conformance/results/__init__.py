"""Outcomes into verdicts and reports: verdicts, root causes, baselines, saved failures."""

__all__: list[str] = []
