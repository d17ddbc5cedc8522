"""The one error type meant for users: the CLI prints it as one line and exits with code 2. And the one
way a library part warns the user: one line on stderr."""

import sys


class OproError(Exception):
    """A user-facing error (bad input, missing file, unknown option). Its message is one line."""


def warn(message: str) -> None:
    """One `opro: warning: ...` line on stderr (a fault the run goes on past)."""
    print(f"opro: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)
