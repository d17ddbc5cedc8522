"""The one error type meant for users: the CLI prints it as one line and exits with code 2."""


class OproError(Exception):
    """A user-facing error (bad input, missing file, unknown option). Its message is one line."""
