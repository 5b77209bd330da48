"""Replays of saved failures (--conformance-replay): the clause comes from the saved file."""

from pathlib import Path

from conformance.execute.subject import Subject
from conformance.results.saved import load_saved, run_saved


def test_replay_saved_failure(subject: Subject, replay_file: str) -> None:
    """The clause the saved failure names: its calls, checked against the contract again."""
    header, calls = load_saved(Path(replay_file))
    run_saved(subject, calls, header)
