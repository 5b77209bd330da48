"""One example against a subject: the logged session, hangs, call outcomes, replays, scratch dirs."""

__all__: list[str] = []
